//! Sockets joining and leaving the hub: a new session, a resumed one (its
//! missed pushes replayed from the ring or the bus, then live ones exactly
//! once), and a closed socket whose session stays resumable.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use vdm_kit::bus::{Event, EventBus, Offset};
use vdm_kit::shutdown::CancellationToken;

use super::{Attached, Conn, HISTORY_SCAN_MAX, Hub, LIVE_TTL, Out};
use crate::realtime::envelope::Outbound;
use crate::realtime::resume::{Checkpoint, Record, Replay, ResumeRefused, sorted};

impl Hub {
    /// Opens a new session on a new socket. Its record is written in the
    /// background (in order with the session's later checkpoints): a client
    /// that resumes before it landed, within milliseconds, starts afresh.
    pub fn open(
        &self,
        player_id: i64,
        tx: mpsc::Sender<Out>,
        kill: CancellationToken,
    ) -> Result<Attached, vdm_kit::secure::RandomError> {
        // The resume token is a bearer secret of the session.
        let token = vdm_kit::secure::random_token(18)?;
        let id = {
            let mut state = self.lock();
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let record = state.position.map(|offset| Record {
                player_id,
                current: Checkpoint {
                    seq: 0,
                    offset,
                    regions: Vec::new(),
                },
                previous: None,
            });
            if let Some(record) = record.clone() {
                self.save(id, &token, record, false, false, LIVE_TTL);
            }
            state.insert(
                id,
                Conn {
                    player_id,
                    token: record.as_ref().map(|_| token.clone()),
                    tx,
                    kill,
                    regions: HashSet::new(),
                    seq: 0,
                    skip_until: Offset::default(),
                    saved: record,
                    saved_at: Instant::now(),
                },
            );
            id
        };
        Ok(Attached {
            id,
            token,
            seq: 0,
            replay: Vec::new(),
        })
    }

    /// Continues the session `token` on a new socket, for a client whose
    /// last received push was `last_seq`: reads the session's record and
    /// the bus events after its checkpoint, and attaches the socket so that
    /// every later push is delivered live, exactly once, after the replay.
    /// The takeover of the record is written in the background, like a new
    /// session's.
    pub async fn resume(
        &self,
        bus: &EventBus,
        player_id: i64,
        token: &str,
        last_seq: u64,
        tx: mpsc::Sender<Out>,
        kill: CancellationToken,
    ) -> Result<Attached, ResumeRefused> {
        let record = match self.store.load(token).await {
            Ok(Some(record)) => record,
            Ok(None) => return Err(ResumeRefused::Unknown),
            Err(err) => {
                tracing::warn!(error = %err, "session store unavailable; cannot resume");
                return Err(ResumeRefused::Unavailable);
            }
        };
        if record.player_id != player_id {
            return Err(ResumeRefused::NotYours);
        }
        let (base, _) = record.base_for(last_seq).ok_or(ResumeRefused::Gap)?;
        let fetched = if bus.keeps_history() {
            let events = bus.history_after(base.offset, HISTORY_SCAN_MAX).await.map_err(|err| {
                tracing::warn!(error = %err, "event history unavailable; cannot resume");
                ResumeRefused::Unavailable
            })?;
            if events.len() == HISTORY_SCAN_MAX {
                return Err(ResumeRefused::Gap);
            }
            events
        } else {
            Vec::new()
        };
        let read_to = fetched
            .last()
            .map_or(base.offset, |(offset, _)| *offset)
            .max(base.offset);

        let attached = {
            let mut state = self.lock();
            let position = state.position.ok_or(ResumeRefused::Unavailable)?;
            // Events the hub routed after what was read come from the ring.
            let from_ring: Vec<(Offset, Arc<Event>)> = if position > read_to {
                if state.floor.is_none_or(|floor| floor > read_to) {
                    return Err(ResumeRefused::Gap);
                }
                state
                    .ring
                    .iter()
                    .filter(|(offset, _, _)| *offset > read_to)
                    .map(|(offset, _, event)| (*offset, event.clone()))
                    .collect()
            } else {
                Vec::new()
            };
            let events = fetched.iter().chain(&from_ring).map(|(offset, event)| (*offset, event));
            let Replay {
                seq,
                regions,
                pushes,
                base,
            } = record.replay(last_seq, events, self.config.max_replay)?;
            let through = position.max(read_to);
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            let continued = Record {
                player_id,
                current: Checkpoint {
                    seq,
                    offset: through,
                    regions: regions.clone(),
                },
                previous: Some(base),
            };
            self.save(id, token, continued.clone(), true, false, LIVE_TTL);
            state.insert(
                id,
                Conn {
                    player_id,
                    token: Some(token.to_owned()),
                    tx,
                    kill,
                    regions: regions.into_iter().collect(),
                    seq,
                    skip_until: through,
                    saved: Some(continued),
                    saved_at: Instant::now(),
                },
            );
            Attached {
                id,
                token: token.to_owned(),
                seq,
                replay: pushes
                    .into_iter()
                    .map(|(seq, event)| (seq, Outbound::new(event)))
                    .collect(),
            }
        };
        Ok(attached)
    }

    /// Forgets a closed socket; its session stays resumable for the window.
    pub fn detach(&self, id: u64) {
        let mut state = self.lock();
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
        // A checkpoint where the socket closed, living for the window: a
        // client that got every push (a clean close, a restarting gateway)
        // resumes from here and reads only what came after, instead of every
        // event since the last periodic checkpoint; one that lost some in
        // flight falls back to the older checkpoint.
        if let (Some(token), Some(saved), Some(position)) = (&conn.token, &conn.saved, state.position) {
            let record = Record {
                player_id: conn.player_id,
                current: Checkpoint {
                    seq: conn.seq,
                    offset: conn.counted_through(position),
                    regions: sorted(&conn.regions),
                },
                previous: Some(saved.current.clone()),
            };
            self.save(id, token, record, false, false, self.config.window);
        }
        metrics::gauge!("vdm_ws_connections").set(state.conns.len() as f64);
    }
}

/// Waits (briefly) for a record write; a session whose record did not
/// land still works, it just may not resume.
pub(super) async fn wait(done: oneshot::Receiver<bool>) {
    match tokio::time::timeout(Duration::from_secs(2), done).await {
        Ok(Ok(true)) => {}
        _ => tracing::warn!("session record not stored; this session may not resume"),
    }
}
