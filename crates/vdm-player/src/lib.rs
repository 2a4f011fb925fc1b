//! The player service (`vdm.player.v1`): accounts, profiles and
//! progression, the item catalog, inventories, and the ledger that explains
//! every balance.
//!
//! # Layout
//! - [`config`]: the service's settings (the level curve).
//! - [`startup`]: [`Player`], the service on the kit's skeleton: what it
//!   connects and serves.
//! - [`grpc`]: protobuf in, [`service`] call, protobuf out.
//! - [`service`]: the use cases: validation, storage and the events
//!   (`player.updated`, `player.level_up`) composed.
//! - [`domain`]: rules without IO: display names, the level curve, catalog
//!   items, and applying a change (gold, xp, items) to balances, which
//!   refuses negative balances and stacks past their limit.
//! - [`store`]: sea-orm entities, migrations and queries; every change of a
//!   balance is one transaction with its ledger rows (and its grant row).
//! - [`error`]: [`PlayerError`] and its mapping to `tonic::Status`.
//!
//! # Invariants
//! - A balance (gold, xp, units of an item) is never negative, and is the
//!   sum of its ledger rows.
//! - One stack per item per player, never above the item's `max_stack`; a
//!   change that would overflow a stack is refused whole.
//! - A grant id applies once: its row is written in the transaction that
//!   applies it, so a replay finds it and returns the first result.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod service;
pub mod startup;
pub mod store;

pub use config::PlayerConfig;
pub use error::{PlayerError, PlayerResult};
pub use startup::Player;
