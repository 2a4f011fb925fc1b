//! The world service, as the NPC service needs it: the cells of a region,
//! the region holding a hex, whether a faction exists, the game time. The
//! one place this crate speaks `vdm.world.v1`; its answers become domain
//! values and its errors [`NpcError`]s.

use tonic::Code;
use vdm_kit::ErrorCode;
use vdm_kit::grpc::GrpcChannel;
use vdm_proto::world::v1 as pb;
use vdm_proto::world::v1::world_service_client::WorldServiceClient;

use crate::domain::Hex;
use crate::error::{NpcError, NpcResult};

/// A client of the world service (cheap to clone: clones share one
/// HTTP/2 connection).
#[derive(Clone)]
pub struct WorldClient {
    client: WorldServiceClient<GrpcChannel>,
}

impl WorldClient {
    /// A client of the world service over `channel` (lazily connecting,
    /// or in this process).
    pub fn new(channel: GrpcChannel) -> WorldClient {
        WorldClient {
            client: WorldServiceClient::new(channel),
        }
    }

    /// The cells of a region, in q then r order.
    pub async fn region_cells(&self, region_id: i64) -> NpcResult<Vec<Hex>> {
        let region = self
            .client
            .clone()
            .get_region(pb::GetRegionRequest { id: region_id })
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => NpcError::UnknownRegion(region_id),
                _ => unexpected(status),
            })?
            .into_inner();
        Ok(region.cells.into_iter().map(|c| Hex::new(c.q, c.r)).collect())
    }

    /// The id of the region that holds `hex`.
    pub async fn region_at(&self, hex: Hex) -> NpcResult<i64> {
        let region = self
            .client
            .clone()
            .get_region_at(pb::GetRegionAtRequest {
                hex: Some(pb::Hex { q: hex.q, r: hex.r }),
            })
            .await
            .map_err(|status| match status.code() {
                Code::NotFound => NpcError::OutsideMap(hex),
                _ => unexpected(status),
            })?
            .into_inner();
        Ok(region.id)
    }

    /// Whether a faction exists (the faction list is small and cached there).
    pub async fn faction_exists(&self, faction_id: i64) -> NpcResult<bool> {
        let factions = self
            .client
            .clone()
            .list_factions(pb::ListFactionsRequest {})
            .await
            .map_err(unexpected)?
            .into_inner()
            .factions;
        Ok(factions.iter().any(|f| f.id == faction_id))
    }

    /// The world clock's game time now.
    pub async fn game_time_ms(&self) -> NpcResult<i64> {
        Ok(self
            .client
            .clone()
            .get_world_time(pb::GetWorldTimeRequest {})
            .await
            .map_err(unexpected)?
            .into_inner()
            .game_time_ms)
    }
}

/// A world answer the NPC service cannot turn into a client error: the
/// world is down (retry later) or failed.
fn unexpected(status: tonic::Status) -> NpcError {
    if ErrorCode::from_grpc(status.code()).is_retryable() {
        NpcError::WorldUnavailable(status)
    } else {
        NpcError::World(status)
    }
}
