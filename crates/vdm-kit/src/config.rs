//! Reading typed settings from the environment.
//!
//! Each binary has one `Config` struct built by `Config::from_env`, which
//! reads an [`Env`] snapshot. A bad value stops start-up with a
//! [`ConfigError`] naming the variable. Tests build their `Config` values
//! directly and never touch the process environment.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

/// A setting that could not be used, naming the environment variable.
#[derive(Debug, thiserror::Error)]
#[error("{var}: {message}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: String,
    /// What is wrong with its value.
    pub message: String,
}

impl ConfigError {
    /// Builds an error about one variable.
    pub fn new(var: impl Into<String>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            var: var.into(),
            message: message.into(),
        }
    }
}

/// A string that never shows up in `Debug` or `Display` output.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// Returns the secret itself; call it only where the value is used.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// A snapshot of environment variables, read once at start-up.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// Takes a snapshot of the process environment.
    pub fn from_process() -> Env {
        Env {
            vars: std::env::vars().collect(),
        }
    }

    /// Builds a snapshot from explicit pairs (for tests and tools).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Env {
        Env {
            vars: pairs.into_iter().map(|(k, v)| (k.into(), v.into())).collect(),
        }
    }

    /// Returns a variable's value; an empty value counts as unset.
    pub fn string(&self, var: &str) -> Option<String> {
        self.vars
            .get(var)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    /// Returns a secret variable's value; an empty value counts as unset.
    pub fn secret(&self, var: &str) -> Option<Secret> {
        self.string(var).map(Secret::new)
    }

    /// Parses a variable, or returns `default` when it is unset.
    pub fn parse_or<T>(&self, var: &str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        Ok(self.parse(var)?.unwrap_or(default))
    }

    /// Parses a variable that may be unset.
    pub fn parse<T>(&self, var: &str) -> Result<Option<T>, ConfigError>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        match self.string(var) {
            None => Ok(None),
            Some(raw) => raw
                .parse::<T>()
                .map(Some)
                .map_err(|e| ConfigError::new(var, format!("cannot parse {raw:?}: {e}"))),
        }
    }

    /// Parses a boolean (`true/false`, `1/0`, `yes/no`, `on/off`).
    pub fn bool_or(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self.string(var).map(|v| v.to_ascii_lowercase()) {
            None => Ok(default),
            Some(v) => match v.as_str() {
                "true" | "1" | "yes" | "on" => Ok(true),
                "false" | "0" | "no" | "off" => Ok(false),
                _ => Err(ConfigError::new(var, format!("expected true or false, got {v:?}"))),
            },
        }
    }

    /// Parses a duration in milliseconds, which must be positive.
    pub fn millis_or(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.parse::<u64>(var)? {
            None => Ok(default),
            Some(0) => Err(ConfigError::new(var, "must be a positive number of milliseconds")),
            Some(ms) => Ok(Duration::from_millis(ms)),
        }
    }

    /// Parses a duration in seconds, which must be positive.
    pub fn secs_or(&self, var: &str, default: Duration) -> Result<Duration, ConfigError> {
        match self.parse::<u64>(var)? {
            None => Ok(default),
            Some(0) => Err(ConfigError::new(var, "must be a positive number of seconds")),
            Some(s) => Ok(Duration::from_secs(s)),
        }
    }
}

/// Connections a Postgres pool opens at most, unless configured.
pub const POSTGRES_MAX_CONNECTIONS: u32 = 10;
/// Connections a SQLite pool opens at most, unless configured. SQLite takes
/// one writer at a time, and each connection is a worker thread with its
/// own page cache (about 250 KB): with 10, an idle `vdm all` kept 18-20
/// of them open after the demo seed and stayed near its 60 MB RSS budget.
pub const SQLITE_MAX_CONNECTIONS: u32 = 2;

/// Where a service keeps its tables.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// A `postgres://` or `sqlite://` URL (it may carry a password).
    pub url: Secret,
    /// The Postgres schema the service owns (ignored by SQLite, where each
    /// service has its own file).
    pub schema: String,
    /// The most connections the pool opens.
    pub max_connections: u32,
    /// The connections the pool opens at start and keeps open however
    /// idle (at most `max_connections`).
    pub min_connections: u32,
    /// How long a query waits for a free connection before failing.
    pub acquire_timeout: Duration,
    /// Whether start-up runs pending migrations.
    pub migrate_on_start: bool,
}

impl DatabaseConfig {
    /// Reads `DATABASE_URL`, `VDM_DB_SCHEMA`, `VDM_DB_MAX_CONNECTIONS`,
    /// `VDM_DB_MIN_CONNECTIONS`, `VDM_DB_ACQUIRE_TIMEOUT_MS` and
    /// `VDM_MIGRATE_ON_START`. Without `DATABASE_URL`, the service uses the
    /// SQLite file `<data_dir>/<service>.db`.
    ///
    /// A Postgres pool opens all of its connections at start by default: a
    /// connection opened under load costs the database a new backend
    /// (process, authentication, cold catalog caches) while the first
    /// requests wait, and the first seconds of traffic after a start or a
    /// scale-up are the ones that open them all. A SQLite pool opens one.
    pub fn from_env(env: &Env, service: &str, data_dir: &Path) -> Result<DatabaseConfig, ConfigError> {
        let url = match env.secret("DATABASE_URL") {
            Some(url) => {
                let raw = url.expose();
                if !(raw.starts_with("postgres://") || raw.starts_with("postgresql://") || raw.starts_with("sqlite:")) {
                    return Err(ConfigError::new(
                        "DATABASE_URL",
                        "expected a postgres:// or sqlite: URL",
                    ));
                }
                url
            }
            None => DatabaseConfig::sqlite_file(data_dir, service).url,
        };
        let schema = env.string("VDM_DB_SCHEMA").unwrap_or_else(|| service.to_owned());
        if !valid_identifier(&schema) {
            return Err(ConfigError::new(
                "VDM_DB_SCHEMA",
                "expected letters, digits and underscores, starting with a letter",
            ));
        }
        let default_connections = if url.expose().starts_with("sqlite:") {
            SQLITE_MAX_CONNECTIONS
        } else {
            POSTGRES_MAX_CONNECTIONS
        };
        let max_connections = env.parse_or("VDM_DB_MAX_CONNECTIONS", default_connections)?;
        if max_connections == 0 {
            return Err(ConfigError::new("VDM_DB_MAX_CONNECTIONS", "must be at least 1"));
        }
        let default_min = if url.expose().starts_with("sqlite:") {
            1
        } else {
            max_connections
        };
        let min_connections = env.parse_or("VDM_DB_MIN_CONNECTIONS", default_min)?;
        if min_connections > max_connections {
            return Err(ConfigError::new(
                "VDM_DB_MIN_CONNECTIONS",
                "must not be above VDM_DB_MAX_CONNECTIONS",
            ));
        }
        Ok(DatabaseConfig {
            url,
            schema,
            max_connections,
            min_connections,
            acquire_timeout: env.millis_or("VDM_DB_ACQUIRE_TIMEOUT_MS", Duration::from_secs(5))?,
            migrate_on_start: env.bool_or("VDM_MIGRATE_ON_START", true)?,
        })
    }

    /// Describes the SQLite file `<data_dir>/<service>.db` with default pool settings.
    pub fn sqlite_file(data_dir: &Path, service: &str) -> DatabaseConfig {
        let path: PathBuf = data_dir.join(format!("{service}.db"));
        DatabaseConfig {
            url: Secret::new(format!("sqlite://{}?mode=rwc", path.display())),
            schema: service.to_owned(),
            max_connections: SQLITE_MAX_CONNECTIONS,
            min_connections: 1,
            acquire_timeout: Duration::from_secs(5),
            migrate_on_start: true,
        }
    }

    /// Tells whether this is a Postgres database.
    pub fn is_postgres(&self) -> bool {
        self.url.expose().starts_with("postgres")
    }
}

/// Where a service caches, and how.
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `redis://` (or, over TLS, `rediss://`) URL; `None` selects the
    /// bounded in-process cache.
    pub redis_url: Option<Secret>,
    /// A PEM file of the certificate authorities that sign the Redis
    /// server's certificate (`VDM_REDIS_CA_FILE`), for `rediss://` to a
    /// server whose certificate the system's roots do not cover (a private
    /// CA); `None`: the system's roots.
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// Prefix of every key, so several deployments can share one Redis.
    pub key_prefix: String,
    /// Entries the in-process cache holds at most, per cache.
    pub memory_capacity: u64,
    /// How long one Redis call may take before it counts as a miss.
    pub timeout: Duration,
}

impl CacheConfig {
    /// Reads `REDIS_URL`, `VDM_REDIS_CA_FILE`, `VDM_CACHE_PREFIX`,
    /// `VDM_CACHE_CAPACITY` and `VDM_CACHE_TIMEOUT_MS`.
    pub fn from_env(env: &Env) -> Result<CacheConfig, ConfigError> {
        let redis_url = env.secret("REDIS_URL");
        if let Some(url) = &redis_url {
            let raw = url.expose();
            if !(raw.starts_with("redis://") || raw.starts_with("rediss://")) {
                return Err(ConfigError::new("REDIS_URL", "expected a redis:// URL"));
            }
        }
        let redis_ca_file = env.string("VDM_REDIS_CA_FILE").map(std::path::PathBuf::from);
        if let Some(path) = &redis_ca_file
            && !redis_url
                .as_ref()
                .is_some_and(|url| url.expose().starts_with("rediss://"))
        {
            return Err(ConfigError::new(
                "VDM_REDIS_CA_FILE",
                format!("{} is set but REDIS_URL is not a rediss:// (TLS) URL", path.display()),
            ));
        }
        Ok(CacheConfig {
            redis_url,
            redis_ca_file,
            key_prefix: env.string("VDM_CACHE_PREFIX").unwrap_or_else(|| "vdm".to_owned()),
            memory_capacity: env.parse_or("VDM_CACHE_CAPACITY", 100_000u64)?,
            timeout: env.millis_or("VDM_CACHE_TIMEOUT_MS", Duration::from_millis(250))?,
        })
    }

    /// The in-process cache with default settings.
    pub fn in_process() -> CacheConfig {
        CacheConfig {
            redis_url: None,
            redis_ca_file: None,
            key_prefix: "vdm".to_owned(),
            memory_capacity: 100_000,
            timeout: Duration::from_millis(250),
        }
    }
}

/// Tells whether `name` is a safe SQL identifier (used unquoted in DDL).
pub fn valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 63
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_value_names_its_variable() {
        let env = Env::from_pairs([("VDM_DB_MAX_CONNECTIONS", "many")]);
        let err = DatabaseConfig::from_env(&env, "quest", Path::new("data")).unwrap_err();
        assert_eq!(err.var, "VDM_DB_MAX_CONNECTIONS");
        assert!(err.to_string().contains("many"));
    }

    #[test]
    fn a_postgres_pool_opens_all_its_connections_unless_told_otherwise() {
        let url = ("DATABASE_URL", "postgres://vdm@db:5432/vdm");
        let config = DatabaseConfig::from_env(&Env::from_pairs([url]), "quest", Path::new("data")).unwrap();
        assert_eq!((config.min_connections, config.max_connections), (10, 10));
        let env = Env::from_pairs([url, ("VDM_DB_MAX_CONNECTIONS", "6"), ("VDM_DB_MIN_CONNECTIONS", "2")]);
        let config = DatabaseConfig::from_env(&env, "quest", Path::new("data")).unwrap();
        assert_eq!((config.min_connections, config.max_connections), (2, 6));
        let env = Env::from_pairs([url, ("VDM_DB_MAX_CONNECTIONS", "6"), ("VDM_DB_MIN_CONNECTIONS", "7")]);
        let err = DatabaseConfig::from_env(&env, "quest", Path::new("data")).unwrap_err();
        assert_eq!(err.var, "VDM_DB_MIN_CONNECTIONS");
        let sqlite = DatabaseConfig::from_env(&Env::default(), "quest", Path::new("data")).unwrap();
        assert_eq!(sqlite.min_connections, 1);
    }

    #[test]
    fn defaults_to_a_sqlite_file_per_service() {
        let config = DatabaseConfig::from_env(&Env::default(), "quest", Path::new("/tmp/d")).unwrap();
        assert_eq!(config.url.expose(), "sqlite:///tmp/d/quest.db?mode=rwc");
        assert!(!config.is_postgres());
        assert_eq!(config.max_connections, SQLITE_MAX_CONNECTIONS);
        let env = Env::from_pairs([("DATABASE_URL", "postgres://vdm@db:5432/vdm")]);
        let postgres = DatabaseConfig::from_env(&env, "quest", Path::new("/tmp/d")).unwrap();
        assert_eq!(postgres.max_connections, POSTGRES_MAX_CONNECTIONS);
    }

    #[test]
    fn secrets_do_not_print() {
        let secret = Secret::new("hunter2");
        assert!(!format!("{secret:?}").contains("hunter2"));
    }

    #[test]
    fn rejects_a_non_redis_url() {
        let env = Env::from_pairs([("REDIS_URL", "http://x")]);
        assert_eq!(CacheConfig::from_env(&env).unwrap_err().var, "REDIS_URL");
    }
}
