//! Factions and the relations between them (pairs never set are absent
//! and count as 0).

use std::collections::HashSet;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait};

use super::entities::{faction, faction_relation};
use super::{WorldStore, contended_or};
use crate::domain::{Faction, FactionRelation};
use crate::error::{WorldError, WorldResult};

impl WorldStore {
    /// Reads every faction in id order.
    pub async fn list_factions(&self) -> WorldResult<Vec<Faction>> {
        Ok(faction::Entity::find()
            .order_by_asc(faction::Column::Id)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|f| Faction { id: f.id, name: f.name })
            .collect())
    }

    /// Creates or renames a faction; returns whether it was created.
    pub async fn upsert_faction(&self, f: &Faction, now_ms: i64) -> WorldResult<bool> {
        let txn = self.db.begin().await?;
        let updated = faction::Entity::update_many()
            .col_expr(faction::Column::Name, Expr::value(f.name.clone()))
            .col_expr(faction::Column::UpdatedAtMs, Expr::value(now_ms))
            .filter(faction::Column::Id.eq(f.id))
            .exec(&txn)
            .await?;
        let created = updated.rows_affected == 0;
        if created {
            let inserted = faction::Entity::insert(faction::ActiveModel {
                id: Set(f.id),
                name: Set(f.name.clone()),
                created_at_ms: Set(now_ms),
                updated_at_ms: Set(now_ms),
            })
            .exec_without_returning(&txn)
            .await;
            if let Err(err) = inserted {
                return Err(contended_or(err, "faction"));
            }
        }
        txn.commit().await?;
        Ok(created)
    }

    /// Reads every stored relation (pairs never set are absent).
    pub async fn stored_relations(&self) -> WorldResult<Vec<FactionRelation>> {
        Ok(faction_relation::Entity::find()
            .order_by_asc(faction_relation::Column::FactionA)
            .order_by_asc(faction_relation::Column::FactionB)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|r| FactionRelation {
                faction_a: r.faction_a,
                faction_b: r.faction_b,
                score: r.score,
            })
            .collect())
    }

    /// Changes the score of the pair `(a, b)` (`a < b`, both existing) to
    /// `change(current score)`, in one transaction that holds both
    /// factions' rows, so concurrent adjustments add up.
    pub async fn change_relation(
        &self,
        (a, b): (i64, i64),
        change: impl FnOnce(i32) -> WorldResult<i32>,
        now_ms: i64,
    ) -> WorldResult<FactionRelation> {
        let txn = self.db.begin().await?;
        // A no-op write that locks both factions (and tells whether they exist).
        let locked = faction::Entity::update_many()
            .col_expr(faction::Column::UpdatedAtMs, Expr::col(faction::Column::UpdatedAtMs))
            .filter(faction::Column::Id.is_in([a, b]))
            .exec(&txn)
            .await?;
        if locked.rows_affected < 2 {
            let found: HashSet<i64> = faction::Entity::find()
                .filter(faction::Column::Id.is_in([a, b]))
                .all(&txn)
                .await?
                .into_iter()
                .map(|f| f.id)
                .collect();
            txn.rollback().await?;
            let missing = if found.contains(&a) { b } else { a };
            return Err(WorldError::FactionNotFound(missing));
        }
        let current = faction_relation::Entity::find_by_id((a, b))
            .one(&txn)
            .await?
            .map(|r| r.score)
            .unwrap_or(0);
        let score = match change(current) {
            Ok(score) => score,
            Err(err) => {
                txn.rollback().await?;
                return Err(err);
            }
        };
        faction_relation::Entity::insert(faction_relation::ActiveModel {
            faction_a: Set(a),
            faction_b: Set(b),
            score: Set(score),
            updated_at_ms: Set(now_ms),
        })
        .on_conflict(
            OnConflict::columns([faction_relation::Column::FactionA, faction_relation::Column::FactionB])
                .update_columns([faction_relation::Column::Score, faction_relation::Column::UpdatedAtMs])
                .to_owned(),
        )
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        Ok(FactionRelation {
            faction_a: a,
            faction_b: b,
            score,
        })
    }
}
