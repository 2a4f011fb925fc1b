//! Performance budgets end to end: a budget flips to violated under an
//! injected slow path and back to ok once requests are fast again, with
//! `GET /v1/budgets` and the `vdm_budget_*` gauges agreeing; a throughput
//! floor is broken by a trickle of requests, kept by a burst, and left
//! unjudged on an idle service unless it asks to be judged then; and the
//! committed alert rules are the ones generated from the budgets file. Its
//! own test binary, because the metrics recorder is process-wide: latency
//! from other tests running in parallel would move the same histograms.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "api/helpers.rs"]
mod helpers;

use std::time::{Duration, Instant};

use serde_json::Value;

use helpers::{ADMIN_TOKEN, Backend, Options, TestApp, generous_rate_limits, spawn_app_with};
use vdm_metrics::domain::budgets::{DEFAULT_BUDGETS, alert_name, alert_rules, parse_budgets};

async fn budget(app: &TestApp, name: &str) -> Value {
    let response = app.get("/v1/budgets", ADMIN_TOKEN).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    response.json()["budgets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("budget {name}"))
}

fn gauge(text: &str, family: &str, budget: &str) -> String {
    let prefix = format!("{family}{{budget=\"{budget}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("{prefix} in /metrics"))
        .trim()
        .to_owned()
}

/// Sends `request` until the budget's state is `state` (15 s at most).
async fn until_state(app: &TestApp, name: &str, state: &str, request: impl AsyncFn()) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        request().await;
        let budget = budget(app, name).await;
        if budget["state"] == state {
            return budget;
        }
        assert!(Instant::now() < deadline, "{name} never became {state}: {budget}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn flips_under_a_slow_path_and_back(backend: Backend) {
    let budgets = parse_budgets(
        r#"{"budgets": [
            {"name": "gateway_p99", "description": "gateway p99", "service": "gateway", "metric": "p99_ms", "max": 100},
            {"name": "world_error_rate", "description": "world errors", "service": "world", "metric": "error_rate_percent", "max": 1}
        ]}"#,
    )
    .unwrap();
    let Some(app) = spawn_app_with(
        backend,
        Options {
            // Every world RPC takes 300 ms: the slow path.
            world_delay: Some(Duration::from_millis(300)),
            // Every read of the regions goes to the slow service, none
            // is answered from the gateway's edge cache.
            edge_cache: helpers::edge_cache_off(),
            stats_interval: Some(Duration::from_millis(250)),
            budgets: Some(budgets),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("budget-watcher").await;

    let before = budget(&app, "gateway_p99").await;
    assert_eq!(before["max"], 100.0);

    // Requests through the slow world service push the gateway's p99 up.
    let violated = until_state(&app, "gateway_p99", "violated", async || {
        assert_eq!(app.get("/v1/world/regions", &token).await.status, 200);
    })
    .await;
    assert!(violated["value"].as_f64().unwrap() > 100.0, "{violated}");
    let since = violated["since_ms"].as_i64().unwrap();
    let text = String::from_utf8(app.get("/metrics", &token).await.body.to_vec()).unwrap();
    assert_eq!(gauge(&text, "vdm_budget_violated", "gateway_p99"), "1");
    assert_eq!(gauge(&text, "vdm_budget_limit", "gateway_p99"), "100");
    assert!(gauge(&text, "vdm_budget_value", "gateway_p99").parse::<f64>().unwrap() > 100.0);

    // Only fast requests from now on: the next windows are under budget.
    let ok = until_state(&app, "gateway_p99", "ok", async || {
        for _ in 0..5 {
            assert_eq!(app.get("/v1/quests", &token).await.status, 200);
        }
    })
    .await;
    assert!(ok["value"].as_f64().unwrap() <= 100.0, "{ok}");
    assert!(ok["since_ms"].as_i64().unwrap() > since, "{ok}");
    let text = String::from_utf8(app.get("/metrics", &token).await.body.to_vec()).unwrap();
    assert_eq!(gauge(&text, "vdm_budget_violated", "gateway_p99"), "0");
    // Slow is not failing: the world's error budget held throughout.
    assert_ne!(budget(&app, "world_error_rate").await["state"], "violated");
    app.finish().await;
}

async fn a_floor_is_broken_by_a_trickle_and_kept_by_a_burst(backend: Backend) {
    let budgets = parse_budgets(
        r#"{"budgets": [
            {"name": "gateway_floor", "description": "gateway throughput", "service": "gateway", "metric": "throughput_rps", "min": 100},
            {"name": "rumor_floor", "description": "rumor throughput", "service": "rumor", "metric": "throughput_rps", "min": 1},
            {"name": "rumor_always", "description": "rumor throughput at every hour", "service": "rumor", "metric": "throughput_rps", "min": 1, "min_when_idle": true}
        ]}"#,
    )
    .unwrap();
    let Some(app) = spawn_app_with(
        backend,
        Options {
            stats_interval: Some(Duration::from_millis(250)),
            budgets: Some(budgets),
            // The burst below is one player reading well over 100 times a
            // second, past the production read quota; on a slow machine it
            // runs for more rounds before the floor is judged ok.
            rate_limits: Some(generous_rate_limits()),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("floor-watcher").await;

    // A trickle: one read and one look at the budgets every 100 ms or so,
    // far under 100 requests a second, but not idle.
    let violated = until_state(&app, "gateway_floor", "violated", async || {
        assert_eq!(app.get("/v1/quests", &token).await.status, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    })
    .await;
    let value = violated["value"].as_f64().unwrap();
    assert!(value > 0.0 && value < 100.0, "{violated}");
    assert_eq!(violated["min"], 100.0);
    assert!(violated.get("max").is_none(), "{violated}");
    let reason = violated["reason"].as_str().unwrap();
    assert!(reason.contains("below the min 100 req/s"), "{reason}");
    let since = violated["since_ms"].as_i64().unwrap();
    let text = String::from_utf8(app.get("/metrics", &token).await.body.to_vec()).unwrap();
    assert_eq!(gauge(&text, "vdm_budget_violated", "gateway_floor"), "1");
    assert_eq!(gauge(&text, "vdm_budget_floor", "gateway_floor"), "100");
    assert!(
        !text.contains("vdm_budget_limit{budget=\"gateway_floor\"}"),
        "a floor has no max"
    );

    // A burst: 16 reads at a time keep the gateway well above the floor.
    let ok = until_state(&app, "gateway_floor", "ok", async || {
        for _ in 0..4 {
            let reads = (0..16).map(|_| app.get("/v1/quests", &token));
            for response in futures_util::future::join_all(reads).await {
                assert_eq!(response.status, 200);
            }
        }
    })
    .await;
    assert!(ok["value"].as_f64().unwrap() >= 100.0, "{ok}");
    assert!(ok["since_ms"].as_i64().unwrap() > since, "{ok}");
    assert!(
        ok["reason"].as_str().unwrap().contains("at or above the min 100 req/s"),
        "{ok}"
    );
    let text = String::from_utf8(app.get("/metrics", &token).await.body.to_vec()).unwrap();
    assert_eq!(gauge(&text, "vdm_budget_violated", "gateway_floor"), "0");

    // Nobody calls the rumor service: its plain floor has nothing to judge,
    // the one judged at every hour is broken, both at 0 requests a second.
    let idle = until_state(&app, "rumor_floor", "no_data", async || {}).await;
    assert_eq!(idle["value"], 0.0, "{idle}");
    let reason = idle["reason"].as_str().unwrap();
    assert!(reason.contains("no request in the window"), "{reason}");
    let always = until_state(&app, "rumor_always", "violated", async || {}).await;
    assert_eq!(always["value"], 0.0, "{always}");
    assert_eq!(always["min_when_idle"], true);
    let text = String::from_utf8(app.get("/metrics", &token).await.body.to_vec()).unwrap();
    assert_eq!(gauge(&text, "vdm_budget_violated", "rumor_floor"), "0");
    assert_eq!(gauge(&text, "vdm_budget_violated", "rumor_always"), "1");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budgets_flip_through_the_real_service() {
    // One scenario and back end after the other: the recorder is
    // process-wide, so in parallel one's requests would be in the other's
    // histograms and counters.
    flips_under_a_slow_path_and_back(Backend::Embedded).await;
    flips_under_a_slow_path_and_back(Backend::External).await;
    a_floor_is_broken_by_a_trickle_and_kept_by_a_burst(Backend::Embedded).await;
    a_floor_is_broken_by_a_trickle_and_kept_by_a_burst(Backend::External).await;
}

#[test]
fn the_committed_alert_rules_are_generated_from_the_budgets_file() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let committed = std::fs::read_to_string(root.join("deploy/prometheus/alerts-budgets.yml")).unwrap();
    let budgets = parse_budgets(DEFAULT_BUDGETS).unwrap();
    assert_eq!(
        committed,
        alert_rules(&budgets),
        "deploy/prometheus/alerts-budgets.yml is stale: run `cargo run -p vdm -- budgets alert-rules --out deploy/prometheus/alerts-budgets.yml`"
    );
    // The file the binary compiled in is the repository's.
    assert_eq!(
        std::fs::read_to_string(root.join("deploy/budgets.json")).unwrap(),
        DEFAULT_BUDGETS
    );
    for budget in &budgets {
        assert!(committed.contains(&format!("- alert: {}\n", alert_name(budget))));
        assert!(committed.contains(&format!("budget: {}\n", budget.name)));
    }
    // Prometheus loads it next to the SRE alerts.
    let config = std::fs::read_to_string(root.join("deploy/prometheus/prometheus.yml")).unwrap();
    assert!(config.contains("- alerts-budgets.yml"), "prometheus.yml rule_files");
}
