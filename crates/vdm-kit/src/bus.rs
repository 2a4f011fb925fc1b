//! Events between processes: services publish, gateways deliver to sockets.
//!
//! One interface, two transports: Redis pub/sub when `REDIS_URL` is set (any
//! gateway replica receives what any service replica publishes), and a
//! process-wide in-memory broadcast otherwise (the embedded default, where
//! services and the gateway share one process). A publish never fails the
//! write that caused it: a Redis failure is logged and counted.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use deadpool_redis::redis::AsyncCommands;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::cache::CacheStore;

/// Events buffered per subscriber before a slow one starts losing them.
const CAPACITY: usize = 65_536;

/// Something that happened, for the players it concerns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// The push name clients see (`quest.updated`, `npc.moved`, ...).
    pub kind: String,
    /// The one player it is for, if it is personal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub player_id: Option<i64>,
    /// The regions it is for (players subscribed to any of them get it).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub region_ids: Vec<i64>,
    /// The push payload, as clients see it.
    pub payload: serde_json::Value,
}

/// Publishes and subscribes to [`Event`]s.
#[derive(Clone)]
pub struct EventBus {
    local: broadcast::Sender<Arc<Event>>,
    redis: Option<RedisBus>,
}

#[derive(Clone)]
struct RedisBus {
    pool: deadpool_redis::Pool,
    url: String,
    channel: String,
    /// Whether the forwarding task runs (one per bus).
    forwarding: Arc<AtomicBool>,
}

fn process_bus() -> broadcast::Sender<Arc<Event>> {
    static BUS: OnceLock<broadcast::Sender<Arc<Event>>> = OnceLock::new();
    BUS.get_or_init(|| broadcast::channel(CAPACITY).0).clone()
}

impl EventBus {
    /// The bus of a cache store's backend: Redis pub/sub on
    /// `<prefix>:events`, or the process-wide in-memory bus.
    pub fn new(store: &CacheStore, redis_url: Option<&str>, prefix: &str) -> EventBus {
        match (store.redis_pool(), redis_url) {
            (Some(pool), Some(url)) => EventBus {
                local: broadcast::channel(CAPACITY).0,
                redis: Some(RedisBus {
                    pool: pool.clone(),
                    url: url.to_owned(),
                    channel: format!("{prefix}:events"),
                    forwarding: Arc::new(AtomicBool::new(false)),
                }),
            },
            _ => EventBus {
                local: process_bus(),
                redis: None,
            },
        }
    }

    /// Publishes an event; failures are logged and counted, never returned.
    pub async fn publish(&self, event: Event) {
        let span = tracing::info_span!(
            "event_publish",
            otel.name = "PUBLISH events",
            otel.kind = "producer",
            messaging.system = if self.redis.is_some() { "redis" } else { "in_process" },
            messaging.destination.name = "events",
            event = %event.kind,
        );
        self.publish_in(event).instrument(span).await
    }

    async fn publish_in(&self, event: Event) {
        let kind = event.kind.clone();
        match &self.redis {
            None => {
                // No subscriber is not an error: no gateway is listening yet.
                let _ = self.local.send(Arc::new(event));
            }
            Some(redis) => {
                let Ok(json) = serde_json::to_string(&event) else {
                    return;
                };
                let call = async {
                    let mut conn = redis.pool.get().await.map_err(|e| e.to_string())?;
                    let _: i64 = conn.publish(&redis.channel, json).await.map_err(|e| e.to_string())?;
                    Ok::<_, String>(())
                };
                match tokio::time::timeout(Duration::from_secs(1), call).await {
                    Ok(Ok(())) => {}
                    Ok(Err(err)) => fail(&kind, &err),
                    Err(_) => fail(&kind, "timed out"),
                }
            }
        }
        metrics::counter!("vdm_events_published_total", "event" => kind_label(&kind)).increment(1);
    }

    /// Receives every event published from now on. With Redis, the first
    /// call starts one background subscriber that reconnects by itself.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        if let Some(redis) = &self.redis {
            redis.ensure_subscriber(self.local.clone());
        }
        self.local.subscribe()
    }
}

impl RedisBus {
    fn ensure_subscriber(&self, local: broadcast::Sender<Arc<Event>>) {
        if self.forwarding.swap(true, Ordering::AcqRel) {
            return;
        }
        let (url, channel, forwarding) = (self.url.clone(), self.channel.clone(), self.forwarding.clone());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match forward(&url, &channel, &local).await {
                    Ok(()) => {
                        // Every receiver is gone; the next subscribe restarts it.
                        forwarding.store(false, Ordering::Release);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "event subscription lost; reconnecting");
                        metrics::counter!("vdm_event_subscription_errors_total").increment(1);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
    }
}

/// Forwards Redis messages to the local broadcast until every receiver is
/// gone (`Ok`) or the connection fails (`Err`).
async fn forward(url: &str, channel: &str, local: &broadcast::Sender<Arc<Event>>) -> Result<(), String> {
    let client = deadpool_redis::redis::Client::open(url).map_err(|e| e.to_string())?;
    let mut pubsub = client.get_async_pubsub().await.map_err(|e| e.to_string())?;
    pubsub.subscribe(channel).await.map_err(|e| e.to_string())?;
    tracing::info!(channel, "subscribed to events");
    let mut messages = pubsub.into_on_message();
    while let Some(message) = messages.next().await {
        let payload: Vec<u8> = message.get_payload().map_err(|e| e.to_string())?;
        match serde_json::from_slice::<Event>(&payload) {
            Ok(event) => {
                if local.send(Arc::new(event)).is_err() {
                    return Ok(());
                }
            }
            Err(err) => tracing::warn!(error = %err, "undecodable event ignored"),
        }
    }
    Err("subscription stream ended".to_owned())
}

fn fail(kind: &str, err: &str) {
    tracing::warn!(event = kind, error = err, "event publish failed");
    metrics::counter!("vdm_event_publish_errors_total").increment(1);
}

/// A bounded label for an event name.
fn kind_label(kind: &str) -> &'static str {
    match kind {
        "quest.updated" => "quest.updated",
        "rumor.heard" => "rumor.heard",
        "world.event" => "world.event",
        "npc.moved" => "npc.moved",
        _ => "other",
    }
}
