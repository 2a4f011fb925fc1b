//! The rumor service (`vdm.rumor.v1`): rumors that spread between NPCs and
//! reach players, changing a little with every retelling.
//!
//! # Layout
//! - [`config`]: the service's settings.
//! - [`startup`]: [`Rumor`], the service on the kit's skeleton: what it
//!   connects and serves, with the spreading ticker beside it.
//! - [`grpc`]: protobuf in, [`service`] call, protobuf out.
//! - [`service`]: the use cases: create, spread, tell a player, list what
//!   someone knows, one spreading tick.
//! - [`transform`]: how a retelling changes the text: the local,
//!   deterministic transformer, the OpenAI-compatible client with its
//!   fallback, and the pipeline in front of either (cache, single-flight,
//!   batching).
//! - [`knowledge`]: who knows what, kept per NPC and per player in front
//!   of a talk's candidates, dropped by this replica's tellings and the
//!   bus's.
//! - [`peers`]: the NPC and world services' clients, the one place this
//!   crate speaks `vdm.npc.v1` and `vdm.world.v1`.
//! - [`domain`]: rules without IO: validation, distortion and truth, who
//!   tells whom in a tick.
//! - [`store`]: sea-orm entities, migrations and queries.
//! - [`error`]: [`RumorError`] and its mapping to `tonic::Status`.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod knowledge;
pub mod peers;
pub mod service;
pub mod startup;
pub mod store;
pub mod transform;

pub use config::RumorConfig;
pub use error::{RumorError, RumorResult};
pub use startup::Rumor;
