//! Resuming a session on any gateway replica.
//!
//! A session's pushes are exactly the bus events that concern it (its
//! player's own, and its regions'), numbered by `seq` in the bus's order.
//! So a session needs no log of its own, only a [`Checkpoint`]: "after the
//! event at `offset`, the session's seq was `seq`, and from there on its
//! regions were `regions`". A checkpoint plus the bus's order reconstructs
//! every push after it, on whichever replica the client returns to.
//!
//! Checkpoints are written when a session opens, whenever its regions
//! change, and periodically; the record keeps the two newest, so a client
//! whose last received push is older than the newest checkpoint (pushes
//! in flight when its network went) still resumes. Records live in Redis
//! when the gateway has it (any replica resumes any session), else in the
//! gateway's memory. Each record names its holder (the socket that serves
//! the session); only the holder refreshes it, and a resume takes it over.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use vdm_kit::bus::{Event, Offset};

/// Why a session cannot be resumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeRefused {
    /// No such session (never existed, or its window passed).
    Unknown,
    /// The session belongs to another player.
    NotYours,
    /// Pushes after the client's `last_seq` are no longer known (older
    /// than the window, or more than the replay limit).
    Gap,
    /// The session store or the bus history did not answer.
    Unavailable,
}

impl ResumeRefused {
    /// A bounded metric label.
    pub fn label(&self) -> &'static str {
        match self {
            ResumeRefused::Unknown => "unknown",
            ResumeRefused::NotYours => "not_yours",
            ResumeRefused::Gap => "gap",
            ResumeRefused::Unavailable => "unavailable",
        }
    }
}

/// A session's position in the bus's order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The session's last push seq after the event at `offset`.
    pub seq: u64,
    /// The bus offset this checkpoint was taken at.
    pub offset: Offset,
    /// The session's regions from `offset` on (sorted).
    pub regions: Vec<i64>,
}

/// What is stored per session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The session's player.
    pub player_id: i64,
    /// The newest checkpoint.
    pub current: Checkpoint,
    /// The one before, when the session has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous: Option<Checkpoint>,
}

/// A reconstructed session.
#[derive(Debug)]
pub struct Replay {
    /// The session's last push seq after the replayed events.
    pub seq: u64,
    /// The session's regions now.
    pub regions: Vec<i64>,
    /// The pushes after the client's `last_seq`, in order.
    pub pushes: Vec<(u64, Arc<Event>)>,
    /// The record to store for the continued session (its base is the
    /// newest checkpoint the client's `last_seq` is at or after).
    pub base: Checkpoint,
}

/// Whether an event is a push of a session of `player_id` in `regions`
/// (the hub delivers by the same rule).
pub fn concerns(event: &Event, player_id: i64, regions: &[i64]) -> bool {
    crate::pushes::is_pushed(event)
        && (event.player_id == Some(player_id) || event.region_ids.iter().any(|r| regions.contains(r)))
}

impl Record {
    /// The checkpoint a replay for a client at `last_seq` starts from, and
    /// the later one whose regions apply after its offset (if any).
    pub fn base_for(&self, last_seq: u64) -> Option<(&Checkpoint, Option<&Checkpoint>)> {
        if self.current.seq <= last_seq {
            return Some((&self.current, None));
        }
        let previous = self.previous.as_ref().filter(|p| p.seq <= last_seq)?;
        Some((previous, Some(&self.current)))
    }

    /// Replays the session for a client whose last push was `last_seq`,
    /// over `events`: every bus event after the base checkpoint's offset,
    /// in order. At most `max` pushes are replayed.
    pub fn replay<'a>(
        &self,
        last_seq: u64,
        events: impl IntoIterator<Item = (Offset, &'a Arc<Event>)>,
        max: usize,
    ) -> Result<Replay, ResumeRefused> {
        let (base, later) = self.base_for(last_seq).ok_or(ResumeRefused::Gap)?;
        let mut seq = base.seq;
        let mut regions = &base.regions;
        let mut pushes = Vec::new();
        for (offset, event) in events {
            if offset <= base.offset {
                continue;
            }
            if let Some(later) = later
                && offset > later.offset
            {
                regions = &later.regions;
            }
            if concerns(event, self.player_id, regions) {
                seq += 1;
                if seq > last_seq {
                    if pushes.len() == max {
                        return Err(ResumeRefused::Gap);
                    }
                    pushes.push((seq, event.clone()));
                }
            }
        }
        if last_seq > seq {
            // The client claims pushes the session never had.
            return Err(ResumeRefused::Gap);
        }
        // The continued session's older checkpoint: the base, unless the
        // regions changed after it (then the later checkpoint, where they did).
        let kept = match later {
            Some(later) if later.regions != base.regions => later.clone(),
            _ => base.clone(),
        };
        let regions = later.map_or(&base.regions, |l| &l.regions).clone();
        Ok(Replay {
            seq,
            regions,
            pushes,
            base: kept,
        })
    }
}

/// A write of a session record, applied in order by one task. `takeover`
/// replaces any holder (a resume); else only the record's holder may
/// write it.
#[derive(Debug)]
pub struct Write {
    /// The resume token.
    pub token: String,
    /// The socket serving the session.
    pub holder: String,
    /// The record.
    pub record: Record,
    /// Whether the write takes the session over from another holder.
    pub takeover: bool,
    /// How long the record lives without another write.
    pub ttl: Duration,
    /// Told when the write landed (or failed).
    pub done: Option<tokio::sync::oneshot::Sender<bool>>,
}

/// Where session records live.
#[derive(Clone)]
pub enum SessionStore {
    /// This gateway's memory: sessions resume on this replica only.
    Memory(Arc<Mutex<HashMap<String, Stored>>>),
    /// Redis: sessions resume on any replica.
    Redis {
        /// The cache's pool.
        pool: vdm_kit::redis_pool::RedisPool,
        /// Key prefix (`<prefix>:ws:session:<token>`).
        prefix: String,
    },
}

/// A record in memory.
pub struct Stored {
    holder: String,
    record: Record,
    until: Instant,
}

/// Saves a record if the caller holds it (or takes it over).
const SAVE: &str = "if ARGV[4] == '0' then \
      local holder = redis.call('HGET', KEYS[1], 'holder') \
      if holder and holder ~= ARGV[2] then return 0 end \
    end \
    redis.call('HSET', KEYS[1], 'holder', ARGV[2], 'record', ARGV[1]) \
    redis.call('PEXPIRE', KEYS[1], ARGV[3]) \
    return 1";

impl SessionStore {
    /// Records in memory.
    pub fn memory() -> SessionStore {
        SessionStore::Memory(Arc::new(Mutex::new(HashMap::new())))
    }

    /// Whether sessions resume on other replicas too.
    pub fn shared(&self) -> bool {
        matches!(self, SessionStore::Redis { .. })
    }

    /// The record of a session, if it is still resumable.
    pub async fn load(&self, token: &str) -> Result<Option<Record>, String> {
        match self {
            SessionStore::Memory(records) => Ok(lock(records)
                .get(token)
                .filter(|stored| stored.until > Instant::now())
                .map(|stored| stored.record.clone())),
            SessionStore::Redis { pool, prefix } => {
                let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                let raw: Option<String> = deadpool_redis::redis::cmd("HGET")
                    .arg(key(prefix, token))
                    .arg("record")
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| e.to_string())?;
                match raw {
                    None => Ok(None),
                    Some(raw) => serde_json::from_str::<Record>(&raw)
                        .map(Some)
                        .map_err(|e| format!("undecodable session record: {e}")),
                }
            }
        }
    }

    /// Applies writes in order; returns whether they landed.
    pub async fn apply(&self, writes: &[Write]) -> bool {
        match self {
            SessionStore::Memory(records) => {
                let mut records = lock(records);
                let now = Instant::now();
                for write in writes {
                    if !write.takeover && records.get(&write.token).is_some_and(|s| s.holder != write.holder) {
                        continue;
                    }
                    let stored = Stored {
                        holder: write.holder.clone(),
                        record: write.record.clone(),
                        until: now + write.ttl,
                    };
                    records.insert(write.token.clone(), stored);
                }
                true
            }
            SessionStore::Redis { pool, prefix } => {
                let mut pipe = deadpool_redis::redis::pipe();
                for write in writes {
                    let Ok(json) = serde_json::to_string(&write.record) else {
                        continue;
                    };
                    pipe.cmd("EVAL")
                        .arg(SAVE)
                        .arg(1)
                        .arg(key(prefix, &write.token))
                        .arg(json)
                        .arg(&write.holder)
                        .arg(millis(write.ttl))
                        .arg(if write.takeover { "1" } else { "0" })
                        .ignore();
                }
                let call = async {
                    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
                    pipe.query_async::<()>(&mut conn).await.map_err(|e| e.to_string())
                };
                match tokio::time::timeout(Duration::from_secs(2), call).await {
                    Ok(Ok(())) => true,
                    Ok(Err(err)) => {
                        tracing::warn!(error = %err, writes = writes.len(), "session checkpoints not stored");
                        false
                    }
                    Err(_) => {
                        tracing::warn!(writes = writes.len(), "session checkpoints timed out");
                        false
                    }
                }
            }
        }
    }

    /// Forgets expired in-memory records (Redis expires its own).
    pub fn sweep(&self) {
        if let SessionStore::Memory(records) = self {
            let now = Instant::now();
            lock(records).retain(|_, stored| stored.until > now);
        }
    }
}

fn key(prefix: &str, token: &str) -> String {
    format!("{prefix}:ws:session:{token}")
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Sorted regions of a set.
pub fn sorted(regions: &HashSet<i64>) -> Vec<i64> {
    let mut all: Vec<i64> = regions.iter().copied().collect();
    all.sort_unstable();
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(player: Option<i64>, regions: &[i64]) -> Arc<Event> {
        Arc::new(Event {
            player_id: player,
            region_ids: regions.to_vec(),
            body: Some(vdm_kit::bus::EventBody::QuestUpdated(Default::default())),
        })
    }

    fn checkpoint(seq: u64, offset: u64, regions: &[i64]) -> Checkpoint {
        Checkpoint {
            seq,
            offset: Offset(0, offset),
            regions: regions.to_vec(),
        }
    }

    /// Events at offsets 1..: own, region 2, region 3, other player, own, region 3.
    fn log() -> Vec<(Offset, Arc<Event>)> {
        [
            event(Some(1), &[]),
            event(None, &[2]),
            event(None, &[3]),
            event(Some(9), &[]),
            event(Some(1), &[]),
            event(None, &[3]),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, e)| (Offset(0, i as u64 + 1), e))
        .collect()
    }

    fn offsets(replay: &Replay) -> Vec<u64> {
        replay.pushes.iter().map(|(seq, _)| *seq).collect()
    }

    #[test]
    fn replays_the_pushes_after_the_clients_last_seq() {
        let record = Record {
            player_id: 1,
            current: checkpoint(0, 0, &[2]),
            previous: None,
        };
        let log = log();
        let replay = record.replay(1, log.iter().map(|(o, e)| (*o, e)), 100).unwrap();
        // Own at 1, region 2 at 2, own at 5: seqs 1..=3, the client has 1.
        assert_eq!(offsets(&replay), vec![2, 3]);
        assert_eq!(replay.seq, 3);
        assert!(matches!(
            record.replay(4, log.iter().map(|(o, e)| (*o, e)), 100),
            Err(ResumeRefused::Gap)
        ));
        assert!(matches!(
            record.replay(0, log.iter().map(|(o, e)| (*o, e)), 2),
            Err(ResumeRefused::Gap)
        ));
    }

    #[test]
    fn regions_switch_at_the_checkpoint_where_they_changed() {
        // Subscribed to 2 until offset 2, then to 3 (seq was 2 there).
        let record = Record {
            player_id: 1,
            current: checkpoint(2, 2, &[3]),
            previous: Some(checkpoint(0, 0, &[2])),
        };
        let log = log();
        // The client had only seq 1: replay from the previous checkpoint.
        let replay = record.replay(1, log.iter().map(|(o, e)| (*o, e)), 100).unwrap();
        // seq 2 = region 2 at offset 2; then region 3 at 3, own at 5, region 3 at 6.
        assert_eq!(offsets(&replay), vec![2, 3, 4, 5]);
        assert_eq!(replay.regions, vec![3]);
        assert_eq!(
            replay.base,
            checkpoint(2, 2, &[3]),
            "regions changed: keep the later one"
        );
        // A client at seq 2 or later replays from the current checkpoint.
        let replay = record.replay(3, log.iter().map(|(o, e)| (*o, e)), 100).unwrap();
        assert_eq!(offsets(&replay), vec![4, 5]);
        // Older than both checkpoints: a gap.
        let newer = Record {
            previous: Some(checkpoint(1, 1, &[2])),
            ..record
        };
        assert!(matches!(
            newer.replay(0, log.iter().map(|(o, e)| (*o, e)), 100),
            Err(ResumeRefused::Gap)
        ));
    }

    #[tokio::test]
    async fn only_the_holder_writes_unless_it_takes_over() {
        let store = SessionStore::memory();
        let record = |seq| Record {
            player_id: 1,
            current: checkpoint(seq, seq, &[]),
            previous: None,
        };
        let save = |holder: &str, seq, takeover| Write {
            token: "t".into(),
            holder: holder.into(),
            record: record(seq),
            takeover,
            ttl: Duration::from_secs(60),
            done: None,
        };
        store.apply(&[save("a", 1, false)]).await;
        store.apply(&[save("b", 2, false)]).await;
        assert_eq!(store.load("t").await.unwrap(), Some(record(1)));
        store.apply(&[save("b", 3, true), save("a", 4, false)]).await;
        assert_eq!(store.load("t").await.unwrap(), Some(record(3)));
        let expired = Write {
            token: "t".into(),
            holder: "b".into(),
            record: record(5),
            takeover: false,
            ttl: Duration::ZERO,
            done: None,
        };
        store.apply(&[expired]).await;
        assert_eq!(store.load("t").await.unwrap(), None);
    }
}
