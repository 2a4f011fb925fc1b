//! Redis over TLS (`rediss://`): a private, TLS-only redis-server with the
//! tests' own certificate. With `VDM_REDIS_CA_FILE` naming its CA, the
//! caches and the event stream work through it (cached reads count as hits;
//! a push reaches a socket through the stream); without it, the server's
//! certificate is refused and the system keeps working from the database
//! (caching is an optimization). Its own test binary: the cache counters are
//! process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use http::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use helpers::{Backend, Options, PrivateRedis, TestApp, private_redis_server, spawn_app_with, wolves};

const CERT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/cert.pem");
const KEY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tls/key.pem");

/// A redis-server that speaks TLS only, on a port of its own.
async fn tls_redis() -> Option<(PrivateRedis, u16)> {
    private_redis_server(|port| {
        [
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            CERT,
            "--tls-key-file",
            KEY,
            "--tls-auth-clients",
            "no",
        ]
        .map(String::from)
        .to_vec()
    })
    .await
}

async fn counter(app: &TestApp, prefix: &str) -> u64 {
    let text = app.send(Method::GET, "/metrics", &[], Vec::new()).await.body;
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

const QUEST_HITS: &str = "vdm_cache_requests_total{cache=\"quest\",result=\"hit\"} ";

// One test: the hit counter is process-wide, so the two halves must not
// run side by side.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_over_tls_trusts_its_private_ca_and_refuses_other_certificates() {
    let Some((_redis, port)) = tls_redis().await else {
        return;
    };
    an_untrusted_redis_certificate_is_refused_and_reads_still_work(port).await;
    caches_and_the_event_stream_work_over_tls_with_a_private_ca(port).await;
}

async fn caches_and_the_event_stream_work_over_tls_with_a_private_ca(port: u16) {
    let app = spawn_app_with(
        Backend::Embedded,
        Options {
            redis_url: Some(format!("rediss://localhost:{port}")),
            redis_ca_file: Some(CERT.into()),
            // Every read reaches the quest service's cache in Redis.
            edge_cache: helpers::edge_cache_off(),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("tls-player").await;
    let path = format!("/v1/quests/{id}");
    app.get(&path, &token).await;
    let before = counter(&app, QUEST_HITS).await;
    assert_eq!(app.get(&path, &token).await.status, 200);
    assert_eq!(
        counter(&app, QUEST_HITS).await,
        before + 1,
        "served from Redis over TLS"
    );

    // A push travels through the Redis stream (XADD, then the gateway's
    // blocking XREAD on its own TLS connection) to the player's socket.
    let mut request = format!("ws://{}/v1/ws", app.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let accepted = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await;
    assert_eq!(accepted.status, 200);
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let frame = tokio::time::timeout_at(deadline.into(), socket.next())
            .await
            .expect("the push arrives within 5 s")
            .unwrap()
            .unwrap();
        if let Message::Text(text) = frame {
            let message: Value = serde_json::from_str(text.as_str()).unwrap();
            if message["type"] == "event" {
                assert_eq!(message["event"], "quest.updated");
                break;
            }
        }
    }
    app.finish().await;
}

async fn an_untrusted_redis_certificate_is_refused_and_reads_still_work(port: u16) {
    let app = spawn_app_with(
        Backend::Embedded,
        Options {
            redis_url: Some(format!("rediss://localhost:{port}")),
            edge_cache: helpers::edge_cache_off(),
            ..Options::default()
        },
    )
    .await
    .unwrap();
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("tls-doubter").await;
    let path = format!("/v1/quests/{id}");
    let before = counter(&app, QUEST_HITS).await;
    for _ in 0..3 {
        assert_eq!(app.get(&path, &token).await.status, 200, "read from the database");
    }
    assert_eq!(
        counter(&app, QUEST_HITS).await,
        before,
        "nothing came from a Redis whose certificate no trusted CA signed"
    );
    app.finish().await;
}
