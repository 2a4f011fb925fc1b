//! The Unity client's one WebSocket, `/v1/ws`.
//!
//! - [`envelope`]: the messages (`request`/`response`, `subscribe`,
//!   `event` pushes with a per-session `seq`, `welcome`, `error`) in JSON
//!   (`vdm.v1.json`) or MessagePack (`vdm.v1.msgpack`).
//! - [`hub`]: which sockets are open, for which player and regions; routes
//!   bus events to them through bounded queues (a slow consumer is cut off),
//!   numbering each socket's pushes, and checkpoints their sessions.
//! - [`session`]: one socket's loop: frames in, requests dispatched to the
//!   REST router (one handler per operation, two transports), pushes and
//!   replies out, heartbeats.
//! - [`resume`]: session checkpoints (in Redis when the gateway has it) that
//!   let a reconnecting client get the pushes it missed, on any replica.

pub mod envelope;
pub mod hub;
pub mod resume;
pub mod session;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::Router;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use vdm_kit::ErrorCode;
use vdm_kit::shutdown::CancellationToken;

use crate::auth::TokenKeys;
use crate::error::{ErrorBody, GatewayError};

/// The subprotocol of JSON sockets (text frames).
pub const JSON_PROTOCOL: &str = "vdm.v1.json";
/// The subprotocol of MessagePack sockets (binary frames).
pub const MSGPACK_PROTOCOL: &str = "vdm.v1.msgpack";

/// Close codes the gateway sends, besides the standard ones.
pub mod close {
    /// The client's contract version differs from the server's.
    pub const INCOMPATIBLE_CONTRACT: u16 = 4001;
    /// The client stopped answering heartbeats.
    pub const HEARTBEAT_TIMEOUT: u16 = 4002;
    /// The client did not read its pushes fast enough.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// A frame was not a valid envelope (RFC 6455: invalid payload data).
    pub const INVALID_PAYLOAD: u16 = 1007;
    /// The server is restarting; reconnect (and resume).
    pub const SERVICE_RESTART: u16 = 1012;
    /// A frame or message was larger than the server accepts.
    pub const TOO_BIG: u16 = 1009;
    /// The client broke the WebSocket protocol.
    pub const PROTOCOL_ERROR: u16 = 1002;
    /// The server failed; reconnect later.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// The session was revoked (signed out, or by an operator): sign in again.
    pub const SESSION_REVOKED: u16 = 4003;
}

/// WebSocket settings.
#[derive(Debug, Clone)]
pub struct RealtimeConfig {
    /// How often the server pings; two silent intervals close the socket.
    pub heartbeat: Duration,
    /// The largest frame or message accepted.
    pub max_frame_bytes: usize,
    /// Messages queued per socket before it counts as a slow consumer.
    pub queue: usize,
    /// Open sockets allowed per player.
    pub max_per_player: usize,
    /// How long missed pushes are kept for a reconnecting client.
    pub resume_window: Duration,
    /// How many missed pushes are kept per session.
    pub resume_messages: usize,
    /// Requests one socket may have waiting behind the one running (a
    /// socket's requests run one at a time, in order).
    pub max_in_flight: usize,
}

impl Default for RealtimeConfig {
    fn default() -> RealtimeConfig {
        RealtimeConfig {
            heartbeat: Duration::from_secs(15),
            max_frame_bytes: 64 * 1024,
            queue: 256,
            max_per_player: 4,
            resume_window: Duration::from_secs(120),
            resume_messages: 1000,
            max_in_flight: 16,
        }
    }
}

/// The realtime side of the gateway, shared by every socket: the state of
/// the `/v1/ws` route.
pub struct Realtime {
    /// The contract version the welcome announces and a client's
    /// `contract` must match (`pushes::contract` of the OpenAPI document).
    pub contract: String,
    /// Settings.
    pub config: RealtimeConfig,
    /// Open sockets and their subscriptions.
    pub hub: Arc<hub::Hub>,
    /// The event bus (read back to resume sessions).
    pub bus: vdm_kit::bus::EventBus,
    /// Verifies the token a socket opens with.
    pub tokens: Arc<TokenKeys>,
    /// Cancelled when the gateway shuts down.
    pub shutdown: CancellationToken,
    /// The REST router, with its middleware, that socket requests are
    /// dispatched to. It is finished before the socket route is built and
    /// does not route `/v1/ws`, so it never holds a `Realtime`.
    pub api: Router,
}

impl Realtime {
    /// The hub's settings for this configuration.
    pub fn hub_config(config: &RealtimeConfig) -> hub::HubConfig {
        hub::HubConfig {
            window: config.resume_window,
            max_replay: config.resume_messages,
            // Often enough that the two kept checkpoints are recent; a
            // client that lagged more than one interval behind its socket
            // (a dead network not yet noticed) still resumes.
            checkpoint_every: (config.resume_window / 4)
                .clamp(std::time::Duration::from_secs(1), std::time::Duration::from_secs(30)),
        }
    }
}

/// `GET /v1/ws` query parameters.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConnectQuery {
    /// The session token, for clients that cannot set headers (WebGL);
    /// documented as the `session_query` security scheme.
    #[param(ignore)]
    token: Option<String>,
    /// The contract the client was built against.
    contract: Option<String>,
    /// A resume token from an earlier socket's welcome.
    resume: Option<String>,
    /// The last push `seq` the client processed (with `resume`).
    last_seq: Option<u64>,
}

/// The `Sec-WebSocket-Protocol` request header, for the OpenAPI document.
struct Subprotocol;

impl utoipa::IntoParams for Subprotocol {
    fn into_params(
        _parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::Required;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{ObjectBuilder, Type};
        vec![
            ParameterBuilder::new()
                .name("Sec-WebSocket-Protocol")
                .parameter_in(ParameterIn::Header)
                .required(Required::False)
                .description(Some(
                    "`vdm.v1.json` (text frames) or `vdm.v1.msgpack` (binary frames); JSON without one",
                ))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .enum_values(Some([JSON_PROTOCOL, MSGPACK_PROTOCOL])),
                ))
                .build(),
        ]
    }
}

/// Upgrades to a WebSocket after authenticating the player.
#[utoipa::path(
    get,
    path = "/v1/ws",
    operation_id = "connectWebSocket",
    tag = "realtime",
    summary = "Opens the client's WebSocket (an HTTP/1.1 upgrade)",
    description = "The one socket for pushes and low-latency requests: a GET with `Connection: Upgrade`, \
        `Upgrade: websocket` and the WebSocket key and version headers. The session token goes in \
        `Authorization: Bearer` or, for clients that cannot set headers (WebGL), in `?token=`. \
        Frames carry the envelope messages (`request`/`response`, `subscribe`, `event`, `welcome`, \
        `error`) in JSON or MessagePack, by subprotocol.",
    params(ConnectQuery, Subprotocol),
    security(("session" = []), ("session_query" = [])),
    responses(
        (status = 101, description = "Switching Protocols: the socket is open; the server sends `welcome` first"),
        (status = 400, description = "Not a WebSocket upgrade, or a bad query parameter", body = ErrorBody),
        (status = 429, description = "The player has as many sockets open as allowed, or too many requests", body = ErrorBody),
    ),
)]
pub async fn connect(
    State(realtime): State<Arc<Realtime>>,
    peer: Option<Extension<ConnectInfo<std::net::SocketAddr>>>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
    upgrade: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            return GatewayError::invalid(format!("expected a WebSocket upgrade: {}", rejection.body_text()))
                .into_response();
        }
    };
    let query = match parse_query(query) {
        Ok(query) => query,
        Err(err) => return err.into_response(),
    };
    let token = bearer_from(&headers).or(query.token.clone());
    let Some(token) = token else {
        return GatewayError::api(
            ErrorCode::Unauthenticated,
            "missing session token (Authorization: Bearer or ?token=)",
        )
        .into_response();
    };
    if realtime.tokens.is_operator(&token) {
        return GatewayError::api(
            ErrorCode::PermissionDenied,
            "sockets are for players; an operator credential cannot open one",
        )
        .into_response();
    }
    let session = match realtime.tokens.verify_session(&token) {
        Ok(session) => session,
        Err(err) => return err.into_response(),
    };
    let player_id = session.player_id;
    let revocations = realtime.tokens.revocations().clone();
    let peer = peer.map(|Extension(ConnectInfo(addr))| addr);
    if realtime.hub.sockets_of(player_id) >= realtime.config.max_per_player {
        return GatewayError::api(
            ErrorCode::ResourceExhausted,
            format!("at most {} sockets per player", realtime.config.max_per_player),
        )
        .into_response();
    }
    let upgrade = upgrade
        .protocols([JSON_PROTOCOL, MSGPACK_PROTOCOL])
        .max_frame_size(realtime.config.max_frame_bytes)
        .max_message_size(realtime.config.max_frame_bytes)
        // Idle sockets dominate: tungstenite's default 128 KiB read and
        // write buffers per socket would cost ~140 KB each (measured in
        // docs/history/PERFORMANCE-log.md). Client frames are small (requests, pongs):
        // reads grow past 1 KiB only when a frame needs it; writes go out at
        // once, so a slow reader backs up into the bounded push queue, where
        // it is detected.
        .read_buffer_size(1024)
        .write_buffer_size(0)
        .max_write_buffer_size(realtime.config.max_frame_bytes * 4);
    // Without a subprotocol the client gets JSON.
    let format = match upgrade.selected_protocol().and_then(|p| p.to_str().ok()) {
        Some(MSGPACK_PROTOCOL) => envelope::Wire::Msgpack,
        _ => envelope::Wire::Json,
    };
    let shutdown = realtime.shutdown.clone();
    upgrade.on_upgrade(move |socket| {
        session::run(
            socket,
            session::Start {
                player_id,
                session,
                revocations,
                peer,
                token,
                format,
                query,
                realtime,
                shutdown,
            },
        )
    })
}

/// Reads `GET /v1/ws`'s query parameters (already split into pairs). An
/// unknown parameter (a `player_id=`, say) is a 400 naming it, as on every
/// other route: the player is the token's, never the query's.
pub fn parse_query(raw: HashMap<String, String>) -> Result<ConnectQuery, GatewayError> {
    const KNOWN: [&str; 4] = ["token", "contract", "resume", "last_seq"];
    let mut unknown: Vec<&str> = raw
        .keys()
        .map(String::as_str)
        .filter(|name| !KNOWN.contains(name))
        .collect();
    unknown.sort_unstable();
    if let Some(name) = unknown.first() {
        return Err(GatewayError::invalid(format!(
            "unknown query parameter {name:?}; expected one of {}",
            KNOWN.join(", ")
        )));
    }
    let last_seq = match raw.get("last_seq") {
        None => None,
        Some(v) => Some(
            v.parse::<u64>()
                .map_err(|_| GatewayError::invalid(format!("last_seq must be a number, got {v:?}")))?,
        ),
    };
    Ok(ConnectQuery {
        token: raw.get("token").cloned(),
        contract: raw.get("contract").cloned(),
        resume: raw.get("resume").cloned(),
        last_seq,
    })
}

fn bearer_from(headers: &HeaderMap) -> Option<String> {
    crate::auth::bearer_in(headers).ok().map(str::to_owned)
}
