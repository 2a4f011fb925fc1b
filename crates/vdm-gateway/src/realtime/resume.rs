//! Per-session logs of pushes, so a client that reconnects within the window
//! gets what it missed, in order, and its `seq` continues without a gap.
//!
//! This store keeps the logs in the gateway's memory: a client resumes on
//! the same gateway replica (sticky sessions at the load balancer).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vdm_kit::bus::Event;

use super::envelope::Outgoing;

/// Why a session cannot be resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeRefused {
    /// No such session (never existed, or its window passed).
    Unknown,
    /// The session belongs to another player.
    NotYours,
    /// Pushes after `last_seq` were already dropped from the log.
    Gap,
}

/// A resumed session.
pub struct Resumed {
    /// The regions the session was subscribed to.
    pub regions: HashSet<i64>,
    /// The session's last push seq.
    pub last_seq: u64,
    /// The pushes after the client's `last_seq`, in order.
    pub replay: Vec<Outgoing>,
}

/// Logs of recent pushes per session.
#[derive(Clone)]
pub struct ResumeStore {
    inner: Arc<Mutex<HashMap<String, Log>>>,
    window: Duration,
    capacity: usize,
}

struct Log {
    player_id: i64,
    seq: u64,
    /// (seq, when recorded, event), oldest first.
    entries: VecDeque<(u64, Instant, Arc<Event>)>,
    regions: HashSet<i64>,
    touched: Instant,
}

impl ResumeStore {
    /// Keeps up to `capacity` pushes per session, none older than `window`
    /// (a client resumes within the window of its disconnect, so what it
    /// missed is younger than that), and sessions for `window` after their
    /// last activity.
    pub fn new(window: Duration, capacity: usize) -> ResumeStore {
        ResumeStore {
            inner: Arc::new(Mutex::new(HashMap::new())),
            window,
            capacity: capacity.max(1),
        }
    }

    /// Starts a new session log.
    pub fn open(&self, token: &str, player_id: i64) {
        let mut logs = self.lock();
        let window = self.window;
        logs.retain(|_, log| log.touched.elapsed() < window);
        logs.insert(
            token.to_owned(),
            Log {
                player_id,
                seq: 0,
                entries: VecDeque::new(),
                regions: HashSet::new(),
                touched: Instant::now(),
            },
        );
    }

    /// Takes over a session for a reconnecting client.
    pub fn claim(&self, token: &str, player_id: i64, last_seq: u64) -> Result<Resumed, ResumeRefused> {
        let mut logs = self.lock();
        let log = logs
            .get_mut(token)
            .filter(|log| log.touched.elapsed() < self.window)
            .ok_or(ResumeRefused::Unknown)?;
        if log.player_id != player_id {
            return Err(ResumeRefused::NotYours);
        }
        let oldest = log.entries.front().map_or(log.seq + 1, |(seq, _, _)| *seq);
        if last_seq > log.seq || last_seq + 1 < oldest {
            return Err(ResumeRefused::Gap);
        }
        log.touched = Instant::now();
        let replay = log
            .entries
            .iter()
            .filter(|(seq, _, _)| *seq > last_seq)
            .map(|(seq, _, event)| push(*seq, event))
            .collect();
        Ok(Resumed {
            regions: log.regions.clone(),
            last_seq: log.seq,
            replay,
        })
    }

    /// Notes a session's region subscriptions, for a resume.
    pub fn set_regions(&self, token: &str, regions: &[i64]) {
        if let Some(log) = self.lock().get_mut(token) {
            log.regions = regions.iter().copied().collect();
        }
    }

    /// Appends a push to a session's log and returns its seq.
    pub fn record(&self, token: &str, event: &Arc<Event>) -> u64 {
        let mut logs = self.lock();
        let Some(log) = logs.get_mut(token) else { return 0 };
        log.seq += 1;
        let now = Instant::now();
        log.touched = now;
        log.entries.push_back((log.seq, now, event.clone()));
        while log.entries.len() > self.capacity
            || log
                .entries
                .front()
                .is_some_and(|(_, at, _)| now.duration_since(*at) > self.window)
        {
            log.entries.pop_front();
        }
        log.seq
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Log>> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The push envelope of an event.
pub fn push(seq: u64, event: &Event) -> Outgoing {
    Outgoing::Event {
        seq,
        event: event.kind.clone(),
        payload: event.payload.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(n: i64) -> Arc<Event> {
        Arc::new(Event {
            kind: "quest.updated".to_owned(),
            player_id: Some(1),
            region_ids: Vec::new(),
            payload: serde_json::json!({ "n": n }),
        })
    }

    #[test]
    fn logs_keep_at_most_the_capacity_and_nothing_older_than_the_window() {
        let store = ResumeStore::new(Duration::from_millis(200), 3);
        store.open("t", 1);
        for n in 1..=5 {
            assert_eq!(store.record("t", &event(n)), n as u64);
        }
        // The capacity keeps seqs 3..=5.
        assert_eq!(store.claim("t", 1, 2).map(|r| r.replay.len()).ok(), Some(3));
        assert!(matches!(store.claim("t", 1, 1), Err(ResumeRefused::Gap)));
        assert!(matches!(store.claim("t", 2, 5), Err(ResumeRefused::NotYours)));
        // Older than the window: dropped at the next push.
        std::thread::sleep(Duration::from_millis(250));
        store.record("t", &event(6));
        assert_eq!(store.claim("t", 1, 5).map(|r| r.replay.len()).ok(), Some(1));
        assert!(matches!(store.claim("t", 1, 4), Err(ResumeRefused::Gap)));
    }
}
