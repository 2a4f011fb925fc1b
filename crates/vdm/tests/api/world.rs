//! The world routes through the gateway, and the world service's writes
//! (over gRPC) showing through its caches.

use http::Method;
use serde_json::{Value, json};
use tonic::Code;
use vdm_proto::world::v1 as pb;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, spawn_app_with, spawn_demo};
use vdm_kit::backend_tests;

backend_tests!(
    regions_factions_time_and_events_of_the_demo_world,
    events_are_admin_only_validated_and_idempotent,
    region_and_faction_writes_show_at_once,
    the_world_clock_survives_a_restart,
);

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("items")
}

async fn regions_factions_time_and_events_of_the_demo_world(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("cartographer").await;

    let regions = app.get("/v1/world/regions", &token).await;
    assert_eq!(regions.status, 200, "{}", String::from_utf8_lossy(&regions.body));
    let regions = regions.json();
    assert_eq!(items(&regions).len(), 4);
    for region in items(&regions) {
        assert_eq!(region["cells"].as_array().unwrap().len(), 19, "{region}");
    }
    let first = &items(&regions)[0];
    assert_eq!(first["name"], "Millbrook Vale");
    assert_eq!(first["biome"], "farmland");
    assert_eq!(first["neighbor_ids"], json!([2, 3, 4]));
    assert!(first["cells"].as_array().unwrap().contains(&json!([0, 0])));

    let one = app.get("/v1/world/regions/2", &token).await.json();
    assert_eq!(one, items(&regions)[1], "one region reads as it lists");
    assert_eq!(one["neighbor_ids"], json!([1, 4]));
    app.get("/v1/world/regions/99", &token)
        .await
        .assert_error(404, "not_found");
    app.get("/v1/world/regions/abc", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.send(Method::GET, "/v1/world/regions", &[], Vec::new())
        .await
        .assert_error(401, "unauthenticated");

    let factions = app.get("/v1/world/factions", &token).await.json();
    assert_eq!(items(&factions).len(), 5);
    assert_eq!(items(&factions)[0], json!({"id": 1, "name": "The Crown Wardens"}));
    let relations = factions["relations"].as_array().unwrap();
    assert_eq!(relations.len(), 10, "every pair of five factions");
    assert!(relations.contains(&json!({"a": 1, "b": 2, "score": -70})));
    assert!(
        relations.contains(&json!({"a": 3, "b": 4, "score": 0})),
        "unset pairs score 0"
    );

    let time = app.get("/v1/world/time", &token).await.json();
    assert_eq!(time["day"], 1);
    assert_eq!(time["hour"], 8);
    assert_eq!(time["rate"], 60.0);
    assert!(time["game_time_ms"].as_i64().unwrap() >= 8 * 3_600_000);

    let events = app.get("/v1/world/events", &token).await.json();
    assert_eq!(items(&events).len(), 4);
    let event = &items(&events)[0];
    assert_eq!(event["kind"], "festival");
    assert_eq!(event["region_ids"], json!([1]));
    assert!(event["at"].as_str().unwrap().ends_with('Z'));
    let in_region = app.get("/v1/world/events?region_id=1", &token).await.json();
    let kinds: Vec<&str> = items(&in_region).iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["festival", "omen"]);
    let page = app.get("/v1/world/events?limit=3", &token).await.json();
    assert_eq!(items(&page).len(), 3);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/v1/world/events?limit=3&cursor={cursor}"), &token)
        .await
        .json();
    assert_eq!(items(&rest).len(), 1);
    assert!(rest.get("next_cursor").is_none());
    let later = app
        .get("/v1/world/events?since=2999-01-01T00:00:00Z", &token)
        .await
        .json();
    assert!(items(&later).is_empty());
    let since_ms = app.get("/v1/world/events?since=0", &token).await.json();
    assert_eq!(items(&since_ms).len(), 4);
    app.finish().await;
}

async fn events_are_admin_only_validated_and_idempotent(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("herald").await;
    let event = json!({"kind": "battle", "text": "Wardens clash with smugglers on the quay.", "region_ids": [3, 2]});

    app.post_json("/v1/world/events", None, &event)
        .await
        .assert_error(401, "unauthenticated");
    app.post_json("/v1/world/events", Some(&token), &event)
        .await
        .assert_error(403, "permission_denied");

    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
        ("idempotency-key", "battle-1"),
    ];
    let body = serde_json::to_vec(&event).unwrap();
    let first = app.send(Method::POST, "/v1/world/events", &headers, body.clone()).await;
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
    assert_eq!(first.header("idempotent-replayed"), Some("false"));
    let created = first.json();
    assert_eq!(created["region_ids"], json!([2, 3]), "regions come back sorted");
    assert!(created["game_time_ms"].as_i64().unwrap() >= 8 * 3_600_000);
    let retry = app.send(Method::POST, "/v1/world/events", &headers, body).await;
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json(), created);
    let mut other = event.clone();
    other["text"] = json!("Something else entirely.");
    app.send(
        Method::POST,
        "/v1/world/events",
        &headers,
        serde_json::to_vec(&other).unwrap(),
    )
    .await
    .assert_error(409, "already_exists");
    let listed = app.get("/v1/world/events?region_id=2", &token).await.json();
    assert_eq!(items(&listed).len(), 2, "the storm and one battle: {listed}");

    let cases = [
        (
            json!({"kind": "battle", "text": "x", "region_ids": [99]}),
            "unknown region 99",
        ),
        (
            json!({"kind": "battle", "text": "  ", "region_ids": [1]}),
            "text must not be empty",
        ),
        (json!({"kind": "Big Battle", "text": "x", "region_ids": [1]}), "kind"),
        (
            json!({"kind": "battle", "text": "x", "region_ids": []}),
            "at least one region",
        ),
        (json!({"kind": "battle", "text": "x", "region_ids": [0]}), "region_ids"),
        (json!({"kind": "battle", "text": "x"}), "region_ids"),
        (
            json!({"kind": "battle", "text": "x", "region_ids": "1"}),
            "invalid JSON",
        ),
    ];
    for (body, needle) in cases {
        let msg = app
            .post_json("/v1/world/events", Some(ADMIN_TOKEN), &body)
            .await
            .assert_error(400, "invalid_argument");
        assert!(msg.contains(needle), "{body}: {msg:?} should say {needle:?}");
    }
    for query in [
        "limit=0",
        "limit=101",
        "since=yesterday",
        "since=-5",
        "region_id=0",
        "cursor=zzz",
        "colour=red",
    ] {
        app.get(&format!("/v1/world/events?{query}"), &token)
            .await
            .assert_error(400, "invalid_argument");
    }
    app.finish().await;
}

async fn region_and_faction_writes_show_at_once(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("surveyor").await;
    let mut world = app.world();

    // Fill the caches: the region, the list, and a hex off the map.
    assert_eq!(
        app.get("/v1/world/regions/1", &token).await.json()["name"],
        "Millbrook Vale"
    );
    app.get("/v1/world/regions", &token).await;
    app.post_json("/v1/npcs/1/move", Some(ADMIN_TOKEN), &json!({"q": 0, "r": -3}))
        .await
        .assert_error(400, "invalid_argument");

    // Region 1 grows by that hex and is renamed.
    let mut cells: Vec<pb::Hex> = vdm::demo::world()
        .unwrap()
        .region(1)
        .unwrap()
        .cells()
        .into_iter()
        .map(|c| pb::Hex { q: c.q, r: c.r })
        .collect();
    cells.push(pb::Hex { q: 0, r: -3 });
    let saved = world
        .upsert_region(pb::UpsertRegionRequest {
            region: Some(pb::RegionSpec {
                id: 1,
                name: "Millbrook Flats".into(),
                biome: "marsh".into(),
                cells: cells.clone(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!saved.created);
    // The write went to the world service, not through the gateway.
    let region = settled(&app, "/v1/world/regions/1", &token, |r| r["name"] == "Millbrook Flats").await;
    let listed = settled(&app, "/v1/world/regions", &token, |l| items(l)[0]["biome"] == "marsh").await;
    assert_eq!(region["name"], "Millbrook Flats");
    assert_eq!(region["cells"].as_array().unwrap().len(), 20);
    assert_eq!(items(&listed)[0]["biome"], "marsh");
    let moved = app
        .post_json("/v1/npcs/1/move", Some(ADMIN_TOKEN), &json!({"q": 0, "r": -3}))
        .await;
    assert_eq!(
        moved.status,
        200,
        "the hex is on the map now: {}",
        String::from_utf8_lossy(&moved.body)
    );
    assert_eq!(moved.json()["region_id"], 1);

    // A cell belongs to one region only; a bad region is refused whole.
    let taken = world
        .upsert_region(pb::UpsertRegionRequest {
            region: Some(pb::RegionSpec {
                id: 5,
                name: "Squatters".into(),
                biome: "marsh".into(),
                cells: vec![pb::Hex { q: 0, r: -3 }],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::FailedPrecondition, "{taken:?}");
    assert!(taken.message().contains("region 1"), "{}", taken.message());
    let empty = world
        .upsert_region(pb::UpsertRegionRequest {
            region: Some(pb::RegionSpec {
                id: 5,
                name: "Nowhere".into(),
                biome: "void".into(),
                cells: vec![],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(empty.code(), Code::InvalidArgument);
    app.get("/v1/world/regions/5", &token)
        .await
        .assert_error(404, "not_found");

    // A new region next to region 2 shows in region 2's neighbours.
    world
        .upsert_region(pb::UpsertRegionRequest {
            region: Some(pb::RegionSpec {
                id: 5,
                name: "Eastern Reach".into(),
                biome: "hills".into(),
                cells: vec![pb::Hex { q: 8, r: -3 }],
            }),
        })
        .await
        .unwrap();
    let two = settled(&app, "/v1/world/regions/2", &token, |two| {
        two["neighbor_ids"] == json!([1, 4, 5])
    })
    .await;
    assert_eq!(two["neighbor_ids"], json!([1, 4, 5]), "{two}");

    // Faction writes show in the next read.
    let relation = |factions: &Value, a: i64, b: i64| {
        factions["relations"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["a"] == a && r["b"] == b)
            .map(|r| r["score"].as_i64().unwrap())
            .unwrap()
    };
    assert_eq!(relation(&app.get("/v1/world/factions", &token).await.json(), 1, 2), -70);
    let adjusted = world
        .adjust_faction_relation(pb::AdjustFactionRelationRequest {
            faction_a: 2,
            faction_b: 1,
            delta: 25,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((adjusted.faction_a, adjusted.faction_b, adjusted.score), (1, 2, -45));
    let factions = settled(&app, "/v1/world/factions", &token, |f| relation(f, 1, 2) == -45).await;
    assert_eq!(relation(&factions, 1, 2), -45);
    let clamped = world
        .adjust_faction_relation(pb::AdjustFactionRelationRequest {
            faction_a: 1,
            faction_b: 2,
            delta: -200,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(clamped.score, -100);
    for (a, b, delta, code) in [
        (1, 1, 5, Code::InvalidArgument),
        (1, 2, 500, Code::InvalidArgument),
        (1, 42, 5, Code::NotFound),
    ] {
        let err = world
            .adjust_faction_relation(pb::AdjustFactionRelationRequest {
                faction_a: a,
                faction_b: b,
                delta,
            })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{a}-{b} by {delta}: {err:?}");
    }
    world
        .upsert_faction(pb::UpsertFactionRequest {
            faction: Some(pb::Faction {
                id: 6,
                name: "Dune Riders".into(),
            }),
        })
        .await
        .unwrap();
    let factions = app.get("/v1/world/factions", &token).await.json();
    assert_eq!(items(&factions).len(), 6);
    assert_eq!(factions["relations"].as_array().unwrap().len(), 15);
    let one_faction = world
        .get_faction_relations(pb::GetFactionRelationsRequest { faction_id: Some(6) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(one_faction.relations.len(), 5);
    app.finish().await;
}

async fn the_world_clock_survives_a_restart(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            clock_rate: Some(1000.0),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("timekeeper").await;
    let game_time = |body: Value| body["game_time_ms"].as_i64().unwrap();
    let before = game_time(app.get("/v1/world/time", &token).await.json());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let later = game_time(app.get("/v1/world/time", &token).await.json());
    assert!(
        later - before >= 250_000,
        "1000 game ms per real ms: {before} then {later}"
    );

    let app = app.restart().await;
    let after = game_time(app.get("/v1/world/time", &token).await.json());
    // A clock started afresh would read day 1 08:00 plus the few hundred
    // game seconds since the restart, well before `later`.
    assert!(
        after >= later,
        "game time went back over the restart: {later} then {after}"
    );
    assert!(after - later < 60 * 60 * 1000, "and did not jump: {later} then {after}");
    app.finish().await;
}

/// Reads `path` through the gateway until `done` holds, for at most 2 s: a
/// write made at the world service reaches the gateway's edge cache on the
/// bus (Redis on the Postgres back end), within milliseconds. Returns the
/// last answer for the caller to assert on.
async fn settled(app: &TestApp, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let read = app.get(path, token).await.json();
        if done(&read) || std::time::Instant::now() > deadline {
            return read;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}
