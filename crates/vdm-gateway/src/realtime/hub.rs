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
    /// Registers an open socket. `regions` are those its session had.
    pub fn attach(
        &self,
        player_id: i64,
        resume_token: &str,
        regions: HashSet<i64>,
        tx: mpsc::Sender<Arc<Event>>,
        kill: CancellationToken,
    ) -> Attached {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut state = self.lock();
        state.detached.retain(|d| d.resume_token != resume_token);
        for region in &regions {
            state.by_region.entry(*region).or_default().insert(id);
        }
        state.by_player.entry(player_id).or_default().push(id);
        state.conns.insert(
            id,
            Conn {
                player_id,
                resume_token: resume_token.to_owned(),
                tx,
                kill,
                regions,
            },
        );
        metrics::gauge!("vdm_ws_connections").set(state.conns.len() as f64);
        Attached { id }
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
                    Ok(event) => {
                        for token in self.deliver(&event) {
                            resume.record(&token, &event);
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::error!(missed, "push delivery fell behind the event bus; events dropped");
                        metrics::counter!("vdm_ws_events_dropped_total").increment(missed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
    }

    /// Queues an event for every socket it concerns; returns the resume
    /// tokens of detached sessions that should record it.
    fn deliver(&self, event: &Arc<Event>) -> Vec<String> {
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
        state
            .detached
            .iter()
            .filter(|d| event.player_id == Some(d.player_id) || event.region_ids.iter().any(|r| d.regions.contains(r)))
            .map(|d| d.resume_token.clone())
            .collect()
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

    #[test]
    fn a_full_queue_cuts_off_only_that_socket() {
        let hub = Hub::default();
        let (slow_tx, _slow_rx) = mpsc::channel(1);
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (slow_kill, fast_kill) = (CancellationToken::new(), CancellationToken::new());
        hub.attach(1, "slow", HashSet::new(), slow_tx, slow_kill.clone());
        hub.attach(2, "fast", HashSet::from([7]), fast_tx, fast_kill.clone());
        hub.deliver(&event(1, vec![]));
        assert!(!slow_kill.is_cancelled());
        hub.deliver(&event(1, vec![7]));
        assert!(slow_kill.is_cancelled(), "the second push did not fit");
        assert!(!fast_kill.is_cancelled());
        assert!(fast_rx.try_recv().is_ok(), "the region subscriber got the region push");
    }

    #[test]
    fn detached_sessions_record_what_concerns_them() {
        let hub = Hub::default();
        let (tx, _rx) = mpsc::channel(8);
        let attached = hub.attach(1, "token-1", HashSet::from([3]), tx, CancellationToken::new());
        hub.detach(attached.id, Instant::now() + std::time::Duration::from_secs(60), || {});
        assert_eq!(hub.sockets_of(1), 0);
        assert_eq!(hub.deliver(&event(1, vec![])), vec!["token-1".to_owned()]);
        assert_eq!(
            hub.deliver(&event(9, vec![3])),
            vec!["token-1".to_owned()],
            "its regions too"
        );
        assert!(hub.deliver(&event(9, vec![4])).is_empty());
    }
}
