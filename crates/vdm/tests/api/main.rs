//! End-to-end tests: HTTP through the gateway, gRPC to the world, NPC,
//! quest, rumor and metrics services, SQLite or Postgres, in-process cache or Redis. Every test
//! runs on both back ends (`sqlite::` and `postgres::`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod access;
mod auth;
mod bad_input;
mod bootstrap;
mod content;
mod dashboard;
mod docs;
mod edge_cache;
mod edges;
mod helpers;
mod isolation;
mod negotiation;
mod npcs;
mod openapi;
mod players;
mod quests;
mod realtime;
mod reflection;
mod rewards;
mod rumors;
mod rumors_llm;
mod stats;
mod telemetry;
mod world;
