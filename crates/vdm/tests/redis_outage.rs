//! Caching is an optimization, never a source of truth: with the cache's
//! Redis frozen (SIGSTOP: connections hang, as in a network partition), reads
//! still answer from the database, writes still succeed, and an entry cached
//! before the outage never serves stale data after a write made during it;
//! once Redis is back (SIGCONT), reads are served from the cache again, with
//! no restart. A private redis-server on its own port, so the shared one is
//! never disturbed. Its own test binary, whose tests run one at a time
//! (`SERIAL`): the cache counters they read are process-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
mod helpers;

use std::process::{Child, Command};
use std::time::{Duration, Instant};

use http::Method;
use serde_json::json;

use helpers::{
    ADMIN_TOKEN, Backend, Options, PrivateRedis, TestApp, edge_cache_off, private_redis_server, spawn_app_with,
    start_private_redis, wolves,
};

/// Held for the whole of each test: another test's cache reads would move
/// the counters this one compares.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn signal(child: &Child, sig: &str) {
    assert!(
        Command::new("kill")
            .arg(sig)
            .arg(child.id().to_string())
            .status()
            .unwrap()
            .success()
    );
}

async fn hits(app: &TestApp) -> u64 {
    let text = app.send(Method::GET, "/metrics", &[], Vec::new()).await.body;
    let prefix = "vdm_cache_requests_total{cache=\"quest\",result=\"hit\"} ";
    String::from_utf8_lossy(&text)
        .lines()
        .find_map(|l| l.strip_prefix(prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

fn redis_args(port: u16) -> Vec<String> {
    vec!["--port".to_owned(), port.to_string()]
}

/// A private Redis, an app whose quest reads all reach the quest service's
/// cache on it (no edge cache), one quest, a player's token and the
/// quest's path, with the quest already read once from Redis.
struct Setup {
    redis: PrivateRedis,
    port: u16,
    app: TestApp,
    token: String,
    path: String,
}

async fn setup(device: &str) -> Option<Setup> {
    let (redis, port) = private_redis_server(redis_args).await?;
    let options = Options {
        redis_url: Some(format!("redis://127.0.0.1:{port}")),
        edge_cache: edge_cache_off(),
        ..Options::default()
    };
    let app = spawn_app_with(Backend::Embedded, options).await.unwrap();
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in(device).await;
    let path = format!("/v1/quests/{id}");
    app.get(&path, &token).await;
    let before = hits(&app).await;
    assert_eq!(app.get(&path, &token).await.json()["title"], "Wolves at the Mill");
    assert_eq!(hits(&app).await, before + 1, "served from Redis to begin with");
    Some(Setup {
        redis,
        port,
        app,
        token,
        path,
    })
}

/// Reads every 50 ms, each answering `title`, until one is a cache hit
/// (at most 10 s).
async fn until_the_cache_is_used_again(app: &TestApp, path: &str, token: &str, title: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let before = hits(app).await;
        assert_eq!(app.get(path, token).await.json()["title"], title, "reads never fail");
        if hits(app).await > before {
            return;
        }
        assert!(Instant::now() < deadline, "the cache is used again once Redis is back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_and_writes_survive_a_redis_outage_without_stale_data() {
    let _serial = SERIAL.lock().await;
    let Some(Setup {
        redis,
        app,
        token,
        path,
        ..
    }) = setup("through-the-storm").await
    else {
        return;
    };

    // Redis freezes: every call now waits out its 250 ms budget.
    signal(&redis.0, "-STOP");
    let started = Instant::now();
    let read = app.get(&path, &token).await;
    assert_eq!(read.status, 200, "reads fall back to the database");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "bounded by the cache budget, took {:?}",
        started.elapsed()
    );
    let patched = app
        .json_request(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            &json!({"title": "Wargs at the Mill"}),
        )
        .await;
    assert_eq!(patched.status, 200, "writes succeed during the outage");
    assert_eq!(app.get(&path, &token).await.json()["title"], "Wargs at the Mill");

    // Redis is back, still holding the entry cached before the outage.
    signal(&redis.0, "-CONT");
    assert_eq!(
        app.get(&path, &token).await.json()["title"],
        "Wargs at the Mill",
        "never the stale entry"
    );
    until_the_cache_is_used_again(&app, &path, &token, "Wargs at the Mill").await;
    app.finish().await;
    drop(redis);
}

/// Pooled Redis connections in steady use are handed out without a check
/// (only one idle for a second is pinged first): so a connection a Redis
/// restart broke must leave the pool when its command fails, or a busy
/// process would keep failing on it forever. Reads every 50 ms across a
/// restart: the cache serves hits again soon after Redis is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_a_redis_restart_broke_leave_the_pool_under_steady_traffic() {
    let _serial = SERIAL.lock().await;
    let Some(Setup {
        redis,
        port,
        app,
        token,
        path,
    }) = setup("across-the-restart").await
    else {
        return;
    };
    drop(redis);
    let redis = start_private_redis(port, redis_args(port)).await;
    until_the_cache_is_used_again(&app, &path, &token, "Wolves at the Mill").await;
    app.finish().await;
    drop(redis);
}
