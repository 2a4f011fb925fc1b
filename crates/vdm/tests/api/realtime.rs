//! The `/v1/ws` socket through the gateway: requests and their replies,
//! pushes in `seq` order, MessagePack, auth, bad frames, heartbeats, resume,
//! and a push crossing gateway replicas.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, generous_rate_limits, spawn_app, spawn_app_with, wolves};
use vdm_kit::backend_tests;

pub(crate) type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

backend_tests!(
    requests_replies_and_pushes_in_order,
    dependent_requests_sent_back_to_back_run_in_order,
    messagepack_socket_carries_the_same_conversation,
    resume_replays_exactly_the_missed_pushes,
    a_push_reaches_a_socket_on_another_gateway,
    resume_continues_on_another_gateway,
    region_pushes_reach_their_subscribers_only,
    rumors_push_to_the_listener_and_to_the_region,
);

pub(crate) async fn connect(
    app: &TestApp,
    query: &str,
    token: Option<&str>,
    protocol: &str,
) -> Result<Socket, tungstenite::Error> {
    let mut request = format!("ws://{}/v1/ws{query}", app.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", protocol.parse().unwrap());
    if let Some(token) = token {
        request
            .headers_mut()
            .insert("authorization", format!("Bearer {token}").parse().unwrap());
    }
    tokio_tungstenite::connect_async(request)
        .await
        .map(|(socket, _)| socket)
}

/// The next envelope (JSON text or MessagePack binary), skipping pings.
pub(crate) async fn next(socket: &mut Socket) -> Value {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("a message within 5 s");
        match frame.expect("socket open").expect("frame") {
            Message::Text(text) => return serde_json::from_str(text.as_str()).unwrap(),
            Message::Binary(bytes) => return rmp_serde::from_slice(&bytes).unwrap(),
            Message::Close(frame) => panic!("closed: {frame:?}"),
            _ => continue,
        }
    }
}

/// Reads until the close frame; returns its code.
pub(crate) async fn close_code(socket: &mut Socket) -> Option<CloseCode> {
    loop {
        match tokio::time::timeout(Duration::from_secs(5), socket.next())
            .await
            .expect("closes within 5 s")
        {
            Some(Ok(Message::Close(frame))) => return frame.map(|f| f.code),
            Some(Ok(_)) => continue,
            Some(Err(_)) | None => return None,
        }
    }
}

pub(crate) async fn send(socket: &mut Socket, value: Value) {
    socket.send(Message::Text(value.to_string().into())).await.unwrap();
}

/// Collects messages until the response with `id` and `pushes` pushes came.
pub(crate) async fn collect(socket: &mut Socket, id: &str, pushes: usize) -> (Value, Vec<Value>) {
    let (mut response, mut events) = (None, Vec::new());
    while response.is_none() || events.len() < pushes {
        let message = next(socket).await;
        match message["type"].as_str() {
            Some("response") if message["id"] == id => response = Some(message),
            Some("event") => events.push(message),
            _ => panic!("unexpected {message}"),
        }
    }
    (response.unwrap(), events)
}

async fn requests_replies_and_pushes_in_order(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let quest = app.create_quest(&wolves()).await;
    let id = quest["id"].as_i64().unwrap();
    let objective = quest["objectives"][0]["id"].as_i64().unwrap();
    let (player_id, token) = app.sign_in("socket-player").await;
    let mut socket = connect(&app, "", Some(&token), "vdm.v1.json").await.unwrap();
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["type"], "welcome");
    assert_eq!(welcome["player_id"], player_id);
    assert_eq!(welcome["resumed"], false);
    assert!(welcome["contract"].as_str().unwrap().starts_with("v1-"));

    send(
        &mut socket,
        json!({"id": "c1", "type": "request", "method": "POST", "path": format!("/v1/quests/{id}/accept")}),
    )
    .await;
    let (reply, pushes) = collect(&mut socket, "c1", 1).await;
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["body"]["status"], "active", "the same body REST answers");
    assert_eq!(pushes[0]["event"], "quest.updated");
    assert_eq!(pushes[0]["seq"], 1);
    assert_eq!(pushes[0]["payload"]["quest_id"], id);

    for (n, amount) in [(2, 2), (3, 3)] {
        let body = json!({"objective_id": objective, "amount": amount});
        send(&mut socket, json!({"id": format!("p{n}"), "type": "request", "method": "POST", "path": format!("/v1/me/quests/{id}/progress"), "body": body})).await;
        let (reply, pushes) = collect(&mut socket, &format!("p{n}"), 1).await;
        assert_eq!(reply["status"], 200);
        assert_eq!(pushes[0]["seq"], n, "pushes arrive in seq order without gaps");
    }

    // Errors come back with the REST status and error body.
    send(
        &mut socket,
        json!({"id": "e1", "type": "request", "method": "GET", "path": "/v1/quests/999999"}),
    )
    .await;
    let (reply, _) = collect(&mut socket, "e1", 0).await;
    assert_eq!(reply["status"], 404);
    assert_eq!(reply["body"]["error"]["code"], "not_found");
    send(
        &mut socket,
        json!({"id": "e2", "type": "request", "method": "POST", "path": "/v1/quests", "body": wolves()}),
    )
    .await;
    let (reply, _) = collect(&mut socket, "e2", 0).await;
    assert_eq!(
        reply["status"], 403,
        "a player cannot create quests over the socket either"
    );
    send(&mut socket, json!({"id": "e3", "type": "teleport"})).await;
    let (reply, _) = collect(&mut socket, "e3", 0).await;
    assert_eq!(reply["status"], 400);
    send(&mut socket, json!({"id": "s1", "type": "subscribe", "regions": [2, 5]})).await;
    let (reply, _) = collect(&mut socket, "s1", 0).await;
    assert_eq!(reply["body"]["regions"], json!([2, 5]));
    send(&mut socket, json!({"id": "s2", "type": "unsubscribe", "regions": [2]})).await;
    let (reply, _) = collect(&mut socket, "s2", 0).await;
    assert_eq!(reply["body"]["regions"], json!([5]));

    // Garbage ends the socket with "invalid payload", never a panic.
    socket.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Invalid));
    app.finish().await;
}

/// An accept and progress on the same quest sent at once, without waiting
/// for the answers, run in the order they were sent.
async fn dependent_requests_sent_back_to_back_run_in_order(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let quest = app.create_quest(&wolves()).await;
    let id = quest["id"].as_i64().unwrap();
    let objective = quest["objectives"][0]["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("hasty-player").await;
    let mut socket = connect(&app, "", Some(&token), "vdm.v1.json").await.unwrap();
    assert_eq!(next(&mut socket).await["type"], "welcome");

    let progress = json!({"objective_id": objective, "amount": 1});
    let mut sent =
        vec![json!({"id": "r0", "type": "request", "method": "POST", "path": format!("/v1/quests/{id}/accept")})];
    for n in 1..=3 {
        sent.push(json!({"id": format!("r{n}"), "type": "request", "method": "POST", "path": format!("/v1/me/quests/{id}/progress"), "body": progress}));
    }
    sent.push(json!({"id": "r4", "type": "request", "method": "GET", "path": "/v1/me/quests"}));
    for request in &sent {
        send(&mut socket, request.clone()).await;
    }
    let mut replies = Vec::new();
    while replies.len() < sent.len() {
        let message = next(&mut socket).await;
        if message["type"] == "response" {
            replies.push(message);
        }
    }
    let ids: Vec<&str> = replies.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["r0", "r1", "r2", "r3", "r4"], "answered in the order sent");
    for reply in &replies {
        assert_eq!(reply["status"], 200, "{reply}");
    }
    assert_eq!(replies[3]["body"]["objectives"][0]["progress"], 3);
    assert_eq!(replies[4]["body"]["items"][0]["quest_id"], id);
    assert_eq!(replies[4]["body"]["items"][0]["objectives"][0]["progress"], 3);
    app.finish().await;
}

async fn messagepack_socket_carries_the_same_conversation(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("packed-socket").await;
    let mut socket = connect(&app, "", Some(&token), "vdm.v1.msgpack").await.unwrap();
    let welcome = socket.next().await.unwrap().unwrap();
    assert!(
        matches!(welcome, Message::Binary(_)),
        "binary frames on a msgpack socket"
    );
    let request = json!({"id": "m1", "type": "request", "method": "POST", "path": format!("/v1/quests/{id}/accept")});
    socket
        .send(Message::Binary(rmp_serde::to_vec_named(&request).unwrap().into()))
        .await
        .unwrap();
    let (reply, pushes) = collect(&mut socket, "m1", 1).await;
    assert_eq!(reply["status"], 200);
    assert_eq!(reply["body"]["quest_id"], id);
    assert_eq!(pushes[0]["seq"], 1);
    app.finish().await;
}

async fn resume_replays_exactly_the_missed_pushes(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let quest = app.create_quest(&wolves()).await;
    let id = quest["id"].as_i64().unwrap();
    let objective = quest["objectives"][0]["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("flaky-network").await;
    let mut socket = connect(&app, "", Some(&token), "vdm.v1.json").await.unwrap();
    let resume_token = next(&mut socket).await["resume_token"].as_str().unwrap().to_owned();
    send(
        &mut socket,
        json!({"id": "a", "type": "request", "method": "POST", "path": format!("/v1/quests/{id}/accept")}),
    )
    .await;
    let (_, pushes) = collect(&mut socket, "a", 1).await;
    assert_eq!(pushes[0]["seq"], 1);
    drop(socket);

    // While the socket is gone, two more updates happen (through REST).
    for amount in [1, 2] {
        let progress = app
            .post_json(
                &format!("/v1/me/quests/{id}/progress"),
                Some(&token),
                &json!({"objective_id": objective, "amount": amount}),
            )
            .await;
        assert_eq!(progress.status, 200);
    }
    let query = format!("?resume={resume_token}&last_seq=1");
    let mut socket = connect(&app, &query, Some(&token), "vdm.v1.json").await.unwrap();
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
    // Pushes travel the event bus asynchronously: the last one may still be
    // on its way, arriving live instead of replayed. Either way: 2 then 3.
    assert!(matches!(welcome["last_seq"].as_u64(), Some(2 | 3)), "{welcome}");
    let (second, third) = (next(&mut socket).await, next(&mut socket).await);
    assert_eq!((second["seq"].as_u64(), third["seq"].as_u64()), (Some(2), Some(3)));
    assert_eq!(second["payload"]["objectives"][0]["progress"], 1);
    assert_eq!(third["payload"]["objectives"][0]["progress"], 3);

    // A resume token is the player's own: another player starts fresh.
    let (_, other) = app.sign_in("someone-else").await;
    let mut stranger = connect(&app, &query, Some(&other), "vdm.v1.json").await.unwrap();
    let welcome = next(&mut stranger).await;
    assert_eq!(welcome["resumed"], false);
    assert_ne!(welcome["resume_token"], resume_token.as_str());
    app.finish().await;
}

async fn a_push_reaches_a_socket_on_another_gateway(backend: Backend) {
    let Some(app) = spawn_app(backend).await else { return };
    let second = app.spawn_second_gateway().await;
    let id = app.create_quest(&wolves()).await["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("two-gateways").await;
    let mut socket = connect(&second, "", Some(&token), "vdm.v1.json").await.unwrap();
    next(&mut socket).await;
    // The write goes through the first gateway; the socket is on the second.
    let accepted = app
        .post_json(&format!("/v1/quests/{id}/accept"), Some(&token), &json!({}))
        .await;
    assert_eq!(accepted.status, 200);
    let push = next(&mut socket).await;
    assert_eq!(push["event"], "quest.updated");
    assert_eq!(push["payload"]["quest_id"], id);
    second.finish().await;
    app.finish().await;
}

/// A session held by one gateway resumes on another that shares Redis:
/// the pushes missed while away (the player's own and its region's,
/// including one in flight when the socket dropped) are replayed in order,
/// and live pushes continue the same `seq` exactly once. On the embedded
/// back end sessions are per gateway, so there it resumes on the same one.
async fn resume_continues_on_another_gateway(backend: Backend) {
    let options = Options {
        seed_demo: true,
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    let second = app.spawn_second_gateway().await;
    let other = if backend == Backend::External { &second } else { &app };
    let quest = app.create_quest(&wolves()).await;
    let id = quest["id"].as_i64().unwrap();
    let objective = quest["objectives"][0]["id"].as_i64().unwrap();
    let (_, token) = app.sign_in("roaming-player").await;
    let mut socket = connect(&app, "", Some(&token), "vdm.v1.json").await.unwrap();
    let resume_token = next(&mut socket).await["resume_token"].as_str().unwrap().to_owned();
    send(&mut socket, json!({"id": "s", "type": "subscribe", "regions": [2]})).await;
    collect(&mut socket, "s", 0).await;
    let accept = json!({"id": "a", "type": "request", "method": "POST", "path": format!("/v1/quests/{id}/accept")});
    send(&mut socket, accept).await;
    let (_, pushes) = collect(&mut socket, "a", 1).await;
    assert_eq!(pushes[0]["seq"], 1);
    // Seq 2 reaches the socket, but the client loses it with the network.
    let storm = json!({"kind": "storm", "text": "Hail.", "region_ids": [2]});
    let posted = app.post_json("/v1/world/events", Some(ADMIN_TOKEN), &storm).await;
    assert_eq!(posted.status, 201);
    assert_eq!(next(&mut socket).await["seq"], 2);
    drop(socket);

    // While away: own progress twice, an event in its region, one elsewhere.
    for amount in [1, 2] {
        let body = json!({"objective_id": objective, "amount": amount});
        let progress = app
            .post_json(&format!("/v1/me/quests/{id}/progress"), Some(&token), &body)
            .await;
        assert_eq!(progress.status, 200);
    }
    for (region, text) in [(3, "Elsewhere."), (2, "Fog.")] {
        let event = json!({"kind": "weather", "text": text, "region_ids": [region]});
        let posted = app.post_json("/v1/world/events", Some(ADMIN_TOKEN), &event).await;
        assert_eq!(posted.status, 201);
    }
    // Let the bus carry the last write everywhere before resuming, so the
    // replay (not live delivery) has it.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let query = format!("?resume={resume_token}&last_seq=1");
    let mut socket = connect(other, &query, Some(&token), "vdm.v1.json").await.unwrap();
    let welcome = next(&mut socket).await;
    assert_eq!(welcome["resumed"], true, "{welcome}");
    assert_eq!(welcome["resume_token"], resume_token.as_str());
    assert_eq!(welcome["last_seq"], 5, "{welcome}");
    let mut replayed = Vec::new();
    for _ in 0..4 {
        replayed.push(next(&mut socket).await);
    }
    let seqs: Vec<u64> = replayed.iter().map(|p| p["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, vec![2, 3, 4, 5]);
    assert_eq!(replayed[0]["payload"]["text"], "Hail.");
    assert_eq!(replayed[1]["payload"]["objectives"][0]["progress"], 1);
    assert_eq!(replayed[2]["payload"]["objectives"][0]["progress"], 3);
    assert_eq!(replayed[3]["payload"]["text"], "Fog.");

    // Live pushes continue the sequence, once, with the region kept.
    let rain = json!({"kind": "weather", "text": "Rain.", "region_ids": [2]});
    let posted = app.post_json("/v1/world/events", Some(ADMIN_TOKEN), &rain).await;
    assert_eq!(posted.status, 201);
    let live = next(&mut socket).await;
    assert_eq!(
        (live["seq"].as_u64(), live["payload"]["text"].as_str()),
        (Some(6), Some("Rain."))
    );
    send(&mut socket, json!({"id": "p", "type": "ping"})).await;
    let (pong, none) = collect(&mut socket, "p", 0).await;
    assert_eq!(
        (pong["status"].as_u64(), none.len()),
        (Some(200), 0),
        "no duplicate push"
    );

    // The same token from a client that claims pushes it never had: fresh.
    drop(socket);
    let query = format!("?resume={resume_token}&last_seq=99");
    let mut socket = connect(other, &query, Some(&token), "vdm.v1.json").await.unwrap();
    assert_eq!(next(&mut socket).await["resumed"], false);
    second.finish().await;
    app.finish().await;
}

/// A client that stops reading is cut off instead of holding its task and
/// its socket forever (its queue fills, a frame waits a heartbeat interval,
/// or its heartbeats go unanswered: which one comes first depends on the
/// kernel's buffers; `session::tests` pins the first two down), and a
/// reading client subscribed to the same region gets every push meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_off_without_stalling_others() {
    let options = Options {
        seed_demo: true,
        rate_limits: Some(generous_rate_limits()),
        ..Options::default()
    };
    let app = spawn_app_with(Backend::Embedded, options).await.unwrap();
    let (_, reader) = app.sign_in("reads-everything").await;
    let (_, stalled) = app.sign_in("stops-reading").await;
    let mut fast = connect(&app, "", Some(&reader), "vdm.v1.json").await.unwrap();
    // A small receive window, so the server's writes back up quickly.
    let tcp = tokio::net::TcpSocket::new_v4().unwrap();
    tcp.set_recv_buffer_size(2048).unwrap();
    let stream = tcp.connect(app.addr).await.unwrap();
    let mut request = format!("ws://{}/v1/ws", app.addr).into_client_request().unwrap();
    request
        .headers_mut()
        .insert("authorization", format!("Bearer {stalled}").parse().unwrap());
    let (mut slow, _) = tokio_tungstenite::client_async(request, MaybeTlsStream::Plain(stream))
        .await
        .unwrap();
    for socket in [&mut fast, &mut slow] {
        next(socket).await;
        send(socket, json!({"id": "s", "type": "subscribe", "regions": [2]})).await;
        collect(socket, "s", 0).await;
    }

    // The slow client reads nothing from here on.
    let pushes = 150;
    let text = "a long storm report ".repeat(95);
    let reading = tokio::spawn(async move {
        let mut seqs = Vec::new();
        while seqs.len() < pushes {
            seqs.push(next(&mut fast).await["seq"].as_u64().unwrap());
        }
        seqs
    });
    for n in 0..pushes {
        let event = json!({"kind": "storm", "text": format!("{n} {text}"), "region_ids": [2]});
        let posted = app.post_json("/v1/world/events", Some(ADMIN_TOKEN), &event).await;
        assert_eq!(posted.status, 201);
    }
    let seqs = tokio::time::timeout(Duration::from_secs(10), reading)
        .await
        .expect("the reading client got every push")
        .unwrap();
    assert_eq!(seqs, (1..=pushes as u64).collect::<Vec<_>>());

    // The stalled socket was cut off: its player may open all four sockets
    // again (the cap counts open sockets).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut open = Vec::new();
        for _ in 0..4 {
            if let Ok(socket) = connect(&app, "", Some(&stalled), "vdm.v1.json").await {
                open.push(socket);
            }
        }
        if open.len() == 4 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the stalled socket is still open");
        drop(open);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    drop(slow);
    app.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_refuse_bad_credentials_frames_and_contracts() {
    let app = spawn_app(Backend::Embedded).await.unwrap();
    let (_, token) = app.sign_in("careful").await;
    let refused = |result: Result<Socket, tungstenite::Error>| match result {
        Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
        Err(other) => panic!("expected an HTTP refusal, got {other}"),
        Ok(_) => panic!("expected a refusal"),
    };
    assert_eq!(refused(connect(&app, "", None, "vdm.v1.json").await), 401);
    assert_eq!(
        refused(connect(&app, "", Some("tampered.token.value"), "vdm.v1.json").await),
        401
    );
    assert_eq!(
        refused(connect(&app, "", Some(crate::helpers::ADMIN_TOKEN), "vdm.v1.json").await),
        403
    );
    assert_eq!(
        refused(connect(&app, "?last_seq=x", Some(&token), "vdm.v1.json").await),
        400
    );
    // A session token past its expiry is refused at connect.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let claims = crate::auth::claims(1, now - 7200, now - 3600);
    let expired = crate::auth::sign(claims, crate::helpers::JWT_SECRET);
    assert_eq!(refused(connect(&app, "", Some(&expired), "vdm.v1.json").await), 401);

    // WebGL clients pass the token as a query parameter.
    let mut socket = connect(&app, &format!("?token={token}"), None, "vdm.v1.json")
        .await
        .unwrap();
    assert_eq!(next(&mut socket).await["type"], "welcome");

    // A frame over the limit closes the socket with "message too big".
    let huge = json!({"id": "h", "type": "ping", "pad": "x".repeat(100 * 1024)});
    let _ = socket.send(Message::Text(huge.to_string().into())).await;
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Size));

    // A client built against another contract is told so at connect.
    let mut socket = connect(&app, "?contract=v1-0000000000000000", Some(&token), "vdm.v1.json")
        .await
        .unwrap();
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Library(4001)));

    // A client that stops answering heartbeats (500 ms here) is closed.
    let mut socket = connect(&app, "", Some(&token), "vdm.v1.json").await.unwrap();
    next(&mut socket).await;
    tokio::time::sleep(Duration::from_millis(1600)).await;
    assert_eq!(close_code(&mut socket).await, Some(CloseCode::Library(4002)));
    app.finish().await;
}

async fn region_pushes_reach_their_subscribers_only(backend: Backend) {
    let options = Options {
        seed_demo: true,
        ..Options::default()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    let (_, in_two) = app.sign_in("lives-in-region-2").await;
    let (_, in_three) = app.sign_in("lives-in-region-3").await;
    let mut two = connect(&app, "", Some(&in_two), "vdm.v1.json").await.unwrap();
    let mut three = connect(&app, "", Some(&in_three), "vdm.v1.json").await.unwrap();
    for (socket, region) in [(&mut two, 2), (&mut three, 3)] {
        next(socket).await;
        send(socket, json!({"id": "s", "type": "subscribe", "regions": [region]})).await;
        collect(socket, "s", 0).await;
    }

    let storm = json!({"kind": "storm", "text": "A storm rolls over the lake.", "region_ids": [2]});
    assert_eq!(
        app.post_json("/v1/world/events", Some(ADMIN_TOKEN), &storm)
            .await
            .status,
        201
    );
    let push = next(&mut two).await;
    assert_eq!(
        (push["event"].as_str(), push["seq"].as_u64()),
        (Some("world.event"), Some(1))
    );
    assert_eq!(push["payload"]["text"], "A storm rolls over the lake.");

    // NPC 1 walks from region 1 into region 2: region 2's subscribers see it.
    let moved = app
        .post_json("/v1/npcs/1/move", Some(ADMIN_TOKEN), &json!({"q": 6, "r": -4}))
        .await;
    assert_eq!(moved.status, 200, "{}", String::from_utf8_lossy(&moved.body));
    let push = next(&mut two).await;
    assert_eq!(push["event"], "npc.moved");
    assert_eq!(push["seq"], 2);
    assert_eq!(
        (
            push["payload"]["npc_id"].as_i64(),
            push["payload"]["region_id"].as_i64()
        ),
        (Some(1), Some(2))
    );

    // Region 3 got neither: its first push is the one for region 3.
    let fair = json!({"kind": "festival", "text": "Lanterns on the quay.", "region_ids": [3]});
    assert_eq!(
        app.post_json("/v1/world/events", Some(ADMIN_TOKEN), &fair).await.status,
        201
    );
    let push = next(&mut three).await;
    assert_eq!(
        (push["seq"].as_u64(), push["payload"]["text"].as_str()),
        (Some(1), Some("Lanterns on the quay."))
    );
    app.finish().await;
}

async fn rumors_push_to_the_listener_and_to_the_region(backend: Backend) {
    let Some(app) = crate::helpers::spawn_demo(backend).await else {
        return;
    };
    let (_, token) = app.sign_in("rumor-listener").await;
    let mut socket = connect(&app, "", Some(&token), "vdm.v1.json").await.unwrap();
    assert_eq!(next(&mut socket).await["type"], "welcome");
    send(&mut socket, json!({"id": "s1", "type": "subscribe", "regions": [1]})).await;
    collect(&mut socket, "s1", 0).await;

    // Talking to Tobin (NPC 4) over the socket: the reply, and a personal push.
    send(
        &mut socket,
        json!({"id": "t1", "type": "request", "method": "POST", "path": "/v1/npcs/4/talk", "body": {}}),
    )
    .await;
    let (reply, pushes) = collect(&mut socket, "t1", 1).await;
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(pushes[0]["event"], "rumor.heard", "{pushes:?}");
    assert_eq!(pushes[0]["payload"]["rumor_id"], reply["body"]["rumor"]["rumor_id"]);
    assert_eq!(pushes[0]["payload"]["text"], reply["body"]["rumor"]["text"]);
    assert_eq!(pushes[0]["payload"]["npc_id"], 4);

    // A tick that spreads something in region 1 is pushed to its subscribers.
    let mut spread = 0;
    for seed in 1..=10 {
        let tick = app
            .post_json(
                "/v1/rumors:tick",
                Some(ADMIN_TOKEN),
                &json!({"region_id": 1, "seed": seed}),
            )
            .await
            .json();
        spread = tick["tellings"].as_u64().unwrap();
        if spread > 0 {
            break;
        }
    }
    assert!(spread > 0, "ten ticks spread nothing");
    let push = next(&mut socket).await;
    assert_eq!(push["event"], "rumor.spread", "{push}");
    assert_eq!(push["payload"], json!({"region_id": 1, "tellings": spread}));
    app.finish().await;
}
