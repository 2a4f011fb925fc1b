//! Token buckets per caller and per route class, answering 429 with
//! `Retry-After` when a bucket is empty.
//!
//! The caller is the bearer token when there is one (a player or the
//! operator), else the client IP (the peer address, or the first
//! `X-Forwarded-For` hop when the gateway runs behind a trusted proxy).
//! Classes: `auth` (sign-in and refresh, by IP), `write` (POST, PATCH,
//! PUT, DELETE) and `read` (everything else). Limits are per gateway replica.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use vdm_kit::ErrorCode;

use crate::error::GatewayError;

/// Shards of the bucket table (lock contention stays low under load).
const SHARDS: usize = 32;
/// Buckets kept per shard before idle ones are dropped.
const MAX_BUCKETS_PER_SHARD: usize = 8_192;

/// One class's rate: `per_second` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Tokens added per second.
    pub per_second: f64,
    /// Bucket size.
    pub burst: f64,
}

/// The limits; `None` turns limiting off (benchmarks).
#[derive(Debug, Clone, PartialEq)]
pub struct RateLimits {
    /// Device sign-in and refresh, per IP.
    pub auth: Rate,
    /// Writes, per caller.
    pub write: Rate,
    /// Reads, per caller.
    pub read: Rate,
    /// Take the client IP from `X-Forwarded-For` (behind a trusted proxy).
    pub trust_forwarded_for: bool,
}

impl Default for RateLimits {
    fn default() -> RateLimits {
        RateLimits {
            auth: Rate {
                per_second: 5.0,
                burst: 20.0,
            },
            write: Rate {
                per_second: 20.0,
                burst: 40.0,
            },
            read: Rate {
                per_second: 100.0,
                burst: 200.0,
            },
            trust_forwarded_for: false,
        }
    }
}

#[derive(Clone, Copy)]
enum Class {
    Auth,
    Write,
    Read,
}

struct Bucket {
    tokens: f64,
    at: Instant,
}

/// The bucket table.
pub struct Limiter {
    limits: RateLimits,
    shards: Vec<Mutex<HashMap<u64, Bucket>>>,
}

impl Limiter {
    /// Builds an empty table.
    pub fn new(limits: RateLimits) -> Limiter {
        Limiter {
            limits,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    /// Takes a token; `Err` holds the seconds until one is available.
    fn take(&self, key: u64, rate: Rate) -> Result<(), u64> {
        let now = Instant::now();
        let mut shard = self.shards[(key as usize) % SHARDS]
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if shard.len() >= MAX_BUCKETS_PER_SHARD {
            // Full buckets are as good as absent: drop them.
            shard.retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * rate.per_second < rate.burst);
        }
        let bucket = shard.entry(key).or_insert(Bucket {
            tokens: rate.burst,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate.per_second).min(rate.burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(((1.0 - bucket.tokens) / rate.per_second).ceil().max(1.0) as u64)
        }
    }
}

/// Whether requests to `path` pass unlimited: the probes and the scraper
/// must get through however busy the gateway is.
pub fn is_exempt(path: &str) -> bool {
    matches!(path, "/health" | "/ready" | "/metrics")
}

/// The middleware; a no-op when the limiter is `None`.
pub async fn limit(State(limiter): State<Option<Arc<Limiter>>>, request: Request, next: Next) -> Response {
    let Some(limiter) = limiter else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    if is_exempt(path) {
        return next.run(request).await;
    }
    let class = if path.starts_with("/v1/auth/") {
        Class::Auth
    } else if matches!(
        *request.method(),
        Method::POST | Method::PATCH | Method::PUT | Method::DELETE
    ) {
        Class::Write
    } else {
        Class::Read
    };
    let (rate, class_name) = match class {
        Class::Auth => (limiter.limits.auth, "auth"),
        Class::Write => (limiter.limits.write, "write"),
        Class::Read => (limiter.limits.read, "read"),
    };
    let caller = match class {
        Class::Auth => None,
        _ => request.headers().get(header::AUTHORIZATION).map(|v| v.as_bytes()),
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    class_name.hash(&mut hasher);
    match caller {
        Some(token) => token.hash(&mut hasher),
        None => client_ip(&request, limiter.limits.trust_forwarded_for).hash(&mut hasher),
    }
    match limiter.take(hasher.finish(), rate) {
        Ok(()) => next.run(request).await,
        Err(retry_after) => {
            metrics::counter!("vdm_rate_limited_total", "class" => class_name).increment(1);
            let mut response = GatewayError::api(
                ErrorCode::ResourceExhausted,
                format!("too many {class_name} requests; retry in {retry_after} s"),
            )
            .into_response();
            if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            response
        }
    }
}

fn client_ip(request: &Request, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(first) = request
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
    {
        return first.trim().to_owned();
    }
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_allows_its_burst_then_refuses() {
        let limiter = Limiter::new(RateLimits::default());
        let rate = Rate {
            per_second: 1.0,
            burst: 3.0,
        };
        for _ in 0..3 {
            assert!(limiter.take(7, rate).is_ok());
        }
        assert_eq!(limiter.take(7, rate), Err(1));
        assert!(limiter.take(8, rate).is_ok(), "another caller has its own bucket");
    }
}
