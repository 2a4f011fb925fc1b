//! The gateway's edge read cache through real HTTP: ETags and 304s, a write
//! through one gateway seen by the next reads through another (the change
//! travels the event bus: Redis on the Postgres back end, the in-process
//! bus on the embedded one), formats kept apart, per-player answers never
//! shared, and the cache's metrics.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use vdm_gateway::edge_cache::EdgeCacheConfig;
use vdm_proto::world::v1 as world_pb;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, TestResponse, spawn_app_with, wolves};
use vdm_kit::backend_tests;

backend_tests!(
    a_write_through_one_gateway_is_read_through_the_other,
    a_matching_if_none_match_answers_304_until_the_resource_changes,
    json_and_msgpack_bodies_are_kept_apart,
    per_player_answers_are_never_shared,
    hits_misses_and_invalidations_are_counted,
    the_front_answers_hits_as_the_router_does,
    the_front_keeps_quotas_and_revocations,
);

/// A TTL no test outlives: what a test sees change, the bus changed.
const LONG_TTL: Duration = Duration::from_secs(600);

/// How long a change may take to travel the bus to another gateway.
const BUS_DEADLINE: Duration = Duration::from_secs(5);

async fn spawn(backend: Backend, seed_demo: bool) -> Option<TestApp> {
    spawn_app_with(
        backend,
        Options {
            seed_demo,
            rate_limits: Some(crate::helpers::generous_rate_limits()),
            edge_cache: Some(EdgeCacheConfig {
                ttl: LONG_TTL,
                ..EdgeCacheConfig::default()
            }),
            ..Options::default()
        },
    )
    .await
}

/// Reads `path` through `app` until `done` holds for the answer; panics
/// with the last answer after [`BUS_DEADLINE`].
async fn read_until(app: &TestApp, path: &str, token: &str, done: impl Fn(&TestResponse) -> bool) -> TestResponse {
    let start = Instant::now();
    loop {
        let read = app.get(path, token).await;
        if done(&read) {
            return read;
        }
        assert!(
            start.elapsed() < BUS_DEADLINE,
            "{path} did not change within {BUS_DEADLINE:?}: {} {}",
            read.status,
            String::from_utf8_lossy(&read.body)
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn a_write_through_one_gateway_is_read_through_the_other(backend: Backend) {
    let Some(a) = spawn(backend, true).await else { return };
    let b = a.spawn_second_gateway().await;
    let (_, token) = b.sign_in("edge-reader").await;

    // A quest: read through B (filling B's cache), changed through A.
    let id = a.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let path = format!("/v1/quests/{id}");
    let first = b.get(&path, &token).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.json()["title"], "Wolves at the Mill");
    assert_eq!(b.get(&path, &token).await.json(), first.json(), "served again");
    let in_region = |page: &Value| page["items"].as_array().map_or(0, Vec::len);
    let page_before = in_region(&b.get("/v1/quests?region_id=2&limit=100", &token).await.json());
    // The bootstrap's public parts are kept too (as the services' answers).
    let offered = |bootstrap: &Value| bootstrap["quests"].as_array().map_or(0, Vec::len);
    let offered_before = offered(&b.get("/v1/bootstrap?region_id=2", &token).await.json());
    let updated = a
        .json_request(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            &json!({"title": "Wolves, again"}),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", String::from_utf8_lossy(&updated.body));
    let seen = read_until(&b, &path, &token, |r| r.json()["title"] == "Wolves, again").await;
    assert_ne!(seen.header("etag"), first.header("etag"));
    // A's own next read sees its write at once (dropped locally).
    assert_eq!(a.get(&path, &token).await.json()["title"], "Wolves, again");

    // A new quest shows in B's cached page of that region.
    a.create_quest(&wolves()).await;
    read_until(&b, "/v1/quests?region_id=2&limit=100", &token, |r| {
        in_region(&r.json()) == page_before + 1
    })
    .await;
    read_until(&b, "/v1/bootstrap?region_id=2", &token, |r| {
        offered(&r.json()) == offered_before + 1
    })
    .await;

    // A deleted quest is gone from B.
    let deleted = a
        .send(
            Method::DELETE,
            &path,
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            Vec::new(),
        )
        .await;
    assert_eq!(deleted.status, 204);
    read_until(&b, &path, &token, |r| r.status == 404).await;

    // An NPC moved through A: its body and the region pages on B follow.
    let before = b.get("/v1/npcs/1", &token).await.json();
    assert_eq!(before["region_id"], 1);
    assert!(npc_ids(&b.get("/v1/npcs?region_id=1", &token).await.json()).contains(&1));
    let bootstrap_npcs = |r: &TestResponse| npc_ids(&json!({"items": r.json()["npcs"]}));
    assert!(bootstrap_npcs(&b.get("/v1/bootstrap?region_id=1", &token).await).contains(&1));
    assert!(bootstrap_npcs(&a.get("/v1/bootstrap?region_id=1", &token).await).contains(&1));
    let moved = a
        .post_json("/v1/npcs/1/move", Some(ADMIN_TOKEN), &json!({"q": 6, "r": -4}))
        .await;
    assert_eq!(moved.status, 200, "{}", String::from_utf8_lossy(&moved.body));
    // A's own next bootstrap sees its write at once.
    assert!(!bootstrap_npcs(&a.get("/v1/bootstrap?region_id=1", &token).await).contains(&1));
    read_until(&b, "/v1/npcs/1", &token, |r| r.json()["region_id"] == 2).await;
    read_until(&b, "/v1/npcs?region_id=1", &token, |r| !npc_ids(&r.json()).contains(&1)).await;
    read_until(&b, "/v1/bootstrap?region_id=1", &token, |r| {
        !bootstrap_npcs(r).contains(&1)
    })
    .await;

    // Factions change in the world service (no gateway route writes them):
    // B drops its cached list when the service publishes the change.
    let factions = b.get("/v1/world/factions", &token).await.json();
    assert!(!faction_names(&factions).contains(&"The Night Lantern".to_owned()));
    a.world()
        .upsert_faction(world_pb::UpsertFactionRequest {
            faction: Some(world_pb::Faction {
                id: 77,
                name: "The Night Lantern".to_owned(),
            }),
        })
        .await
        .unwrap();
    read_until(&b, "/v1/world/factions", &token, |r| {
        faction_names(&r.json()).contains(&"The Night Lantern".to_owned())
    })
    .await;

    b.finish().await;
    a.finish().await;
}

async fn a_matching_if_none_match_answers_304_until_the_resource_changes(backend: Backend) {
    let Some(app) = spawn(backend, false).await else { return };
    let (_, token) = app.sign_in("conditional").await;
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let path = format!("/v1/quests/{id}");
    let bearer = format!("Bearer {token}");

    let first = app.get(&path, &token).await;
    assert_eq!(first.status, 200);
    let etag = first.header("etag").expect("an ETag on the 200").to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "a strong ETag: {etag}");
    assert_eq!(
        app.get(&path, &token).await.header("etag"),
        Some(etag.as_str()),
        "stable"
    );

    let conditional = |tag: String| {
        let bearer = bearer.clone();
        let path = path.clone();
        let app = &app;
        async move {
            app.send(
                Method::GET,
                &path,
                &[("authorization", &bearer), ("if-none-match", &tag)],
                Vec::new(),
            )
            .await
        }
    };
    let not_modified = conditional(etag.clone()).await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty(), "no body on a 304");
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    assert_eq!(
        conditional(format!("\"other\", W/{etag}")).await.status,
        304,
        "a list, weak form"
    );
    assert_eq!(conditional("\"other\"".to_owned()).await.status, 200);

    // Still authenticated: a 304 is no way around the token.
    let anonymous = app
        .send(Method::GET, &path, &[("if-none-match", &etag)], Vec::new())
        .await;
    assert_eq!(anonymous.status, 401);

    let updated = app
        .json_request(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            &json!({"title": "Wolves, again"}),
        )
        .await;
    assert_eq!(updated.status, 200);
    let changed = conditional(etag.clone()).await;
    assert_eq!(changed.status, 200, "the old ETag no longer matches");
    assert_eq!(changed.json()["title"], "Wolves, again");
    let new_etag = changed.header("etag").unwrap().to_owned();
    assert_ne!(new_etag, etag);
    assert_eq!(conditional(new_etag).await.status, 304);

    // Pages carry ETags too.
    let page = app.get("/v1/quests", &token).await;
    let page_etag = page.header("etag").expect("an ETag on a page").to_owned();
    let again = app
        .send(
            Method::GET,
            "/v1/quests",
            &[("authorization", &bearer), ("if-none-match", &page_etag)],
            Vec::new(),
        )
        .await;
    assert_eq!(again.status, 304);

    // Errors are not kept: an unknown quest stays a 404 without an ETag.
    let missing = app.get("/v1/quests/999999", &token).await;
    missing.assert_error(404, "not_found");
    assert!(missing.header("etag").is_none());
    app.finish().await;
}

async fn json_and_msgpack_bodies_are_kept_apart(backend: Backend) {
    let Some(app) = spawn(backend, false).await else { return };
    let (_, token) = app.sign_in("formats").await;
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let path = format!("/v1/quests/{id}");
    let bearer = format!("Bearer {token}");
    let packed = |tag: Option<&str>| {
        let mut headers = vec![("authorization", bearer.as_str()), ("accept", "application/msgpack")];
        if let Some(tag) = tag {
            headers.push(("if-none-match", tag));
        }
        let owned: Vec<(String, String)> = headers
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        let app = &app;
        let path = path.clone();
        async move {
            let headers: Vec<(&str, &str)> = owned.iter().map(|(n, v)| (n.as_str(), v.as_str())).collect();
            app.send(Method::GET, &path, &headers, Vec::new()).await
        }
    };

    let json_read = app.get(&path, &token).await;
    assert_eq!(json_read.header("content-type"), Some("application/json"));
    let msgpack_read = packed(None).await;
    assert_eq!(msgpack_read.status, 200);
    assert_eq!(msgpack_read.header("content-type"), Some("application/msgpack"));
    let decoded: Value = rmp_serde::from_slice(&msgpack_read.body).expect("a MessagePack body");
    assert_eq!(decoded, json_read.json(), "the same quest in either format");
    let (json_etag, msgpack_etag) = (json_read.header("etag").unwrap(), msgpack_read.header("etag").unwrap());
    assert_ne!(json_etag, msgpack_etag);
    // Read again in the other order: each format from its own entry.
    assert_eq!(
        app.get(&path, &token).await.header("content-type"),
        Some("application/json")
    );
    assert_eq!(packed(None).await.body, msgpack_read.body);
    // A JSON ETag does not validate the MessagePack body.
    assert_eq!(packed(Some(json_etag)).await.status, 200);
    assert_eq!(packed(Some(msgpack_etag)).await.status, 304);
    app.finish().await;
}

async fn per_player_answers_are_never_shared(backend: Backend) {
    let Some(app) = spawn(backend, false).await else { return };
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let objective = app.get(&format!("/v1/quests/{id}"), ADMIN_TOKEN).await.json()["objectives"][0]["id"]
        .as_i64()
        .unwrap();
    let (_, hero) = app.sign_in("edge-hero").await;
    let (_, other) = app.sign_in("edge-other").await;
    for token in [&hero, &other] {
        let accepted = app
            .post_json(&format!("/v1/quests/{id}/accept"), Some(token), &json!({}))
            .await;
        assert_eq!(accepted.status, 200);
    }
    // Both read their quest log, then the hero progresses.
    for _ in 0..2 {
        for token in [&hero, &other] {
            assert_eq!(app.get("/v1/me/quests", token).await.status, 200);
        }
    }
    let progress = app
        .post_json(
            &format!("/v1/me/quests/{id}/progress"),
            Some(&hero),
            &json!({"objective_id": objective, "amount": 3}),
        )
        .await;
    assert_eq!(progress.status, 200);
    let progress_of = |log: &Value| log["items"][0]["objectives"][0]["progress"].as_i64();
    let hero_log = app.get("/v1/me/quests", &hero).await.json();
    let other_log = app.get("/v1/me/quests", &other).await.json();
    assert_eq!(hero_log["items"][0]["quest_id"], id, "{hero_log}");
    assert_eq!(other_log["items"][0]["quest_id"], id, "{other_log}");
    assert_eq!(progress_of(&hero_log), Some(3), "{hero_log}");
    assert_eq!(progress_of(&other_log), Some(0), "{other_log}");
    // A player's own answers are not given the shared cache's validators.
    assert!(app.get("/v1/me/quests", &other).await.header("etag").is_none());
    app.finish().await;
}

async fn hits_misses_and_invalidations_are_counted(backend: Backend) {
    let Some(app) = spawn(backend, true).await else { return };
    let (_, token) = app.sign_in("counted").await;
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let path = format!("/v1/quests/{id}");
    // Metrics are process-wide and tests run side by side: compare growth.
    let before = metrics(&app).await;
    assert_eq!(app.get(&path, &token).await.status, 200);
    for _ in 0..3 {
        assert_eq!(app.get(&path, &token).await.status, 200);
    }
    let filled = metrics(&app).await;
    let requests = |text: &str, result: &str| {
        sample(
            text,
            "vdm_edge_cache_requests_total",
            &["resource=\"quest\"", &format!("result=\"{result}\"")],
        )
    };
    assert!(requests(&filled, "miss") >= requests(&before, "miss") + 1.0, "{filled}");
    assert!(requests(&filled, "hit") >= requests(&before, "hit") + 3.0, "{filled}");
    // `vdm_edge_cache_bytes` is one gauge per process, set by each cache
    // to its own total: with other tests' gateways in this process it may
    // read any of theirs (one just emptied by an invalidation reads 0), so
    // only its presence is checked here; the per-cache accounting has unit
    // tests in `edge_cache`.
    for family in [
        "vdm_edge_cache_requests_total",
        "vdm_edge_cache_bytes",
        "vdm_edge_cache_invalidations_total",
    ] {
        assert!(filled.contains(&format!("# HELP {family} ")), "{family} has HELP text");
    }

    let updated = app
        .json_request(Method::PATCH, &path, Some(ADMIN_TOKEN), &json!({"title": "Counted"}))
        .await;
    assert_eq!(updated.status, 200);
    let invalidations = |text: &str| sample(text, "vdm_edge_cache_invalidations_total", &["kind=\"quest\""]);
    let start = Instant::now();
    // The local drop and the bus event's: at least two.
    while invalidations(&metrics(&app).await) < invalidations(&filled) + 2.0 {
        assert!(start.elapsed() < BUS_DEADLINE, "no invalidation counted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(app.get(&path, &token).await.json()["title"], "Counted");
    app.finish().await;
}

/// The headers of an answer that a front answer and a router answer must
/// share, with their values (the ids and the date differ per request).
fn comparable(response: &TestResponse) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = response
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "date" | "x-request-id" | "x-trace-id"))
        .map(|(name, value)| (name.to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
        .collect();
    headers.sort();
    headers
}

/// A second read of a kept quest, NPC or region is the front's (counted
/// in `vdm_edge_front_answers_total`) and is the router's answer to the
/// byte: status, body and headers, in JSON and MessagePack, with CORS (the
/// harness configures an origin), a 304, the request id and the request
/// metrics of the route.
async fn the_front_answers_hits_as_the_router_does(backend: Backend) {
    let Some(app) = spawn(backend, true).await else { return };
    let (_, token) = app.sign_in("front").await;
    let bearer = format!("Bearer {token}");
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let quest = format!("/v1/quests/{id}");
    let before = metrics(&app).await;
    let read = |path: String, extra: Vec<(&'static str, String)>| {
        let bearer = bearer.clone();
        let app = &app;
        async move {
            let mut headers: Vec<(&str, &str)> = vec![("authorization", &bearer)];
            headers.extend(extra.iter().map(|(name, value)| (*name, value.as_str())));
            app.send(Method::GET, &path, &headers, Vec::new()).await
        }
    };
    let msgpack = || vec![("accept", "application/msgpack".to_owned())];
    let origin = || vec![("origin", "https://play.example".to_owned())];
    for (path, extra) in [
        (quest.clone(), Vec::new()),
        (quest.clone(), msgpack()),
        (quest.clone(), origin()),
        ("/v1/npcs/1".to_owned(), Vec::new()),
        ("/v1/world/regions/1".to_owned(), msgpack()),
    ] {
        // The first read fills the cache through the router (and leaves
        // the token verified); the second is the front's.
        let routed = read(path.clone(), extra.clone()).await;
        let fronted = read(path.clone(), extra.clone()).await;
        assert_eq!(routed.status, 200, "{path}: {}", String::from_utf8_lossy(&routed.body));
        assert_eq!(fronted.status, routed.status, "{path}");
        assert_eq!(fronted.body, routed.body, "{path}");
        assert_eq!(comparable(&fronted), comparable(&routed), "{path} {extra:?}");
        assert!(fronted.header("x-request-id").is_some(), "{path}");
    }
    let with_origin = read(quest.clone(), origin()).await;
    assert_eq!(
        with_origin.header("access-control-allow-origin"),
        Some("https://play.example")
    );
    let etag = read(quest.clone(), Vec::new()).await.header("etag").unwrap().to_owned();
    let not_modified = read(quest.clone(), vec![("if-none-match", etag.clone())]).await;
    assert_eq!(not_modified.status, 304);
    assert!(not_modified.body.is_empty());
    assert_eq!(not_modified.header("etag"), Some(etag.as_str()));
    let named = read(quest.clone(), vec![("x-request-id", "front-chosen-1".to_owned())]).await;
    assert_eq!(named.header("x-request-id"), Some("front-chosen-1"));

    let after = metrics(&app).await;
    let front =
        |text: &str, status: &str| sample(text, "vdm_edge_front_answers_total", &[&format!("status=\"{status}\"")]);
    // Five second reads, the origin read, the ETag read, the named read.
    assert!(front(&after, "200") >= front(&before, "200") + 8.0, "{after}");
    assert!(front(&after, "304") >= front(&before, "304") + 1.0, "{after}");
    let routed = |text: &str| {
        sample(
            text,
            "http_server_requests_total",
            &["route=\"/v1/quests/{id}\"", "method=\"GET\"", "status=\"200\""],
        )
    };
    // Every read of the quest, by the router or the front, is one request.
    assert!(routed(&after) >= routed(&before) + 9.0, "{after}");
    assert!(after.contains("# HELP vdm_edge_front_answers_total "));
    app.finish().await;
}

/// The front answers quota refusals as the stack does (429, Retry-After,
/// the error body in the client's format) and hands a revoked session's
/// requests to the router, which refuses them.
async fn the_front_keeps_quotas_and_revocations(backend: Backend) {
    let mut limits = crate::helpers::generous_rate_limits();
    limits.read = vdm_gateway::rate_limit::Rate {
        per_second: 0.01,
        burst: 4.0,
    };
    let Some(app) = spawn_app_with(
        backend,
        Options {
            rate_limits: Some(limits),
            edge_cache: Some(EdgeCacheConfig {
                ttl: LONG_TTL,
                ..EdgeCacheConfig::default()
            }),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let path = format!("/v1/quests/{id}");
    let (_, token) = app.sign_in("front-quota").await;
    let before = metrics(&app).await;
    let bearer = format!("Bearer {token}");
    let headers = [("authorization", bearer.as_str()), ("accept", "application/msgpack")];
    let packed = || app.send(Method::GET, &path, &headers, Vec::new());
    // Four reads in the burst: each format through the router once (which
    // fills it), then a hit of each.
    for _ in 0..2 {
        assert_eq!(app.get(&path, &token).await.status, 200);
        assert_eq!(packed().await.status, 200);
    }
    let refused = app.get(&path, &token).await;
    refused.assert_error(429, "resource_exhausted");
    assert!(refused.header("retry-after").is_some());
    let refused = packed().await;
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("content-type"), Some("application/msgpack"));
    assert!(refused.header("retry-after").is_some());
    let body: Value = rmp_serde::from_slice(&refused.body).expect("a MessagePack error body");
    assert_eq!(body["error"]["code"], "resource_exhausted", "{body}");
    let after = metrics(&app).await;
    let front =
        |text: &str, status: &str| sample(text, "vdm_edge_front_answers_total", &[&format!("status=\"{status}\"")]);
    assert!(front(&after, "429") >= front(&before, "429") + 2.0, "{after}");

    // A session signed out is refused, though the front knew its token.
    let (_, other) = app.sign_in("front-revoked").await;
    assert_eq!(app.get(&path, &other).await.status, 200);
    let out = app.post_json("/v1/auth/signout", Some(&other), &json!({})).await;
    assert_eq!(out.status, 204, "{}", String::from_utf8_lossy(&out.body));
    app.get(&path, &other).await.assert_error(401, "unauthenticated");
    app.finish().await;
}

async fn metrics(app: &TestApp) -> String {
    let response = app.send(Method::GET, "/metrics", &[], Vec::new()).await;
    assert_eq!(response.status, 200);
    String::from_utf8_lossy(&response.body).into_owned()
}

/// The sum of a family's samples whose labels include every one of `labels`.
fn sample(text: &str, family: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter(|line| labels.iter().all(|label| line.contains(label)))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn npc_ids(page: &Value) -> Vec<i64> {
    page["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|n| n["id"].as_i64()).collect())
        .unwrap_or_default()
}

fn faction_names(factions: &Value) -> Vec<String> {
    factions["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .filter_map(|f| f["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
