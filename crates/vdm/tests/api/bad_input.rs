//! Bad input, as one table (issue 9): every kind of malformed request
//! against real routes, REST and WebSocket, each answered with a 4xx (or a
//! close code) and a JSON error naming the problem; then the gateway is
//! still ready and nothing was a 5xx. Slow and flooding clients are cut off
//! within bounded time.

use std::io::Write;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use http::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::Frame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{CloseCode, Data, OpCode};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, spawn_app_with, spawn_demo_with_generous_limits};
use vdm_kit::backend_tests;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

backend_tests!(bad_input_table, header_floods_and_slow_clients_are_cut_off);

/// Who sends a case.
#[derive(Clone, Copy)]
enum Who {
    Nobody,
    Player,
    Admin,
}

/// One bad request and the answer it must get.
struct Case {
    /// What the case is about, for failure messages.
    what: &'static str,
    method: Method,
    path: String,
    who: Who,
    /// Extra headers; `content-type: application/json` when none names one.
    headers: Vec<(&'static str, &'static str)>,
    body: Vec<u8>,
    status: u16,
    code: &'static str,
    /// A substring of the error message that names the problem.
    names: &'static str,
}

fn case(
    what: &'static str,
    method: Method,
    path: impl Into<String>,
    who: Who,
    body: impl Into<Vec<u8>>,
    (status, code, names): (u16, &'static str, &'static str),
) -> Case {
    Case {
        what,
        method,
        path: path.into(),
        who,
        headers: Vec::new(),
        body: body.into(),
        status,
        code,
        names,
    }
}

impl Case {
    fn with(mut self, name: &'static str, value: &'static str) -> Case {
        self.headers.push((name, value));
        self
    }
}

const INVALID: (u16, &str) = (400, "invalid_argument");

fn invalid(names: &'static str) -> (u16, &'static str, &'static str) {
    (INVALID.0, INVALID.1, names)
}

fn json_bytes(value: Value) -> Vec<u8> {
    serde_json::to_vec(&value).unwrap()
}

fn msgpack(value: Value) -> Vec<u8> {
    rmp_serde::to_vec_named(&value).unwrap()
}

fn truncated(mut bytes: Vec<u8>) -> Vec<u8> {
    bytes.truncate(bytes.len() * 2 / 3);
    bytes
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn sample() -> Value {
    json!({"frame_time_ms": 16.6})
}

fn batch(samples: Vec<Value>) -> Value {
    json!({"client_version": "1.4.2", "device_class": "desktop", "samples": samples})
}

fn rumor() -> Value {
    json!({"text": "wolves at the mill", "origin_npc_id": 4, "region_id": 1, "truth": 0.5})
}

/// The table: every item of the issue's list against several routes.
fn cases() -> Vec<Case> {
    use Who::*;
    let post = || Method::POST;
    let get = || Method::GET;
    // Within the test body limit (64 KiB), over every length cap.
    let huge_string = "x".repeat(40 * 1024);
    let deep_json = "[".repeat(60_000).into_bytes();
    let deep_msgpack = vec![0x91u8; 60_000];
    let bomb = gzip(&vec![b' '; 16 << 20]);
    let mut cases = vec![
        // Malformed JSON.
        case(
            "malformed JSON",
            post(),
            "/v1/auth/device",
            Nobody,
            &b"{\"device_id\": "[..],
            invalid("invalid JSON"),
        ),
        case(
            "malformed JSON",
            post(),
            "/v1/rumors",
            Admin,
            &b"{\"text\" \"x\"}"[..],
            invalid("invalid JSON"),
        ),
        case(
            "trailing garbage",
            post(),
            "/v1/me/quests/1/progress",
            Player,
            &b"{\"objective_id\": 1} }"[..],
            invalid("JSON"),
        ),
        case(
            "empty body",
            post(),
            "/v1/telemetry/client",
            Player,
            Vec::new(),
            invalid("JSON"),
        ),
        // Invalid UTF-8 inside a JSON string, and as the whole body.
        case(
            "invalid UTF-8 in a string",
            post(),
            "/v1/auth/device",
            Nobody,
            &b"{\"device_id\": \"\xff\xfe\"}"[..],
            invalid("JSON"),
        ),
        case(
            "invalid UTF-8 body",
            post(),
            "/v1/npcs/1/memories",
            Admin,
            &b"\xc3\x28\xa0\xa1"[..],
            invalid("JSON"),
        ),
        // Truncated and garbage MessagePack.
        case(
            "truncated MessagePack",
            post(),
            "/v1/rumors",
            Admin,
            truncated(msgpack(rumor())),
            invalid("MessagePack"),
        )
        .with("content-type", "application/msgpack"),
        case(
            "truncated MessagePack",
            post(),
            "/v1/telemetry/client",
            Player,
            truncated(msgpack(batch(vec![sample(); 3]))),
            invalid("MessagePack"),
        )
        .with("content-type", "application/msgpack"),
        case(
            "MessagePack reserved byte",
            post(),
            "/v1/auth/device",
            Nobody,
            vec![0xc1],
            invalid("MessagePack"),
        )
        .with("content-type", "application/msgpack"),
        // Deep nesting: a 400, not a stack overflow.
        case(
            "60k nested JSON arrays",
            post(),
            "/v1/quests:batchGet",
            Player,
            deep_json.clone(),
            invalid("invalid type"),
        ),
        case(
            "60k nested JSON arrays",
            post(),
            "/v1/telemetry/client",
            Player,
            deep_json,
            invalid("invalid type"),
        ),
        case(
            "100k nested JSON arrays, over the body limit",
            post(),
            "/v1/auth/device",
            Nobody,
            "[".repeat(100_000),
            (413, "payload_too_large", "larger"),
        ),
        case(
            "60k nested MessagePack arrays",
            post(),
            "/v1/rumors",
            Admin,
            deep_msgpack.clone(),
            invalid("MessagePack"),
        )
        .with("content-type", "application/msgpack"),
        case(
            "nested MessagePack in an ignored spot",
            post(),
            "/v1/npcs:batchGet",
            Player,
            {
                // {"ids": [[[[...]]]]}
                let mut bytes = vec![0x81, 0xa3, b'i', b'd', b's'];
                bytes.extend(&deep_msgpack);
                bytes
            },
            invalid("MessagePack"),
        )
        .with("content-type", "application/msgpack"),
        // Wrong types.
        case(
            "string for a number",
            post(),
            "/v1/me/quests/1/progress",
            Player,
            json_bytes(json!({"objective_id": "one"})),
            invalid("objective_id"),
        ),
        case(
            "string for a number",
            post(),
            "/v1/telemetry/client",
            Player,
            json_bytes(batch(vec![json!({"frame_time_ms": "fast"})])),
            invalid("samples[0].frame_time_ms"),
        ),
        case(
            "object for a string",
            post(),
            "/v1/auth/device",
            Nobody,
            json_bytes(json!({"device_id": {"a": 1}})),
            invalid("device_id"),
        ),
        case(
            "array for an object",
            post(),
            "/v1/rumors",
            Admin,
            json_bytes(json!([1, 2])),
            invalid("invalid type"),
        ),
        case(
            "number for an array",
            post(),
            "/v1/quests:batchGet",
            Player,
            json_bytes(json!({"ids": 7})),
            invalid("ids"),
        ),
        // Missing fields.
        case(
            "missing field",
            post(),
            "/v1/auth/refresh",
            Nobody,
            json_bytes(json!({})),
            invalid("refresh_token"),
        ),
        case(
            "missing field",
            post(),
            "/v1/npcs/1/memories",
            Admin,
            json_bytes(json!({"kind": "saw", "importance": 0.5})),
            invalid("text"),
        ),
        case(
            "missing field",
            post(),
            "/v1/telemetry/client",
            Player,
            json_bytes(json!({"client_version": "1", "device_class": "pc"})),
            invalid("samples"),
        ),
        // Unknown fields where they matter: server-owned ones.
        case(
            "server-owned field",
            post(),
            "/v1/auth/device",
            Nobody,
            json_bytes(json!({"device_id": "d1", "player_id": 1})),
            invalid("player_id"),
        ),
        case(
            "server-owned field",
            post(),
            "/v1/me/quests/1/progress",
            Player,
            json_bytes(json!({"objective_id": 1, "status": "completed"})),
            invalid("status"),
        ),
        case(
            "server-owned field",
            post(),
            "/v1/telemetry/client",
            Player,
            json_bytes(json!({"client_version": "1", "device_class": "pc", "samples": [sample()], "player_id": 9})),
            invalid("player_id"),
        ),
        case(
            "server-owned field",
            post(),
            "/v1/npcs/1/move",
            Admin,
            json_bytes(json!({"q": 0, "r": 0, "region_id": 3})),
            invalid("region_id"),
        ),
        // Out-of-range numbers.
        case(
            "negative u32",
            post(),
            "/v1/me/quests/1/progress",
            Player,
            json_bytes(json!({"objective_id": 1, "amount": -1})),
            invalid("amount"),
        ),
        case(
            "u32 overflow",
            post(),
            "/v1/me/quests/1/progress",
            Player,
            json_bytes(json!({"objective_id": 1, "amount": 1u64 << 40})),
            invalid("amount"),
        ),
        case(
            "i64 overflow",
            post(),
            "/v1/quests:batchGet",
            Player,
            &b"{\"ids\": [99999999999999999999999]}"[..],
            invalid("ids"),
        ),
        case(
            "float out of range",
            post(),
            "/v1/telemetry/client",
            Player,
            json_bytes(batch(vec![json!({"frame_time_ms": 1e12})])),
            invalid("frame_time_ms"),
        ),
        case(
            "truth above 1",
            post(),
            "/v1/rumors",
            Admin,
            json_bytes(json!({"text": "x", "origin_npc_id": 4, "region_id": 1, "truth": 7.5})),
            invalid("truth"),
        ),
        case(
            "limit above 100",
            get(),
            "/v1/quests?limit=1000",
            Player,
            Vec::new(),
            invalid("limit"),
        ),
        case(
            "query id not a number",
            get(),
            "/v1/bootstrap?region_id=abc",
            Player,
            Vec::new(),
            invalid("region_id"),
        ),
        case(
            "query id overflow",
            get(),
            "/v1/npcs?region_id=99999999999999999999",
            Player,
            Vec::new(),
            invalid("region_id"),
        ),
        case(
            "unknown query parameter",
            get(),
            "/v1/me/rumors?region=1",
            Player,
            Vec::new(),
            invalid("region"),
        ),
        // Huge strings and arrays within the body limit, over a length cap.
        case(
            "huge string",
            post(),
            "/v1/auth/device",
            Nobody,
            json_bytes(json!({"device_id": huge_string})),
            invalid("device_id"),
        ),
        case(
            "huge string",
            post(),
            "/v1/rumors",
            Admin,
            json_bytes(json!({"text": huge_string, "origin_npc_id": 4, "region_id": 1, "truth": 0.5})),
            invalid("text"),
        ),
        case(
            "huge string",
            post(),
            "/v1/npcs/1/memories",
            Admin,
            json_bytes(json!({"kind": "saw", "text": huge_string, "importance": 0.5})),
            invalid("text"),
        ),
        case(
            "huge array",
            post(),
            "/v1/quests:batchGet",
            Player,
            json_bytes(json!({"ids": vec![1; 10_000]})),
            invalid("ids"),
        ),
        case(
            "huge array",
            post(),
            "/v1/npcs:batchGet",
            Player,
            json_bytes(json!({"ids": vec![1; 10_000]})),
            invalid("ids"),
        ),
        case(
            "huge array",
            post(),
            "/v1/telemetry/client",
            Player,
            json_bytes(batch(vec![sample(); 501])),
            invalid("samples"),
        ),
        // Path ids that are not ids.
        case(
            "path id a word",
            get(),
            "/v1/quests/abc",
            Player,
            Vec::new(),
            invalid("path id"),
        ),
        case(
            "path id negative",
            get(),
            "/v1/npcs/-4",
            Player,
            Vec::new(),
            invalid("path id"),
        ),
        case(
            "path id a fraction",
            get(),
            "/v1/rumors/1.5",
            Player,
            Vec::new(),
            invalid("path id"),
        ),
        case(
            "path id overflow",
            post(),
            "/v1/me/quests/99999999999999999999/progress",
            Player,
            json_bytes(json!({"objective_id": 1})),
            invalid("path id"),
        ),
        case(
            "path id a NUL byte",
            post(),
            "/v1/npcs/%00/talk",
            Player,
            Vec::new(),
            invalid("path id"),
        ),
        case(
            "path id zero",
            get(),
            "/v1/me/npcs/0/disposition",
            Player,
            Vec::new(),
            invalid("path id"),
        ),
        // Oversize bodies.
        case(
            "oversize body",
            post(),
            "/v1/telemetry/client",
            Player,
            vec![b' '; 100 * 1024],
            (413, "payload_too_large", "larger"),
        ),
        case(
            "oversize body",
            post(),
            "/v1/auth/device",
            Nobody,
            vec![b' '; 100 * 1024],
            (413, "payload_too_large", "larger"),
        ),
        // Compressed bodies are refused by name, never inflated.
        case(
            "gzip body",
            post(),
            "/v1/auth/device",
            Nobody,
            gzip(&json_bytes(json!({"device_id": "zipped"}))),
            (415, "unsupported_media_type", "Content-Encoding"),
        )
        .with("content-encoding", "gzip"),
        case(
            "gzip bomb (16 MiB of spaces)",
            post(),
            "/v1/telemetry/client",
            Player,
            bomb,
            (415, "unsupported_media_type", "Content-Encoding"),
        )
        .with("content-encoding", "gzip"),
        case(
            "brotli body",
            post(),
            "/v1/quests",
            Admin,
            json_bytes(json!({})),
            (415, "unsupported_media_type", "Content-Encoding"),
        )
        .with("content-encoding", "br"),
        // Media types.
        case(
            "unsupported content type",
            post(),
            "/v1/rumors",
            Admin,
            &b"<rumor/>"[..],
            (415, "unsupported_media_type", "content type"),
        )
        .with("content-type", "application/xml"),
        // Credentials.
        case(
            "no token",
            get(),
            "/v1/me/quests",
            Nobody,
            Vec::new(),
            (401, "unauthenticated", "token"),
        ),
        case(
            "garbage token",
            get(),
            "/v1/me/quests",
            Nobody,
            Vec::new(),
            (401, "unauthenticated", "token"),
        )
        .with("authorization", "Bearer not.a.token"),
        case(
            "player on an admin route",
            post(),
            "/v1/rumors",
            Player,
            json_bytes(rumor()),
            (403, "permission_denied", "admin"),
        ),
    ];
    // A required query parameter left out.
    cases.push(case(
        "bootstrap without region",
        get(),
        "/v1/bootstrap",
        Player,
        Vec::new(),
        invalid("region_id"),
    ));
    cases
}

async fn bad_input_table(backend: Backend) {
    let Some(app) = spawn_demo_with_generous_limits(backend).await else {
        return;
    };
    let (_, player) = app.sign_in("bad-input").await;
    let mut statuses = Vec::new();
    let mut failures = Vec::new();
    for case in cases() {
        let bearer = match case.who {
            Who::Nobody => None,
            Who::Player => Some(format!("Bearer {player}")),
            Who::Admin => Some(format!("Bearer {ADMIN_TOKEN}")),
        };
        let mut headers: Vec<(&str, &str)> = case.headers.clone();
        if !headers.iter().any(|(name, _)| *name == "content-type") {
            headers.push(("content-type", "application/json"));
        }
        if let Some(bearer) = &bearer
            && !headers.iter().any(|(name, _)| *name == "authorization")
        {
            headers.push(("authorization", bearer));
        }
        let started = Instant::now();
        let response = app.send(case.method.clone(), &case.path, &headers, case.body).await;
        let elapsed = started.elapsed();
        statuses.push((case.what, response.status.as_u16()));
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        let message = body["error"]["message"].as_str().unwrap_or_default();
        let right = response.status.as_u16() == case.status
            && response.header("content-type") == Some("application/json")
            && body["error"]["code"] == case.code
            && message.contains(case.names)
            && elapsed < Duration::from_secs(5);
        if !right {
            failures.push(format!(
                "{} ({} {}): expected {} {} naming {:?}, got {} {:?} in {elapsed:?}: {}",
                case.what,
                case.method,
                case.path,
                case.status,
                case.code,
                case.names,
                response.status,
                response.header("content-type"),
                String::from_utf8_lossy(&response.body)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );

    websocket_cases(&app, &player, &mut statuses).await;

    let server_errors: Vec<_> = statuses.iter().filter(|(_, status)| *status >= 500).collect();
    assert!(server_errors.is_empty(), "no 5xx: {server_errors:?}");
    let ready = app.send(Method::GET, "/ready", &[], Vec::new()).await;
    assert_eq!(ready.status, 200, "{}", String::from_utf8_lossy(&ready.body));
    let metrics = app.send(Method::GET, "/metrics", &[], Vec::new()).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        !text
            .lines()
            .any(|line| line.starts_with("http_server_requests_total") && line.contains("status=\"5")),
        "the gateway counted no 5xx:\n{text}"
    );
    app.finish().await;
}

async fn connect(app: &TestApp, token: &str, protocol: &str) -> Socket {
    let mut request = format!("ws://{}/v1/ws", app.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let welcome = next(&mut socket).await.expect("a welcome");
    assert_eq!(welcome["type"], "welcome");
    socket
}

/// The next envelope, skipping pings; `Err` with the close code on close.
async fn next(socket: &mut Socket) -> Result<Value, Option<CloseCode>> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a frame within 5 s");
        match frame {
            Some(Ok(Message::Text(text))) => return Ok(serde_json::from_str(text.as_str()).unwrap()),
            Some(Ok(Message::Binary(bytes))) => return Ok(rmp_serde::from_slice(&bytes).unwrap()),
            Some(Ok(Message::Close(frame))) => return Err(frame.map(|f| f.code)),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return Err(None),
        }
    }
}

async fn close_code(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        match next(socket).await {
            Ok(_) => continue,
            Err(code) => return code,
        }
    }
}

/// Socket cases: oversize and fragmented frames, garbage, and requests with
/// bad bodies (answered in the envelope, the socket stays open).
async fn websocket_cases(app: &TestApp, player: &str, statuses: &mut Vec<(&'static str, u16)>) {
    // A request envelope with a bad body: a response envelope with the 4xx.
    let mut socket = connect(app, player, "vdm.v1.json").await;
    let requests = [
        (
            json!({"id": "r1", "type": "request", "method": "POST", "path": "/v1/me/quests/1/progress", "body": {"objective_id": "one"}}),
            400,
            "objective_id",
        ),
        (
            json!({"id": "r2", "type": "request", "method": "POST", "path": "/v1/telemetry/client", "body": batch(vec![json!({"frame_time_ms": -5})])}),
            400,
            "frame_time_ms",
        ),
        (
            json!({"id": "r3", "type": "request", "method": "GET", "path": "/v1/quests/abc"}),
            400,
            "path id",
        ),
        (
            json!({"id": "r4", "type": "request", "method": "POST", "path": "/v1/rumors", "body": rumor()}),
            403,
            "admin",
        ),
        (
            json!({"id": "r5", "type": "request", "method": "TRACE", "path": "/v1/quests"}),
            400,
            "method",
        ),
        (
            json!({"id": "r6", "type": "request", "method": "GET", "path": "http://169.254.169.254/latest"}),
            400,
            "path",
        ),
        (json!({"id": "r7", "type": "teleport"}), 400, "unknown message type"),
        (
            json!({"id": "r8", "type": "subscribe", "regions": [-1]}),
            400,
            "regions",
        ),
    ];
    for (request, status, names) in requests {
        let id = request["id"].clone();
        socket.send(Message::Text(request.to_string().into())).await.unwrap();
        let reply = next(&mut socket).await.expect("a reply, not a close");
        assert_eq!(reply["type"], "response", "{reply}");
        assert_eq!(reply["id"], id, "{reply}");
        assert_eq!(reply["status"], status, "{reply}");
        let message = reply["body"]["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{reply} should name {names:?}");
        statuses.push(("socket request", u16::try_from(status).unwrap()));
    }
    // Non-JSON text closes with 1007, naming the problem.
    socket.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Invalid));

    // Deeply nested MessagePack on a binary socket: 1007, not a stack overflow.
    let mut socket = connect(app, player, "vdm.v1.msgpack").await;
    let mut deep = vec![
        0x82, 0xa4, b't', b'y', b'p', b'e', 0xa4, b'p', b'i', b'n', b'g', 0xa4, b'b', b'o', b'd', b'y',
    ];
    deep.extend(vec![0x91u8; 60_000]);
    socket.send(Message::Binary(deep.into())).await.unwrap();
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Invalid));

    // Deeply nested JSON text within the frame limit: 1007.
    let mut socket = connect(app, player, "vdm.v1.json").await;
    let deep = format!(r#"{{"type": "ping", "body": {}}}"#, "[".repeat(60_000));
    socket.send(Message::Text(deep.into())).await.unwrap();
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Invalid));

    // One frame over the limit (64 KiB): 1009.
    let mut socket = connect(app, player, "vdm.v1.json").await;
    let huge = json!({"id": "h", "type": "ping", "pad": "x".repeat(200 * 1024)});
    let _ = socket.send(Message::Text(huge.to_string().into())).await;
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Size));

    // A fragmented message, each fragment small, the whole over the limit:
    // 1009 before it is all buffered.
    let mut socket = connect(app, player, "vdm.v1.json").await;
    let fragment = vec![b'x'; 16 * 1024];
    let mut sent = 0;
    let mut opcode = OpCode::Data(Data::Text);
    while sent < 256 * 1024 {
        let frame = Frame::message(fragment.clone(), opcode, false);
        opcode = OpCode::Data(Data::Continue);
        if socket.send(Message::Frame(frame)).await.is_err() {
            break;
        }
        sent += fragment.len();
    }
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Size));
}

async fn header_floods_and_slow_clients_are_cut_off(backend: Backend) {
    let Some(app) = spawn_app_with(backend, Options::default()).await else {
        return;
    };
    // Hundreds of headers: 431, at once.
    let mut flood = String::from("GET /health HTTP/1.1\r\nhost: x\r\n");
    for i in 0..500 {
        flood.push_str(&format!("x-flood-{i}: {i}\r\n"));
    }
    flood.push_str("\r\n");
    assert_eq!(
        raw_status(&app, flood.as_bytes()).await,
        Some(431),
        "header count flood"
    );

    // One huge header (256 KiB): 431, at once.
    let huge = format!(
        "GET /health HTTP/1.1\r\nhost: x\r\nx-huge: {}\r\n\r\n",
        "a".repeat(256 * 1024)
    );
    assert_eq!(raw_status(&app, huge.as_bytes()).await, Some(431), "huge header");

    // Slowloris: a header byte a second. The test gateway's header read
    // timeout is 2 s; the connection must be gone well before 8 s.
    let mut slow = TcpStream::connect(app.addr).await.unwrap();
    let started = Instant::now();
    let head = b"GET /health HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    let mut cut_off = false;
    for byte in head.iter() {
        if slow.write_all(&[*byte]).await.is_err() {
            cut_off = true;
            break;
        }
        let mut buf = [0u8; 1024];
        match tokio::time::timeout(Duration::from_secs(1), slow.read(&mut buf)).await {
            // Closed (0 bytes or reset), or an error status before closing.
            Ok(Ok(0)) | Ok(Err(_)) => {
                cut_off = true;
                break;
            }
            Ok(Ok(_)) => {}
            Err(_) => {}
        }
        if started.elapsed() > Duration::from_secs(8) {
            break;
        }
    }
    assert!(cut_off, "a slowloris client is cut off (after {:?})", started.elapsed());
    assert!(started.elapsed() < Duration::from_secs(8), "{:?}", started.elapsed());

    // A client that connects and sends nothing is cut off too.
    let mut silent = TcpStream::connect(app.addr).await.unwrap();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(8), silent.read(&mut buf)).await;
    assert!(
        matches!(read, Ok(Ok(0)) | Ok(Err(_))),
        "a silent connection is closed: {read:?}"
    );

    // And the gateway is fine.
    let ready = app.send(Method::GET, "/ready", &[], Vec::new()).await;
    assert_eq!(ready.status, 200);
    app.finish().await;
}

/// Sends raw bytes on a fresh connection; the status of the answer, within 5 s.
async fn raw_status(app: &TestApp, request: &[u8]) -> Option<u16> {
    let mut stream = TcpStream::connect(app.addr).await.unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request).await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
        .await
        .expect("answered within 5 s");
    let text = String::from_utf8_lossy(&answer);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}
