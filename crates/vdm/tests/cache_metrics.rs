//! The quest cache seen through `/metrics`: a read-through miss, then hits,
//! then a miss again after a write invalidated the entry. Its own test
//! binary (one test), because the metrics recorder is process-wide and other
//! tests running in parallel would move the same counters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
mod helpers;

use http::Method;
use serde_json::json;

use helpers::{ADMIN_TOKEN, Backend, TestApp, spawn_app, wolves};

async fn counter(app: &TestApp, result: &str) -> u64 {
    let text = app.send(Method::GET, "/metrics", &[], Vec::new()).await.body;
    let text = String::from_utf8_lossy(&text);
    let prefix = format!("vdm_cache_requests_total{{cache=\"quest\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

async fn hit_then_invalidate(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("cache-watcher").await;
    let path = format!("/v1/quests/{id}");

    let (hits, misses) = (counter(&app, "hit").await, counter(&app, "miss").await);
    app.get(&path, &token).await;
    assert_eq!(
        counter(&app, "miss").await,
        misses + 1,
        "{backend:?}: first read misses"
    );
    app.get(&path, &token).await;
    app.get(&path, &token).await;
    assert_eq!(counter(&app, "hit").await, hits + 2, "{backend:?}: next reads hit");

    let patched = app
        .json_request(Method::PATCH, &path, Some(ADMIN_TOKEN), &json!({"title": "Changed"}))
        .await;
    assert_eq!(patched.status, 200);
    let read = app.get(&path, &token).await.json();
    assert_eq!(read["title"], "Changed");
    assert_eq!(
        counter(&app, "miss").await,
        misses + 2,
        "{backend:?}: the write invalidated the entry"
    );
    assert_eq!(counter(&app, "hit").await, hits + 2);
    app.get(&path, &token).await;
    assert_eq!(counter(&app, "hit").await, hits + 3, "{backend:?}: cached again");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cache_hits_and_invalidation_show_in_metrics() {
    hit_then_invalidate(Backend::Embedded).await;
    hit_then_invalidate(Backend::External).await;
}
