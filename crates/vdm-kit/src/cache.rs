//! A byte cache with one interface and two backends: Redis (through a
//! [`RedisPool`]) when `REDIS_URL` is set, a bounded in-process TTL cache
//! otherwise.
//!
//! The cache is an optimization, never a source of truth: every Redis failure
//! or timeout is logged, counted and treated as a miss, so an outage slows
//! reads down without failing them. A delete that fails is remembered and
//! retried, and until it succeeds this process reads that key from the
//! database, so an entry written before an outage cannot serve stale data
//! after a write made during it. A delete (always after a write's commit)
//! is repeated a second later, so a read that raced the write cannot leave
//! the old value in place for the whole TTL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use deadpool_redis::redis::AsyncCommands;
use tracing::Instrument;

use crate::config::CacheConfig;
use crate::redis_pool::{RedisPool, RedisPoolError};

/// How long after a write's first removal of a key a racing read may still
/// store what it loaded before the commit: the second removal comes then.
pub const REREAD_WINDOW: Duration = Duration::from_secs(1);

/// The cache backend could not be set up (a malformed Redis URL, an
/// unreadable CA file).
#[derive(Debug, thiserror::Error)]
#[error("cannot set up the redis pool: {0}")]
pub struct CacheSetupError(String);

/// The connection settings of `url`; with `ca_file`, a `rediss://` URL
/// trusts the certificate authorities in that PEM file (instead of the
/// system's roots).
fn redis_connection(
    url: &str,
    ca_file: Option<&std::path::Path>,
) -> Result<deadpool_redis::redis::ConnectionInfo, CacheSetupError> {
    use deadpool_redis::redis::{Client, IntoConnectionInfo, TlsCertificates};
    let Some(path) = ca_file else {
        return url
            .into_connection_info()
            .map_err(|e| CacheSetupError(format!("REDIS_URL: {e}")));
    };
    let root_cert =
        std::fs::read(path).map_err(|e| CacheSetupError(format!("VDM_REDIS_CA_FILE {}: {e}", path.display())))?;
    let client = Client::build_with_tls(
        url,
        TlsCertificates {
            client_tls: None,
            root_cert: Some(root_cert),
        },
    )
    .map_err(|e| CacheSetupError(format!("REDIS_URL with VDM_REDIS_CA_FILE: {e}")))?;
    Ok(client.get_connection_info().clone())
}

/// Where caches keep their entries; create it once per process and derive one
/// [`Cache`] per use with [`CacheStore::cache`].
#[derive(Clone)]
pub struct CacheStore {
    backend: StoreBackend,
    /// Where Redis is and how to reach it (TLS roots included), for the
    /// connections that do not come from the pool (the event stream's).
    redis_connection: Option<deadpool_redis::redis::ConnectionInfo>,
    prefix: String,
    memory_capacity: u64,
    timeout: Duration,
}

#[derive(Clone)]
enum StoreBackend {
    Memory,
    Redis(RedisPool),
}

impl CacheStore {
    /// Builds the store the config names. Redis connects lazily, so this
    /// succeeds while Redis is down (reads then go to the database).
    pub fn new(config: &CacheConfig) -> Result<CacheStore, CacheSetupError> {
        let (backend, redis_connection) = match &config.redis_url {
            None => (StoreBackend::Memory, None),
            Some(url) => {
                let connection = redis_connection(url.expose(), config.redis_ca_file.as_deref())?;
                let pool = RedisPool::new(connection.clone(), 64, config.timeout)
                    .map_err(|e| CacheSetupError(format!("REDIS_URL: {e}")))?;
                (StoreBackend::Redis(pool), Some(connection))
            }
        };
        Ok(CacheStore {
            backend,
            redis_connection,
            prefix: config.key_prefix.clone(),
            memory_capacity: config.memory_capacity,
            timeout: config.timeout,
        })
    }

    /// Names the backend (`redis` or `memory`), for logs.
    pub fn backend_name(&self) -> &'static str {
        match self.backend {
            StoreBackend::Memory => "memory",
            StoreBackend::Redis(_) => "redis",
        }
    }

    /// Where Redis is, when the store uses it (for connections of their own).
    pub fn redis_connection(&self) -> Option<&deadpool_redis::redis::ConnectionInfo> {
        self.redis_connection.as_ref()
    }

    /// Returns the Redis pool when the store uses Redis (for pub/sub users).
    pub fn redis_pool(&self) -> Option<&RedisPool> {
        match &self.backend {
            StoreBackend::Redis(pool) => Some(pool),
            StoreBackend::Memory => None,
        }
    }

    /// Derives a named cache whose entries live for `ttl`. The name labels its
    /// metrics and prefixes its keys.
    pub fn cache(&self, name: &'static str, ttl: Duration) -> Cache {
        let backend = match &self.backend {
            StoreBackend::Memory => Backend::Memory(
                moka::future::Cache::builder()
                    .name(name)
                    .max_capacity(self.memory_capacity)
                    .time_to_live(ttl)
                    .build(),
            ),
            StoreBackend::Redis(pool) => Backend::Redis(pool.clone()),
        };
        Cache {
            inner: Arc::new(Inner {
                name,
                key_prefix: format!("{}:{name}:", self.prefix),
                ttl,
                timeout: self.timeout,
                backend,
                pending_deletes: Mutex::new(HashMap::new()),
            }),
        }
    }
}

/// A named cache of byte values with one TTL.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    name: &'static str,
    key_prefix: String,
    ttl: Duration,
    timeout: Duration,
    backend: Backend,
    /// Keys whose delete failed, with when it failed; read through to the
    /// database until the delete is retried successfully or the TTL passed.
    pending_deletes: Mutex<HashMap<String, Instant>>,
}

enum Backend {
    Memory(moka::future::Cache<String, Bytes>),
    Redis(RedisPool),
}

#[derive(Debug, thiserror::Error)]
enum RedisCallError {
    #[error("no redis connection")]
    Pool(#[from] RedisPoolError),
    #[error("redis command failed")]
    Command(#[from] deadpool_redis::redis::RedisError),
    #[error("redis call timed out")]
    Timeout,
}

impl Cache {
    /// Returns the cached value for `key`, or `None` on a miss or any failure.
    pub async fn get(&self, key: &str) -> Option<Bytes> {
        let inner = &*self.inner;
        if inner.is_pending_delete(key) {
            self.retry_delete(key).await;
            record(inner.name, "bypass");
            return None;
        }
        let value = match &inner.backend {
            Backend::Memory(cache) => cache.get(key).instrument(cache_span("GET", inner.name, "memory")).await,
            Backend::Redis(pool) => {
                let full_key = inner.full_key(key);
                let call = async {
                    let mut conn = pool.get().await?;
                    let value: Option<Vec<u8>> = conn.get(&full_key).await?;
                    Ok::<_, RedisCallError>(value)
                };
                match self
                    .bounded(call)
                    .instrument(cache_span("GET", inner.name, "redis"))
                    .await
                {
                    Ok(value) => value.map(Bytes::from),
                    Err(err) => {
                        self.fail("get", &err);
                        return None;
                    }
                }
            }
        };
        record(inner.name, if value.is_some() { "hit" } else { "miss" });
        value
    }

    /// Reads `key` through the cache: a hit is decoded (MessagePack); on a
    /// miss, or an entry that no longer decodes (an older layout), `load`
    /// runs and what it returns is stored for the TTL. A failing `load` is
    /// returned and nothing is stored.
    pub async fn get_or_load<T, E, F>(&self, key: &str, load: F) -> Result<T, E>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: Future<Output = Result<T, E>>,
    {
        if let Some(value) = self.get_decoded(key).await {
            return Ok(value);
        }
        let value = load.await?;
        self.set_encoded(key, &value).await;
        Ok(value)
    }

    /// Reads a list (or any answer built from many rows) through the cache,
    /// under the current generation named by `generation_key`. A write that
    /// changes what lists hold deletes `generation_key` after its commit, so
    /// every list cached before it is out of reach at once, on every replica
    /// sharing the cache, and expires with the TTL. A list read while a
    /// write commits is stored under the generation the write drops. When
    /// no generation can be read or made, `load` runs uncached.
    pub async fn get_or_load_listed<T, E, F>(&self, generation_key: &str, key: &str, load: F) -> Result<T, E>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        F: Future<Output = Result<T, E>>,
    {
        let generation = self
            .get_or_load(generation_key, async { crate::secure::random_token(8) })
            .await;
        let Ok(generation) = generation else {
            return load.await;
        };
        self.get_or_load(&format!("{generation_key}:{generation}:{key}"), load)
            .await
    }

    /// The value under `key`, decoded; `None` on a miss, a failure or an
    /// entry that does not decode.
    pub async fn get_decoded<T: serde::de::DeserializeOwned>(&self, key: &str) -> Option<T> {
        let bytes = self.get(key).await?;
        match rmp_serde::from_slice(&bytes) {
            Ok(value) => Some(value),
            Err(err) => {
                tracing::warn!(cache = self.inner.name, key, error = %err, "undecodable cache entry: reading through");
                None
            }
        }
    }

    /// Stores `value` under `key`, encoded (MessagePack).
    pub async fn set_encoded<T: serde::Serialize>(&self, key: &str, value: &T) {
        match rmp_serde::to_vec(value) {
            Ok(bytes) => self.set(key, Bytes::from(bytes)).await,
            Err(err) => tracing::warn!(cache = self.inner.name, key, error = %err, "cannot encode a cache entry"),
        }
    }

    /// Stores `value` under `key` for the cache's TTL; failures are logged and ignored.
    pub async fn set(&self, key: &str, value: Bytes) {
        let inner = &*self.inner;
        if inner.is_pending_delete(key) {
            return;
        }
        match &inner.backend {
            Backend::Memory(cache) => cache.insert(key.to_owned(), value).await,
            Backend::Redis(pool) => {
                let full_key = inner.full_key(key);
                let ttl_ms = u64::try_from(inner.ttl.as_millis()).unwrap_or(u64::MAX);
                let call = async {
                    let mut conn = pool.get().await?;
                    let () = conn.pset_ex(&full_key, value.as_ref(), ttl_ms).await?;
                    Ok::<_, RedisCallError>(())
                };
                if let Err(err) = self
                    .bounded(call)
                    .instrument(cache_span("SET", inner.name, "redis"))
                    .await
                {
                    self.fail("set", &err);
                }
            }
        }
    }

    /// Removes `key` after a write committed, and once more
    /// [`REREAD_WINDOW`] later: a read that loaded the old value before the
    /// commit and stores it after the first removal would otherwise serve it
    /// for the whole TTL. When Redis cannot be reached, the key is
    /// remembered and read through to the database until a later delete
    /// succeeds.
    pub async fn delete(&self, key: &str) {
        self.delete_now(key).await;
        let (cache, key) = (self.clone(), key.to_owned());
        tokio::spawn(async move {
            tokio::time::sleep(REREAD_WINDOW).await;
            cache.delete_now(&key).await;
        });
    }

    async fn delete_now(&self, key: &str) {
        let inner = &*self.inner;
        match &inner.backend {
            Backend::Memory(cache) => cache.invalidate(key).await,
            Backend::Redis(_) => {
                if let Err(err) = self.redis_delete(key).await {
                    self.fail("delete", &err);
                    let mut pending = inner.pending_deletes.lock().unwrap_or_else(|e| e.into_inner());
                    pending.insert(key.to_owned(), Instant::now());
                }
            }
        }
    }

    async fn redis_delete(&self, key: &str) -> Result<(), RedisCallError> {
        let inner = &*self.inner;
        let Backend::Redis(pool) = &inner.backend else {
            return Ok(());
        };
        let full_key = inner.full_key(key);
        let call = async {
            let mut conn = pool.get().await?;
            let _: usize = conn.del(&full_key).await?;
            Ok::<_, RedisCallError>(())
        };
        self.bounded(call)
            .instrument(cache_span("DEL", inner.name, "redis"))
            .await
    }

    async fn retry_delete(&self, key: &str) {
        if self.redis_delete(key).await.is_ok() {
            let mut pending = self.inner.pending_deletes.lock().unwrap_or_else(|e| e.into_inner());
            pending.remove(key);
            tracing::info!(cache = self.inner.name, "delayed cache invalidation succeeded");
        }
    }

    async fn bounded<T>(&self, call: impl Future<Output = Result<T, RedisCallError>>) -> Result<T, RedisCallError> {
        tokio::time::timeout(self.inner.timeout, call)
            .await
            .unwrap_or(Err(RedisCallError::Timeout))
    }

    fn fail(&self, op: &'static str, err: &RedisCallError) {
        record(self.inner.name, "error");
        tracing::warn!(cache = self.inner.name, op, error = %err, cause = ?std::error::Error::source(err), "cache call failed; using the database");
    }
}

impl Inner {
    fn full_key(&self, key: &str) -> String {
        let mut full = String::with_capacity(self.key_prefix.len() + key.len());
        full.push_str(&self.key_prefix);
        full.push_str(key);
        full
    }

    fn is_pending_delete(&self, key: &str) -> bool {
        let mut pending = self.pending_deletes.lock().unwrap_or_else(|e| e.into_inner());
        if pending.is_empty() {
            return false;
        }
        // Past the TTL the stale entry has expired by itself.
        let ttl = self.ttl;
        pending.retain(|_, since| since.elapsed() < ttl);
        pending.contains_key(key)
    }
}

fn cache_span(op: &'static str, cache: &'static str, system: &'static str) -> tracing::Span {
    tracing::info_span!(
        "cache_call",
        otel.name = op,
        otel.kind = "client",
        db.system.name = system,
        db.operation.name = op,
        cache
    )
}

fn record(cache: &'static str, result: &'static str) {
    metrics::counter!("vdm_cache_requests_total", "cache" => cache, "result" => result).increment(1);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn memory_store() -> CacheStore {
        CacheStore::new(&CacheConfig {
            redis_url: None,
            redis_ca_file: None,
            key_prefix: "test".to_owned(),
            memory_capacity: 100,
            timeout: Duration::from_secs(1),
        })
        .unwrap()
    }

    #[tokio::test]
    async fn a_value_stored_by_a_read_racing_a_write_is_dropped_within_the_window() {
        let cache = memory_store().cache("profiles", Duration::from_secs(60));
        cache.set("7", Bytes::from_static(b"old")).await;
        // The write commits and drops the key; a read that loaded the old
        // row before the commit stores it just after.
        cache.delete("7").await;
        cache.set("7", Bytes::from_static(b"old")).await;
        assert_eq!(cache.get("7").await.as_deref(), Some(&b"old"[..]));
        tokio::time::sleep(REREAD_WINDOW + Duration::from_millis(10)).await;
        assert_eq!(
            cache.get("7").await,
            None,
            "the second removal drops what the racing read stored"
        );
        // A value stored after the window stays.
        cache.set("7", Bytes::from_static(b"new")).await;
        assert_eq!(cache.get("7").await.as_deref(), Some(&b"new"[..]));
    }
}
