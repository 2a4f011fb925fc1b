//! The metrics service's settings.

use std::net::SocketAddr;
use std::path::Path;

use vdm_kit::config::{ConfigError, DatabaseConfig, Env};

/// Everything the metrics service needs to start.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Where the gRPC server listens (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// The service's database (schema `metrics`, or `metrics.db`).
    pub database: DatabaseConfig,
}

impl MetricsConfig {
    /// Reads the database settings (see [`DatabaseConfig::from_env`]); the
    /// listen address is the caller's.
    pub fn from_env(env: &Env, grpc_addr: SocketAddr, data_dir: &Path) -> Result<MetricsConfig, ConfigError> {
        Ok(MetricsConfig {
            grpc_addr,
            database: DatabaseConfig::from_env(env, "metrics", data_dir)?,
        })
    }
}
