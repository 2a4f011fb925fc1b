//! The metrics service's settings.

use std::path::{Path, PathBuf};
use std::time::Duration;

use vdm_kit::config::{ConfigError, DatabaseConfig, Env};

use crate::domain::budgets::{Budget, DEFAULT_BUDGETS, parse_budgets};
use crate::domain::targets::{Target, parse_targets};

/// Default time between two scrape rounds.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
/// Default age after which stored snapshots are deleted (7 days).
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// Everything the metrics service needs to start.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// The service's database (schema `metrics`, or `metrics.db`).
    pub database: DatabaseConfig,
    /// The backend stats scraper.
    pub scrape: ScrapeConfig,
    /// The performance budgets judged each round (`VDM_BUDGETS_FILE`, else
    /// the repository's `deploy/budgets.json`, compiled in).
    pub budgets: Vec<Budget>,
}

/// Reads the budgets file at `VDM_BUDGETS_FILE`, or the compiled-in one.
pub fn budgets_from_env(env: &Env) -> Result<Vec<Budget>, ConfigError> {
    const VAR: &str = "VDM_BUDGETS_FILE";
    match env.string(VAR) {
        Some(path) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| ConfigError::new(VAR, format!("cannot read {path}: {e}")))?;
            parse_budgets(&text).map_err(|e| ConfigError::new(VAR, format!("{path}: {e}")))
        }
        None => {
            parse_budgets(DEFAULT_BUDGETS).map_err(|e| ConfigError::new(VAR, format!("the compiled-in budgets: {e}")))
        }
    }
}

/// What the scraper collects, how often, and how long it keeps it.
#[derive(Debug, Clone)]
pub struct ScrapeConfig {
    /// The services' `/metrics` endpoints (`VDM_METRICS_TARGETS`). Empty:
    /// no scraping (`vdm all` fills it with every in-process service).
    pub targets: Vec<Target>,
    /// Time between rounds (`VDM_METRICS_INTERVAL_SECS`, default 60).
    pub interval: Duration,
    /// How long one target may take to answer (the interval, at most 10 s).
    pub timeout: Duration,
    /// A CSV file each snapshot is appended to (`VDM_METRICS_CSV`).
    pub csv_path: Option<PathBuf>,
    /// Snapshots older than this are deleted (`VDM_METRICS_RETENTION_HOURS`,
    /// default 168).
    pub retention: Duration,
}

impl ScrapeConfig {
    /// Reads `VDM_METRICS_TARGETS`, `VDM_METRICS_INTERVAL_SECS`,
    /// `VDM_METRICS_CSV` and `VDM_METRICS_RETENTION_HOURS`.
    pub fn from_env(env: &Env) -> Result<ScrapeConfig, ConfigError> {
        let targets = match env.string("VDM_METRICS_TARGETS") {
            Some(raw) => parse_targets(&raw).map_err(|e| ConfigError::new("VDM_METRICS_TARGETS", e))?,
            None => Vec::new(),
        };
        let interval = env.secs_or("VDM_METRICS_INTERVAL_SECS", DEFAULT_INTERVAL)?;
        let retention = match env.parse::<u64>("VDM_METRICS_RETENTION_HOURS")? {
            None => DEFAULT_RETENTION,
            Some(0) => {
                return Err(ConfigError::new(
                    "VDM_METRICS_RETENTION_HOURS",
                    "must be a positive number of hours",
                ));
            }
            Some(hours) => Duration::from_secs(hours.saturating_mul(3600)),
        };
        Ok(ScrapeConfig {
            targets,
            interval,
            timeout: timeout_for(interval),
            csv_path: env.string("VDM_METRICS_CSV").map(PathBuf::from),
            retention,
        })
    }

    /// No targets, the default interval and retention, no CSV file.
    pub fn disabled() -> ScrapeConfig {
        ScrapeConfig {
            targets: Vec::new(),
            interval: DEFAULT_INTERVAL,
            timeout: timeout_for(DEFAULT_INTERVAL),
            csv_path: None,
            retention: DEFAULT_RETENTION,
        }
    }
}

/// A scrape must end before the next round starts.
pub fn timeout_for(interval: Duration) -> Duration {
    interval.min(Duration::from_secs(10))
}

impl MetricsConfig {
    /// Reads the database and scraper settings (see
    /// [`DatabaseConfig::from_env`] and [`ScrapeConfig::from_env`]).
    pub fn from_env(env: &Env, data_dir: &Path) -> Result<MetricsConfig, ConfigError> {
        Ok(MetricsConfig {
            database: DatabaseConfig::from_env(env, "metrics", data_dir)?,
            scrape: ScrapeConfig::from_env(env)?,
            budgets: budgets_from_env(env)?,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_the_scraper_settings_and_names_the_bad_variable() {
        let env = Env::from_pairs([
            (
                "VDM_METRICS_TARGETS",
                "quest=http://quest:9090/metrics, gateway=http://gw:8080/metrics",
            ),
            ("VDM_METRICS_INTERVAL_SECS", "15"),
            ("VDM_METRICS_CSV", "/data/stats.csv"),
            ("VDM_METRICS_RETENTION_HOURS", "2"),
        ]);
        let config = ScrapeConfig::from_env(&env).unwrap();
        assert_eq!(config.targets.len(), 2);
        assert_eq!(config.targets[1].name, "gateway");
        assert_eq!(config.interval, Duration::from_secs(15));
        assert_eq!(config.retention, Duration::from_secs(7200));
        assert_eq!(config.csv_path, Some(PathBuf::from("/data/stats.csv")));

        for (var, value) in [
            ("VDM_METRICS_TARGETS", "quest"),
            ("VDM_METRICS_INTERVAL_SECS", "0"),
            ("VDM_METRICS_RETENTION_HOURS", "0"),
            ("VDM_METRICS_RETENTION_HOURS", "soon"),
        ] {
            let err = ScrapeConfig::from_env(&Env::from_pairs([(var, value)])).unwrap_err();
            assert_eq!(err.var, var);
        }
        let budgets = budgets_from_env(&Env::default()).unwrap();
        assert!(!budgets.is_empty());
        let missing = budgets_from_env(&Env::from_pairs([("VDM_BUDGETS_FILE", "/nonexistent/budgets.json")]));
        assert_eq!(missing.unwrap_err().var, "VDM_BUDGETS_FILE");
        let defaults = ScrapeConfig::from_env(&Env::default()).unwrap();
        assert!(defaults.targets.is_empty());
        assert_eq!(defaults.interval, DEFAULT_INTERVAL);
    }
}
