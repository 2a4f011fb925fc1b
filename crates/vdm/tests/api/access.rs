//! Object- and property-level authorization between players (OWASP API1
//! and API3): a player's own records are reached only through `/v1/me/...`
//! with the player taken from the session token, never from the request.

use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, spawn_app_with, wolves};
use vdm_kit::backend_tests;

backend_tests!(players_reach_only_their_own_rumors_progress_and_standing);

async fn players_reach_only_their_own_rumors_progress_and_standing(backend: Backend) {
    let options = Options {
        seed_demo: true,
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    let (ana, ana_token) = app.sign_in("ana-private").await;
    let (_, bo_token) = app.sign_in("bo-curious").await;

    // Ana hears the demo rumor from Tobin Reed (NPC 4) and takes a quest.
    let talk = app.post_json("/v1/npcs/4/talk", Some(&ana_token), &json!({})).await;
    assert_eq!(talk.status, 200, "{}", String::from_utf8_lossy(&talk.body));
    let quest = app.create_quest(&wolves()).await;
    let id = quest["id"].as_i64().unwrap();
    let objective = quest["objectives"][0]["id"].as_i64().unwrap();
    let accepted = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(&ana_token), &json!({}))
        .await;
    assert_eq!(accepted.status, 200);
    let progress = json!({"objective_id": objective, "amount": 2});
    let advanced = app
        .post_json(&format!("/v1/me/quests/{id}/progress"), Some(&ana_token), &progress)
        .await;
    assert_eq!(advanced.status, 200);

    // Bo sees none of it.
    let bos_rumors = app.get("/v1/me/rumors", &bo_token).await.json();
    assert!(bos_rumors["items"].as_array().unwrap().is_empty(), "{bos_rumors}");
    let bos_quests = app.get("/v1/me/quests", &bo_token).await.json();
    assert!(bos_quests["items"].as_array().unwrap().is_empty(), "{bos_quests}");
    let boot = app.get("/v1/bootstrap?region_id=1", &bo_token).await.json();
    assert!(boot.get("rumors").is_none(), "{boot}");
    assert!(
        boot.get("active_quests")
            .is_none_or(|q| q.as_array().is_some_and(Vec::is_empty)),
        "{boot}"
    );

    // Naming Ana does not help: the player is never taken from the request.
    let player = format!("player_id={ana}");
    for path in [
        format!("/v1/me/rumors?{player}"),
        format!("/v1/me/quests?{player}"),
        format!("/v1/bootstrap?region_id=1&{player}"),
    ] {
        let msg = app.get(&path, &bo_token).await.assert_error(400, "invalid_argument");
        assert!(msg.contains("player_id"), "{path}: {msg}");
    }
    let msg = app
        .post_json(
            &format!("/v1/me/quests/{id}/progress"),
            Some(&bo_token),
            &json!({"objective_id": objective, "amount": 3, "player_id": ana}),
        )
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("player_id"), "{msg}");
    // Bo's own progress call on the quest he never accepted is a 404, and
    // Ana's progress stays where she left it.
    app.post_json(&format!("/v1/me/quests/{id}/progress"), Some(&bo_token), &progress)
        .await
        .assert_error(404, "not_found");
    let anas = app.get("/v1/me/quests", &ana_token).await.json();
    assert_eq!(anas["items"][0]["objectives"][0]["progress"], 2, "{anas}");
    let anas_rumors = app.get("/v1/me/rumors", &ana_token).await.json();
    assert_eq!(anas_rumors["items"].as_array().unwrap().len(), 1, "{anas_rumors}");

    // Server-owned properties cannot be written by a player: a quest's
    // status, an objective's progress, a disposition score.
    for (path, body) in [
        (
            format!("/v1/me/quests/{id}/progress"),
            json!({"objective_id": objective, "progress": 99}),
        ),
        (
            format!("/v1/me/quests/{id}/progress"),
            json!({"objective_id": objective, "status": "completed"}),
        ),
    ] {
        let response = app.post_json(&path, Some(&bo_token), &body).await;
        assert_eq!(
            response.status,
            400,
            "{path} {body}: {}",
            String::from_utf8_lossy(&response.body)
        );
    }
    // A route that takes no body ignores one: the status is the server's.
    let accepted = app
        .post_json(
            &format!("/v1/quests/{id}/accept"),
            Some(&bo_token),
            &json!({"status": "completed"}),
        )
        .await;
    assert_eq!(accepted.status, 200);
    assert_eq!(accepted.json()["status"], "active");
    // Admin-only writes stay admin-only for players, and the admin token is
    // not a player.
    app.post_json(
        "/v1/rumors/1/spread",
        Some(&bo_token),
        &json!({"from_npc_id": 4, "to_npc_id": 5}),
    )
    .await
    .assert_error(403, "permission_denied");
    app.get("/v1/me/rumors", ADMIN_TOKEN)
        .await
        .assert_error(403, "permission_denied");
    app.finish().await;
}
