//! Operational endpoints: `/health` (liveness: the process answers),
//! `/ready` (readiness: the player database answers and the process is not
//! shutting down; services that do not answer make it `degraded`) and `/metrics` (Prometheus text).

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;

use crate::state::AppState;

/// How long readiness waits for each dependency.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// Liveness.
pub async fn health() -> Response {
    Json(json!({"status": "ok"})).into_response()
}

/// Readiness: fails without the gateway's own database (or while shutting
/// down); services that do not answer are named (`degraded`), not fatal.
pub async fn ready(State(state): State<AppState>) -> Response {
    if state.shutdown.is_cancelled() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "shutting_down"})),
        )
            .into_response();
    }
    let db = async {
        match tokio::time::timeout(CHECK_TIMEOUT, state.players.ping()).await {
            Ok(Ok(())) => None,
            _ => Some("gateway database".to_owned()),
        }
    };
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
    let (db, services) = tokio::join!(db, services);
    let failing: Vec<String> = services.into_iter().flatten().collect();
    if let Some(db) = db {
        // Without its own database the gateway cannot sign anyone in.
        let mut failing = failing;
        failing.insert(0, db);
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "not_ready", "failing": failing})),
        )
            .into_response();
    }
    if failing.is_empty() {
        Json(json!({"status": "ready"})).into_response()
    } else {
        // A down service degrades its own routes (503 with Retry-After, or
        // a partial bootstrap) but the gateway keeps serving the rest:
        // taking every gateway out of rotation would turn one outage into
        // a total one.
        Json(json!({"status": "degraded", "failing": failing})).into_response()
    }
}

/// Prometheus text of the whole process.
pub async fn metrics() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        vdm_kit::metrics::render(),
    )
        .into_response()
}
