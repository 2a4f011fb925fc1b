//! Open sockets by player and by subscribed region, and delivery of bus
//! events to them. Each socket has a bounded queue; when a push does not
//! fit, that socket is cut off (`SLOW_CONSUMER`) instead of slowing the
//! others. The hub numbers every socket's pushes (`seq`) as it routes them,
//! keeps a ring of recent events, and checkpoints sessions (see
//! [`super::resume`]), so a client can resume on this or any replica.
//!
//! `mod.rs` holds the registry (sockets by player and region, their
//! subscriptions); `attach.rs` opens, resumes and detaches sockets;
//! `routing.rs` follows the bus and numbers and queues each push;
//! `checkpoints.rs` writes session records.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use vdm_kit::bus::{Event, Offset};
use vdm_kit::shutdown::CancellationToken;

use super::envelope::Outbound;
use super::resume::{Checkpoint, Record, SessionStore, Write, sorted};

mod attach;
mod checkpoints;
mod routing;

use attach::wait;

/// Regions one socket may subscribe to at most.
pub const MAX_REGIONS: usize = 64;

/// Bus events read back at most to resume one session.
const HISTORY_SCAN_MAX: usize = 200_000;

/// Session-record writes per Redis pipeline: small enough that a batch
/// answers well within the connection's response timeout on a busy host.
const WRITE_BATCH: usize = 256;

/// How long the record of a live session lives between refreshes.
const LIVE_TTL: Duration = Duration::from_secs(3600);

/// A push for one socket: its seq and the event.
pub type Push = (u64, Arc<Outbound>);

/// What a socket's session sends, in order: pushes from the hub, replies
/// from its requests (one queue, so an idle socket holds one).
pub enum Out {
    /// A push.
    Push(u64, Arc<Outbound>),
    /// The reply to a request.
    Reply(Box<super::envelope::Outgoing>),
}

/// How long sessions stay resumable, and what the hub keeps for that.
#[derive(Debug, Clone)]
pub struct HubConfig {
    /// How long a closed socket's session stays resumable.
    pub window: Duration,
    /// Pushes replayed to a resuming client at most.
    pub max_replay: usize,
    /// How often live sessions are checkpointed.
    pub checkpoint_every: Duration,
}

impl HubConfig {
    /// How far back events must stay readable: a client resumes within
    /// `window` of its socket closing, from a checkpoint up to two
    /// intervals older than that.
    pub fn history(&self) -> Duration {
        self.window + self.checkpoint_every * 2 + Duration::from_secs(5)
    }
}

/// Where pushes go.
pub struct Hub {
    state: Mutex<State>,
    next_id: AtomicU64,
    config: HubConfig,
    store: SessionStore,
    /// This hub's name in session records (`<instance>/<socket id>`).
    instance: String,
    writes: mpsc::UnboundedSender<Write>,
    pending_writes: Mutex<Option<mpsc::UnboundedReceiver<Write>>>,
    /// Recent events kept in memory: on the in-process bus, every event
    /// of the history (it keeps none); with Redis, the last moments, to
    /// bridge between a resume's read of the stream and live delivery.
    ring_keep: (Duration, usize),
}

struct State {
    conns: HashMap<u64, Conn>,
    by_player: HashMap<i64, Vec<u64>>,
    by_region: HashMap<i64, HashSet<u64>>,
    /// The offset of the last event routed (`None` until the bus says).
    position: Option<Offset>,
    /// Recent events, oldest first: every event after `floor`.
    ring: VecDeque<(Offset, Instant, Arc<Event>)>,
    floor: Option<Offset>,
}

struct Conn {
    player_id: i64,
    /// The session's resume token; `None` when it cannot be resumed.
    token: Option<String>,
    tx: mpsc::Sender<Out>,
    kill: CancellationToken,
    regions: HashSet<i64>,
    /// The seq of the last push routed to this socket.
    seq: u64,
    /// Events up to here were replayed at resume; not delivered again.
    skip_until: Offset,
    /// The last record written for the session, and when.
    saved: Option<Record>,
    saved_at: Instant,
}

/// A socket the hub knows.
pub struct Attached {
    /// The hub's id of the socket.
    pub id: u64,
    /// The session's resume token.
    pub token: String,
    /// The session's last push seq.
    pub seq: u64,
    /// Pushes the client missed, in order (empty for a new session).
    pub replay: Vec<Push>,
}

impl Hub {
    /// A hub that keeps its session records in `store`; `bus_keeps_history`
    /// says whether events can be read back from the bus.
    pub fn new(config: HubConfig, store: SessionStore, bus_keeps_history: bool) -> Arc<Hub> {
        let ring_keep = if bus_keeps_history {
            (Duration::from_secs(30), 20_000)
        } else {
            (config.history(), 100_000)
        };
        let (writes, pending) = mpsc::unbounded_channel();
        Arc::new(Hub {
            state: Mutex::new(State {
                conns: HashMap::new(),
                by_player: HashMap::new(),
                by_region: HashMap::new(),
                position: None,
                ring: VecDeque::new(),
                floor: None,
            }),
            next_id: AtomicU64::new(1),
            config,
            store,
            // A name for records, not a secret: a process-unique fallback
            // does no harm if the random source fails.
            instance: vdm_kit::secure::random_token(8).unwrap_or_else(|_| format!("p{}", std::process::id())),
            writes,
            pending_writes: Mutex::new(Some(pending)),
            ring_keep,
        })
    }

    /// Subscribes a socket to regions; returns all its regions, once the
    /// session's checkpoint for them is stored (a resume counts them).
    pub async fn subscribe(&self, id: u64, regions: &[i64]) -> Result<Vec<i64>, String> {
        let (all, done) = self.add_regions(id, regions)?;
        if let Some(done) = done {
            wait(done).await;
        }
        Ok(all)
    }

    /// Unsubscribes a socket from regions; returns its remaining regions,
    /// once the session's checkpoint for them is stored.
    pub async fn unsubscribe(&self, id: u64, regions: &[i64]) -> Vec<i64> {
        let (all, done) = self.remove_regions(id, regions);
        if let Some(done) = done {
            wait(done).await;
        }
        all
    }

    fn add_regions(&self, id: u64, regions: &[i64]) -> Result<(Vec<i64>, Option<oneshot::Receiver<bool>>), String> {
        let mut state = self.lock();
        let Some(conn) = state.conns.get(&id) else {
            return Ok((Vec::new(), None));
        };
        let mut now = conn.regions.clone();
        now.extend(regions.iter().copied());
        if now.len() > MAX_REGIONS {
            return Err(format!("a socket may subscribe to at most {MAX_REGIONS} regions"));
        }
        for region in regions {
            state.by_region.entry(*region).or_default().insert(id);
        }
        Ok(self.set_regions(&mut state, id, now))
    }

    fn remove_regions(&self, id: u64, regions: &[i64]) -> (Vec<i64>, Option<oneshot::Receiver<bool>>) {
        let mut state = self.lock();
        let Some(conn) = state.conns.get(&id) else {
            return (Vec::new(), None);
        };
        let mut now = conn.regions.clone();
        for region in regions {
            now.remove(region);
            if let Some(ids) = state.by_region.get_mut(region) {
                ids.remove(&id);
            }
        }
        self.set_regions(&mut state, id, now)
    }

    /// Sets a socket's regions and checkpoints its session where they
    /// change (pushes from here on are counted against the new regions).
    fn set_regions(
        &self,
        state: &mut State,
        id: u64,
        regions: HashSet<i64>,
    ) -> (Vec<i64>, Option<oneshot::Receiver<bool>>) {
        let position = state.position;
        let Some(conn) = state.conns.get_mut(&id) else {
            return (Vec::new(), None);
        };
        conn.regions = regions;
        let all = sorted(&conn.regions);
        if let (Some(token), Some(saved), Some(offset)) = (&conn.token, &conn.saved, position) {
            let record = Record {
                player_id: conn.player_id,
                current: Checkpoint {
                    seq: conn.seq,
                    offset: conn.counted_through(offset),
                    regions: all.clone(),
                },
                previous: Some(saved.current.clone()),
            };
            conn.saved = Some(record.clone());
            conn.saved_at = Instant::now();
            let token = token.clone();
            return (all, self.save(id, &token, record, false, true, LIVE_TTL));
        }
        (all, None)
    }

    /// How many sockets a player has open.
    pub fn sockets_of(&self, player_id: i64) -> usize {
        self.lock().by_player.get(&player_id).map_or(0, Vec::len)
    }

    fn holder(&self, id: u64) -> String {
        format!("{}/{id}", self.instance)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Conn {
    /// The offset this socket's `seq` counts through, when the hub is at
    /// `position`: a resumed socket's seq already counts the events up to
    /// `skip_until`, which a replica lagging behind the stream may not
    /// have routed yet.
    fn counted_through(&self, position: Offset) -> Offset {
        position.max(self.skip_until)
    }
}

impl State {
    fn insert(&mut self, id: u64, conn: Conn) {
        for region in &conn.regions {
            self.by_region.entry(*region).or_default().insert(id);
        }
        self.by_player.entry(conn.player_id).or_default().push(id);
        self.conns.insert(id, conn);
        metrics::gauge!("vdm_ws_connections").set(self.conns.len() as f64);
    }

    /// Learns where the bus is, when the hub did not know yet: the ring
    /// holds every event after it from now on.
    fn join_at(&mut self, position: Offset) {
        if self.position.is_none() {
            self.position = Some(position);
            self.floor = Some(position);
        }
    }
}

#[cfg(test)]
mod tests {
    use vdm_kit::bus::EventBus;

    use super::*;
    use crate::realtime::resume::ResumeRefused;

    fn event(player: i64, regions: Vec<i64>) -> Arc<Event> {
        Arc::new(Event {
            player_id: Some(player),
            region_ids: regions,
            body: Some(vdm_kit::bus::EventBody::QuestUpdated(Default::default())),
        })
    }

    fn hub() -> Arc<Hub> {
        let config = HubConfig {
            window: Duration::from_secs(60),
            max_replay: 100,
            checkpoint_every: Duration::from_secs(15),
        };
        let hub = Hub::new(config, SessionStore::memory(), false);
        hub.lock().join_at(Offset(0, 0));
        hub.spawn_writer();
        hub
    }

    #[tokio::test]
    async fn a_full_queue_cuts_off_only_that_socket() {
        let hub = hub();
        let (slow_tx, _slow_rx) = mpsc::channel(1);
        let (fast_tx, mut fast_rx) = mpsc::channel(8);
        let (slow_kill, fast_kill) = (CancellationToken::new(), CancellationToken::new());
        hub.open(1, slow_tx, slow_kill.clone()).unwrap();
        let fast = hub.open(2, fast_tx, fast_kill.clone()).unwrap();
        hub.subscribe(fast.id, &[7]).await.unwrap();
        hub.deliver(Offset(0, 1), &event(1, vec![]));
        assert!(!slow_kill.is_cancelled());
        hub.deliver(Offset(0, 2), &event(1, vec![7]));
        assert!(slow_kill.is_cancelled(), "the second push did not fit");
        assert!(!fast_kill.is_cancelled());
        assert!(matches!(fast_rx.try_recv(), Ok(Out::Push(1, _))));
    }

    #[tokio::test]
    async fn a_resumed_socket_gets_the_missed_pushes_then_live_ones_once() {
        let hub = hub();
        let bus_without_history = EventBus::new(
            &vdm_kit::cache::CacheStore::new(&vdm_kit::config::CacheConfig {
                key_prefix: "t".into(),
                memory_capacity: 10,
                timeout: Duration::from_millis(50),
                ..vdm_kit::config::CacheConfig::in_process()
            })
            .unwrap(),
            "t",
        );
        let (tx, mut rx) = mpsc::channel(8);
        let opened = hub.open(1, tx, CancellationToken::new()).unwrap();
        hub.subscribe(opened.id, &[3]).await.unwrap();
        hub.deliver(Offset(0, 1), &event(1, vec![]));
        hub.deliver(Offset(0, 2), &event(9, vec![3]));
        assert!(matches!(rx.try_recv(), Ok(Out::Push(1, _))));
        hub.detach(opened.id);
        // Closing checkpoints where the socket was: seq 2 after offset 2.
        let closed_at = Checkpoint {
            seq: 2,
            offset: Offset(0, 2),
            regions: vec![3],
        };
        for _ in 0..100 {
            let stored = hub.store.load(&opened.token).await.unwrap();
            if stored.is_some_and(|r| r.current == closed_at) {
                break;
            }
            tokio::task::yield_now().await;
        }
        let stored = hub.store.load(&opened.token).await.unwrap().unwrap();
        assert_eq!(stored.current, closed_at);
        hub.deliver(Offset(0, 3), &event(9, vec![3]));
        hub.deliver(Offset(0, 4), &event(9, vec![4]));
        // The client saw seq 1 only: seq 2 (in flight) and 3 (while away).
        let (tx, mut rx) = mpsc::channel(8);
        let resumed = hub
            .resume(&bus_without_history, 1, &opened.token, 1, tx, CancellationToken::new())
            .await
            .unwrap();
        let replayed: Vec<u64> = resumed.replay.iter().map(|(seq, _)| *seq).collect();
        assert_eq!(replayed, vec![2, 3]);
        assert_eq!(resumed.seq, 3);
        hub.deliver(Offset(0, 5), &event(1, vec![]));
        assert!(matches!(rx.try_recv(), Ok(Out::Push(4, _))));
        assert!(matches!(
            hub.resume(
                &bus_without_history,
                2,
                &opened.token,
                0,
                mpsc::channel(1).0,
                CancellationToken::new()
            )
            .await,
            Err(ResumeRefused::NotYours)
        ));
    }
}
