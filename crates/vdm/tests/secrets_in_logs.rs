//! Secrets never reach logs or traces: the real `vdm all` process runs with
//! `VDM_LOG=debug`, known secret values in every secret setting (admin
//! token, JWT key, Postgres and Redis passwords, the LLM API key) and an
//! OTLP receiver inside this test. After sign-ins, a refresh, admin writes,
//! 400/401/403 errors, a socket opened with `?token=`, and rumor talk that
//! reaches the (failing) LLM upstream, no secret, session token or refresh
//! token appears in its stdout, stderr or any exported span.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use vdm_kit::testing::free_port;

const ADMIN: &str = "adm1n-S3CRET-token-7f3a9c21e4b8";
const JWT: &str = "jwt-S3CRET-key-7f3a9c21e4b8-0123456789abcdef";
const PG_PASSWORD: &str = "pgS3CRETpass7f3a9c";
const REDIS_PASSWORD: &str = "redisS3CRETpass7f3a9c";
const LLM_KEY: &str = "sk-llmS3CRETkey7f3a9c21e4b8";

#[derive(Default, Clone)]
struct Receiver {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// `(user, password, host:port)` of a `postgres://user[:password]@host:port/db` URL.
fn split_postgres_url(url: &str) -> (String, Option<String>, String) {
    let rest = url.split_once("://").map_or(url, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (userinfo, host) = authority.rsplit_once('@').unwrap_or(("postgres", authority));
    let (user, password) = match userinfo.split_once(':') {
        Some((user, password)) => (user, Some(password.to_owned())),
        None => (userinfo, None),
    };
    (user.to_owned(), password, host.to_owned())
}

struct Process(Child);

impl Process {
    /// SIGTERM, then wait: the exporter flushes on the way out.
    fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(15);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("vdm did not stop within 15 s of SIGTERM");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

async fn http(method: &str, url: &str, bearer: Option<&str>, body: Option<Value>) -> (u16, Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::builder().method(method).uri(url);
    if let Some(token) = bearer {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let body = body
        .map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()))
        .unwrap_or_default();
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let response = client
        .request(request.body(Full::new(body)).unwrap())
        .await
        .expect("request");
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        if let Ok(response) = client.get(url.parse().unwrap()).await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{url} not ready within 60 s");
}

/// An OpenAI-compatible upstream that records the bearer it is sent and
/// fails, so the rumor service retries, logs the failure and falls back.
async fn failing_llm(seen: Arc<Mutex<Vec<String>>>) -> SocketAddr {
    let app = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |headers: http::HeaderMap| {
            let seen = seen.clone();
            async move {
                if let Some(auth) = headers.get("authorization").and_then(|v| v.to_str().ok()) {
                    seen.lock().unwrap().push(auth.to_owned());
                }
                (http::StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded")
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    addr
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_logs_or_spans() {
    let admin_db =
        std::env::var("VDM_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let (user, password, host) = split_postgres_url(&admin_db);
    // A server that checks passwords needs the real one (then it is the
    // secret to look for); a trusting one takes any.
    let password = password.unwrap_or_else(|| PG_PASSWORD.to_owned());
    let Ok(db) = Database::connect(admin_db.as_str()).await else {
        if std::env::var("VDM_TEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
            panic!("VDM_TEST_REQUIRE_EXTERNAL=1 but postgres does not answer");
        }
        eprintln!("SKIPPED: postgres at 127.0.0.1:5432 does not answer");
        return;
    };
    // A database of its own: `vdm all` uses the default schema names.
    let database = format!("vdm_secrets_{}", free_port());
    db.execute_unprepared(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();

    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );
    let llm_seen = Arc::new(Mutex::new(Vec::new()));
    let llm = failing_llm(llm_seen.clone()).await;

    let dir = std::env::temp_dir().join(format!("vdm-secrets-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let (stdout_path, stderr_path) = (dir.join("stdout.log"), dir.join("stderr.log"));
    let http_port = free_port();
    let base = format!("http://127.0.0.1:{http_port}");
    let env = [
        ("VDM_DATA_DIR", dir.display().to_string()),
        ("VDM_HTTP_ADDR", format!("127.0.0.1:{http_port}")),
        ("VDM_LOG", "debug".to_owned()),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")),
        ("OTEL_SERVICE_NAME", "vdm".to_owned()),
        ("VDM_ADMIN_TOKEN", ADMIN.to_owned()),
        ("VDM_JWT_SECRET", JWT.to_owned()),
        (
            "DATABASE_URL",
            format!("postgres://{user}:{password}@{host}/{database}"),
        ),
        ("REDIS_URL", format!("redis://:{REDIS_PASSWORD}@127.0.0.1:6379/0")),
        ("VDM_LLM_URL", format!("http://{llm}/v1")),
        ("VDM_LLM_API_KEY", LLM_KEY.to_owned()),
        ("VDM_LLM_RETRIES", "1".to_owned()),
        ("VDM_RATE_LIMITS", "off".to_owned()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ];
    let mut command = Command::new(env!("CARGO_BIN_EXE_vdm"));
    command
        .arg("all")
        .env_clear()
        .stdout(Stdio::from(std::fs::File::create(&stdout_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&stderr_path).unwrap()));
    for (k, v) in &env {
        command.env(k, v);
    }
    let vdm = Process(command.spawn().expect("vdm starts"));
    wait_ready(&format!("{base}/ready")).await;
    // The demo world is seeded after the gateway answers; `vdm` says when.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&stdout_path)
        .unwrap_or_default()
        .contains("vdm is ready")
    {
        assert!(Instant::now() < deadline, "vdm did not finish seeding within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Sign in and refresh: the tokens pass through the gateway both ways.
    let (status, signed) = http(
        "POST",
        &format!("{base}/v1/auth/device"),
        None,
        Some(json!({"device_id": "secret-keeper"})),
    )
    .await;
    assert!(status == 200 || status == 201, "{status} {signed}");
    let refresh = signed["refresh_token"].as_str().unwrap().to_owned();
    let (status, refreshed) = http(
        "POST",
        &format!("{base}/v1/auth/refresh"),
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let session = refreshed["session_token"].as_str().unwrap().to_owned();
    let first_session = signed["session_token"].as_str().unwrap().to_owned();
    let second_refresh = refreshed["refresh_token"].as_str().unwrap().to_owned();

    // Admin writes.
    let quest = json!({"title": "Hidden", "giver_npc_id": 1, "region_id": 1, "objectives": [{"description": "Look", "target_count": 1}]});
    let (status, created) = http("POST", &format!("{base}/v1/quests"), Some(ADMIN), Some(quest)).await;
    assert_eq!(status, 201, "{created}");
    let rumor = json!({"text": "The miller hides gold", "origin_npc_id": 1, "region_id": 1, "truth": 0.5});
    let (status, body) = http("POST", &format!("{base}/v1/rumors"), Some(ADMIN), Some(rumor)).await;
    assert_eq!(status, 201, "{body}");

    // Errors: a tampered admin token and a tampered session (401), a player
    // on an admin route (403), a bad body (400), a refresh token used as a
    // session (401).
    let tampered_admin = format!("{ADMIN}x");
    let (status, _) = http("GET", &format!("{base}/v1/stats"), Some(&tampered_admin), None).await;
    assert_eq!(status, 401);
    let tampered_session = format!("{session}x");
    let (status, _) = http("GET", &format!("{base}/v1/me/quests"), Some(&tampered_session), None).await;
    assert_eq!(status, 401);
    let (status, _) = http("GET", &format!("{base}/v1/me/quests"), Some(&second_refresh), None).await;
    assert_eq!(status, 401);
    let (status, _) = http(
        "POST",
        &format!("{base}/v1/quests"),
        Some(&session),
        Some(json!({"title": "x"})),
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = http(
        "POST",
        &format!("{base}/v1/quests"),
        Some(ADMIN),
        Some(json!({"title": 5})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = http(
        "POST",
        &format!("{base}/v1/auth/refresh"),
        None,
        Some(json!({"refresh_token": format!("{refresh}x")})),
    )
    .await;
    assert_eq!(status, 401);

    // Rumor talk and a spread: the LLM upstream is called (and fails).
    let (status, told) = http("POST", &format!("{base}/v1/npcs/4/talk"), Some(&session), None).await;
    assert_eq!(status, 200, "{told}");
    let (status, spread) = http(
        "POST",
        &format!("{base}/v1/rumors/1/spread"),
        Some(ADMIN),
        Some(json!({"from_npc_id": 4, "to_npc_id": 5})),
    )
    .await;
    assert!(status < 500, "{status} {spread}");
    let (status, ticked) = http(
        "POST",
        &format!("{base}/v1/rumors:tick"),
        Some(ADMIN),
        Some(json!({"region_id": 1})),
    )
    .await;
    assert_eq!(status, 200, "{ticked}");

    // A WebGL-style socket: the session token in the query string.
    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://127.0.0.1:{http_port}/v1/ws?token={session}"))
        .await
        .expect("socket opens");
    use futures_util::StreamExt;
    let _ = tokio::time::timeout(Duration::from_secs(5), socket.next()).await;
    drop(socket);

    tokio::time::sleep(Duration::from_millis(500)).await;
    vdm.stop();
    server.abort();
    let stdout = std::fs::read_to_string(&stdout_path).unwrap_or_default();
    let stderr = std::fs::read_to_string(&stderr_path).unwrap_or_default();
    let spans = format!("{:?}", receiver.requests.lock().unwrap());
    if std::env::var("VDM_KEEP_LOGS").is_err() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    let _ = db
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .await;

    assert!(
        llm_seen.lock().unwrap().iter().any(|auth| auth.contains(LLM_KEY)),
        "the LLM upstream was called with the key (so the process held it)"
    );
    assert!(stdout.len() + stderr.len() > 1000, "the process logged at debug level");
    assert!(spans.contains("POST /v1/auth/device"), "spans were exported");
    let secrets = [
        ("VDM_ADMIN_TOKEN", ADMIN),
        ("VDM_JWT_SECRET", JWT),
        ("the DATABASE_URL password", &password),
        ("the REDIS_URL password", REDIS_PASSWORD),
        ("VDM_LLM_API_KEY", LLM_KEY),
        ("a session token", &first_session),
        ("a session token", &session),
        ("a refresh token", &refresh),
        ("a refresh token", &second_refresh),
    ];
    for (what, secret) in secrets {
        for (place, text) in [("stdout", &stdout), ("stderr", &stderr), ("spans", &spans)] {
            if let Some(at) = text.find(secret) {
                let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
                let end = text[at..].find('\n').map_or(text.len(), |i| at + i);
                panic!("{what} appears in {place}: {}", &text[start..end]);
            }
        }
    }
    // The JWT signature alone (the part that proves possession) is not
    // logged either.
    for token in [&first_session, &session, &refresh, &second_refresh] {
        let signature = token.rsplit('.').next().unwrap();
        assert!(!stdout.contains(signature) && !stderr.contains(signature) && !spans.contains(signature));
    }
}
