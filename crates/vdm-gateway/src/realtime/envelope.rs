//! The socket's messages and their two encodings.

use axum::extract::ws::Message;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// How a socket's frames are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    /// JSON in text frames.
    Json,
    /// MessagePack (named fields) in binary frames.
    Msgpack,
}

/// A message from the client.
#[derive(Debug, Deserialize)]
pub struct Incoming {
    /// Client-chosen id, echoed on the reply.
    #[serde(default)]
    pub id: Option<String>,
    /// `request`, `subscribe`, `unsubscribe` or `ping`.
    #[serde(rename = "type")]
    pub kind: String,
    /// For requests: the HTTP method.
    #[serde(default)]
    pub method: Option<String>,
    /// For requests: the REST path, e.g. `/v1/quests/42/accept`.
    #[serde(default)]
    pub path: Option<String>,
    /// For requests: the body, as REST takes it.
    #[serde(default)]
    pub body: Option<Value>,
    /// For (un)subscribe: region ids.
    #[serde(default)]
    pub regions: Option<Vec<i64>>,
    /// W3C trace context of the client's span, when it traces.
    #[serde(default)]
    pub traceparent: Option<String>,
}

/// A message to the client.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outgoing {
    /// Sent once per socket, first.
    Welcome {
        /// The token that resumes this session on a new socket.
        resume_token: String,
        /// The player.
        player_id: i64,
        /// The server's contract version.
        contract: String,
        /// The server's ping interval.
        heartbeat_ms: u64,
        /// Whether this socket continues an earlier session.
        resumed: bool,
        /// The last push seq of the session (replayed pushes follow).
        last_seq: u64,
    },
    /// The answer to a request, subscribe or ping.
    Response {
        /// The request's id.
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<String>,
        /// The HTTP status REST would have answered.
        status: u16,
        /// The body REST would have answered (errors included).
        #[serde(skip_serializing_if = "Value::is_null")]
        body: Value,
    },
    /// A push.
    Event {
        /// Per-session sequence number, from 1, without gaps.
        seq: u64,
        /// `quest.updated`, `rumor.heard`, `world.event`, `npc.moved`.
        event: String,
        /// What happened.
        payload: Value,
    },
}

impl Outgoing {
    /// Encodes for the wire.
    pub fn encode(&self, wire: Wire) -> Option<Message> {
        match wire {
            Wire::Json => serde_json::to_string(self).ok().map(|s| Message::Text(s.into())),
            Wire::Msgpack => rmp_serde::to_vec_named(self).ok().map(|b| Message::Binary(b.into())),
        }
    }
}

/// Decodes a client frame, which holds one envelope and nothing after it;
/// `Err` says what is wrong.
pub fn decode(message: &Message) -> Result<Option<Incoming>, String> {
    match message {
        Message::Text(text) => serde_json::from_str(text.as_str())
            .map(Some)
            .map_err(|e| format!("invalid JSON envelope: {e}")),
        Message::Binary(bytes) => {
            let mut rest: &[u8] = bytes;
            let mut de = rmp_serde::Deserializer::new(&mut rest);
            de.set_max_depth(crate::negotiate::MAX_DEPTH);
            let incoming = Incoming::deserialize(&mut de).map_err(|e| format!("invalid MessagePack envelope: {e}"))?;
            crate::negotiate::msgpack_end(rest).map_err(|e| format!("invalid MessagePack envelope: {e}"))?;
            Ok(Some(incoming))
        }
        _ => Ok(None),
    }
}

/// An event on its way to sockets. A region push goes to thousands of
/// sockets at once: it is rendered once, and its JSON frame built once
/// around a gap for each socket's `seq`, instead of once per socket.
#[derive(Debug)]
pub struct Outbound {
    /// The event.
    pub event: std::sync::Arc<vdm_kit::bus::Event>,
    rendered: std::sync::OnceLock<Option<(&'static str, Value)>>,
    json: std::sync::OnceLock<Option<(String, String)>>,
}

impl Outbound {
    /// Wraps an event for delivery.
    pub fn new(event: std::sync::Arc<vdm_kit::bus::Event>) -> std::sync::Arc<Outbound> {
        std::sync::Arc::new(Outbound {
            event,
            rendered: std::sync::OnceLock::new(),
            json: std::sync::OnceLock::new(),
        })
    }

    /// The push's name and payload (`None`: no socket gets this event).
    pub fn rendered(&self) -> Option<&(&'static str, Value)> {
        self.rendered
            .get_or_init(|| crate::pushes::render(&self.event))
            .as_ref()
    }

    /// The push envelope for the socket whose seq it is.
    pub fn envelope(&self, seq: u64) -> Option<Outgoing> {
        let (kind, payload) = self.rendered()?;
        Some(Outgoing::Event {
            seq,
            event: (*kind).to_owned(),
            payload: payload.clone(),
        })
    }

    /// The push's JSON text for the socket whose seq it is.
    pub fn json_text(&self, seq: u64) -> Option<String> {
        let (head, tail) = self
            .json
            .get_or_init(|| {
                let (kind, payload) = self.rendered()?;
                let kind = serde_json::to_string(kind).ok()?;
                let payload = serde_json::to_string(payload).ok()?;
                Some((
                    r#"{"type":"event","seq":"#.to_owned(),
                    format!(r#","event":{kind},"payload":{payload}}}"#),
                ))
            })
            .as_ref()?;
        let mut text = String::with_capacity(head.len() + 20 + tail.len());
        text.push_str(head);
        text.push_str(&seq.to_string());
        text.push_str(tail);
        Some(text)
    }
}
