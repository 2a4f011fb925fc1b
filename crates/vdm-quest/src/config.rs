//! The quest service's settings.

use std::path::Path;
use std::time::Duration;

use vdm_kit::config::{CacheConfig, ConfigError, DatabaseConfig, Env};

/// Everything the quest service needs to start.
#[derive(Debug, Clone)]
pub struct QuestConfig {
    /// The service's database.
    pub database: DatabaseConfig,
    /// The service's cache.
    pub cache: CacheConfig,
    /// How long a call to the player service may take
    /// (`VDM_PEER_TIMEOUT_MS`, default 2 s).
    pub peer_timeout: Duration,
    /// How often the reward relay looks for deliveries when nothing woke
    /// it (`VDM_OUTBOX_POLL_MS`, default 1 s): what completions of other
    /// replicas, and retries, wait at most.
    pub outbox_poll: Duration,
}

impl QuestConfig {
    /// Reads the database and cache settings (see [`DatabaseConfig::from_env`]
    /// and [`CacheConfig::from_env`]).
    pub fn from_env(env: &Env, data_dir: &Path) -> Result<QuestConfig, ConfigError> {
        Ok(QuestConfig {
            database: DatabaseConfig::from_env(env, "quest", data_dir)?,
            cache: CacheConfig::from_env(env)?,
            peer_timeout: env.millis_or("VDM_PEER_TIMEOUT_MS", Duration::from_secs(2))?,
            outbox_poll: env.millis_or("VDM_OUTBOX_POLL_MS", Duration::from_secs(1))?,
        })
    }
}
