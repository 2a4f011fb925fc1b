//! The rumor routes through the gateway: rumors, spreading from NPC to NPC,
//! what NPCs and players know, talking to an NPC, ticks, the bootstrap's
//! heard rumors, and a gateway without the rumor service.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, Options, spawn_app_with, spawn_demo};
use vdm_kit::backend_tests;

backend_tests!(
    create_read_spread_and_list_what_npcs_know,
    bad_rumor_input_is_a_400_naming_the_field,
    players_hear_rumors_by_talking_and_in_the_bootstrap,
    what_npcs_and_players_learn_shows_in_their_next_talk,
    ticks_spread_rumors_to_neighbours_within_their_cap,
    rumors_born_of_world_events_start_with_witnesses,
    without_the_rumor_service_rumors_are_503_and_missing_from_the_bootstrap,
);

fn items(body: &Value) -> &Vec<Value> {
    body["items"].as_array().expect("items")
}

fn well() -> Value {
    json!({
        "text": "The well at Millbrook is poisoned and 2 goats died",
        "origin_npc_id": 1,
        "region_id": 1,
        "truth": 0.9
    })
}

async fn create_read_spread_and_list_what_npcs_know(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("gossip-watcher").await;

    let created = app.post_json("/v1/rumors", Some(ADMIN_TOKEN), &well()).await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let rumor = created.json();
    let id = rumor["id"].as_i64().unwrap();
    assert_eq!(rumor["origin_npc_id"], 1);
    assert_eq!(rumor["region_id"], 1);
    assert_eq!(rumor["variant_count"], 1);
    assert!((rumor["truth"].as_f64().unwrap() - 0.9).abs() < 1e-6);
    let root = rumor["root_variant_id"].as_i64().unwrap();

    // Players read rumors but do not make or spread them.
    app.post_json("/v1/rumors", Some(&token), &well())
        .await
        .assert_error(403, "permission_denied");
    app.post_json("/v1/rumors", None, &well())
        .await
        .assert_error(401, "unauthenticated");
    let read = app.get(&format!("/v1/rumors/{id}"), &token).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.json()["text"], well()["text"]);

    // The origin tells its neighbour: a new variant, a little less true.
    let path = format!("/v1/rumors/{id}/spread");
    let told = app
        .post_json(&path, Some(ADMIN_TOKEN), &json!({"from_npc_id": 1, "to_npc_id": 2}))
        .await;
    assert_eq!(told.status, 201, "{}", String::from_utf8_lossy(&told.body));
    let first = told.json();
    assert_eq!(first["rumor_id"], id);
    assert_eq!(first["parent_id"], root);
    assert_eq!(first["teller_npc_id"], 1);
    assert_eq!(first["listener_npc_id"], 2);
    assert_eq!(first["already_known"], false);
    assert_eq!(first["transformer"], "local/1");
    assert!(!first["text"].as_str().unwrap().is_empty());
    let distortion = first["distortion"].as_f64().unwrap();
    assert!(distortion > 0.0 && distortion <= 1.0, "{first}");
    assert!(first["truth"].as_f64().unwrap() < 0.9);

    // Telling it again changes nothing.
    let again = app
        .post_json(&path, Some(ADMIN_TOKEN), &json!({"from_npc_id": 1, "to_npc_id": 2}))
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["id"], first["id"]);
    assert_eq!(again.json()["already_known"], true);

    // The listener passes it on; distortion only grows along the chain.
    let second = app
        .post_json(
            &path,
            Some(ADMIN_TOKEN),
            &json!({"from_npc_id": 2, "to_npc_id": 5, "seed": 42}),
        )
        .await;
    assert_eq!(second.status, 201);
    let second = second.json();
    assert_eq!(second["parent_id"], first["id"]);
    assert!(second["distortion"].as_f64().unwrap() > distortion);
    assert!(second["truth"].as_f64().unwrap() < first["truth"].as_f64().unwrap());

    // Who never heard it cannot tell it.
    app.post_json(&path, Some(ADMIN_TOKEN), &json!({"from_npc_id": 3, "to_npc_id": 6}))
        .await
        .assert_error(409, "failed_precondition");

    let known = app.get("/v1/npcs/2/rumors", &token).await;
    assert_eq!(known.status, 200);
    let known = known.json();
    assert_eq!(items(&known).len(), 1, "{known}");
    assert_eq!(items(&known)[0]["id"], first["id"]);
    assert_eq!(items(&known)[0]["region_id"], 1);
    assert!(items(&known)[0]["since"].as_str().unwrap().ends_with('Z'));
    let read = app.get(&format!("/v1/rumors/{id}"), &token).await.json();
    assert_eq!(read["variant_count"], 3);

    // Pages, newest rumor first: NPC 4 knows the demo rumor 1 and now this one.
    app.post_json(&path, Some(ADMIN_TOKEN), &json!({"from_npc_id": 1, "to_npc_id": 4}))
        .await;
    let page = app.get("/v1/npcs/4/rumors?limit=1", &token).await.json();
    assert_eq!(items(&page)[0]["rumor_id"], id);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = app
        .get(&format!("/v1/npcs/4/rumors?limit=1&cursor={cursor}"), &token)
        .await
        .json();
    assert_eq!(items(&rest)[0]["rumor_id"], 1);
    assert!(rest.get("next_cursor").is_none());
    let other_region = app.get("/v1/npcs/4/rumors?region_id=2", &token).await.json();
    assert!(items(&other_region).is_empty());
    app.finish().await;
}

async fn bad_rumor_input_is_a_400_naming_the_field(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("vandal").await;
    let with = |change: Value| {
        let mut body = well();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    for (body, field) in [
        (with(json!({"text": "  "})), "text"),
        (with(json!({"text": "x".repeat(501)})), "text"),
        (with(json!({"origin_npc_id": null})), "origin"),
        (with(json!({"origin_event_id": 1})), "only one"),
        (with(json!({"origin_npc_id": -1})), "origin_npc_id"),
        (with(json!({"origin_npc_id": 999})), "origin_npc_id"),
        (
            with(json!({"origin_npc_id": null, "origin_event_id": 999})),
            "origin_event_id",
        ),
        (with(json!({"truth": 1.5})), "truth"),
        (with(json!({"region_id": 0})), "region_id"),
        (with(json!({"region_id": 99})), "region"),
        (with(json!({"gossip": true})), "gossip"),
        (with(json!({"truth": "very"})), "truth"),
    ] {
        let response = app.post_json("/v1/rumors", Some(ADMIN_TOKEN), &body).await;
        let message = response.assert_error(400, "invalid_argument");
        assert!(message.contains(field), "{body}: {message:?} should name {field}");
    }
    for (path, body, status, field) in [
        (
            "/v1/rumors/1/spread",
            json!({"from_npc_id": 4, "to_npc_id": 4}),
            400,
            "differ",
        ),
        (
            "/v1/rumors/1/spread",
            json!({"from_npc_id": 4, "to_npc_id": 0}),
            400,
            "to_npc_id",
        ),
        ("/v1/rumors/1/spread", json!({"from_npc_id": 4}), 400, "to_npc_id"),
        (
            "/v1/rumors/1/spread",
            json!({"from_npc_id": 4, "to_npc_id": 999}),
            404,
            "999",
        ),
        (
            "/v1/rumors/77/spread",
            json!({"from_npc_id": 4, "to_npc_id": 5}),
            404,
            "rumor 77",
        ),
        (
            "/v1/rumors:tick",
            json!({"region_id": 1, "max_tellings": 0}),
            400,
            "max_tellings",
        ),
        (
            "/v1/rumors:tick",
            json!({"region_id": 1, "max_tellings": 100000}),
            400,
            "max_tellings",
        ),
        ("/v1/rumors:tick", json!({"region_id": -3}), 400, "region_id"),
    ] {
        let response = app.post_json(path, Some(ADMIN_TOKEN), &body).await;
        assert_eq!(response.status, status, "{path} {body}");
        let message = response.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains(field),
            "{path} {body}: {message:?} should name {field}"
        );
    }
    for (path, status) in [
        ("/v1/rumors/0", 400),
        ("/v1/rumors/abc", 400),
        ("/v1/rumors/12345", 404),
        ("/v1/npcs/0/rumors", 400),
        ("/v1/npcs/1/rumors?limit=0", 400),
        ("/v1/npcs/1/rumors?cursor=nope", 400),
        ("/v1/me/rumors?region_id=-1", 400),
    ] {
        let response = app.get(path, &token).await;
        assert_eq!(
            response.status,
            status,
            "{path}: {}",
            String::from_utf8_lossy(&response.body)
        );
        assert!(response.json()["error"]["message"].is_string());
    }
    let response = app.post_json("/v1/npcs/999/talk", Some(&token), &json!({})).await;
    response.assert_error(404, "not_found");
    app.finish().await;
}

async fn players_hear_rumors_by_talking_and_in_the_bootstrap(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (ana, ana_token) = app.sign_in("ana").await;
    let (_, bo_token) = app.sign_in("bo").await;

    // Tobin Reed (NPC 4) started the demo rumor 1 in Millbrook Vale.
    let talk = app.post_json("/v1/npcs/4/talk", Some(&ana_token), &json!({})).await;
    assert_eq!(talk.status, 200, "{}", String::from_utf8_lossy(&talk.body));
    let heard = talk.json();
    assert_eq!(heard["npc_id"], 4);
    assert_eq!(heard["told"], true);
    assert_eq!(heard["first_time"], true);
    assert_eq!(heard["rumor"]["rumor_id"], 1);
    assert_eq!(heard["rumor"]["teller_npc_id"], 4);
    assert_eq!(heard["rumor"]["listener_player_id"], ana);
    let text = heard["rumor"]["text"].as_str().unwrap().to_owned();

    // Asked again, Tobin repeats what Ana already heard.
    let again = app
        .post_json("/v1/npcs/4/talk", Some(&ana_token), &json!({}))
        .await
        .json();
    assert_eq!(again["first_time"], false);
    assert_eq!(again["rumor"]["id"], heard["rumor"]["id"]);

    // Bo hears the same words from Tobin (one retelling serves every player).
    let bo = app
        .post_json("/v1/npcs/4/talk", Some(&bo_token), &json!({}))
        .await
        .json();
    assert_eq!(bo["first_time"], true);
    assert_eq!(bo["rumor"]["text"], text.as_str());
    assert_ne!(bo["rumor"]["id"], heard["rumor"]["id"]);

    // Brother Aldo (NPC 2) knows nothing yet.
    let silent = app
        .post_json("/v1/npcs/2/talk", Some(&ana_token), &json!({}))
        .await
        .json();
    assert_eq!(
        silent,
        json!({"npc_id": 2, "told": false, "first_time": false, "attitude": "neutral"})
    );

    let mine = app.get("/v1/me/rumors", &ana_token).await.json();
    assert_eq!(items(&mine).len(), 1);
    assert_eq!(items(&mine)[0]["text"], text.as_str());
    let boot = app.get("/v1/bootstrap?region_id=1", &ana_token).await;
    assert_eq!(boot.status, 200);
    let boot = boot.json();
    assert_eq!(
        boot["rumors"],
        json!([{"rumor_id": 1, "text": text, "from_npc_id": 4}]),
        "{boot}"
    );
    assert!(boot.get("missing").is_none(), "{boot}");
    let elsewhere = app.get("/v1/bootstrap?region_id=2", &ana_token).await.json();
    assert!(elsewhere.get("rumors").is_none(), "{elsewhere}");
    app.finish().await;
}

/// A talk's view of who knows what is kept between talks: a new rumor, a
/// spread and the player's own hearing each show in the very next talk.
async fn what_npcs_and_players_learn_shows_in_their_next_talk(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("ana").await;
    let talk = |npc: i64| {
        let token = token.clone();
        let app = &app;
        async move {
            let response = app
                .post_json(&format!("/v1/npcs/{npc}/talk"), Some(&token), &json!({}))
                .await;
            assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
            response.json()
        }
    };
    let first = talk(4).await;
    assert_eq!(
        (first["rumor"]["rumor_id"].as_i64(), first["first_time"].as_bool()),
        (Some(1), Some(true))
    );
    let again = talk(4).await;
    assert_eq!(
        (again["rumor"]["rumor_id"].as_i64(), again["first_time"].as_bool()),
        (Some(1), Some(false))
    );

    // Tobin starts a new rumor: his next talk tells it, then repeats it.
    let created = app
        .post_json(
            "/v1/rumors",
            Some(ADMIN_TOKEN),
            &json!({"text": "The miller hides silver under the wheel", "origin_npc_id": 4, "region_id": 1, "truth": 0.5}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let id = created.json()["id"].as_i64().unwrap();
    let news = talk(4).await;
    assert_eq!(
        (news["rumor"]["rumor_id"].as_i64(), news["first_time"].as_bool()),
        (Some(id), Some(true)),
        "{news}"
    );
    let repeat = talk(4).await;
    assert_eq!(
        (repeat["rumor"]["rumor_id"].as_i64(), repeat["first_time"].as_bool()),
        (Some(id), Some(false)),
        "{repeat}"
    );
    assert_eq!(repeat["rumor"]["id"], news["rumor"]["id"]);

    // What Ana heard, newest first, page by page (listed from what the
    // rumor service keeps of her, which each telling added to).
    let page = app.get("/v1/me/rumors?limit=1", &token).await.json();
    assert_eq!(page["items"][0]["id"], news["rumor"]["id"], "{page}");
    assert_eq!(page["items"][0]["text"], news["rumor"]["text"], "{page}");
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = app
        .get(&format!("/v1/me/rumors?limit=1&cursor={cursor}"), &token)
        .await
        .json();
    assert_eq!(rest["items"][0]["id"], first["rumor"]["id"], "{rest}");
    assert!(rest.get("next_cursor").is_none(), "{rest}");
    let elsewhere = app.get("/v1/me/rumors?region_id=2", &token).await.json();
    assert_eq!(elsewhere["items"], json!([]), "{elsewhere}");
    let here = app.get("/v1/me/rumors?region_id=1", &token).await.json();
    assert_eq!(here["items"].as_array().map(Vec::len), Some(2), "{here}");

    let silent = talk(2).await;
    assert_eq!(silent["told"], false, "{silent}");

    // Brother Aldo, who knew nothing, learns it from Tobin: he now has
    // something to say (what Ana heard of it already).
    let spread = app
        .post_json(
            &format!("/v1/rumors/{id}/spread"),
            Some(ADMIN_TOKEN),
            &json!({"from_npc_id": 4, "to_npc_id": 2}),
        )
        .await;
    assert_eq!(spread.status, 201, "{}", String::from_utf8_lossy(&spread.body));
    let told = talk(2).await;
    assert_eq!(told["told"], true, "{told}");
    assert_eq!(
        (told["rumor"]["rumor_id"].as_i64(), told["first_time"].as_bool()),
        (Some(id), Some(false)),
        "{told}"
    );
    app.finish().await;
}

async fn ticks_spread_rumors_to_neighbours_within_their_cap(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("watcher").await;
    let mut total = 0;
    for seed in 1..=6 {
        let tick = app
            .post_json(
                "/v1/rumors:tick",
                Some(ADMIN_TOKEN),
                &json!({"region_id": 1, "max_tellings": 2, "seed": seed}),
            )
            .await;
        assert_eq!(tick.status, 200, "{}", String::from_utf8_lossy(&tick.body));
        let tick = tick.json();
        assert_eq!(tick["region_id"], 1);
        assert_eq!(tick["npcs"], 8, "Millbrook Vale's demo NPCs");
        let tellings = tick["tellings"].as_u64().unwrap();
        assert!(tellings <= 2, "{tick}");
        total += tellings;
    }
    assert!(total >= 2, "six ticks with talkative NPCs spread something");
    let rumor = app.get("/v1/rumors/1", &token).await.json();
    assert_eq!(rumor["variant_count"].as_u64().unwrap(), total + 1);
    // Every retelling went to an NPC of the region, from one who knew it.
    let mut knowers = 0;
    for npc in [1, 2, 3, 4, 5, 6, 25, 26] {
        let known = app.get(&format!("/v1/npcs/{npc}/rumors"), &token).await.json();
        for item in items(&known) {
            assert_eq!(item["rumor_id"], 1);
            if npc != 4 {
                assert!(item["teller_npc_id"].is_i64(), "{item}");
                assert!(item["distortion"].as_f64().unwrap() > 0.0);
            }
            knowers += 1;
        }
    }
    assert_eq!(knowers, total + 1);
    app.post_json("/v1/rumors:tick", Some(ADMIN_TOKEN), &json!({"region_id": 99}))
        .await
        .assert_error(400, "invalid_argument");
    app.finish().await;
}

async fn rumors_born_of_world_events_start_with_witnesses(backend: Backend) {
    let Some(app) = spawn_demo(backend).await else { return };
    let (_, token) = app.sign_in("chronicler").await;
    let events = app.get("/v1/world/events?region_id=3", &token).await.json();
    let event_id = items(&events)[0]["id"].as_i64().unwrap();
    let created = app
        .post_json(
            "/v1/rumors",
            Some(ADMIN_TOKEN),
            &json!({"text": "They say the storm sank 3 ships", "origin_event_id": event_id, "region_id": 3, "truth": 0.7}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    let rumor = created.json();
    assert_eq!(rumor["origin_event_id"], event_id);
    assert!(rumor.get("origin_npc_id").is_none());
    // The first three NPCs of Saltmarsh Harbour (ids 13, 14, 15) saw it.
    for npc in [13, 14, 15] {
        let known = app.get(&format!("/v1/npcs/{npc}/rumors"), &token).await.json();
        assert_eq!(items(&known)[0]["rumor_id"], rumor["id"], "npc {npc}");
    }
    let known = app.get("/v1/npcs/16/rumors?limit=100", &token).await.json();
    assert!(items(&known).iter().all(|k| k["rumor_id"] != rumor["id"]));
    app.finish().await;
}

async fn without_the_rumor_service_rumors_are_503_and_missing_from_the_bootstrap(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            seed_demo: true,
            rumor_down: true,
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("lonely").await;
    let response = app.get("/v1/rumors/1", &token).await;
    response.assert_error(503, "unavailable");
    assert_eq!(response.header("retry-after"), Some("1"));
    let boot = app.get("/v1/bootstrap?region_id=1", &token).await;
    assert_eq!(boot.status, 200, "{}", String::from_utf8_lossy(&boot.body));
    assert_eq!(boot.json()["missing"], json!(["rumors"]));
    app.finish().await;
}
