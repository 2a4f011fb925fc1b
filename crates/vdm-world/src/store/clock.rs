//! The game clock: one row, its anchor and rate, so game time survives
//! restarts.

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter};

use super::WorldStore;
use super::entities::clock;
use crate::domain::Clock;
use crate::error::{WorldError, WorldResult};

impl WorldStore {
    /// Reads the stored clock, storing `initial` first when there is none
    /// (the first start of the world).
    pub async fn load_clock(&self, initial: Clock) -> WorldResult<Clock> {
        clock::Entity::insert(clock::ActiveModel {
            id: Set(1),
            anchor_game_ms: Set(initial.anchor_game_ms),
            anchor_real_ms: Set(initial.anchor_real_ms),
            rate: Set(initial.rate),
        })
        .on_conflict(OnConflict::column(clock::Column::Id).do_nothing().to_owned())
        .exec_without_returning(&self.db)
        .await?;
        let row = clock::Entity::find_by_id(1)
            .one(&self.db)
            .await?
            .ok_or_else(|| WorldError::Corrupt("the world clock row is missing".to_owned()))?;
        Ok(Clock {
            anchor_game_ms: row.anchor_game_ms,
            anchor_real_ms: row.anchor_real_ms,
            rate: row.rate,
        })
    }

    /// Stores a new anchor and rate.
    pub async fn save_clock(&self, clock: Clock) -> WorldResult<()> {
        clock::Entity::update_many()
            .col_expr(clock::Column::AnchorGameMs, Expr::value(clock.anchor_game_ms))
            .col_expr(clock::Column::AnchorRealMs, Expr::value(clock.anchor_real_ms))
            .col_expr(clock::Column::Rate, Expr::value(clock.rate))
            .filter(clock::Column::Id.eq(1))
            .exec(&self.db)
            .await?;
        Ok(())
    }
}
