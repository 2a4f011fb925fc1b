//! The player's profile, inventory and ledger through the gateway
//! (`/v1/me*`), the operators' grants and item catalog, the level
//! requirement of quests, and the `player.*` pushes.

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, spawn_app, wolves};
use crate::realtime::{collect, connect, next, send};
use vdm_kit::backend_tests;
use vdm_proto::player::v1 as player_pb;

backend_tests!(
    me_reads_and_renames,
    grants_fill_the_inventory_and_the_ledger,
    the_item_catalog_is_written_by_operators,
    a_quest_above_the_players_level_is_refused_until_xp_raises_it,
    a_grant_pushes_the_profile_and_the_level_up,
);

async fn put_item(app: &TestApp, id: i64, key: &str, max_stack: u32) -> Value {
    let body =
        json!({"key": key, "name": format!("Item {key}"), "kind": "potion", "rarity": "rare", "max_stack": max_stack});
    let response = app
        .json_request(Method::PUT, &format!("/v1/items/{id}"), Some(ADMIN_TOKEN), &body)
        .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()
}

async fn grant(app: &TestApp, player_id: i64, body: &Value, key: Option<&str>) -> crate::helpers::TestResponse {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let mut headers = vec![("content-type", "application/json"), ("authorization", auth.as_str())];
    if let Some(key) = key {
        headers.push(("idempotency-key", key));
    }
    app.send(
        Method::POST,
        &format!("/v1/players/{player_id}/grants"),
        &headers,
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

async fn me_reads_and_renames(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (player_id, token) = app.sign_in("me-player").await;
    let me = app.get("/v1/me", &token).await;
    assert_eq!(me.status, 200, "{}", String::from_utf8_lossy(&me.body));
    let me = me.json();
    assert_eq!(me["player_id"], player_id);
    assert_eq!(me["level"], 1, "a new player is level 1");
    assert_eq!(me["xp"], 0);
    assert_eq!(me["gold"], 0);
    assert_eq!(me["next_level_xp"], 100);
    assert!(me.get("display_name").is_none(), "no name until chosen: {me}");
    assert!(me["created_at"].as_str().unwrap().ends_with('Z'));

    let renamed = app
        .json_request(
            Method::PATCH,
            "/v1/me",
            Some(&token),
            &json!({"display_name": "  Ada Wolfbane "}),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", String::from_utf8_lossy(&renamed.body));
    assert_eq!(renamed.json()["display_name"], "Ada Wolfbane", "trimmed");
    assert_eq!(app.get("/v1/me", &token).await.json()["display_name"], "Ada Wolfbane");

    // Names are unique, case-insensitively.
    let (_, other) = app.sign_in("me-other").await;
    let taken = app
        .json_request(
            Method::PATCH,
            "/v1/me",
            Some(&other),
            &json!({"display_name": "ada wolfbane"}),
        )
        .await;
    let message = taken.assert_error(409, "already_exists");
    assert!(message.contains("taken"), "{message}");
    for bad in ["ab", "Ada<script>", "a  b c", "x".repeat(25).as_str()] {
        let refused = app
            .json_request(Method::PATCH, "/v1/me", Some(&other), &json!({"display_name": bad}))
            .await;
        let message = refused.assert_error(400, "invalid_argument");
        assert!(message.contains("display_name"), "{bad}: {message}");
    }
    // Unknown fields are refused, as on every body.
    app.json_request(Method::PATCH, "/v1/me", Some(&other), &json!({"level": 50}))
        .await
        .assert_error(400, "invalid_argument");
    // An empty patch changes nothing.
    let same = app
        .json_request(Method::PATCH, "/v1/me", Some(&token), &json!({}))
        .await;
    assert_eq!(same.json()["display_name"], "Ada Wolfbane");
    // Operators have no profile of their own.
    app.get("/v1/me", ADMIN_TOKEN)
        .await
        .assert_error(403, "permission_denied");
    // MessagePack, as every route.
    let auth = format!("Bearer {token}");
    let packed = app
        .send(
            Method::GET,
            "/v1/me",
            &[("authorization", &auth), ("accept", "application/msgpack")],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(packed.header("content-type"), Some("application/msgpack"));
    let packed: Value = rmp_serde::from_slice(&packed.body).unwrap();
    assert_eq!(packed["display_name"], "Ada Wolfbane");
    app.finish().await;
}

async fn grants_fill_the_inventory_and_the_ledger(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (player_id, token) = app.sign_in("grant-player").await;
    put_item(&app, 4, "wolf_pelt", 5).await;
    put_item(&app, 9, "healing_draught", 20).await;
    let empty = app.get("/v1/me/inventory", &token).await;
    assert_eq!(empty.status, 200);
    assert_eq!(empty.json()["stacks"], json!([]));

    let body = json!({"gold": 25, "xp": 40, "items": [{"item_id": 4, "quantity": 2}, {"item_id": 9, "quantity": 3}], "reason": "support ticket 12", "source_id": "ticket-12"});
    let first = grant(&app, player_id, &body, Some("ticket-12")).await;
    assert_eq!(first.status, 200, "{}", String::from_utf8_lossy(&first.body));
    assert_eq!(first.header("idempotent-replayed"), Some("false"));
    let change = first.json();
    assert_eq!(change["profile"]["gold"], 25);
    assert_eq!(change["profile"]["xp"], 40);
    assert_eq!(change["replayed"], false);
    // The same key again: applied once.
    let again = grant(&app, player_id, &body, Some("ticket-12")).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.json()["profile"]["gold"], 25);
    let mut other = body.clone();
    other["gold"] = json!(26);
    grant(&app, player_id, &other, Some("ticket-12"))
        .await
        .assert_error(409, "already_exists");

    let inventory = app.get("/v1/me/inventory", &token).await.json();
    assert_eq!(
        inventory["stacks"],
        json!([
            {"item_id": 4, "name": "Item wolf_pelt", "kind": "potion", "rarity": "rare", "count": 2, "max_stack": 5},
            {"item_id": 9, "name": "Item healing_draught", "kind": "potion", "rarity": "rare", "count": 3, "max_stack": 20},
        ])
    );
    assert_eq!(app.get("/v1/me", &token).await.json()["gold"], 25);
    // A change to the catalog shows in the next read of an inventory.
    put_item(&app, 4, "grey_pelt", 5).await;
    let renamed = app.get("/v1/me/inventory", &token).await.json();
    assert_eq!(renamed["stacks"][0]["name"], "Item grey_pelt", "{backend:?}");

    // Past a stack's limit, unknown items and players, nothing to grant.
    let full = json!({"items": [{"item_id": 4, "quantity": 4}], "reason": "too many"});
    let message = grant(&app, player_id, &full, None)
        .await
        .assert_error(409, "failed_precondition");
    assert!(message.contains("at most 5"), "{message}");
    let unknown_item = json!({"items": [{"item_id": 777, "quantity": 1}], "reason": "nope"});
    grant(&app, player_id, &unknown_item, None)
        .await
        .assert_error(404, "not_found");
    let gold = json!({"gold": 1, "reason": "nope"});
    grant(&app, 999_999, &gold, None).await.assert_error(404, "not_found");
    let nothing = json!({"reason": "nothing"});
    grant(&app, player_id, &nothing, None)
        .await
        .assert_error(400, "invalid_argument");
    let negative = json!({"gold": -5, "reason": "minus"});
    grant(&app, player_id, &negative, None)
        .await
        .assert_error(400, "invalid_argument");
    // Players cannot grant themselves anything.
    let response = app
        .post_json(&format!("/v1/players/{player_id}/grants"), Some(&token), &gold)
        .await;
    response.assert_error(403, "permission_denied");

    // A second grant, then the ledger: newest first, in pages.
    grant(&app, player_id, &json!({"gold": 5, "reason": "daily bonus"}), None).await;
    let page = app.get("/v1/me/ledger?limit=2", &token).await;
    assert_eq!(page.status, 200, "{}", String::from_utf8_lossy(&page.body));
    let page = page.json();
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["kind"], "gold");
    assert_eq!(items[0]["amount"], 5);
    assert_eq!(items[0]["balance_after"], 30);
    assert_eq!(items[0]["reason"], "daily bonus");
    assert!(items[0]["id"].as_i64().unwrap() > items[1]["id"].as_i64().unwrap());
    let cursor = page["next_cursor"].as_str().unwrap();
    assert!(cursor.starts_with('d'), "{cursor}");
    let mut all: Vec<Value> = items.clone();
    let mut next = Some(cursor.to_owned());
    while let Some(cursor) = next {
        let page = app
            .get(&format!("/v1/me/ledger?limit=2&cursor={cursor}"), &token)
            .await
            .json();
        all.extend(page["items"].as_array().unwrap().iter().cloned());
        next = page["next_cursor"].as_str().map(str::to_owned);
    }
    // gold, xp, two items, then the bonus: five entries.
    assert_eq!(all.len(), 5, "{all:?}");
    let first = all.last().unwrap();
    assert_eq!(first["grant_id"], "ticket-12");
    assert_eq!(first["source_id"], "ticket-12");
    assert!(
        all.iter()
            .any(|e| e["kind"] == "item" && e["item_id"] == 9 && e["balance_after"] == 3)
    );
    app.get("/v1/me/ledger?cursor=a1", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/v1/me/ledger?limit=0", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.finish().await;
}

async fn the_item_catalog_is_written_by_operators(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, token) = app.sign_in("catalog-player").await;
    let item = put_item(&app, 31, "iron_sword", 1).await;
    assert_eq!(item["id"], 31);
    assert_eq!(item["key"], "iron_sword");
    assert_eq!(item["rarity"], "rare");
    assert_eq!(item["tradeable"], false);
    put_item(&app, 32, "oak_shield", 1).await;
    // Replacing keeps the id.
    let body = json!({"key": "iron_sword", "name": "Iron Sword", "kind": "weapon", "max_stack": 1, "tradeable": true});
    let replaced = app
        .json_request(Method::PUT, "/v1/items/31", Some(ADMIN_TOKEN), &body)
        .await
        .json();
    assert_eq!(replaced["name"], "Iron Sword");
    assert_eq!(replaced["rarity"], "common", "left out: common");

    let read = app.get("/v1/items/31", &token).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["kind"], "weapon");
    app.get("/v1/items/4040", &token).await.assert_error(404, "not_found");
    let page = app.get("/v1/items?limit=1", &token).await.json();
    assert_eq!(page["items"][0]["id"], 31);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app.get(&format!("/v1/items?cursor={cursor}"), &token).await.json();
    assert_eq!(rest["items"][0]["id"], 32);

    // Players read the catalog; only operators write it.
    app.json_request(Method::PUT, "/v1/items/33", Some(&token), &body)
        .await
        .assert_error(403, "permission_denied");
    // Another item's key, bad fields.
    let taken = json!({"key": "oak_shield", "name": "Shield", "kind": "armor", "max_stack": 1});
    app.json_request(Method::PUT, "/v1/items/31", Some(ADMIN_TOKEN), &taken)
        .await
        .assert_error(409, "already_exists");
    for bad in [
        json!({"key": "Bad Key", "name": "x", "kind": "armor", "max_stack": 1}),
        json!({"key": "ok", "name": "x", "kind": "armor", "max_stack": 0}),
        json!({"key": "ok", "name": "x", "kind": "armor", "max_stack": 1, "rarity": "mythic"}),
        json!({"key": "ok", "name": " ", "kind": "armor", "max_stack": 1}),
    ] {
        app.json_request(Method::PUT, "/v1/items/34", Some(ADMIN_TOKEN), &bad)
            .await
            .assert_error(400, "invalid_argument");
    }
    app.finish().await;
}

async fn a_quest_above_the_players_level_is_refused_until_xp_raises_it(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let mut hard = wolves();
    hard["level_requirement"] = json!(3);
    let quest = app.create_quest(&hard).await;
    let id = quest["id"].as_i64().unwrap();
    let easy = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (player_id, token) = app.sign_in("level-player").await;

    let refused = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await;
    let message = refused.assert_error(409, "failed_precondition");
    assert!(message.contains("needs level 3"), "{message}");
    assert!(message.contains("level 1"), "{message}");
    // A level-1 quest is open to a new player.
    let accepted = app
        .post_json(&format!("/v1/quests/{easy}/accept"), Some(&token), &json!({}))
        .await;
    assert_eq!(accepted.status, 200, "{}", String::from_utf8_lossy(&accepted.body));

    // 300 xp is level 3 on the default curve (100, 300, 600, ...).
    let change = grant(&app, player_id, &json!({"xp": 300, "reason": "catch up"}), None)
        .await
        .json();
    assert_eq!(change["profile"]["level"], 3);
    assert_eq!(change["leveled_up"], true);
    assert_eq!(change["previous_level"], 1);
    let accepted = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await;
    assert_eq!(accepted.status, 200, "{}", String::from_utf8_lossy(&accepted.body));
    assert_eq!(accepted.json()["status"], "active");
    app.finish().await;
}

async fn a_grant_pushes_the_profile_and_the_level_up(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (player_id, token) = app.sign_in("push-player").await;
    let mut socket = connect(&app, "", Some(&token), "vdm.v1.json").await.unwrap();
    assert_eq!(next(&mut socket).await["type"], "welcome");

    grant(
        &app,
        player_id,
        &json!({"xp": 150, "gold": 7, "reason": "event prize"}),
        None,
    )
    .await;
    let first = next(&mut socket).await;
    let second = next(&mut socket).await;
    assert_eq!(first["event"], "player.updated", "{first}");
    assert_eq!(first["payload"]["player_id"], player_id);
    assert_eq!(first["payload"]["level"], 2);
    assert_eq!(first["payload"]["gold"], 7);
    assert_eq!(
        first["payload"],
        app.get("/v1/me", &token).await.json(),
        "the push carries the profile GET /v1/me answers"
    );
    assert_eq!(second["event"], "player.level_up", "{second}");
    assert_eq!(
        second["payload"],
        json!({"player_id": player_id, "previous_level": 1, "level": 2})
    );

    // A rename pushes the profile too, over the socket's own request.
    send(
        &mut socket,
        json!({"id": "r1", "type": "request", "method": "PATCH", "path": "/v1/me", "body": {"display_name": "Pushy"}}),
    )
    .await;
    let (reply, pushes) = collect(&mut socket, "r1", 1).await;
    assert_eq!(reply["status"], 200);
    assert_eq!(pushes[0]["event"], "player.updated");
    assert_eq!(pushes[0]["payload"]["display_name"], "Pushy");

    // Another player's grant does not reach this socket.
    let (other, _) = app.sign_in("push-other").await;
    grant(&app, other, &json!({"gold": 1, "reason": "other"}), None).await;
    grant(&app, player_id, &json!({"gold": 1, "reason": "mine"}), None).await;
    let mine = next(&mut socket).await;
    assert_eq!(mine["payload"]["player_id"], player_id, "{mine}");
    app.finish().await;
}

/// Two player service replicas share a database, a cache and an event bus;
/// the gateway's calls reach the first, which keeps the profiles it read
/// for up to 10 s. A grant through the second shows in the first's next
/// `GET /v1/me` well within that: its `player.updated` dropped the kept
/// profile. The same for inventories, which a change to the item catalog
/// through the second also drops. Postgres and Redis only: replicas share profiles through Redis
/// (the embedded back end's cache is each process's own, and one process
/// runs one replica of each service).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replicas_grant_shows_in_the_next_profile() {
    let backend = Backend::External;
    let Some(app) = spawn_app(backend).await else { return };
    let (player_id, token) = app.sign_in("two-player-replicas").await;
    let mut second = app.spawn_second_player_replica().await;
    let gold = || async { app.get("/v1/me", &token).await.json()["gold"].as_i64() };

    assert_eq!(gold().await, Some(0), "{backend:?}: read and kept by the first replica");
    assert_eq!(gold().await, Some(0));
    for (round, expected) in [(1, 25), (2, 50)] {
        second
            .grant(player_pb::GrantRequest {
                player_id,
                amounts: Some(player_pb::Amounts {
                    gold: 25,
                    ..Default::default()
                }),
                reason: format!("second replica, round {round}"),
                ..Default::default()
            })
            .await
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut seen = gold().await;
        while seen != Some(expected) && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            seen = gold().await;
        }
        assert_eq!(seen, Some(expected), "{backend:?}: the other replica's grant {round}");
    }

    // Inventories likewise; a change to the item catalog drops them all.
    put_item(&app, 7, "moon_herb", 10).await;
    let stacks = || async { app.get("/v1/me/inventory", &token).await.json()["stacks"].clone() };
    let stacks_become = |expected: Value| async move {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
        let mut seen = stacks().await;
        while seen != expected && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            seen = stacks().await;
        }
        seen
    };
    assert_eq!(stacks().await, json!([]), "read and kept by the first replica");
    second
        .grant(player_pb::GrantRequest {
            player_id,
            amounts: Some(player_pb::Amounts {
                items: vec![player_pb::ItemAmount {
                    item_id: 7,
                    quantity: 2,
                }],
                ..Default::default()
            }),
            reason: "second replica, items".to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let herbs = json!([{"item_id": 7, "name": "Item moon_herb", "kind": "potion", "rarity": "rare", "count": 2, "max_stack": 10}]);
    assert_eq!(stacks_become(herbs.clone()).await, herbs, "the other replica's items");
    second
        .put_item(player_pb::PutItemRequest {
            item: Some(player_pb::Item {
                id: 7,
                key: "moon_herb".to_owned(),
                name: "Moonlit herb".to_owned(),
                kind: "potion".to_owned(),
                rarity: "rare".to_owned(),
                max_stack: 10,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let renamed = json!([{"item_id": 7, "name": "Moonlit herb", "kind": "potion", "rarity": "rare", "count": 2, "max_stack": 10}]);
    assert_eq!(
        stacks_become(renamed.clone()).await,
        renamed,
        "the other replica's catalog change"
    );
    app.finish().await;
}
