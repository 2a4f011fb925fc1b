//! The Redis connection pool: deadpool-redis's multiplexed connections,
//! handed out without a health check while they are in steady use.
//!
//! deadpool-redis checks every connection it hands out with a pipelined
//! `UNWATCH` + `PING`: a round trip in front of every cache read, and the
//! wake-ups on both sides that go with it (under the mixed load, 91,000
//! checks for 77,000 `GET`s). Here a connection used within the last second
//! is handed out as it is; one idle for longer is checked as before (the
//! same rule the database pools follow). Nothing here uses `WATCH`, so the
//! `UNWATCH` has nothing to clear.
//!
//! A connection whose socket a Redis restart broke would then be handed
//! out again and again while traffic keeps it "recently used": so a
//! [`RedisConnection`] watches its own commands, and one that failed on its
//! socket is marked and refused at its next hand-out (deadpool then drops
//! it and opens a new one).

use std::time::Duration;

use deadpool::managed::{self, Metrics, Object, RecycleError, RecycleResult};
use deadpool_redis::redis::aio::{ConnectionLike, MultiplexedConnection};
use deadpool_redis::redis::{Cmd, ConnectionInfo, Pipeline, RedisError, RedisFuture, Value};

/// How long a pooled connection may sit idle before it is checked on its
/// next hand-out.
const IDLE_BEFORE_CHECK: Duration = Duration::from_secs(1);

/// A pool failure: none free within the wait timeout, or none could be
/// opened.
pub type RedisPoolError = managed::PoolError<RedisError>;

/// Opens and checks the pool's connections.
pub struct Manager(deadpool_redis::Manager);

/// A connection as the pool keeps it.
pub struct Pooled {
    conn: MultiplexedConnection,
    /// A command failed on the socket: refuse it at the next hand-out.
    broken: bool,
}

impl managed::Manager for Manager {
    type Type = Pooled;
    type Error = RedisError;

    async fn create(&self) -> Result<Pooled, RedisError> {
        Ok(Pooled {
            conn: self.0.create().await?,
            broken: false,
        })
    }

    async fn recycle(&self, pooled: &mut Pooled, metrics: &Metrics) -> RecycleResult<RedisError> {
        if pooled.broken {
            return Err(RecycleError::message("a command failed on its socket"));
        }
        if metrics.last_used() < IDLE_BEFORE_CHECK {
            return Ok(());
        }
        self.0.recycle(&mut pooled.conn, metrics).await
    }
}

/// A pool of Redis connections; cheap to clone.
#[derive(Clone)]
pub struct RedisPool(managed::Pool<Manager>);

impl RedisPool {
    /// A pool of at most `max_size` connections to `connection`, where a
    /// hand-out, a connect and a check each give up after `timeout`.
    /// Connects lazily: this succeeds while Redis is down.
    pub fn new(connection: ConnectionInfo, max_size: usize, timeout: Duration) -> Result<RedisPool, String> {
        let manager = deadpool_redis::Manager::new(connection).map_err(|e| e.to_string())?;
        let mut config = managed::PoolConfig::new(max_size);
        config.timeouts = managed::Timeouts {
            wait: Some(timeout),
            create: Some(timeout),
            recycle: Some(timeout),
        };
        managed::Pool::builder(Manager(manager))
            .config(config)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .map(RedisPool)
            .map_err(|e| e.to_string())
    }

    /// A connection from the pool (a new one when none is free and the
    /// pool has room).
    pub async fn get(&self) -> Result<RedisConnection, RedisPoolError> {
        // Boxed: deadpool's future nests deep, and the callers' futures
        // (every cached read) would carry its whole layout.
        Ok(RedisConnection(Box::pin(self.0.get()).await?))
    }
}

/// A pooled connection, back to the pool when dropped.
pub struct RedisConnection(Object<Manager>);

impl RedisConnection {
    fn observe<T>(&mut self, result: &Result<T, RedisError>) {
        if let Err(err) = result
            && (err.is_io_error() || err.is_connection_dropped() || err.is_unrecoverable_error() || err.is_timeout())
        {
            if !self.0.broken {
                tracing::warn!(error = %err, "redis connection failed; it leaves the pool");
            }
            self.0.broken = true;
        }
    }
}

impl ConnectionLike for RedisConnection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let result = self.0.conn.req_packed_command(cmd).await;
            self.observe(&result);
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let result = self.0.conn.req_packed_commands(cmd, offset, count).await;
            self.observe(&result);
            result
        })
    }

    fn get_db(&self) -> i64 {
        self.0.conn.get_db()
    }
}
