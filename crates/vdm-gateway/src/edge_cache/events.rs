//! The bus listener: every replica follows the event bus and drops what a
//! change names, so a write through any replica is dropped on all of them.

use vdm_kit::bus::{Event, EventBody, EventBus, Heard};
use vdm_kit::shutdown::CancellationToken;
use vdm_proto::events::v1::ResourceKind;

use super::{EdgeCache, Kind};

impl EdgeCache {
    /// Follows the event bus until `shutdown`, dropping what each change
    /// names. Every replica runs one, so a write through any replica is
    /// dropped on all of them.
    pub fn spawn_listener(&self, bus: &EventBus, shutdown: CancellationToken) {
        if self.inner.is_none() {
            return;
        }
        let cache = self.clone();
        let subscription = bus.subscribe();
        tokio::spawn(subscription.follow(shutdown, move |heard| {
            let cache = cache.clone();
            async move {
                match heard {
                    Heard::Event(event) => match change_of(&event) {
                        Some(Change::Of(kind, id)) => cache.invalidate(kind, id).await,
                        Some(Change::Unknown) => cache.clear().await,
                        None => {}
                    },
                    Heard::Missed(missed) => {
                        // Changes may be among the missed events.
                        tracing::error!(missed, "edge cache fell behind the event bus; dropping every entry");
                        cache.clear().await;
                    }
                }
            }
        }));
    }
}

/// What a bus event says about the cached models.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    /// This id (0: any) of this kind changed.
    Of(Kind, i64),
    /// Something changed that this gateway cannot place (a kind from a
    /// newer publisher).
    Unknown,
}

fn change_of(event: &Event) -> Option<Change> {
    match event.body.as_ref()? {
        EventBody::ResourceChanged(changed) => match changed.kind() {
            // Items are not kept at the edge.
            ResourceKind::Item => None,
            kind => Some(match Kind::from_proto(kind) {
                Some(kind) => Change::Of(kind, changed.id),
                None => Change::Unknown,
            }),
        },
        // A move changes the NPC's public body (region and hex).
        EventBody::NpcMoved(moved) => Some(Change::Of(Kind::Npc, moved.npc_id)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use vdm_proto::events::v1::ResourceKind;

    use super::*;

    #[test]
    fn changes_are_read_from_the_bus_events() {
        let changed = Event::resource_changed(ResourceKind::Region, 4);
        assert_eq!(change_of(&changed), Some(Change::Of(Kind::Region, 4)));
        let unknown = Event::resource_changed(ResourceKind::Unspecified, 4);
        assert_eq!(change_of(&unknown), Some(Change::Unknown));
        assert_eq!(change_of(&Event::default()), None);
    }
}
