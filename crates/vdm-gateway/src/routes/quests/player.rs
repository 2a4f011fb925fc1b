//! A player's own quests: accepting one, advancing an objective,
//! abandoning, and the quest log (`/v1/me/quests`).

use axum::extract::State;
use vdm_proto::quest::v1 as pb;

use super::json::{ListMineQuery, PlayerQuestJson, ProgressBody};
use crate::auth::Player;
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, NoQuery, PathId, QueryArgs, Reply};
use crate::routes::shared::ListJson;
use crate::state::AppState;

/// Accepts a quest for the calling player, whose level must meet the
/// quest's `level_requirement`.
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
        (status = 409, description = "The player's quest is not in a state that can be accepted, or the player's level is under the quest's `level_requirement` (the message names the level needed)", body = ErrorBody),
        (status = 503, description = "The quest service is unavailable, or busy with this player's quest, or the player service that knows levels is", body = ErrorBody),
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
    Ok(Reply::ok(format, PlayerQuestJson::from(pq)))
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
    Ok(Reply::ok(format, PlayerQuestJson::from(pq)))
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
    Ok(Reply::ok(format, PlayerQuestJson::from(pq)))
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
            page.quests.into_iter().map(PlayerQuestJson::from).collect(),
            page.next_cursor,
        ),
    ))
}
