//! One player must never hurt another: a hostile player's requests, however
//! bad, are that player's 4xx (or 429), and another player's requests keep
//! succeeding; quotas are keyed on who is calling, not on how the header is
//! spelled; sessions end when revoked, on every replica, sockets included.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, generous_rate_limits, spawn_app_with, wolves};
use crate::realtime::{Socket, close_code, collect, connect, next, send};
use vdm_kit::backend_tests;

backend_tests!(
    a_flood_of_bad_requests_leaves_another_player_at_full_success,
    quotas_are_keyed_on_the_player_not_the_header_text,
    socket_requests_are_limited_per_client_address,
    refresh_tokens_rotate_and_a_reused_one_revokes_the_session,
    sign_out_and_operator_revocation_end_sessions_and_sockets,
    named_operator_credentials_rotate_without_a_restart,
    slow_requests_of_one_player_do_not_take_every_slot,
    behind_a_trusted_proxy_the_forwarded_client_is_keyed,
);

fn options(rate_limits: vdm_gateway::rate_limit::RateLimits) -> Options {
    Options {
        rate_limits: Some(rate_limits),
        ..Options::default()
    }
}

/// Generous limits but for one class's rate.
fn one_tight_rate(
    edit: impl FnOnce(&mut vdm_gateway::rate_limit::RateLimits) -> &mut vdm_gateway::rate_limit::Rate,
    per_second: f64,
    burst: f64,
) -> Options {
    let mut limits = generous_rate_limits();
    *edit(&mut limits) = vdm_gateway::rate_limit::Rate { per_second, burst };
    options(limits)
}

/// The bad requests a hostile player sends: values far longer than any
/// field allows, on every service's routes.
fn hostile_requests() -> Vec<(http::Method, String, Option<Value>)> {
    let long = "A".repeat(17_000);
    vec![
        (http::Method::GET, format!("/v1/quests?cursor={long}"), None),
        (http::Method::GET, format!("/v1/npcs?region_id=1&cursor={long}"), None),
        (
            http::Method::GET,
            format!("/v1/world/events?region_id=1&cursor={long}"),
            None,
        ),
        (http::Method::GET, format!("/v1/me/rumors?cursor={long}"), None),
        (
            http::Method::POST,
            "/v1/telemetry/client".to_owned(),
            Some(json!({
                "client_version": "1.0.0",
                "device_class": "desktop",
                "samples": [{"frame_time_ms": 16.0, "systems": {"S".repeat(30_000): 1.0}}]
            })),
        ),
    ]
}

async fn a_flood_of_bad_requests_leaves_another_player_at_full_success(backend: Backend) {
    let Some(app) = spawn_app_with(backend, options(generous_rate_limits())).await else {
        return;
    };
    let quest = app.create_quest(&wolves()).await;
    let path = format!("/v1/quests/{}", quest["id"]);
    let (_, attacker) = app.sign_in("hostile-player").await;
    let (_, victim) = app.sign_in("honest-player").await;

    // Each bad request is the attacker's own 4xx, its message bounded.
    for (method, route, body) in hostile_requests() {
        let response = match &body {
            Some(body) => app.json_request(method, &route, Some(&attacker), body).await,
            None => app.get(&route, &attacker).await,
        };
        assert!(
            response.status.is_client_error(),
            "{route:.40}: {} {}",
            response.status,
            String::from_utf8_lossy(&response.body)
        );
        let message = response.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.len() <= 512, "{route:.40}: message of {} bytes", message.len());
    }

    // The attacker keeps going while the victim plays.
    let stop = Instant::now() + Duration::from_secs(3);
    let flood = {
        let (app_addr, attacker) = (app.addr, attacker.clone());
        tokio::spawn(async move {
            let client = reqwest_free_client();
            let mut sent = 0u32;
            let mut server_errors = 0u32;
            while Instant::now() < stop {
                for (method, route, body) in hostile_requests() {
                    let status = raw_request(&client, app_addr, method, &route, &attacker, body.as_ref()).await;
                    sent += 1;
                    if status >= 500 {
                        server_errors += 1;
                    }
                }
            }
            (sent, server_errors)
        })
    };
    let (mut ok, mut total) = (0u32, 0u32);
    while Instant::now() < stop {
        let response = app.get(&path, &victim).await;
        total += 1;
        if response.status == 200 {
            ok += 1;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (sent, attacker_5xx) = flood.await.unwrap();
    assert!(sent > 100, "the flood ran ({sent} requests)");
    assert_eq!(attacker_5xx, 0, "bad input is a 4xx, never a 5xx");
    assert_eq!(ok, total, "the victim's reads all succeed during the flood");
    app.finish().await;
}

type RawClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<bytes::Bytes>,
>;

fn reqwest_free_client() -> RawClient {
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build_http()
}

async fn raw_request(
    client: &RawClient,
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    token: &str,
    body: Option<&Value>,
) -> u16 {
    let mut request = http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("authorization", format!("Bearer {token}"));
    let bytes = match body {
        Some(body) => {
            request = request.header("content-type", "application/json");
            serde_json::to_vec(body).unwrap()
        }
        None => Vec::new(),
    };
    let request = request
        .body(http_body_util::Full::new(bytes::Bytes::from(bytes)))
        .unwrap();
    match client.request(request).await {
        Ok(response) => response.status().as_u16(),
        Err(_) => 599,
    }
}

async fn quotas_are_keyed_on_the_player_not_the_header_text(backend: Backend) {
    let Some(app) = spawn_app_with(backend, one_tight_rate(|l| &mut l.read, 0.2, 4.0)).await else {
        return;
    };
    let (_, token) = app.sign_in("spelling-player").await;
    let (_, other) = app.sign_in("other-player").await;
    let spellings = [
        format!("Bearer {token}"),
        format!("bearer {token}"),
        format!("BEARER   {token}  "),
        format!("  Bearer {token}"),
    ];
    let read_with = |auth: &str| {
        let (app, auth) = (&app, auth.to_owned());
        async move {
            app.send(
                http::Method::GET,
                "/v1/me/quests",
                &[("authorization", &auth)],
                Vec::new(),
            )
            .await
            .status
        }
    };
    for auth in &spellings {
        assert_eq!(read_with(auth).await, 200, "{auth:?}");
    }
    // The quota is spent whatever the spelling.
    for auth in &spellings {
        assert_eq!(read_with(auth).await, 429, "{auth:?} got a fresh quota");
    }
    // Not the `Bearer` scheme (a tab is no separator there): not served.
    let tabbed = read_with(&format!("Bearer\t{token}")).await;
    assert!(matches!(tabbed.as_u16(), 401 | 429), "{tabbed}");
    // Another player has a quota of its own; a made-up token is not a
    // player and falls back to the client address (refused as 401 or 429,
    // never served).
    assert_eq!(app.get("/v1/me/quests", &other).await.status, 200);
    let forged = app.get("/v1/me/quests", "made.up.token").await;
    assert!(matches!(forged.status.as_u16(), 401 | 429), "{}", forged.status);
    app.finish().await;
}

/// A socket opened from the local address `ip` (any of 127.0.0.0/8).
async fn connect_from(app: &TestApp, ip: [u8; 4], token: &str) -> Socket {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((ip, 0))).unwrap();
    let stream = socket.connect(app.addr).await.unwrap();
    let mut request = format!("ws://{}/v1/ws", app.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (socket, _) = tokio_tungstenite::client_async(request, tokio_tungstenite::MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    socket
}

async fn socket_requests_are_limited_per_client_address(backend: Backend) {
    let Some(app) = spawn_app_with(backend, one_tight_rate(|l| &mut l.auth, 0.1, 3.0)).await else {
        return;
    };
    // Sign-ins over HTTP from two addresses' worth of quota are not needed:
    // each player signs in once from 127.0.0.1.
    let (_, hostile) = app.sign_in("socket-hostile").await;
    let (_, honest) = app.sign_in("socket-honest").await;
    let mut from_hostile = connect_from(&app, [127, 0, 0, 2], &hostile).await;
    let mut from_honest = connect_from(&app, [127, 0, 0, 3], &honest).await;
    assert_eq!(next(&mut from_hostile).await["type"], "welcome");
    assert_eq!(next(&mut from_honest).await["type"], "welcome");

    let sign_in = |id: &str, device: &str| json!({"id": id, "type": "request", "method": "POST", "path": "/v1/auth/device", "body": {"device_id": device}});
    let mut statuses = Vec::new();
    for n in 0..5 {
        send(
            &mut from_hostile,
            sign_in(&format!("h{n}"), &format!("hostile-alt-{n}")),
        )
        .await;
        let (reply, _) = collect(&mut from_hostile, &format!("h{n}"), 0).await;
        statuses.push(reply["status"].as_u64().unwrap());
    }
    assert_eq!(&statuses[..3], &[201, 201, 201], "{statuses:?}");
    assert_eq!(
        &statuses[3..],
        &[429, 429],
        "the hostile address's quota is spent: {statuses:?}"
    );
    // The honest player's socket, from its own address, still signs in.
    send(&mut from_honest, sign_in("o1", "honest-alt")).await;
    let (reply, _) = collect(&mut from_honest, "o1", 0).await;
    assert_eq!(reply["status"], 201, "{reply}");
    app.finish().await;
}

async fn sign_in_pair(app: &TestApp, device: &str) -> Value {
    let response = app
        .post_json("/v1/auth/device", None, &json!({"device_id": device}))
        .await;
    assert!(response.status.is_success());
    response.json()
}

async fn refresh(app: &TestApp, refresh_token: &Value) -> crate::helpers::TestResponse {
    app.post_json("/v1/auth/refresh", None, &json!({"refresh_token": refresh_token}))
        .await
}

async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_session(backend: Backend) {
    let Some(app) = spawn_app_with(backend, options(generous_rate_limits())).await else {
        return;
    };
    let first = sign_in_pair(&app, "rotating-device").await;
    let second = refresh(&app, &first["refresh_token"]).await;
    assert_eq!(second.status, 200);
    let second = second.json();
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let third = refresh(&app, &second["refresh_token"]).await;
    assert_eq!(third.status, 200);
    let third = third.json();
    let session = third["session_token"].as_str().unwrap();
    assert_eq!(app.get("/v1/me/quests", session).await.status, 200);

    // An older refresh token comes back: whoever holds the newer one too is
    // cut off, and the session tokens of the family stop working.
    let msg = refresh(&app, &second["refresh_token"])
        .await
        .assert_error(401, "unauthenticated");
    assert!(msg.contains("used already"), "{msg}");
    refresh(&app, &third["refresh_token"])
        .await
        .assert_error(401, "unauthenticated");
    app.get("/v1/me/quests", session)
        .await
        .assert_error(401, "unauthenticated");

    // Another sign-in of the same device is a new session and works.
    let fresh = sign_in_pair(&app, "rotating-device").await;
    assert_eq!(
        app.get("/v1/me/quests", fresh["session_token"].as_str().unwrap())
            .await
            .status,
        200
    );
    assert_eq!(refresh(&app, &fresh["refresh_token"]).await.status, 200);

    // Two refreshes racing with the same token: one wins, the other is a
    // reuse (so the family ends, as it must when a token is in two hands).
    let racing = sign_in_pair(&app, "racing-device").await;
    let (a, b) = tokio::join!(
        refresh(&app, &racing["refresh_token"]),
        refresh(&app, &racing["refresh_token"])
    );
    let mut statuses = [a.status.as_u16(), b.status.as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 401]);
    app.finish().await;
}

async fn sign_out_and_operator_revocation_end_sessions_and_sockets(backend: Backend) {
    let Some(app) = spawn_app_with(backend, options(generous_rate_limits())).await else {
        return;
    };
    // On Postgres + Redis a second replica must hear of every revocation.
    let replica = match backend {
        Backend::External => Some(app.spawn_second_gateway().await),
        Backend::Embedded => None,
    };
    let phone = sign_in_pair(&app, "revoked-phone").await;
    let tablet = sign_in_pair(&app, "revoked-phone").await;
    let phone_session = phone["session_token"].as_str().unwrap().to_owned();
    let tablet_session = tablet["session_token"].as_str().unwrap().to_owned();
    let mut tablet_socket = connect(&app, "", Some(&tablet_session), "vdm.v1.json").await.unwrap();
    assert_eq!(next(&mut tablet_socket).await["type"], "welcome");

    // Sign out on the phone: its tokens stop working here and on the other
    // replica; the tablet's session goes on.
    let out = app
        .post_json("/v1/auth/signout", Some(&phone_session), &json!({}))
        .await;
    assert_eq!(out.status, 204, "{}", String::from_utf8_lossy(&out.body));
    app.get("/v1/me/quests", &phone_session)
        .await
        .assert_error(401, "unauthenticated");
    refresh(&app, &phone["refresh_token"])
        .await
        .assert_error(401, "unauthenticated");
    if let Some(replica) = &replica {
        eventually_refused(replica, &phone_session).await;
    }
    assert_eq!(app.get("/v1/me/quests", &tablet_session).await.status, 200);

    // An operator revokes every session of the player: the tablet's
    // requests and its open socket end; a new sign-in works.
    let player_id = tablet["player_id"].as_i64().unwrap();
    let players_only = app
        .post_json(
            &format!("/v1/players/{player_id}/sessions:revoke"),
            Some(&tablet_session),
            &json!({}),
        )
        .await;
    players_only.assert_error(403, "permission_denied");
    let missing = app
        .post_json("/v1/players/999999/sessions:revoke", Some(ADMIN_TOKEN), &json!({}))
        .await;
    missing.assert_error(404, "not_found");
    let revoked = app
        .post_json(
            &format!("/v1/players/{player_id}/sessions:revoke"),
            Some(ADMIN_TOKEN),
            &json!({}),
        )
        .await;
    assert_eq!(revoked.status, 204, "{}", String::from_utf8_lossy(&revoked.body));
    assert_eq!(close_code(&mut tablet_socket).await, Some(CloseCode::Library(4003)));
    app.get("/v1/me/quests", &tablet_session)
        .await
        .assert_error(401, "unauthenticated");
    refresh(&app, &tablet["refresh_token"])
        .await
        .assert_error(401, "unauthenticated");
    if let Some(replica) = &replica {
        eventually_refused(replica, &tablet_session).await;
    }
    let again = sign_in_pair(&app, "revoked-phone").await;
    assert_eq!(
        app.get("/v1/me/quests", again["session_token"].as_str().unwrap())
            .await
            .status,
        200
    );
    if let Some(replica) = replica {
        replica.finish().await;
    }
    app.finish().await;
}

/// Waits (up to 3 s) until `replica` refuses `token`.
async fn eventually_refused(replica: &TestApp, token: &str) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let status = replica.get("/v1/me/quests", token).await.status;
        if status == 401 {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the other replica still serves the revoked session ({status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn named_operator_credentials_rotate_without_a_restart(backend: Backend) {
    let dir = std::env::temp_dir().join(format!("vdm-ops-{}-{:?}", std::process::id(), backend));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("operators");
    std::fs::write(&file, "alice alice-credential-0123456789\n").unwrap();
    let Some(app) = spawn_app_with(
        backend,
        Options {
            admin_tokens_file: Some(file.clone()),
            rate_limits: Some(generous_rate_limits()),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let create = |token: &'static str| {
        let app = &app;
        async move { app.post_json("/v1/quests", Some(token), &wolves()).await.status }
    };
    assert_eq!(create("alice-credential-0123456789").await, 201);
    assert_eq!(create(ADMIN_TOKEN).await, 201, "VDM_ADMIN_TOKEN still works");

    // Rotate: bob in, alice out, no restart.
    std::fs::write(&file, "bob bob-credential-0123456789xyz\n").unwrap();
    let handle = std::fs::File::options().write(true).open(&file).unwrap();
    handle
        .set_modified(std::time::SystemTime::now() + Duration::from_secs(10))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(6);
    loop {
        if create("bob-credential-0123456789xyz").await == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "the new credential was not picked up");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(create("alice-credential-0123456789").await, 401, "the old one is gone");
    app.finish().await;
    let _ = std::fs::remove_dir_all(&dir);
}

async fn slow_requests_of_one_player_do_not_take_every_slot(backend: Backend) {
    let Some(app) = spawn_app_with(
        backend,
        Options {
            rate_limits: Some(vdm_gateway::rate_limit::RateLimits {
                in_flight: 2,
                ..generous_rate_limits()
            }),
            world_delay: Some(Duration::from_millis(600)),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };
    let (_, greedy) = app.sign_in("greedy-player").await;
    let (_, other) = app.sign_in("patient-player").await;
    let started = Instant::now();
    let (a, b, c, d) = tokio::join!(
        app.get("/v1/world/regions", &greedy),
        app.get("/v1/world/regions", &greedy),
        async {
            // Sent while the first two are running.
            tokio::time::sleep(Duration::from_millis(150)).await;
            app.get("/v1/world/regions", &greedy).await
        },
        async {
            tokio::time::sleep(Duration::from_millis(150)).await;
            app.get("/v1/world/regions", &other).await
        },
    );
    assert_eq!((a.status.as_u16(), b.status.as_u16()), (200, 200));
    let refused = c.assert_error(429, "resource_exhausted");
    assert!(refused.contains("in flight"), "{refused}");
    assert!(c.header("retry-after").is_some());
    assert_eq!(d.status, 200, "another player is not held back");
    assert!(started.elapsed() < Duration::from_secs(5));
    // Answered requests give their slots back.
    assert_eq!(app.get("/v1/world/regions", &greedy).await.status, 200);
    app.finish().await;
}

async fn behind_a_trusted_proxy_the_forwarded_client_is_keyed(backend: Backend) {
    let limits = vdm_gateway::rate_limit::RateLimits {
        auth: vdm_gateway::rate_limit::Rate {
            per_second: 0.1,
            burst: 2.0,
        },
        // The test client (127.0.0.1) plays the ingress.
        trusted_proxies: vec!["127.0.0.0/8".parse().unwrap()],
        ..generous_rate_limits()
    };
    let Some(app) = spawn_app_with(backend, options(limits)).await else {
        return;
    };
    let sign_in = |forwarded: &'static str, device: String| {
        let app = &app;
        async move {
            let body = serde_json::to_vec(&json!({"device_id": device})).unwrap();
            app.send(
                http::Method::POST,
                "/v1/auth/device",
                &[("content-type", "application/json"), ("x-forwarded-for", forwarded)],
                body,
            )
            .await
            .status
            .as_u16()
        }
    };
    // One client's quota, spent; a hop it writes itself on the left
    // changes nothing.
    assert_eq!(sign_in("198.51.100.1", "fwd-a1".into()).await, 201);
    assert_eq!(sign_in("198.51.100.1", "fwd-a2".into()).await, 201);
    assert_eq!(sign_in("198.51.100.1", "fwd-a3".into()).await, 429);
    assert_eq!(sign_in("203.0.113.77, 198.51.100.1", "fwd-a4".into()).await, 429);
    // Another client behind the same proxy has its own.
    assert_eq!(sign_in("198.51.100.2", "fwd-b1".into()).await, 201);
    app.finish().await;
}
