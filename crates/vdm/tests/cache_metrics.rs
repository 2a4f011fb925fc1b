//! The quest and NPC caches seen through `/metrics`: a read-through miss,
//! then hits, then a miss again after a write invalidated the entry; and the
//! rumor service's variant cache, which a repeated talk reads; and a
//! player's quests and heard rumors, kept across the player's own writes. Its own test
//! binary, because the metrics recorder is process-wide and other tests
//! running in parallel would move the same counters; its own tests take
//! turns ([`SERIAL`]: a talk reads NPCs through the NPC cache too).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
mod helpers;

use http::Method;
use serde_json::json;

use helpers::{ADMIN_TOKEN, Backend, Options, TestApp, edge_cache_off, spawn_app, spawn_app_with, spawn_demo, wolves};
use vdm_proto::world::v1 as world_pb;

/// Held by each test for its whole run: they read counters others move.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn counter(app: &TestApp, result: &str) -> u64 {
    cache_counter(app, "quest", result).await
}

async fn cache_counter(app: &TestApp, cache: &str, result: &str) -> u64 {
    metric(
        app,
        &format!("vdm_cache_requests_total{{cache=\"{cache}\",result=\"{result}\"}}"),
    )
    .await
}

/// The value of the counter named (with its labels) on `/metrics`; 0 when
/// it was never incremented.
async fn metric(app: &TestApp, series: &str) -> u64 {
    let text = app.send(Method::GET, "/metrics", &[], Vec::new()).await.body;
    let text = String::from_utf8_lossy(&text);
    let prefix = format!("{series} ");
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
    let _turn = SERIAL.lock().await;
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
    let _turn = SERIAL.lock().await;
    npc_hit_then_invalidate(Backend::Embedded).await;
    npc_hit_then_invalidate(Backend::External).await;
}

async fn variant_read_once_then_kept(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("variant-cache-watcher").await;
    let hits = || cache_counter(&app, "rumor_variant", "hit");
    let misses = || cache_counter(&app, "rumor_variant", "miss");
    let talk = || async {
        let response = app.post_json("/v1/npcs/4/talk", Some(&token), &json!({})).await;
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
        response.json()
    };

    // Tobin Reed (NPC 4) knows the demo rumor 1. The first talk tells it
    // (the player's own variant is new), the second repeats the player's
    // variant, read from the database once, the third from the cache.
    let first = talk().await;
    assert_eq!(first["first_time"], true, "{backend:?}: {first}");
    let m0 = misses().await;
    let second = talk().await;
    assert_eq!(second["first_time"], false, "{backend:?}: {second}");
    assert_eq!(misses().await, m0 + 1, "{backend:?}: the player's variant is read once");
    let h0 = hits().await;
    let third = talk().await;
    assert_eq!(hits().await, h0 + 1, "{backend:?}: then kept");
    assert_eq!(misses().await, m0 + 1, "{backend:?}: not read again");
    assert_eq!(third, second, "{backend:?}: the kept variant is the one read");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_repeated_talk_reads_the_variant_from_the_cache() {
    let _turn = SERIAL.lock().await;
    variant_read_once_then_kept(Backend::Embedded).await;
    variant_read_once_then_kept(Backend::External).await;
}

async fn player_quest_reads(app: &TestApp, source: &str) -> u64 {
    metric(
        app,
        &format!("vdm_quest_player_quest_reads_total{{source=\"{source}\"}}"),
    )
    .await
}

async fn own_writes_keep_the_list(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("quest-list-watcher").await;
    let list = || async { app.get("/v1/me/quests", &token).await.json()["items"].clone() };
    let read = || player_quest_reads(&app, "database");
    let kept = || player_quest_reads(&app, "replica");

    let (r0, k0) = (read().await, kept().await);
    assert_eq!(list().await, json!([]), "{backend:?}: no quests yet");
    assert_eq!(
        read().await,
        r0 + 1,
        "{backend:?}: the first list reads the player's quests"
    );

    // Each write is applied to what the replica keeps; its own
    // `quest.updated`, back over the bus within milliseconds, does not drop
    // it (the wait lets that event arrive before the next list).
    let accepted = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await;
    assert_eq!(accepted.status, 200, "{}", String::from_utf8_lossy(&accepted.body));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(list().await[0]["status"], "active", "{backend:?}");
    let abandoned = app
        .post_json(&format!("/v1/me/quests/{id}/abandon"), Some(&token), &json!({}))
        .await;
    assert_eq!(abandoned.status, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let after = list().await;
    assert_eq!(after[0]["status"], "abandoned", "{backend:?}");
    assert_eq!(
        after,
        app.get("/v1/me/quests", &token).await.json()["items"],
        "{backend:?}"
    );
    assert_eq!(
        read().await,
        r0 + 1,
        "{backend:?}: not read again after the player's own writes"
    );
    assert_eq!(
        kept().await,
        k0 + 3,
        "{backend:?}: the lists after the writes were kept"
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_players_own_writes_keep_their_quest_list() {
    let _turn = SERIAL.lock().await;
    own_writes_keep_the_list(Backend::Embedded).await;
    own_writes_keep_the_list(Backend::External).await;
}

async fn knowledge_reads(app: &TestApp, source: &str) -> u64 {
    metric(
        app,
        &format!("vdm_rumor_knowledge_reads_total{{holder=\"player\",source=\"{source}\"}}"),
    )
    .await
}

async fn tellings_keep_what_the_player_heard(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("heard-rumors-watcher").await;
    let read = || knowledge_reads(&app, "database");
    let kept = || knowledge_reads(&app, "memo");

    let r0 = read().await;
    assert_eq!(
        app.get("/v1/me/rumors", &token).await.json()["items"],
        json!([]),
        "{backend:?}"
    );
    assert_eq!(
        read().await,
        r0 + 1,
        "{backend:?}: the first list reads what the player heard"
    );
    // Tobin Reed (NPC 4) tells the demo rumor 1: added to what the replica
    // keeps; the telling's own `rumor.heard`, back over the bus within
    // milliseconds (the wait lets it arrive), does not drop it.
    let talk = app.post_json("/v1/npcs/4/talk", Some(&token), &json!({})).await;
    assert_eq!(talk.status, 200, "{}", String::from_utf8_lossy(&talk.body));
    let talk = talk.json();
    assert_eq!(talk["first_time"], true, "{backend:?}: {talk}");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let k0 = kept().await;
    let mine = app.get("/v1/me/rumors", &token).await.json();
    assert_eq!(mine["items"][0]["id"], talk["rumor"]["id"], "{backend:?}: {mine}");
    assert_eq!(mine["items"][0]["text"], talk["rumor"]["text"], "{backend:?}: {mine}");
    assert_eq!(kept().await, k0 + 1, "{backend:?}: listed from what the replica keeps");
    assert_eq!(read().await, r0 + 1, "{backend:?}: not read again after the telling");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_players_tellings_keep_their_known_rumors() {
    let _turn = SERIAL.lock().await;
    tellings_keep_what_the_player_heard(Backend::Embedded).await;
    tellings_keep_what_the_player_heard(Backend::External).await;
}
