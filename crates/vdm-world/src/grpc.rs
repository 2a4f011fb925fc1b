//! The gRPC face of the world service: convert the request, call
//! [`WorldService`], convert the answer back. Protobuf types stop here.

use tonic::{Request, Response, Status};
use vdm_proto::world::v1 as pb;
use vdm_proto::world::v1::world_service_server::WorldServiceServer;

use crate::domain::{EventInput, Faction, FactionRelation, Hex, Region, RegionInput, WorldEvent};
use crate::error::WorldError;
use crate::service::WorldService;

/// The full gRPC name of the service, as health checks report it.
pub const SERVICE_NAME: &str = "vdm.world.v1.WorldService";

/// Implements `vdm.world.v1.WorldService` over [`WorldService`].
#[derive(Clone)]
pub struct WorldGrpc {
    service: WorldService,
}

impl WorldGrpc {
    /// Wraps the service for tonic. Compressed requests are accepted;
    /// answers go uncompressed (small messages on a data-centre network, as
    /// for the quest service).
    pub fn server(service: WorldService) -> WorldServiceServer<WorldGrpc> {
        use tonic::codec::CompressionEncoding;
        WorldServiceServer::new(WorldGrpc { service })
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
    }
}

#[tonic::async_trait]
impl pb::world_service_server::WorldService for WorldGrpc {
    async fn list_regions(
        &self,
        _request: Request<pb::ListRegionsRequest>,
    ) -> Result<Response<pb::ListRegionsResponse>, Status> {
        let regions = self.service.list_regions().await?;
        Ok(Response::new(pb::ListRegionsResponse {
            regions: regions.into_iter().map(pb::Region::from).collect(),
        }))
    }

    async fn get_region(&self, request: Request<pb::GetRegionRequest>) -> Result<Response<pb::Region>, Status> {
        let region = self.service.get_region(request.into_inner().id).await?;
        Ok(Response::new(pb::Region::from(region)))
    }

    async fn get_region_at(&self, request: Request<pb::GetRegionAtRequest>) -> Result<Response<pb::Region>, Status> {
        let hex = request
            .into_inner()
            .hex
            .ok_or_else(|| WorldError::Invalid("hex is required".to_owned()))?;
        let region = self.service.region_at(Hex::from(hex)).await?;
        Ok(Response::new(pb::Region::from(region)))
    }

    async fn upsert_region(
        &self,
        request: Request<pb::UpsertRegionRequest>,
    ) -> Result<Response<pb::UpsertRegionResponse>, Status> {
        let spec = request
            .into_inner()
            .region
            .ok_or_else(|| WorldError::Invalid("region is required".to_owned()))?;
        let input = RegionInput {
            id: spec.id,
            name: spec.name,
            biome: spec.biome,
            cells: spec.cells.into_iter().map(Hex::from).collect(),
        };
        let (region, created) = self.service.upsert_region(input, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::UpsertRegionResponse {
            region: Some(pb::Region::from(region)),
            created,
        }))
    }

    async fn list_factions(
        &self,
        _request: Request<pb::ListFactionsRequest>,
    ) -> Result<Response<pb::ListFactionsResponse>, Status> {
        let factions = self.service.list_factions().await?;
        Ok(Response::new(pb::ListFactionsResponse {
            factions: factions.into_iter().map(pb::Faction::from).collect(),
        }))
    }

    async fn upsert_faction(
        &self,
        request: Request<pb::UpsertFactionRequest>,
    ) -> Result<Response<pb::UpsertFactionResponse>, Status> {
        let faction = request
            .into_inner()
            .faction
            .ok_or_else(|| WorldError::Invalid("faction is required".to_owned()))?;
        let (faction, created) = self
            .service
            .upsert_faction(faction.id, faction.name, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::UpsertFactionResponse {
            faction: Some(pb::Faction::from(faction)),
            created,
        }))
    }

    async fn get_faction_relations(
        &self,
        request: Request<pb::GetFactionRelationsRequest>,
    ) -> Result<Response<pb::GetFactionRelationsResponse>, Status> {
        let relations = self.service.relations(request.into_inner().faction_id).await?;
        Ok(Response::new(pb::GetFactionRelationsResponse {
            relations: relations.into_iter().map(pb::FactionRelation::from).collect(),
        }))
    }

    async fn adjust_faction_relation(
        &self,
        request: Request<pb::AdjustFactionRelationRequest>,
    ) -> Result<Response<pb::FactionRelation>, Status> {
        let r = request.into_inner();
        let relation = self
            .service
            .adjust_relation(r.faction_a, r.faction_b, r.delta, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::FactionRelation::from(relation)))
    }

    async fn set_faction_relation(
        &self,
        request: Request<pb::SetFactionRelationRequest>,
    ) -> Result<Response<pb::FactionRelation>, Status> {
        let r = request.into_inner();
        let relation = self
            .service
            .set_relation(r.faction_a, r.faction_b, r.score, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::FactionRelation::from(relation)))
    }

    async fn get_world_time(
        &self,
        _request: Request<pb::GetWorldTimeRequest>,
    ) -> Result<Response<pb::WorldTime>, Status> {
        let time = self.service.time(vdm_kit::now_ms());
        Ok(Response::new(pb::WorldTime {
            game_time_ms: time.game_time_ms,
            rate: time.rate,
            real_time_ms: time.real_time_ms,
            day: time.day,
            hour: time.hour,
            minute: time.minute,
        }))
    }

    async fn publish_world_event(
        &self,
        request: Request<pb::PublishWorldEventRequest>,
    ) -> Result<Response<pb::PublishWorldEventResponse>, Status> {
        let r = request.into_inner();
        let key = Some(r.idempotency_key.as_str()).filter(|k| !k.is_empty());
        let input = EventInput {
            kind: r.kind,
            text: r.text,
            region_ids: r.region_ids,
        };
        let (event, replayed) = self.service.publish_event(input, key, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::PublishWorldEventResponse {
            event: Some(pb::WorldEvent::from(event)),
            replayed,
        }))
    }

    async fn list_world_events(
        &self,
        request: Request<pb::ListWorldEventsRequest>,
    ) -> Result<Response<pb::ListWorldEventsResponse>, Status> {
        let r = request.into_inner();
        let (events, next) = self
            .service
            .list_events(r.region_id, r.since_ms, r.limit, &r.cursor)
            .await?;
        Ok(Response::new(pb::ListWorldEventsResponse {
            events: events.into_iter().map(pb::WorldEvent::from).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn get_world_event(
        &self,
        request: Request<pb::GetWorldEventRequest>,
    ) -> Result<Response<pb::WorldEvent>, Status> {
        let event = self.service.get_event(request.into_inner().id).await?;
        Ok(Response::new(pb::WorldEvent::from(event)))
    }
}

impl From<pb::Hex> for Hex {
    fn from(hex: pb::Hex) -> Hex {
        Hex::new(hex.q, hex.r)
    }
}

impl From<Hex> for pb::Hex {
    fn from(hex: Hex) -> pb::Hex {
        pb::Hex { q: hex.q, r: hex.r }
    }
}

impl From<Region> for pb::Region {
    fn from(region: Region) -> pb::Region {
        pb::Region {
            id: region.id,
            name: region.name,
            biome: region.biome,
            cells: region.cells.into_iter().map(pb::Hex::from).collect(),
            neighbor_ids: region.neighbor_ids,
            updated_at_ms: region.updated_at_ms,
        }
    }
}

impl From<Faction> for pb::Faction {
    fn from(faction: Faction) -> pb::Faction {
        pb::Faction {
            id: faction.id,
            name: faction.name,
        }
    }
}

impl From<FactionRelation> for pb::FactionRelation {
    fn from(relation: FactionRelation) -> pb::FactionRelation {
        pb::FactionRelation {
            faction_a: relation.faction_a,
            faction_b: relation.faction_b,
            score: relation.score,
        }
    }
}

impl From<WorldEvent> for pb::WorldEvent {
    fn from(event: WorldEvent) -> pb::WorldEvent {
        pb::WorldEvent {
            id: event.id,
            kind: event.kind,
            text: event.text,
            region_ids: event.region_ids,
            game_time_ms: event.game_time_ms,
            created_at_ms: event.created_at_ms,
        }
    }
}
