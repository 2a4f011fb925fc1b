//! The REST routes under `/v1`, one module per resource, plus the
//! operational endpoints.

pub mod ops;
pub mod quests;
