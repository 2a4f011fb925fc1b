//! The NPC service, as the quest service needs it: the faction of a
//! quest's giver, whose standing a completion raises. The one place this
//! crate speaks `vdm.npc.v1`.

use tonic::Code;
use vdm_kit::grpc::GrpcChannel;
use vdm_proto::npc::v1 as pb;
use vdm_proto::npc::v1::npc_service_client::NpcServiceClient;

use crate::domain::GiverFaction;

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
}
