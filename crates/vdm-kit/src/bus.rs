//! Events between processes: services publish, gateways deliver to sockets.
//!
//! One interface, two transports:
//! - with `REDIS_URL`, a Redis stream (`<prefix>:events`): a publish is one
//!   `XADD`; every gateway replica follows the stream with a blocking
//!   `XREAD`, so each receives every event, in the one order Redis gave
//!   them. The stream doubles as the replay buffer: a gateway resuming a
//!   socket that another replica held reads what it missed with `XRANGE`,
//!   and a gateway whose connection to Redis dropped continues from the
//!   last event it saw instead of losing what was published meanwhile.
//! - otherwise an in-memory broadcast shared by everything in the process
//!   with the same key prefix (the embedded default, where services and
//!   the gateway share one process).
//!
//! Either way every event carries an [`Offset`], its place in that order.
//! A publish never fails the write that caused it: a Redis failure is
//! logged and counted.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use deadpool_redis::redis::{self, Value};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::cache::CacheStore;

/// Deliveries buffered per subscriber before a slow one starts losing them.
const CAPACITY: usize = 65_536;

/// Events the Redis stream keeps at most (trimmed approximately by `XADD`;
/// gateways also trim it by age, see [`EventBus::trim_history`]).
const STREAM_MAX_LEN: usize = 100_000;

/// The stream entry field that holds an event (protobuf). Entries written
/// under another field (an older JSON layout) are skipped by readers.
const EVENT_FIELD: &str = "p";

/// How long one blocking `XREAD` waits for new events.
const READ_BLOCK: Duration = Duration::from_secs(5);

/// Events read per `XREAD` / `XRANGE` round trip.
const READ_COUNT: usize = 1_000;

/// Trims a stream to the entries younger than ARGV[1] milliseconds.
const TRIM_BY_AGE: &str = "local t = redis.call('TIME') \
    local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) \
    return redis.call('XTRIM', KEYS[1], 'MINID', '~', now - tonumber(ARGV[1]))";

/// Something that happened, for the players it concerns: a typed
/// `vdm.events.v1.Event` (who it is for, and one body per kind of push).
/// On Redis it travels protobuf-encoded.
pub use vdm_proto::events::v1::Event;
pub use vdm_proto::events::v1::event::Body as EventBody;

/// An event's place in the bus's order: a Redis stream id
/// (`milliseconds-sequence`), or `0-n` on the in-process bus.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Offset(pub u64, pub u64);

impl Offset {
    /// Reads a stream id such as `1700000000000-3`.
    pub fn parse(raw: &str) -> Option<Offset> {
        let (ms, n) = raw.split_once('-')?;
        Some(Offset(ms.parse().ok()?, n.parse().ok()?))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.0, self.1)
    }
}

/// What a subscriber receives.
#[derive(Debug, Clone)]
pub enum Delivery {
    /// An event, at its offset.
    Event(Offset, Arc<Event>),
    /// Everything up to this offset has been delivered: sent when a Redis
    /// subscription starts, so a subscriber knows where it joined.
    Position(Offset),
}

/// A subscriber's receiving end.
pub struct Subscription {
    /// Where the subscriber joined, when already known (the in-process bus
    /// knows at once; a Redis subscription sends a [`Delivery::Position`]).
    pub position: Option<Offset>,
    /// Deliveries, in offset order.
    pub deliveries: broadcast::Receiver<Delivery>,
}

/// Why the replay buffer could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryError(pub String);

impl fmt::Display for HistoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HistoryError {}

/// Publishes and subscribes to [`Event`]s.
#[derive(Clone)]
pub struct EventBus {
    local: broadcast::Sender<Delivery>,
    redis: Option<RedisBus>,
    /// The in-process bus (without Redis).
    process: Option<Arc<ProcessBus>>,
}

#[derive(Clone)]
struct RedisBus {
    pool: deadpool_redis::Pool,
    connection: redis::ConnectionInfo,
    stream: String,
    /// Whether the following task runs (one per bus).
    following: Arc<AtomicBool>,
}

/// The in-process bus: offsets are handed out under the same lock as the
/// send, so deliveries arrive in offset order.
struct ProcessBus {
    last: Mutex<u64>,
    sender: broadcast::Sender<Delivery>,
}

/// The in-process bus of a key prefix.
fn process_bus(prefix: &str) -> Arc<ProcessBus> {
    static BUSES: OnceLock<Mutex<HashMap<String, Arc<ProcessBus>>>> = OnceLock::new();
    let mut buses = BUSES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    buses
        .entry(prefix.to_owned())
        .or_insert_with(|| {
            Arc::new(ProcessBus {
                last: Mutex::new(0),
                sender: broadcast::channel(CAPACITY).0,
            })
        })
        .clone()
}

impl ProcessBus {
    fn lock(&self) -> std::sync::MutexGuard<'_, u64> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl EventBus {
    /// The bus of a cache store's backend: the Redis stream
    /// `<prefix>:events`, or the in-process bus of `prefix`.
    pub fn new(store: &CacheStore, prefix: &str) -> EventBus {
        match (store.redis_pool(), store.redis_connection()) {
            (Some(pool), Some(connection)) => EventBus {
                local: broadcast::channel(CAPACITY).0,
                redis: Some(RedisBus {
                    pool: pool.clone(),
                    connection: connection.clone(),
                    stream: format!("{prefix}:events"),
                    following: Arc::new(AtomicBool::new(false)),
                }),
                process: None,
            },
            _ => {
                let process = process_bus(prefix);
                EventBus {
                    local: process.sender.clone(),
                    redis: None,
                    process: Some(process),
                }
            }
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
            event = event.kind(),
        );
        self.publish_in(event).instrument(span).await
    }

    async fn publish_in(&self, event: Event) {
        let kind = event.kind();
        match (&self.redis, &self.process) {
            (None, Some(bus)) => {
                let mut last = bus.lock();
                *last += 1;
                // No subscriber is not an error: no gateway is listening yet.
                let _ = bus.sender.send(Delivery::Event(Offset(0, *last), Arc::new(event)));
            }
            (None, None) => {}
            (Some(redis), _) => {
                let bytes = prost::Message::encode_to_vec(&event);
                let call = async {
                    let mut conn = redis.pool.get().await.map_err(|e| e.to_string())?;
                    redis::cmd("XADD")
                        .arg(&redis.stream)
                        .arg("MAXLEN")
                        .arg("~")
                        .arg(STREAM_MAX_LEN)
                        .arg("*")
                        .arg(EVENT_FIELD)
                        .arg(bytes)
                        .query_async::<String>(&mut conn)
                        .await
                        .map_err(|e| e.to_string())
                };
                match tokio::time::timeout(Duration::from_secs(1), call).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(err)) => fail(kind, &err),
                    Err(_) => fail(kind, "timed out"),
                }
            }
        }
        metrics::counter!("vdm_events_published_total", "event" => kind).increment(1);
    }

    /// Receives every event published from now on. With Redis, the first
    /// call starts one background task that follows the stream and
    /// reconnects by itself, continuing after the last event it delivered.
    pub fn subscribe(&self) -> Subscription {
        match (&self.redis, &self.process) {
            (None, Some(bus)) => {
                let last = bus.lock();
                Subscription {
                    position: Some(Offset(0, *last)),
                    deliveries: bus.sender.subscribe(),
                }
            }
            (redis, _) => {
                let deliveries = self.local.subscribe();
                if let Some(redis) = redis {
                    redis.ensure_following(self.local.clone());
                }
                Subscription {
                    position: None,
                    deliveries,
                }
            }
        }
    }

    /// Whether published events can be read back ([`EventBus::history_after`]):
    /// true with Redis; the in-process bus keeps nothing.
    pub fn keeps_history(&self) -> bool {
        self.redis.is_some()
    }

    /// Up to `max` events after `after`, oldest first, from the Redis
    /// stream. Fewer than `max` means the stream's end was reached.
    pub async fn history_after(&self, after: Offset, max: usize) -> Result<Vec<(Offset, Arc<Event>)>, HistoryError> {
        let Some(redis) = &self.redis else {
            return Err(HistoryError("the in-process bus keeps no history".to_owned()));
        };
        let mut conn = redis.pool.get().await.map_err(|e| HistoryError(e.to_string()))?;
        let mut events = Vec::new();
        let mut from = after;
        while events.len() < max {
            let count = READ_COUNT.min(max - events.len());
            let reply: Value = redis::cmd("XRANGE")
                .arg(&redis.stream)
                .arg(format!("({from}"))
                .arg("+")
                .arg("COUNT")
                .arg(count)
                .query_async(&mut conn)
                .await
                .map_err(|e| HistoryError(e.to_string()))?;
            let page = stream_entries(&reply);
            let done = page.len() < count;
            if let Some((last, _)) = page.last() {
                from = *last;
            }
            events.extend(page.into_iter().filter_map(|(offset, event)| Some((offset, event?))));
            if done {
                break;
            }
        }
        Ok(events)
    }

    /// Drops stream entries older than `keep` (by the Redis server's clock).
    /// A no-op on the in-process bus.
    pub async fn trim_history(&self, keep: Duration) -> Result<(), HistoryError> {
        let Some(redis) = &self.redis else { return Ok(()) };
        let mut conn = redis.pool.get().await.map_err(|e| HistoryError(e.to_string()))?;
        let trimmed: i64 = redis::cmd("EVAL")
            .arg(TRIM_BY_AGE)
            .arg(1)
            .arg(&redis.stream)
            .arg(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX))
            .query_async(&mut conn)
            .await
            .map_err(|e| HistoryError(e.to_string()))?;
        metrics::counter!("vdm_event_history_trimmed_total").increment(u64::try_from(trimmed).unwrap_or(0));
        Ok(())
    }
}

impl RedisBus {
    fn ensure_following(&self, local: broadcast::Sender<Delivery>) {
        if self.following.swap(true, Ordering::AcqRel) {
            return;
        }
        let (connection, stream, following) = (self.connection.clone(), self.stream.clone(), self.following.clone());
        tokio::spawn(async move {
            let mut last: Option<Offset> = None;
            let mut backoff = Duration::from_millis(100);
            loop {
                match follow(&connection, &stream, &local, &mut last).await {
                    Ok(()) => {
                        // Every receiver is gone; the next subscribe restarts it.
                        following.store(false, Ordering::Release);
                        return;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "event stream lost; reconnecting");
                        metrics::counter!("vdm_event_subscription_errors_total").increment(1);
                        tokio::time::sleep(backoff).await;
                        backoff = (backoff * 2).min(Duration::from_secs(5));
                    }
                }
            }
        });
    }
}

/// Follows the stream into the local broadcast from `last` (or from the
/// stream's current end, the first time) until every receiver is gone
/// (`Ok`) or the connection fails (`Err`).
async fn follow(
    connection: &redis::ConnectionInfo,
    stream: &str,
    local: &broadcast::Sender<Delivery>,
    last: &mut Option<Offset>,
) -> Result<(), String> {
    let client = redis::Client::open(connection.clone()).map_err(|e| e.to_string())?;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(READ_BLOCK + Duration::from_secs(5)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    let start = match *last {
        Some(offset) => offset,
        None => {
            let reply: Value = redis::cmd("XREVRANGE")
                .arg(stream)
                .arg("+")
                .arg("-")
                .arg("COUNT")
                .arg(1)
                .query_async(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            stream_entries(&reply)
                .first()
                .map_or(Offset::default(), |(offset, _)| *offset)
        }
    };
    *last = Some(start);
    tracing::info!(stream, from = %start, "following events");
    if local.send(Delivery::Position(start)).is_err() {
        return Ok(());
    }
    let block_ms = u64::try_from(READ_BLOCK.as_millis()).unwrap_or(5_000);
    loop {
        let from = last.unwrap_or_default();
        let reply: Value = redis::cmd("XREAD")
            .arg("COUNT")
            .arg(READ_COUNT)
            .arg("BLOCK")
            .arg(block_ms)
            .arg("STREAMS")
            .arg(stream)
            .arg(from.to_string())
            .query_async(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        for (offset, event) in xread_entries(&reply) {
            *last = Some(offset);
            let Some(event) = event else { continue };
            if local.send(Delivery::Event(offset, event)).is_err() {
                return Ok(());
            }
        }
        if local.receiver_count() == 0 {
            return Ok(());
        }
    }
}

/// The entries of an `XREAD` reply on one stream (nil when it timed out).
fn xread_entries(reply: &Value) -> Vec<(Offset, Option<Arc<Event>>)> {
    let streams = match reply {
        Value::Array(streams) => streams.iter().collect::<Vec<_>>(),
        Value::Map(pairs) => pairs.iter().map(|(_, entries)| entries).collect(),
        _ => return Vec::new(),
    };
    streams
        .into_iter()
        .flat_map(|stream| match stream {
            // RESP2: [name, entries]; RESP3 maps give the entries directly.
            Value::Array(parts) if parts.len() == 2 && !matches!(parts[0], Value::Array(_)) => {
                stream_entries(&parts[1])
            }
            entries => stream_entries(entries),
        })
        .collect()
}

/// The entries of an `XRANGE`/`XREVRANGE` reply: `[[id, [field, value, ...]], ...]`.
/// An entry whose event does not decode keeps its offset (readers move past
/// it) with `None`.
fn stream_entries(reply: &Value) -> Vec<(Offset, Option<Arc<Event>>)> {
    let Value::Array(entries) = reply else {
        return Vec::new();
    };
    entries
        .iter()
        .filter_map(|entry| {
            let Value::Array(parts) = entry else { return None };
            let offset = Offset::parse(std::str::from_utf8(bulk(parts.first()?)?).ok()?)?;
            let event = match parts.get(1) {
                Some(Value::Array(fields)) => fields
                    .chunks(2)
                    .find(|pair| pair.first().and_then(bulk) == Some(EVENT_FIELD.as_bytes()))
                    .and_then(|pair| pair.get(1).and_then(bulk))
                    .and_then(|bytes| match <Event as prost::Message>::decode(bytes) {
                        Ok(event) => Some(Arc::new(event)),
                        Err(err) => {
                            tracing::warn!(error = %err, offset = %offset, "undecodable event skipped");
                            None
                        }
                    }),
                _ => None,
            };
            Some((offset, event))
        })
        .collect()
}

fn bulk(value: &Value) -> Option<&[u8]> {
    match value {
        Value::BulkString(bytes) => Some(bytes),
        Value::SimpleString(text) => Some(text.as_bytes()),
        _ => None,
    }
}

fn fail(kind: &str, err: &str) {
    tracing::warn!(event = kind, error = err, "event publish failed");
    metrics::counter!("vdm_event_publish_errors_total").increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk_str(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn offsets_order_like_stream_ids() {
        assert_eq!(Offset::parse("1700000000000-3"), Some(Offset(1_700_000_000_000, 3)));
        assert!(Offset(5, 9) < Offset(6, 0));
        assert_eq!(Offset(12, 4).to_string(), "12-4");
        assert_eq!(Offset::parse("12"), None);
        assert_eq!(Offset::parse("a-1"), None);
    }

    #[test]
    fn stream_replies_decode_and_keep_offsets_of_bad_entries() {
        let good = prost::Message::encode_to_vec(&Event {
            player_id: None,
            region_ids: vec![2],
            body: Some(EventBody::RumorSpread(vdm_proto::events::v1::RumorSpread {
                region_id: 2,
                tellings: 3,
            })),
        });
        let entries = Value::Array(vec![
            Value::Array(vec![
                bulk_str("10-0"),
                Value::Array(vec![bulk_str("p"), Value::BulkString(good)]),
            ]),
            Value::Array(vec![
                bulk_str("10-1"),
                // A length that runs past the end: not an event.
                Value::Array(vec![bulk_str("p"), Value::BulkString(vec![0x12, 0x05, 0x01])]),
            ]),
            Value::Array(vec![
                bulk_str("10-2"),
                Value::Array(vec![bulk_str("e"), bulk_str(r#"{"kind":"npc.moved"}"#)]),
            ]),
        ]);
        let decoded = stream_entries(&entries);
        assert_eq!(decoded.len(), 3);
        assert_eq!(decoded[0].0, Offset(10, 0));
        assert_eq!(decoded[0].1.as_ref().map(|e| e.region_ids.clone()), Some(vec![2]));
        assert_eq!(decoded[0].1.as_ref().map(|e| e.kind()), Some("rumor.spread"));
        assert_eq!(decoded[1].0, Offset(10, 1));
        assert!(decoded[1].1.is_none());
        assert_eq!(decoded[2].0, Offset(10, 2));
        assert!(decoded[2].1.is_none(), "an entry of the older JSON layout is skipped");
        let xread = Value::Array(vec![Value::Array(vec![bulk_str("vdm:events"), entries])]);
        assert_eq!(xread_entries(&xread).len(), 3);
        assert!(xread_entries(&Value::Nil).is_empty());
    }
}
