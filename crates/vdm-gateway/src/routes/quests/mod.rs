//! Quest routes: definitions (`/v1/quests`) here, the player's own quest
//! log (`/v1/me/quests`, accepting) in [`player`], the JSON shapes in
//! [`json`]. Each handler converts JSON to a gRPC request, calls the quest
//! service and converts the answer back.

pub mod json;
pub mod player;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use tonic::Request;
use vdm_proto::quest::v1 as pb;

use self::json::{BatchGetBody, ListQuestsQuery, NewQuestJson, QuestJson, QuestPatchJson, reward_to_pb};
use super::shared::{IdempotencyKey, ListJson};
use crate::auth::{Admin, Caller};
use crate::edge_cache::{Conditional, Kind, Resource};
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, PathId, QueryArgs, Reply};
use crate::state::AppState;

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
    // This replica's pages of quests miss it now, before the bus says so.
    state.edge.invalidate(Kind::Quest, quest.id).await;
    let replayed = if response.replayed { "true" } else { "false" };
    Ok((
        [("idempotent-replayed", replayed)],
        Reply::created(format, QuestJson::from(quest)),
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
        (status = 200, description = "The quest", body = QuestJson,
            headers(("etag" = String, description = "A strong validator of this body in this format"))),
        (status = 304, description = "The quest has not changed since the `If-None-Match` ETag"),
        (status = 404, description = "No quest has this id", body = ErrorBody),
        (status = 503, description = "The quest service is unavailable", body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    Conditional(headers): Conditional,
    PathId(id): PathId,
) -> Response {
    tracing::Span::current().record("quest.id", id);
    // The client is cloned only for a miss.
    let client = &state.quest;
    state
        .edge
        .serve(Resource::Quest(id), format, &headers, move || {
            let mut client = client.clone();
            async move {
                let quest = client.get_quest(pb::GetQuestRequest { id }).await?.into_inner();
                Ok(QuestJson::from(quest))
            }
        })
        .await
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
    // Read-your-writes on this replica, before the bus event arrives.
    state.edge.invalidate(Kind::Quest, id).await;
    Ok(Reply::ok(format, QuestJson::from(quest)))
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
    state.edge.invalidate(Kind::Quest, id).await;
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
        ListJson::new(quests.into_iter().map(QuestJson::from).collect(), String::new()),
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
        (status = 200, description = "A page of quests", body = ListJson<QuestJson>,
            headers(("etag" = String, description = "A strong validator of this body in this format"))),
        (status = 304, description = "The page has not changed since the `If-None-Match` ETag"),
        (status = 503, description = "The quest service is unavailable", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    Conditional(headers): Conditional,
    QueryArgs(q): QueryArgs<ListQuestsQuery>,
) -> Response {
    let request = pb::ListQuestsRequest {
        region_id: q.region_id,
        giver_npc_id: q.giver_npc_id,
        limit: q.limit.unwrap_or(0),
        cursor: q.cursor.unwrap_or_default(),
    };
    if q.limit == Some(0) {
        return GatewayError::invalid("limit must be between 1 and 100").into_response();
    }
    // The client is cloned only for a miss.
    let client = &state.quest;
    state
        .edge
        .serve(Resource::quest_page(&request), format, &headers, move || {
            let mut client = client.clone();
            async move {
                let page = client.list_quests(request).await?.into_inner();
                Ok(ListJson::new(
                    page.quests.into_iter().map(QuestJson::from).collect(),
                    page.next_cursor,
                ))
            }
        })
        .await
}
