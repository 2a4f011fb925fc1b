//! Routing bus events to sockets: the one task per gateway that follows
//! the bus, numbers each push for every socket it concerns (`seq`), queues
//! it there (cutting off a socket whose queue is full), and keeps the ring
//! of recent events a resume replays from.

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;
use vdm_kit::bus::{Delivery, Event, EventBus, Offset};
use vdm_kit::shutdown::CancellationToken;

use super::{Hub, Out};
use crate::realtime::envelope::Outbound;

impl Hub {
    /// Starts the hub's tasks: delivery of bus events until shutdown, the
    /// session-store writer, and periodic checkpoints (which also trim the
    /// bus history). Called once per gateway.
    pub fn spawn(self: Arc<Self>, bus: EventBus, shutdown: CancellationToken) {
        let subscription = bus.subscribe();
        if let Some(position) = subscription.position {
            self.lock().join_at(position);
        }
        let mut deliveries = subscription.deliveries;
        let hub = self.clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            loop {
                let delivery = tokio::select! {
                    () = stop.cancelled() => return,
                    received = deliveries.recv() => received,
                };
                match delivery {
                    Ok(Delivery::Event(offset, event)) => hub.deliver(offset, &event),
                    Ok(Delivery::Position(position)) => hub.lock().join_at(position),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                        tracing::error!(missed, "push delivery fell behind the event bus; events dropped");
                        metrics::counter!("vdm_ws_events_dropped_total").increment(missed);
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        });
        self.spawn_writer();
        let every = self.config.checkpoint_every;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.tick().await;
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    _ = tick.tick() => {}
                }
                self.checkpoint_all();
                self.store.sweep();
                if let Err(err) = bus.trim_history(self.config.history()).await {
                    tracing::warn!(error = %err, "event history not trimmed");
                }
            }
        });
    }

    /// Routes an event: numbers it for every socket it concerns and queues
    /// it there, and keeps it in the ring.
    pub(super) fn deliver(&self, offset: Offset, event: &Arc<Event>) {
        let mut state = self.lock();
        if state.position.is_some_and(|position| offset <= position) {
            return;
        }
        state.position = Some(offset);
        let now = Instant::now();
        state.ring.push_back((offset, now, event.clone()));
        let (keep, cap) = self.ring_keep;
        while state.ring.len() > cap
            || state
                .ring
                .front()
                .is_some_and(|(_, at, _)| now.duration_since(*at) > keep)
        {
            if let Some((dropped, _, _)) = state.ring.pop_front() {
                state.floor = Some(dropped);
            }
        }
        if !crate::pushes::is_pushed(event) {
            // Between gateways (or unknown here): no socket numbers it.
            return;
        }
        let outbound = Outbound::new(event.clone());
        // Sockets of the player and of each region; a socket in several of
        // those sets gets the event once.
        let mut targets: Vec<u64> = Vec::new();
        let mut sources = 0;
        if let Some(player) = event.player_id
            && let Some(ids) = state.by_player.get(&player)
        {
            targets.extend(ids.iter().copied());
            sources += 1;
        }
        for region in &event.region_ids {
            if let Some(ids) = state.by_region.get(region) {
                targets.extend(ids.iter().copied());
                sources += 1;
            }
        }
        if sources > 1 {
            targets.sort_unstable();
            targets.dedup();
        }
        for id in targets {
            let Some(conn) = state.conns.get_mut(&id) else { continue };
            if offset <= conn.skip_until {
                continue;
            }
            conn.seq += 1;
            match conn.tx.try_send(Out::Push(conn.seq, outbound.clone())) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => {
                    if !conn.kill.is_cancelled() {
                        tracing::warn!(player.id = conn.player_id, "socket too slow for its pushes; closing it");
                        metrics::counter!("vdm_ws_slow_consumers_total").increment(1);
                        conn.kill.cancel();
                    }
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}
