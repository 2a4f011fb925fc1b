//! One socket: the welcome (and replay on resume), then a loop over frames
//! in, pushes and replies out, heartbeats, and the reasons to close.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::{Sink, SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::mpsc;
use tower::ServiceExt;
use vdm_kit::ErrorCode;
use vdm_kit::shutdown::CancellationToken;
use vdm_kit::shutdown::WaitForCancellationFuture;

use super::envelope::{Incoming, Outbound, Outgoing, Wire, decode};
use super::hub::{self, Out};
use super::{ConnectQuery, Realtime, close};
use crate::error::ErrorBody;

/// How long a closing socket waits for the client's close frame.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// What an upgraded socket starts with.
pub struct Start {
    /// The authenticated player.
    pub player_id: i64,
    /// The session the token belongs to (the socket closes if it is revoked).
    pub session: crate::auth::Session,
    /// The replica's revocations.
    pub revocations: Arc<crate::auth::sessions::Revocations>,
    /// The client's address: requests sent over the socket carry it, so
    /// limits keyed on the address see the real client.
    pub peer: Option<std::net::SocketAddr>,
    /// The session token, sent on every dispatched request.
    pub token: String,
    /// The socket's encoding.
    pub format: Wire,
    /// The connect parameters.
    pub query: ConnectQuery,
    /// Shared realtime state.
    pub realtime: Arc<Realtime>,
    /// Cancelled when the gateway shuts down.
    pub shutdown: CancellationToken,
}

/// Runs a socket until it closes.
pub async fn run(socket: WebSocket, start: Start) {
    let Start {
        player_id,
        session,
        revocations,
        peer,
        token,
        format,
        query,
        realtime,
        shutdown,
    } = start;
    let (mut sink, mut stream) = socket.split();
    let config = realtime.config.clone();

    if let Some(contract) = &query.contract
        && *contract != realtime.contract
    {
        let reason = format!("incompatible contract: server {}, client {contract}", realtime.contract);
        let close = close_message(close::INCOMPATIBLE_CONTRACT, &reason);
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await;
        return;
    }

    // The continuation of the session the client names, if it can be
    // resumed, else a new one. The hub attaches the socket so that every
    // push after the replay arrives live, exactly once.
    let (out_tx, mut outs) = mpsc::channel::<Out>(config.queue);
    let kill = CancellationToken::new();
    let mut continued = None;
    if let Some(resume_token) = &query.resume {
        let last_seq = query.last_seq.unwrap_or(0);
        // Boxed, like `open` and `handle`: a socket's task keeps the size of
        // its largest await for its whole life.
        let resume = realtime.hub.resume(
            &realtime.bus,
            player_id,
            resume_token,
            last_seq,
            out_tx.clone(),
            kill.clone(),
        );
        match Box::pin(resume).await {
            Ok(attached) => {
                metrics::counter!("vdm_ws_resumes_total", "result" => "ok").increment(1);
                tracing::info!(
                    player.id = player_id,
                    last_seq,
                    replayed = attached.replay.len(),
                    "session resumed"
                );
                continued = Some(attached);
            }
            Err(refused) => {
                tracing::info!(
                    player.id = player_id,
                    ?refused,
                    "resume refused; starting a new session"
                );
                metrics::counter!("vdm_ws_resumes_total", "result" => refused.label()).increment(1);
            }
        }
    }
    let was_resumed = continued.is_some();
    let attached = match continued {
        Some(attached) => attached,
        None => match realtime.hub.open(player_id, out_tx.clone(), kill.clone()) {
            Ok(attached) => attached,
            Err(err) => {
                tracing::error!(error = %err, "cannot open a session");
                let close = close_message(close::INTERNAL_ERROR, "cannot open a session; retry");
                let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close)).await;
                return;
            }
        },
    };
    // The replay is consumed here: a resumed socket does not keep it.
    let hub::Attached {
        id: conn,
        token: resume_token,
        seq: last_seq,
        replay,
    } = attached;
    let welcome = Outgoing::Welcome {
        resume_token,
        player_id,
        contract: realtime.contract.clone(),
        heartbeat_ms: u64::try_from(config.heartbeat.as_millis()).unwrap_or(u64::MAX),
        resumed: was_resumed,
        last_seq,
    };
    let replay = replay.into_iter().filter_map(|(seq, outbound)| outbound.envelope(seq));
    for message in std::iter::once(welcome).chain(replay) {
        if let Some(frame) = message.encode(format)
            && !matches!(
                tokio::time::timeout(config.heartbeat, sink.send(frame)).await,
                Ok(Ok(()))
            )
        {
            realtime.hub.detach(conn);
            return;
        }
    }

    let mut requests = Requests::new(config.max_in_flight);
    let mut heartbeat = tokio::time::interval(config.heartbeat);
    heartbeat.tick().await;
    let mut last_heard = Instant::now();
    // Registered once, not once per message: every socket waits on the one
    // shutdown token, and re-registering there on each push costs a lock.
    let killed = kill.cancelled();
    let stopping = shutdown.cancelled();
    tokio::pin!(killed, stopping);
    let mut revoked = revocations.watch();
    tracing::info!(player.id = player_id, resumed = was_resumed, "socket opened");

    let closing: Option<(u16, String)> = loop {
        tokio::select! {
            frame = stream.next() => {
                let message = match frame {
                    None => break None,
                    Some(Err(err)) => break read_failure(err),
                    Some(Ok(message)) => message,
                };
                last_heard = Instant::now();
                if let Message::Close(_) = message {
                    break None;
                }
                match decode(&message) {
                    Err(problem) => break Some((close::INVALID_PAYLOAD, problem)),
                    Ok(None) => {}
                    Ok(Some(incoming)) => {
                        metrics::counter!("vdm_ws_messages_total", "direction" => "in").increment(1);
                        let ctx = Ctx { realtime: &realtime, conn, token: &token, peer, requests: &mut requests, replies: &out_tx };
                        // Boxed: the loop's state stays small for idle sockets.
                        if let Some(reply) = Box::pin(handle(ctx, incoming)).await
                            && let Some(frame) = reply.encode(format)
                            && let Err(closing) = write(&mut sink, frame, killed.as_mut(), config.heartbeat).await
                        {
                            break closing;
                        }
                    }
                }
            }
            Some(out) = outs.recv() => {
                let frame = match out {
                    Out::Push(seq, event) => {
                        metrics::counter!("vdm_ws_messages_total", "direction" => "out").increment(1);
                        push_frame(seq, &event, format)
                    }
                    Out::Reply(reply) => reply.encode(format),
                };
                if let Some(frame) = frame
                    && let Err(closing) = write(&mut sink, frame, killed.as_mut(), config.heartbeat).await
                {
                    break closing;
                }
            }
            _ = heartbeat.tick() => {
                if last_heard.elapsed() > config.heartbeat * 2 {
                    break Some((close::HEARTBEAT_TIMEOUT, "no answer to heartbeats".to_owned()));
                }
                let ping = Message::Ping(Default::default());
                if let Err(closing) = write(&mut sink, ping, killed.as_mut(), config.heartbeat).await {
                    break closing;
                }
            }
            () = &mut killed => break Some((close::SLOW_CONSUMER, "pushes were not read fast enough; reconnect and resume".to_owned())),
            () = &mut stopping => break Some((close::SERVICE_RESTART, "server restarting; reconnect and resume".to_owned())),
            Ok(()) = revoked.changed() => {
                if revocations.is_revoked(player_id, &session.sid, session.issued_ms) {
                    tracing::info!(player.id = player_id, "session revoked; closing its socket");
                    break Some((close::SESSION_REVOKED, "session revoked; sign in again".to_owned()));
                }
            }
        }
    };
    if let Some((code, reason)) = &closing {
        // A client that stopped reading cannot take the close frame either.
        let _ = tokio::time::timeout(CLOSE_GRACE, sink.send(close_message(*code, reason))).await;
        // Complete the closing handshake: let the client read everything
        // up to the close frame before the connection goes.
        let _ = tokio::time::timeout(CLOSE_GRACE, async {
            while let Some(Ok(message)) = stream.next().await {
                if let Message::Close(_) = message {
                    break;
                }
            }
        })
        .await;
    }
    outs.close();
    realtime.hub.detach(conn);
    tracing::info!(
        player.id = player_id,
        close = closing.as_ref().map(|(c, _)| *c),
        "socket closed"
    );
}

/// Writes one frame, unless the client stopped reading: a frame the socket
/// cannot take within `limit`, or while the hub gives up on the socket's
/// queue (`killed`), closes it as a slow consumer instead of blocking its
/// task forever. `Err(None)`: the connection is gone.
async fn write<S: Sink<Message> + Unpin>(
    sink: &mut S,
    frame: Message,
    killed: std::pin::Pin<&mut WaitForCancellationFuture<'_>>,
    limit: std::time::Duration,
) -> Result<(), Option<(u16, String)>> {
    let slow = || {
        Some((
            close::SLOW_CONSUMER,
            "pushes were not read fast enough; reconnect and resume".to_owned(),
        ))
    };
    tokio::select! {
        // Polled first: a frame that goes out at once sets no timer.
        biased;
        sent = sink.send(frame) => sent.map_err(|_| None),
        // The hub counted this one when it gave up on the queue.
        () = killed => Err(slow()),
        () = tokio::time::sleep(limit) => {
            tracing::warn!("socket took no frame for a heartbeat interval; closing it");
            metrics::counter!("vdm_ws_slow_consumers_total").increment(1);
            Err(slow())
        }
    }
}

struct Ctx<'a> {
    realtime: &'a Arc<Realtime>,
    conn: u64,
    token: &'a str,
    peer: Option<std::net::SocketAddr>,
    requests: &'a mut Requests,
    replies: &'a mpsc::Sender<Out>,
}

/// The requests of one socket, run one after another in the order they
/// came: a client that sends an accept and at once a progress on the same
/// quest must find the accept applied. Up to `waiting` requests queue
/// behind the running one; past that the socket is told to slow down. The
/// worker task starts with the socket's first request, so an idle socket
/// costs no task, and ends with the socket.
struct Requests {
    queue: Option<mpsc::Sender<Incoming>>,
    waiting: usize,
}

impl Requests {
    fn new(waiting: usize) -> Requests {
        Requests {
            queue: None,
            waiting: waiting.max(1),
        }
    }

    /// Queues a request behind the socket's earlier ones; gives it back
    /// when the queue is full.
    fn submit(&mut self, worker: impl FnOnce() -> Worker, incoming: Incoming) -> Result<(), Box<Incoming>> {
        let queue = self.queue.get_or_insert_with(|| {
            let (queue, waiting) = mpsc::channel(self.waiting);
            tokio::spawn(worker().run(waiting));
            queue
        });
        queue.try_send(incoming).map_err(|err| Box::new(err.into_inner()))
    }
}

/// What a socket's request worker needs: the router and the socket's
/// credentials, and where replies go.
struct Worker {
    router: axum::Router,
    token: String,
    peer: Option<std::net::SocketAddr>,
    replies: mpsc::Sender<Out>,
}

impl Worker {
    async fn run(self, mut waiting: mpsc::Receiver<Incoming>) {
        while let Some(incoming) = waiting.recv().await {
            let reply = dispatch(self.router.clone(), &self.token, self.peer, incoming).await;
            if self.replies.send(Out::Reply(Box::new(reply))).await.is_err() {
                // The socket closed: the requests still queued were never
                // answered, so they are dropped unrun.
                break;
            }
        }
    }
}

/// Handles one client message; returns an immediate reply, if any (request
/// replies come later through the reply queue).
async fn handle(ctx: Ctx<'_>, incoming: Incoming) -> Option<Outgoing> {
    let id = incoming.id.clone();
    match incoming.kind.as_str() {
        "request" => {
            let worker = || Worker {
                router: ctx.realtime.api.clone(),
                token: ctx.token.to_owned(),
                peer: ctx.peer,
                replies: ctx.replies.clone(),
            };
            match ctx.requests.submit(worker, incoming) {
                Ok(()) => None,
                Err(_) => Some(error_reply(
                    id,
                    ErrorCode::ResourceExhausted,
                    "too many requests waiting on this socket",
                )),
            }
        }
        "subscribe" | "unsubscribe" => {
            let Some(regions) = incoming.regions else {
                return Some(error_reply(id, ErrorCode::InvalidArgument, "regions is required"));
            };
            if let Some(bad) = regions.iter().find(|r| **r <= 0) {
                return Some(error_reply(
                    id,
                    ErrorCode::InvalidArgument,
                    &format!("regions must be positive ids, got {bad}"),
                ));
            }
            let now = if incoming.kind == "subscribe" {
                match ctx.realtime.hub.subscribe(ctx.conn, &regions).await {
                    Ok(now) => now,
                    Err(message) => return Some(error_reply(id, ErrorCode::InvalidArgument, &message)),
                }
            } else {
                ctx.realtime.hub.unsubscribe(ctx.conn, &regions).await
            };
            Some(Outgoing::Response {
                id,
                status: 200,
                body: json!({ "regions": now }),
            })
        }
        "ping" => Some(Outgoing::Response {
            id,
            status: 200,
            body: Value::Null,
        }),
        other => Some(error_reply(
            id,
            ErrorCode::InvalidArgument,
            &format!("unknown message type {other:?}; expected request, subscribe, unsubscribe or ping"),
        )),
    }
}

/// Runs a request through the REST router with the socket's credentials.
async fn dispatch(
    router: axum::Router,
    token: &str,
    peer: Option<std::net::SocketAddr>,
    incoming: Incoming,
) -> Outgoing {
    let id = incoming.id.clone();
    let mut request = match request_of(token, &incoming) {
        Ok(request) => request,
        Err(reply) => return *reply,
    };
    if let Some(peer) = peer {
        request.extensions_mut().insert(axum::extract::ConnectInfo(peer));
    }
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let body = if bytes.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&bytes).unwrap_or(Value::Null)
    };
    Outgoing::Response { id, status, body }
}

/// The HTTP request a socket `request` message stands for, or the error
/// reply that refuses it. `token` is the socket's session token.
pub fn request_of(token: &str, incoming: &Incoming) -> Result<axum::http::Request<Body>, Box<Outgoing>> {
    let refuse = |message: &str| Box::new(error_reply(incoming.id.clone(), ErrorCode::InvalidArgument, message));
    let method = match incoming.method.as_deref().map(str::to_ascii_uppercase).as_deref() {
        Some(m @ ("GET" | "POST" | "PATCH" | "PUT" | "DELETE")) => m.to_owned(),
        Some(other) => return Err(refuse(&format!("method {other:?} is not supported"))),
        None => return Err(refuse("method is required")),
    };
    let path = match incoming.path.as_deref() {
        Some(path) if path.starts_with("/v1/") && !path.starts_with("/v1/ws") => path.to_owned(),
        Some(path) => return Err(refuse(&format!("path must be a /v1/ REST path, got {path:?}"))),
        None => return Err(refuse("path is required")),
    };
    let body = match &incoming.body {
        None | Some(Value::Null) => Vec::new(),
        Some(body) => serde_json::to_vec(body).unwrap_or_default(),
    };
    let mut request = axum::http::Request::builder()
        .method(method.as_str())
        .uri(&path)
        .header(axum::http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(axum::http::header::ACCEPT, "application/json");
    if !body.is_empty() {
        request = request.header(axum::http::header::CONTENT_TYPE, "application/json");
    }
    if let Some(traceparent) = &incoming.traceparent {
        request = request.header("traceparent", traceparent);
    }
    request
        .body(Body::from(body))
        .map_err(|err| refuse(&format!("invalid request: {err}")))
}

/// The frame of a push (its JSON built once for every socket it goes to).
fn push_frame(seq: u64, outbound: &Outbound, format: Wire) -> Option<Message> {
    match format {
        Wire::Json => Some(Message::Text(outbound.json_text(seq)?.into())),
        Wire::Msgpack => outbound.envelope(seq)?.encode(format),
    }
}

fn error_reply(id: Option<String>, code: ErrorCode, message: &str) -> Outgoing {
    let body = serde_json::to_value(ErrorBody::new(code, message.to_owned())).unwrap_or(Value::Null);
    Outgoing::Response {
        id,
        status: code.http_status().as_u16(),
        body,
    }
}

fn close_message(code: u16, reason: &str) -> Message {
    // Close reasons are limited to 123 bytes.
    let mut reason = reason.to_owned();
    while reason.len() > 123 {
        reason.pop();
    }
    Message::Close(Some(CloseFrame {
        code,
        reason: reason.into(),
    }))
}

/// The close to send after a failed read (if the socket can still take one).
fn read_failure(err: axum::Error) -> Option<(u16, String)> {
    use tokio_tungstenite::tungstenite::Error;
    match err.into_inner().downcast_ref::<Error>() {
        Some(Error::Capacity(problem)) => Some((close::TOO_BIG, format!("frame too large: {problem}"))),
        Some(Error::Protocol(problem)) => Some((close::PROTOCOL_ERROR, format!("protocol error: {problem}"))),
        // A text message that is not UTF-8 (RFC 6455 8.1): invalid payload
        // data, like any other frame that does not decode.
        Some(Error::Utf8(_)) => Some((close::INVALID_PAYLOAD, "text frame is not valid UTF-8".to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use super::*;

    /// A socket whose client never reads: nothing can be written.
    struct Stalled;

    impl Sink<Message> for Stalled {
        type Error = axum::Error;
        fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
        fn start_send(self: Pin<&mut Self>, _: Message) -> Result<(), Self::Error> {
            Ok(())
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
        fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
            Poll::Pending
        }
    }

    fn code(result: Result<(), Option<(u16, String)>>) -> Option<u16> {
        result.err().flatten().map(|(code, _)| code)
    }

    #[tokio::test]
    async fn a_frame_the_client_never_takes_closes_the_socket_as_slow() {
        let kill = CancellationToken::new();
        let killed = kill.cancelled();
        tokio::pin!(killed);
        let started = Instant::now();
        let frame = Message::Text("{}".into());
        let result = write(&mut Stalled, frame, killed.as_mut(), Duration::from_millis(50)).await;
        assert_eq!(code(result), Some(close::SLOW_CONSUMER));
        assert!(started.elapsed() < Duration::from_secs(2));

        // The hub giving up on the queue ends the wait at once.
        let kill = CancellationToken::new();
        let killed = kill.cancelled();
        tokio::pin!(killed);
        kill.cancel();
        let frame = Message::Text("{}".into());
        let result = write(&mut Stalled, frame, killed.as_mut(), Duration::from_secs(60)).await;
        assert_eq!(code(result), Some(close::SLOW_CONSUMER));
    }
}
