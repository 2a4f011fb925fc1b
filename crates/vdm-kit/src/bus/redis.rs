//! The Redis transport: the stream `<prefix>:events`. A publish is one
//! `XADD` (the event protobuf-encoded); one task per bus follows the stream
//! with a blocking `XREAD` into a local broadcast, reconnecting by itself
//! and continuing after the last event it delivered; `XRANGE` reads the
//! stream back for resumes.
//!
//! Replies are decoded here, entry by entry: an entry that is not an event
//! (another layout, a bad write) keeps its offset so readers move past it,
//! where decoding the whole reply at once would fail the batch, and the
//! follower would read the same entries again forever.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
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
    local: broadcast::Sender<Delivery>,
    /// Whether the following task runs (one per bus).
    following: Arc<AtomicBool>,
}

impl RedisBus {
    pub(super) fn new(
        pool: &crate::redis_pool::RedisPool,
        connection: &redis::ConnectionInfo,
        prefix: &str,
    ) -> RedisBus {
        RedisBus {
            pool: pool.clone(),
            connection: connection.clone(),
            stream: format!("{prefix}:events"),
            local: broadcast::channel(CAPACITY).0,
            following: Arc::new(AtomicBool::new(false)),
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

    /// Everything published from now on; the position comes as the first
    /// delivery ([`Delivery::Position`]).
    pub(super) fn subscribe(&self) -> Subscription {
        let deliveries = self.local.subscribe();
        self.ensure_following();
        Subscription {
            position: None,
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

    fn ensure_following(&self) {
        if self.following.swap(true, Ordering::AcqRel) {
            return;
        }
        let (connection, stream, following) = (self.connection.clone(), self.stream.clone(), self.following.clone());
        let local = self.local.clone();
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
}
