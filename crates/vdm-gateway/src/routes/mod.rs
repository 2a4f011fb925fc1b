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

/// The `Idempotency-Key` request header, for the OpenAPI document of the
/// creates that honour it (`idempotency_key` reads it).
pub struct IdempotencyKey;

impl utoipa::IntoParams for IdempotencyKey {
    fn into_params(
        _parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::Required;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        vec![
            ParameterBuilder::new()
                .name("Idempotency-Key")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "Makes a retried create safe: the same key and body answer the first create \
                     again (`idempotent-replayed: true`); the same key with another body is a 409",
                ))
                .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
                .build(),
        ]
    }
}

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
