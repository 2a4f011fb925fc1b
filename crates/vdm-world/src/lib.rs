//! The world service (`vdm.world.v1`): regions on a hex map, factions and
//! their relations, the world clock, and world events.
//!
//! # Layout
//! - [`config`]: the service's settings.
//! - [`startup`]: [`World`], the service on the kit's skeleton: what it
//!   connects and serves and loads the clock.
//! - [`grpc`]: protobuf in, [`service`] call, protobuf out.
//! - [`service`]: the use cases: validation, storage and the read-through
//!   caches (regions by id, the region list, hex lookups, factions and
//!   relations; dropped on every write to them).
//! - [`domain`]: rules without IO: hex geometry, region and faction
//!   validation, relation scores, the clock, events, pagination cursors.
//! - [`store`]: sea-orm entities, migrations and queries, one file per
//!   aggregate (regions, factions, events, clock).
//! - [`error`]: [`WorldError`] and its mapping to `tonic::Status`.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod service;
pub mod startup;
pub mod store;

pub use config::WorldConfig;
pub use error::{WorldError, WorldResult};
pub use startup::World;
