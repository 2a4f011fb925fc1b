//! The gRPC face of the NPC service: convert the request, call
//! [`NpcService`], convert the answer back. Protobuf types of
//! `vdm.npc.v1` stop here.

use tonic::{Request, Response, Status};
use vdm_kit::validate::positive_filter;
use vdm_proto::npc::v1 as pb;
use vdm_proto::npc::v1::npc_service_server::NpcServiceServer;

use crate::domain::{Disposition, Hex, Memory, MemoryInput, Npc, NpcInput, NpcPatchInput, Traits};
use crate::error::NpcError;
use crate::service::{DispositionScope, NpcService};
use crate::store::NpcFilter;

/// The full gRPC name of the service, as health checks report it.
pub const SERVICE_NAME: &str = "vdm.npc.v1.NpcService";

/// Implements `vdm.npc.v1.NpcService` over [`NpcService`].
#[derive(Clone)]
pub struct NpcGrpc {
    service: NpcService,
}

impl NpcGrpc {
    /// Wraps the service for tonic. Compressed requests are accepted;
    /// answers go uncompressed (small messages on a data-centre network, as
    /// for the quest service).
    pub fn server(service: NpcService) -> NpcServiceServer<NpcGrpc> {
        use tonic::codec::CompressionEncoding;
        NpcServiceServer::new(NpcGrpc { service })
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
    }
}

#[tonic::async_trait]
impl pb::npc_service_server::NpcService for NpcGrpc {
    async fn create_npc(
        &self,
        request: Request<pb::CreateNpcRequest>,
    ) -> Result<Response<pb::CreateNpcResponse>, Status> {
        let request = request.into_inner();
        let spec = request
            .npc
            .ok_or_else(|| NpcError::Invalid("npc is required".to_owned()))?;
        let input = NpcInput {
            name: spec.name,
            region_id: spec.region_id,
            position: spec.position.map(Hex::from),
            faction_id: spec.faction_id,
            traits: spec.traits.map(|t| Traits {
                gullibility: t.gullibility,
                talkativeness: t.talkativeness,
                honesty: t.honesty,
            }),
        };
        let key = Some(request.idempotency_key.as_str()).filter(|k| !k.is_empty());
        let (npc, replayed) = self.service.create(input, key, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::CreateNpcResponse {
            npc: Some(pb::Npc::from(npc)),
            replayed,
        }))
    }

    async fn get_npc(&self, request: Request<pb::GetNpcRequest>) -> Result<Response<pb::Npc>, Status> {
        let npc = self.service.get(request.into_inner().id).await?;
        Ok(Response::new(pb::Npc::from(npc)))
    }

    async fn batch_get_npcs(
        &self,
        request: Request<pb::BatchGetNpcsRequest>,
    ) -> Result<Response<pb::BatchGetNpcsResponse>, Status> {
        let npcs = self.service.batch_get(&request.into_inner().ids).await?;
        Ok(Response::new(pb::BatchGetNpcsResponse {
            npcs: npcs.into_iter().map(pb::Npc::from).collect(),
        }))
    }

    async fn list_npcs(&self, request: Request<pb::ListNpcsRequest>) -> Result<Response<pb::ListNpcsResponse>, Status> {
        let r = request.into_inner();
        let filter = NpcFilter {
            region_id: positive_filter("region_id", r.region_id).map_err(NpcError::from)?,
            faction_id: positive_filter("faction_id", r.faction_id).map_err(NpcError::from)?,
        };
        let (npcs, next) = self.service.list(filter, r.limit, &r.cursor).await?;
        Ok(Response::new(pb::ListNpcsResponse {
            npcs: npcs.into_iter().map(pb::Npc::from).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn move_npc(&self, request: Request<pb::MoveNpcRequest>) -> Result<Response<pb::Npc>, Status> {
        let r = request.into_inner();
        let to = r.to.ok_or_else(|| NpcError::Invalid("to is required".to_owned()))?;
        let npc = self.service.move_to(r.id, Hex::from(to), vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::Npc::from(npc)))
    }

    async fn update_npc(&self, request: Request<pb::UpdateNpcRequest>) -> Result<Response<pb::Npc>, Status> {
        let r = request.into_inner();
        let input = NpcPatchInput {
            name: r.name,
            faction_id: r.faction.map(|f| f.id),
            traits: r.traits.map(|t| Traits {
                gullibility: t.gullibility,
                talkativeness: t.talkativeness,
                honesty: t.honesty,
            }),
        };
        let npc = self.service.update(r.id, input, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::Npc::from(npc)))
    }

    async fn adjust_disposition(
        &self,
        request: Request<pb::AdjustDispositionRequest>,
    ) -> Result<Response<pb::Disposition>, Status> {
        let r = request.into_inner();
        let key = Some(r.idempotency_key.as_str()).filter(|k| !k.is_empty());
        let adjusted = self
            .service
            .adjust_disposition(r.npc_id, r.player_id, r.delta, key, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::Disposition::from(adjusted.disposition)))
    }

    async fn get_disposition(
        &self,
        request: Request<pb::GetDispositionRequest>,
    ) -> Result<Response<pb::Disposition>, Status> {
        let r = request.into_inner();
        let disposition = self.service.disposition(r.npc_id, r.player_id).await?;
        Ok(Response::new(pb::Disposition::from(disposition)))
    }

    async fn batch_get_dispositions(
        &self,
        request: Request<pb::BatchGetDispositionsRequest>,
    ) -> Result<Response<pb::BatchGetDispositionsResponse>, Status> {
        let r = request.into_inner();
        let scope = match (r.npc_ids.is_empty(), r.region_id) {
            (false, None) => DispositionScope::Npcs(r.npc_ids),
            (true, Some(region_id)) => DispositionScope::Region(region_id),
            _ => {
                return Err(NpcError::Invalid("give exactly one of npc_ids and region_id".to_owned()).into());
            }
        };
        let dispositions = self.service.dispositions(r.player_id, scope).await?;
        Ok(Response::new(pb::BatchGetDispositionsResponse {
            dispositions: dispositions.into_iter().map(pb::Disposition::from).collect(),
        }))
    }

    async fn record_memory(
        &self,
        request: Request<pb::RecordMemoryRequest>,
    ) -> Result<Response<pb::RecordMemoryResponse>, Status> {
        let r = request.into_inner();
        let key = Some(r.idempotency_key.as_str()).filter(|k| !k.is_empty());
        let input = MemoryInput {
            npc_id: r.npc_id,
            kind: r.kind,
            text: r.text,
            subject_ids: r.subject_ids,
            importance: r.importance,
            game_time_ms: r.game_time_ms,
        };
        let recorded = self.service.record_memory(input, key, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::RecordMemoryResponse {
            memory: Some(pb::Memory::from(recorded.memory)),
            replayed: recorded.replayed,
            dropped_memory_ids: recorded.dropped_ids,
        }))
    }

    async fn list_memories(
        &self,
        request: Request<pb::ListMemoriesRequest>,
    ) -> Result<Response<pb::ListMemoriesResponse>, Status> {
        let r = request.into_inner();
        let (memories, next) = self.service.memories(r.npc_id, r.limit, &r.cursor).await?;
        Ok(Response::new(pb::ListMemoriesResponse {
            memories: memories.into_iter().map(pb::Memory::from).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }
}

impl From<pb::Hex> for Hex {
    fn from(hex: pb::Hex) -> Hex {
        Hex::new(hex.q, hex.r)
    }
}

impl From<Npc> for pb::Npc {
    fn from(npc: Npc) -> pb::Npc {
        pb::Npc {
            id: npc.id,
            name: npc.name,
            region_id: npc.region_id,
            position: Some(pb::Hex {
                q: npc.position.q,
                r: npc.position.r,
            }),
            faction_id: npc.faction_id,
            traits: Some(pb::Traits {
                gullibility: npc.traits.gullibility,
                talkativeness: npc.traits.talkativeness,
                honesty: npc.traits.honesty,
            }),
            created_at_ms: npc.created_at_ms,
            updated_at_ms: npc.updated_at_ms,
        }
    }
}

impl From<Disposition> for pb::Disposition {
    fn from(d: Disposition) -> pb::Disposition {
        pb::Disposition {
            npc_id: d.npc_id,
            player_id: d.player_id,
            score: d.score,
            updated_at_ms: d.updated_at_ms,
        }
    }
}

impl From<Memory> for pb::Memory {
    fn from(m: Memory) -> pb::Memory {
        pb::Memory {
            id: m.id,
            npc_id: m.npc_id,
            kind: m.kind,
            text: m.text,
            subject_ids: m.subject_ids,
            importance: m.importance,
            game_time_ms: m.game_time_ms,
            created_at_ms: m.created_at_ms,
        }
    }
}
