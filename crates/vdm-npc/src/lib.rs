//! The NPC service (`vdm.npc.v1`): non-player characters, where they stand
//! on the hex map, their traits, each player's disposition with them, and
//! what they remember.
//!
//! # Layout
//! - [`config`]: the service's settings.
//! - [`startup`]: [`Npc`], the service on the kit's skeleton: what it
//!   connects and serves.
//! - [`grpc`]: protobuf in, [`service`] call, protobuf out.
//! - [`service`]: the use cases: validation, the world checks, storage and
//!   the read-through cache (NPCs by id, TTL 30 s, dropped on every write).
//! - [`world`]: the world service's client (regions, hexes, factions, the
//!   clock), the one place this crate speaks `vdm.world.v1`.
//! - [`domain`]: rules without IO: NPC, disposition and memory validation,
//!   which memories a full NPC forgets, pagination cursors.
//! - [`store`]: sea-orm entities, migrations and queries.
//! - [`error`]: [`NpcError`] and its mapping to `tonic::Status`.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod service;
pub mod startup;
pub mod store;
pub mod world;

pub use config::NpcConfig;
pub use error::{NpcError, NpcResult};
pub use startup::Npc;
