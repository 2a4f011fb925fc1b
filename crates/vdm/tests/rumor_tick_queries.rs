//! A spreading tick reads and writes with a fixed number of statements,
//! whatever the size of the region and the number of retellings: counted
//! through `/metrics` (`vdm_db_query_duration_seconds_count{pool="rumor"}`).
//! Its own test binary, because the metrics recorder is process-wide and
//! other tests running in parallel would move the same counter.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
mod helpers;

use http::Method;
use serde_json::{Value, json};
use vdm_proto::npc::v1 as npc_pb;

use helpers::{ADMIN_TOKEN, Backend, Options, TestApp, spawn_app_with};

async fn rumor_statements(app: &TestApp) -> u64 {
    let text = app.send(Method::GET, "/metrics", &[], Vec::new()).await.body;
    let text = String::from_utf8_lossy(&text);
    text.lines()
        .filter(|line| line.starts_with("vdm_db_query_duration_seconds_count{") && line.contains("pool=\"rumor\""))
        .filter_map(|line| line.rsplit(' ').next())
        .map(|v| v.trim().parse::<u64>().unwrap())
        .sum()
}

async fn tick(app: &TestApp, seed: u64) -> (Value, u64) {
    let before = rumor_statements(app).await;
    let response = app
        .post_json(
            "/v1/rumors:tick",
            Some(ADMIN_TOKEN),
            &json!({"region_id": 1, "max_tellings": 1000, "seed": seed}),
        )
        .await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    (response.json(), rumor_statements(app).await - before)
}

async fn a_tick_runs_a_fixed_number_of_statements(backend: Backend) {
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
    // The demo's Millbrook Vale: 8 NPCs, one of whom knows one rumor.
    let (small, small_statements) = tick(&app, 1).await;
    assert_eq!(small["npcs"], 8);
    assert!(small_statements > 0, "the counter moves");

    // 150 talkative NPCs more on the same cells, 40 of them starting a rumor each.
    let mut npc = app.npc();
    let mut new_ids = Vec::new();
    for i in 0..150 {
        let created = npc
            .create_npc(npc_pb::CreateNpcRequest {
                npc: Some(npc_pb::NpcSpec {
                    name: format!("Villager {i}"),
                    region_id: 1,
                    position: Some(npc_pb::Hex { q: (i % 5) - 2, r: 0 }),
                    faction_id: None,
                    traits: Some(npc_pb::Traits {
                        gullibility: 0.5,
                        talkativeness: 1.0,
                        honesty: 0.5,
                    }),
                }),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        new_ids.push(created.npc.unwrap().id);
    }
    for (i, id) in new_ids.iter().take(40).enumerate() {
        let body =
            json!({"text": format!("Villager gossip number {i}"), "origin_npc_id": id, "region_id": 1, "truth": 0.5});
        let response = app.post_json("/v1/rumors", Some(ADMIN_TOKEN), &body).await;
        assert_eq!(response.status, 201, "{}", String::from_utf8_lossy(&response.body));
    }

    let (big, big_statements) = tick(&app, 2).await;
    assert_eq!(big["npcs"], 158);
    assert!(big["tellings"].as_u64().unwrap() >= 30, "{big}");
    assert!(
        big_statements <= small_statements.max(6),
        "a tick of {} tellings among {} NPCs ran {big_statements} statements; a tick of {} ran {small_statements}",
        big["tellings"],
        big["npcs"],
        small["tellings"]
    );
    // And the next tick, with twice the knowers, still the same.
    let (bigger, statements) = tick(&app, 3).await;
    assert!(bigger["tellings"].as_u64().unwrap() >= big["tellings"].as_u64().unwrap());
    assert!(statements <= small_statements.max(6), "{statements}");
    println!(
        "{backend:?}: statements per tick: {small_statements} ({} tellings, 8 npcs), {big_statements} ({} tellings, 158 npcs), {statements} ({} tellings)",
        small["tellings"], big["tellings"], bigger["tellings"]
    );
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tick_statements_are_bounded_on_both_back_ends() {
    a_tick_runs_a_fixed_number_of_statements(Backend::Embedded).await;
    a_tick_runs_a_fixed_number_of_statements(Backend::External).await;
}
