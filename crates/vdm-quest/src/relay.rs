//! The outbox relay: a background task of the quest service that delivers
//! what the outbox holds, so what a completed quest owes reaches its
//! receiver whatever restarts in between: the reward to the player service
//! (`GrantReward`, under the grant id) and the giver's change of
//! disposition to the NPC service (`AdjustDisposition`, under its key).
//!
//! Before a reward that raises standing is first sent, the relay asks the
//! NPC service for the giver's faction, and keeps the answer in the row.
//! Asked at delivery rather than at completion, so that completing a quest
//! never waits for (or fails with) the NPC service; kept in the row, so
//! that every retry sends the same payload under the grant id, even if the
//! NPC changes faction meanwhile.
//!
//! It wakes when this process queues a delivery ([`Notify`]) and polls as
//! a fallback (rows queued by other replicas, retries that came due).
//! Several replicas may run it at once, and one row may be sent twice (by
//! two relays, or again after a crash between the receiver's answer and
//! the row being marked): each receiver applies an id once and answers a
//! replay without applying it again, so a double send is harmless and
//! each effect lands exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tonic::Code;
use tracing::Instrument;

use crate::domain::{DispositionChange, GiverFaction, RewardGrant, retry_delay};
use crate::npcs::Npcs;
use crate::players::Players;
use crate::store::QuestStore;
use crate::store::outbox::{Delivery, KIND_DISPOSITION, KIND_REWARD, Pending};

/// Most rows one pass reads.
const BATCH: u64 = 50;
/// How long the relay waits after its database failed.
const DB_RETRY: Duration = Duration::from_secs(1);

/// Delivers the outbox to the player and NPC services.
pub struct Relay {
    store: QuestStore,
    players: Option<Players>,
    npcs: Option<Npcs>,
    wake: Arc<Notify>,
    poll: Duration,
}

/// A service the relay delivers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Receiver {
    Players,
    Npcs,
}

/// What one delivery came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sent {
    /// Acknowledged, or refused for good: the row is settled.
    Settled,
    /// This receiver could not take it: the row waits for a retry, and the
    /// pass sends that receiver nothing more.
    Stalled(Receiver),
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Pass {
    /// Rows read.
    read: usize,
    /// Whether a receiver was unreachable (its rows wait).
    stalled: bool,
}

impl Relay {
    /// A relay over the quest store's outbox; `wake` is notified by the
    /// service when it queues a delivery. Rewards wait without `players`,
    /// dispositions without `npcs`; without `npcs`, rewards raise no
    /// standing.
    pub fn new(
        store: QuestStore,
        players: Option<Players>,
        npcs: Option<Npcs>,
        wake: Arc<Notify>,
        poll: Duration,
    ) -> Relay {
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
        tracing::info!(
            poll_ms = self.poll.as_millis() as u64,
            kinds = ?self.kinds(),
            "outbox relay started"
        );
        loop {
            let wait = match self.pass().instrument(tracing::info_span!("outbox_relay_pass")).await {
                // A full batch: more may be due at once.
                Ok(pass) if pass.read as u64 == BATCH && !pass.stalled => Duration::ZERO,
                Ok(_) => self.poll,
                Err(err) => {
                    tracing::warn!(error = %vdm_kit::service::error_chain(&err), "outbox relay: outbox unreadable");
                    DB_RETRY
                }
            };
            tokio::select! {
                () = stop.cancelled() => break,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(wait) => {}
            }
        }
        tracing::info!("outbox relay stopped");
    }

    /// The kinds of rows this relay has a receiver for.
    fn kinds(&self) -> Vec<&'static str> {
        let mut kinds = Vec::new();
        if self.players.is_some() {
            kinds.push(KIND_REWARD);
        }
        if self.npcs.is_some() {
            kinds.push(KIND_DISPOSITION);
        }
        kinds
    }

    /// Delivers the rows that are due, oldest first; once a receiver could
    /// not take a row, the pass sends it nothing more (it is down: the
    /// others would fail the same way), and goes on with the other's rows.
    async fn pass(&self) -> crate::QuestResult<Pass> {
        let due = self
            .store
            .due_deliveries(&self.kinds(), vdm_kit::now_ms(), BATCH)
            .await?;
        let mut pass = Pass {
            read: due.len(),
            stalled: false,
        };
        let mut stalled: Vec<Receiver> = Vec::new();
        for row in due {
            let needs = match &row.delivery {
                Delivery::Reward(grant) if grant.needs_faction() && self.npcs.is_some() => {
                    &[Receiver::Players, Receiver::Npcs][..]
                }
                Delivery::Reward(_) => &[Receiver::Players][..],
                Delivery::Disposition(_) => &[Receiver::Npcs][..],
            };
            if needs.iter().any(|r| stalled.contains(r)) {
                continue;
            }
            if let Sent::Stalled(receiver) = self.deliver(row).await? {
                stalled.push(receiver);
                pass.stalled = true;
            }
        }
        let pending = self.store.pending_deliveries().await?;
        metrics::gauge!("vdm_outbox_pending").set(pending as f64);
        Ok(pass)
    }

    /// Sends one row and records the answer.
    async fn deliver(&self, row: Pending) -> crate::QuestResult<Sent> {
        let (player_id, quest_id) = match &row.delivery {
            Delivery::Reward(grant) => (grant.player_id, grant.quest_id),
            Delivery::Disposition(change) => (change.player_id, change.quest_id),
        };
        let span = tracing::info_span!(
            "outbox_deliver",
            kind = row.delivery.kind(),
            delivery.id = %row.delivery.id(),
            player.id = player_id,
            quest.id = quest_id,
            attempt = row.attempts + 1,
        );
        async {
            match row.delivery.clone() {
                Delivery::Reward(grant) => self.deliver_reward(&row, grant).await,
                Delivery::Disposition(change) => self.deliver_disposition(&row, &change).await,
            }
        }
        .instrument(span)
        .await
    }

    /// Sends a reward to the player service, after asking the giver's
    /// faction when the reward raises standing and it is not known yet.
    async fn deliver_reward(&self, row: &Pending, mut grant: RewardGrant) -> crate::QuestResult<Sent> {
        let Some(players) = &self.players else {
            return Ok(Sent::Stalled(Receiver::Players));
        };
        if grant.needs_faction() {
            let faction = match &self.npcs {
                None => GiverFaction::None,
                Some(npcs) => match npcs.faction_of(grant.giver_npc_id).await {
                    Ok(faction) => faction,
                    Err(status) => {
                        self.retry(row, &format!("npc {:?}: {}", status.code(), status.message()))
                            .await?;
                        return Ok(Sent::Stalled(Receiver::Npcs));
                    }
                },
            };
            grant.giver_faction = Some(faction);
            self.store.set_payload(row.id, &Delivery::Reward(grant.clone())).await?;
        }
        let started = Instant::now();
        if grant.is_empty() {
            // Standing alone, and the giver has no faction: nothing to send.
            tracing::info!("reward moves nothing; settled without a call");
            return self.settle(row, Receiver::Players, started, Ok(())).await;
        }
        let answer = players.grant_reward(&grant).await;
        self.settle(row, Receiver::Players, started, answer).await
    }

    /// Sends a change of the giver's disposition to the NPC service.
    async fn deliver_disposition(&self, row: &Pending, change: &DispositionChange) -> crate::QuestResult<Sent> {
        let Some(npcs) = &self.npcs else {
            return Ok(Sent::Stalled(Receiver::Npcs));
        };
        let started = Instant::now();
        let answer = npcs.adjust_disposition(change).await;
        if let Ok(score) = answer {
            tracing::info!(
                npc.id = change.npc_id,
                delta = change.delta,
                score,
                "disposition applied"
            );
        }
        self.settle(row, Receiver::Npcs, started, answer.map(|_| ())).await
    }

    /// Records a receiver's answer to a row: delivered, refused for good,
    /// or to be tried again.
    async fn settle(
        &self,
        row: &Pending,
        receiver: Receiver,
        started: Instant,
        answer: Result<(), tonic::Status>,
    ) -> crate::QuestResult<Sent> {
        let kind = row.delivery.kind();
        match answer {
            Ok(()) => {
                let now = vdm_kit::now_ms();
                self.store.mark_delivered(row.id, now).await?;
                metrics::counter!("vdm_outbox_delivered_total", "kind" => kind).increment(1);
                let waited = Duration::from_millis(u64::try_from(now - row.created_at_ms).unwrap_or(0));
                metrics::histogram!("vdm_outbox_delivery_seconds", "kind" => kind).record(waited.as_secs_f64());
                tracing::info!(
                    call_ms = started.elapsed().as_millis() as u64,
                    waited_ms = waited.as_millis() as u64,
                    "outbox row delivered"
                );
                Ok(Sent::Settled)
            }
            Err(status) if is_permanent(status.code()) => {
                let reason = format!("{:?}: {}", status.code(), status.message());
                self.store.mark_failed(row.id, row.attempts + 1, &reason).await?;
                metrics::counter!("vdm_outbox_failed_total", "kind" => kind).increment(1);
                tracing::error!(reason = %reason, "outbox row refused by its receiver; not retried");
                Ok(Sent::Settled)
            }
            Err(status) => {
                self.retry(row, &format!("{:?}: {}", status.code(), status.message()))
                    .await?;
                Ok(Sent::Stalled(receiver))
            }
        }
    }

    /// Leaves a row pending, due again after its backoff.
    async fn retry(&self, row: &Pending, error: &str) -> crate::QuestResult<()> {
        let attempts = row.attempts + 1;
        let delay = retry_delay(attempts);
        let next = vdm_kit::now_ms() + delay.as_millis() as i64;
        self.store.mark_retry(row.id, attempts, next, error).await?;
        let kind = row.delivery.kind();
        metrics::counter!("vdm_outbox_retries_total", "kind" => kind).increment(1);
        tracing::warn!(
            kind,
            delivery.id = %row.delivery.id(),
            error = %error,
            retry_in_ms = delay.as_millis() as u64,
            "outbox row not delivered; will retry"
        );
        Ok(())
    }
}

/// Whether a status refuses the request itself, so that sending it again
/// cannot succeed (a bad payload, an unknown player, item or NPC, a full
/// stack, an id used for another payload). Anything else (the receiver
/// down, slow, overloaded, or failing inside) may succeed later.
fn is_permanent(code: Code) -> bool {
    matches!(
        code,
        Code::InvalidArgument | Code::NotFound | Code::FailedPrecondition | Code::AlreadyExists | Code::OutOfRange
    )
}
