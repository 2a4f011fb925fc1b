//! The NPC service's settings.

use std::path::Path;
use std::time::Duration;

use vdm_kit::config::{CacheConfig, ConfigError, DatabaseConfig, Env};

/// Everything the NPC service needs to start.
#[derive(Debug, Clone)]
pub struct NpcConfig {
    /// The service's database.
    pub database: DatabaseConfig,
    /// The service's cache.
    pub cache: CacheConfig,
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
    /// Reads the database, cache, world timeout and memory settings (the
    /// world's address is the process's [`vdm_kit::service::Peers`]).
    pub fn from_env(env: &Env, data_dir: &Path) -> Result<NpcConfig, ConfigError> {
        let memory_cap = env.parse_or("VDM_NPC_MEMORY_CAP", 50u32)?;
        if !(1..=MAX_MEMORY_CAP).contains(&memory_cap) {
            return Err(ConfigError::new(
                "VDM_NPC_MEMORY_CAP",
                format!("must be between 1 and {MAX_MEMORY_CAP}"),
            ));
        }
        Ok(NpcConfig {
            database: DatabaseConfig::from_env(env, "npc", data_dir)?,
            cache: CacheConfig::from_env(env)?,
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
    fn names_a_bad_memory_cap() {
        let env = Env::from_pairs([("VDM_NPC_MEMORY_CAP", "0")]);
        assert_eq!(
            NpcConfig::from_env(&env, Path::new("d")).unwrap_err().var,
            "VDM_NPC_MEMORY_CAP"
        );
        let config = NpcConfig::from_env(&Env::default(), Path::new("d")).unwrap();
        assert_eq!(config.memory_cap, 50);
    }
}
