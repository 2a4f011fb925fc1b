//! Authentication and authorization through the gateway.

use http::Method;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Backend, JWT_SECRET, spawn_app, wolves};
use vdm_kit::backend_tests;

backend_tests!(
    device_sign_in_creates_once_and_refresh_rotates,
    missing_and_bad_tokens_are_401,
    expired_and_foreign_tokens_are_401,
    players_reach_only_their_own_quests,
    only_admin_writes_definitions,
    device_id_is_validated,
);

async fn device_sign_in_creates_once_and_refresh_rotates(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let first = app
        .post_json("/v1/auth/device", None, &json!({"device_id": "phone-1"}))
        .await;
    assert_eq!(first.status, 201, "first sign-in creates the player");
    let first = first.json();
    assert_eq!(first["token_type"], "Bearer");
    assert!(first["expires_in"].as_u64().unwrap() > 0);
    let again = app
        .post_json("/v1/auth/device", None, &json!({"device_id": "phone-1"}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(
        again.json()["player_id"],
        first["player_id"],
        "same device, same player"
    );
    let other = app
        .post_json("/v1/auth/device", None, &json!({"device_id": "phone-2"}))
        .await
        .json();
    assert_ne!(other["player_id"], first["player_id"]);

    let refreshed = app
        .post_json(
            "/v1/auth/refresh",
            None,
            &json!({"refresh_token": first["refresh_token"]}),
        )
        .await;
    assert_eq!(refreshed.status, 200);
    let refreshed = refreshed.json();
    assert_eq!(refreshed["player_id"], first["player_id"]);
    let session = refreshed["session_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/me/quests", session).await.status, 200);

    // A session token is not a refresh token, and the reverse.
    app.post_json(
        "/v1/auth/refresh",
        None,
        &json!({"refresh_token": first["session_token"]}),
    )
    .await
    .assert_error(401, "unauthenticated");
    app.get("/v1/me/quests", first["refresh_token"].as_str().unwrap())
        .await
        .assert_error(401, "unauthenticated");
    app.finish().await;
}

async fn missing_and_bad_tokens_are_401(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let none = app.send(Method::GET, "/v1/quests/1", &[], Vec::new()).await;
    let msg = none.assert_error(401, "unauthenticated");
    assert!(msg.contains("Authorization"), "{msg}");
    let basic = app
        .send(
            Method::GET,
            "/v1/quests/1",
            &[("authorization", "Basic abc")],
            Vec::new(),
        )
        .await;
    basic.assert_error(401, "unauthenticated");
    app.get("/v1/quests/1", "not.a.jwt")
        .await
        .assert_error(401, "unauthenticated");
    app.get("/v1/me/quests", "").await.assert_error(401, "unauthenticated");
    app.finish().await;
}

/// The claims of a session token issued at `iat` (a session of its own).
pub(crate) fn claims(player_id: i64, iat: u64, exp: u64) -> serde_json::Value {
    json!({
        "sub": player_id.to_string(),
        "kind": "session",
        "sid": format!("test-{iat}"),
        "iat": iat,
        "ims": iat * 1000,
        "nbf": iat,
        "exp": exp,
    })
}

pub(crate) fn sign(claims: serde_json::Value, secret: &str) -> String {
    vdm_gateway::auth::hs256::install();
    jsonwebtoken::encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .unwrap()
}

async fn expired_and_foreign_tokens_are_401(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (player_id, _) = app.sign_in("timer").await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expired = sign(claims(player_id, now - 7200, now - 3600), JWT_SECRET);
    let msg = app
        .get("/v1/me/quests", &expired)
        .await
        .assert_error(401, "unauthenticated");
    assert!(msg.contains("expired"), "{msg}");
    let foreign = sign(claims(player_id, now, now + 3600), "another-secret-entirely-0123456789");
    let msg = app
        .get("/v1/me/quests", &foreign)
        .await
        .assert_error(401, "unauthenticated");
    assert!(msg.contains("signature"), "{msg}");
    let valid = sign(claims(player_id, now, now + 3600), JWT_SECRET);
    assert_eq!(app.get("/v1/me/quests", &valid).await.status, 200);
    app.finish().await;
}

async fn players_reach_only_their_own_quests(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let quest = app.create_quest(&wolves()).await;
    let id = quest["id"].as_i64().unwrap();
    let objective = quest["objectives"][0]["id"].as_i64().unwrap();
    let (_, alice) = app.sign_in("alice").await;
    let (_, bob) = app.sign_in("bob").await;
    app.post_json(&format!("/v1/quests/{id}/accept"), Some(&alice), &json!({}))
        .await;

    // Bob cannot advance or abandon Alice's quest: he holds no such quest.
    let progress = json!({"objective_id": objective, "amount": 2});
    app.post_json(&format!("/v1/me/quests/{id}/progress"), Some(&bob), &progress)
        .await
        .assert_error(404, "not_found");
    app.post_json(&format!("/v1/me/quests/{id}/abandon"), Some(&bob), &json!({}))
        .await
        .assert_error(404, "not_found");
    let bobs = app.get("/v1/me/quests", &bob).await.json();
    assert!(
        bobs["items"].as_array().unwrap().is_empty(),
        "Bob sees none of Alice's quests"
    );
    let alices = app.get("/v1/me/quests", &alice).await.json();
    assert_eq!(
        alices["items"][0]["objectives"][0]["progress"], 0,
        "Alice's progress untouched"
    );

    // The admin token is not a player.
    app.get("/v1/me/quests", ADMIN_TOKEN)
        .await
        .assert_error(403, "permission_denied");
    app.finish().await;
}

async fn only_admin_writes_definitions(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, token) = app.sign_in("sneaky").await;
    let msg = app
        .post_json("/v1/quests", Some(&token), &wolves())
        .await
        .assert_error(403, "permission_denied");
    assert!(msg.contains("admin"), "{msg}");
    app.post_json("/v1/quests", None, &wolves())
        .await
        .assert_error(401, "unauthenticated");
    app.post_json("/v1/quests", Some("wrong-admin-token-xxxxxxxx"), &wolves())
        .await
        .assert_error(401, "unauthenticated");
    let created = app.post_json("/v1/quests", Some(ADMIN_TOKEN), &wolves()).await;
    assert_eq!(created.status, 201);
    app.finish().await;
}

async fn device_id_is_validated(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    for bad in [
        json!({"device_id": ""}),
        json!({"device_id": "x".repeat(129)}),
        json!({"device_id": "tab\there"}),
    ] {
        app.post_json("/v1/auth/device", None, &bad)
            .await
            .assert_error(400, "invalid_argument");
    }
    let msg = app
        .post_json("/v1/auth/device", None, &json!({}))
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("device_id"), "{msg}");
    app.post_json("/v1/auth/device", None, &json!({"device_id": 42}))
        .await
        .assert_error(400, "invalid_argument");
    app.finish().await;
}
