//! Shared plumbing for every vdm process.
//!
//! # Layout
//! - [`config`]: the [`config::Env`] snapshot, typed parsing that names the
//!   bad variable, [`config::Secret`], database and cache settings.
//! - [`error`]: [`ErrorCode`], the one table from failure class to gRPC code
//!   and HTTP status.
//! - [`db`]: connect to Postgres (schema per service) or SQLite (file per
//!   service) and run migrations.
//! - [`cache`]: one cache interface over Redis or an in-process TTL cache.
//! - [`redis_pool`]: the Redis connection pool, checking a connection only
//!   after it sat idle.
//! - [`bus`]: events from services to gateways (a Redis stream or in-process).
//! - [`telemetry`]: the tracing subscriber, OTLP export, W3C propagation.
//! - [`metrics`]: the Prometheus recorder and scrape-time gauges.
//! - [`memo`]: a replica's short memory of reads from elsewhere, dropped by
//!   the changes it learns of, never keeping a read that raced a drop.
//! - [`page`]: opaque keyset-pagination cursors and page limits.
//! - [`grpc`]: serve a service with health, reflection and observability;
//!   connect to one.
//! - [`hash`]: one stable hash (FNV-1a) for fingerprints, seeds and keys.
//! - [`idempotency`]: create-or-replay under an idempotency key, [`idempotency::Created`].
//! - [`breaker`]: the circuit breaker in front of every client channel.
//! - [`tower`]: the gRPC server and client layers.
//! - [`admin`]: `/health`, `/ready`, `/metrics` for service processes.
//! - [`service`]: the skeleton of every gRPC service: [`service::Service`],
//!   [`service::ServiceError`], [`service::GrpcApp`], [`service::Peers`].
//! - [`serve`]: HTTP/1.1 serving with a header read timeout and header
//!   limits (slow and flooding clients are cut off).
//! - [`validate`]: field checks naming the field, request fingerprints.
//! - [`secure`]: tokens and ids from the system CSPRNG, with no fallback.
//! - [`shutdown`]: the SIGTERM/Ctrl-C signal and the cancellation token.
//! - `testing` (feature `testing`, for service crates' tests): one service
//!   started through the skeleton on SQLite or Postgres + Redis, its events,
//!   stand-ins for its peers.

pub mod admin;
pub mod breaker;
pub mod bus;
pub mod cache;
pub mod config;
pub mod db;
pub mod error;
pub mod grpc;
pub mod hash;
pub mod idempotency;
pub mod memo;
pub mod metrics;
pub mod page;
pub mod redis_pool;
pub mod secure;
pub mod serve;
pub mod service;
pub mod shutdown;
pub mod telemetry;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tower;
pub mod validate;

pub use error::ErrorCode;

/// Returns the current Unix time in milliseconds.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_millis()).unwrap_or(i64::MAX)
}

/// Formats Unix milliseconds as RFC 3339 UTC with milliseconds
/// (`2026-11-27T07:35:37.023Z`), the form every API timestamp takes.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
