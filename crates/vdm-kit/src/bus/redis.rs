//! The Redis transport: the stream `<prefix>:events`. A publish is one
//! `XADD` (the event protobuf-encoded); one task per stream and process
//! follows it with a blocking `XREAD` into a local broadcast, reconnecting
//! by itself and continuing after the last event it delivered; `XRANGE`
//! reads the stream back for resumes. Every bus of the same server and
//! stream in a process is one ([`shared`]): `vdm all` builds a bus per
//! service, and each event is then read, decoded and broadcast once.
//!
//! A subscriber that joins while the stream is already followed learns at
//! once where it joined: the follower records the offset of each delivery
//! and sends it under one lock ([`Follower`]), and a subscription is taken
//! under the same lock, so it starts exactly after the recorded offset, with
//! no gap and no repeat.
//!
//! Replies are decoded here, entry by entry: an entry that is not an event
//! (another layout, a bad write) keeps its offset so readers move past it,
//! where decoding the whole reply at once would fail the batch, and the
//! follower would read the same entries again forever.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;

use deadpool_redis::redis::{self, Value};
use tokio::sync::broadcast;

use super::{CAPACITY, Delivery, Event, HistoryError, Offset, Subscription};

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

/// The stream of one key prefix, and the local broadcast it is followed into.
pub(super) struct RedisBus {
    pool: crate::redis_pool::RedisPool,
    connection: redis::ConnectionInfo,
    stream: String,
    follower: Arc<Follower>,
}

/// The local broadcast and the state of the task that follows the stream
/// into it. Deliveries are sent, and subscriptions taken, under `state`'s
/// lock.
struct Follower {
    local: broadcast::Sender<Delivery>,
    state: Mutex<Following>,
}

#[derive(Default)]
struct Following {
    /// Whether the following task runs (one per stream and process).
    running: bool,
    /// The offset of the last delivery, once the task has joined the stream.
    position: Option<Offset>,
}

/// The bus of `connection`'s server and `prefix`'s stream in this process:
/// the one already in use, or a new one.
pub(super) fn shared(
    pool: &crate::redis_pool::RedisPool,
    connection: &redis::ConnectionInfo,
    prefix: &str,
) -> Arc<RedisBus> {
    static BUSES: OnceLock<Mutex<HashMap<String, Weak<RedisBus>>>> = OnceLock::new();
    let mut buses = BUSES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // The server's address and settings, and the stream.
    let key = format!("{connection:?} {prefix}");
    if let Some(bus) = buses.get(&key).and_then(Weak::upgrade) {
        return bus;
    }
    buses.retain(|_, bus| bus.strong_count() > 0);
    let bus = Arc::new(RedisBus::new(pool, connection, prefix));
    buses.insert(key, Arc::downgrade(&bus));
    bus
}

impl Follower {
    fn lock(&self) -> MutexGuard<'_, Following> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Records `at` as delivered and sends `delivery` (when there is one);
    /// false, with the task marked stopped, when nobody listens any more.
    fn deliver(&self, at: Offset, delivery: Option<Delivery>) -> bool {
        let mut state = self.lock();
        state.position = Some(at);
        let listened = match delivery {
            Some(delivery) => self.local.send(delivery).is_ok(),
            None => self.local.receiver_count() > 0,
        };
        if !listened {
            *state = Following::default();
        }
        listened
    }
}

impl RedisBus {
    fn new(pool: &crate::redis_pool::RedisPool, connection: &redis::ConnectionInfo, prefix: &str) -> RedisBus {
        RedisBus {
            pool: pool.clone(),
            connection: connection.clone(),
            stream: format!("{prefix}:events"),
            follower: Arc::new(Follower {
                local: broadcast::channel(CAPACITY).0,
                state: Mutex::new(Following::default()),
            }),
        }
    }

    /// `XADD`s the event; failures are logged and counted.
    pub(super) async fn publish(&self, event: Event) {
        let kind = event.kind();
        let bytes = prost::Message::encode_to_vec(&event);
        let call = async {
            let mut conn = self.pool.get().await.map_err(|e| e.to_string())?;
            redis::cmd("XADD")
                .arg(&self.stream)
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

    /// Everything delivered from now on. The position is known at once
    /// when the stream is already followed; otherwise it comes as the first
    /// delivery ([`Delivery::Position`]) once the new follower has joined.
    pub(super) fn subscribe(&self) -> Subscription {
        let mut state = self.follower.lock();
        let deliveries = self.follower.local.subscribe();
        if !state.running {
            state.running = true;
            self.spawn_follower();
        }
        Subscription {
            position: state.position,
            deliveries,
        }
    }

    pub(super) async fn history_after(
        &self,
        after: Offset,
        max: usize,
    ) -> Result<Vec<(Offset, Arc<Event>)>, HistoryError> {
        let mut conn = self.pool.get().await.map_err(|e| HistoryError(e.to_string()))?;
        let mut events = Vec::new();
        let mut from = after;
        while events.len() < max {
            let count = READ_COUNT.min(max - events.len());
            let reply: Value = redis::cmd("XRANGE")
                .arg(&self.stream)
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

    pub(super) async fn trim_history(&self, keep: Duration) -> Result<(), HistoryError> {
        let mut conn = self.pool.get().await.map_err(|e| HistoryError(e.to_string()))?;
        let trimmed: i64 = redis::cmd("EVAL")
            .arg(TRIM_BY_AGE)
            .arg(1)
            .arg(&self.stream)
            .arg(u64::try_from(keep.as_millis()).unwrap_or(u64::MAX))
            .query_async(&mut conn)
            .await
            .map_err(|e| HistoryError(e.to_string()))?;
        metrics::counter!("vdm_event_history_trimmed_total").increment(u64::try_from(trimmed).unwrap_or(0));
        Ok(())
    }

    fn spawn_follower(&self) {
        let (connection, stream, follower) = (self.connection.clone(), self.stream.clone(), self.follower.clone());
        tokio::spawn(async move {
            let mut backoff = Duration::from_millis(100);
            loop {
                match follow(&connection, &stream, &follower).await {
                    // Every receiver is gone; the next subscribe restarts it.
                    Ok(()) => return,
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

/// Follows the stream into the local broadcast from the last delivery (or
/// from the stream's current end, the first time) until every receiver is
/// gone (`Ok`) or the connection fails (`Err`).
async fn follow(connection: &redis::ConnectionInfo, stream: &str, follower: &Follower) -> Result<(), String> {
    let client = redis::Client::open(connection.clone()).map_err(|e| e.to_string())?;
    let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(READ_BLOCK + Duration::from_secs(5)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .map_err(|e| e.to_string())?;
    let known = follower.lock().position;
    let start = match known {
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
    tracing::info!(stream, from = %start, "following events");
    if !follower.deliver(start, Some(Delivery::Position(start))) {
        return Ok(());
    }
    let block_ms = u64::try_from(READ_BLOCK.as_millis()).unwrap_or(5_000);
    let mut from = start;
    loop {
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
        let entries = xread_entries(&reply);
        if entries.is_empty() && !follower.deliver(from, None) {
            return Ok(());
        }
        for (offset, event) in entries {
            from = offset;
            // An entry that is not an event is passed over, not delivered.
            let delivery = event.map(|event| Delivery::Event(offset, event));
            if !follower.deliver(offset, delivery) {
                return Ok(());
            }
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
    use crate::bus::EventBody;

    fn bulk_str(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
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

    /// A bus on the test Redis (`VDM_TEST_REDIS_URL`) under a fresh
    /// prefix, twice (the same shared follower), with the store and the
    /// stream's key; `None` when Redis does not answer, unless
    /// `VDM_TEST_REQUIRE_EXTERNAL=1`.
    async fn two_buses_on_test_redis() -> Option<(
        crate::bus::EventBus,
        crate::bus::EventBus,
        crate::cache::CacheStore,
        String,
    )> {
        let url = std::env::var("VDM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
        let prefix = format!(
            "tbus{}",
            crate::secure::random_token(5).expect("the system random source works")
        );
        let config = crate::config::CacheConfig {
            redis_url: Some(crate::config::Secret::new(url.clone())),
            key_prefix: prefix.clone(),
            ..crate::config::CacheConfig::in_process()
        };
        let store = crate::cache::CacheStore::new(&config).expect("the test Redis URL parses");
        let pool = store.redis_pool().expect("a Redis store has a pool");
        if let Err(err) = pool.get().await {
            assert!(
                !std::env::var("VDM_TEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1"),
                "VDM_TEST_REQUIRE_EXTERNAL=1 but redis at {url} does not answer: {err}"
            );
            eprintln!("SKIPPED redis: {err}");
            return None;
        }
        let (first, second) = (
            crate::bus::EventBus::new(&store, &prefix),
            crate::bus::EventBus::new(&store, &prefix),
        );
        Some((first, second, store, format!("{prefix}:events")))
    }

    fn spread(region_id: i64) -> Event {
        Event {
            player_id: None,
            region_ids: vec![region_id],
            body: Some(EventBody::RumorSpread(vdm_proto::events::v1::RumorSpread {
                region_id,
                tellings: 1,
            })),
        }
    }

    async fn next_event(subscription: &mut Subscription) -> (Offset, Arc<Event>) {
        loop {
            let delivery = tokio::time::timeout(Duration::from_secs(5), subscription.deliveries.recv())
                .await
                .expect("a delivery within 5 s")
                .expect("the bus is open and kept up");
            if let Delivery::Event(offset, event) = delivery {
                return (offset, event);
            }
        }
    }

    /// A subscriber joining a stream this process already follows learns
    /// its position at once and then receives exactly the stream's entries
    /// after it: none missed, none twice, even while events keep coming.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_late_subscriber_joins_the_shared_follower_with_no_gap_or_repeat() {
        let Some((first, second, store, stream)) = two_buses_on_test_redis().await else {
            return;
        };
        let mut early = first.subscribe();
        assert_eq!(
            early.position, None,
            "the first subscriber waits for the follower to join"
        );
        let joined = tokio::time::timeout(Duration::from_secs(5), early.deliveries.recv())
            .await
            .expect("the follower joins within 5 s");
        assert!(matches!(joined, Ok(Delivery::Position(_))), "{joined:?}");
        first.publish(spread(1)).await;
        let (seen, _) = next_event(&mut early).await;

        let late = second.subscribe();
        assert_eq!(
            late.position,
            Some(seen),
            "a late subscriber starts where the follower is"
        );

        // Join again and again while a publisher runs: each subscription
        // must then receive exactly what the stream holds after its position.
        let publisher = {
            let first = first.clone();
            tokio::spawn(async move {
                for region in 2..202 {
                    first.publish(spread(region)).await;
                }
            })
        };
        let mut joins = Vec::new();
        for _ in 0..20 {
            tokio::time::sleep(Duration::from_millis(3)).await;
            joins.push(second.subscribe());
        }
        publisher.await.expect("the publisher finished");
        first.publish(spread(0)).await;
        for mut join in joins {
            let position = join.position.expect("the stream is followed, so the position is known");
            let stored: Vec<Offset> = first
                .history_after(position, 1_000)
                .await
                .expect("the stream reads back")
                .into_iter()
                .map(|(offset, _)| offset)
                .collect();
            let mut received = Vec::new();
            while received.len() < stored.len() {
                received.push(next_event(&mut join).await.0);
            }
            assert_eq!(received, stored, "joined at {position}");
        }
        let mut conn = store
            .redis_pool()
            .expect("a Redis store")
            .get()
            .await
            .expect("Redis answers");
        let _: Result<i64, _> = redis::cmd("DEL").arg(stream).query_async(&mut conn).await;
    }
}
