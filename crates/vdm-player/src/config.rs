//! The player service's settings.

use std::path::Path;

use vdm_kit::config::{CacheConfig, ConfigError, DatabaseConfig, Env};

use crate::domain::LevelCurve;

/// The variable naming the level curve.
pub const LEVEL_XP_VAR: &str = "VDM_PLAYER_LEVEL_XP";

/// Everything the player service needs to start.
#[derive(Debug, Clone)]
pub struct PlayerConfig {
    /// The service's database.
    pub database: DatabaseConfig,
    /// The service's cache (and event bus).
    pub cache: CacheConfig,
    /// The xp at which each level starts.
    pub levels: LevelCurve,
}

impl PlayerConfig {
    /// Reads the database and cache settings, and the level curve from
    /// `VDM_PLAYER_LEVEL_XP` (a comma list of increasing xp thresholds:
    /// the first starts level 2; default [`LevelCurve::default`]).
    pub fn from_env(env: &Env, data_dir: &Path) -> Result<PlayerConfig, ConfigError> {
        let levels = match env.string(LEVEL_XP_VAR) {
            Some(raw) => LevelCurve::parse(&raw).map_err(|message| ConfigError::new(LEVEL_XP_VAR, message))?,
            None => LevelCurve::default(),
        };
        Ok(PlayerConfig {
            database: DatabaseConfig::from_env(env, "player", data_dir)?,
            cache: CacheConfig::from_env(env)?,
            levels,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_curve_comes_from_its_variable_and_a_bad_one_names_it() {
        let dir = Path::new("data");
        let config = PlayerConfig::from_env(&Env::from_pairs([(LEVEL_XP_VAR, "10, 30,60")]), dir).unwrap();
        assert_eq!(config.levels.level(29), 2);
        let bad = PlayerConfig::from_env(&Env::from_pairs([(LEVEL_XP_VAR, "10,5")]), dir).unwrap_err();
        assert_eq!(bad.var, LEVEL_XP_VAR);
        let default = PlayerConfig::from_env(&Env::from_pairs::<&str, &str>([]), dir).unwrap();
        assert_eq!(default.levels, LevelCurve::default());
    }
}
