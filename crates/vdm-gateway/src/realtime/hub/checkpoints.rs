//! Session checkpoints: the one task that writes session records in order
//! and in batches, the periodic checkpoint of every live session, and the
//! queueing of one record write.

use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use super::{Hub, LIVE_TTL, WRITE_BATCH};
use crate::realtime::resume::{Checkpoint, Record, Write, sorted};

impl Hub {
    /// Starts the one task that applies session-record writes, in order
    /// and in batches (one Redis pipeline per batch).
    pub(super) fn spawn_writer(&self) {
        let Some(mut writes) = self.pending_writes.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        let store = self.store.clone();
        tokio::spawn(async move {
            let mut batch = Vec::new();
            while writes.recv_many(&mut batch, WRITE_BATCH).await > 0 {
                let landed = store.apply(&batch).await;
                if !landed {
                    metrics::counter!("vdm_ws_checkpoint_errors_total").increment(batch.len() as u64);
                }
                for write in batch.drain(..) {
                    if let Some(done) = write.done {
                        let _ = done.send(landed);
                    }
                }
            }
        });
    }

    /// Checkpoints every live session whose seq moved since its last one
    /// (and refreshes the records of the others before they expire).
    pub(super) fn checkpoint_all(&self) {
        let mut state = self.lock();
        let Some(offset) = state.position else { return };
        let mut due = Vec::new();
        for (id, conn) in &mut state.conns {
            let (Some(token), Some(saved)) = (&conn.token, &conn.saved) else {
                continue;
            };
            if saved.current.seq == conn.seq && conn.saved_at.elapsed() < LIVE_TTL / 2 {
                continue;
            }
            let record = Record {
                player_id: conn.player_id,
                current: Checkpoint {
                    seq: conn.seq,
                    offset: conn.counted_through(offset),
                    regions: sorted(&conn.regions),
                },
                previous: Some(saved.current.clone()),
            };
            conn.saved = Some(record.clone());
            conn.saved_at = Instant::now();
            due.push((*id, token.clone(), record));
        }
        drop(state);
        for (id, token, record) in due {
            self.save(id, &token, record, false, false, LIVE_TTL);
        }
    }

    /// Queues a record write (living `ttl` without another); with `ack`,
    /// returns what tells when it landed.
    pub(super) fn save(
        &self,
        id: u64,
        token: &str,
        record: Record,
        takeover: bool,
        ack: bool,
        ttl: Duration,
    ) -> Option<oneshot::Receiver<bool>> {
        let (done, landed) = if ack {
            let (done, landed) = oneshot::channel();
            (Some(done), Some(landed))
        } else {
            (None, None)
        };
        let _ = self.writes.send(Write {
            token: token.to_owned(),
            holder: self.holder(id),
            record,
            takeover,
            ttl,
            done,
        });
        landed
    }
}
