//! The quest service's settings.

use std::net::SocketAddr;
use std::path::Path;

use vdm_kit::config::{CacheConfig, ConfigError, DatabaseConfig, Env};

/// Everything the quest service needs to start.
#[derive(Debug, Clone)]
pub struct QuestConfig {
    /// Where the gRPC server listens (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// The service's database.
    pub database: DatabaseConfig,
    /// The service's cache.
    pub cache: CacheConfig,
}

impl QuestConfig {
    /// Reads the database and cache settings (see [`DatabaseConfig::from_env`]
    /// and [`CacheConfig::from_env`]); the listen address is the caller's.
    pub fn from_env(env: &Env, grpc_addr: SocketAddr, data_dir: &Path) -> Result<QuestConfig, ConfigError> {
        Ok(QuestConfig {
            grpc_addr,
            database: DatabaseConfig::from_env(env, "quest", data_dir)?,
            cache: CacheConfig::from_env(env)?,
        })
    }
}
