//! Unity client telemetry: a player uploads batches of its own performance
//! samples (`POST /v1/telemetry/client`); anyone signed in reads the
//! percentiles of any sample field (`GET /v1/stats/client?metric=`). The
//! metrics service checks every field; its 400 names the first bad one.

use std::collections::BTreeMap;

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdm_proto::metrics::v1 as pb;

use super::shared::metrics_client;
use crate::auth::{Caller, Player};
use crate::error::{ErrorBody, GatewayResult};
use crate::negotiate::{Body, Format, NoQuery, QueryArgs, Reply};
use crate::state::AppState;

/// `POST /v1/telemetry/client` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientBatchJson {
    /// The client build (`1.4.2`).
    #[schema(pattern = "^[A-Za-z0-9.+_-]{1,32}$")]
    pub client_version: String,
    /// The device class (`desktop`, `mobile`, ...).
    #[schema(pattern = "^[a-z0-9_]{1,32}$")]
    pub device_class: String,
    /// The samples, 1 to 500.
    #[schema(min_items = 1, max_items = 500)]
    pub samples: Vec<ClientSampleJson>,
}

/// One frame's measurements; all but the frame time are optional. Times
/// are 0 to 10 000 ms; allocations are bytes.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClientSampleJson {
    /// Frame time.
    #[schema(minimum = 0, maximum = 10_000)]
    pub frame_time_ms: f64,
    /// GC collections during the frame (a whole number).
    #[schema(minimum = 0, maximum = 1_000, multiple_of = 1)]
    pub gc_collections: Option<f64>,
    /// GC pause time.
    #[schema(minimum = 0, maximum = 10_000)]
    pub gc_pause_ms: Option<f64>,
    /// Managed memory.
    #[schema(minimum = 0, maximum = 1_048_576)]
    pub memory_mb: Option<f64>,
    /// Input-to-action latency.
    #[schema(minimum = 0, maximum = 10_000)]
    pub input_latency_ms: Option<f64>,
    /// Event dispatch latency.
    #[schema(minimum = 0, maximum = 10_000)]
    pub event_dispatch_ms: Option<f64>,
    /// Bytes the frame allocated on the managed (GC) heap, a whole number
    /// from 0 to 1 GiB: Unity's `GC Allocated In Frame` profiler counter
    /// (`ProfilerRecorder` of `ProfilerCategory.Memory`). 0 in a steady
    /// frame is the goal.
    #[schema(minimum = 0, maximum = 1_073_741_824, multiple_of = 1)]
    pub gc_alloc_bytes: Option<f64>,
    /// Update time per named system (0 to 10 000 ms): at most 32, names
    /// `[a-z0-9_]{1,32}`.
    #[serde(default)]
    pub systems: BTreeMap<String, f64>,
}

/// Writes down what utoipa's attributes cannot say of
/// `ClientSampleJson.systems`: its names' pattern, its size, its values'
/// range.
pub fn describe(document: &mut serde_json::Value) {
    let systems = document.pointer_mut("/components/schemas/ClientSampleJson/properties/systems");
    if let Some(serde_json::Value::Object(systems)) = systems {
        systems.insert("maxProperties".into(), 32.into());
        systems.insert(
            "propertyNames".into(),
            serde_json::json!({"type": "string", "pattern": "^[a-z0-9_]{1,32}$"}),
        );
        systems.insert(
            "additionalProperties".into(),
            serde_json::json!({"type": "number", "format": "double", "minimum": 0, "maximum": 10_000}),
        );
    }
}

/// The answer to an upload.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptedJson {
    /// Samples stored.
    accepted: u32,
}

/// `GET /v1/stats/client` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatsQuery {
    /// One system's update times (`metric` is then `system_update_ms`).
    #[param(pattern = "^[a-z0-9_]{1,32}$")]
    system: Option<String>,
    /// Only samples of this client build.
    #[param(pattern = "^[A-Za-z0-9.+_-]{1,32}$")]
    client_version: Option<String>,
    /// The sample field summarized: `frame_time_ms` (the default),
    /// `gc_alloc_bytes`, `gc_collections`, `gc_pause_ms`, `memory_mb`,
    /// `input_latency_ms`, `event_dispatch_ms`; `system_update_ms` with
    /// `system`.
    #[param(
        pattern = "^(frame_time_ms|gc_alloc_bytes|gc_collections|gc_pause_ms|memory_mb|input_latency_ms|event_dispatch_ms|system_update_ms)$"
    )]
    metric: Option<String>,
}

/// Percentiles of stored client samples.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClientStatsJson {
    /// The field summarized (`frame_time_ms`, `gc_alloc_bytes`, ...,
    /// `system_update_ms` for a system).
    metric: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_version: Option<String>,
    /// Samples the percentiles are taken from: the newest that measured
    /// the field.
    count: u64,
    /// Nearest-rank percentiles in the field's unit (ms, bytes, MB or
    /// collections); null without samples.
    p50: Option<f64>,
    p95: Option<f64>,
    p99: Option<f64>,
}

/// Stores a batch of the calling player's samples (202).
impl ClientBatchJson {
    /// The metrics service's request for this upload by `player_id`.
    pub fn into_request(self, player_id: i64) -> pb::RecordClientSamplesRequest {
        pb::RecordClientSamplesRequest {
            player_id,
            client_version: self.client_version,
            device_class: self.device_class,
            samples: self
                .samples
                .into_iter()
                .map(|s| pb::ClientSample {
                    frame_time_ms: s.frame_time_ms,
                    gc_collections: s.gc_collections,
                    gc_pause_ms: s.gc_pause_ms,
                    memory_mb: s.memory_mb,
                    input_latency_ms: s.input_latency_ms,
                    event_dispatch_ms: s.event_dispatch_ms,
                    systems: s.systems.into_iter().collect(),
                    gc_alloc_bytes: s.gc_alloc_bytes,
                })
                .collect(),
        }
    }
}

#[utoipa::path(
    post,
    path = "/v1/telemetry/client",
    operation_id = "uploadClientTelemetry",
    tag = "telemetry",
    request_body = ClientBatchJson,
    security(("session" = [])),
    responses(
        (status = 202, description = "The batch is stored", body = AcceptedJson),
        (status = 400, description = "A field is invalid (the message names the first bad one); nothing is stored", body = ErrorBody),
        (status = 503, description = "The metrics service is unavailable, or not configured on this gateway", body = ErrorBody),
    ),
)]
pub async fn upload(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
    Body(body): Body<ClientBatchJson>,
) -> GatewayResult<Reply<AcceptedJson>> {
    let request = body.into_request(player_id);
    let response = metrics_client(&state)?
        .record_client_samples(request)
        .await?
        .into_inner();
    Ok(Reply::accepted(
        format,
        AcceptedJson {
            accepted: response.accepted,
        },
    ))
}

/// p50/p95/p99 of one sample field (frame time by default), or of one
/// system's update time.
#[utoipa::path(
    get,
    path = "/v1/stats/client",
    operation_id = "getClientStats",
    tag = "telemetry",
    params(StatsQuery),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "Percentiles of the newest stored samples", body = ClientStatsJson),
        (status = 400, description = "`metric` is not a sample field, or does not go with `system`", body = ErrorBody),
        (status = 503, description = "The metrics service is unavailable, or not configured on this gateway", body = ErrorBody),
    ),
)]
pub async fn stats(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    QueryArgs(query): QueryArgs<StatsQuery>,
) -> GatewayResult<Reply<ClientStatsJson>> {
    let system = query.system.filter(|s| !s.is_empty());
    let client_version = query.client_version.filter(|s| !s.is_empty());
    let response = metrics_client(&state)?
        .client_stats(pb::ClientStatsRequest {
            system: system.clone().unwrap_or_default(),
            client_version: client_version.clone().unwrap_or_default(),
            metric: query.metric.unwrap_or_default(),
        })
        .await?
        .into_inner();
    Ok(Reply::ok(
        format,
        ClientStatsJson {
            metric: response.metric,
            system,
            client_version,
            count: response.count,
            p50: response.p50,
            p95: response.p95,
            p99: response.p99,
        },
    ))
}
