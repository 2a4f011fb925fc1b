//! Reading and writing the world tables, one file per aggregate: each
//! holds an `impl WorldStore` block with that aggregate's queries. Reads
//! take a constant number of queries (no N+1): a region with its cells and
//! its neighbours in three, the whole map in two, a page of events with
//! their regions in two.
//!
//! - `regions.rs`: regions and their hex cells.
//! - `factions.rs`: factions and the relations between them.
//! - `events.rs`: world events, published idempotently.
//! - `clock.rs`: the game clock's anchor.

pub mod entities;
pub mod migration;

mod clock;
mod events;
mod factions;
mod regions;

use sea_orm::{DatabaseConnection, DbErr};

use vdm_kit::idempotency::is_unique_violation;

use crate::error::{WorldError, WorldResult};

pub use vdm_kit::idempotency::Created;

/// The world tables behind one database pool.
#[derive(Clone)]
pub struct WorldStore {
    db: DatabaseConnection,
}

impl WorldStore {
    /// Wraps a connected, migrated pool.
    pub fn new(db: DatabaseConnection) -> WorldStore {
        WorldStore { db }
    }

    /// Answers whether the database answers a trivial query.
    pub async fn ping(&self) -> WorldResult<()> {
        self.db.ping().await.map_err(WorldError::from)
    }
}

/// A unique violation means a concurrent writer inserted the same key first.
fn contended_or(err: DbErr, what: &'static str) -> WorldError {
    if is_unique_violation(&err) {
        WorldError::Contended(what)
    } else {
        WorldError::from(err)
    }
}
