//! Generated gRPC code for every vdm service, one module per proto package.
//!
//! The `.proto` files under the workspace's `proto/` folder are the contract;
//! this crate only includes what `build.rs` generated from them, plus the
//! encoded descriptor set that each server registers for reflection.

/// The encoded `FileDescriptorSet` of every vdm proto, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/vdm_descriptor.bin"));

/// The contract version: `v1-` and a hash of every proto file. The gateway
/// announces it on its WebSocket so a client built against another contract
/// is told at connect.
pub const CONTRACT: &str = include_str!(concat!(env!("OUT_DIR"), "/contract.txt"));

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
