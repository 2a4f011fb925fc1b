//! Test support for service crates (the `testing` feature, enabled only in
//! their `[dev-dependencies]`): start one service through the real
//! skeleton on a fresh back end, watch the events it publishes, and stand
//! in for the peers it calls.
//!
//! [`TestService::start`] binds `127.0.0.1:0` ([`Listener::bind`]), builds
//! the service with [`GrpcApp::build`] and runs it in a task until
//! [`TestService::finish`] (or a drop) stops it; the address is known
//! before it returns, so no test sleeps. Two back ends ([`Backend`]):
//!
//! - `Embedded`: a SQLite file in a fresh temp folder, the in-process cache
//!   and event bus under a fresh key prefix.
//! - `External`: Postgres at `VDM_TEST_DATABASE_URL` and Redis at
//!   `VDM_TEST_REDIS_URL` (default: the local servers), a fresh schema and
//!   a fresh key prefix per test. When either does not answer, the test is
//!   skipped with a note, unless `VDM_TEST_REQUIRE_EXTERNAL=1` (as in CI),
//!   where that fails it.
//!
//! A peer is stood in for by [`Stub`], which serves any tonic server (a
//! small fake implementing the generated trait with canned answers), so a
//! service's tests never depend on another service's crate.
//! [`TestService::watch_events`] follows what the service publishes on
//! either event bus, and [`expect_status`] checks a refused call's code
//! and message.
//!
//! ```ignore
//! vdm_kit::backend_tests!(get_unknown_quest_is_not_found);
//!
//! async fn get_unknown_quest_is_not_found(backend: Backend) {
//!     let Some(quest) = TestService::<Quest>::start(backend, |database, cache| QuestConfig { database, cache, peer_timeout: Duration::from_secs(2), outbox_poll: Duration::from_secs(1) }, Peers::default()).await
//!     else { return };
//!     let mut client = QuestServiceClient::new(quest.channel());
//!     // ...
//!     quest.finish().await;
//! }
//! ```

use std::convert::Infallible;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use sea_orm::{ConnectionTrait, Database};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tonic::server::NamedService;
use tonic::service::Routes;

use crate::bus::{Delivery, Event, EventBus};
use crate::cache::CacheStore;
use crate::config::{CacheConfig, DatabaseConfig, Secret};
use crate::grpc::GrpcChannel;
use crate::service::{GrpcApp, Listener, Peers, Service, StartError, error_chain};
use crate::shutdown::{CancellationToken, DropGuard};

/// The deadline of every call on a [`TestService::channel`].
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long [`Events::next`] waits for an event.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);
/// Test schemas (and Redis streams) older than this are left-overs of
/// test processes that were killed; the next run drops them.
const STALE_AFTER_SECS: u64 = 3600;

/// Where a test service keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite in a temp folder, the in-process cache and event bus.
    Embedded,
    /// Postgres and Redis (`VDM_TEST_DATABASE_URL`, `VDM_TEST_REDIS_URL`).
    External,
}

/// Generates `mod sqlite` and `mod postgres` with one `#[tokio::test]` per
/// listed `async fn name(backend: Backend)` of the calling file.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::Backend::Embedded).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::testing::Backend::External).await
                }
            )*
        }
    };
}

/// One service started through the real skeleton, on its own back end.
/// Stops and removes its data when dropped; [`TestService::finish`] also
/// checks that it stopped cleanly.
pub struct TestService<S: Service> {
    addr: SocketAddr,
    channel: GrpcChannel,
    config: S::Config,
    app: Option<Running>,
    events: EventBus,
    data: TestData,
    _service: PhantomData<fn() -> S>,
}

struct Running {
    stop: CancellationToken,
    task: JoinHandle<Result<(), StartError>>,
    readiness: crate::admin::ReadinessCheck,
}

impl<S: Service> TestService<S> {
    /// Starts `S` on a fresh back end: `config` gets the service's database
    /// and cache settings and returns its whole config; `peers` are the
    /// addresses of the services it calls (see [`Stub`]). `None` when
    /// `backend` is `External` and Postgres or Redis does not answer (the
    /// skip is printed; with `VDM_TEST_REQUIRE_EXTERNAL=1` it panics).
    pub async fn start(
        backend: Backend,
        config: impl FnOnce(DatabaseConfig, CacheConfig) -> S::Config,
        peers: Peers,
    ) -> Option<TestService<S>> {
        let data = TestData::fresh::<S>(backend).await?;
        let config = config(data.database.clone(), data.cache.clone());
        let listener = Listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a loopback port is free");
        let addr = listener.local_addr();
        let app = match GrpcApp::build::<S>(listener, &config, &peers).await {
            Ok(app) => app,
            Err(err) => panic!("the {} service does not start: {}", S::NAME, error_chain(&err)),
        };
        let readiness = app.readiness();
        let stop = CancellationToken::new();
        let task = tokio::spawn(app.run_until(stop.clone().cancelled_owned()));
        let channel = crate::grpc::channel(&format!("http://{addr}"), CALL_TIMEOUT).expect("a loopback url is valid");
        let store = CacheStore::new(&data.cache).expect("the test cache settings are valid");
        let events = EventBus::new(&store, &data.cache.key_prefix);
        Some(TestService {
            addr,
            channel,
            config,
            app: Some(Running { stop, task, readiness }),
            events,
            data,
            _service: PhantomData,
        })
    }

    /// The address the service listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://<address>`, as a peer of the service would dial it.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A lazily connecting channel to the service, for its generated client.
    pub fn channel(&self) -> GrpcChannel {
        self.channel.clone()
    }

    /// The config the service was started with.
    pub fn config(&self) -> &S::Config {
        &self.config
    }

    /// The back end it runs on.
    pub fn backend(&self) -> Backend {
        self.data.backend
    }

    /// Runs the service's readiness check (its database, for every service).
    pub async fn ready(&self) -> Result<(), String> {
        match &self.app {
            Some(app) => (app.readiness)().await,
            None => Err("stopped".to_owned()),
        }
    }

    /// Starts following the events the service publishes; returns once the
    /// subscription is live (with Redis, once the stream is followed), so
    /// every event published afterwards is seen.
    pub async fn watch_events(&self) -> Events {
        let mut subscription = self.events.subscribe();
        if subscription.position.is_none() {
            let joined = tokio::time::timeout(EVENT_TIMEOUT, async {
                loop {
                    match subscription.deliveries.recv().await {
                        Ok(Delivery::Position(_)) => return,
                        Ok(Delivery::Event(..)) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                        Err(broadcast::error::RecvError::Closed) => panic!("the event bus closed"),
                    }
                }
            })
            .await;
            joined.expect("the event stream is followed within 5 s");
        }
        Events {
            deliveries: subscription.deliveries,
        }
    }

    /// Stops the service, waits for it to drain (failing the test if it
    /// does not stop cleanly), and removes its data (the SQLite folder, or
    /// the Postgres schema and the Redis keys). A test ends with it; when a
    /// test panics first, the drop removes the data instead.
    pub async fn finish(mut self) {
        if let Some(app) = self.app.take() {
            app.stop.cancel();
            let stopped = tokio::time::timeout(Duration::from_secs(30), app.task)
                .await
                .unwrap_or_else(|_| panic!("the {} service did not stop within 30 s", S::NAME))
                .expect("the service task did not panic");
            if let Err(err) = stopped {
                panic!("the {} service failed: {}", S::NAME, error_chain(&err));
            }
        }
        self.data.remove().await;
    }
}

impl<S: Service> Drop for TestService<S> {
    fn drop(&mut self) {
        if let Some(app) = &self.app {
            app.stop.cancel();
        }
    }
}

/// The events a service publishes, as a test sees them.
pub struct Events {
    deliveries: broadcast::Receiver<Delivery>,
}

impl Events {
    /// The next event of `kind` (events of other kinds are skipped); panics
    /// when none arrives within [`EVENT_TIMEOUT`].
    pub async fn next(&mut self, kind: &str) -> Arc<Event> {
        match tokio::time::timeout(EVENT_TIMEOUT, self.next_of(kind)).await {
            Ok(event) => event,
            Err(_) => panic!("no {kind:?} event within {EVENT_TIMEOUT:?}"),
        }
    }

    /// Panics when an event of `kind` arrives within `wait`.
    pub async fn assert_none(&mut self, kind: &str, wait: Duration) {
        if let Ok(event) = tokio::time::timeout(wait, self.next_of(kind)).await {
            panic!("expected no {kind:?} event, got {event:?}");
        }
    }

    async fn next_of(&mut self, kind: &str) -> Arc<Event> {
        loop {
            match self.deliveries.recv().await {
                Ok(Delivery::Event(_, event)) if event.kind() == kind => return event,
                Ok(_) => {}
                Err(broadcast::error::RecvError::Lagged(n)) => panic!("the watcher lagged {n} events behind"),
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }
}

/// The status of a call that must fail (a `Result` of a call or of a
/// helper that unwrapped its `Response`): asserts its code and that its
/// message holds `message`, and returns it.
#[track_caller]
pub fn expect_status<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    message: &str,
) -> tonic::Status {
    let status = match result {
        Ok(answer) => panic!("expected {code:?} ({message:?}), got {answer:?}"),
        Err(status) => status,
    };
    assert_eq!(status.code(), code, "{status:?}");
    assert!(
        status.message().contains(message),
        "{:?} should hold {message:?}",
        status.message()
    );
    status
}

/// A stand-in for a peer service: any tonic server (usually a small fake
/// implementing a generated `...Service` trait with canned answers),
/// served with health and reflection on `127.0.0.1:0` until dropped.
pub struct Stub {
    addr: SocketAddr,
    _stop: DropGuard,
}

impl Stub {
    /// Serves `server` (a generated `...ServiceServer`) until the stub is
    /// dropped.
    pub async fn serve<T>(server: T) -> Stub
    where
        T: tower::Service<http::Request<tonic::body::Body>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        T::Response: axum::response::IntoResponse,
        T::Future: Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("a loopback port is free");
        let addr = crate::grpc::bound_addr(&listener);
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(async move {
            let served = match crate::grpc::complete_routes(T::NAME, Routes::new(server)).await {
                Ok((routes, health)) => {
                    crate::grpc::serve_routes(
                        listener,
                        T::NAME,
                        routes,
                        health,
                        shutdown,
                        Default::default(),
                        Default::default(),
                    )
                    .await
                }
                Err(err) => Err(err),
            };
            if let Err(err) = served {
                tracing::error!(error = %error_chain(&err), "stub server failed");
            }
        });
        Stub {
            addr,
            _stop: stop.drop_guard(),
        }
    }

    /// `http://<address>`, for [`Peers::insert`].
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

/// A local address where nothing listens, for as long as the tests run: a
/// socket bound to it and never listening holds the port (no test's
/// listener can be given it) and refuses every connection. A port bound
/// and released instead can be handed to the next listener a test binds.
pub fn closed_port_url() -> String {
    static CLOSED: std::sync::OnceLock<(u16, tokio::net::TcpSocket)> = std::sync::OnceLock::new();
    let (port, _socket) = CLOSED.get_or_init(|| {
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket
            .bind(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
            .expect("a loopback port is free");
        let port = socket.local_addr().expect("a bound socket has an address").port();
        (port, socket)
    });
    format!("http://127.0.0.1:{port}")
}

/// A loopback port free at the moment of asking (for a process a test
/// starts, which binds it itself), below the kernel's ephemeral range and
/// never handed out twice by this process: a port picked inside that range
/// (by binding port 0) can be taken by an outgoing connection (a pool
/// opening its connections) before the process binds it, which then fails
/// with "Address already in use".
pub fn free_port() -> u16 {
    use std::hash::{BuildHasher, Hasher};
    static HANDED_OUT: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let ephemeral_from = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768)
        .max(10_001);
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    for _ in 0..10_000 {
        // A random draw: each `RandomState` is keyed afresh.
        let draw = std::collections::hash_map::RandomState::new().build_hasher().finish();
        let port = 10_000 + (draw % u64::from(ephemeral_from - 10_000)) as u16;
        if handed_out.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(std::net::SocketAddr::from(([127, 0, 0, 1], port))).is_ok() {
            handed_out.push(port);
            return port;
        }
    }
    panic!("no free loopback port below {ephemeral_from}")
}

/// [`Peers`] naming each `(service, url)`.
pub fn peers<'a>(pairs: impl IntoIterator<Item = (&'static str, &'a str)>) -> Peers {
    let mut peers = Peers::default();
    for (name, url) in pairs {
        peers.insert(name, url);
    }
    peers
}

/// One test's database and cache settings, and what to remove afterwards.
struct TestData {
    backend: Backend,
    database: DatabaseConfig,
    cache: CacheConfig,
    /// The SQLite folder; removed by `remove` or, after a panic, by drop.
    dir: Option<PathBuf>,
    /// Whether `remove` ran (otherwise drop removes what is left).
    removed: bool,
}

impl TestData {
    async fn fresh<S: Service>(backend: Backend) -> Option<TestData> {
        let suffix = crate::secure::random_token(5).expect("the system random source works");
        // Leading seconds let a later run tell left-overs by their age.
        let prefix = format!("t{}_{suffix}", unix_secs());
        match backend {
            Backend::Embedded => {
                let dir = std::env::temp_dir().join(format!("vdm-test-{}-{suffix}", S::NAME));
                Some(TestData {
                    backend,
                    database: DatabaseConfig::sqlite_file(&dir, S::NAME),
                    cache: CacheConfig {
                        key_prefix: prefix,
                        ..CacheConfig::in_process()
                    },
                    dir: Some(dir),
                    removed: false,
                })
            }
            Backend::External => {
                if let Err(why) = external_available() {
                    if std::env::var("VDM_TEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
                        panic!("VDM_TEST_REQUIRE_EXTERNAL=1 but {why}");
                    }
                    eprintln!("SKIPPED postgres+redis back end: {why}");
                    return None;
                }
                let (pg, redis) = external_urls();
                prune_stale(&pg, &redis).await;
                Some(TestData {
                    backend,
                    database: DatabaseConfig {
                        url: Secret::new(pg),
                        schema: format!("{prefix}_{}", S::NAME),
                        // Tests run two at a time on a Postgres other suites
                        // share: a small pool is plenty.
                        max_connections: 4,
                        min_connections: 1,
                        acquire_timeout: Duration::from_secs(5),
                        migrate_on_start: true,
                    },
                    cache: CacheConfig {
                        redis_url: Some(Secret::new(redis)),
                        redis_ca_file: None,
                        key_prefix: prefix,
                        memory_capacity: 1000,
                        timeout: Duration::from_millis(500),
                    },
                    dir: None,
                    removed: false,
                })
            }
        }
    }

    async fn remove(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        remove_external(&self.database, &self.cache).await;
        self.removed = true;
    }
}

impl Drop for TestData {
    fn drop(&mut self) {
        if let Some(dir) = self.dir.take() {
            let _ = std::fs::remove_dir_all(dir);
        }
        if self.removed || !(self.database.is_postgres() || self.cache.redis_url.is_some()) {
            return;
        }
        // A test that panicked before `finish`: drop cannot await, so a
        // thread of its own removes the schema and the keys.
        let (database, cache) = (self.database.clone(), self.cache.clone());
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                runtime.block_on(remove_external(&database, &cache));
            }
        });
        let _ = cleanup.join();
    }
}

/// Drops the Postgres schema and deletes the Redis keys of one test.
async fn remove_external(database: &DatabaseConfig, cache: &CacheConfig) {
    if database.is_postgres() {
        drop_schemas(database.url.expose(), std::slice::from_ref(&database.schema)).await;
    }
    if let Some(url) = &cache.redis_url {
        delete_keys(url.expose(), &format!("{}:*", cache.key_prefix)).await;
    }
}

fn external_urls() -> (String, String) {
    (
        std::env::var("VDM_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        std::env::var("VDM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    )
}

/// Whether Postgres and Redis answer; `Err` says which does not. Asked
/// once per test binary.
fn external_available() -> &'static Result<(), String> {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    AVAILABLE.get_or_init(|| {
        let (pg, redis) = external_urls();
        for (name, url, default_port) in [("postgres", pg, 5432), ("redis", redis, 6379)] {
            let target = host_port(&url, default_port);
            let reachable = std::net::ToSocketAddrs::to_socket_addrs(&target.as_str())
                .ok()
                .and_then(|mut addrs| addrs.next())
                .is_some_and(|addr| std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok());
            if !reachable {
                return Err(format!("{name} at {target} does not answer"));
            }
        }
        Ok(())
    })
}

/// `host:port` of `scheme://user@host:port/path`.
fn host_port(url: &str, default_port: u16) -> String {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let rest = rest.rsplit('@').next().unwrap_or(rest);
    let host_port = rest.split(['/', '?']).next().unwrap_or(rest);
    if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:{default_port}")
    }
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The age in seconds of a test schema or key prefix (`t<secs>_<hex>...`),
/// or `None` when the name is not one of ours.
fn test_name_age(name: &str, now_secs: u64) -> Option<u64> {
    let (secs, rest) = name.strip_prefix('t')?.split_once('_')?;
    let hex = rest.split(['_', ':']).next()?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(now_secs.saturating_sub(secs.parse().ok()?))
}

/// Drops test schemas and Redis keys older than an hour (left by tests that
/// panicked), once per test binary.
async fn prune_stale(pg: &str, redis: &str) {
    static PRUNED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    PRUNED
        .get_or_init(|| async {
            let now = unix_secs();
            let stale = |name: &str| test_name_age(name, now).is_some_and(|age| age > STALE_AFTER_SECS);
            if let Ok(db) = Database::connect(pg).await {
                let rows = db
                    .query_all_raw(sea_orm::Statement::from_string(
                        db.get_database_backend(),
                        "SELECT schema_name FROM information_schema.schemata WHERE schema_name ~ '^t[0-9]+_[0-9a-f]+_'",
                    ))
                    .await
                    .unwrap_or_default();
                let names: Vec<String> = rows
                    .iter()
                    .filter_map(|row| row.try_get::<String>("", "schema_name").ok())
                    .filter(|name| stale(name))
                    .collect();
                let _ = db.close().await;
                drop_schemas(pg, &names).await;
            }
            // Only stream keys live without a TTL: cache entries expire.
            for key in scan_keys(redis, "t*_*:events").await {
                if stale(&key) {
                    delete_keys(redis, &key).await;
                }
            }
        })
        .await;
}

async fn drop_schemas(url: &str, schemas: &[String]) {
    if schemas.is_empty() {
        return;
    }
    let Ok(db) = Database::connect(url).await else { return };
    for schema in schemas {
        if crate::config::valid_identifier(schema) {
            let _ = db
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await;
        }
    }
    let _ = db.close().await;
}

async fn redis_connection(url: &str) -> Option<deadpool_redis::redis::aio::MultiplexedConnection> {
    let client = deadpool_redis::redis::Client::open(url).ok()?;
    client.get_multiplexed_async_connection().await.ok()
}

/// Every key matching `pattern` (a `SCAN` over the whole key space).
async fn scan_keys(url: &str, pattern: &str) -> Vec<String> {
    let Some(mut conn) = redis_connection(url).await else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    let mut cursor = 0u64;
    loop {
        let page: Result<(u64, Vec<String>), _> = deadpool_redis::redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(&mut conn)
            .await;
        let Ok((next, page)) = page else { break };
        keys.extend(page);
        if next == 0 {
            break;
        }
        cursor = next;
    }
    keys
}

/// Deletes every key matching `pattern`.
async fn delete_keys(url: &str, pattern: &str) {
    let keys = scan_keys(url, pattern).await;
    let Some(mut conn) = redis_connection(url).await else {
        return;
    };
    for chunk in keys.chunks(500) {
        let _: Result<i64, _> = deadpool_redis::redis::cmd("DEL")
            .arg(chunk)
            .query_async(&mut conn)
            .await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn finds_host_and_port() {
        assert_eq!(
            host_port("postgres://postgres@127.0.0.1:5432/test", 5432),
            "127.0.0.1:5432"
        );
        assert_eq!(host_port("redis://cache", 6379), "cache:6379");
        assert_eq!(host_port("postgres://u:p@db/x?sslmode=disable", 5432), "db:5432");
    }

    #[test]
    fn tells_test_names_and_their_age() {
        assert_eq!(test_name_age("t1000_0a1b2c3d4e_quest", 1600), Some(600));
        assert_eq!(test_name_age("t1000_0a1b2c3d4e:events", 1000), Some(0));
        assert_eq!(test_name_age("quest", 1600), None);
        assert_eq!(test_name_age("tally_sheet", 1600), None);
        assert_eq!(test_name_age("t12_xyz_quest", 1600), None);
    }
}
