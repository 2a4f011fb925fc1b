//! The NPC routes through the gateway: NPCs, moves checked by the world
//! service, memories and their cap, dispositions.

use http::Method;
use serde_json::{Value, json};
use tonic::Code;
use vdm_proto::npc::v1 as pb;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, spawn_app_with};
use vdm_kit::backend_tests;

backend_tests!(
    create_read_list_and_batch_get,
    creates_are_admin_only_and_validated_against_the_world,
    moves_are_checked_by_the_world_and_show_at_once,
    memories_past_the_cap_forget_the_unimportant_and_old_first,
    dispositions_belong_to_each_player,
    npc_writes_need_the_world_service,
);

async fn demo(backend: Backend, memory_cap: Option<u32>) -> Option<TestApp> {
    spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            memory_cap,
            ..Options::default()
        },
    )
    .await
}

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("items")
}

fn ids(body: &Value) -> Vec<i64> {
    items(body).iter().map(|n| n["id"].as_i64().unwrap()).collect()
}

fn smith() -> Value {
    json!({
        "name": "Garrick the Smith",
        "region_id": 2,
        "q": 5,
        "r": -3,
        "faction_id": 1,
        "traits": {"gullibility": 0.25, "talkativeness": 0.75, "honesty": 1.0}
    })
}

async fn create_read_list_and_batch_get(backend: Backend) {
    let Some(app) = demo(backend, None).await else { return };
    let (_, token) = app.sign_in("census-taker").await;

    let created = app.post_json("/v1/npcs", Some(ADMIN_TOKEN), &smith()).await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let created = created.json();
    let id = created["id"].as_i64().unwrap();
    assert_eq!(id, 33, "after the 32 demo NPCs");
    assert_eq!(
        created,
        json!({
            "id": id, "name": "Garrick the Smith", "region_id": 2, "q": 5, "r": -3, "faction_id": 1,
            "traits": {"gullibility": 0.25, "talkativeness": 0.75, "honesty": 1.0}
        })
    );
    assert_eq!(app.get(&format!("/v1/npcs/{id}"), &token).await.json(), created);

    // Without a position an NPC stands on its region's first cell; without
    // traits it is middling in everything; without a faction it has none.
    let plain = app
        .post_json(
            "/v1/npcs",
            Some(ADMIN_TOKEN),
            &json!({"name": "A Stranger", "region_id": 4}),
        )
        .await
        .json();
    assert_eq!((plain["q"].as_i64(), plain["r"].as_i64()), (Some(1), Some(2)));
    assert_eq!(
        plain["traits"],
        json!({"gullibility": 0.5, "talkativeness": 0.5, "honesty": 0.5})
    );
    assert!(plain.get("faction_id").is_none(), "absent optionals are omitted");

    // The demo world has 8 NPCs in region 1: pages of 3 in id order.
    let mut seen = Vec::new();
    let mut path = "/v1/npcs?region_id=1&limit=3".to_owned();
    loop {
        let page = app.get(&path, &token).await;
        assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
        let page = page.json();
        assert!(items(&page).len() <= 3);
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/npcs?region_id=1&limit=3&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, vec![1, 2, 3, 4, 5, 6, 25, 26]);
    let wardens_in_2 = app.get("/v1/npcs?region_id=2&faction_id=1", &token).await.json();
    assert_eq!(ids(&wardens_in_2), vec![8, 9, id]);
    let everyone = app.get("/v1/npcs?limit=100", &token).await.json();
    assert_eq!(items(&everyone).len(), 34);

    let batch = app
        .post_json("/v1/npcs:batchGet", Some(&token), &json!({"ids": [id, 7, 9999, 1, 7]}))
        .await
        .json();
    assert_eq!(
        ids(&batch),
        vec![id, 7, 1],
        "request order, unknown left out, no repeats"
    );
    let empty = app
        .post_json("/v1/npcs:batchGet", Some(&token), &json!({"ids": []}))
        .await
        .json();
    assert!(items(&empty).is_empty());
    let too_many: Vec<i64> = (1..=101).collect();
    let msg = app
        .post_json("/v1/npcs:batchGet", Some(&token), &json!({"ids": too_many}))
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("at most 100"), "{msg}");
    app.post_json("/v1/npcs:batchGet", Some(&token), &json!({"ids": [1, -2]}))
        .await
        .assert_error(400, "invalid_argument");
    app.post_json("/v1/npcs:batchGet", Some(&token), &json!({"ids": "1"}))
        .await
        .assert_error(400, "invalid_argument");

    app.get("/v1/npcs/424242", &token).await.assert_error(404, "not_found");
    app.get("/v1/npcs/0", &token)
        .await
        .assert_error(400, "invalid_argument");
    for query in [
        "limit=0",
        "limit=101",
        "region_id=-1",
        "faction_id=x",
        "cursor=%21",
        "size=3",
    ] {
        app.get(&format!("/v1/npcs?{query}"), &token)
            .await
            .assert_error(400, "invalid_argument");
    }

    // An Idempotency-Key makes a retried create return the first NPC.
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
        ("idempotency-key", "smith-2"),
    ];
    let body = serde_json::to_vec(&smith()).unwrap();
    let first = app.send(Method::POST, "/v1/npcs", &headers, body.clone()).await;
    let retry = app.send(Method::POST, "/v1/npcs", &headers, body).await;
    assert_eq!(first.header("idempotent-replayed"), Some("false"));
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.status, 201);
    assert_eq!(first.json(), retry.json());
    let mut other = smith();
    other["name"] = json!("Another Smith");
    app.send(Method::POST, "/v1/npcs", &headers, serde_json::to_vec(&other).unwrap())
        .await
        .assert_error(409, "already_exists");
    app.finish().await;
}

async fn creates_are_admin_only_and_validated_against_the_world(backend: Backend) {
    let Some(app) = demo(backend, None).await else { return };
    let (_, token) = app.sign_in("pretender").await;
    app.post_json("/v1/npcs", None, &smith())
        .await
        .assert_error(401, "unauthenticated");
    app.post_json("/v1/npcs", Some(&token), &smith())
        .await
        .assert_error(403, "permission_denied");

    let with = |field: &str, value: Value| {
        let mut body = smith();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = smith();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases = [
        (with("name", json!("   ")), "name must not be empty"),
        (with("name", json!("x".repeat(101))), "name must be at most 100"),
        (with("region_id", json!(99)), "unknown region 99"),
        (with("region_id", json!(0)), "region_id"),
        (with("q", json!(0)), "not a cell of region 2"),
        (with("q", json!(400_000)), "outside the map"),
        (without("r"), "q and r go together"),
        (with("faction_id", json!(9)), "unknown faction 9"),
        (with("faction_id", json!(-1)), "faction_id"),
        (
            with(
                "traits",
                json!({"gullibility": 0.5, "talkativeness": 0.5, "honesty": 1.5}),
            ),
            "traits.honesty must be between 0 and 1",
        ),
        (with("traits", json!({"gullibility": -0.1})), "traits.gullibility"),
        (with("traits", json!({"charisma": 0.5})), "unknown field"),
        (with("region_id", json!("two")), "invalid JSON"),
        (without("name"), "missing field `name`"),
    ];
    for (body, needle) in cases {
        let msg = app
            .post_json("/v1/npcs", Some(ADMIN_TOKEN), &body)
            .await
            .assert_error(400, "invalid_argument");
        assert!(msg.contains(needle), "{body}: {msg:?} should say {needle:?}");
    }
    let everyone = app.get("/v1/npcs?limit=100", &token).await.json();
    assert_eq!(items(&everyone).len(), 32, "nothing was created");
    app.finish().await;
}

async fn moves_are_checked_by_the_world_and_show_at_once(backend: Backend) {
    let Some(app) = demo(backend, None).await else { return };
    let (_, token) = app.sign_in("watcher").await;
    // Read first, so the NPC is cached.
    let before = app.get("/v1/npcs/1", &token).await.json();
    assert_eq!(before["region_id"], 1);

    let moved = app
        .post_json("/v1/npcs/1/move", Some(ADMIN_TOKEN), &json!({"q": 6, "r": -4}))
        .await;
    assert_eq!(moved.status, 200, "{}", String::from_utf8_lossy(&moved.body));
    let moved = moved.json();
    assert_eq!(
        (moved["q"].as_i64(), moved["r"].as_i64(), moved["region_id"].as_i64()),
        (Some(6), Some(-4), Some(2))
    );
    // The next read sees the move (the cache entry was dropped).
    assert_eq!(app.get("/v1/npcs/1", &token).await.json(), moved);
    assert!(ids(&app.get("/v1/npcs?region_id=2", &token).await.json()).contains(&1));
    assert!(!ids(&app.get("/v1/npcs?region_id=1", &token).await.json()).contains(&1));

    let msg = app
        .post_json("/v1/npcs/1/move", Some(ADMIN_TOKEN), &json!({"q": 40, "r": 40}))
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("hex (40, 40) is outside the map"), "{msg}");
    for (q, r) in [(i32::MAX, 0), (i32::MIN, 0), (0, i32::MIN)] {
        app.post_json("/v1/npcs/1/move", Some(ADMIN_TOKEN), &json!({"q": q, "r": r}))
            .await
            .assert_error(400, "invalid_argument");
    }
    app.post_json("/v1/npcs/1/move", Some(ADMIN_TOKEN), &json!({"q": 1}))
        .await
        .assert_error(400, "invalid_argument");
    app.post_json(
        "/v1/npcs/1/move",
        Some(ADMIN_TOKEN),
        &json!({"q": 1, "r": 99999999999_i64}),
    )
    .await
    .assert_error(400, "invalid_argument");
    app.post_json("/v1/npcs/999/move", Some(ADMIN_TOKEN), &json!({"q": 0, "r": 0}))
        .await
        .assert_error(404, "not_found");
    app.post_json("/v1/npcs/1/move", Some(&token), &json!({"q": 0, "r": 0}))
        .await
        .assert_error(403, "permission_denied");
    assert_eq!(
        app.get("/v1/npcs/1", &token).await.json(),
        moved,
        "refused moves change nothing"
    );
    app.finish().await;
}

async fn memories_past_the_cap_forget_the_unimportant_and_old_first(backend: Backend) {
    let Some(app) = demo(backend, Some(3)).await else {
        return;
    };
    let (_, token) = app.sign_in("listener").await;
    // NPC 2 has no demo memories.
    let record = |text: &str, importance: f64, game_time_ms: i64| json!({"kind": "heard", "text": text, "importance": importance, "game_time_ms": game_time_ms, "subject_ids": [1]});
    let mut ids_by_text = std::collections::HashMap::new();
    for (text, importance, at) in [
        ("the abbey bells cracked", 0.9, 100),
        ("a cart lost a wheel", 0.2, 200),
        ("the miller sneezed", 0.2, 300),
    ] {
        let response = app
            .post_json("/v1/npcs/2/memories", Some(ADMIN_TOKEN), &record(text, importance, at))
            .await;
        assert_eq!(response.status, 201, "{}", String::from_utf8_lossy(&response.body));
        let body = response.json();
        assert!(body.get("dropped_memory_ids").is_none(), "within the cap: {body}");
        assert_eq!(body["memory"]["subject_ids"], json!([1]));
        ids_by_text.insert(text, body["memory"]["id"].as_i64().unwrap());
    }
    // Over the cap: of the two least important, the older goes.
    let fourth = app
        .post_json(
            "/v1/npcs/2/memories",
            Some(ADMIN_TOKEN),
            &record("wolves took a lamb", 0.5, 400),
        )
        .await
        .json();
    assert_eq!(
        fourth["dropped_memory_ids"],
        json!([ids_by_text["a cart lost a wheel"]])
    );
    let texts = |body: Value| -> Vec<String> {
        items(&body)
            .iter()
            .map(|m| m["text"].as_str().unwrap().to_owned())
            .collect()
    };
    let listed = app.get("/v1/npcs/2/memories", &token).await.json();
    assert_eq!(
        texts(listed),
        ["wolves took a lamb", "the miller sneezed", "the abbey bells cracked"],
        "newest first"
    );
    // A memory less important than all kept ones is forgotten at once.
    let trivial = app
        .post_json("/v1/npcs/2/memories", Some(ADMIN_TOKEN), &record("it rained", 0.1, 500))
        .await
        .json();
    let trivial_id = trivial["memory"]["id"].as_i64().unwrap();
    assert_eq!(trivial["dropped_memory_ids"], json!([trivial_id]));
    // Even an old memory stays when it matters more.
    let page = app.get("/v1/npcs/2/memories?limit=2", &token).await.json();
    assert_eq!(texts(page.clone()), ["wolves took a lamb", "the miller sneezed"]);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/v1/npcs/2/memories?limit=2&cursor={cursor}"), &token)
        .await
        .json();
    assert_eq!(texts(rest.clone()), ["the abbey bells cracked"]);
    assert!(rest.get("next_cursor").is_none());

    // Without a game time the world clock's is used; a key makes a retry safe.
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
        ("idempotency-key", "oath-1"),
    ];
    let oath =
        serde_json::to_vec(&json!({"kind": "swore", "text": "an oath to the abbot", "importance": 1.0})).unwrap();
    let first = app
        .send(Method::POST, "/v1/npcs/2/memories", &headers, oath.clone())
        .await;
    assert_eq!(first.status, 201, "{}", String::from_utf8_lossy(&first.body));
    let retry = app.send(Method::POST, "/v1/npcs/2/memories", &headers, oath).await;
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(first.json()["memory"], retry.json()["memory"]);
    assert!(first.json()["memory"]["game_time_ms"].as_i64().unwrap() >= 8 * 3_600_000);
    assert_eq!(items(&app.get("/v1/npcs/2/memories", &token).await.json()).len(), 3);

    let cases = [
        (json!({"kind": "heard", "text": "x", "importance": 1.5}), "importance"),
        (
            json!({"kind": "heard", "text": "", "importance": 0.5}),
            "text must not be empty",
        ),
        (json!({"kind": "Heard It", "text": "x", "importance": 0.5}), "kind"),
        (
            json!({"kind": "heard", "text": "x", "importance": 0.5, "game_time_ms": -1}),
            "game_time_ms",
        ),
        (
            json!({"kind": "heard", "text": "x", "importance": 0.5, "subject_ids": [0]}),
            "subject_ids",
        ),
        (json!({"kind": "heard", "text": "x"}), "importance"),
    ];
    for (body, needle) in cases {
        let msg = app
            .post_json("/v1/npcs/2/memories", Some(ADMIN_TOKEN), &body)
            .await
            .assert_error(400, "invalid_argument");
        assert!(msg.contains(needle), "{body}: {msg:?} should say {needle:?}");
    }
    let ok = json!({"kind": "heard", "text": "x", "importance": 0.5});
    app.post_json("/v1/npcs/2/memories", Some(&token), &ok)
        .await
        .assert_error(403, "permission_denied");
    app.post_json("/v1/npcs/4242/memories", Some(ADMIN_TOKEN), &ok)
        .await
        .assert_error(404, "not_found");
    app.get("/v1/npcs/4242/memories", &token)
        .await
        .assert_error(404, "not_found");
    app.get("/v1/npcs/2/memories?limit=500", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.finish().await;
}

async fn dispositions_belong_to_each_player(backend: Backend) {
    let Some(app) = demo(backend, None).await else { return };
    let (alice, alice_token) = app.sign_in("alice").await;
    let (bob, bob_token) = app.sign_in("bob").await;
    let mut npc = app.npc();

    let neutral = app.get("/v1/me/npcs/3/disposition", &alice_token).await.json();
    assert_eq!(neutral, json!({"npc_id": 3, "score": 0}));

    let adjust = |player_id: i64, npc_id: i64, delta: i32| pb::AdjustDispositionRequest {
        npc_id,
        player_id,
        delta,
        idempotency_key: String::new(),
    };
    let d = npc.adjust_disposition(adjust(alice, 3, 30)).await.unwrap().into_inner();
    assert_eq!(d.score, 30);
    let d = npc
        .adjust_disposition(adjust(alice, 3, -45))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(d.score, -15);
    let mine = app.get("/v1/me/npcs/3/disposition", &alice_token).await.json();
    assert_eq!(mine["score"], -15);
    assert!(mine["updated_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(
        app.get("/v1/me/npcs/3/disposition", &bob_token).await.json()["score"],
        0
    );
    let d = npc.adjust_disposition(adjust(bob, 3, 200)).await.unwrap().into_inner();
    assert_eq!(d.score, 100, "clamped");
    npc.adjust_disposition(adjust(alice, 14, 10)).await.unwrap();

    // One batch: by ids (every known NPC, neutral ones at 0), or by region
    // (only those ever adjusted).
    let by_ids = npc
        .batch_get_dispositions(pb::BatchGetDispositionsRequest {
            player_id: alice,
            npc_ids: vec![14, 3, 2, 9999],
            region_id: None,
        })
        .await
        .unwrap()
        .into_inner()
        .dispositions;
    let scores: Vec<(i64, i32)> = by_ids.iter().map(|d| (d.npc_id, d.score)).collect();
    assert_eq!(scores, vec![(14, 10), (3, -15), (2, 0)]);
    let in_region = npc
        .batch_get_dispositions(pb::BatchGetDispositionsRequest {
            player_id: alice,
            npc_ids: vec![],
            region_id: Some(1),
        })
        .await
        .unwrap()
        .into_inner()
        .dispositions;
    assert_eq!(
        in_region.iter().map(|d| (d.npc_id, d.score)).collect::<Vec<_>>(),
        vec![(3, -15)]
    );
    for (request, what) in [
        (
            pb::BatchGetDispositionsRequest {
                player_id: alice,
                npc_ids: vec![1],
                region_id: Some(1),
            },
            "both",
        ),
        (
            pb::BatchGetDispositionsRequest {
                player_id: alice,
                npc_ids: (1..=101).collect(),
                region_id: None,
            },
            "too many",
        ),
    ] {
        let err = npc.batch_get_dispositions(request).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{what}");
    }
    for (npc_id, delta, code) in [(3, 201, Code::InvalidArgument), (4242, 1, Code::NotFound)] {
        let err = npc.adjust_disposition(adjust(alice, npc_id, delta)).await.unwrap_err();
        assert_eq!(err.code(), code);
    }

    app.get("/v1/me/npcs/4242/disposition", &alice_token)
        .await
        .assert_error(404, "not_found");
    app.get("/v1/me/npcs/3/disposition", ADMIN_TOKEN)
        .await
        .assert_error(403, "permission_denied");
    app.send(Method::GET, "/v1/me/npcs/3/disposition", &[], Vec::new())
        .await
        .assert_error(401, "unauthenticated");
    app.finish().await;
}

async fn npc_writes_need_the_world_service(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            world_down: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("stranded").await;
    // Creating an NPC needs the world to check its region: 503, at once.
    let started = std::time::Instant::now();
    let response = app.post_json("/v1/npcs", Some(ADMIN_TOKEN), &smith()).await;
    response.assert_error(503, "unavailable");
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    // Reads need only the NPC service.
    let empty = app.get("/v1/npcs?region_id=1", &token).await;
    assert_eq!(empty.status, 200);
    app.get("/v1/npcs/1", &token).await.assert_error(404, "not_found");
    let ready = app.send(Method::GET, "/ready", &[], Vec::new()).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "degraded");
    assert_eq!(ready.json()["failing"], json!(["vdm.world.v1.WorldService"]));
    app.finish().await;
}
