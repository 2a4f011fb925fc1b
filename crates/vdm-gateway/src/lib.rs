//! The gateway: the Unity client's HTTP API under `/v1`, turned into gRPC
//! calls to the vdm services. It is the only process that speaks the public
//! HTTP API.
//!
//! # Layout
//! - [`config`]: the gateway's settings.
//! - [`startup`]: [`App`] binds and serves; the router and its middleware
//!   stack (`layers`) are composed there.
//! - [`state`]: what every handler shares (token keys, players, gRPC clients).
//! - [`auth`]: device sign-in, session/refresh tokens, admin token, and the
//!   `Player` / `Admin` / `Caller` extractors.
//! - [`routes`]: one module per resource; handlers convert JSON ⇄ gRPC.
//! - [`edge_cache`]: the public read models as ready-to-send bodies with
//!   ETags, dropped when their service publishes a change on the bus.
//! - [`negotiate`]: JSON or MessagePack bodies, and extractors whose
//!   rejections are JSON errors.
//! - [`openapi`]: the OpenAPI document, generated from the handlers'
//!   declarations and served at `/v1/openapi.json`.
//! - [`pushes`]: the payload type of every socket push, rendered from the
//!   services' typed bus events (`vdm.events.v1`).
//! - [`realtime`]: the `/v1/ws` socket: requests through the REST router,
//!   pushes from the event bus, heartbeats, resume.
//! - [`rate_limit`]: token buckets per caller and route class (429).
//! - [`standings`]: a player's faction standings, reused for NPC talks
//!   until `player.updated` says they changed.
//! - [`middleware`]: per-request span, metrics and request id; uniform error
//!   bodies, the body guard and the quotas.
//! - [`error`]: [`GatewayError`] and its HTTP mapping through
//!   `vdm_kit::ErrorCode`.

pub mod auth;
pub mod config;
pub mod edge_cache;
pub mod error;
pub mod middleware;
pub mod negotiate;
pub mod openapi;
pub mod pushes;
pub mod rate_limit;
pub mod realtime;
pub mod routes;
pub mod standings;
pub mod startup;
pub mod state;

pub use config::{GatewayConfig, SecretDefaults};
pub use error::{GatewayError, GatewayResult};
pub use startup::App;
