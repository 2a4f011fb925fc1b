//! Bad input, MessagePack, compression, and the uniform error body.

use http::Method;
use serde_json::{Value, json};

use crate::helpers::{
    ADMIN_TOKEN, Backend, Options, spawn_app, spawn_app_with, spawn_gateway_without_services, wolves,
};
use vdm_gateway::rate_limit::{Rate, RateLimits};
use vdm_kit::backend_tests;

backend_tests!(
    malformed_and_mistyped_json_are_400_naming_the_problem,
    unknown_ids_and_routes_are_404,
    oversize_bodies_are_413,
    messagepack_round_trip,
    garbage_messagepack_is_400,
    unsupported_content_type_is_415,
    responses_are_compressed_on_request,
    validation_names_the_field,
    health_ready_and_metrics_answer,
    rate_limits_answer_429_with_retry_after,
    request_ids_and_cors,
);

async fn admin_post(app: &crate::helpers::TestApp, content_type: &str, body: Vec<u8>) -> crate::helpers::TestResponse {
    let auth = format!("Bearer {ADMIN_TOKEN}");
    app.send(
        Method::POST,
        "/v1/quests",
        &[("content-type", content_type), ("authorization", &auth)],
        body,
    )
    .await
}

async fn malformed_and_mistyped_json_are_400_naming_the_problem(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let msg = admin_post(&app, "application/json", b"{\"title\": ".to_vec())
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("invalid JSON"), "{msg}");
    let mut wrong = wolves();
    wrong["level_requirement"] = json!("three");
    let msg = admin_post(&app, "application/json", serde_json::to_vec(&wrong).unwrap())
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("invalid type"), "{msg}");
    let mut negative = wolves();
    negative["level_requirement"] = json!(-1);
    admin_post(&app, "application/json", serde_json::to_vec(&negative).unwrap())
        .await
        .assert_error(400, "invalid_argument");
    let mut missing = wolves();
    missing.as_object_mut().unwrap().remove("title");
    let msg = admin_post(&app, "application/json", serde_json::to_vec(&missing).unwrap())
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("title"), "{msg}");
    let mut unknown = wolves();
    unknown["titel"] = json!("typo");
    let msg = admin_post(&app, "application/json", serde_json::to_vec(&unknown).unwrap())
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("titel"), "{msg}");
    let msg = admin_post(&app, "application/json", vec![0xff, 0xfe, b'{'])
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("JSON"), "{msg}");
    app.finish().await;
}

async fn unknown_ids_and_routes_are_404(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let (_, token) = app.sign_in("lost").await;
    app.get("/v1/quests/987654", &token)
        .await
        .assert_error(404, "not_found");
    app.get("/v1/nothing-here", &token).await.assert_error(404, "not_found");
    let msg = app
        .get("/v1/quests/abc", &token)
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("abc"), "{msg}");
    app.get("/v1/quests/0", &token)
        .await
        .assert_error(400, "invalid_argument");
    app.get("/v1/quests/99999999999999999999999", &token)
        .await
        .assert_error(400, "invalid_argument");
    let wrong_method = app
        .send(
            Method::PUT,
            "/v1/me/quests",
            &[("authorization", &format!("Bearer {token}"))],
            Vec::new(),
        )
        .await;
    assert_eq!(wrong_method.status, 405);
    assert_eq!(wrong_method.json()["error"]["code"], "method_not_allowed");
    app.finish().await;
}

async fn oversize_bodies_are_413(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let mut huge = wolves();
    huge["description"] = json!("x".repeat(100 * 1024));
    let msg = admin_post(&app, "application/json", serde_json::to_vec(&huge).unwrap())
        .await
        .assert_error(413, "payload_too_large");
    assert!(msg.contains("larger"), "{msg}");
    app.finish().await;
}

async fn messagepack_round_trip(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let body = rmp_serde::to_vec_named(&wolves()).unwrap();
    let created = app
        .send(
            Method::POST,
            "/v1/quests",
            &[
                ("content-type", "application/msgpack"),
                ("accept", "application/msgpack"),
                ("authorization", &auth),
            ],
            body,
        )
        .await;
    assert_eq!(created.status, 201);
    assert_eq!(created.header("content-type"), Some("application/msgpack"));
    let decoded: Value = rmp_serde::from_slice(&created.body).unwrap();
    assert_eq!(decoded["title"], "Wolves at the Mill");
    assert_eq!(decoded["objectives"][1]["target_count"], 1);

    let (_, token) = app.sign_in("packer").await;
    let id = decoded["id"].as_i64().unwrap();
    let as_json = app.get(&format!("/v1/quests/{id}"), &token).await.json();
    assert_eq!(as_json, decoded, "MessagePack and JSON carry the same object");

    // Errors follow the negotiated format too.
    let bearer = format!("Bearer {token}");
    let missing = app
        .send(
            Method::GET,
            "/v1/quests/999999",
            &[("accept", "application/msgpack"), ("authorization", &bearer)],
            Vec::new(),
        )
        .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("content-type"), Some("application/msgpack"));
    let error: Value = rmp_serde::from_slice(&missing.body).unwrap();
    assert_eq!(error["error"]["code"], "not_found");
    app.finish().await;
}

async fn garbage_messagepack_is_400(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let msg = admin_post(&app, "application/msgpack", vec![0xc1, 0x00, 0xff, 0x13])
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("MessagePack"), "{msg}");
    let full = rmp_serde::to_vec_named(&wolves()).unwrap();
    admin_post(&app, "application/msgpack", full[..full.len() / 2].to_vec())
        .await
        .assert_error(400, "invalid_argument");
    app.finish().await;
}

async fn unsupported_content_type_is_415(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let msg = admin_post(&app, "text/xml", b"<quest/>".to_vec())
        .await
        .assert_error(415, "unsupported_media_type");
    assert!(msg.contains("application/json"), "{msg}");
    app.finish().await;
}

async fn responses_are_compressed_on_request(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    for _ in 0..8 {
        app.create_quest(&wolves()).await;
    }
    let (_, token) = app.sign_in("squeezer").await;
    let bearer = format!("Bearer {token}");
    let plain = app
        .send(
            Method::GET,
            "/v1/quests?limit=8",
            &[("authorization", &bearer)],
            Vec::new(),
        )
        .await;
    assert_eq!(plain.status, 200);
    assert!(plain.header("content-encoding").is_none());
    for encoding in ["gzip", "br", "zstd"] {
        let packed = app
            .send(
                Method::GET,
                "/v1/quests?limit=8",
                &[("authorization", &bearer), ("accept-encoding", encoding)],
                Vec::new(),
            )
            .await;
        assert_eq!(packed.status, 200);
        assert_eq!(packed.header("content-encoding"), Some(encoding));
        assert!(
            packed.body.len() < plain.body.len() / 2,
            "{encoding}: {} vs {} bytes",
            packed.body.len(),
            plain.body.len()
        );
    }
    app.finish().await;
}

async fn validation_names_the_field(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let cases = [
        ("title", json!("   ")),
        ("giver_npc_id", json!(0)),
        ("objectives", json!([])),
        ("title", json!("t".repeat(201))),
    ];
    for (field, value) in cases {
        let mut body = wolves();
        body[field] = value;
        let msg = app
            .post_json("/v1/quests", Some(ADMIN_TOKEN), &body)
            .await
            .assert_error(400, "invalid_argument");
        assert!(msg.starts_with(field), "{msg} should name {field}");
    }
    let mut zero_target = wolves();
    zero_target["objectives"][0]["target_count"] = json!(0);
    let msg = app
        .post_json("/v1/quests", Some(ADMIN_TOKEN), &zero_target)
        .await
        .assert_error(400, "invalid_argument");
    assert!(msg.contains("objectives[0].target_count"), "{msg}");
    app.finish().await;
}

async fn health_ready_and_metrics_answer(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let health = app.send(Method::GET, "/health", &[], Vec::new()).await;
    assert_eq!(health.status, 200);
    let ready = app.send(Method::GET, "/ready", &[], Vec::new()).await;
    assert_eq!(ready.status, 200, "{}", String::from_utf8_lossy(&ready.body));
    let metrics = app.send(Method::GET, "/metrics", &[], Vec::new()).await;
    assert_eq!(metrics.status, 200);
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(text.contains("http_server_requests_total"), "{text}");
    assert!(text.contains("route=\"/health\""), "{text}");
    assert!(text.contains("process_resident_memory_bytes"));
    assert!(text.contains("vdm_db_pool_connections"));
    app.finish().await;
}

/// Every family `/metrics` shows has HELP text (from `vdm_kit::metrics::FAMILIES`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_family_has_help() {
    let app = crate::helpers::spawn_demo(Backend::Embedded).await.unwrap();
    let (_, token) = app.sign_in("help-reader").await;
    for path in [
        "/v1/bootstrap?region_id=1",
        "/v1/quests/1",
        "/v1/npcs/4",
        "/v1/world/regions",
    ] {
        assert_eq!(app.get(path, &token).await.status, 200, "{path}");
    }
    let text = String::from_utf8_lossy(&app.send(Method::GET, "/metrics", &[], Vec::new()).await.body).into_owned();
    let typed: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    assert!(typed.len() > 10, "{text}");
    let missing: Vec<&&str> = typed
        .iter()
        .filter(|name| !text.contains(&format!("# HELP {name} ")))
        .collect();
    assert!(missing.is_empty(), "families without HELP: {missing:?}");
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_is_down_gives_503_with_retry_after() {
    let app = spawn_gateway_without_services().await;
    let (_, token) = app.sign_in("stranded").await;
    let started = std::time::Instant::now();
    let response = app.get("/v1/quests/1", &token).await;
    let msg = response.assert_error(503, "unavailable");
    assert!(msg.contains("retry"), "{msg}");
    assert_eq!(response.header("retry-after"), Some("1"));
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "answers at once, no hang"
    );
    let ready = app.send(Method::GET, "/ready", &[], Vec::new()).await;
    assert_eq!(
        ready.status, 200,
        "one service down degrades, it does not take the gateway out"
    );
    assert_eq!(ready.json()["status"], "degraded");
    assert!(
        ready.json()["failing"]
            .to_string()
            .contains("vdm.quest.v1.QuestService"),
        "{}",
        ready.json()
    );
    // Routes that need no service keep working.
    assert_eq!(app.send(Method::GET, "/health", &[], Vec::new()).await.status, 200);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_that_stays_down_trips_the_circuit_and_fails_fast() {
    let app = spawn_gateway_without_services().await;
    let (_, token) = app.sign_in("patient").await;
    // The first calls try to connect and fail; then the breaker opens.
    for _ in 0..vdm_kit::breaker::TRIP_AFTER {
        app.get("/v1/quests/1", &token).await.assert_error(503, "unavailable");
    }
    let started = std::time::Instant::now();
    for _ in 0..20 {
        let response = app.get("/v1/quests/1", &token).await;
        response.assert_error(503, "unavailable");
        assert_eq!(response.header("retry-after"), Some("1"));
    }
    let each = started.elapsed() / 20;
    assert!(
        each < std::time::Duration::from_millis(50),
        "failed fast: {each:?} per request"
    );
    let target = format!("127.0.0.1:{}", app.down_port.unwrap());
    let metrics = app.send(Method::GET, "/metrics", &[], Vec::new()).await;
    let text = String::from_utf8_lossy(&metrics.body);
    let open = format!("vdm_grpc_client_circuit_open{{target=\"{target}\"}} 1");
    assert!(text.lines().any(|l| l == open), "{open} in /metrics");
    let rejected = format!("vdm_grpc_client_circuit_rejections_total{{target=\"{target}\"}} ");
    let count: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(&rejected))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    assert!(
        count >= 10,
        "most of the 20 calls failed fast without connecting: {count}"
    );
    app.finish().await;
}

async fn rate_limits_answer_429_with_retry_after(backend: Backend) {
    // Small buckets that barely refill, so the test does not depend on how
    // fast this machine sends requests.
    let slow = Rate {
        per_second: 0.2,
        burst: 5.0,
    };
    let limits = RateLimits {
        auth: Rate {
            per_second: 0.2,
            burst: 8.0,
        },
        write: slow,
        read: slow,
        in_flight: 16,
        trusted_proxies: Vec::new(),
    };
    let options = Options {
        rate_limits: Some(limits),
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    let (_, greedy) = app.sign_in("greedy").await;
    let (_, patient) = app.sign_in("patient").await;
    let mut limited = None;
    for _ in 0..20 {
        let response = app.get("/v1/me/quests", &greedy).await;
        if response.status == 429 {
            limited = Some(response);
            break;
        }
        assert_eq!(response.status, 200);
    }
    let limited = limited.expect("reads are limited per player");
    let msg = limited.assert_error(429, "resource_exhausted");
    assert!(msg.contains("read"), "{msg}");
    assert!(
        limited
            .header("retry-after")
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|s| s >= 1)
    );
    assert_eq!(
        app.get("/v1/me/quests", &patient).await.status,
        200,
        "other players keep their own budget"
    );

    // Sign-ins are limited per client address.
    let mut auth_limited = false;
    for i in 0..60 {
        let response = app
            .post_json("/v1/auth/device", None, &json!({"device_id": format!("flood-{i}")}))
            .await;
        if response.status == 429 {
            auth_limited = true;
            assert!(response.header("retry-after").is_some());
            break;
        }
    }
    assert!(auth_limited, "device sign-in floods are limited");
    app.finish().await;
}

async fn request_ids_and_cors(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let response = app.send(Method::GET, "/health", &[], Vec::new()).await;
    let generated = response
        .header("x-request-id")
        .expect("a request id is assigned")
        .to_owned();
    let again = app.send(Method::GET, "/health", &[], Vec::new()).await;
    assert_ne!(again.header("x-request-id"), Some(generated.as_str()), "ids are unique");
    let echoed = app
        .send(
            Method::GET,
            "/health",
            &[("x-request-id", "client-chosen-7")],
            Vec::new(),
        )
        .await;
    assert_eq!(echoed.header("x-request-id"), Some("client-chosen-7"));

    let preflight = app
        .send(
            Method::OPTIONS,
            "/v1/quests",
            &[
                ("origin", "https://play.example"),
                ("access-control-request-method", "POST"),
                ("access-control-request-headers", "authorization,content-type"),
            ],
            Vec::new(),
        )
        .await;
    assert!(preflight.status.is_success(), "{}", preflight.status);
    assert_eq!(
        preflight.header("access-control-allow-origin"),
        Some("https://play.example")
    );
    let foreign = app
        .send(
            Method::GET,
            "/health",
            &[("origin", "https://evil.example")],
            Vec::new(),
        )
        .await;
    assert!(
        foreign.header("access-control-allow-origin").is_none(),
        "unlisted origins get no CORS grant"
    );
    app.finish().await;
}
