//! Unity client telemetry through the gateway: uploads checked field by
//! field, stored, and summarized as percentiles.

use serde_json::{Value, json};

use crate::helpers::{ADMIN_TOKEN, Backend, Options, generous_rate_limits, spawn_app, spawn_app_with};
use vdm_kit::backend_tests;

backend_tests!(
    a_good_batch_is_accepted,
    bad_batches_get_a_400_naming_the_problem,
    stats_percentiles_come_from_the_stored_samples,
    only_players_upload,
    uploads_arriving_together_are_all_stored,
);

fn sample(frame_time_ms: f64) -> Value {
    json!({
        "frame_time_ms": frame_time_ms,
        "gc_collections": 1,
        "gc_pause_ms": 0.8,
        "memory_mb": 812,
        "input_latency_ms": 22.0,
        "event_dispatch_ms": 0.3,
        "gc_alloc_bytes": 2048,
        "systems": {"animation": 2.1, "quest": 0.4}
    })
}

fn batch(samples: Vec<Value>) -> Value {
    json!({"client_version": "1.4.2", "device_class": "desktop", "samples": samples})
}

async fn a_good_batch_is_accepted(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, token) = app.sign_in("telemetry-good").await;
    let response = app
        .post_json(
            "/v1/telemetry/client",
            Some(&token),
            &batch(vec![sample(14.2), sample(16.0)]),
        )
        .await;
    assert_eq!(
        response.status,
        202,
        "body: {}",
        String::from_utf8_lossy(&response.body)
    );
    assert_eq!(response.json()["accepted"], 2);

    // Only the frame time is required. A client version of this test's own
    // (per back end: both share the process's metrics) names its series.
    let version = format!("seconds-{backend:?}");
    let minimal = json!({"client_version": version, "device_class": "vr",
        "samples": [{"frame_time_ms": 33.0}, {"frame_time_ms": 20.0, "gc_alloc_bytes": 0},
            {"frame_time_ms": 20.0, "gc_alloc_bytes": 3000}]});
    let response = app.post_json("/v1/telemetry/client", Some(&token), &minimal).await;
    assert_eq!(response.status, 202);

    // The histograms are in /metrics, in seconds: 33 ms is above the 25 ms
    // bucket and within the 33.3 ms one.
    let metrics = app.get("/metrics", &token).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains("vdm_client_system_update_seconds_bucket{system=\"animation\""),
        "{text}"
    );
    assert!(!text.contains("vdm_client_frame_time_ms"), "{text}");
    let series_of = |family: &str, suffix: &str, le: Option<&str>| -> f64 {
        let labels = format!("client_version=\"{version}\",device_class=\"vr\"");
        let line = text
            .lines()
            .find(|line| {
                line.starts_with(&format!("{family}{suffix}{{"))
                    && line.contains(&labels)
                    && le.is_none_or(|le| line.contains(&format!("le=\"{le}\"")))
            })
            .unwrap_or_else(|| panic!("no {suffix} {le:?} series for {labels}: {text}"));
        line.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let series = |suffix: &str, le: Option<&str>| series_of("vdm_client_frame_time_seconds", suffix, le);
    assert_eq!(series("_bucket", Some("0.02")), 2.0);
    assert_eq!(series("_bucket", Some("0.025")), 2.0);
    assert_eq!(series("_bucket", Some("0.0333")), 3.0);
    assert!((series("_sum", None) - 0.073).abs() < 1e-9);
    // Allocations are bytes, in byte-sized buckets: one frame allocated
    // nothing, one 3000 bytes (within 4 KiB).
    let alloc = |suffix: &str, le: Option<&str>| series_of("vdm_client_gc_alloc_bytes", suffix, le);
    assert_eq!(alloc("_bucket", Some("0")), 1.0);
    assert_eq!(alloc("_bucket", Some("1024")), 1.0);
    assert_eq!(alloc("_bucket", Some("4096")), 2.0);
    assert_eq!(alloc("_count", None), 2.0);
    assert_eq!(alloc("_sum", None), 3000.0);
    assert!(
        text.contains("# HELP vdm_client_gc_alloc_bytes Bytes a client frame allocated"),
        "{text}"
    );
    app.finish().await;
}

async fn bad_batches_get_a_400_naming_the_problem(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, token) = app.sign_in("telemetry-bad").await;
    let with_sample = |field: &str, value: Value| {
        let mut s = sample(10.0);
        s[field] = value;
        batch(vec![sample(10.0), s])
    };
    let too_many_systems: serde_json::Map<String, Value> =
        (0..33).map(|i| (format!("system_{i}"), json!(1.0))).collect();
    let cases: Vec<(Value, &str)> = vec![
        (batch(vec![json!({"frame_time_ms": 1.0}); 501]), "at most 500"),
        (batch(vec![]), "at least one sample"),
        (with_sample("frame_time_ms", json!(-1.0)), "samples[1].frame_time_ms"),
        (with_sample("frame_time_ms", json!(1e9)), "samples[1].frame_time_ms"),
        (with_sample("gc_collections", json!(1.5)), "samples[1].gc_collections"),
        (with_sample("memory_mb", json!(-3)), "samples[1].memory_mb"),
        (with_sample("gc_alloc_bytes", json!(-1)), "samples[1].gc_alloc_bytes"),
        (
            with_sample("gc_alloc_bytes", json!(1024.5)),
            "samples[1].gc_alloc_bytes must be a whole number",
        ),
        (
            with_sample("gc_alloc_bytes", json!(2_147_483_648_i64)),
            "samples[1].gc_alloc_bytes must be a finite number between 0 and 1073741824",
        ),
        (with_sample("gc_alloc_bytes", json!("4k")), "invalid JSON body"),
        (
            with_sample("input_latency_ms", json!(1e7)),
            "samples[1].input_latency_ms",
        ),
        (with_sample("systems", json!({"Anim!": 1.0})), "system name"),
        (
            with_sample("systems", json!({"animation": -2.0})),
            "samples[1].systems.animation",
        ),
        (
            with_sample("systems", json!({"a_very_long_system_name_beyond_32_chars": 1.0})),
            "system name",
        ),
        (with_sample("systems", Value::Object(too_many_systems)), "at most 32"),
        (with_sample("frame_time_ms", json!("fast")), "invalid JSON body"),
        (with_sample("fps", json!(60)), "unknown field `fps`"),
        (
            json!({"client_version": "1.4.2 beta", "device_class": "desktop", "samples": [sample(1.0)]}),
            "client_version",
        ),
        (
            json!({"client_version": "x".repeat(33), "device_class": "desktop", "samples": [sample(1.0)]}),
            "client_version",
        ),
        (
            json!({"client_version": "1.4.2", "device_class": "Desk Top", "samples": [sample(1.0)]}),
            "device_class",
        ),
        (
            json!({"client_version": "1.4.2", "samples": [sample(1.0)]}),
            "missing field `device_class`",
        ),
    ];
    for (body, expected) in cases {
        let response = app.post_json("/v1/telemetry/client", Some(&token), &body).await;
        let message = response.assert_error(400, "invalid_argument");
        assert!(message.contains(expected), "expected {expected:?} in {message:?}");
    }
    // Nothing of the refused batches was stored.
    let stats = app.get("/v1/stats/client", &token).await;
    assert_eq!(stats.status, 200);
    assert_eq!(stats.json()["count"], 0);
    app.finish().await;
}

async fn stats_percentiles_come_from_the_stored_samples(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, token) = app.sign_in("telemetry-stats").await;
    // Frame times 1..=100 ms in two batches; animation takes a tenth of each.
    for chunk in [1..=50, 51..=100] {
        let samples = chunk
            .map(|i| json!({"frame_time_ms": f64::from(i), "systems": {"animation": f64::from(i) / 10.0}}))
            .collect();
        let response = app
            .post_json("/v1/telemetry/client", Some(&token), &batch(samples))
            .await;
        assert_eq!(response.status, 202);
    }
    // Another version, kept apart by the filter.
    let other = json!({"client_version": "2.0.0", "device_class": "console",
        "samples": [{"frame_time_ms": 500.0, "systems": {"animation": 50.0}}]});
    assert_eq!(
        app.post_json("/v1/telemetry/client", Some(&token), &other).await.status,
        202
    );

    let frame = app.get("/v1/stats/client?client_version=1.4.2", &token).await.json();
    assert_eq!(frame["metric"], "frame_time_ms");
    assert_eq!(frame["count"], 100);
    assert_eq!(
        (frame["p50"].as_f64(), frame["p95"].as_f64(), frame["p99"].as_f64()),
        (Some(50.0), Some(95.0), Some(99.0))
    );

    let all = app.get("/v1/stats/client", &token).await.json();
    assert_eq!(all["count"], 101);
    assert_eq!(all["p99"], 100.0);

    let system = app
        .get("/v1/stats/client?system=animation&client_version=1.4.2", &token)
        .await
        .json();
    assert_eq!(system["metric"], "system_update_ms");
    assert_eq!(system["system"], "animation");
    assert_eq!(system["count"], 100);
    assert_eq!((system["p50"].as_f64(), system["p95"].as_f64()), (Some(5.0), Some(9.5)));

    let unknown = app.get("/v1/stats/client?system=physics", &token).await.json();
    assert_eq!(unknown["count"], 0);
    assert_eq!(unknown["p50"], Value::Null);

    // Allocations per frame: 0, 512, ..., 49 * 512 bytes on 50 of the
    // version's frames; frames that did not measure them do not count.
    let samples = (0..50)
        .map(|i| json!({"frame_time_ms": 16.0, "gc_alloc_bytes": i * 512}))
        .collect();
    let response = app
        .post_json("/v1/telemetry/client", Some(&token), &batch(samples))
        .await;
    assert_eq!(response.status, 202);
    let alloc = app
        .get("/v1/stats/client?metric=gc_alloc_bytes&client_version=1.4.2", &token)
        .await
        .json();
    assert_eq!(alloc["metric"], "gc_alloc_bytes");
    assert_eq!(alloc["count"], 50);
    // Nearest rank of 50: p50 is the 25th (24 * 512), p95 the 48th, p99 the 50th.
    assert_eq!(
        (alloc["p50"].as_f64(), alloc["p95"].as_f64(), alloc["p99"].as_f64()),
        (Some(24.0 * 512.0), Some(47.0 * 512.0), Some(49.0 * 512.0))
    );
    // Every sample field has its percentiles: the 2.0.0 frame measured no pause.
    let pause = app.get("/v1/stats/client?metric=gc_pause_ms", &token).await.json();
    assert_eq!(
        (pause["metric"].as_str(), pause["count"].as_u64()),
        (Some("gc_pause_ms"), Some(0))
    );
    let frames = app.get("/v1/stats/client?metric=frame_time_ms", &token).await.json();
    assert_eq!(frames["count"], 151);

    for (query, expected) in [
        ("metric=fps", "metric \"fps\" is not one of"),
        (
            "metric=gc_alloc_bytes&system=animation",
            "system is a filter of system_update_ms",
        ),
        ("metric=system_update_ms", "needs a system"),
    ] {
        let bad = app.get(&format!("/v1/stats/client?{query}"), &token).await;
        let message = bad.assert_error(400, "invalid_argument");
        assert!(message.contains(expected), "{query}: {message}");
    }
    let bad = app.get("/v1/stats/client?system=Bad%20Name", &token).await;
    bad.assert_error(400, "invalid_argument");
    let bad = app.get("/v1/stats/client?frames=1", &token).await;
    bad.assert_error(400, "invalid_argument");
    app.finish().await;
}

async fn only_players_upload(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let body = batch(vec![sample(10.0)]);
    app.post_json("/v1/telemetry/client", None, &body)
        .await
        .assert_error(401, "unauthenticated");
    app.post_json("/v1/telemetry/client", Some(ADMIN_TOKEN), &body)
        .await
        .assert_error(403, "permission_denied");
    app.post_json("/v1/telemetry/client", Some("not-a-token"), &body)
        .await
        .assert_error(401, "unauthenticated");
    let response = app
        .send(http::Method::GET, "/v1/stats/client", &[], bytes::Bytes::new())
        .await;
    response.assert_error(401, "unauthenticated");
    app.finish().await;
}

/// Uploads sent at once may share one insert: each is acknowledged, and
/// every sample of every one is stored, with its system times.
async fn uploads_arriving_together_are_all_stored(backend: Backend) {
    let options = Options {
        rate_limits: Some(generous_rate_limits()),
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    const PLAYERS: usize = 12;
    let mut tokens = Vec::new();
    for i in 0..PLAYERS {
        tokens.push(app.sign_in(&format!("telemetry-together-{i}")).await.1);
    }
    let uploads = tokens.iter().enumerate().map(|(i, token)| {
        let samples: Vec<Value> = (1..=3)
            .map(|k| json!({"frame_time_ms": (i * 3 + k) as f64, "systems": {"physics": 1.5}}))
            .collect();
        let body = json!({"client_version": "9.9.9", "device_class": "mobile", "samples": samples});
        let app = &app;
        async move { app.post_json("/v1/telemetry/client", Some(token), &body).await }
    });
    for response in futures_util::future::join_all(uploads).await {
        assert_eq!(response.status, 202, "{}", String::from_utf8_lossy(&response.body));
        assert_eq!(response.json()["accepted"], 3);
    }
    let token = &tokens[0];
    let frames = app.get("/v1/stats/client?client_version=9.9.9", token).await.json();
    assert_eq!(frames["count"], PLAYERS * 3, "{backend:?}: {frames}");
    assert_eq!(
        frames["p99"].as_f64(),
        Some((PLAYERS * 3) as f64),
        "{backend:?}: {frames}"
    );
    let physics = app
        .get("/v1/stats/client?system=physics&client_version=9.9.9", token)
        .await
        .json();
    assert_eq!(physics["count"], PLAYERS * 3, "{backend:?}: {physics}");
    app.finish().await;
}
