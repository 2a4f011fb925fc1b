//! Open sockets by player and by subscribed region, and delivery of bus
//! events to them. Each socket has a bounded queue; when a push does not fit,
//! that socket is cut off (`SLOW_CONSUMER`) instead of slowing the others.
//! Sessions whose socket closed stay known for the resume window, so their
//! missed pushes are recorded for the client's return.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::mpsc;
use vdm_kit::bus::{Event, EventBus};
use vdm_kit::shutdown::CancellationToken;

use super::resume::ResumeStore;

/// Regions one socket may subscribe to at most.
pub const MAX_REGIONS: usize = 64;

/// Where pushes go.
#[derive(Default)]
pub struct Hub {
    state: Mutex<State>,
    next_id: AtomicU64,
}

#[derive(Default)]
struct State {
    conns: HashMap<u64, Conn>,
    by_player: HashMap<i64, Vec<u64>>,
    by_region: HashMap<i64, HashSet<u64>>,
    detached: Vec<Detached>,
}

struct Conn {
    player_id: i64,
    resume_token: String,
    tx: mpsc::Sender<Arc<Event>>,
    kill: CancellationToken,
    regions: HashSet<i64>,
}

/// A session whose socket closed, still recording pushes until `until`.
struct Detached {
    player_id: i64,
    resume_token: String,
    regions: HashSet<i64>,
    until: Instant,
}

/// What a newly attached socket needs to know of its session.
pub struct Attached {
    /// The hub's id of the socket.
    pub id: u64,
}

impl Hub {
    /// Registers an open socket. `session` runs under the hub's lock (so no
    /// push is delivered or recorded while it runs) and names the session's
    /// resume token and regions; its other result is handed back.
    pub fn attach<T>(
        &self,
        player_id: i64,
        tx: mpsc::Sender<Arc<Event>>,
        kill: CancellationToken,
        session: impl FnOnce() -> (String, HashSet<i64>, T),
    ) -> (Attached, T) {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        let (resume_token, regions, extra) = session();
        state.detached.retain(|d| d.resume_token != resume_token);
        for region in &regions {
            state.by_region.entry(*region).or_default().insert(id);
        }
        state.by_player.entry(player_id).or_default().push(id);
        state.conns.insert(
            id,
            Conn {
                player_id,
                resume_token,
                tx,
                kill,
                regions,
            },
        );
        metrics::gauge!("vdm_ws_connections").set(state.conns.len() as f64);
        (Attached { id }, extra)
    }

    /// Forgets a closed socket; its session keeps recording until `until`.
    /// `drain` runs under the hub's lock, so pushes still queued for the
    /// socket are logged before any push that arrives after it is detached.
    pub fn detach(&self, id: u64, until: Instant, drain: impl FnOnce()) {
        let mut state = self.lock();
        drain();
        let Some(conn) = state.conns.remove(&id) else { return };
        if let Some(ids) = state.by_player.get_mut(&conn.player_id) {
            ids.retain(|c| *c != id);
            if ids.is_empty() {
                state.by_player.remove(&conn.player_id);
            }
        }
        for region in &conn.regions {
            if let Some(ids) = state.by_region.get_mut(region) {
                ids.remove(&id);
                if ids.is_empty() {
                    state.by_region.remove(region);
                }
            }
        }
        state.detached.push(Detached {
            player_id: conn.player_id,
            resume_token: conn.resume_token,
            regions: conn.regions,
            until,
        });
        metrics::gauge!("vdm_ws_connections").set(state.conns.len() as f64);
    }

    /// Subscribes a socket to regions; returns all its regions.
    pub fn subscribe(&self, id: u64, regions: &[i64]) -> Result<Vec<i64>, String> {
        let mut state = self.lock();
        let Some(conn) = state.conns.get_mut(&id) else {
            return Ok(Vec::new());
        };
        if conn.regions.len() + regions.iter().filter(|r| !conn.regions.contains(r)).count() > MAX_REGIONS {
            return Err(format!("a socket may subscribe to at most {MAX_REGIONS} regions"));
        }
        conn.regions.extend(regions.iter().copied());
        let mut all: Vec<i64> = conn.regions.iter().copied().collect();
        for region in regions {
            state.by_region.entry(*region).or_default().insert(id);
        }
        all.sort_unstable();
        Ok(all)
    }

    /// Unsubscribes a socket from regions; returns its remaining regions.
    pub fn unsubscribe(&self, id: u64, regions: &[i64]) -> Vec<i64> {
        let mut state = self.lock();
        let Some(conn) = state.conns.get_mut(&id) else {
            return Vec::new();
        };
        for region in regions {
            conn.regions.remove(region);
        }
        let mut all: Vec<i64> = conn.regions.iter().copied().collect();
        for region in regions {
            if let Some(ids) = state.by_region.get_mut(region) {
                ids.remove(&id);
            }
        }
        all.sort_unstable();
        all
    }

    /// How many sockets a player has open.
    pub fn sockets_of(&self, player_id: i64) -> usize {
        self.lock().by_player.get(&player_id).map_or(0, Vec::len)
    }

    /// Delivers bus events until the bus closes; started once per gateway.
    pub fn spawn(self: Arc<Self>, bus: EventBus, resume: ResumeStore, shutdown: CancellationToken) {
        let mut events = bus.subscribe();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = shutdown.cancelled() => return,
                    received = events.recv() => received,
                };
                match event {
                    Ok(event) => self.deliver(&event, &resume),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::error!(missed, "push delivery fell behind the event bus; events dropped");
                        metrics::counter!("vdm_ws_events_dropped_total").increment(missed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Queues an event for every socket it concerns, and records it in the
    /// log of every detached session it concerns (under the lock, so a
    /// socket resuming that session sees it either replayed or live).
    fn deliver(&self, event: &Arc<Event>, resume: &ResumeStore) {
        let mut state = self.lock();
        let mut targets: HashSet<u64> = HashSet::new();
        if let Some(player) = event.player_id
            && let Some(ids) = state.by_player.get(&player)
        {
            targets.extend(ids.iter().copied());
        }
        for region in &event.region_ids {
            if let Some(ids) = state.by_region.get(region) {
                targets.extend(ids.iter().copied());
            }
        }
        for id in targets {
            let Some(conn) = state.conns.get(&id) else { continue };
            match conn.tx.try_send(event.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if !conn.kill.is_cancelled() {
                        tracing::warn!(player.id = conn.player_id, "socket too slow for its pushes; closing it");
                        metrics::counter!("vdm_ws_slow_consumers_total").increment(1);
                        conn.kill.cancel();
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
        let now = Instant::now();
        state.detached.retain(|d| d.until > now);
        for detached in &state.detached {
            if event.player_id == Some(detached.player_id)
                || event.region_ids.iter().any(|r| detached.regions.contains(r))
            {
                resume.record(&detached.resume_token, event);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(player: i64, regions: Vec<i64>) -> Arc<Event> {
        Arc::new(Event {
            kind: "quest.updated".into(),
            player_id: Some(player),
            region_ids: regions,
            payload: serde_json::json!({}),
        })
    }

    fn attach(
        hub: &Hub,
        player: i64,
        token: &str,
        regions: &[i64],
        tx: mpsc::Sender<Arc<Event>>,
        kill: CancellationToken,
    ) -> u64 {
        let regions = regions.iter().copied().collect();
        hub.attach(player, tx, kill, || (token.to_owned(), regions, ())).0.id
    }

    #[test]
    fn a_full_queue_cuts_off_only_that_socket() {
        let hub = Hub::default();
        let resume = ResumeStore::new(std::time::Duration::from_secs(60), 10);
        let (slow_tx, _slow_rx) = mpsc::channel(1);
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (slow_kill, fast_kill) = (CancellationToken::new(), CancellationToken::new());
        attach(&hub, 1, "slow", &[], slow_tx, slow_kill.clone());
        attach(&hub, 2, "fast", &[7], fast_tx, fast_kill.clone());
        hub.deliver(&event(1, vec![]), &resume);
        assert!(!slow_kill.is_cancelled());
        hub.deliver(&event(1, vec![7]), &resume);
        assert!(slow_kill.is_cancelled(), "the second push did not fit");
        assert!(!fast_kill.is_cancelled());
        assert!(fast_rx.try_recv().is_ok(), "the region subscriber got the region push");
    }

    #[test]
    fn detached_sessions_record_what_concerns_them() {
        let hub = Hub::default();
        let resume = ResumeStore::new(std::time::Duration::from_secs(60), 10);
        resume.open("token-1", 1);
        let (tx, _rx) = mpsc::channel(8);
        let id = attach(&hub, 1, "token-1", &[3], tx, CancellationToken::new());
        hub.detach(id, Instant::now() + std::time::Duration::from_secs(60), || {});
        assert_eq!(hub.sockets_of(1), 0);
        hub.deliver(&event(1, vec![]), &resume);
        hub.deliver(&event(9, vec![3]), &resume);
        hub.deliver(&event(9, vec![4]), &resume);
        let resumed = resume.claim("token-1", 1, 0).unwrap();
        assert_eq!(resumed.last_seq, 2, "its own and its regions' pushes, not others");
        assert_eq!(resumed.replay.len(), 2);
    }
}
