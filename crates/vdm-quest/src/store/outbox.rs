//! The reward outbox: what completions owe the player service, written in
//! the completion's transaction (`QuestStore::save_player_quest`) and
//! drained by the relay (`crate::relay`).
//!
//! A row is `pending` until the player service acknowledged it
//! (`delivered`) or refused it for good (`failed`, with the reason). Rows
//! are not claimed: two relays may send one row at once, which the player
//! service's grant id makes harmless.

use sea_orm::ActiveValue::Set;
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect};

use super::QuestStore;
use super::entities::outbox;
use crate::domain::RewardGrant;
use crate::error::{QuestError, QuestResult};

/// The kind of a row that grants a quest's reward (`GrantReward`).
pub const KIND_REWARD: &str = "reward";

const PENDING: &str = "pending";
const DELIVERED: &str = "delivered";
const FAILED: &str = "failed";

/// A pending delivery, as the relay reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The row.
    pub id: i64,
    /// What to deliver.
    pub grant: RewardGrant,
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

/// Queues `grant` on `conn` (the completion's transaction). A grant id
/// queued already is left as it is: it names the same completion.
pub(super) async fn enqueue(conn: &impl ConnectionTrait, grant: &RewardGrant, now_ms: i64) -> QuestResult<()> {
    let payload = serde_json::to_string(grant)
        .map_err(|e| QuestError::Corrupt(format!("reward of grant {:?} does not encode: {e}", grant.grant_id)))?;
    outbox::Entity::insert(outbox::ActiveModel {
        grant_id: Set(grant.grant_id.clone()),
        kind: Set(KIND_REWARD.to_owned()),
        player_id: Set(grant.player_id),
        quest_id: Set(grant.quest_id),
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
    /// Up to `limit` pending rows due at `now_ms`, oldest first.
    pub async fn due_deliveries(&self, now_ms: i64, limit: u64) -> QuestResult<Vec<Pending>> {
        let rows = outbox::Entity::find()
            .filter(outbox::Column::Status.eq(PENDING))
            .filter(outbox::Column::NextAttemptAtMs.lte(now_ms))
            .order_by_asc(outbox::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter()
            .map(|row| {
                let grant: RewardGrant = serde_json::from_str(&row.payload)
                    .map_err(|e| QuestError::Corrupt(format!("outbox row {}: {e}", row.id)))?;
                Ok(Pending {
                    id: row.id,
                    grant,
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
    pub async fn set_payload(&self, id: i64, grant: &RewardGrant) -> QuestResult<()> {
        let payload = serde_json::to_string(grant)
            .map_err(|e| QuestError::Corrupt(format!("reward of grant {:?} does not encode: {e}", grant.grant_id)))?;
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

    /// What became of the delivery of `grant_id`, if one was queued.
    pub async fn delivery(&self, grant_id: &str) -> QuestResult<Option<OutboxState>> {
        let row = outbox::Entity::find()
            .filter(outbox::Column::GrantId.eq(grant_id))
            .filter(outbox::Column::Kind.eq(KIND_REWARD))
            .one(&self.db)
            .await?;
        Ok(row.map(|row| OutboxState {
            status: row.status,
            attempts: u32::try_from(row.attempts).unwrap_or(0),
            last_error: row.last_error,
        }))
    }
}
