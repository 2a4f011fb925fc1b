//! The NPC service, as the quest service needs it: the faction of a
//! quest's giver, whose standing a completion raises, and the change of the
//! giver's disposition a completion makes. The one place this crate speaks
//! `vdm.npc.v1`.

use tonic::Code;
use vdm_kit::grpc::GrpcChannel;
use vdm_proto::npc::v1 as pb;
use vdm_proto::npc::v1::npc_service_client::NpcServiceClient;

use crate::domain::{DispositionChange, GiverFaction};

/// A client of the NPC service (cheap to clone).
#[derive(Clone)]
pub struct Npcs {
    client: NpcServiceClient<GrpcChannel>,
}

impl Npcs {
    /// A client over this channel (lazily connecting, or in this process).
    pub fn new(channel: GrpcChannel) -> Npcs {
        Npcs {
            client: NpcServiceClient::new(channel),
        }
    }

    /// The faction of NPC `npc_id`. An NPC that no longer exists has none.
    /// `Err`: the NPC service could not answer (try again later).
    pub async fn faction_of(&self, npc_id: i64) -> Result<GiverFaction, tonic::Status> {
        match self.client.clone().get_npc(pb::GetNpcRequest { id: npc_id }).await {
            Ok(npc) => Ok(npc
                .into_inner()
                .faction_id
                .map_or(GiverFaction::None, GiverFaction::Faction)),
            Err(status) if matches!(status.code(), Code::NotFound | Code::InvalidArgument) => Ok(GiverFaction::None),
            Err(status) => Err(status),
        }
    }

    /// Applies a completion's change of the giver's disposition, once by
    /// its key: a repeat (a relay retrying, another replica's relay) changes
    /// nothing. Returns the disposition's score now.
    pub async fn adjust_disposition(&self, change: &DispositionChange) -> Result<i32, tonic::Status> {
        let request = pb::AdjustDispositionRequest {
            npc_id: change.npc_id,
            player_id: change.player_id,
            delta: change.delta,
            idempotency_key: change.key.clone(),
        };
        Ok(self
            .client
            .clone()
            .adjust_disposition(request)
            .await?
            .into_inner()
            .score)
    }
}
