//! The gateway's settings.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use vdm_kit::config::{ConfigError, DatabaseConfig, Env, Secret};

/// Everything the gateway needs to start.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Where the HTTP server listens (`VDM_HTTP_ADDR`, default `127.0.0.1:8080`).
    pub http_addr: SocketAddr,
    /// The quest service's gRPC address (`VDM_QUEST_URL`, `http://host:port`).
    pub quest_url: String,
    /// The NPC service's gRPC address (`VDM_NPC_URL`).
    pub npc_url: String,
    /// The world service's gRPC address (`VDM_WORLD_URL`).
    pub world_url: String,
    /// How long each service call of `GET /v1/bootstrap` may take before its
    /// part is reported missing (`VDM_BOOTSTRAP_BUDGET_MS`, default 300 ms).
    pub bootstrap_budget: Duration,
    /// The token that authorizes admin writes (`VDM_ADMIN_TOKEN`).
    pub admin_token: Secret,
    /// The HMAC key that signs session and refresh tokens (`VDM_JWT_SECRET`).
    pub jwt_secret: Secret,
    /// How long a session token is valid (`VDM_SESSION_TTL_SECS`, default 1 h).
    pub session_ttl: Duration,
    /// How long a refresh token is valid (`VDM_REFRESH_TTL_SECS`, default 30 days).
    pub refresh_ttl: Duration,
    /// The longest a request may take before a 504 (`VDM_REQUEST_TIMEOUT_MS`, default 10 s).
    pub request_timeout: Duration,
    /// The largest request body accepted before a 413 (`VDM_BODY_LIMIT_BYTES`, default 1 MiB).
    pub body_limit: usize,
    /// Where player accounts are kept (schema `gateway`).
    pub database: DatabaseConfig,
}

/// Settings that stay unset in the embedded default until the binary fills
/// them in (service addresses, generated secrets).
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    /// The quest service's address when it runs in the same process.
    pub quest_url: Option<String>,
    /// The NPC service's address when it runs in the same process.
    pub npc_url: Option<String>,
    /// The world service's address when it runs in the same process.
    pub world_url: Option<String>,
    /// A generated admin token when none is configured.
    pub admin_token: Option<Secret>,
    /// A generated signing key when none is configured.
    pub jwt_secret: Option<Secret>,
}

impl GatewayConfig {
    /// Reads the gateway's variables; `overrides` supplies what the embedded
    /// default generates. A variable that is required and has no override is
    /// an error naming it.
    pub fn from_env(env: &Env, data_dir: &Path, overrides: Overrides) -> Result<GatewayConfig, ConfigError> {
        let quest_url = service_url(env, "VDM_QUEST_URL", "quest", overrides.quest_url)?;
        let npc_url = service_url(env, "VDM_NPC_URL", "NPC", overrides.npc_url)?;
        let world_url = service_url(env, "VDM_WORLD_URL", "world", overrides.world_url)?;
        let admin_token = env
            .secret("VDM_ADMIN_TOKEN")
            .or(overrides.admin_token)
            .ok_or_else(|| ConfigError::new("VDM_ADMIN_TOKEN", "required"))?;
        if admin_token.expose().len() < 16 {
            return Err(ConfigError::new("VDM_ADMIN_TOKEN", "must be at least 16 characters"));
        }
        let jwt_secret = env
            .secret("VDM_JWT_SECRET")
            .or(overrides.jwt_secret)
            .ok_or_else(|| ConfigError::new("VDM_JWT_SECRET", "required"))?;
        if jwt_secret.expose().len() < 32 {
            return Err(ConfigError::new("VDM_JWT_SECRET", "must be at least 32 characters"));
        }
        let body_limit = env.parse_or("VDM_BODY_LIMIT_BYTES", 1usize << 20)?;
        if body_limit < 1024 {
            return Err(ConfigError::new("VDM_BODY_LIMIT_BYTES", "must be at least 1024"));
        }
        Ok(GatewayConfig {
            http_addr: env.parse_or("VDM_HTTP_ADDR", SocketAddr::from(([127, 0, 0, 1], 8080)))?,
            quest_url,
            npc_url,
            world_url,
            bootstrap_budget: env.millis_or("VDM_BOOTSTRAP_BUDGET_MS", Duration::from_millis(300))?,
            admin_token,
            jwt_secret,
            session_ttl: env.secs_or("VDM_SESSION_TTL_SECS", Duration::from_secs(3600))?,
            refresh_ttl: env.secs_or("VDM_REFRESH_TTL_SECS", Duration::from_secs(30 * 24 * 3600))?,
            request_timeout: env.millis_or("VDM_REQUEST_TIMEOUT_MS", Duration::from_secs(10))?,
            body_limit,
            database: DatabaseConfig::from_env(env, "gateway", data_dir)?,
        })
    }
}

/// A service's address: the override (the embedded default's own), else the
/// variable, which must then be set.
fn service_url(env: &Env, var: &str, service: &str, overridden: Option<String>) -> Result<String, ConfigError> {
    let url = match overridden {
        Some(url) => url,
        None => env
            .string(var)
            .ok_or_else(|| ConfigError::new(var, format!("required: the {service} service's http://host:port")))?,
    };
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ConfigError::new(var, format!("expected http://host:port, got {url:?}")));
    }
    Ok(url)
}

/// Generates a random secret of `bytes` random bytes, URL-safe base64 encoded.
pub fn generate_secret(bytes: usize) -> Result<Secret, crate::GatewayError> {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| crate::GatewayError::Internal(format!("random source failed: {e}")))?;
    Ok(Secret::new(
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_and_bad_variables() {
        let err = GatewayConfig::from_env(&Env::default(), Path::new("d"), Overrides::default()).unwrap_err();
        assert_eq!(err.var, "VDM_QUEST_URL");
        let env = Env::from_pairs([("VDM_QUEST_URL", "http://q:1")]);
        assert_eq!(
            GatewayConfig::from_env(&env, Path::new("d"), Overrides::default())
                .unwrap_err()
                .var,
            "VDM_NPC_URL"
        );
        let env = Env::from_pairs([
            ("VDM_QUEST_URL", "http://q:1"),
            ("VDM_NPC_URL", "http://n:1"),
            ("VDM_WORLD_URL", "w:1"),
        ]);
        assert_eq!(
            GatewayConfig::from_env(&env, Path::new("d"), Overrides::default())
                .unwrap_err()
                .var,
            "VDM_WORLD_URL"
        );
        let env = Env::from_pairs([
            ("VDM_QUEST_URL", "http://q:1"),
            ("VDM_NPC_URL", "http://n:1"),
            ("VDM_WORLD_URL", "http://w:1"),
            ("VDM_ADMIN_TOKEN", "0123456789abcdef"),
            ("VDM_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("VDM_HTTP_ADDR", "not-an-addr"),
        ]);
        assert_eq!(
            GatewayConfig::from_env(&env, Path::new("d"), Overrides::default())
                .unwrap_err()
                .var,
            "VDM_HTTP_ADDR"
        );
    }
}
