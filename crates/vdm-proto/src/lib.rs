//! Generated gRPC code for every vdm service, one module per proto package.
//!
//! The `.proto` files under the workspace's `proto/` folder are the contract;
//! this crate only includes what `build.rs` generated from them, plus the
//! encoded descriptor set that each server registers for reflection.

/// The encoded `FileDescriptorSet` of every vdm proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdm_descriptor.bin"));

/// Quest definitions and player quest progress (`vdm.quest.v1`).
pub mod quest {
    /// Version 1 of the quest contract.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("vdm.quest.v1");
    }
}

/// NPCs, their dispositions and memories (`vdm.npc.v1`).
pub mod npc {
    /// Version 1 of the NPC contract.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("vdm.npc.v1");
    }
}

/// Regions, factions, the world clock and world events (`vdm.world.v1`).
pub mod world {
    /// Version 1 of the world contract.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("vdm.world.v1");
    }
}

/// Client telemetry and backend stats (`vdm.metrics.v1`).
pub mod metrics {
    /// Version 1 of the metrics contract.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("vdm.metrics.v1");
    }
}

/// Rumors, their variants and who knows them (`vdm.rumor.v1`).
pub mod rumor {
    /// Version 1 of the rumor contract.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("vdm.rumor.v1");
    }
}

/// Accounts, profiles, items, inventories and the ledger (`vdm.player.v1`).
pub mod player {
    /// Version 1 of the player contract.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("vdm.player.v1");
    }
}

/// Events services publish on the bus and the gateway pushes (`vdm.events.v1`).
pub mod events {
    /// Version 1 of the event schema.
    pub mod v1 {
        #![allow(missing_docs, clippy::all)]
        tonic::include_proto!("vdm.events.v1");

        impl Event {
            /// The push name clients see (`quest.updated`, ...), or
            /// `session.revoked` (between gateways), `resource.changed`
            /// (services to gateways), `disposition.changed` (between NPC
            /// replicas), or `empty` for an event
            /// without a body (from a newer publisher).
            pub fn kind(&self) -> &'static str {
                match &self.body {
                    Some(event::Body::QuestUpdated(_)) => "quest.updated",
                    Some(event::Body::NpcMoved(_)) => "npc.moved",
                    Some(event::Body::WorldEvent(_)) => "world.event",
                    Some(event::Body::RumorHeard(_)) => "rumor.heard",
                    Some(event::Body::RumorSpread(_)) => "rumor.spread",
                    Some(event::Body::SessionRevoked(_)) => "session.revoked",
                    Some(event::Body::PlayerUpdated(_)) => "player.updated",
                    Some(event::Body::PlayerLevelUp(_)) => "player.level_up",
                    Some(event::Body::ResourceChanged(_)) => "resource.changed",
                    Some(event::Body::DispositionChanged(_)) => "disposition.changed",
                    None => "empty",
                }
            }

            /// The event that tells gateways a public read model changed
            /// (`id` 0: any of `kind`); routed to no socket.
            pub fn resource_changed(kind: ResourceKind, id: i64) -> Event {
                Event {
                    player_id: None,
                    region_ids: Vec::new(),
                    body: Some(event::Body::ResourceChanged(ResourceChanged { kind: kind as i32, id })),
                }
            }
        }
    }
}
