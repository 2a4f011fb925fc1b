//! The in-process bus: one broadcast per key prefix, shared by everything
//! in the process (the embedded default, where services and the gateway
//! share one process). Offsets are `0-n`, handed out under the same lock as
//! the send, so deliveries arrive in offset order.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::broadcast;

use super::{CAPACITY, Delivery, Event, Offset, Subscription};

/// The in-process bus of one key prefix.
pub(super) struct ProcessBus {
    last: Mutex<u64>,
    sender: broadcast::Sender<Delivery>,
}

/// The in-process bus of a key prefix (made on first use).
pub(super) fn bus(prefix: &str) -> Arc<ProcessBus> {
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

    /// Numbers the event and sends it to every subscriber.
    pub(super) fn publish(&self, event: Event) {
        let mut last = self.lock();
        *last += 1;
        // No subscriber is not an error: no gateway is listening yet.
        let _ = self.sender.send(Delivery::Event(Offset(0, *last), Arc::new(event)));
    }

    /// Everything published from now on; the position is known at once.
    pub(super) fn subscribe(&self) -> Subscription {
        let last = self.lock();
        Subscription {
            position: Some(Offset(0, *last)),
            deliveries: self.sender.subscribe(),
        }
    }
}
