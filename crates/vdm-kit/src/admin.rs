//! The small HTTP listener every service process has next to its gRPC port:
//! `/health` (liveness), `/ready` (readiness) and `/metrics` (Prometheus).
//!
//! The gateway serves the same three paths on its public router instead.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::future::BoxFuture;
use tokio::net::TcpListener;

use crate::shutdown::CancellationToken;

/// Answers whether a process can serve: `Err` names what is missing.
pub type ReadinessCheck = Arc<dyn Fn() -> BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// Builds a readiness check that runs `check` on a clone of `service`,
/// naming `dependency` in the failure (`"quest database: ..."`).
pub fn readiness_check<S, F, Fut, E>(dependency: &'static str, service: S, check: F) -> ReadinessCheck
where
    S: Clone + Send + Sync + 'static,
    F: Fn(S) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: std::fmt::Display,
{
    let check = Arc::new(check);
    Arc::new(move || {
        let (service, check) = (service.clone(), check.clone());
        Box::pin(async move { check(service).await.map_err(|e| format!("{dependency}: {e}")) })
    })
}

#[derive(Clone)]
struct AdminState {
    ready: ReadinessCheck,
    shutdown: CancellationToken,
}

/// Builds the `/health`, `/ready` and `/metrics` routes.
///
/// Readiness fails once `shutdown` is cancelled, so load balancers stop
/// sending traffic before the servers drain.
pub fn router(ready: ReadinessCheck, shutdown: CancellationToken) -> Router {
    crate::metrics::install();
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(readiness))
        .route("/metrics", get(metrics_text))
        .with_state(AdminState { ready, shutdown })
}

/// Serves [`router`] on `listener` until `shutdown` is cancelled.
pub async fn serve(listener: TcpListener, ready: ReadinessCheck, shutdown: CancellationToken) -> std::io::Result<()> {
    let app = router(ready, shutdown.clone());
    crate::serve::serve(listener, app, crate::serve::DEFAULT_HEADER_READ_TIMEOUT, shutdown).await
}

async fn health() -> Response {
    json(StatusCode::OK, r#"{"status":"ok"}"#.to_owned())
}

async fn readiness(State(state): State<AdminState>) -> Response {
    if state.shutdown.is_cancelled() {
        return json(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"shutting_down"}"#.to_owned(),
        );
    }
    match (state.ready)().await {
        Ok(()) => json(StatusCode::OK, r#"{"status":"ready"}"#.to_owned()),
        Err(missing) => {
            let body = serde_json_string(&missing);
            json(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(r#"{{"status":"not_ready","reason":{body}}}"#),
            )
        }
    }
}

async fn metrics_text() -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        crate::metrics::render_off_workers().await,
    )
        .into_response()
}

fn json(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// Quotes a string as a JSON string literal.
fn serde_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
