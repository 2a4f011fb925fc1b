//! The gRPC face of the quest service: convert the request, call
//! [`QuestService`], convert the answer back. Protobuf types stop here.

use tonic::{Request, Response, Status};
use vdm_kit::validate::positive_filter;
use vdm_proto::quest::v1 as pb;
use vdm_proto::quest::v1::quest_service_server::QuestServiceServer;

use crate::domain::{PlayerQuest, Quest, QuestInput, QuestPatch, QuestStatus, Reward};
use crate::error::QuestError;
use crate::service::QuestService;
use crate::store::QuestFilter;

/// The full gRPC name of the service, as health checks report it.
pub const SERVICE_NAME: &str = "vdm.quest.v1.QuestService";

/// Implements `vdm.quest.v1.QuestService` over [`QuestService`].
#[derive(Clone)]
pub struct QuestGrpc {
    service: QuestService,
}

impl QuestGrpc {
    /// Wraps the service for tonic. Compressed requests are accepted;
    /// answers go uncompressed, since quest messages are a few hundred bytes
    /// on a data-centre network and compressing them costs more CPU than
    /// the bytes saved (measured in docs/history/PERFORMANCE-log.md).
    pub fn server(service: QuestService) -> QuestServiceServer<QuestGrpc> {
        use tonic::codec::CompressionEncoding;
        QuestServiceServer::new(QuestGrpc { service })
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
    }
}

#[tonic::async_trait]
impl pb::quest_service_server::QuestService for QuestGrpc {
    async fn create_quest(
        &self,
        request: Request<pb::CreateQuestRequest>,
    ) -> Result<Response<pb::CreateQuestResponse>, Status> {
        let request = request.into_inner();
        let spec = request
            .quest
            .ok_or_else(|| QuestError::Invalid("quest is required".to_owned()))?;
        let key = Some(request.idempotency_key.as_str()).filter(|k| !k.is_empty());
        let (quest, replayed) = self
            .service
            .create(QuestInput::from(spec), key, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::CreateQuestResponse {
            quest: Some(pb::Quest::from(quest)),
            replayed,
        }))
    }

    async fn get_quest(&self, request: Request<pb::GetQuestRequest>) -> Result<Response<pb::Quest>, Status> {
        let quest = self.service.get(request.into_inner().id).await?;
        Ok(Response::new(pb::Quest::from(quest)))
    }

    async fn update_quest(&self, request: Request<pb::UpdateQuestRequest>) -> Result<Response<pb::Quest>, Status> {
        let r = request.into_inner();
        let patch = QuestPatch {
            title: r.title,
            description: r.description,
            giver_npc_id: r.giver_npc_id,
            region_id: r.region_id,
            level_requirement: r.level_requirement,
            reward: r.reward.map(Reward::from),
        };
        let quest = self.service.update(r.id, patch, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::Quest::from(quest)))
    }

    async fn delete_quest(
        &self,
        request: Request<pb::DeleteQuestRequest>,
    ) -> Result<Response<pb::DeleteQuestResponse>, Status> {
        self.service.delete(request.into_inner().id).await?;
        Ok(Response::new(pb::DeleteQuestResponse {}))
    }

    async fn batch_get_quests(
        &self,
        request: Request<pb::BatchGetQuestsRequest>,
    ) -> Result<Response<pb::BatchGetQuestsResponse>, Status> {
        let quests = self.service.batch_get(&request.into_inner().ids).await?;
        Ok(Response::new(pb::BatchGetQuestsResponse {
            quests: quests.into_iter().map(pb::Quest::from).collect(),
        }))
    }

    async fn list_quests(
        &self,
        request: Request<pb::ListQuestsRequest>,
    ) -> Result<Response<pb::ListQuestsResponse>, Status> {
        let r = request.into_inner();
        let filter = QuestFilter {
            region_id: positive_filter("region_id", r.region_id).map_err(QuestError::from)?,
            giver_npc_id: positive_filter("giver_npc_id", r.giver_npc_id).map_err(QuestError::from)?,
        };
        let (quests, next) = self.service.list(filter, r.limit, &r.cursor).await?;
        Ok(Response::new(pb::ListQuestsResponse {
            quests: quests.into_iter().map(pb::Quest::from).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }

    async fn accept_quest(
        &self,
        request: Request<pb::AcceptQuestRequest>,
    ) -> Result<Response<pb::PlayerQuest>, Status> {
        let r = request.into_inner();
        let pq = self.service.accept(r.player_id, r.quest_id, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::PlayerQuest::from(pq)))
    }

    async fn advance_objective(
        &self,
        request: Request<pb::AdvanceObjectiveRequest>,
    ) -> Result<Response<pb::PlayerQuest>, Status> {
        let r = request.into_inner();
        let pq = self
            .service
            .advance(r.player_id, r.quest_id, r.objective_id, r.amount, vdm_kit::now_ms())
            .await?;
        Ok(Response::new(pb::PlayerQuest::from(pq)))
    }

    async fn abandon_quest(
        &self,
        request: Request<pb::AbandonQuestRequest>,
    ) -> Result<Response<pb::PlayerQuest>, Status> {
        let r = request.into_inner();
        let pq = self.service.abandon(r.player_id, r.quest_id, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::PlayerQuest::from(pq)))
    }

    async fn list_player_quests(
        &self,
        request: Request<pb::ListPlayerQuestsRequest>,
    ) -> Result<Response<pb::ListPlayerQuestsResponse>, Status> {
        let r = request.into_inner();
        let status = match pb::QuestStatus::try_from(r.status) {
            Ok(pb::QuestStatus::Unspecified) => None,
            Ok(status) => Some(QuestStatus::from(status)),
            Err(_) => return Err(QuestError::Invalid(format!("unknown status {}", r.status)).into()),
        };
        let (quests, next) = self
            .service
            .list_player_quests(r.player_id, status, r.limit, &r.cursor)
            .await?;
        Ok(Response::new(pb::ListPlayerQuestsResponse {
            quests: quests.into_iter().map(pb::PlayerQuest::from).collect(),
            next_cursor: next.unwrap_or_default(),
        }))
    }
}

impl From<pb::QuestSpec> for QuestInput {
    fn from(spec: pb::QuestSpec) -> QuestInput {
        QuestInput {
            title: spec.title,
            description: spec.description,
            giver_npc_id: spec.giver_npc_id,
            region_id: spec.region_id,
            level_requirement: spec.level_requirement,
            reward: spec.reward.map(Reward::from).unwrap_or_default(),
            objectives: spec
                .objectives
                .into_iter()
                .map(|o| (o.description, o.target_count))
                .collect(),
        }
    }
}

impl From<pb::Reward> for Reward {
    fn from(reward: pb::Reward) -> Reward {
        Reward {
            gold: reward.gold,
            xp: reward.xp,
            item_ids: reward.item_ids,
            standing: reward.standing,
            disposition: reward.disposition,
        }
    }
}

impl From<Quest> for pb::Quest {
    fn from(quest: Quest) -> pb::Quest {
        pb::Quest {
            id: quest.id,
            title: quest.title,
            description: quest.description,
            giver_npc_id: quest.giver_npc_id,
            region_id: quest.region_id,
            level_requirement: quest.level_requirement,
            reward: Some(pb::Reward {
                gold: quest.reward.gold,
                xp: quest.reward.xp,
                item_ids: quest.reward.item_ids,
                standing: quest.reward.standing,
                disposition: quest.reward.disposition,
            }),
            objectives: quest
                .objectives
                .into_iter()
                .map(|o| pb::Objective {
                    id: o.id,
                    description: o.description,
                    target_count: o.target_count,
                })
                .collect(),
            created_at_ms: quest.created_at_ms,
            updated_at_ms: quest.updated_at_ms,
        }
    }
}

impl From<pb::QuestStatus> for QuestStatus {
    fn from(status: pb::QuestStatus) -> QuestStatus {
        match status {
            pb::QuestStatus::Completed => QuestStatus::Completed,
            pb::QuestStatus::Failed => QuestStatus::Failed,
            pb::QuestStatus::Abandoned => QuestStatus::Abandoned,
            pb::QuestStatus::Active | pb::QuestStatus::Unspecified => QuestStatus::Active,
        }
    }
}

impl From<QuestStatus> for pb::QuestStatus {
    fn from(status: QuestStatus) -> pb::QuestStatus {
        match status {
            QuestStatus::Active => pb::QuestStatus::Active,
            QuestStatus::Completed => pb::QuestStatus::Completed,
            QuestStatus::Failed => pb::QuestStatus::Failed,
            QuestStatus::Abandoned => pb::QuestStatus::Abandoned,
        }
    }
}

impl From<PlayerQuest> for pb::PlayerQuest {
    fn from(pq: PlayerQuest) -> pb::PlayerQuest {
        pb::PlayerQuest {
            player_id: pq.player_id,
            quest_id: pq.quest_id,
            status: pb::QuestStatus::from(pq.status) as i32,
            accepted_at_ms: pq.accepted_at_ms,
            updated_at_ms: pq.updated_at_ms,
            completed_at_ms: pq.completed_at_ms.unwrap_or(0),
            objectives: pq
                .objectives
                .into_iter()
                .map(|o| pb::ObjectiveProgress {
                    objective_id: o.objective_id,
                    progress: o.progress,
                    target_count: o.target_count,
                })
                .collect(),
        }
    }
}
