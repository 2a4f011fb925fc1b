//! `GET /v1/bootstrap`: every part of a region in one answer, the parts a
//! down or slow service owes named in `missing`, and the service calls made
//! at the same time, not one after another.

use std::time::{Duration, Instant};

use http::Method;
use serde_json::{Value, json};
use vdm_proto::npc::v1 as npc_pb;
use vdm_proto::world::v1 as world_pb;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, spawn_app_with, spawn_gateway_without_services, wolves};
use vdm_kit::backend_tests;

backend_tests!(
    bootstrap_carries_every_part_of_a_region,
    bootstrap_refuses_bad_requests,
    a_service_that_is_down_leaves_its_parts_missing,
    the_service_calls_overlap,
    a_call_over_the_budget_is_left_out,
    reseeding_the_demo_creates_nothing,
    dispositions_follow_each_change_and_move,
);

/// Fails on any `null` in the payload: absent values are left out.
fn assert_no_nulls(value: &Value, path: &str) {
    match value {
        Value::Null => panic!("null at {path}"),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                assert_no_nulls(item, &format!("{path}[{i}]"));
            }
        }
        Value::Object(fields) => {
            for (name, field) in fields {
                assert_no_nulls(field, &format!("{path}.{name}"));
            }
        }
        _ => {}
    }
}

fn npc_ids(body: &Value) -> Vec<i64> {
    body["npcs"]
        .as_array()
        .map(|npcs| npcs.iter().map(|n| n["id"].as_i64().unwrap()).collect())
        .unwrap_or_default()
}

/// The NPCs of a region's bootstrap that carry a disposition, with it.
async fn dispositions_shown(app: &TestApp, token: &str, region_id: i64) -> Vec<(i64, i64)> {
    let response = app.get(&format!("/v1/bootstrap?region_id={region_id}"), token).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    assert!(body.get("missing").is_none(), "nothing is missing: {body}");
    body["npcs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| Some((n["id"].as_i64()?, n.get("disposition")?.as_i64()?)))
        .collect()
}

/// Reads the region's dispositions until they are `expected`, for 3 s at
/// most (well under the 10 s an NPC replica keeps a player's); the last
/// read.
async fn dispositions_become(app: &TestApp, token: &str, region_id: i64, expected: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let shown = dispositions_shown(app, token, region_id).await;
        if shown == expected || Instant::now() > deadline {
            return shown;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn adjust(player_id: i64, npc_id: i64, delta: i32) -> npc_pb::AdjustDispositionRequest {
    npc_pb::AdjustDispositionRequest {
        npc_id,
        player_id,
        delta,
        idempotency_key: String::new(),
    }
}

/// The NPC service keeps a player's dispositions (with each NPC's region)
/// between bootstraps: a change drops them at once, and so does a move,
/// which takes an NPC, and what the player feels about it, to another
/// region's bootstrap.
async fn dispositions_follow_each_change_and_move(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (player, token) = app.sign_in("disposed").await;
    assert_eq!(
        dispositions_shown(&app, &token, 1).await,
        vec![],
        "{backend:?}: read and kept"
    );
    app.npc().adjust_disposition(adjust(player, 1, 25)).await.unwrap();
    assert_eq!(
        dispositions_shown(&app, &token, 1).await,
        vec![(1, 25)],
        "{backend:?}: the change shows in the next bootstrap"
    );
    app.npc().adjust_disposition(adjust(player, 2, -5)).await.unwrap();
    assert_eq!(dispositions_shown(&app, &token, 1).await, vec![(1, 25), (2, -5)]);
    assert_eq!(
        dispositions_shown(&app, &token, 2).await,
        vec![],
        "{backend:?}: none in region 2"
    );

    let moved = app
        .post_json("/v1/npcs/1/move", Some(ADMIN_TOKEN), &json!({"q": 6, "r": -4}))
        .await;
    assert_eq!(moved.status, 200, "{}", String::from_utf8_lossy(&moved.body));
    // The region's NPC list comes from the gateway's edge cache, which the
    // bus's `npc.moved` drops; the dispositions were dropped by the move.
    assert_eq!(
        dispositions_become(&app, &token, 2, &[(1, 25)]).await,
        vec![(1, 25)],
        "{backend:?}: the NPC took the disposition to region 2"
    );
    assert_eq!(dispositions_become(&app, &token, 1, &[(2, -5)]).await, vec![(2, -5)]);
    app.finish().await;
}

/// Two NPC service replicas share a database and an event bus; the
/// gateway's calls reach the first, which keeps a player's dispositions
/// for up to 10 s. A change through the second shows in the first's next
/// bootstrap well within that: its `disposition.changed` dropped them.
/// Postgres and Redis only (one process runs one replica of each service
/// on the embedded back end).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_npc_replicas_change_shows_in_the_next_bootstrap() {
    let backend = Backend::External;
    let Some(app) = spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (player, token) = app.sign_in("two-npc-replicas").await;
    let mut second = app.spawn_second_npc_replica().await;
    assert_eq!(
        dispositions_shown(&app, &token, 1).await,
        vec![],
        "read and kept by the first replica"
    );
    for (round, expected) in [(1, 10), (2, 20)] {
        second.adjust_disposition(adjust(player, 1, 10)).await.unwrap();
        assert_eq!(
            dispositions_become(&app, &token, 1, &[(1, expected)]).await,
            vec![(1, expected)],
            "the other replica's change {round}"
        );
    }
    app.finish().await;
}

async fn bootstrap_carries_every_part_of_a_region(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (player, token) = app.sign_in("newcomer").await;
    // Quest 4 needs level 4: 600 xp on the default curve.
    let grant = json!({"xp": 600, "gold": 12, "reason": "head start"});
    let granted = app
        .post_json(&format!("/v1/players/{player}/grants"), Some(ADMIN_TOKEN), &grant)
        .await;
    assert_eq!(granted.status, 200, "{}", String::from_utf8_lossy(&granted.body));
    for quest in [1, 4] {
        let accepted = app
            .post_json(&format!("/v1/quests/{quest}/accept"), Some(&token), &json!({}))
            .await;
        assert_eq!(accepted.status, 200, "{}", String::from_utf8_lossy(&accepted.body));
    }
    app.npc()
        .adjust_disposition(npc_pb::AdjustDispositionRequest {
            npc_id: 1,
            player_id: player,
            delta: 25,
            idempotency_key: String::new(),
        })
        .await
        .unwrap();

    let response = app.get("/v1/bootstrap?region_id=1", &token).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    assert_no_nulls(&body, "$");
    assert!(body.get("missing").is_none(), "nothing is missing: {body}");

    assert_eq!(body["region"]["id"], 1);
    assert_eq!(body["region"]["name"], "Millbrook Vale");
    assert_eq!(body["region"]["cells"].as_array().unwrap().len(), 19);
    assert_eq!(body["region"]["neighbor_ids"], json!([2, 3, 4]));
    assert_eq!(body["time"]["day"], 1);
    assert_eq!(body["profile"]["player_id"], player);
    assert_eq!(body["profile"]["level"], 4);
    assert_eq!(body["profile"]["gold"], 12);
    assert_eq!(
        body["profile"],
        app.get("/v1/me", &token).await.json(),
        "the profile /v1/me answers"
    );
    assert!(
        body.get("inventory").is_none() && body["profile"].get("stacks").is_none(),
        "lean: no inventory"
    );

    assert_eq!(npc_ids(&body), vec![1, 2, 3, 4, 5, 6, 25, 26]);
    let hilda = &body["npcs"][0];
    assert_eq!(
        *hilda,
        json!({"id": 1, "name": "Hilda the Miller", "q": -1, "r": -1, "faction_id": 5, "disposition": 25})
    );
    assert!(body["npcs"][1].get("disposition").is_none(), "neutral is left out");
    assert!(body["npcs"][5].get("faction_id").is_none(), "no faction is left out");
    assert!(hilda.get("traits").is_none(), "traits are not the client's business");

    let quest_ids: Vec<i64> = body["quests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_i64().unwrap())
        .collect();
    assert_eq!(quest_ids, vec![1, 2, 3], "the quests offered in region 1");
    assert_eq!(body["quests"][0]["giver_npc_id"], 1);
    let active: Vec<i64> = body["active_quests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["quest_id"].as_i64().unwrap())
        .collect();
    assert_eq!(active, vec![1, 4], "every active quest of the player, in any region");

    // The same in MessagePack, and compressed.
    let auth = format!("Bearer {token}");
    let packed = app
        .send(
            Method::GET,
            "/v1/bootstrap?region_id=1",
            &[("authorization", &auth), ("accept", "application/msgpack")],
            Vec::new(),
        )
        .await;
    assert_eq!(packed.header("content-type"), Some("application/msgpack"));
    let unpacked: Value = rmp_serde::from_slice(&packed.body).unwrap();
    assert_eq!(unpacked["npcs"], body["npcs"]);
    assert!(packed.body.len() < response.body.len());
    let zstd = app
        .send(
            Method::GET,
            "/v1/bootstrap?region_id=1",
            &[("authorization", &auth), ("accept-encoding", "zstd")],
            Vec::new(),
        )
        .await;
    assert_eq!(zstd.header("content-encoding"), Some("zstd"));
    assert!(zstd.body.len() * 2 < response.body.len());

    // Another region, another player: nothing of the first player's.
    let (_, other) = app.sign_in("someone-else").await;
    let four = app.get("/v1/bootstrap?region_id=4", &other).await.json();
    assert_eq!(npc_ids(&four), vec![19, 20, 21, 22, 23, 24, 31, 32]);
    assert!(four.get("active_quests").is_none(), "no active quests: left out");
    assert!(
        four["npcs"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n.get("disposition").is_none())
    );
    app.finish().await;
}

async fn bootstrap_refuses_bad_requests(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("confused").await;
    for query in [
        "",
        "?region_id=0",
        "?region_id=-3",
        "?region_id=north",
        "?region=1",
        "?region_id=1&extra=2",
    ] {
        let msg = app
            .get(&format!("/v1/bootstrap{query}"), &token)
            .await
            .assert_error(400, "invalid_argument");
        assert!(!msg.is_empty());
    }
    let msg = app
        .get("/v1/bootstrap?region_id=99", &token)
        .await
        .assert_error(404, "not_found");
    assert!(msg.contains("region 99"), "{msg}");
    app.get("/v1/bootstrap?region_id=1", ADMIN_TOKEN)
        .await
        .assert_error(403, "permission_denied");
    app.send(Method::GET, "/v1/bootstrap?region_id=1", &[], Vec::new())
        .await
        .assert_error(401, "unauthenticated");
    app.finish().await;
}

/// A region and a quest in it, made through the services (the demo seed
/// needs every service up).
async fn region_and_quest(app: &TestApp) {
    if app.world_addr.is_some() {
        app.world()
            .upsert_region(world_pb::UpsertRegionRequest {
                region: Some(world_pb::RegionSpec {
                    id: 2,
                    name: "Mirrormere Shore".into(),
                    biome: "lake".into(),
                    cells: vec![world_pb::Hex { q: 0, r: 0 }, world_pb::Hex { q: 1, r: 0 }],
                }),
            })
            .await
            .unwrap();
    }
    if app.quest_addr.is_some() {
        app.create_quest(&wolves()).await;
    }
}

async fn a_service_that_is_down_leaves_its_parts_missing(backend: Backend) {
    for (down, missing) in [
        ("npc", json!(["npcs", "dispositions"])),
        ("world", json!(["region", "time"])),
        ("quest", json!(["quests", "active_quests"])),
        ("player", json!(["profile"])),
    ] {
        let options = Options {
            npc_down: down == "npc",
            world_down: down == "world",
            quest_down: down == "quest",
            player_down: down == "player",
            ..Options::default()
        };
        let Some(app) = spawn_app_with(backend, options).await else {
            return;
        };
        region_and_quest(&app).await;
        // Sign-in is the player service's: without it, a token signed with
        // the gateway's secret stands in for one from an earlier sign-in.
        let token = if down == "player" {
            app.mint_token(4242)
        } else {
            app.sign_in("partial").await.1
        };
        let started = Instant::now();
        let response = app.get("/v1/bootstrap?region_id=2", &token).await;
        assert_eq!(
            response.status,
            200,
            "{down} down: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "a refused connection is not waited for"
        );
        let body = response.json();
        assert_no_nulls(&body, "$");
        assert_eq!(body["missing"], missing, "{down} down: {body}");
        assert_eq!(body.get("region").is_some(), down != "world", "{body}");
        assert_eq!(body.get("time").is_some(), down != "world", "{body}");
        assert_eq!(body.get("quests").is_some(), down != "quest", "{body}");
        app.finish().await;
    }
}

async fn the_service_calls_overlap(backend: Backend) {
    let delay = Duration::from_millis(300);
    let Some(app) = spawn_app_with(
        backend,
        Options {
            world_delay: Some(delay),
            npc_delay: Some(delay),
            bootstrap_budget: Some(Duration::from_secs(5)),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    region_and_quest(&app).await;
    let (_, token) = app.sign_in("impatient").await;
    // Four of the six calls wait 300 ms each (region and time at the world,
    // NPCs and dispositions at the NPC service): 1.2 s one after another,
    // 0.3 s side by side. Best of three, for a busy test machine.
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let response = app.get("/v1/bootstrap?region_id=2", &token).await;
        let took = started.elapsed();
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
        let body = response.json();
        assert!(body.get("missing").is_none(), "{body}");
        assert_eq!(body["region"]["id"], 2);
        best = best.min(took);
    }
    assert!(best >= delay, "the delay applies: {best:?}");
    assert!(
        best < delay * 2,
        "close to the slowest call ({delay:?}), not the sum ({:?}): took {best:?}",
        delay * 4
    );
    app.finish().await;
}

async fn a_call_over_the_budget_is_left_out(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            npc_delay: Some(Duration::from_secs(2)),
            bootstrap_budget: Some(Duration::from_millis(200)),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    region_and_quest(&app).await;
    let (_, token) = app.sign_in("in-a-hurry").await;
    let started = Instant::now();
    let response = app.get("/v1/bootstrap?region_id=2", &token).await;
    let took = started.elapsed();
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    let body = response.json();
    assert_eq!(body["missing"], json!(["npcs", "dispositions"]), "{body}");
    assert_eq!(body["region"]["name"], "Mirrormere Shore");
    assert_eq!(body["quests"][0]["title"], "Wolves at the Mill");
    assert!(took >= Duration::from_millis(200), "waited for the budget: {took:?}");
    assert!(took < Duration::from_millis(1500), "not for the slow service: {took:?}");
    app.finish().await;
}

/// Everything the demo seeds, as the routes list it.
async fn snapshot(app: &TestApp, token: &str) -> Vec<Value> {
    let mut all = Vec::new();
    for path in [
        "/v1/world/regions",
        "/v1/world/factions",
        "/v1/world/events?limit=100",
        "/v1/npcs?limit=100",
        "/v1/npcs/1/memories",
        "/v1/npcs/14/memories",
        "/v1/quests?limit=100",
    ] {
        all.push(app.get(path, token).await.json());
    }
    all
}

async fn reseeding_the_demo_creates_nothing(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("auditor").await;
    let before = snapshot(&app, &token).await;
    vdm::demo::seed(
        app.world_addr.unwrap(),
        app.npc_addr.unwrap(),
        app.quest_addr.unwrap(),
        app.rumor_addr,
    )
    .await
    .unwrap();
    assert_eq!(snapshot(&app, &token).await, before);
    assert_eq!(before[3]["items"].as_array().unwrap().len(), 32);
    assert_eq!(before[6]["items"].as_array().unwrap().len(), 10);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_every_service_down_the_bootstrap_is_503() {
    let mut app = spawn_gateway_without_services().await;
    let (_, token) = app.sign_in("alone").await;
    app.stop_player_service().await;
    let response = app.get("/v1/bootstrap?region_id=1", &token).await;
    response.assert_error(503, "unavailable");
    assert_eq!(response.header("retry-after"), Some("1"));
    app.finish().await;
}
