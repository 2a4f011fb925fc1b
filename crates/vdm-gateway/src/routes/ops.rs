//! Operational endpoints: `/health` (liveness: the process answers),
//! `/ready` (readiness: the player database answers and the process is not
//! shutting down; services that do not answer make it `degraded`) and `/metrics` (Prometheus text).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use utoipa::ToSchema;

use crate::openapi::OPS_TAG;
use crate::state::AppState;

/// How long readiness waits for each dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /health` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HealthJson {
    /// Always `ok`.
    #[schema(value_type = String, example = "ok")]
    status: &'static str,
}

/// How ready the gateway is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Readiness {
    /// The database and every service answer.
    Ready,
    /// The database answers; the services in `failing` do not (their
    /// routes answer 503 or a partial bootstrap).
    Degraded,
    /// The gateway's own database does not answer.
    NotReady,
    /// The process is shutting down.
    ShuttingDown,
}

/// `GET /ready` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyJson {
    status: Readiness,
    /// What does not answer; left out when nothing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    failing: Vec<String>,
}

/// Liveness.
#[utoipa::path(
    get,
    path = "/health",
    operation_id = "health",
    tag = OPS_TAG,
    summary = "Liveness: the process answers",
    responses((status = 200, description = "The process answers", body = HealthJson)),
)]
pub async fn health() -> Response {
    Json(HealthJson { status: "ok" }).into_response()
}

/// Readiness: fails until the session revocations that still matter have
/// been read from the player service (or while shutting down); services
/// that do not answer are named (`degraded`), not fatal.
#[utoipa::path(
    get,
    path = "/ready",
    operation_id = "ready",
    tag = OPS_TAG,
    summary = "Readiness: session revocations are loaded and the process is not shutting down",
    responses(
        (status = 200, description = "`ready`, or `degraded` naming the services that do not answer", body = ReadyJson),
        (status = 503, description = "`not_ready` (session revocations not read yet: the player service has not answered since start-up) or `shutting_down`", body = ReadyJson),
    ),
)]
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ReadyJson {
                status: Readiness::ShuttingDown,
                failing: Vec::new(),
            }),
        )
            .into_response();
    }
    let services = futures_util::future::join_all(state.health.iter().map(|(name, client)| {
        let mut client = client.clone();
        async move {
            let check = client.check(HealthCheckRequest {
                service: (*name).to_owned(),
            });
            match tokio::time::timeout(CHECK_TIMEOUT, check).await {
                Ok(Ok(response)) if response.get_ref().status == ServingStatus::Serving as i32 => None,
                _ => Some((*name).to_owned()),
            }
        }
    }));
    let failing: Vec<String> = services.await.into_iter().flatten().collect();
    if !state.accounts.revocations_loaded() {
        // Until then a revoked session token would be accepted here.
        let mut failing = failing;
        failing.insert(0, "session revocations".to_owned());
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(ReadyJson {
                status: Readiness::NotReady,
                failing,
            }),
        )
            .into_response();
    }
    if failing.is_empty() {
        Json(ReadyJson {
            status: Readiness::Ready,
            failing,
        })
        .into_response()
    } else {
        // A down service degrades its own routes (503 with Retry-After, or
        // a partial bootstrap) but the gateway keeps serving the rest:
        // taking every gateway out of rotation would turn one outage into
        // a total one.
        Json(ReadyJson {
            status: Readiness::Degraded,
            failing,
        })
        .into_response()
    }
}

/// Prometheus text of the whole process.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics",
    tag = OPS_TAG,
    summary = "Prometheus metrics of the whole process",
    responses((status = 200, description = "Prometheus text exposition format 0.0.4", content_type = "text/plain; version=0.0.4", body = String)),
)]
pub async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        vdm_kit::metrics::render_off_workers().await,
    )
        .into_response()
}
