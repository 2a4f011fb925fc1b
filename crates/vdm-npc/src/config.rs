//! The NPC service's settings.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use vdm_kit::config::{CacheConfig, ConfigError, DatabaseConfig, Env};

/// Everything the NPC service needs to start.
#[derive(Debug, Clone)]
pub struct NpcConfig {
    /// Where the gRPC server listens (port 0 picks a free port).
    pub grpc_addr: SocketAddr,
    /// The service's database.
    pub database: DatabaseConfig,
    /// The service's cache.
    pub cache: CacheConfig,
    /// The world service's gRPC address (`VDM_WORLD_URL`, `http://host:port`).
    pub world_url: String,
    /// The deadline of each call to the world service
    /// (`VDM_WORLD_TIMEOUT_MS`, default 2 s).
    pub world_timeout: Duration,
    /// Memories each NPC keeps at most (`VDM_NPC_MEMORY_CAP`, default 50).
    pub memory_cap: u32,
    /// Holds every RPC back this long (tests only; never read from the
    /// environment).
    pub artificial_delay: Option<Duration>,
}

/// The largest memory cap allowed (eviction reads an NPC's memories).
pub const MAX_MEMORY_CAP: u32 = 1_000;

impl NpcConfig {
    /// Reads the database, cache, world and memory settings; the listen
    /// address is the caller's, and so is the world service's address when
    /// it runs in the same process (`world_url`).
    pub fn from_env(
        env: &Env,
        grpc_addr: SocketAddr,
        data_dir: &Path,
        world_url: Option<String>,
    ) -> Result<NpcConfig, ConfigError> {
        let world_url = match world_url {
            Some(url) => url,
            None => env
                .string("VDM_WORLD_URL")
                .ok_or_else(|| ConfigError::new("VDM_WORLD_URL", "required: the world service's http://host:port"))?,
        };
        if !(world_url.starts_with("http://") || world_url.starts_with("https://")) {
            return Err(ConfigError::new(
                "VDM_WORLD_URL",
                format!("expected http://host:port, got {world_url:?}"),
            ));
        }
        let memory_cap = env.parse_or("VDM_NPC_MEMORY_CAP", 50u32)?;
        if !(1..=MAX_MEMORY_CAP).contains(&memory_cap) {
            return Err(ConfigError::new(
                "VDM_NPC_MEMORY_CAP",
                format!("must be between 1 and {MAX_MEMORY_CAP}"),
            ));
        }
        Ok(NpcConfig {
            grpc_addr,
            database: DatabaseConfig::from_env(env, "npc", data_dir)?,
            cache: CacheConfig::from_env(env)?,
            world_url,
            world_timeout: env.millis_or("VDM_WORLD_TIMEOUT_MS", Duration::from_secs(2))?,
            memory_cap,
            artificial_delay: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_missing_and_bad_variables() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let err = NpcConfig::from_env(&Env::default(), addr, Path::new("d"), None).unwrap_err();
        assert_eq!(err.var, "VDM_WORLD_URL");
        let env = Env::from_pairs([("VDM_WORLD_URL", "http://w:1"), ("VDM_NPC_MEMORY_CAP", "0")]);
        assert_eq!(
            NpcConfig::from_env(&env, addr, Path::new("d"), None).unwrap_err().var,
            "VDM_NPC_MEMORY_CAP"
        );
        let env = Env::from_pairs([("VDM_WORLD_URL", "w:1")]);
        assert_eq!(
            NpcConfig::from_env(&env, addr, Path::new("d"), None).unwrap_err().var,
            "VDM_WORLD_URL"
        );
        let config = NpcConfig::from_env(&Env::default(), addr, Path::new("d"), Some("http://x:1".into())).unwrap();
        assert_eq!(config.memory_cap, 50);
    }
}
