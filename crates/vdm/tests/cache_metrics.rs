//! The quest and NPC caches seen through `/metrics`: a read-through miss,
//! then hits, then a miss again after a write invalidated the entry. Its own
//! test binary, because the metrics recorder is process-wide and other tests
//! running in parallel would move the same counters (its two tests watch
//! different caches).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
mod helpers;

use http::Method;
use serde_json::json;

use helpers::{ADMIN_TOKEN, Backend, Options, TestApp, edge_cache_off, spawn_app_with, wolves};
use vdm_proto::world::v1 as world_pb;

async fn counter(app: &TestApp, result: &str) -> u64 {
    cache_counter(app, "quest", result).await
}

async fn cache_counter(app: &TestApp, cache: &str, result: &str) -> u64 {
    let text = app.send(Method::GET, "/metrics", &[], Vec::new()).await.body;
    let text = String::from_utf8_lossy(&text);
    let prefix = format!("vdm_cache_requests_total{{cache=\"{cache}\",result=\"{result}\"}} ");
    text.lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0)
}

async fn hit_then_invalidate(backend: Backend) {
    // The gateway's edge cache off: every read reaches the service's cache.
    let options = Options {
        edge_cache: edge_cache_off(),
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
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

async fn npc_hit_then_invalidate(backend: Backend) {
    // The gateway's edge cache off: every read reaches the service's cache.
    let options = Options {
        edge_cache: edge_cache_off(),
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    app.world()
        .upsert_region(world_pb::UpsertRegionRequest {
            region: Some(world_pb::RegionSpec {
                id: 1,
                name: "Millbrook Vale".into(),
                biome: "farmland".into(),
                cells: vec![world_pb::Hex { q: 0, r: 0 }, world_pb::Hex { q: 1, r: 0 }],
            }),
        })
        .await
        .unwrap();
    let created = app
        .post_json("/v1/npcs", Some(ADMIN_TOKEN), &json!({"name": "Hilda", "region_id": 1}))
        .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let id = created.json()["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("npc-cache-watcher").await;
    let path = format!("/v1/npcs/{id}");
    let hits = || cache_counter(&app, "npc", "hit");
    let misses = || cache_counter(&app, "npc", "miss");

    let (h0, m0) = (hits().await, misses().await);
    app.get(&path, &token).await;
    assert_eq!(misses().await, m0 + 1, "{backend:?}: first read misses");
    app.get(&path, &token).await;
    assert_eq!(hits().await, h0 + 1, "{backend:?}: the next read hits");

    // A move reads the NPC (a hit), writes, and drops the entry.
    let moved = app
        .post_json(&format!("{path}/move"), Some(ADMIN_TOKEN), &json!({"q": 1, "r": 0}))
        .await;
    assert_eq!(moved.status, 200, "{}", String::from_utf8_lossy(&moved.body));
    let read = app.get(&path, &token).await.json();
    assert_eq!(read["q"], 1, "{backend:?}: the read after the move sees it");
    assert_eq!(misses().await, m0 + 2, "{backend:?}: the move invalidated the entry");
    app.get(&path, &token).await;
    assert_eq!(hits().await, h0 + 3, "{backend:?}: cached again");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn npc_cache_hits_and_invalidation_show_in_metrics() {
    npc_hit_then_invalidate(Backend::Embedded).await;
    npc_hit_then_invalidate(Backend::External).await;
}
