//! The edges of the request path, through the real gateway: bodies that
//! are declared and then not sent (or sent too slowly, or cut short, or
//! declared too large), what an early answer says about the connection,
//! invalid UTF-8 on the socket, the policy for text players see, `Accept`
//! q-values, 405 as its own code, and `player_id` in a player route's
//! query. None of these may be a 5xx.

use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use vdm_gateway::rate_limit::{Rate, RateLimits};
use vdm_proto::world::v1 as world_pb;

use crate::helpers::{
    ADMIN_TOKEN, Backend, Options, TestApp, generous_rate_limits, spawn_app_with, spawn_demo_with_generous_limits,
    wolves,
};
use vdm_kit::backend_tests;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

backend_tests!(
    declared_bodies_that_do_not_arrive_are_408_or_400_never_5xx,
    a_declared_body_over_the_limit_is_413_before_it_is_read,
    early_answers_close_the_connection_and_read_bodies_keep_it,
    invalid_utf8_on_the_socket_closes_it_with_1007,
    text_players_see_follows_one_policy_in_every_service,
    accept_q_values_choose_the_encoding,
    a_wrong_method_is_405_method_not_allowed,
    player_id_in_a_player_routes_query_is_400,
);

/// The test gateway's body read timeout (`helpers::spawn_app_with`).
const BODY_READ_TIMEOUT: Duration = Duration::from_secs(2);

/// An answer read off a raw connection.
struct Raw {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Raw {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    /// Asserts the status, the uniform JSON error body and its code;
    /// returns the message.
    #[track_caller]
    fn assert_error(&self, status: u16, code: &str) -> String {
        assert_eq!(self.status, status, "body: {}", String::from_utf8_lossy(&self.body));
        assert_eq!(self.header("content-type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["error"]["code"], code, "{body}");
        body["error"]["message"].as_str().unwrap().to_owned()
    }

    fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// The head of a request, with `extra` header lines (each ending `\r\n`).
fn head(method: &str, path: &str, extra: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nhost: vdm\r\ncontent-type: application/json\r\n{extra}\r\n")
}

/// Reads one answer (head and `Content-Length` body) within `limit`.
async fn read_answer<R: AsyncReadExt + Unpin>(reader: &mut R, limit: Duration) -> Raw {
    tokio::time::timeout(limit, async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let n = reader.read(&mut chunk).await.expect("the answer reads");
            assert!(n > 0, "closed before an answer: {}", String::from_utf8_lossy(&buf));
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .map(|(_, v)| v.parse().unwrap())
            .expect("answers have a Content-Length");
        let mut body = buf[head_end..].to_vec();
        while body.len() < length {
            let n = reader.read(&mut chunk).await.expect("the body reads");
            assert!(n > 0, "closed in the body");
            body.extend_from_slice(&chunk[..n]);
        }
        body.truncate(length);
        Raw { status, headers, body }
    })
    .await
    .expect("an answer in time")
}

/// Whether the server closes the connection (within 2 s) after its answer.
async fn is_closed<R: AsyncReadExt + Unpin>(reader: &mut R) -> bool {
    let mut byte = [0u8; 1];
    matches!(
        tokio::time::timeout(Duration::from_secs(2), reader.read(&mut byte)).await,
        Ok(Ok(0)) | Ok(Err(_))
    )
}

async fn generous(backend: Backend) -> Option<TestApp> {
    spawn_app_with(
        backend,
        Options {
            rate_limits: Some(generous_rate_limits()),
            ..Options::default()
        },
    )
    .await
}

async fn declared_bodies_that_do_not_arrive_are_408_or_400_never_5xx(backend: Backend) {
    let Some(app) = generous(backend).await else { return };

    // Headers declaring 100 bytes, then nothing: a 408 once the body read
    // timeout passes (not the 504 of the 10 s request timeout).
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    silent
        .write_all(head("POST", "/v1/auth/device", "content-length: 100\r\n").as_bytes())
        .await
        .unwrap();
    let answer = read_answer(&mut silent, Duration::from_secs(8)).await;
    let elapsed = started.elapsed();
    let message = answer.assert_error(408, "request_timeout");
    assert!(message.contains("body"), "{message}");
    assert!(
        elapsed >= BODY_READ_TIMEOUT - Duration::from_millis(100) && elapsed < BODY_READ_TIMEOUT * 2,
        "408 after the body read timeout, got {elapsed:?}"
    );
    assert!(answer.closes(), "a 408 says Connection: close: {:?}", answer.headers);
    assert!(is_closed(&mut silent).await, "and the connection is closed");

    // A body sent a byte every 300 ms: the same 408, on an authenticated
    // route too.
    let (_, token) = app.sign_in("slow-body").await;
    let body = serde_json::to_vec(&json!({"ids": [1, 2, 3]})).unwrap();
    let stream = TcpStream::connect(app.addr).await.unwrap();
    let (mut reader, mut writer) = stream.into_split();
    let extra = format!("authorization: Bearer {token}\r\ncontent-length: {}\r\n", body.len());
    writer
        .write_all(head("POST", "/v1/quests:batchGet", &extra).as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let dribble = tokio::spawn(async move {
        for byte in body {
            if writer.write_all(&[byte]).await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    });
    let answer = read_answer(&mut reader, Duration::from_secs(8)).await;
    answer.assert_error(408, "request_timeout");
    assert!(started.elapsed() < BODY_READ_TIMEOUT * 2, "{:?}", started.elapsed());
    assert!(answer.closes());
    dribble.abort();

    // A body cut short (the client stops writing before Content-Length
    // bytes): a 400, at once.
    let mut short = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    short
        .write_all(head("POST", "/v1/auth/device", "content-length: 100\r\n").as_bytes())
        .await
        .unwrap();
    short.write_all(br#"{"device_id": "#).await.unwrap();
    short.shutdown().await.unwrap();
    let answer = read_answer(&mut short, Duration::from_secs(8)).await;
    let message = answer.assert_error(400, "invalid_argument");
    assert!(message.contains("request body"), "{message}");
    assert!(started.elapsed() < BODY_READ_TIMEOUT, "{:?}", started.elapsed());
    assert!(answer.closes());

    let ready = app.send(Method::GET, "/ready", &[], Vec::new()).await;
    assert_eq!(ready.status, 200);
    app.finish().await;
}

async fn a_declared_body_over_the_limit_is_413_before_it_is_read(backend: Backend) {
    let Some(app) = generous(backend).await else { return };
    let (_, token) = app.sign_in("big-body").await;
    // 10 MB declared (the test limit is 64 KiB), not a byte sent: the
    // answer comes at once, not after the body read timeout.
    for (path, auth) in [
        ("/v1/auth/device", String::new()),
        ("/v1/telemetry/client", format!("authorization: Bearer {token}\r\n")),
    ] {
        let mut stream = TcpStream::connect(app.addr).await.unwrap();
        let started = Instant::now();
        let extra = format!("{auth}content-length: 10000000\r\n");
        stream.write_all(head("POST", path, &extra).as_bytes()).await.unwrap();
        let answer = read_answer(&mut stream, Duration::from_secs(5)).await;
        let message = answer.assert_error(413, "payload_too_large");
        assert!(message.contains("10000000 bytes declared"), "{path}: {message}");
        assert!(
            started.elapsed() < BODY_READ_TIMEOUT / 2,
            "{path}: at once, got {:?}",
            started.elapsed()
        );
        assert!(answer.closes(), "{path}: {:?}", answer.headers);
        assert!(is_closed(&mut stream).await, "{path}: the connection is closed");
    }
    // MessagePack clients get the same answer in MessagePack.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let extra = "accept: application/msgpack\r\ncontent-length: 10000000\r\n";
    stream
        .write_all(head("POST", "/v1/auth/device", extra).as_bytes())
        .await
        .unwrap();
    let answer = read_answer(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(answer.status, 413);
    assert_eq!(answer.header("content-type"), Some("application/msgpack"));
    let body: Value = rmp_serde::from_slice(&answer.body).unwrap();
    assert_eq!(body["error"]["code"], "payload_too_large", "{body}");
    app.finish().await;
}

async fn early_answers_close_the_connection_and_read_bodies_keep_it(backend: Backend) {
    // One sign-in per caller, then 429s.
    let one_sign_in = RateLimits {
        auth: Rate {
            per_second: 0.001,
            burst: 1.0,
        },
        ..generous_rate_limits()
    };
    let options = Options {
        rate_limits: Some(one_sign_in),
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    let body = serde_json::to_vec(&json!({"device_id": "keep-alive"})).unwrap();
    let request = |body: &[u8]| {
        let mut bytes = head(
            "POST",
            "/v1/auth/device",
            &format!("content-length: {}\r\n", body.len()),
        )
        .into_bytes();
        bytes.extend_from_slice(body);
        bytes
    };

    // A body that is read: no `Connection: close`, and the connection
    // carries the next request.
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    stream.write_all(&request(&body)).await.unwrap();
    let first = read_answer(&mut stream, Duration::from_secs(5)).await;
    assert!(
        (200..300).contains(&first.status),
        "{}",
        String::from_utf8_lossy(&first.body)
    );
    assert!(!first.closes(), "{:?}", first.headers);

    // The next sign-in is refused by the rate limiter before its body is
    // read: a 429 that closes the connection.
    stream.write_all(&request(&body)).await.unwrap();
    let second = read_answer(&mut stream, Duration::from_secs(5)).await;
    second.assert_error(429, "resource_exhausted");
    assert!(second.header("retry-after").is_some());
    assert!(second.closes(), "{:?}", second.headers);
    assert!(is_closed(&mut stream).await);

    // A route that takes no body, sent one: answered without reading it,
    // and the connection is closed.
    let token = ADMIN_TOKEN;
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    let junk = b"{\"ignored\": true}";
    let mut bytes = head(
        "GET",
        "/v1/world/time",
        &format!("authorization: Bearer {token}\r\ncontent-length: {}\r\n", junk.len()),
    )
    .into_bytes();
    bytes.extend_from_slice(junk);
    stream.write_all(&bytes).await.unwrap();
    let answer = read_answer(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(answer.status, 200, "{}", String::from_utf8_lossy(&answer.body));
    assert!(answer.closes(), "{:?}", answer.headers);
    app.finish().await;
}

async fn connect_socket(app: &TestApp, token: &str) -> Socket {
    let mut request = format!("ws://{}/v1/ws", app.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "vdm.v1.json".parse().unwrap());
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let welcome: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(welcome["type"], "welcome", "{welcome}");
                return socket;
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no welcome: {other:?}"),
        }
    }
}

/// The close frame the server sends next (skipping other messages).
async fn close_frame(socket: &mut Socket) -> Option<(CloseCode, String)> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| (f.code, f.reason.to_string())),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

async fn invalid_utf8_on_the_socket_closes_it_with_1007(backend: Backend) {
    let Some(app) = generous(backend).await else { return };
    let (_, token) = app.sign_in("utf8").await;

    // One text frame that is not UTF-8.
    let mut socket = connect_socket(&app, &token).await;
    let frame = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    socket.send(Message::Frame(frame)).await.unwrap();
    let (code, reason) = close_frame(&mut socket).await.expect("a close frame");
    assert_eq!(code, CloseCode::Invalid, "{reason}");
    assert!(reason.contains("UTF-8"), "{reason}");

    // A fragmented text message whose second fragment breaks UTF-8 (a
    // sequence split across fragments is fine; this one is not one).
    let mut socket = connect_socket(&app, &token).await;
    let first = Frame::message(br#"{"type": "ping", "id": ""#.to_vec(), OpCode::Data(Data::Text), false);
    let second = Frame::message(vec![0xc3, 0x28, b'"', b'}'], OpCode::Data(Data::Continue), true);
    socket.send(Message::Frame(first)).await.unwrap();
    socket.send(Message::Frame(second)).await.unwrap();
    let (code, reason) = close_frame(&mut socket).await.expect("a close frame");
    assert_eq!(code, CloseCode::Invalid, "{reason}");

    // A valid message split inside a multi-byte character is answered.
    let mut socket = connect_socket(&app, &token).await;
    let text = r#"{"type": "ping", "id": "é"}"#.as_bytes();
    let split = text.iter().position(|b| *b == 0xc3).unwrap() + 1;
    let first = Frame::message(text[..split].to_vec(), OpCode::Data(Data::Text), false);
    let second = Frame::message(text[split..].to_vec(), OpCode::Data(Data::Continue), true);
    socket.send(Message::Frame(first)).await.unwrap();
    socket.send(Message::Frame(second)).await.unwrap();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next()).await {
            Ok(Some(Ok(Message::Text(text)))) => {
                let reply: Value = serde_json::from_str(text.as_str()).unwrap();
                assert_eq!(reply["id"], "é", "{reply}");
                assert_eq!(reply["status"], 200, "{reply}");
                break;
            }
            Ok(Some(Ok(_))) => continue,
            other => panic!("no reply: {other:?}"),
        }
    }
    app.finish().await;
}

async fn text_players_see_follows_one_policy_in_every_service(backend: Backend) {
    let Some(app) = spawn_demo_with_generous_limits(backend).await else {
        return;
    };
    let quest = |field: &str, value: Value| {
        let mut body = wolves();
        body[field] = value;
        body
    };
    let npc = |name: &str| json!({"name": name, "region_id": 2, "q": 5, "r": -3, "faction_id": 1});
    let rumor = |text: &str| json!({"text": text, "origin_npc_id": 4, "region_id": 1, "truth": 0.5});
    let memory = |text: &str| json!({"kind": "saw", "text": text, "importance": 0.5});
    let event = |text: &str| json!({"kind": "storm", "text": text, "region_ids": [1]});
    let mut objective_with_line_break = wolves();
    objective_with_line_break["objectives"][1]["description"] = json!("Report\nto the miller");
    let cases: Vec<(&str, &str, Value, &str)> = vec![
        // An RTL override: "Wolves at the Mill" that renders otherwise.
        (
            "/v1/quests",
            "RTL override in a quest title",
            quest("title", json!("Wolves \u{202E}lliM eht ta")),
            "title must not contain bidirectional",
        ),
        (
            "/v1/quests",
            "isolate in a quest description",
            quest("description", json!("The miller \u{2067}is\u{2069} afraid.")),
            "description must not contain bidirectional",
        ),
        (
            "/v1/quests",
            "line break in a one-line objective",
            objective_with_line_break,
            "objectives[1].description must not contain",
        ),
        (
            "/v1/quests",
            "zero-width-only title",
            quest("title", json!("\u{200B}\u{200D}")),
            "title must not be blank",
        ),
        (
            "/v1/quests",
            "byte order mark as the whole description",
            quest("description", json!("\u{FEFF}")),
            "description must not be blank",
        ),
        (
            "/v1/rumors",
            "zero-width-only rumor text",
            rumor("\u{200B}\u{200B}\u{2060}"),
            "text must not be blank",
        ),
        (
            "/v1/rumors",
            "right-to-left mark in a rumor",
            rumor("wolves\u{200F} at the mill"),
            "text must not contain bidirectional",
        ),
        (
            "/v1/npcs",
            "left-to-right override in an NPC name",
            npc("Garrick\u{202D}"),
            "name must not contain bidirectional",
        ),
        (
            "/v1/npcs",
            "tab in an NPC name",
            npc("Garrick\tthe Smith"),
            "name must not contain",
        ),
        (
            "/v1/npcs/1/memories",
            "escape character in a memory",
            memory("saw \u{1b}[31mred\u{1b}[0m"),
            "text must not contain control characters",
        ),
        (
            "/v1/npcs/1/memories",
            "invisible memory",
            memory(" \u{200C} "),
            "text must not be blank",
        ),
        (
            "/v1/world/events",
            "Arabic letter mark in an event",
            event("a storm \u{061C}rolls in"),
            "text must not contain bidirectional",
        ),
    ];
    for (path, what, body, names) in cases {
        let response = app.post_json(path, Some(ADMIN_TOKEN), &body).await;
        let message = response.assert_error(400, "invalid_argument");
        assert!(message.contains(names), "{what}: {message}");
    }

    // Patches are held to the same policy.
    let created = app.create_quest(&wolves()).await;
    let id = created["id"].as_i64().unwrap();
    let message = app
        .json_request(
            Method::PATCH,
            &format!("/v1/quests/{id}"),
            Some(ADMIN_TOKEN),
            &json!({"title": "Wolves\u{2066}"}),
        )
        .await
        .assert_error(400, "invalid_argument");
    assert!(message.contains("title must not contain bidirectional"), "{message}");

    // What the policy lets through: line breaks and tabs in multi-line
    // text, joiners inside visible text (emoji, Persian), other scripts.
    let mut fine = wolves();
    fine["title"] = json!("Wölfe 🐺‍🔥 می‌خواهم");
    fine["description"] = json!("The miller is afraid.\n\tHe pays well.");
    let created = app.create_quest(&fine).await;
    assert_eq!(created["title"], "Wölfe 🐺‍🔥 می‌خواهم");
    assert_eq!(created["description"], "The miller is afraid.\n\tHe pays well.");
    let memory_ok = app
        .post_json("/v1/npcs/1/memories", Some(ADMIN_TOKEN), &memory("saw\nwolves"))
        .await;
    assert!(
        memory_ok.status.is_success(),
        "{}",
        String::from_utf8_lossy(&memory_ok.body)
    );

    // The world's own writes (gRPC only): region and faction names.
    let mut world = app.world();
    let status = world
        .upsert_region(world_pb::UpsertRegionRequest {
            region: Some(world_pb::RegionSpec {
                id: 9,
                name: "Mill\u{202E}brook".into(),
                biome: "forest".into(),
                cells: vec![world_pb::Hex { q: 40, r: 40 }],
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("name must not contain bidirectional"),
        "{}",
        status.message()
    );
    let status = world
        .upsert_faction(world_pb::UpsertFactionRequest {
            faction: Some(world_pb::Faction {
                id: 9,
                name: "\u{200B}".into(),
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::InvalidArgument);
    assert!(
        status.message().contains("name must not be blank"),
        "{}",
        status.message()
    );
    app.finish().await;
}

async fn accept_q_values_choose_the_encoding(backend: Backend) {
    let Some(app) = generous(backend).await else { return };
    let (_, token) = app.sign_in("accept").await;
    let auth = format!("Bearer {token}");
    for (accept, expected) in [
        ("application/msgpack;q=0, application/json", "application/json"),
        ("application/msgpack;q=0", "application/json"),
        (
            "application/json;q=0.5, application/msgpack;q=0.9",
            "application/msgpack",
        ),
        ("application/json, application/msgpack", "application/json"),
        ("application/msgpack, application/json", "application/msgpack"),
        ("application/msgpack;q=0.5, */*", "application/json"),
    ] {
        let headers = [("authorization", auth.as_str()), ("accept", accept)];
        let listed = app.send(Method::GET, "/v1/quests", &headers, Vec::new()).await;
        assert_eq!(listed.status, 200, "{accept}");
        assert_eq!(listed.header("content-type"), Some(expected), "{accept}");
        // Error bodies are negotiated the same way.
        let missing = app.send(Method::GET, "/v1/quests/424242", &headers, Vec::new()).await;
        assert_eq!(missing.status, 404, "{accept}");
        assert_eq!(missing.header("content-type"), Some(expected), "{accept}");
        let body: Value = if expected == "application/json" {
            missing.json()
        } else {
            rmp_serde::from_slice(&missing.body).unwrap()
        };
        assert_eq!(body["error"]["code"], "not_found", "{accept}: {body}");
    }
    app.finish().await;
}

async fn a_wrong_method_is_405_method_not_allowed(backend: Backend) {
    let Some(app) = generous(backend).await else { return };
    let (_, token) = app.sign_in("methods").await;
    let auth = format!("Bearer {token}");
    for (method, path) in [
        (Method::PUT, "/v1/me/quests"),
        (Method::DELETE, "/v1/world/time"),
        (Method::PATCH, "/v1/auth/device"),
    ] {
        let response = app
            .send(method.clone(), path, &[("authorization", &auth)], Vec::new())
            .await;
        let message = response.assert_error(405, "method_not_allowed");
        assert!(message.contains("method"), "{method} {path}: {message}");
        assert!(response.header("allow").is_some(), "{method} {path}: Allow");
    }
    // An unknown route is still a 404.
    app.get("/v1/nowhere", &token).await.assert_error(404, "not_found");
    app.finish().await;
}

async fn player_id_in_a_player_routes_query_is_400(backend: Backend) {
    let Some(app) = spawn_demo_with_generous_limits(backend).await else {
        return;
    };
    let (ana, _) = app.sign_in("ana").await;
    let (_, bo) = app.sign_in("bo").await;
    let quest = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let q = format!("player_id={ana}");
    let telemetry = json!({"client_version": "1", "device_class": "pc", "samples": [{"frame_time_ms": 16.6}]});
    let cases: Vec<(Method, String, Option<Value>)> = vec![
        (Method::POST, format!("/v1/quests/{quest}/accept?{q}"), None),
        (
            Method::POST,
            format!("/v1/me/quests/{quest}/progress?{q}"),
            Some(json!({"objective_id": 1})),
        ),
        (Method::POST, format!("/v1/me/quests/{quest}/abandon?{q}"), None),
        (Method::GET, format!("/v1/me/npcs/1/disposition?{q}"), None),
        (Method::POST, format!("/v1/npcs/1/talk?{q}"), None),
        (Method::POST, format!("/v1/telemetry/client?{q}"), Some(telemetry)),
        (Method::GET, format!("/v1/me/quests?{q}"), None),
        (Method::GET, format!("/v1/me/rumors?{q}"), None),
        (Method::GET, format!("/v1/bootstrap?region_id=1&{q}"), None),
    ];
    let auth = format!("Bearer {bo}");
    for (method, path, body) in cases {
        let mut headers = vec![("authorization", auth.as_str())];
        let bytes = match &body {
            Some(body) => {
                headers.push(("content-type", "application/json"));
                serde_json::to_vec(body).unwrap()
            }
            None => Vec::new(),
        };
        let response = app.send(method.clone(), &path, &headers, bytes).await;
        let message = response.assert_error(400, "invalid_argument");
        assert!(message.contains("player_id"), "{method} {path}: {message}");
    }
    // Nothing happened on Bo's behalf (nor on Ana's).
    let bos = app.get("/v1/me/quests", &bo).await.json();
    assert!(bos["items"].as_array().unwrap().is_empty(), "{bos}");

    // The socket's query too, before the upgrade.
    let mut request = format!("ws://{}/v1/ws?{q}", app.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "vdm.v1.json".parse().unwrap());
    request.headers_mut().insert("authorization", auth.parse().unwrap());
    match tokio_tungstenite::connect_async(request).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 400);
            let body = String::from_utf8_lossy(response.body().as_deref().unwrap_or_default()).into_owned();
            assert!(body.contains("player_id"), "{body}");
        }
        Err(other) => panic!("expected a 400, got {other}"),
        Ok(_) => panic!("expected a 400, the socket opened"),
    }
    app.finish().await;
}
