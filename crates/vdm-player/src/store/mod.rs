//! Reading and writing the player tables.
//!
//! - [`accounts`]: sign-in, session families, display names.
//! - [`legacy`]: importing the accounts a gateway kept before accounts
//!   moved here (`vdm migrate accounts`).
//! - [`balances`]: the catalog, inventories, the ledger, and applying a
//!   change of balances in one transaction with its ledger rows and its
//!   grant row.

pub mod accounts;
pub mod balances;
pub mod entities;
pub mod legacy;
pub mod migration;

use sea_orm::{DatabaseConnection, DatabaseTransaction};

use self::entities::player;
use crate::domain::{LevelCurve, Profile};
use crate::error::{PlayerError, PlayerResult};

/// The player tables behind one database pool.
#[derive(Clone)]
pub struct PlayerStore {
    db: DatabaseConnection,
    levels: LevelCurve,
}

impl PlayerStore {
    /// Wraps a connected, migrated pool; profiles get their level from
    /// `levels`.
    pub fn new(db: DatabaseConnection, levels: LevelCurve) -> PlayerStore {
        PlayerStore { db, levels }
    }

    /// Answers whether the database answers a trivial query.
    pub async fn ping(&self) -> PlayerResult<()> {
        self.db.ping().await.map_err(PlayerError::from)
    }

    /// The level curve profiles are read with.
    pub fn levels(&self) -> &LevelCurve {
        &self.levels
    }

    fn profile(&self, row: &player::Model) -> Profile {
        Profile {
            player_id: row.id,
            display_name: row.display_name.clone(),
            xp: row.xp,
            level: self.levels.level(row.xp),
            next_level_xp: self.levels.next_level_xp(row.xp),
            gold: row.gold,
            created_at_ms: row.created_at_ms,
            updated_at_ms: row.updated_at_ms,
        }
    }
}

/// Rolls `txn` back and returns `err` (a refused change writes nothing).
async fn abort<T>(txn: DatabaseTransaction, err: PlayerError) -> PlayerResult<T> {
    txn.rollback().await?;
    Err(err)
}
