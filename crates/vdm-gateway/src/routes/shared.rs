//! What several route modules use: request headers and parameters read
//! the same way everywhere, the page of a list, proto conventions (an empty
//! string or a 0 id means "absent"), and the clients of the optional
//! services.

use axum::http::HeaderMap;
use serde::Serialize;
use utoipa::ToSchema;
use vdm_kit::ErrorCode;
use vdm_kit::grpc::GrpcChannel;
use vdm_proto::metrics::v1::metrics_service_client::MetricsServiceClient;
use vdm_proto::rumor::v1::rumor_service_client::RumorServiceClient;

use crate::error::{GatewayError, GatewayResult};
use crate::state::AppState;

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

/// A page of a list.
#[derive(Debug, Serialize, ToSchema)]
pub struct ListJson<T> {
    items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    next_cursor: Option<String>,
}

impl<T> ListJson<T> {
    /// A page; an empty cursor means the last page.
    pub fn new(items: Vec<T>, next_cursor: String) -> ListJson<T> {
        ListJson {
            items,
            next_cursor: non_empty(next_cursor),
        }
    }
}

/// A proto string where empty means absent.
pub(crate) fn non_empty(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// Reads a time a client gives as Unix milliseconds or an RFC 3339 time;
/// times before 1970 read as 1970. The error names `field`.
pub fn parse_time(field: &str, raw: &str) -> GatewayResult<i64> {
    if let Ok(ms) = raw.parse::<i64>() {
        if ms < 0 {
            return Err(GatewayError::invalid(format!("{field} must not be negative")));
        }
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis().max(0))
        .map_err(|_| {
            GatewayError::invalid(format!(
                "{field} must be Unix milliseconds or an RFC 3339 time (2026-01-31T12:00:00Z), got {raw:?}"
            ))
        })
}

/// The schema of a time [`parse_time`] reads.
pub(crate) fn time_schema() -> utoipa::openapi::Schema {
    use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
    AnyOfBuilder::new()
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9]{1,15}$")),
        )
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        )
        .into()
}

/// The rumor service's client; a gateway without `VDM_RUMOR_URL` has none.
pub(crate) fn rumor_client(state: &AppState) -> GatewayResult<RumorServiceClient<GrpcChannel>> {
    state.rumor.clone().ok_or_else(|| {
        GatewayError::api(
            ErrorCode::Unavailable,
            "rumors are not enabled on this gateway (VDM_RUMOR_URL is not set)",
        )
    })
}

/// The metrics service's client; a gateway without `VDM_METRICS_URL` has none.
pub(crate) fn metrics_client(state: &AppState) -> GatewayResult<MetricsServiceClient<GrpcChannel>> {
    state.metrics.clone().ok_or_else(|| {
        GatewayError::api(
            ErrorCode::Unavailable,
            "the metrics service is not configured on this gateway (VDM_METRICS_URL is not set)",
        )
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn times_are_unix_ms_or_rfc3339() {
        assert_eq!(parse_time("since", "1500").unwrap(), 1500);
        assert_eq!(parse_time("from", "1795000000123").unwrap(), 1_795_000_000_123);
        assert_eq!(
            parse_time("from", "2026-11-18T11:06:40.123Z").unwrap(),
            1_795_000_000_123
        );
        assert_eq!(
            parse_time("since", "1969-12-31T23:59:59Z").unwrap(),
            0,
            "before 1970 reads as 1970"
        );
        assert!(parse_time("since", "-1").is_err());
        let err = parse_time("to", "yesterday").unwrap_err();
        assert!(err.to_string().starts_with("to must be"), "{err}");
    }
}
