//! The rumor transformer against a real HTTP server started here that
//! speaks the chat-completions format, with a call counter and switchable
//! delay and failure modes: identical concurrent asks share one upstream
//! call, distinct asks are batched, cached answers make no call, and an
//! upstream that fails, is slow or answers garbage is replaced by the local
//! transformer within the timeout.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use vdm_gateway::rate_limit::{Rate, RateLimits};
use vdm_rumor::config::LlmConfig;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, spawn_app_with};
use vdm_kit::backend_tests;

backend_tests!(
    identical_concurrent_asks_make_one_upstream_call_and_then_hit_the_cache,
    distinct_asks_arriving_together_go_upstream_in_batches,
    a_failing_slow_or_garbled_upstream_falls_back_to_the_local_transformer,
    an_https_upstream_is_trusted_through_its_private_ca_only,
);

/// The test certificate (CN and SAN `localhost`, `127.0.0.1`), self-signed,
/// and its key: `tests/fixtures/tls/README.md` says how they were made.
pub(crate) const TLS_CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/cert.pem");
pub(crate) const TLS_KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/key.pem");

const OK: usize = 0;
const FAIL: usize = 1;
const GARBLED: usize = 2;

/// The fake upstream's switches (mode: OK, FAIL or GARBLED; a delay before
/// any answer) and what it saw.
#[derive(Default)]
struct Upstream {
    mode: AtomicUsize,
    delay_ms: AtomicU64,
    calls: AtomicUsize,
    batch_sizes: Mutex<Vec<usize>>,
}

impl Upstream {
    fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

async fn completions(State(upstream): State<Arc<Upstream>>, Json(body): Json<Value>) -> Response {
    upstream.calls.fetch_add(1, Ordering::SeqCst);
    let delay = upstream.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(Duration::from_millis(delay)).await;
    }
    let user: Value = serde_json::from_str(body["messages"][1]["content"].as_str().unwrap()).unwrap();
    let retellings = user["retellings"].as_array().unwrap();
    upstream.batch_sizes.lock().unwrap().push(retellings.len());
    assert_eq!(body["model"], "test-model");
    match upstream.mode.load(Ordering::SeqCst) {
        FAIL => (StatusCode::INTERNAL_SERVER_ERROR, "upstream exploded").into_response(),
        GARBLED => Json(json!({"choices": [{"message": {"role": "assistant", "content": "I'd love to help!"}}]}))
            .into_response(),
        _ => {
            let texts: Vec<String> = retellings
                .iter()
                .map(|r| format!("(as the bard tells it) {}", r["text"].as_str().unwrap()))
                .collect();
            let content = json!({"texts": texts}).to_string();
            Json(json!({"choices": [{"message": {"role": "assistant", "content": content}}]})).into_response()
        }
    }
}

async fn start_upstream() -> (Arc<Upstream>, String) {
    let upstream = Arc::new(Upstream::default());
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(completions))
        .with_state(upstream.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (upstream, format!("http://{addr}/v1"))
}

/// [`start_upstream`] behind TLS with the test certificate, at
/// `https://localhost:<port>/v1`.
async fn start_tls_upstream() -> (Arc<Upstream>, String) {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let upstream = Arc::new(Upstream::default());
    let app = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(completions))
        .with_state(upstream.clone());
    let certs = CertificateDer::pem_file_iter(TLS_CERT)
        .unwrap()
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(TLS_KEY).unwrap();
    let config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that refuses the certificate ends here.
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    (upstream, format!("https://localhost:{port}/v1"))
}

async fn app_with_upstream(
    backend: Backend,
    timeout: Duration,
    batch: (usize, Duration),
) -> Option<(TestApp, Arc<Upstream>)> {
    let (upstream, url) = start_upstream().await;
    app_with(backend, url, None, timeout, batch)
        .await
        .map(|app| (app, upstream))
}

async fn app_with(
    backend: Backend,
    url: String,
    ca_file: Option<std::path::PathBuf>,
    timeout: Duration,
    batch: (usize, Duration),
) -> Option<TestApp> {
    let generous = Rate {
        per_second: 10_000.0,
        burst: 10_000.0,
    };
    spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            llm: Some(LlmConfig {
                ca_file,
                url,
                model: "test-model".to_owned(),
                api_key: Some(vdm_kit::config::Secret::new("sk-test")),
                timeout,
                retries: 2,
                backoff: Duration::from_millis(20),
            }),
            rumor_batch: Some(batch),
            rate_limits: Some(RateLimits {
                auth: generous,
                write: generous,
                read: generous,
                in_flight: 1_000_000,
                trusted_proxies: Vec::new(),
            }),
            ..Options::default()
        },
    )
    .await
}

async fn an_https_upstream_is_trusted_through_its_private_ca_only(backend: Backend) {
    // Trusting the private CA: the upstream writes the retelling.
    let (upstream, url) = start_tls_upstream().await;
    let ca = Some(std::path::PathBuf::from(TLS_CERT));
    let Some(app) = app_with(
        backend,
        url,
        ca,
        Duration::from_secs(5),
        (16, Duration::from_millis(10)),
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("tls-listener").await;
    let answer = talk(&app, &token, 4).await;
    let text = answer["rumor"]["text"].as_str().unwrap();
    assert!(text.starts_with("(as the bard tells it) "), "{text}");
    assert_eq!(upstream.calls(), 1);
    app.finish().await;

    // Without it, the certificate is refused: no answer comes from there,
    // and the local transformer tells the rumor.
    let (upstream, url) = start_tls_upstream().await;
    let app = app_with(
        backend,
        url,
        None,
        Duration::from_secs(5),
        (16, Duration::from_millis(10)),
    )
    .await
    .unwrap();
    let (_, token) = app.sign_in("tls-listener").await;
    let answer = talk(&app, &token, 4).await;
    let text = answer["rumor"]["text"].as_str().unwrap();
    assert!(!text.starts_with("(as the bard tells it) "), "{text}");
    assert_eq!(upstream.calls(), 0, "an untrusted upstream is never asked");
    app.finish().await;
}

async fn talk(app: &TestApp, token: &str, npc: i64) -> Value {
    let response = app
        .post_json(&format!("/v1/npcs/{npc}/talk"), Some(token), &json!({}))
        .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

async fn identical_concurrent_asks_make_one_upstream_call_and_then_hit_the_cache(backend: Backend) {
    let Some((app, upstream)) =
        app_with_upstream(backend, Duration::from_secs(5), (16, Duration::from_millis(20))).await
    else {
        return;
    };
    // A slow upstream, so the asks overlap for certain.
    upstream.delay_ms.store(300, Ordering::SeqCst);
    let mut tokens = Vec::new();
    for i in 0..100 {
        tokens.push(app.sign_in(&format!("listener-{i}")).await.1);
    }
    // 100 players ask Tobin (NPC 4) at once: the same retelling for each.
    let answers = futures_util::future::join_all(tokens.iter().map(|token| talk(&app, token, 4))).await;
    assert_eq!(upstream.calls(), 1, "one upstream call for 100 identical asks");
    let text = answers[0]["rumor"]["text"].as_str().unwrap();
    assert!(text.starts_with("(as the bard tells it) "), "{text}");
    for answer in &answers {
        assert_eq!(answer["first_time"], true);
        assert_eq!(answer["rumor"]["text"], text);
        assert_eq!(answer["rumor"]["transformer"], "llm/test-model");
    }
    // A latecomer is answered from the cache: no call at all.
    let (_, late) = app.sign_in("latecomer").await;
    let answer = talk(&app, &late, 4).await;
    assert_eq!(answer["rumor"]["text"], text);
    assert_eq!(upstream.calls(), 1, "the cached answer made no call");
    app.finish().await;
}

async fn distinct_asks_arriving_together_go_upstream_in_batches(backend: Backend) {
    let Some((app, upstream)) =
        app_with_upstream(backend, Duration::from_secs(5), (8, Duration::from_millis(100))).await
    else {
        return;
    };
    // Sixteen rumors Hilda (NPC 1) knows, each told to Aldo (NPC 2) at once:
    // sixteen different asks.
    let mut ids = Vec::new();
    for i in 0..16 {
        let body = json!({"text": format!("Rumor number {i} about the mill"), "origin_npc_id": 1, "region_id": 1, "truth": 0.5});
        let created = app.post_json("/v1/rumors", Some(ADMIN_TOKEN), &body).await;
        assert_eq!(created.status, 201);
        ids.push(created.json()["id"].as_i64().unwrap());
    }
    let spreads = ids.iter().map(|id| {
        let app = &app;
        async move {
            app.post_json(
                &format!("/v1/rumors/{id}/spread"),
                Some(ADMIN_TOKEN),
                &json!({"from_npc_id": 1, "to_npc_id": 2}),
            )
            .await
        }
    });
    let answers = futures_util::future::join_all(spreads).await;
    for answer in &answers {
        assert_eq!(answer.status, 201, "{}", String::from_utf8_lossy(&answer.body));
        assert_eq!(answer.json()["transformer"], "llm/test-model");
    }
    let sizes = upstream.batch_sizes.lock().unwrap().clone();
    assert_eq!(sizes.iter().sum::<usize>(), 16, "{sizes:?}");
    assert!(sizes.iter().all(|s| *s <= 8), "batch size cap: {sizes:?}");
    assert!(
        sizes.len() <= 4,
        "16 asks within the window take a few calls, not 16: {sizes:?}"
    );
    assert!(sizes.iter().any(|s| *s > 1), "{sizes:?}");
    app.finish().await;
}

async fn a_failing_slow_or_garbled_upstream_falls_back_to_the_local_transformer(backend: Backend) {
    let timeout = Duration::from_millis(600);
    let Some((app, upstream)) = app_with_upstream(backend, timeout, (16, Duration::from_millis(5))).await else {
        return;
    };
    let fallback = "local/1 (fallback)";

    // 500s: the first attempt and two retries, then the local text.
    upstream.mode.store(FAIL, Ordering::SeqCst);
    let (_, a) = app.sign_in("a").await;
    let started = Instant::now();
    let answer = talk(&app, &a, 4).await;
    assert_eq!(answer["rumor"]["transformer"], fallback);
    assert_eq!(upstream.calls(), 3, "one call and two retries");
    assert!(
        started.elapsed() < timeout + Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    let local_text = answer["rumor"]["text"].as_str().unwrap().to_owned();
    assert!(!local_text.starts_with("(as the bard"), "{local_text}");

    // Slower than the timeout: the local text within it.
    upstream.mode.store(OK, Ordering::SeqCst);
    upstream.delay_ms.store(3_000, Ordering::SeqCst);
    let (_, b) = app.sign_in("b").await;
    let started = Instant::now();
    let answer = talk(&app, &b, 4).await;
    let took = started.elapsed();
    assert_eq!(answer["rumor"]["transformer"], fallback);
    assert!(
        took < timeout + Duration::from_millis(700),
        "answered within the timeout: {took:?}"
    );
    // The local transformer is deterministic: the same words as before.
    assert_eq!(answer["rumor"]["text"], local_text.as_str());

    // Garbage: handled, not retried.
    upstream.delay_ms.store(0, Ordering::SeqCst);
    upstream.mode.store(GARBLED, Ordering::SeqCst);
    let before = upstream.calls();
    let (_, c) = app.sign_in("c").await;
    let answer = talk(&app, &c, 4).await;
    assert_eq!(answer["rumor"]["transformer"], fallback);
    assert_eq!(upstream.calls(), before + 1);

    // Fallbacks are not cached: once the upstream is back, it is asked.
    upstream.mode.store(OK, Ordering::SeqCst);
    let (_, d) = app.sign_in("d").await;
    let answer = talk(&app, &d, 4).await;
    assert_eq!(answer["rumor"]["transformer"], "llm/test-model");
    assert_eq!(upstream.calls(), before + 2);
    app.finish().await;
}
