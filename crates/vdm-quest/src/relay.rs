//! The reward relay: a background task of the quest service that delivers
//! what the reward outbox holds to the player service, so a completed
//! quest's reward reaches the player whatever restarts in between.
//!
//! Before a reward that raises standing is first sent, the relay asks the
//! NPC service for the giver's faction, and keeps the answer in the row.
//! Asked at delivery rather than at completion, so that completing a quest
//! never waits for (or fails with) the NPC service; kept in the row, so
//! that every retry sends the same payload under the grant id, even if the
//! NPC changes faction meanwhile.
//!
//! It wakes when this process queues a reward ([`Notify`]) and polls as a
//! fallback (rewards queued by other replicas, retries that came due).
//! Several replicas may run it at once, and one row may be sent twice (by
//! two relays, or again after a crash between the player service's answer
//! and the row being marked): the player service applies a grant id once
//! and answers a replay with the first result, so a double send is
//! harmless and the player gets each reward exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::domain::{GiverFaction, retry_delay};
use crate::npcs::Npcs;
use crate::players::{Players, Refusal};
use crate::store::QuestStore;
use crate::store::outbox::Pending;

/// Most rows one pass reads.
const BATCH: u64 = 50;
/// How long the relay waits after its database failed.
const DB_RETRY: Duration = Duration::from_secs(1);

/// Delivers the reward outbox to the player service.
pub struct Relay {
    store: QuestStore,
    players: Players,
    npcs: Option<Npcs>,
    wake: Arc<Notify>,
    poll: Duration,
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Pass {
    /// Rows read.
    read: usize,
    /// Whether the player service was unreachable (the rest waits).
    stalled: bool,
}

impl Relay {
    /// A relay over the quest store's outbox; `wake` is notified by the
    /// service when it queues a reward. Without `npcs`, rewards raise no
    /// standing.
    pub fn new(store: QuestStore, players: Players, npcs: Option<Npcs>, wake: Arc<Notify>, poll: Duration) -> Relay {
        Relay {
            store,
            players,
            npcs,
            wake,
            poll,
        }
    }

    /// Runs until `stop` is cancelled. A pass in progress finishes its
    /// current delivery first; what it did not reach stays pending.
    pub async fn run(self, stop: CancellationToken) {
        tracing::info!(poll_ms = self.poll.as_millis() as u64, "reward relay started");
        loop {
            let wait = match self.pass().instrument(tracing::info_span!("outbox_relay_pass")).await {
                // A full batch: more may be due at once.
                Ok(pass) if pass.read as u64 == BATCH && !pass.stalled => Duration::ZERO,
                Ok(_) => self.poll,
                Err(err) => {
                    tracing::warn!(error = %vdm_kit::service::error_chain(&err), "reward relay: outbox unreadable");
                    DB_RETRY
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("reward relay stopped");
    }

    /// Delivers the rows that are due, oldest first; stops at the first
    /// row the player service could not take (it is down: the others
    /// would fail the same way).
    async fn pass(&self) -> crate::QuestResult<Pass> {
        let due = self.store.due_deliveries(vdm_kit::now_ms(), BATCH).await?;
        let mut pass = Pass {
            read: due.len(),
            stalled: false,
        };
        for row in due {
            if !self.deliver(row).await? {
                pass.stalled = true;
                break;
            }
        }
        let pending = self.store.pending_deliveries().await?;
        metrics::gauge!("vdm_outbox_pending").set(pending as f64);
        Ok(pass)
    }

    /// Sends one row and records the answer; `false` when it is to be
    /// tried again later.
    async fn deliver(&self, mut row: Pending) -> crate::QuestResult<bool> {
        if row.grant.needs_faction() {
            let faction = match &self.npcs {
                None => GiverFaction::None,
                Some(npcs) => match npcs.faction_of(row.grant.giver_npc_id).await {
                    Ok(faction) => faction,
                    Err(status) => {
                        self.retry(&row, &format!("npc {:?}: {}", status.code(), status.message()))
                            .await?;
                        return Ok(false);
                    }
                },
            };
            row.grant.giver_faction = Some(faction);
            self.store.set_payload(row.id, &row.grant).await?;
        }
        let grant = &row.grant;
        let span = tracing::info_span!(
            "outbox_deliver",
            grant.id = %grant.grant_id,
            player.id = grant.player_id,
            quest.id = grant.quest_id,
            attempt = row.attempts + 1,
        );
        async {
            let started = Instant::now();
            let answer = self.players.grant_reward(grant).await;
            let attempts = row.attempts + 1;
            match answer {
                Ok(()) => {
                    let now = vdm_kit::now_ms();
                    self.store.mark_delivered(row.id, now).await?;
                    metrics::counter!("vdm_outbox_delivered_total", "kind" => "reward").increment(1);
                    let waited = Duration::from_millis(u64::try_from(now - row.created_at_ms).unwrap_or(0));
                    metrics::histogram!("vdm_outbox_delivery_seconds", "kind" => "reward").record(waited.as_secs_f64());
                    tracing::info!(
                        call_ms = started.elapsed().as_millis() as u64,
                        waited_ms = waited.as_millis() as u64,
                        "reward delivered"
                    );
                    Ok(true)
                }
                Err(Refusal::Permanent(status)) => {
                    let reason = format!("{:?}: {}", status.code(), status.message());
                    self.store.mark_failed(row.id, attempts, &reason).await?;
                    metrics::counter!("vdm_outbox_failed_total", "kind" => "reward").increment(1);
                    tracing::error!(reason = %reason, "reward refused by the player service; not retried");
                    Ok(true)
                }
                Err(Refusal::Transient(status)) => {
                    self.retry(&row, &format!("{:?}: {}", status.code(), status.message()))
                        .await?;
                    Ok(false)
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Leaves a row pending, due again after its backoff.
    async fn retry(&self, row: &Pending, error: &str) -> crate::QuestResult<()> {
        let attempts = row.attempts + 1;
        let delay = retry_delay(attempts);
        let next = vdm_kit::now_ms() + delay.as_millis() as i64;
        self.store.mark_retry(row.id, attempts, next, error).await?;
        metrics::counter!("vdm_outbox_retries_total", "kind" => "reward").increment(1);
        tracing::warn!(
            grant.id = %row.grant.grant_id,
            error = %error,
            retry_in_ms = delay.as_millis() as u64,
            "reward not delivered; will retry"
        );
        Ok(())
    }
}
