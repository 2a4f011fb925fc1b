//! Backend stats: the metrics service scrapes every service's `/metrics`
//! at an interval (short here), serves the newest snapshots and the stored
//! history through the gateway, appends a CSV file and deletes old samples.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::helpers::{
    ADMIN_TOKEN, Backend, Options, TestApp, closed_port_url, spawn_app_with, spawn_gateway_without_services,
};
use vdm_kit::backend_tests;
use vdm_metrics::domain::targets::Target;

backend_tests!(
    stats_and_history_come_from_scrapes,
    history_queries_are_checked_and_admin_only,
    retention_deletes_old_samples,
    in_flight_gauges_are_exported,
    a_target_that_is_down_is_marked_down,
);

const SERVICES: [&str; 5] = ["gateway", "world", "npc", "quest", "metrics"];

fn fast(options: Options) -> Options {
    Options {
        stats_interval: Some(Duration::from_millis(200)),
        ..options
    }
}

/// Polls the history until `done` holds for it (10 s at most).
async fn wait_for_history(app: &TestApp, query: &str, done: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.get(&format!("/v1/stats/history{query}"), ADMIN_TOKEN).await;
        assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
        let samples = response.json()["samples"].as_array().cloned().unwrap_or_default();
        if done(&samples) {
            return samples;
        }
        assert!(Instant::now() < deadline, "history never got there: {samples:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stats_and_history_come_from_scrapes(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        fast(Options {
            stats_csv: true,
            ..Options::default()
        }),
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("stats-reader").await;
    // Traffic through the gateway and into the quest service: the
    // player's own quest log, which the edge cache never answers (a list
    // of public quests may be served from it after the first read).
    for _ in 0..5 {
        assert_eq!(app.get("/v1/me/quests", &token).await.status, 200);
    }

    // Wait for a gateway sample that saw that traffic in its window.
    let samples = wait_for_history(&app, "?service=gateway", |s| {
        s.iter().any(|s| s["throughput_rps"].as_f64().is_some_and(|t| t > 0.0))
    })
    .await;
    assert!(samples.iter().all(|s| s["service"] == "gateway"));
    let counts: Vec<u64> = samples.iter().filter_map(|s| s["request_count"].as_u64()).collect();
    assert!(counts.windows(2).all(|w| w[0] <= w[1]), "counts only grow: {counts:?}");
    assert!(*counts.last().unwrap() >= 6, "sign-in and 5 reads: {counts:?}");
    assert!(
        samples
            .windows(2)
            .all(|w| w[0]["scraped_at_ms"].as_i64() <= w[1]["scraped_at_ms"].as_i64())
    );

    // The newest snapshot of every service of the process.
    let stats = app.get("/v1/stats", ADMIN_TOKEN).await;
    assert_eq!(stats.status, 200);
    let stats = stats.json();
    assert_eq!(stats["interval_ms"], 200);
    let services = stats["services"].as_array().unwrap();
    let names: Vec<&str> = services.iter().map(|s| s["service"].as_str().unwrap()).collect();
    for name in SERVICES {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    for service in services {
        assert_eq!(service["up"], true, "{service}");
        assert!(service["memory_mb"].as_f64().unwrap() > 1.0, "{service}");
        assert!(service["scraped_at"].as_str().unwrap().ends_with('Z'));
    }
    // The quest service's RPCs are counted as its own, not the gateway's.
    let quest = services.iter().find(|s| s["service"] == "quest").unwrap();
    assert!(quest["request_count"].as_u64().unwrap() >= 5, "{quest}");

    // More traffic moves the counter in a later sample.
    let before = app.get("/v1/stats", ADMIN_TOKEN).await.json()["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["service"] == "gateway")
        .unwrap()["request_count"]
        .as_u64()
        .unwrap();
    for _ in 0..10 {
        app.get("/v1/quests", &token).await;
    }
    wait_for_history(&app, "?service=gateway", |s| {
        s.last()
            .and_then(|s| s["request_count"].as_u64())
            .is_some_and(|c| c >= before + 10)
    })
    .await;

    // Every sample is also a CSV line, under one header: the history
    // log's columns first, then the service and its latency.
    let csv = std::fs::read_to_string(app.stats_csv.as_ref().unwrap()).unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("timestamp,memory_mb,cpu_percent,request_count,error_count,throughput_rps,service,p50_ms,p99_ms")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == 9), "{csv}");
    for name in SERVICES {
        assert!(rows.iter().any(|r| r[6] == name), "{name} in the csv");
    }
    assert_eq!(csv.matches("timestamp,").count(), 1);
    app.finish().await;
}

async fn history_queries_are_checked_and_admin_only(backend: Backend) {
    let Some(app) = spawn_app_with(backend, fast(Options::default())).await else {
        return;
    };
    let all = wait_for_history(&app, "", |s| s.len() >= 10).await;
    let first = all[0]["scraped_at_ms"].as_i64().unwrap();
    let last = all.last().unwrap()["scraped_at_ms"].as_i64().unwrap();
    assert!(first < last, "two rounds at least");

    // A range in Unix ms or RFC 3339, both ends inclusive.
    let only_first = app
        .get(&format!("/v1/stats/history?to={first}"), ADMIN_TOKEN)
        .await
        .json();
    let only_first = only_first["samples"].as_array().unwrap();
    assert!(!only_first.is_empty());
    assert!(only_first.iter().all(|s| s["scraped_at_ms"] == first));
    let from_last = all.last().unwrap()["scraped_at"].as_str().unwrap();
    let later = app
        .get(
            &format!("/v1/stats/history?service=quest&from={from_last}"),
            ADMIN_TOKEN,
        )
        .await
        .json();
    let later = later["samples"].as_array().unwrap();
    assert!(
        later
            .iter()
            .all(|s| s["service"] == "quest" && s["scraped_at_ms"].as_i64() >= Some(last))
    );
    let none = app.get("/v1/stats/history?service=nobody", ADMIN_TOKEN).await.json();
    assert_eq!(none["samples"].as_array().unwrap().len(), 0);

    for (query, field) in [
        ("from=yesterday", "from"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("from=20&to=10", "from"),
        ("service=Not%20A%20Name", "service"),
        ("since=10", "since"),
    ] {
        let message = app
            .get(&format!("/v1/stats/history?{query}"), ADMIN_TOKEN)
            .await
            .assert_error(400, "invalid_argument");
        assert!(message.contains(field), "{query}: {message}");
    }

    let (_, token) = app.sign_in("stats-player").await;
    for path in ["/v1/stats", "/v1/stats/history"] {
        app.get(path, &token).await.assert_error(403, "permission_denied");
        app.send(http::Method::GET, path, &[], bytes::Bytes::new())
            .await
            .assert_error(401, "unauthenticated");
    }
    // MessagePack when asked.
    let packed = app
        .send(
            http::Method::GET,
            "/v1/stats",
            &[
                ("authorization", &format!("Bearer {ADMIN_TOKEN}")),
                ("accept", "application/msgpack"),
            ],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(packed.header("content-type"), Some("application/msgpack"));
    let decoded: Value = rmp_serde::from_slice(&packed.body).unwrap();
    assert_eq!(decoded["interval_ms"], 200);
    app.finish().await;
}

async fn retention_deletes_old_samples(backend: Backend) {
    let retention = Duration::from_secs(1);
    let Some(app) = spawn_app_with(
        backend,
        fast(Options {
            stats_retention: Some(retention),
            stats_csv: true,
            ..Options::default()
        }),
    )
    .await
    else {
        return;
    };
    let first = wait_for_history(&app, "?service=gateway", |s| !s.is_empty()).await[0]["scraped_at_ms"]
        .as_i64()
        .unwrap();
    // Well past the retention: the first samples are gone, newer ones kept.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let samples = wait_for_history(&app, "?service=gateway", |s| !s.is_empty()).await;
    let oldest = samples[0]["scraped_at_ms"].as_i64().unwrap();
    let newest = samples.last().unwrap()["scraped_at_ms"].as_i64().unwrap();
    assert!(
        oldest > first,
        "the first sample ({first}) was deleted, oldest is {oldest}"
    );
    // Deleted each round: nothing older than the retention plus a round.
    assert!(newest - oldest <= 1000 + 1000, "{oldest}..{newest}");
    // The CSV file is compacted too (within a tenth of the retention).
    let csv = std::fs::read_to_string(app.stats_csv.as_ref().unwrap()).unwrap();
    let first_line = csv.lines().nth(1).unwrap();
    assert_eq!(csv.lines().next().unwrap().split(',').next(), Some("timestamp"));
    let first_csv_ms = chrono_ms(first_line.split(',').next().unwrap());
    assert!(first_csv_ms > first, "csv starts at {first_line}");
    app.finish().await;
}

async fn in_flight_gauges_are_exported(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            world_delay: Some(Duration::from_millis(1500)),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, token) = app.sign_in("stats-gauges").await;
    let app = std::sync::Arc::new(app);
    let slow = {
        let (app, token) = (app.clone(), token.clone());
        tokio::spawn(async move { app.get("/v1/world/regions", &token).await.status })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = String::from_utf8(app.get("/metrics", &token).await.body.to_vec()).unwrap();
    let value = |name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.trim().parse().ok()))
            .unwrap_or_else(|| panic!("{name} in {text}"))
    };
    // The metrics are process-wide (other tests run alongside): lower bounds.
    // In flight now: this scrape and the slow request, whose world RPC is
    // held back.
    assert!(value("vdm_http_requests_in_flight ") >= 2.0, "{text}");
    assert!(value("vdm_rpc_requests_in_flight ") >= 1.0, "{text}");
    assert_eq!(slow.await.unwrap(), 200);
    let Ok(app) = std::sync::Arc::try_unwrap(app) else {
        panic!("the slow request is done")
    };
    app.finish().await;
}

/// RFC 3339 (as the CSV writes it) to Unix ms, without a date library:
/// the test compares with scraped_at_ms, which the API reports.
fn chrono_ms(rfc3339: &str) -> i64 {
    let (date, time) = rfc3339.trim_end_matches('Z').split_once('T').unwrap();
    let d: Vec<i64> = date.split('-').map(|v| v.parse().unwrap()).collect();
    let (hms, ms) = time.split_once('.').unwrap();
    let t: Vec<i64> = hms.split(':').map(|v| v.parse().unwrap()).collect();
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if d[1] <= 2 {
        (d[0] - 1, d[1] + 9)
    } else {
        (d[0], d[1] - 3)
    };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + d[2] - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    ((days * 24 + t[0]) * 60 + t[1]) * 60_000 + t[2] * 1000 + ms.parse::<i64>().unwrap()
}

async fn a_target_that_is_down_is_marked_down(backend: Backend) {
    // Another gateway answers; nothing listens behind `ghost`.
    let other = spawn_gateway_without_services().await;
    let Some(app) = spawn_app_with(
        backend,
        fast(Options {
            stats_targets: vec![
                Target {
                    name: "gateway".into(),
                    url: other.url("/metrics"),
                },
                Target {
                    name: "ghost".into(),
                    url: format!("{}/metrics", closed_port_url()),
                },
            ],
            ..Options::default()
        }),
    )
    .await
    else {
        other.finish().await;
        return;
    };
    let samples = wait_for_history(&app, "", |s| s.len() >= 4).await;
    for sample in &samples {
        match sample["service"].as_str().unwrap() {
            "gateway" => {
                assert_eq!(sample["up"], true, "{sample}");
                assert!(sample["memory_mb"].as_f64().is_some());
            }
            "ghost" => {
                assert_eq!(sample["up"], false, "{sample}");
                assert!(sample["error"].as_str().unwrap().contains("request failed"), "{sample}");
                assert!(sample.get("memory_mb").is_none() && sample.get("request_count").is_none());
            }
            other => panic!("unexpected service {other}"),
        }
    }
    let stats = app.get("/v1/stats", ADMIN_TOKEN).await.json();
    let names: Vec<&str> = stats["services"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["service"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gateway", "ghost"]);
    let text = String::from_utf8(app.get("/metrics", ADMIN_TOKEN).await.body.to_vec()).unwrap();
    assert!(
        text.contains("vdm_metrics_scrape_failures_total{target=\"ghost\"}"),
        "{text}"
    );
    assert!(text.contains("vdm_metrics_target_up{target=\"ghost\"} 0"));
    assert!(text.contains("vdm_metrics_scrape_duration_seconds_bucket{target=\"gateway\""));
    app.finish().await;
    other.finish().await;
}
