//! Backend stats from the metrics service's scraper: the newest snapshot of
//! every service (`GET /v1/stats`), the stored history
//! (`GET /v1/stats/history?service=&from=&to=`) and the performance budgets'
//! verdicts (`GET /v1/budgets`). Operator data (process
//! memory, error counts): the admin token only, like every other operator
//! route.

use axum::extract::State;
use chrono::DateTime;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdm_proto::metrics::v1 as pb;

use super::shared::{metrics_client, parse_time, time_schema};
use crate::auth::Admin;
use crate::error::{ErrorBody, GatewayResult};
use crate::negotiate::{Format, QueryArgs, Reply};
use crate::state::AppState;

/// One service's backend stats at one scrape; figures not measured are
/// left out.
#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotJson {
    service: String,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    scraped_at: String,
    scraped_at_ms: i64,
    up: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_mb: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    request_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    throughput_rps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p50_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    p99_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
}

/// `GET /v1/stats` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatsJson {
    interval_ms: u64,
    services: Vec<SnapshotJson>,
}

/// `GET /v1/stats/history` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// Only this service's samples.
    #[param(pattern = "^[a-z][a-z0-9_-]{0,31}$")]
    service: Option<String>,
    /// From this time on (inclusive): RFC 3339 or Unix milliseconds.
    #[param(schema_with = time_schema)]
    from: Option<String>,
    /// Up to this time (inclusive): RFC 3339 or Unix milliseconds.
    #[param(schema_with = time_schema)]
    to: Option<String>,
}

/// `GET /v1/stats/history` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryJson {
    /// Oldest first.
    samples: Vec<SnapshotJson>,
    /// True when the range held more samples than were returned (the newest are kept).
    truncated: bool,
}

/// The newest snapshot of every scrape target.
#[utoipa::path(
    get,
    path = "/v1/stats",
    operation_id = "getStats",
    tag = "stats",
    security(("admin" = [])),
    responses(
        (status = 200, description = "The newest snapshot of every service, and the scrape interval", body = StatsJson),
        (status = 503, description = "The metrics service is unavailable, or not configured on this gateway", body = ErrorBody),
    ),
)]
pub async fn current(State(state): State<AppState>, _admin: Admin, format: Format) -> GatewayResult<Reply<StatsJson>> {
    let response = metrics_client(&state)?
        .get_stats(pb::GetStatsRequest {})
        .await?
        .into_inner();
    Ok(Reply::ok(
        format,
        StatsJson {
            interval_ms: response.interval_ms,
            services: response.services.into_iter().map(SnapshotJson::from).collect(),
        },
    ))
}

/// Stored snapshots, oldest first; `from` and `to` are RFC 3339 times or
/// Unix milliseconds, both inclusive.
#[utoipa::path(
    get,
    path = "/v1/stats/history",
    operation_id = "getStatsHistory",
    tag = "stats",
    params(HistoryQuery),
    security(("admin" = [])),
    responses(
        (status = 200, description = "Stored snapshots of the range, oldest first", body = HistoryJson),
        (status = 503, description = "The metrics service is unavailable, or not configured on this gateway", body = ErrorBody),
    ),
)]
pub async fn history(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    QueryArgs(query): QueryArgs<HistoryQuery>,
) -> GatewayResult<Reply<HistoryJson>> {
    let from_ms = query.from.as_deref().map(|v| parse_time("from", v)).transpose()?;
    let to_ms = query.to.as_deref().map(|v| parse_time("to", v)).transpose()?;
    let response = metrics_client(&state)?
        .get_stats_history(pb::GetStatsHistoryRequest {
            service: query.service.unwrap_or_default(),
            from_ms,
            to_ms,
        })
        .await?
        .into_inner();
    Ok(Reply::ok(
        format,
        HistoryJson {
            samples: response.samples.into_iter().map(SnapshotJson::from).collect(),
            truncated: response.truncated,
        },
    ))
}

/// A budget and its verdict.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetJson {
    name: String,
    description: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    metric: String,
    /// The ceiling: above it the budget is violated.
    #[serde(skip_serializing_if = "Option::is_none")]
    max: Option<f64>,
    /// The floor: below it the budget is violated (only while the service
    /// has requests, unless `min_when_idle`).
    #[serde(skip_serializing_if = "Option::is_none")]
    min: Option<f64>,
    /// Whether a window without requests breaks `min`.
    min_when_idle: bool,
    /// `ok`, `violated` or `no_data`.
    state: String,
    /// Why, for people (`throughput_rps is 0.4 req/s, below the min 1 req/s`).
    reason: String,
    /// RFC 3339 UTC: since when the state holds.
    #[schema(format = DateTime)]
    since: String,
    since_ms: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<f64>,
    evaluated_at_ms: i64,
}

/// `GET /v1/budgets` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct BudgetsJson {
    budgets: Vec<BudgetJson>,
}

/// Every performance budget and its verdict at the last scrape round.
#[utoipa::path(
    get,
    path = "/v1/budgets",
    operation_id = "getBudgets",
    tag = "stats",
    security(("admin" = [])),
    responses(
        (status = 200, description = "Every budget and its verdict", body = BudgetsJson),
        (status = 503, description = "The metrics service is unavailable, or not configured on this gateway", body = ErrorBody),
    ),
)]
pub async fn budgets(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
) -> GatewayResult<Reply<BudgetsJson>> {
    let response = metrics_client(&state)?
        .get_budgets(pb::GetBudgetsRequest {})
        .await?
        .into_inner();
    let budgets = response
        .budgets
        .into_iter()
        .map(|b| BudgetJson {
            since: rfc3339(b.since_ms),
            name: b.name,
            description: b.description,
            service: Some(b.service).filter(|s| !s.is_empty()),
            metric: b.metric,
            max: b.max,
            min: b.min,
            min_when_idle: b.min_when_idle,
            state: b.state,
            reason: b.reason,
            since_ms: b.since_ms,
            value: b.value,
            evaluated_at_ms: b.evaluated_at_ms,
        })
        .collect();
    Ok(Reply::ok(format, BudgetsJson { budgets }))
}

fn rfc3339(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

impl From<pb::ServiceSnapshot> for SnapshotJson {
    fn from(s: pb::ServiceSnapshot) -> SnapshotJson {
        SnapshotJson {
            scraped_at: rfc3339(s.scraped_at_ms),
            service: s.service,
            scraped_at_ms: s.scraped_at_ms,
            up: s.up,
            memory_mb: s.memory_mb,
            cpu_percent: s.cpu_percent,
            request_count: s.request_count,
            error_count: s.error_count,
            throughput_rps: s.throughput_rps,
            p50_ms: s.p50_ms,
            p99_ms: s.p99_ms,
            error: Some(s.error).filter(|e| !e.is_empty()),
        }
    }
}
