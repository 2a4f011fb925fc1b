//! Quest routes: definitions (`/v1/quests`) and the player's own quest log
//! (`/v1/me/quests`). Each handler converts JSON to a gRPC request, calls
//! the quest service and converts the answer back.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use tonic::Request;
use utoipa::{IntoParams, ToSchema};
use vdm_proto::quest::v1 as pb;

use super::shared::{IdempotencyKey, ListJson};
use crate::auth::{Admin, Caller, Player};
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, NoQuery, PathId, QueryArgs, Reply};
use crate::state::AppState;

/// The reward of a quest.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RewardJson {
    /// Gold.
    #[serde(default)]
    pub gold: i64,
    /// Experience points.
    #[serde(default)]
    pub xp: i64,
    /// Item ids.
    #[serde(default)]
    pub item_ids: Vec<i64>,
}

/// An objective as submitted.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewObjectiveJson {
    /// What to do.
    pub description: String,
    /// How many times.
    pub target_count: u32,
}

/// `POST /v1/quests` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewQuestJson {
    /// Short name.
    pub title: String,
    /// Longer text.
    #[serde(default)]
    pub description: String,
    /// The NPC that offers it.
    pub giver_npc_id: i64,
    /// The region where it is offered.
    pub region_id: i64,
    /// The lowest level that may take it.
    #[serde(default)]
    pub level_requirement: u32,
    /// What it gives.
    #[serde(default)]
    pub reward: RewardJson,
    /// What must be done.
    pub objectives: Vec<NewObjectiveJson>,
}

/// `PATCH /v1/quests/{id}` body: fields left out (or null) keep their value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuestPatchJson {
    /// Short name.
    title: Option<String>,
    /// Longer text.
    description: Option<String>,
    /// The NPC that offers it.
    giver_npc_id: Option<i64>,
    /// The region where it is offered.
    region_id: Option<i64>,
    /// The lowest level that may take it.
    level_requirement: Option<u32>,
    /// What it gives (replaced whole).
    reward: Option<RewardJson>,
}

/// A quest as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct QuestJson {
    id: i64,
    title: String,
    /// Left out when empty.
    #[serde(skip_serializing_if = "String::is_empty")]
    description: String,
    giver_npc_id: i64,
    region_id: i64,
    level_requirement: u32,
    reward: RewardJson,
    objectives: Vec<ObjectiveJson>,
}

/// An objective as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ObjectiveJson {
    id: i64,
    description: String,
    target_count: u32,
}

/// Where a player's quest stands.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QuestStatusJson {
    /// Accepted, objectives open.
    Active,
    /// Every objective done.
    Completed,
    /// Failed.
    Failed,
    /// Given up; accepting it again restarts it.
    Abandoned,
}

/// A player's quest as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlayerQuestJson {
    quest_id: i64,
    status: QuestStatusJson,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    accepted_at: String,
    /// RFC 3339 UTC; only once completed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    completed_at: Option<String>,
    objectives: Vec<ProgressJson>,
}

/// Progress on one objective.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressJson {
    objective_id: i64,
    progress: u32,
    target_count: u32,
}

/// `GET /v1/quests` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListQuestsQuery {
    /// Only quests offered in this region.
    region_id: Option<i64>,
    /// Only quests offered by this NPC.
    giver_npc_id: Option<i64>,
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `GET /v1/me/quests` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListMineQuery {
    /// Only quests in this state.
    #[param(value_type = Option<QuestStatusJson>)]
    status: Option<String>,
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `POST /v1/me/quests/{id}/progress` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressBody {
    /// The objective to advance.
    objective_id: i64,
    /// How many steps (1 when absent).
    #[serde(default = "one")]
    #[schema(default = 1)]
    amount: u32,
}

fn one() -> u32 {
    1
}

/// `POST /v1/quests:batchGet` body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = QuestBatchGetBody)]
#[serde(deny_unknown_fields)]
pub struct BatchGetBody {
    /// Up to 100 quest ids.
    #[schema(max_items = 100)]
    ids: Vec<i64>,
}

/// Creates a quest (admin). Honours `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/quests",
    operation_id = "createQuest",
    tag = "quests",
    params(IdempotencyKey),
    request_body = NewQuestJson,
    security(("admin" = [])),
    responses(
        (status = 201, description = "The quest, created now or by an earlier request with the same `Idempotency-Key`", body = QuestJson,
            headers(("idempotent-replayed" = String, description = "`true` when an earlier request with this key created it"))),
        (status = 409, description = "The `Idempotency-Key` was used for a different request", body = ErrorBody),
        (status = 503, description = "The quest service is unavailable", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    headers: HeaderMap,
    Body(body): Body<NewQuestJson>,
) -> GatewayResult<impl IntoResponse> {
    let idempotency_key = match headers.get("idempotency-key") {
        None => String::new(),
        Some(v) => v
            .to_str()
            .map_err(|_| GatewayError::invalid("Idempotency-Key must be printable ASCII"))?
            .to_owned(),
    };
    let request = pb::CreateQuestRequest {
        quest: Some(pb::QuestSpec {
            title: body.title,
            description: body.description,
            giver_npc_id: body.giver_npc_id,
            region_id: body.region_id,
            level_requirement: body.level_requirement,
            reward: Some(reward_to_pb(body.reward)),
            objectives: body
                .objectives
                .into_iter()
                .map(|o| pb::ObjectiveSpec {
                    description: o.description,
                    target_count: o.target_count,
                })
                .collect(),
        }),
        idempotency_key,
    };
    let response = state
        .quest
        .clone()
        .create_quest(Request::new(request))
        .await?
        .into_inner();
    let quest = response
        .quest
        .ok_or_else(|| GatewayError::Internal("create_quest answered without a quest".into()))?;
    let replayed = if response.replayed { "true" } else { "false" };
    Ok((
        [("idempotent-replayed", replayed)],
        Reply::created(format, quest_json(quest)),
    ))
}

/// Reads one quest.
#[utoipa::path(
    get,
    path = "/v1/quests/{id}",
    operation_id = "getQuest",
    tag = "quests",
    params(PathId),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The quest", body = QuestJson),
        (status = 404, description = "No quest has this id", body = ErrorBody),
        (status = 503, description = "The quest service is unavailable", body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    PathId(id): PathId,
) -> GatewayResult<Reply<QuestJson>> {
    tracing::Span::current().record("quest.id", id);
    let quest = state
        .quest
        .clone()
        .get_quest(pb::GetQuestRequest { id })
        .await?
        .into_inner();
    Ok(Reply::ok(format, quest_json(quest)))
}

/// Changes a quest's definition (admin).
#[utoipa::path(
    patch,
    path = "/v1/quests/{id}",
    operation_id = "updateQuest",
    tag = "quests",
    params(PathId),
    request_body = QuestPatchJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The quest as changed", body = QuestJson),
        (status = 404, description = "No quest has this id", body = ErrorBody),
        (status = 503, description = "The quest service is unavailable", body = ErrorBody),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    PathId(id): PathId,
    Body(body): Body<QuestPatchJson>,
) -> GatewayResult<Reply<QuestJson>> {
    let request = pb::UpdateQuestRequest {
        id,
        title: body.title,
        description: body.description,
        giver_npc_id: body.giver_npc_id,
        region_id: body.region_id,
        level_requirement: body.level_requirement,
        reward: body.reward.map(reward_to_pb),
    };
    let quest = state.quest.clone().update_quest(request).await?.into_inner();
    Ok(Reply::ok(format, quest_json(quest)))
}

/// Deletes a quest (admin).
#[utoipa::path(
    delete,
    path = "/v1/quests/{id}",
    operation_id = "deleteQuest",
    tag = "quests",
    params(PathId),
    security(("admin" = [])),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, description = "No quest has this id", body = ErrorBody),
        (status = 503, description = "The quest service is unavailable", body = ErrorBody),
    ),
)]
pub async fn delete(
    State(state): State<AppState>,
    _admin: Admin,
    PathId(id): PathId,
) -> GatewayResult<axum::http::StatusCode> {
    state.quest.clone().delete_quest(pb::DeleteQuestRequest { id }).await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}

/// Reads many quests at once; unknown ids are left out.
#[utoipa::path(
    post,
    path = "/v1/quests:batchGet",
    operation_id = "batchGetQuests",
    tag = "quests",
    request_body = BatchGetBody,
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The quests found (never a `next_cursor`)", body = ListJson<QuestJson>),
        (status = 503, description = "The quest service is unavailable", body = ErrorBody),
    ),
)]
pub async fn batch_get(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    Body(body): Body<BatchGetBody>,
) -> GatewayResult<Reply<ListJson<QuestJson>>> {
    let quests = state
        .quest
        .clone()
        .batch_get_quests(pb::BatchGetQuestsRequest { ids: body.ids })
        .await?
        .into_inner()
        .quests;
    Ok(Reply::ok(
        format,
        // A batch is one page: no cursor.
        ListJson::new(quests.into_iter().map(quest_json).collect(), String::new()),
    ))
}

/// Lists quests by region and giver.
#[utoipa::path(
    get,
    path = "/v1/quests",
    operation_id = "listQuests",
    tag = "quests",
    params(ListQuestsQuery),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "A page of quests", body = ListJson<QuestJson>),
        (status = 503, description = "The quest service is unavailable", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    QueryArgs(q): QueryArgs<ListQuestsQuery>,
) -> GatewayResult<Reply<ListJson<QuestJson>>> {
    let request = pb::ListQuestsRequest {
        region_id: q.region_id.unwrap_or(0),
        giver_npc_id: q.giver_npc_id.unwrap_or(0),
        limit: q.limit.unwrap_or(0),
        cursor: q.cursor.unwrap_or_default(),
    };
    if q.limit == Some(0) {
        return Err(GatewayError::invalid("limit must be between 1 and 100"));
    }
    let page = state.quest.clone().list_quests(request).await?.into_inner();
    Ok(Reply::ok(
        format,
        ListJson::new(page.quests.into_iter().map(quest_json).collect(), page.next_cursor),
    ))
}

/// Accepts a quest for the calling player.
#[utoipa::path(
    post,
    path = "/v1/quests/{id}/accept",
    operation_id = "acceptQuest",
    tag = "quests",
    params(PathId),
    security(("session" = [])),
    responses(
        (status = 200, description = "The player's quest, active", body = PlayerQuestJson),
        (status = 404, description = "No quest has this id", body = ErrorBody),
        (status = 409, description = "The player's quest is not in a state that can be accepted", body = ErrorBody),
        (status = 503, description = "The quest service is unavailable, or busy with this player's quest", body = ErrorBody),
    ),
)]
pub async fn accept(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
    PathId(quest_id): PathId,
) -> GatewayResult<Reply<PlayerQuestJson>> {
    let pq = state
        .quest
        .clone()
        .accept_quest(pb::AcceptQuestRequest { player_id, quest_id })
        .await?
        .into_inner();
    Ok(Reply::ok(format, player_quest_json(pq)))
}

/// Adds progress to an objective of the calling player's quest.
#[utoipa::path(
    post,
    path = "/v1/me/quests/{id}/progress",
    operation_id = "advanceObjective",
    tag = "quests",
    params(PathId),
    request_body = ProgressBody,
    security(("session" = [])),
    responses(
        (status = 200, description = "The player's quest; `completed` once every objective is done", body = PlayerQuestJson),
        (status = 404, description = "The player has not accepted this quest, or it has no such objective", body = ErrorBody),
        (status = 409, description = "The player's quest is not active", body = ErrorBody),
        (status = 503, description = "The quest service is unavailable, or busy with this player's quest", body = ErrorBody),
    ),
)]
pub async fn progress(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
    PathId(quest_id): PathId,
    Body(body): Body<ProgressBody>,
) -> GatewayResult<Reply<PlayerQuestJson>> {
    let request = pb::AdvanceObjectiveRequest {
        player_id,
        quest_id,
        objective_id: body.objective_id,
        amount: body.amount,
    };
    let pq = state.quest.clone().advance_objective(request).await?.into_inner();
    Ok(Reply::ok(format, player_quest_json(pq)))
}

/// Abandons the calling player's quest.
#[utoipa::path(
    post,
    path = "/v1/me/quests/{id}/abandon",
    operation_id = "abandonQuest",
    tag = "quests",
    params(PathId),
    security(("session" = [])),
    responses(
        (status = 200, description = "The player's quest, abandoned", body = PlayerQuestJson),
        (status = 404, description = "The player has not accepted this quest", body = ErrorBody),
        (status = 409, description = "The player's quest is not active", body = ErrorBody),
        (status = 503, description = "The quest service is unavailable, or busy with this player's quest", body = ErrorBody),
    ),
)]
pub async fn abandon(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
    PathId(quest_id): PathId,
) -> GatewayResult<Reply<PlayerQuestJson>> {
    let pq = state
        .quest
        .clone()
        .abandon_quest(pb::AbandonQuestRequest { player_id, quest_id })
        .await?
        .into_inner();
    Ok(Reply::ok(format, player_quest_json(pq)))
}

/// Lists the calling player's quests.
#[utoipa::path(
    get,
    path = "/v1/me/quests",
    operation_id = "listMyQuests",
    tag = "quests",
    params(ListMineQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of the player's quests", body = ListJson<PlayerQuestJson>),
        (status = 503, description = "The quest service is unavailable", body = ErrorBody),
    ),
)]
pub async fn list_mine(
    State(state): State<AppState>,
    Player(player_id): Player,
    format: Format,
    QueryArgs(q): QueryArgs<ListMineQuery>,
) -> GatewayResult<Reply<ListJson<PlayerQuestJson>>> {
    let status = match q.status.as_deref() {
        None => pb::QuestStatus::Unspecified,
        Some("active") => pb::QuestStatus::Active,
        Some("completed") => pb::QuestStatus::Completed,
        Some("failed") => pb::QuestStatus::Failed,
        Some("abandoned") => pb::QuestStatus::Abandoned,
        Some(other) => {
            return Err(GatewayError::invalid(format!(
                "status must be active, completed, failed or abandoned, got {other:?}"
            )));
        }
    };
    if q.limit == Some(0) {
        return Err(GatewayError::invalid("limit must be between 1 and 100"));
    }
    let request = pb::ListPlayerQuestsRequest {
        player_id,
        status: status as i32,
        limit: q.limit.unwrap_or(0),
        cursor: q.cursor.unwrap_or_default(),
    };
    let page = state.quest.clone().list_player_quests(request).await?.into_inner();
    Ok(Reply::ok(
        format,
        ListJson::new(
            page.quests.into_iter().map(player_quest_json).collect(),
            page.next_cursor,
        ),
    ))
}

fn reward_to_pb(reward: RewardJson) -> pb::Reward {
    pb::Reward {
        gold: reward.gold,
        xp: reward.xp,
        item_ids: reward.item_ids,
    }
}

pub(crate) fn quest_json(quest: pb::Quest) -> QuestJson {
    let reward = quest.reward.unwrap_or_default();
    QuestJson {
        id: quest.id,
        title: quest.title,
        description: quest.description,
        giver_npc_id: quest.giver_npc_id,
        region_id: quest.region_id,
        level_requirement: quest.level_requirement,
        reward: RewardJson {
            gold: reward.gold,
            xp: reward.xp,
            item_ids: reward.item_ids,
        },
        objectives: quest
            .objectives
            .into_iter()
            .map(|o| ObjectiveJson {
                id: o.id,
                description: o.description,
                target_count: o.target_count,
            })
            .collect(),
    }
}

pub(crate) fn player_quest_json(pq: pb::PlayerQuest) -> PlayerQuestJson {
    let status = match pb::QuestStatus::try_from(pq.status) {
        Ok(pb::QuestStatus::Completed) => QuestStatusJson::Completed,
        Ok(pb::QuestStatus::Failed) => QuestStatusJson::Failed,
        Ok(pb::QuestStatus::Abandoned) => QuestStatusJson::Abandoned,
        _ => QuestStatusJson::Active,
    };
    PlayerQuestJson {
        quest_id: pq.quest_id,
        status,
        accepted_at: vdm_kit::rfc3339(pq.accepted_at_ms),
        completed_at: (pq.completed_at_ms != 0).then(|| vdm_kit::rfc3339(pq.completed_at_ms)),
        objectives: pq
            .objectives
            .into_iter()
            .map(|o| ProgressJson {
                objective_id: o.objective_id,
                progress: o.progress,
                target_count: o.target_count,
            })
            .collect(),
    }
}
