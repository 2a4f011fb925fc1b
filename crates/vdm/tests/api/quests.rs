//! The quest flow through the gateway.

use http::Method;
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, generous_rate_limits, spawn_app, spawn_app_with, wolves};
use vdm_kit::backend_tests;
use vdm_proto::quest::v1 as quest_pb;

backend_tests!(
    create_then_read_returns_the_contract_shape,
    whole_flow_completes_a_quest,
    invalid_transitions_are_refused,
    idempotent_create_returns_the_first_result,
    lists_filter_and_paginate,
    batch_get_skips_unknown_ids,
    update_is_visible_to_the_next_read,
    delete_removes_quest_and_progress,
    concurrent_progress_loses_nothing,
    another_replicas_writes_show_in_the_next_list,
);

async fn create_then_read_returns_the_contract_shape(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let created = app.create_quest(&wolves()).await;
    let id = created["id"].as_i64().unwrap();
    assert!(id > 0);
    assert_eq!(created["title"], "Wolves at the Mill");
    assert_eq!(created["reward"], json!({"gold": 50, "xp": 120, "item_ids": [4]}));
    assert_eq!(created["objectives"][0]["description"], "Slay wolves");
    assert_eq!(created["objectives"][0]["target_count"], 5);
    assert!(created["objectives"][0]["id"].as_i64().unwrap() > 0);

    let (_, token) = app.sign_in("reader").await;
    let read = app.get(&format!("/v1/quests/{id}"), &token).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json(), created);
    app.finish().await;
}

async fn whole_flow_completes_a_quest(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let quest = app.create_quest(&wolves()).await;
    let id = quest["id"].as_i64().unwrap();
    let wolves_obj = quest["objectives"][0]["id"].as_i64().unwrap();
    let report_obj = quest["objectives"][1]["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("hero").await;

    let accepted = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await;
    assert_eq!(accepted.status, 200, "{}", String::from_utf8_lossy(&accepted.body));
    let accepted = accepted.json();
    assert_eq!(accepted["quest_id"], id);
    assert_eq!(accepted["status"], "active");
    assert!(accepted["accepted_at"].as_str().unwrap().ends_with('Z'));
    assert!(accepted.get("completed_at").is_none(), "absent optionals are omitted");
    assert_eq!(
        accepted["objectives"][0],
        json!({"objective_id": wolves_obj, "progress": 0, "target_count": 5})
    );

    let progress = |objective_id: i64, amount: u32| json!({"objective_id": objective_id, "amount": amount});
    let path = format!("/v1/me/quests/{id}/progress");
    let step = app
        .post_json(&path, Some(&token), &progress(wolves_obj, 3))
        .await
        .json();
    assert_eq!(step["objectives"][0]["progress"], 3);
    assert_eq!(step["status"], "active");
    // Progress is capped at the target.
    let step = app
        .post_json(&path, Some(&token), &progress(wolves_obj, 10))
        .await
        .json();
    assert_eq!(step["objectives"][0]["progress"], 5);
    assert_eq!(step["status"], "active");
    // Amount defaults to 1.
    let done = app
        .post_json(&path, Some(&token), &json!({"objective_id": report_obj}))
        .await
        .json();
    assert_eq!(done["status"], "completed");
    assert!(done["completed_at"].as_str().is_some());

    let mine = app.get("/v1/me/quests", &token).await.json();
    assert_eq!(mine["items"].as_array().unwrap().len(), 1);
    assert_eq!(mine["items"][0]["status"], "completed");
    assert_eq!(
        mine["items"][0]["objectives"],
        json!([
            {"objective_id": wolves_obj, "progress": 5, "target_count": 5},
            {"objective_id": report_obj, "progress": 1, "target_count": 1}
        ]),
        "a listed quest carries its objectives' targets"
    );
    let active = app.get("/v1/me/quests?status=active", &token).await.json();
    assert!(active["items"].as_array().unwrap().is_empty());
    app.finish().await;
}

async fn invalid_transitions_are_refused(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let quest = app.create_quest(&wolves()).await;
    let id = quest["id"].as_i64().unwrap();
    let objective = quest["objectives"][0]["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("fickle").await;
    let progress = json!({"objective_id": objective, "amount": 1});

    // Progress on a quest never accepted.
    app.post_json(&format!("/v1/me/quests/{id}/progress"), Some(&token), &progress)
        .await
        .assert_error(404, "not_found");
    app.post_json(&format!("/v1/me/quests/{id}/abandon"), Some(&token), &json!({}))
        .await
        .assert_error(404, "not_found");

    app.post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await;
    let msg = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await
        .assert_error(409, "failed_precondition");
    assert!(msg.contains("active"), "{msg}");
    // An objective of another quest.
    let bad = json!({"objective_id": 999_999, "amount": 1});
    app.post_json(&format!("/v1/me/quests/{id}/progress"), Some(&token), &bad)
        .await
        .assert_error(404, "not_found");
    let zero = json!({"objective_id": objective, "amount": 0});
    app.post_json(&format!("/v1/me/quests/{id}/progress"), Some(&token), &zero)
        .await
        .assert_error(400, "invalid_argument");

    let abandoned = app
        .post_json(&format!("/v1/me/quests/{id}/abandon"), Some(&token), &json!({}))
        .await
        .json();
    assert_eq!(abandoned["status"], "abandoned");
    app.post_json(&format!("/v1/me/quests/{id}/abandon"), Some(&token), &json!({}))
        .await
        .assert_error(409, "failed_precondition");
    app.post_json(&format!("/v1/me/quests/{id}/progress"), Some(&token), &progress)
        .await
        .assert_error(409, "failed_precondition");
    // Accepting again restarts it from zero.
    let restarted = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await
        .json();
    assert_eq!(restarted["status"], "active");
    assert_eq!(restarted["objectives"][0]["progress"], 0);
    // Accepting an unknown quest.
    app.post_json("/v1/quests/424242/accept", Some(&token), &json!({}))
        .await
        .assert_error(404, "not_found");
    app.finish().await;
}

async fn idempotent_create_returns_the_first_result(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let body = serde_json::to_vec(&wolves()).unwrap();
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let headers = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
        ("idempotency-key", "create-wolves-1"),
    ];
    let first = app.send(Method::POST, "/v1/quests", &headers, body.clone()).await;
    assert_eq!(first.status, 201);
    assert_eq!(first.header("idempotent-replayed"), Some("false"));
    let retry = app.send(Method::POST, "/v1/quests", &headers, body.clone()).await;
    assert_eq!(retry.status, 201);
    assert_eq!(retry.header("idempotent-replayed"), Some("true"));
    assert_eq!(retry.json(), first.json());

    // Concurrent retries still create one quest.
    let headers2 = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
        ("idempotency-key", "create-wolves-2"),
    ];
    let replies =
        futures_util::future::join_all((0..8).map(|_| app.send(Method::POST, "/v1/quests", &headers2, body.clone())))
            .await;
    let ids: std::collections::HashSet<i64> = replies
        .iter()
        .map(|r| {
            assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
            r.json()["id"].as_i64().unwrap()
        })
        .collect();
    assert_eq!(ids.len(), 1, "one quest for one key");

    // The same key with a different body is a conflict, not a silent replay.
    let mut other = wolves();
    other["title"] = json!("Bears at the Mill");
    let conflict = app
        .send(
            Method::POST,
            "/v1/quests",
            &headers,
            serde_json::to_vec(&other).unwrap(),
        )
        .await;
    conflict.assert_error(409, "already_exists");

    let (_, token) = app.sign_in("counter").await;
    let all = app.get("/v1/quests?region_id=2&limit=100", &token).await.json();
    assert_eq!(
        all["items"].as_array().unwrap().len(),
        2,
        "exactly two quests were created"
    );
    app.finish().await;
}

async fn lists_filter_and_paginate(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    for i in 0..5 {
        let mut q = wolves();
        q["title"] = json!(format!("Region two quest {i}"));
        app.create_quest(&q).await;
    }
    let mut other = wolves();
    other["region_id"] = json!(3);
    other["giver_npc_id"] = json!(9);
    app.create_quest(&other).await;
    let (_, token) = app.sign_in("lister").await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            None => "/v1/quests?region_id=2&limit=2".to_owned(),
            Some(c) => format!("/v1/quests?region_id=2&limit=2&cursor={c}"),
        };
        let page = app.get(&path, &token).await;
        assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
        let page = page.json();
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 2);
        seen.extend(items.iter().map(|q| q["id"].as_i64().unwrap()));
        match page.get("next_cursor").and_then(|c| c.as_str()) {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    assert!(seen.windows(2).all(|w| w[0] < w[1]), "ids ascend: {seen:?}");

    let by_giver = app.get("/v1/quests?giver_npc_id=9", &token).await.json();
    assert_eq!(by_giver["items"].as_array().unwrap().len(), 1);
    assert_eq!(by_giver["items"][0]["region_id"], 3);

    app.get("/v1/quests?limit=0", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/v1/quests?limit=1000", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/v1/quests?cursor=garbage!", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/v1/quests?region_id=abc", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/v1/quests?region_id=-4", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.finish().await;
}

async fn batch_get_skips_unknown_ids(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let a = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let b = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("batcher").await;
    let found = app
        .post_json("/v1/quests:batchGet", Some(&token), &json!({"ids": [b, 999_999, a]}))
        .await
        .json();
    let ids: Vec<i64> = found["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![b, a], "request order kept, unknown ids left out");
    let too_many: Vec<i64> = (1..=101).collect();
    app.post_json("/v1/quests:batchGet", Some(&token), &json!({"ids": too_many}))
        .await
        .assert_error(400, "invalid_argument");
    app.finish().await;
}

async fn update_is_visible_to_the_next_read(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("watcher").await;
    let path = format!("/v1/quests/{id}");
    // Two reads: the second is served from the cache.
    assert_eq!(app.get(&path, &token).await.json()["title"], "Wolves at the Mill");
    assert_eq!(app.get(&path, &token).await.json()["title"], "Wolves at the Mill");

    let patched = app
        .json_request(
            Method::PATCH,
            &path,
            Some(ADMIN_TOKEN),
            &json!({"title": "Wargs at the Mill", "reward": {"gold": 75}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", String::from_utf8_lossy(&patched.body));
    assert_eq!(patched.json()["reward"], json!({"gold": 75, "xp": 0, "item_ids": []}));
    let read = app.get(&path, &token).await.json();
    assert_eq!(read["title"], "Wargs at the Mill", "the write dropped the cached copy");
    assert_eq!(read["description"], "The miller is afraid.", "fields left out are kept");

    app.json_request(Method::PATCH, &path, Some(ADMIN_TOKEN), &json!({"title": ""}))
        .await
        .assert_error(400, "invalid_argument");
    app.json_request(Method::PATCH, &path, Some(&token), &json!({"title": "x"}))
        .await
        .assert_error(403, "permission_denied");
    app.json_request(
        Method::PATCH,
        "/v1/quests/999999",
        Some(ADMIN_TOKEN),
        &json!({"title": "x"}),
    )
    .await
    .assert_error(404, "not_found");
    app.finish().await;
}

async fn delete_removes_quest_and_progress(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("deleter").await;
    let path = format!("/v1/quests/{id}");
    app.get(&path, &token).await;
    app.post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await;
    let deleted = app
        .send(
            Method::DELETE,
            &path,
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            Vec::new(),
        )
        .await;
    assert_eq!(deleted.status, 204);
    app.get(&path, &token).await.assert_error(404, "not_found");
    let mine = app.get("/v1/me/quests", &token).await.json();
    assert!(mine["items"].as_array().unwrap().is_empty());
    app.finish().await;
}

async fn concurrent_progress_loses_nothing(backend: Backend) {
    // 20 requests of one player at once: over the per-player in-flight cap
    // that production runs with, which is not what this test is about.
    let options = Options {
        rate_limits: Some(generous_rate_limits()),
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    let mut quest = wolves();
    quest["objectives"] =
        json!([{"description": "Count to fifty", "target_count": 50}, {"description": "Rest", "target_count": 1}]);
    let quest = app.create_quest(&quest).await;
    let id = quest["id"].as_i64().unwrap();
    let objective = quest["objectives"][0]["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("racer").await;
    app.post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await;
    let path = format!("/v1/me/quests/{id}/progress");
    let body = json!({"objective_id": objective, "amount": 1});
    let app = std::sync::Arc::new(app);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (app, path, token, body) = (app.clone(), path.clone(), token.clone(), body.clone());
        tasks.spawn(async move { app.post_json(&path, Some(&token), &body).await.status.as_u16() });
    }
    let mut ok = 0;
    while let Some(status) = tasks.join_next().await {
        let status = status.unwrap();
        assert_eq!(status, 200);
        ok += 1;
    }
    let mine = app.get("/v1/me/quests", &token).await.json();
    assert_eq!(
        mine["items"][0]["objectives"][0]["progress"], ok,
        "every acknowledged advance counted"
    );
    assert_eq!(ok, 20);
    std::sync::Arc::into_inner(app).unwrap().finish().await;
}

/// Two quest replicas share a database and an event bus; the gateway's
/// calls reach the first, which keeps each player's quests for lists. A
/// write through the second shows in the first's next list well within
/// the time a kept list may live (10 s): its `quest.updated` dropped it.
/// The first's own writes show at once.
async fn another_replicas_writes_show_in_the_next_list(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (player_id, token) = app.sign_in("two-replicas").await;
    let mut second = app.spawn_second_quest_replica().await;
    let status = |list: &serde_json::Value| list["items"][0]["status"].as_str().map(str::to_owned);

    // Kept by the first replica: the player has no quests yet.
    assert_eq!(
        app.get("/v1/me/quests", &token).await.json()["items"],
        json!([]),
        "no quests yet"
    );
    let accept = || quest_pb::AcceptQuestRequest {
        player_id,
        quest_id: id,
    };
    second.accept_quest(accept()).await.unwrap();
    assert_eq!(
        list_shows(&app, &token, "active").await,
        Some("active".to_owned()),
        "{backend:?}: the other replica's accept"
    );

    // The first replica's own write: its next list has it, with nothing to wait for.
    let abandoned = app
        .post_json(&format!("/v1/me/quests/{id}/abandon"), Some(&token), &json!({}))
        .await;
    assert_eq!(abandoned.status, 200);
    assert_eq!(
        status(&app.get("/v1/me/quests", &token).await.json()).as_deref(),
        Some("abandoned")
    );

    // And the other replica's next write still reaches it.
    second.accept_quest(accept()).await.unwrap();
    assert_eq!(
        list_shows(&app, &token, "active").await,
        Some("active".to_owned()),
        "{backend:?}: the other replica's second accept"
    );
    app.finish().await;
}

/// The status of the player's first quest once it is `wanted`, polling
/// for up to 3 s; the last status seen otherwise.
async fn list_shows(app: &crate::helpers::TestApp, token: &str, wanted: &str) -> Option<String> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    loop {
        let list = app.get("/v1/me/quests", token).await.json();
        let status = list["items"][0]["status"].as_str().map(str::to_owned);
        if status.as_deref() == Some(wanted) || std::time::Instant::now() > deadline {
            return status;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
