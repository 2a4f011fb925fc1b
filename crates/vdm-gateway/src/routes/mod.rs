//! The REST routes under `/v1`, one module per resource, plus the
//! operational endpoints; [`shared`] holds what several of them use.

pub mod bootstrap;
pub mod dashboard;
pub mod docs;
pub mod npcs;
pub mod ops;
pub mod players;
pub mod quests;
pub mod rumors;
pub mod shared;
pub mod stats;
pub mod telemetry;
pub mod world;
pub mod world_admin;
