#![allow(dead_code)]

//! Spawns the quest service and the gateway in this process on port 0 (no
//! sleeps: both are bound before `spawn_app` returns) and drives HTTP.
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
use vdm::embedded::Running;
use vdm_gateway::GatewayConfig;
use vdm_gateway::rate_limit::RateLimits;
use vdm_gateway::realtime::RealtimeConfig;
use vdm_kit::config::{CacheConfig, DatabaseConfig, Secret};
use vdm_kit::shutdown::CancellationToken;
use vdm_quest::QuestConfig;

pub const ADMIN_TOKEN: &str = "test-admin-token-0123456789";
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789abcdef0123456789";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Embedded,
    External,
}

/// Generates `mod sqlite` and `mod postgres` with one `#[tokio::test]` per
/// listed `async fn name(backend: Backend)`.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Embedded).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::External).await
                }
            )*
        }
    };
}

pub struct TestApp {
    pub addr: SocketAddr,
    gateway_config: Option<GatewayConfig>,
    client: Client<HttpConnector, Full<Bytes>>,
    shutdown: CancellationToken,
    running: Option<Running>,
    cleanup: Cleanup,
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
pub async fn spawn_app(backend: Backend) -> Option<TestApp> {
    let suffix = random_suffix();
    let (database, cache, cleanup) = match backend {
        Backend::Embedded => {
            let dir = std::env::temp_dir().join(format!("vdm-test-{suffix}"));
            let db = |service: &str| DatabaseConfig::sqlite_file(&dir, service);
            let cache = CacheConfig::in_process();
            ((db("quest"), db("gateway")), cache, Cleanup::Dir(dir))
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
            let db = |service: &str| DatabaseConfig {
                url: Secret::new(pg.clone()),
                schema: format!("{prefix}_{service}"),
                max_connections: 5,
                acquire_timeout: Duration::from_secs(5),
                migrate_on_start: true,
            };
            let cache = CacheConfig {
                redis_url: Some(Secret::new(redis)),
                key_prefix: prefix.clone(),
                memory_capacity: 1000,
                timeout: Duration::from_millis(500),
            };
            let schemas = vec![format!("{prefix}_quest"), format!("{prefix}_gateway")];
            (
                (db("quest"), db("gateway")),
                cache,
                Cleanup::Schemas { url: pg, schemas },
            )
        }
    };
    let gateway_cache = cache.clone();
    let quest = QuestConfig {
        grpc_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        database: database.0,
        cache,
    };
    let gateway = GatewayConfig {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        quest_url: String::new(),
        admin_token: Secret::new(ADMIN_TOKEN),
        jwt_secret: Secret::new(JWT_SECRET),
        session_ttl: Duration::from_secs(600),
        refresh_ttl: Duration::from_secs(3600),
        request_timeout: Duration::from_secs(10),
        body_limit: 64 * 1024,
        database: database.1,
        cache: gateway_cache,
        realtime: RealtimeConfig {
            heartbeat: Duration::from_millis(500),
            queue: 64,
            ..RealtimeConfig::default()
        },
        rate_limits: Some(RateLimits::default()),
        cors_origins: vec!["https://play.example".to_owned()],
    };
    let shutdown = CancellationToken::new();
    let mut second_config = gateway.clone();
    let running = vdm::embedded::start(&quest, gateway, shutdown.clone())
        .await
        .expect("apps start");
    second_config.quest_url = format!("http://{}", running.quest_addr);
    Some(TestApp {
        addr: running.http_addr,
        gateway_config: Some(second_config),
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown,
        running: Some(running),
        cleanup,
    })
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

/// Starts only the gateway (SQLite), pointed at a quest service address where
/// nothing listens, as when the service is down.
pub async fn spawn_gateway_without_services() -> TestApp {
    let dir = std::env::temp_dir().join(format!("vdm-test-{}", random_suffix()));
    // Bind and drop a listener: its port is then (almost surely) closed.
    let closed_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gateway = GatewayConfig {
        http_addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        quest_url: format!("http://127.0.0.1:{closed_port}"),
        admin_token: Secret::new(ADMIN_TOKEN),
        jwt_secret: Secret::new(JWT_SECRET),
        session_ttl: Duration::from_secs(600),
        refresh_ttl: Duration::from_secs(3600),
        request_timeout: Duration::from_secs(5),
        body_limit: 64 * 1024,
        database: DatabaseConfig::sqlite_file(&dir, "gateway"),
        cache: CacheConfig::in_process(),
        realtime: RealtimeConfig::default(),
        rate_limits: None,
        cors_origins: Vec::new(),
    };
    let shutdown = CancellationToken::new();
    let app = vdm_gateway::App::build(&gateway, shutdown.clone())
        .await
        .expect("gateway builds");
    let addr = app.local_addr();
    tokio::spawn(app.run());
    TestApp {
        addr,
        gateway_config: None,
        client: Client::builder(TokioExecutor::new()).build_http(),
        shutdown,
        running: None,
        cleanup: Cleanup::Dir(dir),
    }
}

impl TestApp {
    /// Starts another gateway replica in front of the same services, cache
    /// and event bus (cleaned up by this app's `finish`).
    pub async fn spawn_second_gateway(&self) -> TestApp {
        let config = self.gateway_config.clone().expect("a full app");
        let shutdown = CancellationToken::new();
        let app = vdm_gateway::App::build(&config, shutdown.clone())
            .await
            .expect("second gateway builds");
        let addr = app.local_addr();
        tokio::spawn(app.run());
        TestApp {
            addr,
            gateway_config: None,
            client: Client::builder(TokioExecutor::new()).build_http(),
            shutdown,
            running: None,
            cleanup: Cleanup::None,
        }
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

    /// Stops the apps, waits for them, and removes the test's data.
    pub async fn finish(mut self) {
        self.shutdown.cancel();
        if let Some(running) = self.running.take() {
            running.wait().await.expect("apps stop cleanly");
        }
        match &self.cleanup {
            Cleanup::None => {}
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
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
        "level_requirement": 3,
        "reward": {"gold": 50, "xp": 120, "item_ids": [4]},
        "objectives": [
            {"description": "Slay wolves", "target_count": 5},
            {"description": "Report to the miller", "target_count": 1}
        ]
    })
}
