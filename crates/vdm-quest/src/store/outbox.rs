//! The reward outbox: what completions owe other services, written in the
//! completion's transaction (`QuestStore::save_player_quest`) and drained
//! by the relay (`crate::relay`). One row per receiver and id: a `reward`
//! row (the player service's `GrantReward`, under the grant id) and a
//! `disposition` row (the NPC service's `AdjustDisposition`, under its
//! idempotency key), so each is retried on its own and a receiver that is
//! down holds up only its own rows.
//!
//! A row is `pending` until its receiver acknowledged it (`delivered`) or
//! refused it for good (`failed`, with the reason). Rows are not claimed:
//! two relays may send one row at once, which the receiver's idempotency
//! (grant id, key) makes harmless.

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::QuestStore;
use super::entities::outbox;
use crate::domain::{DispositionChange, RewardGrant};
use crate::error::{QuestError, QuestResult};

/// The kind of a row that grants a quest's reward (`GrantReward`).
pub const KIND_REWARD: &str = "reward";
/// The kind of a row that changes the giver's disposition
/// (`AdjustDisposition`).
pub const KIND_DISPOSITION: &str = "disposition";

const PENDING: &str = "pending";
const DELIVERED: &str = "delivered";
const FAILED: &str = "failed";

/// What one outbox row delivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// A reward, to the player service.
    Reward(RewardGrant),
    /// A change of disposition, to the NPC service.
    Disposition(DispositionChange),
}

impl Delivery {
    /// The row's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Delivery::Reward(_) => KIND_REWARD,
            Delivery::Disposition(_) => KIND_DISPOSITION,
        }
    }

    /// The id its receiver applies once.
    pub fn id(&self) -> &str {
        match self {
            Delivery::Reward(grant) => &grant.grant_id,
            Delivery::Disposition(change) => &change.key,
        }
    }

    fn player_and_quest(&self) -> (i64, i64) {
        match self {
            Delivery::Reward(grant) => (grant.player_id, grant.quest_id),
            Delivery::Disposition(change) => (change.player_id, change.quest_id),
        }
    }

    fn encode(&self) -> QuestResult<String> {
        let encoded = match self {
            Delivery::Reward(grant) => serde_json::to_string(grant),
            Delivery::Disposition(change) => serde_json::to_string(change),
        };
        encoded.map_err(|e| QuestError::Corrupt(format!("{} {:?} does not encode: {e}", self.kind(), self.id())))
    }

    fn decode(kind: &str, payload: &str) -> Result<Delivery, String> {
        match kind {
            KIND_REWARD => serde_json::from_str(payload)
                .map(Delivery::Reward)
                .map_err(|e| e.to_string()),
            KIND_DISPOSITION => serde_json::from_str(payload)
                .map(Delivery::Disposition)
                .map_err(|e| e.to_string()),
            other => Err(format!("unknown kind {other:?}")),
        }
    }
}

/// A pending delivery, as the relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The row.
    pub id: i64,
    /// What to deliver.
    pub delivery: Delivery,
    /// Deliveries tried so far.
    pub attempts: u32,
    /// When the completion was written (Unix ms).
    pub created_at_ms: i64,
}

/// A stored row, for reading back what became of a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxState {
    /// `pending`, `delivered` or `failed`.
    pub status: String,
    /// Deliveries tried and not acknowledged.
    pub attempts: u32,
    /// Why the last try failed.
    pub last_error: Option<String>,
}

/// Queues `delivery` on `conn` (the completion's transaction). An id
/// queued already for its kind is left as it is: it names the same
/// completion.
pub(super) async fn enqueue(conn: &impl ConnectionTrait, delivery: &Delivery, now_ms: i64) -> QuestResult<()> {
    let payload = delivery.encode()?;
    let (player_id, quest_id) = delivery.player_and_quest();
    outbox::Entity::insert(outbox::ActiveModel {
        grant_id: Set(delivery.id().to_owned()),
        kind: Set(delivery.kind().to_owned()),
        player_id: Set(player_id),
        quest_id: Set(quest_id),
        payload: Set(payload),
        status: Set(PENDING.to_owned()),
        attempts: Set(0),
        next_attempt_at_ms: Set(now_ms),
        last_error: Set(None),
        created_at_ms: Set(now_ms),
        delivered_at_ms: Set(None),
        ..Default::default()
    })
    .on_conflict(
        OnConflict::columns([outbox::Column::GrantId, outbox::Column::Kind])
            .do_nothing()
            .to_owned(),
    )
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

impl QuestStore {
    /// Up to `limit` pending rows of these kinds due at `now_ms`, oldest
    /// first.
    pub async fn due_deliveries(&self, kinds: &[&str], now_ms: i64, limit: u64) -> QuestResult<Vec<Pending>> {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Status.eq(PENDING))
            .filter(outbox::Column::Kind.is_in(kinds.iter().copied()))
            .filter(outbox::Column::NextAttemptAtMs.lte(now_ms))
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let delivery = Delivery::decode(&row.kind, &row.payload)
                    .map_err(|e| QuestError::Corrupt(format!("outbox row {}: {e}", row.id)))?;
                Ok(Pending {
                    id: row.id,
                    delivery,
                    attempts: u32::try_from(row.attempts).unwrap_or(0),
                    created_at_ms: row.created_at_ms,
                })
            })
            .collect()
    }

    /// Marks a row delivered.
    pub async fn mark_delivered(&self, id: i64, now_ms: i64) -> QuestResult<()> {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(DELIVERED))
            .col_expr(outbox::Column::DeliveredAtMs, Expr::value(now_ms))
            .col_expr(outbox::Column::LastError, Expr::value(Option::<String>::None))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::Status.eq(PENDING))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Rewrites what a pending row delivers: the giver's faction, once
    /// asked, is kept so every later try sends the same payload.
    pub async fn set_payload(&self, id: i64, delivery: &Delivery) -> QuestResult<()> {
        let payload = delivery.encode()?;
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Payload, Expr::value(payload))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::Status.eq(PENDING))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Records a failed try of a row: it is due again at `next_at_ms`.
    pub async fn mark_retry(&self, id: i64, attempts: u32, next_at_ms: i64, error: &str) -> QuestResult<()> {
        outbox::Entity::update_many()
            .col_expr(
                outbox::Column::Attempts,
                Expr::value(i32::try_from(attempts).unwrap_or(i32::MAX)),
            )
            .col_expr(outbox::Column::NextAttemptAtMs, Expr::value(next_at_ms))
            .col_expr(outbox::Column::LastError, Expr::value(error))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::Status.eq(PENDING))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Marks a row refused for good, with the reason.
    pub async fn mark_failed(&self, id: i64, attempts: u32, reason: &str) -> QuestResult<()> {
        outbox::Entity::update_many()
            .col_expr(outbox::Column::Status, Expr::value(FAILED))
            .col_expr(
                outbox::Column::Attempts,
                Expr::value(i32::try_from(attempts).unwrap_or(i32::MAX)),
            )
            .col_expr(outbox::Column::LastError, Expr::value(reason))
            .filter(outbox::Column::Id.eq(id))
            .filter(outbox::Column::Status.eq(PENDING))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// How many rows wait for delivery.
    pub async fn pending_deliveries(&self) -> QuestResult<u64> {
        Ok(outbox::Entity::find()
            .filter(outbox::Column::Status.eq(PENDING))
            .count(&self.db)
            .await?)
    }

    /// What became of the delivery of `id` (a grant id or a disposition
    /// key) of this kind, if one was queued.
    pub async fn delivery(&self, kind: &str, id: &str) -> QuestResult<Option<OutboxState>> {
        let row = outbox::Entity::find()
            .filter(outbox::Column::GrantId.eq(id))
            .filter(outbox::Column::Kind.eq(kind))
            .one(&self.db)
            .await?;
        Ok(row.map(|row| OutboxState {
            status: row.status,
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            last_error: row.last_error,
        }))
    }
}
