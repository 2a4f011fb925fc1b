#![allow(dead_code)]

//! Spawns the world, NPC and quest services and the gateway in this process
//! on port 0 (no sleeps: all are bound before `spawn_app` returns) and drives
//! HTTP. `spawn_app_with` can leave a service down (its callers get a closed
//! port), slow services down on purpose, and seed the demo world.
//!
//! Two back ends: `Embedded` (SQLite files in a temp folder, in-process cache)
//! and `External` (Postgres and Redis at `VDM_TEST_DATABASE_URL` /
//! `VDM_TEST_REDIS_URL`, defaulting to the local servers), isolated per test
//! by fresh schemas and a fresh key prefix. When Postgres or Redis does not
//! answer, `External` tests are skipped with a message, unless
//! `VDM_TEST_REQUIRE_EXTERNAL=1` (as in CI), where that is a failure.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sea_orm::{ConnectionTrait, Database};
use serde_json::Value;
use vdm::embedded::{GrpcAddrs, Running, Services};
use vdm_gateway::GatewayConfig;
use vdm_gateway::edge_cache::EdgeCacheConfig;
use vdm_gateway::rate_limit::RateLimits;
use vdm_gateway::realtime::RealtimeConfig;
use vdm_kit::config::{CacheConfig, DatabaseConfig, Secret};
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::service::{GrpcApp, Listener, PEER_NAMES, Peers};
use vdm_kit::shutdown::CancellationToken;
use vdm_kit::testing::TestService;
use vdm_metrics::{MetricsConfig, ScrapeConfig};
use vdm_npc::NpcConfig;
use vdm_player::PlayerConfig;
use vdm_proto::npc::v1::npc_service_client::NpcServiceClient;
use vdm_proto::player::v1::player_service_client::PlayerServiceClient;
use vdm_proto::quest::v1::quest_service_client::QuestServiceClient;
use vdm_proto::world::v1::world_service_client::WorldServiceClient;
use vdm_quest::QuestConfig;
use vdm_rumor::RumorConfig;
use vdm_rumor::config::{LlmConfig, TickConfig, TransformConfig};
use vdm_world::WorldConfig;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";

/// The back ends every end-to-end test runs on, with the kit's
/// `backend_tests!` that makes one test per back end.
pub use vdm_kit::testing::Backend;

/// How `spawn_app_with` sets the apps up; the default is what `spawn_app`
/// starts: every service up, no delays, no demo data.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Leave the world service down (its callers get a closed port).
    pub world_down: bool,
    /// Leave the rumor service down.
    pub rumor_down: bool,
    /// The rumor service's OpenAI-compatible upstream (local transformer
    /// when `None`).
    pub llm: Option<LlmConfig>,
    /// The rumor pipeline's batch size and window (16 and 10 ms when `None`).
    pub rumor_batch: Option<(usize, Duration)>,
    /// Leave the NPC service down.
    pub npc_down: bool,
    /// Leave the quest service down.
    pub quest_down: bool,
    /// Leave the player service down.
    pub player_down: bool,
    /// Hold every world RPC back this long.
    pub world_delay: Option<Duration>,
    /// Hold every NPC RPC back this long.
    pub npc_delay: Option<Duration>,
    /// The gateway's bootstrap budget (default 300 ms, as in production).
    pub bootstrap_budget: Option<Duration>,
    /// Memories each NPC keeps (default 50).
    pub memory_cap: Option<u32>,
    /// The world clock's rate (default 60).
    pub clock_rate: Option<f64>,
    /// Seed the demo world through the services before returning.
    pub seed_demo: bool,
    /// The gateway's rate limits (default: the production defaults).
    pub rate_limits: Option<RateLimits>,
    /// With the embedded back end: cache in this Redis instead of in process.
    pub redis_url: Option<String>,
    /// The stats scraper's interval (default 60 s: one round at start).
    pub stats_interval: Option<Duration>,
    /// The stats retention (default 7 days).
    pub stats_retention: Option<Duration>,
    /// Append stats samples to a CSV file (`TestApp::stats_csv`).
    pub stats_csv: bool,
    /// Scrape these targets instead of the services of the process.
    pub stats_targets: Vec<vdm_metrics::domain::targets::Target>,
    /// With `redis_url` `rediss://...`: the CA file that signs its certificate.
    pub redis_ca_file: Option<PathBuf>,
    /// A file of further named operator credentials.
    pub admin_tokens_file: Option<PathBuf>,
    /// The budgets the metrics service judges (default: deploy/budgets.json).
    pub budgets: Option<Vec<vdm_metrics::domain::budgets::Budget>>,
    /// The gateway's edge cache (default: the production defaults).
    pub edge_cache: Option<EdgeCacheConfig>,
}

pub struct TestApp {
    /// The closed port every service address points at
    /// (`spawn_gateway_without_services` only).
    pub down_port: Option<u16>,
    pub addr: SocketAddr,
    /// The services' gRPC addresses (None: left down).
    pub world_addr: Option<SocketAddr>,
    pub npc_addr: Option<SocketAddr>,
    pub quest_addr: Option<SocketAddr>,
    pub rumor_addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    /// The stats CSV file, when asked for.
    pub stats_csv: Option<PathBuf>,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
    running: Option<Running>,
    cleanup: Cleanup,
    /// What started the apps, to start them again on the same data.
    setup: Option<(Services, GatewayConfig)>,
    /// The player service beside a gateway whose other services are down
    /// (`spawn_gateway_without_services` only): sign-in needs it.
    player_service: Option<TestService<vdm_player::Player>>,
}

enum Cleanup {
    None,
    Dir(PathBuf),
    Schemas { url: String, schemas: Vec<String> },
}

pub struct TestResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl TestResponse {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the status and the uniform error body; returns the message.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(
            self.status.as_u16(),
            status,
            "body: {}",
            String::from_utf8_lossy(&self.body)
        );
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "body: {body}");
        body["error"]["message"].as_str().expect("error message").to_owned()
    }
}

fn external_urls() -> (String, String) {
    (
        std::env::var("VDM_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into()),
        std::env::var("VDM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into()),
    )
}

/// Whether Postgres and Redis answer; `Err` says which does not.
fn external_available() -> &'static Result<(), String> {
    static AVAILABLE: OnceLock<Result<(), String>> = OnceLock::new();
    AVAILABLE.get_or_init(|| {
        let (pg, redis) = external_urls();
        for (name, url, default_port) in [("postgres", pg, 5432), ("redis", redis, 6379)] {
            let host_port = url
                .split("://")
                .nth(1)
                .unwrap_or("")
                .rsplit('@')
                .next()
                .unwrap_or("")
                .split('/')
                .next()
                .unwrap_or("");
            let target = if host_port.contains(':') {
                host_port.to_owned()
            } else {
                format!("{host_port}:{default_port}")
            };
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

fn random_suffix() -> String {
    let mut bytes = [0u8; 5];
    getrandom::fill(&mut bytes).expect("random bytes");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unix_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Builds and starts the apps; `None` when the back end is unavailable and
/// not required (the skip is printed).
/// Every service up and the demo world seeded.
pub async fn spawn_demo(backend: Backend) -> Option<TestApp> {
    spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            ..Options::default()
        },
    )
    .await
}

/// [`spawn_demo`] with rate limits no test reaches.
pub async fn spawn_demo_with_generous_limits(backend: Backend) -> Option<TestApp> {
    spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            rate_limits: Some(generous_rate_limits()),
            ..Options::default()
        },
    )
    .await
}

pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    spawn_app_with(backend, Options::default()).await
}

/// A local address where nothing listens, held for the whole test run.
pub use vdm_kit::testing::closed_port_url;

/// Each service's database, by service name.
type DbFor = Box<dyn Fn(&str) -> DatabaseConfig>;

/// Rate limits no test reaches: for tests that send many requests quickly.
pub fn generous_rate_limits() -> RateLimits {
    let generous = vdm_gateway::rate_limit::Rate {
        per_second: 1e6,
        burst: 1e6,
    };
    RateLimits {
        auth: generous,
        write: generous,
        read: generous,
        in_flight: 1_000_000,
        trusted_proxies: Vec::new(),
    }
}

/// The gateway's edge cache turned off: for tests that watch what reaches
/// the services (their caches, their latency) through repeated reads.
pub fn edge_cache_off() -> Option<EdgeCacheConfig> {
    Some(EdgeCacheConfig {
        max_bytes: 0,
        ..EdgeCacheConfig::default()
    })
}

/// [`spawn_app`] with [`Options`].
pub async fn spawn_app_with(backend: Backend, options: Options) -> Option<TestApp> {
    let suffix = random_suffix();
    let (db, cache, cleanup): (DbFor, CacheConfig, Cleanup) = match backend {
        Backend::Embedded => {
            let dir = std::env::temp_dir().join(format!("vdm-test-{suffix}"));
            let db_dir = dir.clone();
            let cache = match &options.redis_url {
                // The in-process event bus is per key prefix: apps of
                // tests running side by side do not see each other's events.
                None => CacheConfig {
                    key_prefix: format!("t{}_{suffix}", unix_secs()),
                    ..CacheConfig::in_process()
                },
                Some(url) => CacheConfig {
                    redis_url: Some(Secret::new(url.clone())),
                    redis_ca_file: options.redis_ca_file.clone(),
                    key_prefix: format!("t{}_{suffix}", unix_secs()),
                    memory_capacity: 1000,
                    timeout: Duration::from_millis(250),
                },
            };
            (
                Box::new(move |service: &str| DatabaseConfig::sqlite_file(&db_dir, service)),
                cache,
                Cleanup::Dir(dir),
            )
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
            prune_old_schemas(&pg).await;
            let prefix = format!("t{}_{suffix}", unix_secs());
            let cache = CacheConfig {
                redis_url: Some(Secret::new(redis)),
                redis_ca_file: None,
                key_prefix: prefix.clone(),
                memory_capacity: 1000,
                timeout: Duration::from_millis(500),
            };
            let schemas = ["quest", "npc", "world", "gateway", "metrics", "rumor", "player"]
                .iter()
                .map(|s| format!("{prefix}_{s}"))
                .collect();
            let url = pg.clone();
            (
                Box::new(move |service: &str| DatabaseConfig {
                    url: Secret::new(url.clone()),
                    schema: format!("{prefix}_{service}"),
                    // Two tests at a time, four pools each, on a Postgres
                    // other suites share: the NPC and world pools (few
                    // concurrent writes in these tests) stay small.
                    max_connections: if matches!(service, "npc" | "world" | "rumor") {
                        3
                    } else {
                        5
                    },
                    // Opened as the tests need them.
                    min_connections: 1,
                    acquire_timeout: Duration::from_secs(5),
                    migrate_on_start: true,
                }),
                cache,
                Cleanup::Schemas { url: pg, schemas },
            )
        }
    };
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let stats_csv = options
        .stats_csv
        .then(|| std::env::temp_dir().join(format!("vdm-stats-{suffix}.csv")));
    let services = Services {
        world: (!options.world_down).then(|| WorldConfig {
            database: db("world"),
            cache: cache.clone(),
            clock_rate: options.clock_rate.unwrap_or(60.0),
            artificial_delay: options.world_delay,
        }),
        npc: (!options.npc_down).then(|| NpcConfig {
            database: db("npc"),
            cache: cache.clone(),
            world_timeout: Duration::from_secs(2),
            memory_cap: options.memory_cap.unwrap_or(50),
            artificial_delay: options.npc_delay,
        }),
        quest: (!options.quest_down).then(|| QuestConfig {
            database: db("quest"),
            cache: cache.clone(),
            peer_timeout: Duration::from_secs(2),
            // Rewards reach the player in tests without waiting for a poll.
            outbox_poll: Duration::from_millis(200),
        }),
        player: (!options.player_down).then(|| PlayerConfig {
            database: db("player"),
            cache: cache.clone(),
            levels: Default::default(),
        }),
        rumor: (!options.rumor_down).then(|| {
            let defaults = TransformConfig::default();
            let (batch_size, batch_window) = options
                .rumor_batch
                .unwrap_or((defaults.batch_size, defaults.batch_window));
            RumorConfig {
                database: db("rumor"),
                cache: cache.clone(),
                peer_timeout: Duration::from_secs(2),
                transform: TransformConfig {
                    llm: options.llm.clone(),
                    batch_size,
                    batch_window,
                    ..defaults
                },
                // Tests tick on demand (POST /v1/rumors:tick).
                tick: TickConfig {
                    interval: None,
                    ..TickConfig::default()
                },
                artificial_delay: None,
            }
        }),
        metrics: Some(MetricsConfig {
            database: db("metrics"),
            scrape: {
                let interval = options.stats_interval.unwrap_or(vdm_metrics::config::DEFAULT_INTERVAL);
                ScrapeConfig {
                    // Empty: filled by `start` with every service of the process.
                    targets: options.stats_targets.clone(),
                    interval,
                    timeout: vdm_metrics::config::timeout_for(interval),
                    csv_path: stats_csv.clone(),
                    retention: options
                        .stats_retention
                        .unwrap_or(vdm_metrics::config::DEFAULT_RETENTION),
                }
            },
            budgets: options.budgets.clone().unwrap_or_else(|| {
                vdm_metrics::domain::budgets::parse_budgets(vdm_metrics::domain::budgets::DEFAULT_BUDGETS)
                    .expect("the repository's budgets parse")
            }),
        }),
        grpc_addrs: GrpcAddrs::default(),
        // The embedded back end calls its services in-process, as `vdm all`
        // does; Postgres + Redis over loopback HTTP/2, as between pods.
        in_process: matches!(backend, Backend::Embedded),
        connection_age: Default::default(),
        seed_demo: false,
    };
    let gateway = GatewayConfig {
        http_addr: loopback,
        bootstrap_budget: options.bootstrap_budget.unwrap_or(Duration::from_millis(300)),
        admin_token: Secret::new(ADMIN_TOKEN),
        admin_tokens_file: options.admin_tokens_file.clone(),
        jwt_secret: Secret::new(JWT_SECRET),
        session_ttl: Duration::from_secs(600),
        refresh_ttl: Duration::from_secs(3600),
        request_timeout: Duration::from_secs(10),
        shutdown_delay: Duration::ZERO,
        body_limit: 64 * 1024,
        body_read_timeout: Duration::from_secs(2),
        header_read_timeout: Duration::from_secs(2),
        cache: cache.clone(),
        realtime: RealtimeConfig {
            heartbeat: Duration::from_millis(500),
            queue: 64,
            ..RealtimeConfig::default()
        },
        rate_limits: Some(options.rate_limits.clone().unwrap_or_default()),
        edge_cache: options.edge_cache.clone().unwrap_or_default(),
        cors_origins: vec!["https://play.example".to_owned()],
    };
    let shutdown = CancellationToken::new();
    let running = vdm::embedded::start(&services, &services_down(), gateway.clone(), shutdown.clone())
        .await
        .expect("apps start");
    if options.seed_demo {
        vdm::demo::seed(
            running.world_addr.expect("the demo needs the world service"),
            running.npc_addr.expect("the demo needs the npc service"),
            running.quest_addr.expect("the demo needs the quest service"),
            running.rumor_addr,
        )
        .await
        .expect("demo world seeds");
        // The catalog the demo quests reward, as `vdm all` seeds it.
        if let Some(player) = running.player_addr {
            vdm::demo::seed_items(player).await.expect("demo items seed");
        }
    }
    Some(TestApp {
        addr: running.http_addr,
        world_addr: running.world_addr,
        npc_addr: running.npc_addr,
        quest_addr: running.quest_addr,
        rumor_addr: running.rumor_addr,
        metrics_addr: running.metrics_addr,
        stats_csv,
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown,
        running: Some(running),
        cleanup,
        setup: Some((services, gateway)),
        down_port: None,
        player_service: None,
    })
}

/// Every service at a closed port: those a test does not start are down.
fn services_down() -> Peers {
    let mut peers = Peers::default();
    for name in PEER_NAMES {
        peers.insert(name, closed_port_url());
    }
    peers
}

/// Drops test schemas older than an hour (left by tests that panicked).
async fn prune_old_schemas(url: &str) {
    static PRUNED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    PRUNED
        .get_or_init(|| async {
            let Ok(db) = Database::connect(url).await else { return };
            let cutoff = unix_secs().saturating_sub(3600);
            let rows = db
                .query_all_raw(sea_orm::Statement::from_string(
                    db.get_database_backend(),
                    "SELECT schema_name FROM information_schema.schemata WHERE schema_name ~ '^t[0-9]+_[0-9a-f]+_'",
                ))
                .await
                .unwrap_or_default();
            for row in rows {
                let Ok(name) = row.try_get::<String>("", "schema_name") else {
                    continue;
                };
                let secs: u64 = name[1..]
                    .split('_')
                    .next()
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(u64::MAX);
                if secs < cutoff {
                    let _ = db
                        .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            }
            let _ = db.close().await;
        })
        .await;
}

/// Starts only the gateway (SQLite) and the player service (sign-in needs
/// it), with every other service address pointing where nothing listens, as
/// when those services are down.
pub async fn spawn_gateway_without_services() -> TestApp {
    let player = TestService::<vdm_player::Player>::start(
        Backend::Embedded,
        |database, cache| PlayerConfig {
            database,
            cache,
            levels: Default::default(),
        },
        Peers::default(),
    )
    .await
    .expect("the embedded back end is always there");
    let dir = std::env::temp_dir().join(format!("vdm-test-{}", random_suffix()));
    let closed_port: u16 = closed_port_url()
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .expect("a port");
    let gateway = GatewayConfig {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        bootstrap_budget: Duration::from_millis(300),
        admin_token: Secret::new(ADMIN_TOKEN),
        admin_tokens_file: None,
        jwt_secret: Secret::new(JWT_SECRET),
        session_ttl: Duration::from_secs(600),
        refresh_ttl: Duration::from_secs(3600),
        request_timeout: Duration::from_secs(5),
        shutdown_delay: Duration::ZERO,
        body_limit: 64 * 1024,
        body_read_timeout: Duration::from_secs(2),
        header_read_timeout: Duration::from_secs(2),
        cache: CacheConfig::in_process(),
        realtime: RealtimeConfig::default(),
        rate_limits: None,
        edge_cache: EdgeCacheConfig::default(),
        cors_origins: Vec::new(),
    };
    let shutdown = CancellationToken::new();
    let mut peers = Peers::default();
    for name in PEER_NAMES {
        peers.insert(name, format!("http://127.0.0.1:{closed_port}"));
    }
    peers.insert("player", player.url());
    let app = vdm_gateway::App::build(&gateway, &peers, shutdown.clone())
        .await
        .expect("gateway builds");
    let addr = app.local_addr();
    tokio::spawn(app.run());
    TestApp {
        addr,
        world_addr: None,
        npc_addr: None,
        quest_addr: None,
        rumor_addr: None,
        metrics_addr: None,
        stats_csv: None,
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown,
        running: None,
        cleanup: Cleanup::Dir(dir),
        setup: None,
        down_port: Some(closed_port),
        player_service: Some(player),
    }
}

impl TestApp {
    /// Starts another gateway replica in front of the same services, cache
    /// and event bus (cleaned up by this app's `finish`).
    pub async fn spawn_second_gateway(&self) -> TestApp {
        let (_, config) = self.setup.clone().expect("a full app");
        let peers = &self.running.as_ref().expect("a running app").peers;
        let shutdown = CancellationToken::new();
        let app = vdm_gateway::App::build(&config, peers, shutdown.clone())
            .await
            .expect("second gateway builds");
        let addr = app.local_addr();
        tokio::spawn(app.run());
        TestApp {
            addr,
            world_addr: None,
            npc_addr: None,
            quest_addr: None,
            rumor_addr: None,
            metrics_addr: None,
            stats_csv: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
            shutdown,
            running: None,
            cleanup: Cleanup::None,
            setup: None,
            down_port: None,
            player_service: None,
        }
    }

    /// Starts another quest service replica on the same database, cache
    /// and event bus as this app's (stopped by this app's `finish`), and
    /// returns a gRPC client dialing it over loopback.
    pub async fn spawn_second_quest_replica(&self) -> QuestServiceClient<tonic::transport::Channel> {
        let (services, _) = self.setup.clone().expect("a full app");
        let url = self
            .spawn_second_replica::<vdm_quest::Quest>(&services.quest.expect("a quest service"))
            .await;
        QuestServiceClient::connect(url)
            .await
            .expect("second quest replica answers")
    }

    /// As [`TestApp::spawn_second_quest_replica`], for the player service.
    pub async fn spawn_second_player_replica(&self) -> PlayerServiceClient<tonic::transport::Channel> {
        let (services, _) = self.setup.clone().expect("a full app");
        let url = self
            .spawn_second_replica::<vdm_player::Player>(&services.player.expect("a player service"))
            .await;
        PlayerServiceClient::connect(url)
            .await
            .expect("second player replica answers")
    }

    /// As [`TestApp::spawn_second_quest_replica`], for the NPC service.
    pub async fn spawn_second_npc_replica(&self) -> NpcServiceClient<tonic::transport::Channel> {
        let (services, _) = self.setup.clone().expect("a full app");
        let url = self
            .spawn_second_replica::<vdm_npc::Npc>(&services.npc.expect("an npc service"))
            .await;
        NpcServiceClient::connect(url)
            .await
            .expect("second npc replica answers")
    }

    /// Builds and runs another replica of `S` beside this app's (its peers
    /// are this app's); returns the URL it serves gRPC on.
    async fn spawn_second_replica<S: vdm_kit::service::Service>(&self, config: &S::Config) -> String {
        let peers = &self.running.as_ref().expect("a running app").peers;
        let listener = Listener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("second replica binds");
        let url = listener.url();
        let Ok(app) = GrpcApp::build::<S>(listener, config, peers).await else {
            panic!("second {} replica builds", S::NAME);
        };
        tokio::spawn(app.run_until(self.shutdown.clone().cancelled_owned()));
        url
    }

    /// The router of a gateway built like this app's (same configuration,
    /// same `App::build`), for its route table; the gateway itself is not
    /// run.
    pub async fn gateway_router(&self) -> axum::Router {
        let (_, mut config) = self.setup.clone().expect("a full app");
        config.http_addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let shutdown = CancellationToken::new();
        let peers = &self.running.as_ref().expect("a running app").peers;
        let app = vdm_gateway::App::build(&config, peers, shutdown.clone())
            .await
            .expect("gateway builds");
        let router = app.router().clone();
        shutdown.cancel();
        router
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: impl Into<Bytes>,
    ) -> TestResponse {
        let mut request = http::Request::builder().method(method).uri(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(Full::new(body.into())).expect("valid request");
        let response = self.client.request(request).await.expect("request sent");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body read").to_bytes();
        TestResponse {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: &str) -> TestResponse {
        let auth = format!("Bearer {token}");
        self.send(Method::GET, path, &[("authorization", &auth)], Bytes::new())
            .await
    }

    pub async fn post_json(&self, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        self.json_request(Method::POST, path, token, body).await
    }

    pub async fn json_request(&self, method: Method, path: &str, token: Option<&str>, body: &Value) -> TestResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth));
        }
        self.send(method, path, &headers, serde_json::to_vec(body).unwrap())
            .await
    }

    /// Signs a device in and returns (player id, session token).
    /// Stops the player service of `spawn_gateway_without_services`, so
    /// that every service is down.
    pub async fn stop_player_service(&mut self) {
        if let Some(player) = self.player_service.take() {
            player.finish().await;
        }
    }

    /// A session token for `player_id`, signed with the gateway's secret
    /// (for a gateway that cannot sign anyone in: the player service is
    /// down).
    pub fn mint_token(&self, player_id: i64) -> String {
        use std::sync::Arc;
        use vdm_gateway::auth::TokenKeys;
        use vdm_gateway::auth::operators::Operators;
        use vdm_gateway::auth::sessions::Revocations;
        let keys = TokenKeys::new(
            &Secret::new(JWT_SECRET),
            Arc::new(Operators::new(Secret::new(ADMIN_TOKEN), None).expect("the test admin token is valid")),
            Arc::new(Revocations::new(Duration::from_secs(600))),
            Duration::from_secs(600),
            Duration::from_secs(3600),
        );
        keys.issue(player_id, None).expect("a token signs").session_token
    }

    pub async fn sign_in(&self, device_id: &str) -> (i64, String) {
        let response = self
            .post_json("/v1/auth/device", None, &serde_json::json!({"device_id": device_id}))
            .await;
        assert!(
            response.status.is_success(),
            "sign in: {}",
            String::from_utf8_lossy(&response.body)
        );
        let body = response.json();
        (
            body["player_id"].as_i64().unwrap(),
            body["session_token"].as_str().unwrap().to_owned(),
        )
    }

    /// Creates a quest as admin and returns its JSON.
    pub async fn create_quest(&self, body: &Value) -> Value {
        let response = self.post_json("/v1/quests", Some(ADMIN_TOKEN), body).await;
        assert_eq!(
            response.status,
            StatusCode::CREATED,
            "create: {}",
            String::from_utf8_lossy(&response.body)
        );
        response.json()
    }

    /// A gRPC client of the world service.
    pub fn world(&self) -> WorldServiceClient<GrpcChannel> {
        let addr = self.world_addr.expect("the world service runs");
        WorldServiceClient::new(vdm_kit::grpc::channel(&format!("http://{addr}"), Duration::from_secs(10)).unwrap())
    }

    /// A gRPC client of the NPC service.
    pub fn npc(&self) -> NpcServiceClient<GrpcChannel> {
        let addr = self.npc_addr.expect("the npc service runs");
        NpcServiceClient::new(vdm_kit::grpc::channel(&format!("http://{addr}"), Duration::from_secs(10)).unwrap())
    }

    /// Stops every app and starts them again on the same data (new ports),
    /// as a restart of the processes would.
    pub async fn restart(mut self) -> TestApp {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.expect("apps stop cleanly");
        }
        let (services, gateway) = self.setup.take().expect("spawned by spawn_app");
        let shutdown = CancellationToken::new();
        let running = vdm::embedded::start(&services, &services_down(), gateway.clone(), shutdown.clone())
            .await
            .expect("apps start again");
        let cleanup = std::mem::replace(&mut self.cleanup, Cleanup::Dir(PathBuf::new()));
        TestApp {
            addr: running.http_addr,
            world_addr: running.world_addr,
            npc_addr: running.npc_addr,
            quest_addr: running.quest_addr,
            rumor_addr: running.rumor_addr,
            metrics_addr: running.metrics_addr,
            stats_csv: self.stats_csv.take(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            shutdown,
            running: Some(running),
            cleanup,
            setup: Some((services, gateway)),
            down_port: None,
            player_service: None,
        }
    }

    /// Stops the apps, waits for them, and removes the test's data.
    pub async fn finish(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.expect("apps stop cleanly");
        }
        if let Some(player) = self.player_service.take() {
            player.finish().await;
        }
        if let Some(csv) = &self.stats_csv {
            let _ = std::fs::remove_file(csv);
        }
        match &self.cleanup {
            Cleanup::None => {}
            Cleanup::Dir(dir) if !dir.as_os_str().is_empty() => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Dir(_) => {}
            Cleanup::Schemas { url, schemas } => {
                if let Ok(db) = Database::connect(url.as_str()).await {
                    for schema in schemas {
                        let _ = db
                            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                            .await;
                    }
                    let _ = db.close().await;
                }
            }
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

pub fn wolves() -> Value {
    serde_json::json!({
        "title": "Wolves at the Mill",
        "description": "The miller is afraid.",
        "giver_npc_id": 7,
        "region_id": 2,
        // A new player is level 1: the tests that accept it sign new players in.
        "level_requirement": 1,
        "reward": {"gold": 50, "xp": 120, "item_ids": [4]},
        "objectives": [
            {"description": "Slay wolves", "target_count": 5},
            {"description": "Report to the miller", "target_count": 1}
        ]
    })
}

/// A redis-server of a test's own on a free port (`None`, or a panic under
/// `VDM_TEST_REQUIRE_EXTERNAL=1`, when redis-server is not installed), up
/// and accepting connections. `args` are its arguments for that port (the
/// port to listen on, TLS files, ...); it never persists anything. Killed
/// when the returned guard drops.
pub async fn private_redis_server(args: impl FnOnce(u16) -> Vec<String>) -> Option<(PrivateRedis, u16)> {
    use std::process::Command;
    if Command::new("redis-server").arg("--version").output().is_err() {
        if std::env::var("VDM_TEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
            panic!("VDM_TEST_REQUIRE_EXTERNAL=1 but redis-server is not installed");
        }
        eprintln!("SKIPPED: redis-server is not installed");
        return None;
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    Some((start_private_redis(port, args(port)).await, port))
}

/// Starts a redis-server on `port` with `args` (a restart of one that
/// [`private_redis_server`] started, on the port its clients know).
pub async fn start_private_redis(port: u16, args: Vec<String>) -> PrivateRedis {
    let child = std::process::Command::new("redis-server")
        .args(args)
        .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("redis-server starts");
    let redis = PrivateRedis(child);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(std::time::Instant::now() < deadline, "redis-server did not come up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    redis
}

/// A redis-server process started by [`private_redis_server`].
pub struct PrivateRedis(pub std::process::Child);

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // Thawed first, in case a test froze it (SIGSTOP).
        let _ = std::process::Command::new("kill")
            .arg("-CONT")
            .arg(self.0.id().to_string())
            .status();
        let _ = self.0.kill();
        // Reaped, so its port is free for a restart.
        let _ = self.0.wait();
    }
}

/// Chromium for the browser tests: `$VDM_CHROMIUM`, else `chromium` (or
/// `chromium-browser`) on the PATH.
pub fn chromium() -> Option<PathBuf> {
    if let Ok(path) = std::env::var("VDM_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| ["chromium", "chromium-browser"].map(|name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}
