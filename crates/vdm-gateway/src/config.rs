//! The gateway's settings.

use std::net::SocketAddr;
use std::time::Duration;

use vdm_kit::config::{CacheConfig, ConfigError, Env, Secret};

use crate::edge_cache::EdgeCacheConfig;
use crate::rate_limit::{ProxyNet, Rate, RateLimits};
use crate::realtime::RealtimeConfig;

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where the HTTP server listens (`VDM_HTTP_ADDR`, default `127.0.0.1:8080`).
    pub http_addr: SocketAddr,
    /// How long each service call of `GET /v1/bootstrap` may take before its
    /// part is reported missing (`VDM_BOOTSTRAP_BUDGET_MS`, default 300 ms).
    pub bootstrap_budget: Duration,
    /// The operator credential named `admin` (`VDM_ADMIN_TOKEN`).
    pub admin_token: Secret,
    /// A file of further named operator credentials, `name token` a line,
    /// read again when it changes (`VDM_ADMIN_TOKENS_FILE`).
    pub admin_tokens_file: Option<std::path::PathBuf>,
    /// The HMAC key that signs session and refresh tokens (`VDM_JWT_SECRET`).
    pub jwt_secret: Secret,
    /// How long a session token is valid (`VDM_SESSION_TTL_SECS`, default 1 h).
    pub session_ttl: Duration,
    /// How long a refresh token is valid (`VDM_REFRESH_TTL_SECS`, default 30 days).
    pub refresh_ttl: Duration,
    /// How long the gateway keeps serving after SIGTERM with `/ready`
    /// answering 503, before it stops accepting connections
    /// (`VDM_SHUTDOWN_DELAY_MS`, default 0: in Kubernetes the pod's preStop
    /// sleep does this; elsewhere, set it to your load balancer's health
    /// check interval).
    pub shutdown_delay: Duration,
    /// The longest a request may take before a 504 (`VDM_REQUEST_TIMEOUT_MS`, default 10 s).
    pub request_timeout: Duration,
    /// The largest request body accepted before a 413 (`VDM_BODY_LIMIT_BYTES`, default 1 MiB).
    pub body_limit: usize,
    /// How long a client may take to send the body it declared, from the
    /// end of its headers, before a 408 (`VDM_BODY_READ_TIMEOUT_MS`; default
    /// 5 s, or half the request timeout when that is shorter; must be
    /// shorter than the request timeout, so a slow client is told it was
    /// slow rather than getting the 504 of a slow server).
    pub body_read_timeout: Duration,
    /// How long a client may take to send a request's headers, and how long
    /// an idle keep-alive connection is kept (`VDM_HEADER_READ_TIMEOUT_MS`,
    /// default 10 s): slow or silent clients (slowloris) are cut off.
    pub header_read_timeout: Duration,
    /// Redis (for the event bus) or the in-process default.
    pub cache: CacheConfig,
    /// WebSocket settings.
    pub realtime: RealtimeConfig,
    /// Request rate limits; `None` turns them off.
    pub rate_limits: Option<RateLimits>,
    /// The edge read cache (`VDM_EDGE_CACHE_BYTES`, `VDM_EDGE_CACHE_TTL_SECS`).
    pub edge_cache: EdgeCacheConfig,
    /// Origins allowed by CORS (`VDM_CORS_ORIGINS`, comma-separated, `*` for
    /// any); empty: no CORS headers (native clients need none).
    pub cors_origins: Vec<String>,
}

/// Secrets the embedded default generates when none are configured.
#[derive(Debug, Clone, Default)]
pub struct SecretDefaults {
    /// The admin token when `VDM_ADMIN_TOKEN` is unset.
    pub admin_token: Option<Secret>,
    /// The signing key when `VDM_JWT_SECRET` is unset.
    pub jwt_secret: Option<Secret>,
}

impl GatewayConfig {
    /// Reads the gateway's variables (the services' addresses are the
    /// process's [`vdm_kit::service::Peers`]); `defaults` supplies the
    /// secrets the embedded default generates. A variable that is required
    /// and has no default is an error naming it.
    pub fn from_env(env: &Env, defaults: SecretDefaults) -> Result<GatewayConfig, ConfigError> {
        let admin_token = env
            .secret("VDM_ADMIN_TOKEN")
            .or(defaults.admin_token)
            .ok_or_else(|| ConfigError::new("VDM_ADMIN_TOKEN", "required"))?;
        if admin_token.expose().len() < 16 {
            return Err(ConfigError::new("VDM_ADMIN_TOKEN", "must be at least 16 characters"));
        }
        let jwt_secret = env
            .secret("VDM_JWT_SECRET")
            .or(defaults.jwt_secret)
            .ok_or_else(|| ConfigError::new("VDM_JWT_SECRET", "required"))?;
        if jwt_secret.expose().len() < 32 {
            return Err(ConfigError::new("VDM_JWT_SECRET", "must be at least 32 characters"));
        }
        let body_limit = env.parse_or("VDM_BODY_LIMIT_BYTES", 1usize << 20)?;
        if body_limit < 1024 {
            return Err(ConfigError::new("VDM_BODY_LIMIT_BYTES", "must be at least 1024"));
        }
        let header_read_timeout = env.millis_or("VDM_HEADER_READ_TIMEOUT_MS", Duration::from_secs(10))?;
        if header_read_timeout.is_zero() {
            return Err(ConfigError::new("VDM_HEADER_READ_TIMEOUT_MS", "must be at least 1"));
        }
        let request_timeout = env.millis_or("VDM_REQUEST_TIMEOUT_MS", Duration::from_secs(10))?;
        let body_read_timeout = env.millis_or(
            "VDM_BODY_READ_TIMEOUT_MS",
            Duration::from_secs(5).min(request_timeout / 2),
        )?;
        if body_read_timeout.is_zero() || body_read_timeout >= request_timeout {
            return Err(ConfigError::new(
                "VDM_BODY_READ_TIMEOUT_MS",
                "must be at least 1 and shorter than VDM_REQUEST_TIMEOUT_MS",
            ));
        }
        Ok(GatewayConfig {
            http_addr: env.parse_or("VDM_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            bootstrap_budget: env.millis_or("VDM_BOOTSTRAP_BUDGET_MS", Duration::from_millis(300))?,
            admin_token,
            admin_tokens_file: env.string("VDM_ADMIN_TOKENS_FILE").map(std::path::PathBuf::from),
            jwt_secret,
            session_ttl: env.secs_or("VDM_SESSION_TTL_SECS", Duration::from_secs(3600))?,
            refresh_ttl: env.secs_or("VDM_REFRESH_TTL_SECS", Duration::from_secs(30 * 24 * 3600))?,
            request_timeout,
            shutdown_delay: Duration::from_millis(env.parse_or("VDM_SHUTDOWN_DELAY_MS", 0u64)?),
            body_limit,
            body_read_timeout,
            header_read_timeout,
            cache: CacheConfig::from_env(env)?,
            realtime: realtime_from_env(env)?,
            rate_limits: rate_limits_from_env(env)?,
            edge_cache: edge_cache_from_env(env)?,
            cors_origins: env
                .string("VDM_CORS_ORIGINS")
                .map(|v| {
                    v.split(',')
                        .map(|o| o.trim().to_owned())
                        .filter(|o| !o.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        })
    }
}

/// Reads `VDM_WS_HEARTBEAT_MS`, `VDM_WS_MAX_FRAME_BYTES`, `VDM_WS_QUEUE`,
/// `VDM_WS_MAX_PER_PLAYER`, `VDM_WS_RESUME_SECS` and `VDM_WS_RESUME_MESSAGES`.
fn realtime_from_env(env: &Env) -> Result<RealtimeConfig, ConfigError> {
    let defaults = RealtimeConfig::default();
    let positive = |var: &str, default: usize| -> Result<usize, ConfigError> {
        match env.parse_or(var, default)? {
            0 => Err(ConfigError::new(var, "must be at least 1")),
            n => Ok(n),
        }
    };
    Ok(RealtimeConfig {
        heartbeat: env.millis_or("VDM_WS_HEARTBEAT_MS", defaults.heartbeat)?,
        max_frame_bytes: positive("VDM_WS_MAX_FRAME_BYTES", defaults.max_frame_bytes)?,
        queue: positive("VDM_WS_QUEUE", defaults.queue)?,
        max_per_player: positive("VDM_WS_MAX_PER_PLAYER", defaults.max_per_player)?,
        resume_window: env.secs_or("VDM_WS_RESUME_SECS", defaults.resume_window)?,
        resume_messages: positive("VDM_WS_RESUME_MESSAGES", defaults.resume_messages)?,
        max_in_flight: defaults.max_in_flight,
    })
}

/// Reads `VDM_EDGE_CACHE_BYTES` (the byte budget; 0 turns the cache off)
/// and `VDM_EDGE_CACHE_TTL_SECS` (at least 1: the TTL is what bounds a
/// stale entry when a change event is lost).
fn edge_cache_from_env(env: &Env) -> Result<EdgeCacheConfig, ConfigError> {
    let defaults = EdgeCacheConfig::default();
    Ok(EdgeCacheConfig {
        max_bytes: env.parse_or("VDM_EDGE_CACHE_BYTES", defaults.max_bytes)?,
        ttl: env.secs_or("VDM_EDGE_CACHE_TTL_SECS", defaults.ttl)?,
    })
}

/// Reads `VDM_RATE_LIMITS` (`on`/`off`), `VDM_RATE_AUTH`, `VDM_RATE_WRITE`,
/// `VDM_RATE_READ` (each `per_second/burst`, e.g. `20/40`),
/// `VDM_RATE_IN_FLIGHT` (requests running at once per player) and
/// `VDM_TRUSTED_PROXIES` (comma-separated addresses or CIDRs of the proxies
/// whose `X-Forwarded-For` is believed).
fn rate_limits_from_env(env: &Env) -> Result<Option<RateLimits>, ConfigError> {
    if !env.bool_or("VDM_RATE_LIMITS", true)? {
        return Ok(None);
    }
    let defaults = RateLimits::default();
    let rate = |var: &str, default: Rate| -> Result<Rate, ConfigError> {
        let Some(raw) = env.string(var) else { return Ok(default) };
        let parsed = raw
            .split_once('/')
            .and_then(|(r, b)| {
                Some(Rate {
                    per_second: r.trim().parse().ok()?,
                    burst: b.trim().parse().ok()?,
                })
            })
            .filter(|r| r.per_second > 0.0 && r.burst >= 1.0);
        parsed.ok_or_else(|| ConfigError::new(var, format!("expected per_second/burst such as 20/40, got {raw:?}")))
    };
    Ok(Some(RateLimits {
        auth: rate("VDM_RATE_AUTH", defaults.auth)?,
        write: rate("VDM_RATE_WRITE", defaults.write)?,
        read: rate("VDM_RATE_READ", defaults.read)?,
        in_flight: match env.parse_or("VDM_RATE_IN_FLIGHT", defaults.in_flight)? {
            0 => return Err(ConfigError::new("VDM_RATE_IN_FLIGHT", "must be at least 1")),
            n => n,
        },
        trusted_proxies: trusted_proxies_from_env(env)?,
    }))
}

fn trusted_proxies_from_env(env: &Env) -> Result<Vec<ProxyNet>, ConfigError> {
    if env.string("VDM_TRUST_FORWARDED_FOR").is_some() {
        return Err(ConfigError::new(
            "VDM_TRUST_FORWARDED_FOR",
            "replaced by VDM_TRUSTED_PROXIES: list the proxies (addresses or CIDRs) whose X-Forwarded-For is believed",
        ));
    }
    let Some(raw) = env.string("VDM_TRUSTED_PROXIES") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<ProxyNet>()
                .map_err(|e| ConfigError::new("VDM_TRUSTED_PROXIES", e))
        })
        .collect()
}

/// A service's address: the override (the embedded default's own), else the
/// variable, which must then be set.
/// Generates a random secret of `bytes` random bytes, URL-safe base64 encoded.
pub fn generate_secret(bytes: usize) -> Result<Secret, crate::GatewayError> {
    use base64::Engine;
    let buf = vdm_kit::secure::random_bytes(bytes).map_err(|e| crate::GatewayError::Internal(e.to_string()))?;
    Ok(Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gateway's config from the required variables plus `extra`.
    fn with(extra: &[(&'static str, &'static str)]) -> Result<GatewayConfig, ConfigError> {
        let mut pairs = vec![
            ("VDM_ADMIN_TOKEN", "0123456789abcdef"),
            ("VDM_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
        ];
        pairs.extend_from_slice(extra);
        GatewayConfig::from_env(&Env::from_pairs(pairs), SecretDefaults::default())
    }

    #[test]
    fn trusted_proxies_and_the_in_flight_cap_are_read_and_checked() {
        let limits = with(&[("VDM_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.7")])
            .unwrap()
            .rate_limits
            .unwrap();
        assert_eq!(limits.trusted_proxies.len(), 2);
        assert_eq!(limits.in_flight, 16);
        for (var, value) in [
            ("VDM_TRUSTED_PROXIES", "ingress.local"),
            ("VDM_TRUSTED_PROXIES", "10.0.0.0/40"),
            ("VDM_TRUST_FORWARDED_FOR", "true"),
            ("VDM_RATE_IN_FLIGHT", "0"),
        ] {
            assert_eq!(with(&[(var, value)]).unwrap_err().var, var, "{value}");
        }
    }

    #[test]
    fn short_secrets_and_a_zero_header_timeout_are_refused() {
        let config = with(&[]).unwrap();
        assert_eq!(config.header_read_timeout, Duration::from_secs(10));
        assert_eq!(
            with(&[("VDM_ADMIN_TOKEN", "short")]).unwrap_err().var,
            "VDM_ADMIN_TOKEN"
        );
        assert_eq!(
            with(&[("VDM_JWT_SECRET", "0123456789abcdef")]).unwrap_err().var,
            "VDM_JWT_SECRET"
        );
        assert_eq!(
            with(&[("VDM_HEADER_READ_TIMEOUT_MS", "0")]).unwrap_err().var,
            "VDM_HEADER_READ_TIMEOUT_MS"
        );
    }

    #[test]
    fn the_body_read_timeout_is_shorter_than_the_request_timeout() {
        assert_eq!(with(&[]).unwrap().body_read_timeout, Duration::from_secs(5));
        assert_eq!(
            with(&[("VDM_REQUEST_TIMEOUT_MS", "4000")]).unwrap().body_read_timeout,
            Duration::from_secs(2)
        );
        assert_eq!(
            with(&[("VDM_BODY_READ_TIMEOUT_MS", "750")]).unwrap().body_read_timeout,
            Duration::from_millis(750)
        );
        for bad in ["0", "10000", "60000"] {
            assert_eq!(
                with(&[("VDM_BODY_READ_TIMEOUT_MS", bad)]).unwrap_err().var,
                "VDM_BODY_READ_TIMEOUT_MS"
            );
        }
    }

    #[test]
    fn the_edge_cache_has_defaults_and_checks_its_ttl() {
        let config = with(&[]).unwrap().edge_cache;
        assert_eq!(config.max_bytes, 32 << 20);
        assert_eq!(config.ttl, Duration::from_secs(30));
        let off = with(&[("VDM_EDGE_CACHE_BYTES", "0"), ("VDM_EDGE_CACHE_TTL_SECS", "5")])
            .unwrap()
            .edge_cache;
        assert_eq!((off.max_bytes, off.ttl), (0, Duration::from_secs(5)));
        for (var, value) in [("VDM_EDGE_CACHE_TTL_SECS", "0"), ("VDM_EDGE_CACHE_BYTES", "lots")] {
            assert_eq!(with(&[(var, value)]).unwrap_err().var, var, "{value}");
        }
    }

    #[test]
    fn names_missing_and_bad_variables() {
        let err = GatewayConfig::from_env(&Env::default(), SecretDefaults::default()).unwrap_err();
        assert_eq!(err.var, "VDM_ADMIN_TOKEN");
        let env = Env::from_pairs([
            ("VDM_ADMIN_TOKEN", "0123456789abcdef"),
            ("VDM_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("VDM_HTTP_ADDR", "not-an-addr"),
        ]);
        assert_eq!(
            GatewayConfig::from_env(&env, SecretDefaults::default())
                .unwrap_err()
                .var,
            "VDM_HTTP_ADDR"
        );
    }
}
