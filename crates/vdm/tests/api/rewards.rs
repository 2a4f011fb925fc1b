//! A completed quest's reward, end to end as the Unity client sees it:
//! the quest service queues it with the completion, its relay delivers it
//! to the player service, and the profile, inventory, ledger, socket and
//! standing with the giver's faction show it, once; the giver's disposition
//! toward the player rises once too (delivered to the NPC service). The
//! standing then decides what the giver's faction's NPCs tell the player.

use std::time::Duration;

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, TestApp, spawn_app, spawn_demo, wolves};
use crate::realtime::{connect, next};
use vdm_kit::backend_tests;

backend_tests!(
    completing_a_quest_rewards_the_player_once,
    a_reward_the_player_service_refuses_is_not_retried,
    a_quest_raises_standing_with_its_givers_faction,
    a_quest_gives_the_amounts_it_names,
    standing_with_an_npcs_faction_decides_what_it_tells,
);

/// The calling player's disposition score with NPC `npc_id`, through the
/// gateway.
async fn disposition(app: &TestApp, token: &str, npc_id: i64) -> i64 {
    let response = app.get(&format!("/v1/me/npcs/{npc_id}/disposition"), token).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()["score"].as_i64().unwrap()
}

/// Polls `GET path` until `done` holds for its body (delivery is
/// asynchronous), for at most 10 s.
async fn eventually(app: &TestApp, path: &str, token: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get(path, token).await;
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
        let body = response.json();
        if done(&body) {
            return body;
        }
        assert!(tokio::time::Instant::now() < deadline, "{path} never got there: {body}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Accepts quest `id` and does every objective of it.
async fn complete(app: &TestApp, token: &str, quest: &Value) {
    let id = quest["id"].as_i64().unwrap();
    let accepted = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(token), &json!({}))
        .await;
    assert_eq!(accepted.status, 200, "{}", String::from_utf8_lossy(&accepted.body));
    let mut last = Value::Null;
    for objective in quest["objectives"].as_array().unwrap() {
        let body = json!({"objective_id": objective["id"], "amount": objective["target_count"]});
        last = app
            .post_json(&format!("/v1/me/quests/{id}/progress"), Some(token), &body)
            .await
            .json();
    }
    assert_eq!(last["status"], "completed", "{last}");
}

async fn completing_a_quest_rewards_the_player_once(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let pelt =
        json!({"key": "wolf_pelt", "name": "Wolf pelt", "kind": "material", "rarity": "common", "max_stack": 20});
    let put = app
        .json_request(Method::PUT, "/v1/items/4", Some(ADMIN_TOKEN), &pelt)
        .await;
    assert_eq!(put.status, 200, "{}", String::from_utf8_lossy(&put.body));
    // Wolves gives 50 gold, 120 xp (level 2 on the default curve) and item 4.
    let wolves_quest = app.create_quest(&wolves()).await;
    let wolves_id = wolves_quest["id"].as_i64().unwrap();
    let mut hard = wolves();
    hard["title"] = json!("The Alpha");
    hard["level_requirement"] = json!(2);
    let hard_id = app.create_quest(&hard).await["id"].as_i64().unwrap();

    let (player_id, token) = app.sign_in("rewarded-player").await;
    let me = app.get("/v1/me", &token).await.json();
    assert_eq!(
        (me["level"].clone(), me["gold"].clone(), me["xp"].clone()),
        (json!(1), json!(0), json!(0))
    );
    let refused = app
        .post_json(&format!("/v1/quests/{hard_id}/accept"), Some(&token), &json!({}))
        .await;
    let message = refused.assert_error(409, "failed_precondition");
    assert!(message.contains("needs level 2"), "{message}");

    let mut socket = connect(&app, "", Some(&token), "vdm.v1.json").await.unwrap();
    assert_eq!(next(&mut socket).await["type"], "welcome");
    complete(&app, &token, &wolves_quest).await;

    let me = eventually(&app, "/v1/me", &token, |me| me["gold"] == 50).await;
    assert_eq!((me["xp"].clone(), me["level"].clone()), (json!(120), json!(2)), "{me}");
    let inventory = app.get("/v1/me/inventory", &token).await.json();
    let stacks = inventory["stacks"].as_array().unwrap();
    assert_eq!(stacks.len(), 1, "{inventory}");
    assert_eq!(
        (stacks[0]["item_id"].clone(), stacks[0]["count"].clone()),
        (json!(4), json!(1))
    );

    // The socket gets the quest's pushes, then the profile the reward left.
    let pushed = loop {
        let message = next(&mut socket).await;
        if message["event"] == "player.updated" {
            break message;
        }
        assert_eq!(message["event"], "quest.updated", "{message}");
    };
    assert_eq!(pushed["payload"], me, "the push carries the rewarded profile");

    let ledger = app.get("/v1/me/ledger", &token).await.json();
    let entries = ledger["items"].as_array().unwrap();
    assert_eq!(entries.len(), 3, "gold, xp and one item: {ledger}");
    let grant_id = format!("quest-{wolves_id}-player-{player_id}");
    for entry in entries {
        assert_eq!(entry["source_id"], format!("quest-{wolves_id}"), "{entry}");
        assert_eq!(entry["grant_id"], grant_id, "{entry}");
    }
    let kinds: Vec<_> = entries
        .iter()
        .map(|e| (e["kind"].clone(), e["amount"].clone()))
        .collect();
    // Newest first.
    assert_eq!(
        kinds,
        [
            (json!("item"), json!(1)),
            (json!("xp"), json!(120)),
            (json!("gold"), json!(50))
        ]
    );

    // Level 2 now: the hard quest opens. Completing it rewards it once more,
    // under its own grant id; the first reward is not given again.
    let hard_quest = app.get(&format!("/v1/quests/{hard_id}"), &token).await.json();
    complete(&app, &token, &hard_quest).await;
    let me = eventually(&app, "/v1/me", &token, |me| me["gold"] == 100).await;
    assert_eq!(me["xp"], 240);
    tokio::time::sleep(Duration::from_millis(600)).await;
    let ledger = app.get("/v1/me/ledger", &token).await.json();
    assert_eq!(ledger["items"].as_array().unwrap().len(), 6, "{ledger}");
    assert_eq!(app.get("/v1/me", &token).await.json()["gold"], 100);
    app.finish().await;
}

async fn a_reward_the_player_service_refuses_is_not_retried(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    // Item 4 is not in the catalog: the player service refuses the grant
    // whole (not found), and the relay gives it up instead of retrying.
    let quest = app.create_quest(&wolves()).await;
    let (_, token) = app.sign_in("refused-player").await;
    complete(&app, &token, &quest).await;
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let me = app.get("/v1/me", &token).await.json();
    assert_eq!((me["gold"].clone(), me["xp"].clone()), (json!(0), json!(0)), "{me}");
    assert!(
        app.get("/v1/me/ledger", &token).await.json()["items"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    // Were the row still pending, the grant would go through once the item
    // exists; a refused row stays refused.
    let pelt =
        json!({"key": "wolf_pelt", "name": "Wolf pelt", "kind": "material", "rarity": "common", "max_stack": 20});
    let put = app
        .json_request(Method::PUT, "/v1/items/4", Some(ADMIN_TOKEN), &pelt)
        .await;
    assert_eq!(put.status, 200);
    tokio::time::sleep(Duration::from_millis(1000)).await;
    assert_eq!(app.get("/v1/me", &token).await.json()["gold"], 0);
    app.finish().await;
}

async fn a_quest_raises_standing_with_its_givers_faction(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("standing-player").await;
    let (_, other) = app.sign_in("bystander").await;
    assert_eq!(disposition(&app, &token, 1).await, 0);
    let factions = app.get("/v1/me/factions", &token).await;
    assert_eq!(factions.status, 200, "{}", String::from_utf8_lossy(&factions.body));
    assert_eq!(factions.json(), json!({"items": []}));

    // Demo quest 1 is given by Hilda the Miller (NPC 1), of the Free Folk
    // of the Vale (faction 5).
    let quest = app.get("/v1/quests/1", &token).await.json();
    assert_eq!(quest["giver_npc_id"], 1);
    complete(&app, &token, &quest).await;
    let factions = eventually(&app, "/v1/me/factions", &token, |f| {
        !f["items"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        factions,
        json!({"items": [{"faction_id": 5, "name": "Free Folk of the Vale", "standing": 5}]})
    );
    let ledger = app.get("/v1/me/ledger", &token).await.json();
    let standing: Vec<_> = ledger["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "standing")
        .collect();
    assert_eq!(standing.len(), 1, "{ledger}");
    assert_eq!(standing[0]["faction_id"], 5);
    assert_eq!(
        (standing[0]["amount"].clone(), standing[0]["balance_after"].clone()),
        (json!(5), json!(5))
    );
    assert_eq!(standing[0]["source_id"], "quest-1");
    assert_eq!(app.get("/v1/me", &token).await.json()["gold"], 50);

    // Hilda's disposition toward the player rose by the default amount,
    // once; toward another player, not at all.
    let moved = eventually(&app, "/v1/me/npcs/1/disposition", &token, |d| d["score"] != 0).await;
    assert_eq!(moved["score"], 10, "{moved}");
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(disposition(&app, &token, 1).await, 10);
    assert_eq!(disposition(&app, &other, 1).await, 0);
    app.finish().await;
}

async fn a_quest_gives_the_amounts_it_names(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    // Hilda the Miller (NPC 1) is of the Free Folk of the Vale (faction 5).
    let mut spec = wolves();
    spec["giver_npc_id"] = json!(1);
    spec["region_id"] = json!(1);
    spec["title"] = json!("A grudge at the mill");
    spec["reward"] = json!({"gold": 1, "standing": 12, "disposition": -30});

    // Out of bounds, or not a number: a 400 naming the field, nothing made.
    for (reward, field) in [
        (json!({"gold": 1, "standing": 101}), "reward.standing"),
        (json!({"gold": 1, "disposition": -101}), "reward.disposition"),
        (json!({"gold": 1, "disposition": "lots"}), "reward.disposition"),
    ] {
        let mut bad = spec.clone();
        bad["reward"] = reward;
        let refused = app.post_json("/v1/quests", Some(ADMIN_TOKEN), &bad).await;
        let message = refused.assert_error(400, "invalid_argument");
        assert!(message.contains(field), "{message}");
    }

    let quest = app.create_quest(&spec).await;
    assert_eq!(
        quest["reward"],
        json!({"gold": 1, "xp": 0, "item_ids": [], "standing": 12, "disposition": -30})
    );
    let plain = app.create_quest(&wolves()).await;
    assert_eq!(
        plain["reward"],
        json!({"gold": 50, "xp": 120, "item_ids": [4]}),
        "no amounts named: the defaults apply, and none is shown"
    );

    let (_, token) = app.sign_in("grudging-player").await;
    complete(&app, &token, &quest).await;
    let factions = eventually(&app, "/v1/me/factions", &token, |f| {
        !f["items"].as_array().unwrap().is_empty()
    })
    .await;
    assert_eq!(factions["items"][0]["standing"], 12, "{factions}");
    let moved = eventually(&app, "/v1/me/npcs/1/disposition", &token, |d| d["score"] != 0).await;
    assert_eq!(moved["score"], -30, "{moved}");

    // A change of the reward replaces it whole: the amounts go back to the
    // defaults when left out.
    let id = quest["id"].as_i64().unwrap();
    let patched = app
        .json_request(
            Method::PATCH,
            &format!("/v1/quests/{id}"),
            Some(ADMIN_TOKEN),
            &json!({"reward": {"gold": 2, "disposition": 40}}),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", String::from_utf8_lossy(&patched.body));
    assert_eq!(
        patched.json()["reward"],
        json!({"gold": 2, "xp": 0, "item_ids": [], "disposition": 40})
    );
    app.finish().await;
}

/// Completes a fresh quest of Hilda's (NPC 1, of faction 5) that gives
/// `standing`, and waits for the standing with faction 5 to be `expect`.
async fn change_standing(app: &TestApp, token: &str, title: &str, standing: i32, expect: i64) {
    let mut spec = wolves();
    spec["giver_npc_id"] = json!(1);
    spec["region_id"] = json!(1);
    spec["title"] = json!(title);
    spec["reward"] = json!({"gold": 1, "standing": standing});
    let quest = app.create_quest(&spec).await;
    complete(app, token, &quest).await;
    eventually(app, "/v1/me/factions", token, |f| {
        f["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["faction_id"] == 5 && s["standing"] == expect)
    })
    .await;
}

async fn standing_with_an_npcs_faction_decides_what_it_tells(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    // Hilda the Miller (NPC 1, of the Free Folk of the Vale) knows three
    // rumors of her own.
    for k in 0..3 {
        let rumor = json!({"text": format!("The millstone cracked {k} times this spring."), "origin_npc_id": 1, "region_id": 1, "truth": 0.5});
        let created = app.post_json("/v1/rumors", Some(ADMIN_TOKEN), &rumor).await;
        assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    }
    let talk = |token: String| {
        let app = &app;
        async move {
            let answer = app.post_json("/v1/npcs/1/talk", Some(&token), &json!({})).await;
            assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
            answer.json()
        }
    };

    // Neutral (no standing): one rumor at a time.
    let (_, neutral) = app.sign_in("neutral-talker").await;
    let heard = talk(neutral.clone()).await;
    assert_eq!(
        (heard["told"].clone(), heard["attitude"].clone()),
        (json!(true), json!("neutral")),
        "{heard}"
    );
    assert!(heard.get("more").is_none() && heard.get("refusal").is_none(), "{heard}");

    // Hostile (standing -30 after a quest against the Free Folk): nothing,
    // and why.
    let (_, grudge) = app.sign_in("grudge-talker").await;
    change_standing(&app, &grudge, "Poison the mill pond", -30, -30).await;
    let refused = talk(grudge.clone()).await;
    assert_eq!(refused["told"], false, "{refused}");
    assert_eq!(refused["attitude"], "hostile");
    assert!(refused.get("rumor").is_none(), "{refused}");
    let why = refused["refusal"].as_str().unwrap();
    assert!(
        why.contains("Hilda the Miller will not talk to you") && why.contains("-30"),
        "{why}"
    );
    assert!(
        app.get("/v1/me/rumors", &grudge).await.json()["items"]
            .as_array()
            .unwrap()
            .is_empty(),
        "a hostile npc tells nothing"
    );

    // Friendly (standing 30 after making amends): two rumors at once, both
    // new to the player. The gateway reused the hostile standing for the
    // talk above and drops it when it hears `player.updated`: well within
    // the 5 s it would otherwise keep it. (A hostile talk tells nothing, so
    // asking again changes nothing.)
    change_standing(&app, &grudge, "Mend the mill wheel", 60, 30).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let friendly = loop {
        let heard = talk(grudge.clone()).await;
        if heard["attitude"] != "hostile" {
            break heard;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {heard}");
        // Well under the write rate limit (20/s).
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(
        (friendly["told"].clone(), friendly["attitude"].clone()),
        (json!(true), json!("friendly")),
        "{friendly}"
    );
    assert_eq!(friendly["first_time"], true);
    let more = friendly["more"].as_array().unwrap();
    assert_eq!(more.len(), 1, "{friendly}");
    assert_ne!(more[0]["rumor_id"], friendly["rumor"]["rumor_id"]);
    let mine = app.get("/v1/me/rumors", &grudge).await.json();
    assert_eq!(mine["items"].as_array().unwrap().len(), 2, "{mine}");

    // Hilda leaves the Free Folk: her next talks are neutral at once (well
    // within the 10 s the rumor service may keep an NPC it has read).
    let left = app
        .json_request(
            Method::PATCH,
            "/v1/npcs/1",
            Some(ADMIN_TOKEN),
            &json!({"faction_id": null}),
        )
        .await;
    assert_eq!(left.status, 200, "{}", String::from_utf8_lossy(&left.body));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    loop {
        let heard = talk(grudge.clone()).await;
        if heard["attitude"] == "neutral" {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "still {heard}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.finish().await;
}
