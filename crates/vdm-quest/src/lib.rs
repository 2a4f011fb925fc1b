//! The quest service (`vdm.quest.v1`): quest definitions, and each player's
//! progress through them.
//!
//! # Layout
//! - [`config`]: the service's settings.
//! - [`startup`]: [`Quest`], the service on the kit's skeleton: what it
//!   connects and serves.
//! - [`grpc`]: protobuf in, [`service`] call, protobuf out.
//! - [`service`]: the use cases: validation, storage and the read-through
//!   cache (quests by id, TTL 30 s, dropped on every write) composed; the
//!   definitions its own writes and lists need are reused for up to 2 s
//!   in front of the cache (`vdm_kit::memo`).
//! - [`domain`]: rules without IO: new-quest validation, the player quest
//!   state machine, pagination cursors.
//! - [`store`]: sea-orm entities, migrations and queries.
//! - [`players`]: the player service, asked for a player's level when a
//!   quest has a level requirement, and given completed quests' rewards.
//! - [`npcs`]: the NPC service, asked for a quest giver's faction when a
//!   reward is first delivered, and given the giver's change of
//!   disposition toward the player.
//! - [`recent`]: the player quests this replica wrote, with their row
//!   versions: the next write to one starts from there instead of a read
//!   (the write is conditional on the version, so a stale entry costs a
//!   retry, never a lost update).
//! - [`relay`]: the background task that delivers the outbox (rows written
//!   with each completion: the reward to the player service, the giver's
//!   disposition to the NPC service), retrying each until it is
//!   acknowledged or refused for good.
//! - [`error`]: [`QuestError`] and its mapping to `tonic::Status`.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod npcs;
pub mod players;
pub mod recent;
pub mod relay;
pub mod service;
pub mod startup;
pub mod store;

pub use config::QuestConfig;
pub use error::{QuestError, QuestResult};
pub use startup::Quest;
