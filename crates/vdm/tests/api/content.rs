//! World files through the gateway: `vdm content import` into an empty
//! system, again (nothing changes), with one field changed (one update),
//! `export` (the file again), `--dry-run` (nothing written), and the
//! commands as a person runs them.

use std::process::Command;

use serde_json::{Value, json};
use vdm::content::client::Gateway;
use vdm::content::format::World;
use vdm::content::plan::Action;
use vdm_kit::backend_tests;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, generous_rate_limits, spawn_app_with};

backend_tests!(
    a_world_file_is_imported_once_updated_by_field_and_exported_back,
    the_commands_validate_plan_and_import_through_the_gateway,
    the_admin_world_routes_upsert_and_refuse_what_is_wrong,
);

async fn spawn_empty(backend: Backend) -> Option<TestApp> {
    spawn_app_with(
        backend,
        Options {
            rate_limits: Some(generous_rate_limits()),
            ..Options::default()
        },
    )
    .await
}

fn gateway(app: &TestApp) -> Gateway {
    Gateway::new(&format!("http://{}", app.addr), Some(ADMIN_TOKEN)).unwrap()
}

fn demo() -> World {
    vdm::demo::world().unwrap().clone()
}

/// What an export can give back of a file: its content, without what
/// happened once (memories, events, rumors) and the notes for people.
fn content_of(world: &World) -> World {
    World {
        schema: None,
        about: None,
        memories: Vec::new(),
        events: Vec::new(),
        rumors: Vec::new(),
        ..world.clone()
    }
}

async fn a_world_file_is_imported_once_updated_by_field_and_exported_back(backend: Backend) {
    let Some(app) = spawn_empty(backend).await else { return };
    let gateway = gateway(&app);
    let world = demo();
    let once = world.memories.len() + world.events.len() + world.rumors.len();
    let entries = world.regions.len()
        + world.factions.len()
        + world.relations.len()
        + world.items.len()
        + world.npcs.len()
        + world.quests.len();

    // A dry run plans every create and writes nothing.
    let dry = vdm::content::import(&gateway, &world, "demo.json", true).await.unwrap();
    assert_eq!(dry.plan.changes().count(), entries, "{}", dry.plan);
    assert!(dry.plan.changes().all(|s| s.action == Action::Create));
    assert_eq!(dry.written, 0);
    let live = vdm::content::live(&gateway).await.unwrap();
    assert!(live.regions.is_empty() && live.npcs.is_empty() && live.quests.is_empty());

    // The import creates it all, the once-only entries included.
    let first = vdm::content::import(&gateway, &world, "demo.json", false)
        .await
        .unwrap();
    assert_eq!(first.written, entries + once, "{}", first.plan);
    assert_eq!(first.replayed, 0);
    let npcs = app.get("/v1/npcs?limit=100", ADMIN_TOKEN).await.json();
    assert_eq!(npcs["items"].as_array().unwrap().len(), world.npcs.len());
    let hilda = &npcs["items"][0];
    assert_eq!(hilda["name"], "Hilda the Miller");
    let events = app.get("/v1/world/events?limit=100", ADMIN_TOKEN).await.json();
    assert_eq!(events["items"].as_array().unwrap().len(), world.events.len());

    // Again: every entry unchanged, the once-only ones answered as replays.
    let second = vdm::content::import(&gateway, &world, "demo.json", false)
        .await
        .unwrap();
    assert_eq!(second.plan.changes().count(), 0, "{}", second.plan);
    assert_eq!((second.written, second.replayed), (0, once));
    let events = app.get("/v1/world/events?limit=100", ADMIN_TOKEN).await.json();
    assert_eq!(events["items"].as_array().unwrap().len(), world.events.len());

    // One field changed: one update, of that field.
    let mut changed = world.clone();
    changed.quests[2].reward.gold += 5;
    let third = vdm::content::import(&gateway, &changed, "demo.json", false)
        .await
        .unwrap();
    let steps: Vec<String> = third
        .plan
        .changes()
        .map(|s| format!("{} {} {:?}", s.kind, s.label, s.action))
        .collect();
    assert_eq!(steps, ["quest \"Herbs for the Healer\" Update([\"reward\"])"]);
    assert_eq!(third.written, 1);
    let quests = app.get("/v1/quests?limit=100", ADMIN_TOKEN).await.json();
    let herbs = quests["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["title"] == "Herbs for the Healer")
        .unwrap();
    assert_eq!(herbs["reward"]["gold"], json!(changed.quests[2].reward.gold));

    // The export is the file, as changed.
    let exported = vdm::content::export(&gateway).await.unwrap();
    assert_eq!(exported, content_of(&changed));
    // It is a valid world file itself.
    let text = serde_json::to_string_pretty(&exported).unwrap();
    assert_eq!(World::parse("export.json", &text).unwrap(), exported);

    // An NPC's traits, faction and region: one update of that NPC.
    let mut changed = changed.clone();
    changed.npcs[0].traits.honesty = 0.05;
    changed.npcs[0].faction = Some(1);
    changed.npcs[0].region = 2;
    let fourth = vdm::content::import(&gateway, &changed, "demo.json", false)
        .await
        .unwrap();
    let steps: Vec<String> = fourth
        .plan
        .changes()
        .map(|s| format!("{} {} {:?}", s.kind, s.label, s.action))
        .collect();
    assert_eq!(
        steps,
        ["npc \"Hilda the Miller\" Update([\"region\", \"faction\", \"traits\"])"]
    );
    let hilda = app.get("/v1/npcs/1", ADMIN_TOKEN).await.json();
    assert_eq!(
        (&hilda["region_id"], &hilda["faction_id"], &hilda["traits"]["honesty"]),
        (&json!(2), &json!(1), &json!(0.05))
    );
    assert_eq!(vdm::content::export(&gateway).await.unwrap(), content_of(&changed));

    // What the import cannot change is refused whole, naming the file.
    let mut refused = changed.clone();
    refused.quests[0].objectives[0].target_count += 1;
    refused.regions[0].name = "Renamed".into();
    let err = vdm::content::import(&gateway, &refused, "demo.json", false)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.starts_with("demo.json: quest \"Wolves at the Mill\" (id 1): its objectives differ"),
        "{err}"
    );
    let region = app.get("/v1/world/regions/1", ADMIN_TOKEN).await.json();
    assert_eq!(region["name"], "Millbrook Vale");
    app.finish().await;
}

async fn the_commands_validate_plan_and_import_through_the_gateway(backend: Backend) {
    let Some(app) = spawn_empty(backend).await else { return };
    let dir = std::env::temp_dir().join(format!("vdm-content-cli-{}-{}", std::process::id(), app.addr.port()));
    std::fs::create_dir_all(&dir).unwrap();
    let vdm = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_vdm"))
            .args(args)
            .env("VDM_URL", format!("http://{}", app.addr))
            .env("VDM_ADMIN_TOKEN", ADMIN_TOKEN)
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8(output.stdout).unwrap(),
            String::from_utf8(output.stderr).unwrap(),
        )
    };

    // A file with a broken reference: the problem names the file and the place.
    let mut bad: Value = serde_json::from_str(vdm::content::format::DEMO_WORLD_JSON).unwrap();
    bad["quests"][3]["giver"] = "Nobody".into();
    bad["npcs"][1]["traits"]["honesty"] = json!(1.5);
    let bad_path = dir.join("demo.json");
    std::fs::write(&bad_path, bad.to_string()).unwrap();
    let bad_name = bad_path.display().to_string();
    let (ok, _, stderr) = vdm(&["content", "validate", &bad_name]);
    assert!(!ok);
    assert_eq!(
        stderr,
        format!(
            "vdm: {bad_name}: /npcs/1/traits/honesty: must be from 0 to 1\n\
             {bad_name}: /quests/3/giver: npc \"Nobody\" is not defined in this file\n"
        )
    );
    // The import refuses it before calling anyone.
    let (ok, _, stderr) = vdm(&["content", "import", &bad_name]);
    assert!(!ok && stderr.contains("/quests/3/giver"), "{stderr}");

    // The repository's demo file is valid.
    let demo_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../content/demo-world.json");
    let (ok, stdout, stderr) = vdm(&["content", "validate", demo_path]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains(": valid (4 regions, 5 factions"), "{stdout}");

    // A dry run prints the plan and writes nothing.
    let (ok, stdout, stderr) = vdm(&["content", "import", demo_path, "--dry-run"]);
    assert!(ok, "{stderr}");
    assert!(stdout.contains("create region 1 \"Millbrook Vale\"\n"), "{stdout}");
    assert!(stdout.contains("create npc \"Hilda the Miller\"\n"), "{stdout}");
    assert!(stdout.ends_with("dry run: nothing written\n"), "{stdout}");
    let npcs = app.get("/v1/npcs", ADMIN_TOKEN).await.json();
    assert_eq!(npcs["items"], json!([]));

    // The import, then the export to a file.
    let (ok, stdout, stderr) = vdm(&["content", "import", demo_path]);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("npc: 32 to create, 0 to update, 0 unchanged\n"),
        "{stdout}"
    );
    let out = dir.join("export.json");
    let (ok, stdout, stderr) = vdm(&["content", "export", "--out", &out.display().to_string()]);
    assert!(ok && stdout.is_empty(), "{stderr}");
    let exported = World::parse("export.json", &std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(exported, content_of(&demo()));

    // Without the admin token the gateway says no, and the command says why.
    let output = Command::new(env!("CARGO_BIN_EXE_vdm"))
        .args(["content", "import", demo_path, "--url", &format!("http://{}", app.addr)])
        .env_remove("VDM_ADMIN_TOKEN")
        .output()
        .unwrap();
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(!output.status.success());
    assert!(stderr.contains("GET /v1/world/regions: 401"), "{stderr}");
    std::fs::remove_dir_all(&dir).unwrap();
    app.finish().await;
}

async fn the_admin_world_routes_upsert_and_refuse_what_is_wrong(backend: Backend) {
    let Some(app) = spawn_empty(backend).await else { return };
    let region = json!({"name": "Vale", "biome": "farmland", "cells": [[0, 0], [1, 0]]});
    let created = app
        .json_request(http::Method::PUT, "/v1/world/regions/7", Some(ADMIN_TOKEN), &region)
        .await;
    assert_eq!(created.status, 201, "{}", String::from_utf8_lossy(&created.body));
    assert_eq!(created.json()["cells"], json!([[0, 0], [1, 0]]));
    let again = app
        .json_request(http::Method::PUT, "/v1/world/regions/7", Some(ADMIN_TOKEN), &region)
        .await;
    assert_eq!(again.status, 200);
    assert_eq!(app.get("/v1/world/regions/7", ADMIN_TOKEN).await.json()["name"], "Vale");

    for id in [1, 2] {
        let faction = app
            .json_request(
                http::Method::PUT,
                &format!("/v1/world/factions/{id}"),
                Some(ADMIN_TOKEN),
                &json!({"name": format!("F{id}")}),
            )
            .await;
        assert_eq!(faction.status, 201);
    }
    let renamed = app
        .json_request(
            http::Method::PUT,
            "/v1/world/factions/2",
            Some(ADMIN_TOKEN),
            &json!({"name": "G"}),
        )
        .await;
    assert_eq!(renamed.status, 200);
    let relation = app
        .json_request(
            http::Method::PUT,
            "/v1/world/relations",
            Some(ADMIN_TOKEN),
            &json!({"a": 2, "b": 1, "score": -40}),
        )
        .await;
    assert_eq!(relation.status, 200, "{}", String::from_utf8_lossy(&relation.body));
    assert_eq!(relation.json(), json!({"a": 1, "b": 2, "score": -40}));
    let factions = app.get("/v1/world/factions", ADMIN_TOKEN).await.json();
    assert_eq!(factions["items"][1], json!({"id": 2, "name": "G"}));
    assert!(
        factions["relations"]
            .as_array()
            .unwrap()
            .contains(&json!({"a": 1, "b": 2, "score": -40}))
    );

    // Bad input is a 400 naming the problem; players may not write.
    app.json_request(
        http::Method::PUT,
        "/v1/world/relations",
        Some(ADMIN_TOKEN),
        &json!({"a": 1, "b": 9, "score": 10}),
    )
    .await
    .assert_error(404, "not_found");
    app.json_request(
        http::Method::PUT,
        "/v1/world/relations",
        Some(ADMIN_TOKEN),
        &json!({"a": 1, "b": 2, "score": 101}),
    )
    .await
    .assert_error(400, "invalid_argument");
    app.json_request(
        http::Method::PUT,
        "/v1/world/regions/8",
        Some(ADMIN_TOKEN),
        &json!({"name": "Other", "biome": "b", "cells": [[1, 0]]}),
    )
    .await
    .assert_error(409, "failed_precondition");
    app.json_request(
        http::Method::PUT,
        "/v1/world/factions/3",
        Some(ADMIN_TOKEN),
        &json!({"name": "F", "colour": "red"}),
    )
    .await
    .assert_error(400, "invalid_argument");
    let (_, token) = app.sign_in("mapmaker").await;
    app.json_request(
        http::Method::PUT,
        "/v1/world/factions/3",
        Some(&token),
        &json!({"name": "F"}),
    )
    .await
    .assert_error(403, "permission_denied");
    app.finish().await;
}
