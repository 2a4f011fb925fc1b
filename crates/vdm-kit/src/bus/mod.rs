//! Events between processes: services publish, gateways deliver to sockets.
//!
//! One interface, two transports:
//! - with `REDIS_URL`, a Redis stream (`<prefix>:events`): a publish is one
//!   `XADD`; every process follows the stream with one blocking `XREAD`
//!   (shared by the buses of all its services), so each receives every
//!   event, in the one order Redis gave them. The stream doubles as the replay buffer: a gateway resuming a
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
//!
//! This module holds the types and [`EventBus`], which hands each call to
//! its transport: [`redis`] (the stream) or [`process`] (the in-process
//! broadcast).

mod process;
mod redis;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;
use tracing::Instrument;

use crate::cache::CacheStore;
use crate::shutdown::CancellationToken;

/// Deliveries buffered per subscriber before a slow one starts losing them.
const CAPACITY: usize = 65_536;

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

/// What [`Subscription::follow`] hands its caller.
#[derive(Debug)]
pub enum Heard {
    /// An event.
    Event(Arc<Event>),
    /// The subscriber fell this many deliveries behind: whatever they
    /// said is unknown.
    Missed(u64),
}

impl Subscription {
    /// Calls `on` with every event from the subscription's start, and with
    /// the count of deliveries missed whenever the subscriber falls behind,
    /// until `stop` or the bus closes. Subscribe where the listener must
    /// start hearing, then move the subscription into the task that
    /// follows it.
    pub async fn follow<F, Fut>(mut self, stop: CancellationToken, mut on: F)
    where
        F: FnMut(Heard) -> Fut,
        Fut: Future<Output = ()>,
    {
        loop {
            let delivery = tokio::select! {
                () = stop.cancelled() => return,
                received = self.deliveries.recv() => received,
            };
            match delivery {
                Ok(Delivery::Event(_, event)) => on(Heard::Event(event)).await,
                Ok(Delivery::Position(_)) => {}
                Err(broadcast::error::RecvError::Lagged(missed)) => on(Heard::Missed(missed)).await,
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }
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
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    /// The Redis stream, followed into a local broadcast.
    Redis(Arc<redis::RedisBus>),
    /// The in-process bus of a key prefix.
    Process(Arc<process::ProcessBus>),
}

impl EventBus {
    /// The bus of a cache store's backend: the Redis stream
    /// `<prefix>:events`, or the in-process bus of `prefix`.
    pub fn new(store: &CacheStore, prefix: &str) -> EventBus {
        let transport = match (store.redis_pool(), store.redis_connection()) {
            (Some(pool), Some(connection)) => Transport::Redis(redis::shared(pool, connection, prefix)),
            _ => Transport::Process(process::bus(prefix)),
        };
        EventBus { transport }
    }

    /// Publishes an event; failures are logged and counted, never returned.
    pub async fn publish(&self, event: Event) {
        let kind = event.kind();
        let span = tracing::info_span!(
            "event_publish",
            otel.name = "PUBLISH events",
            otel.kind = "producer",
            messaging.system = match self.transport {
                Transport::Redis(_) => "redis",
                Transport::Process(_) => "in_process",
            },
            messaging.destination.name = "events",
            event = kind,
        );
        match &self.transport {
            Transport::Redis(bus) => bus.publish(event).instrument(span).await,
            Transport::Process(bus) => span.in_scope(|| bus.publish(event)),
        }
        metrics::counter!("vdm_events_published_total", "event" => kind).increment(1);
    }

    /// Receives every event published from now on. With Redis, the first
    /// call in the process starts one background task that follows the
    /// stream and reconnects by itself, continuing after the last event it
    /// delivered; later calls join it where it is.
    pub fn subscribe(&self) -> Subscription {
        match &self.transport {
            Transport::Redis(bus) => bus.subscribe(),
            Transport::Process(bus) => bus.subscribe(),
        }
    }

    /// Whether published events can be read back ([`EventBus::history_after`]):
    /// true with Redis; the in-process bus keeps nothing.
    pub fn keeps_history(&self) -> bool {
        matches!(self.transport, Transport::Redis(_))
    }

    /// Up to `max` events after `after`, oldest first, from the Redis
    /// stream. Fewer than `max` means the stream's end was reached.
    pub async fn history_after(&self, after: Offset, max: usize) -> Result<Vec<(Offset, Arc<Event>)>, HistoryError> {
        match &self.transport {
            Transport::Redis(bus) => bus.history_after(after, max).await,
            Transport::Process(_) => Err(HistoryError("the in-process bus keeps no history".to_owned())),
        }
    }

    /// Drops stream entries older than `keep` (by the Redis server's clock).
    /// A no-op on the in-process bus.
    pub async fn trim_history(&self, keep: Duration) -> Result<(), HistoryError> {
        match &self.transport {
            Transport::Redis(bus) => bus.trim_history(keep).await,
            Transport::Process(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_order_like_stream_ids() {
        assert_eq!(Offset::parse("1700000000000-3"), Some(Offset(1_700_000_000_000, 3)));
        assert!(Offset(5, 9) < Offset(6, 0));
        assert_eq!(Offset(12, 4).to_string(), "12-4");
        assert_eq!(Offset::parse("12"), None);
        assert_eq!(Offset::parse("a-1"), None);
    }
}
