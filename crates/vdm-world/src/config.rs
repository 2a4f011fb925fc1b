//! The world service's settings.

use std::path::Path;
use std::time::Duration;

use vdm_kit::config::{CacheConfig, ConfigError, DatabaseConfig, Env};

use crate::domain::MAX_CLOCK_RATE;

/// Everything the world service needs to start.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// The service's database.
    pub database: DatabaseConfig,
    /// The service's cache.
    pub cache: CacheConfig,
    /// Game seconds per real second (`VDM_WORLD_CLOCK_RATE`, default 60: a
    /// game day lasts 24 real minutes).
    pub clock_rate: f64,
    /// Holds every RPC back this long (tests only; never read from the
    /// environment).
    pub artificial_delay: Option<Duration>,
}

impl WorldConfig {
    /// Reads the database, cache and clock settings (see
    /// [`DatabaseConfig::from_env`] and [`CacheConfig::from_env`]).
    pub fn from_env(env: &Env, data_dir: &Path) -> Result<WorldConfig, ConfigError> {
        let clock_rate = env.parse_or("VDM_WORLD_CLOCK_RATE", 60.0f64)?;
        if !(clock_rate.is_finite() && clock_rate > 0.0 && clock_rate <= MAX_CLOCK_RATE) {
            return Err(ConfigError::new(
                "VDM_WORLD_CLOCK_RATE",
                format!("must be above 0 and at most {MAX_CLOCK_RATE}"),
            ));
        }
        Ok(WorldConfig {
            database: DatabaseConfig::from_env(env, "world", data_dir)?,
            cache: CacheConfig::from_env(env)?,
            clock_rate,
            artificial_delay: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_clock_rate_names_its_variable() {
        for bad in ["0", "-1", "fast", "1e9"] {
            let env = Env::from_pairs([("VDM_WORLD_CLOCK_RATE", bad)]);
            let err = WorldConfig::from_env(&env, Path::new("d")).unwrap_err();
            assert_eq!(err.var, "VDM_WORLD_CLOCK_RATE", "{bad}");
        }
        let config = WorldConfig::from_env(&Env::default(), Path::new("d")).unwrap();
        assert_eq!(config.clock_rate, 60.0);
    }
}
