//! The rumor service's settings.

use std::path::Path;
use std::time::Duration;

use vdm_kit::config::{CacheConfig, ConfigError, DatabaseConfig, Env, Secret};

/// Everything the rumor service needs to start.
#[derive(Debug, Clone)]
pub struct RumorConfig {
    /// The service's database.
    pub database: DatabaseConfig,
    /// The service's cache (transformed texts) and event bus.
    pub cache: CacheConfig,
    /// The deadline of each call to the NPC and world services
    /// (`VDM_PEER_TIMEOUT_MS`, default 2 s).
    pub peer_timeout: Duration,
    /// How retellings are transformed.
    pub transform: TransformConfig,
    /// The spreading ticker.
    pub tick: TickConfig,
    /// Holds every RPC back this long (tests only; never read from the
    /// environment).
    pub artificial_delay: Option<Duration>,
}

/// The transformer and the pipeline in front of it.
#[derive(Debug, Clone)]
pub struct TransformConfig {
    /// The OpenAI-compatible upstream; `None` (no `VDM_LLM_URL`): the local
    /// transformer only.
    pub llm: Option<LlmConfig>,
    /// Most asks sent upstream in one call (`VDM_RUMOR_BATCH_SIZE`, default 16).
    pub batch_size: usize,
    /// How long the first ask of a batch waits for others
    /// (`VDM_RUMOR_BATCH_WINDOW_MS`, default 10 ms).
    pub batch_window: Duration,
    /// How long a transformed text stays cached (`VDM_RUMOR_CACHE_TTL_SECS`,
    /// default 120 s).
    pub cache_ttl: Duration,
}

/// An OpenAI-compatible chat-completions upstream.
#[derive(Debug, Clone)]
pub struct LlmConfig {
    /// `VDM_LLM_URL`: the API base (`http://host:port/v1`) or the full
    /// `.../chat/completions` address.
    pub url: String,
    /// `VDM_LLM_MODEL` (default `gpt-4o-mini`).
    pub model: String,
    /// `VDM_LLM_API_KEY`, sent as a bearer token when set.
    pub api_key: Option<Secret>,
    /// The whole budget of one batch, retries included
    /// (`VDM_LLM_TIMEOUT_MS`, default 2 s); past it, the local transformer
    /// answers.
    pub timeout: Duration,
    /// Retries after a failed attempt (`VDM_LLM_RETRIES`, default 2).
    pub retries: u32,
    /// The first retry's wait, doubled each time (`VDM_LLM_BACKOFF_MS`,
    /// default 50 ms).
    pub backoff: Duration,
    /// A PEM file of further certificate authorities trusted for an
    /// `https://` upstream (`VDM_LLM_CA_FILE`; a private CA), beside the
    /// system's roots.
    pub ca_file: Option<std::path::PathBuf>,
}

/// The background spreading ticker.
#[derive(Debug, Clone)]
pub struct TickConfig {
    /// Time between ticks (`VDM_RUMOR_TICK_INTERVAL_MS`, default 30 s; 0
    /// turns the ticker off).
    pub interval: Option<Duration>,
    /// Most retellings one tick of one region makes
    /// (`VDM_RUMOR_TICK_MAX_TELLINGS`, default 200).
    pub max_tellings: u32,
    /// Most NPCs of a region one tick considers (`VDM_RUMOR_TICK_MAX_NPCS`,
    /// default 500).
    pub max_npcs: u32,
}

/// The most retellings one tick may be asked for.
pub const MAX_TICK_TELLINGS: u32 = 5_000;
/// The most NPCs one tick may consider.
pub const MAX_TICK_NPCS: u32 = 10_000;

impl Default for TransformConfig {
    fn default() -> TransformConfig {
        TransformConfig {
            llm: None,
            batch_size: 16,
            batch_window: Duration::from_millis(10),
            cache_ttl: Duration::from_secs(120),
        }
    }
}

impl Default for TickConfig {
    fn default() -> TickConfig {
        TickConfig {
            interval: Some(Duration::from_secs(30)),
            max_tellings: 200,
            max_npcs: 500,
        }
    }
}

impl RumorConfig {
    /// Reads the database, cache, peer timeout, transformer and ticker
    /// settings (the NPC and world addresses are the process's
    /// [`vdm_kit::service::Peers`]).
    pub fn from_env(env: &Env, data_dir: &Path) -> Result<RumorConfig, ConfigError> {
        Ok(RumorConfig {
            database: DatabaseConfig::from_env(env, "rumor", data_dir)?,
            cache: CacheConfig::from_env(env)?,
            peer_timeout: env.millis_or("VDM_PEER_TIMEOUT_MS", Duration::from_secs(2))?,
            transform: transform_from_env(env)?,
            tick: tick_from_env(env)?,
            artificial_delay: None,
        })
    }
}

fn transform_from_env(env: &Env) -> Result<TransformConfig, ConfigError> {
    let defaults = TransformConfig::default();
    let llm = match env.string("VDM_LLM_URL") {
        None => None,
        Some(url) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(ConfigError::new(
                    "VDM_LLM_URL",
                    format!("expected http(s)://host:port/path, got {url:?}"),
                ));
            }
            let retries = env.parse_or("VDM_LLM_RETRIES", 2u32)?;
            if retries > 10 {
                return Err(ConfigError::new("VDM_LLM_RETRIES", "must be at most 10"));
            }
            Some(LlmConfig {
                url,
                model: env.string("VDM_LLM_MODEL").unwrap_or_else(|| "gpt-4o-mini".to_owned()),
                api_key: env.secret("VDM_LLM_API_KEY"),
                timeout: env.millis_or("VDM_LLM_TIMEOUT_MS", Duration::from_secs(2))?,
                retries,
                backoff: env.millis_or("VDM_LLM_BACKOFF_MS", Duration::from_millis(50))?,
                ca_file: env.string("VDM_LLM_CA_FILE").map(std::path::PathBuf::from),
            })
        }
    };
    let batch_size = env.parse_or("VDM_RUMOR_BATCH_SIZE", defaults.batch_size)?;
    if !(1..=256).contains(&batch_size) {
        return Err(ConfigError::new("VDM_RUMOR_BATCH_SIZE", "must be between 1 and 256"));
    }
    Ok(TransformConfig {
        llm,
        batch_size,
        batch_window: env.millis_or("VDM_RUMOR_BATCH_WINDOW_MS", defaults.batch_window)?,
        cache_ttl: env.secs_or("VDM_RUMOR_CACHE_TTL_SECS", defaults.cache_ttl)?,
    })
}

fn tick_from_env(env: &Env) -> Result<TickConfig, ConfigError> {
    let defaults = TickConfig::default();
    let interval = match env.parse::<u64>("VDM_RUMOR_TICK_INTERVAL_MS")? {
        None => defaults.interval,
        Some(0) => None,
        Some(ms) => Some(Duration::from_millis(ms)),
    };
    let max_tellings = env.parse_or("VDM_RUMOR_TICK_MAX_TELLINGS", defaults.max_tellings)?;
    if !(1..=MAX_TICK_TELLINGS).contains(&max_tellings) {
        return Err(ConfigError::new(
            "VDM_RUMOR_TICK_MAX_TELLINGS",
            format!("must be between 1 and {MAX_TICK_TELLINGS}"),
        ));
    }
    let max_npcs = env.parse_or("VDM_RUMOR_TICK_MAX_NPCS", defaults.max_npcs)?;
    if !(1..=MAX_TICK_NPCS).contains(&max_npcs) {
        return Err(ConfigError::new(
            "VDM_RUMOR_TICK_MAX_NPCS",
            format!("must be between 1 and {MAX_TICK_NPCS}"),
        ));
    }
    Ok(TickConfig {
        interval,
        max_tellings,
        max_npcs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_named_errors() {
        let config = RumorConfig::from_env(&Env::default(), Path::new("d")).unwrap();
        assert!(config.transform.llm.is_none());
        assert_eq!(config.transform.batch_size, 16);
        assert_eq!(config.tick.interval, Some(Duration::from_secs(30)));

        for (var, value) in [
            ("VDM_LLM_URL", "ftp://api.example.com/v1"),
            ("VDM_RUMOR_BATCH_SIZE", "0"),
            ("VDM_RUMOR_TICK_MAX_TELLINGS", "0"),
            ("VDM_RUMOR_CACHE_TTL_SECS", "0"),
        ] {
            let env = Env::from_pairs([(var, value)]);
            assert_eq!(RumorConfig::from_env(&env, Path::new("d")).unwrap_err().var, var);
        }
        let env = Env::from_pairs([
            ("VDM_LLM_URL", "http://llm:8000/v1"),
            ("VDM_LLM_API_KEY", "sk-test"),
            ("VDM_RUMOR_TICK_INTERVAL_MS", "0"),
        ]);
        let config = RumorConfig::from_env(&env, Path::new("d")).unwrap();
        let llm = config.transform.llm.unwrap();
        assert_eq!(llm.model, "gpt-4o-mini");
        assert_eq!(llm.api_key.unwrap().expose(), "sk-test");
        assert_eq!(config.tick.interval, None);
    }
}
