//! The REST routes under `/v1`, one module per resource, plus the
//! operational endpoints.

pub mod bootstrap;
pub mod dashboard;
pub mod npcs;
pub mod ops;
pub mod quests;
pub mod rumors;
pub mod stats;
pub mod telemetry;
pub mod world;

use axum::http::HeaderMap;

use crate::error::{GatewayError, GatewayResult};

/// The `Idempotency-Key` header of a create (empty when absent).
pub(crate) fn idempotency_key(headers: &HeaderMap) -> GatewayResult<String> {
    match headers.get("idempotency-key") {
        None => Ok(String::new()),
        Some(v) => v
            .to_str()
            .map(str::to_owned)
            .map_err(|_| GatewayError::invalid("Idempotency-Key must be printable ASCII")),
    }
}

/// Refuses `limit=0` (the services read 0 as "the default").
pub(crate) fn check_limit(limit: Option<u32>) -> GatewayResult<u32> {
    match limit {
        Some(0) => Err(GatewayError::invalid("limit must be between 1 and 100")),
        other => Ok(other.unwrap_or(0)),
    }
}
