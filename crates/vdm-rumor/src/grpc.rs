//! The gRPC face of the rumor service: convert the request, call
//! [`RumorService`], convert the answer back. Protobuf types of
//! `vdm.rumor.v1` stop here.

use tonic::{Request, Response, Status};
use vdm_kit::validate::positive_filter;
use vdm_proto::rumor::v1 as pb;
use vdm_proto::rumor::v1::rumor_service_server::RumorServiceServer;

use crate::domain::{Attitude, Holder, Known, Origin, Rumor, RumorInput, Variant};
use crate::error::RumorError;
use crate::service::RumorService;

/// The full gRPC name of the service, as health checks report it.
pub const SERVICE_NAME: &str = "vdm.rumor.v1.RumorService";

/// Implements `vdm.rumor.v1.RumorService` over [`RumorService`].
#[derive(Clone)]
pub struct RumorGrpc {
    service: RumorService,
}

impl RumorGrpc {
    /// Wraps the service for tonic. Compressed requests are accepted;
    /// answers go uncompressed (small messages on a data-centre network).
    pub fn server(service: RumorService) -> RumorServiceServer<RumorGrpc> {
        use tonic::codec::CompressionEncoding;
        RumorServiceServer::new(RumorGrpc { service })
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
    }
}

#[tonic::async_trait]
impl pb::rumor_service_server::RumorService for RumorGrpc {
    async fn create_rumor(
        &self,
        request: Request<pb::CreateRumorRequest>,
    ) -> Result<Response<pb::CreateRumorResponse>, Status> {
        let r = request.into_inner();
        let key = Some(r.idempotency_key.as_str()).filter(|k| !k.is_empty());
        let input = RumorInput {
            text: r.text,
            origin_npc_id: r.origin_npc_id,
            origin_event_id: r.origin_event_id,
            region_id: r.region_id,
            truth: r.truth,
        };
        let (rumor, replayed) = self.service.create(input, key, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::CreateRumorResponse {
            rumor: Some(pb::Rumor::from(rumor)),
            replayed,
        }))
    }

    async fn get_rumor(&self, request: Request<pb::GetRumorRequest>) -> Result<Response<pb::Rumor>, Status> {
        let rumor = self.service.get(request.into_inner().id).await?;
        Ok(Response::new(pb::Rumor::from(rumor)))
    }

    async fn spread_rumor(
        &self,
        request: Request<pb::SpreadRumorRequest>,
    ) -> Result<Response<pb::SpreadRumorResponse>, Status> {
        let r = request.into_inner();
        let (variant, already_known) = self
            .service
            .spread(r.rumor_id, r.from_npc_id, r.to_npc_id, r.seed, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::SpreadRumorResponse {
            variant: Some(pb::Variant::from(variant)),
            already_known,
        }))
    }

    async fn list_known_rumors(
        &self,
        request: Request<pb::ListKnownRumorsRequest>,
    ) -> Result<Response<pb::ListKnownRumorsResponse>, Status> {
        let r = request.into_inner();
        let holder = match (r.npc_id, r.player_id) {
            (Some(npc), None) => Holder::Npc(npc),
            (None, Some(player)) => Holder::Player(player),
            _ => return Err(RumorError::Invalid("give exactly one of npc_id and player_id".to_owned()).into()),
        };
        let region_id = positive_filter("region_id", r.region_id).map_err(RumorError::from)?;
        let (known, next) = self.service.list_known(holder, region_id, r.limit, &r.cursor).await?;
        Ok(Response::new(pb::ListKnownRumorsResponse {
            known: known.into_iter().map(pb::Known::from).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn tell_player(
        &self,
        request: Request<pb::TellPlayerRequest>,
    ) -> Result<Response<pb::TellPlayerResponse>, Status> {
        let r = request.into_inner();
        let standings: Vec<(i64, i32)> = r.standings.iter().map(|s| (s.faction_id, s.standing)).collect();
        let talk = self
            .service
            .tell_player(r.npc_id, r.player_id, &standings, vdm_kit::now_ms())
            .await?;
        let attitude = match talk.attitude {
            Attitude::Hostile => pb::Attitude::Hostile,
            Attitude::Neutral => pb::Attitude::Neutral,
            Attitude::Friendly => pb::Attitude::Friendly,
        };
        let mut told = talk.told.into_iter();
        let first = told.next();
        Ok(Response::new(pb::TellPlayerResponse {
            told: first.is_some(),
            first_time: first.as_ref().is_some_and(|(_, first_time)| *first_time),
            variant: first.map(|(variant, _)| pb::Variant::from(variant)),
            attitude: attitude as i32,
            refusal: talk.refusal.unwrap_or_default(),
            more: told.map(|(variant, _)| pb::Variant::from(variant)).collect(),
        }))
    }

    async fn spread_tick(
        &self,
        request: Request<pb::SpreadTickRequest>,
    ) -> Result<Response<pb::SpreadTickResponse>, Status> {
        let r = request.into_inner();
        let report = self
            .service
            .tick(r.region_id, r.max_tellings, r.seed, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::SpreadTickResponse {
            npcs: report.npcs,
            tellings: report.tellings,
            knowers: report.knowers,
        }))
    }
}

impl From<Rumor> for pb::Rumor {
    fn from(rumor: Rumor) -> pb::Rumor {
        let (origin_npc_id, origin_event_id) = match rumor.origin {
            Origin::Npc(id) => (Some(id), None),
            Origin::Event(id) => (None, Some(id)),
        };
        pb::Rumor {
            id: rumor.id,
            text: rumor.text,
            origin_npc_id,
            origin_event_id,
            region_id: rumor.region_id,
            truth: rumor.truth,
            root_variant_id: rumor.root_variant_id,
            variant_count: rumor.variant_count,
            created_at_ms: rumor.created_at_ms,
        }
    }
}

impl From<Variant> for pb::Variant {
    fn from(v: Variant) -> pb::Variant {
        let (listener_npc_id, listener_player_id) = match v.listener {
            Some(Holder::Npc(id)) => (Some(id), None),
            Some(Holder::Player(id)) => (None, Some(id)),
            None => (None, None),
        };
        pb::Variant {
            id: v.id,
            rumor_id: v.rumor_id,
            parent_id: v.parent_id,
            teller_npc_id: v.teller_npc_id,
            listener_npc_id,
            listener_player_id,
            text: v.text,
            distortion: v.distortion,
            truth: v.truth,
            transformer: v.transformer,
            created_at_ms: v.created_at_ms,
        }
    }
}

impl From<Known> for pb::Known {
    fn from(k: Known) -> pb::Known {
        pb::Known {
            variant: Some(pb::Variant::from(k.variant)),
            region_id: k.region_id,
            since_ms: k.since_ms,
        }
    }
}
