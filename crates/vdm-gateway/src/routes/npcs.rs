//! NPC routes: NPCs (`/v1/npcs`), their memories, and the player's own
//! disposition with one (`/v1/me/npcs/{id}/disposition`). Each handler
//! converts JSON to a gRPC request, calls the NPC service and converts the
//! answer back.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdm_proto::npc::v1 as pb;

use super::shared::{IdempotencyKey, ListJson, check_limit, idempotency_key};
use crate::auth::{Admin, Caller, Player};
use crate::edge_cache::{Conditional, Kind, Resource};
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, NoQuery, PathId, QueryArgs, Reply};
use crate::state::AppState;

/// An NPC's personality, each 0..=1 (0.5 when left out).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TraitsJson {
    /// How readily it believes what it hears.
    #[serde(default = "half")]
    #[schema(minimum = 0, maximum = 1, default = 0.5)]
    gullibility: f32,
    /// How readily it retells.
    #[serde(default = "half")]
    #[schema(minimum = 0, maximum = 1, default = 0.5)]
    talkativeness: f32,
    /// How faithfully it retells.
    #[serde(default = "half")]
    #[schema(minimum = 0, maximum = 1, default = 0.5)]
    honesty: f32,
}

fn half() -> f32 {
    0.5
}

/// An NPC as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct NpcJson {
    id: i64,
    name: String,
    region_id: i64,
    /// Axial hex column.
    q: i32,
    /// Axial hex row.
    r: i32,
    /// Left out when it belongs to no faction.
    #[serde(skip_serializing_if = "Option::is_none")]
    faction_id: Option<i64>,
    traits: TraitsJson,
}

/// `POST /v1/npcs` body. `q` and `r` go together; without them the NPC
/// stands on the region's first cell.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewNpcJson {
    name: String,
    region_id: i64,
    /// Axial hex column (with `r`), within the map's ±100 000.
    #[schema(minimum = -100_000, maximum = 100_000)]
    q: Option<i32>,
    /// Axial hex row (with `q`), within the map's ±100 000.
    #[schema(minimum = -100_000, maximum = 100_000)]
    r: Option<i32>,
    /// A positive faction id.
    #[schema(minimum = 1)]
    faction_id: Option<i64>,
    traits: Option<TraitsJson>,
}

/// `POST /v1/npcs/{id}/move` body: the hex to move to.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveJson {
    /// Axial hex column, within the map's ±100 000.
    #[schema(minimum = -100_000, maximum = 100_000)]
    q: i32,
    /// Axial hex row, within the map's ±100 000.
    #[schema(minimum = -100_000, maximum = 100_000)]
    r: i32,
}

/// `PATCH /v1/npcs/{id}` body: what it leaves out keeps its value.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NpcPatchJson {
    name: Option<String>,
    /// A positive faction id, or null for none.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<i64>, minimum = 1)]
    faction_id: Option<Option<i64>>,
    /// The traits, whole (a trait left out is 0.5).
    traits: Option<TraitsJson>,
}

/// A field that may be null: present (`Some`, null or not) or left out
/// (`None`, by `#[serde(default)]`).
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    Option::<i64>::deserialize(deserializer).map(Some)
}

/// `GET /v1/npcs` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListNpcsQuery {
    /// Only NPCs in this region.
    #[param(minimum = 1)]
    region_id: Option<i64>,
    /// Only NPCs of this faction.
    #[param(minimum = 1)]
    faction_id: Option<i64>,
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// `POST /v1/npcs:batchGet` body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = NpcBatchGetBody)]
#[serde(deny_unknown_fields)]
pub struct BatchGetBody {
    /// Up to 100 NPC ids.
    #[schema(max_items = 100)]
    ids: Vec<i64>,
}

/// A memory as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemoryJson {
    id: i64,
    kind: String,
    text: String,
    /// Whom or what it is about; left out when empty.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    subject_ids: Vec<i64>,
    importance: f32,
    /// Game time when it happened.
    game_time_ms: i64,
    /// RFC 3339 UTC: when it was recorded.
    #[schema(format = DateTime)]
    at: String,
}

/// `POST /v1/npcs/{id}/memories` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMemoryJson {
    kind: String,
    text: String,
    /// Whom or what it is about.
    #[serde(default)]
    #[schema(max_items = 16)]
    subject_ids: Vec<i64>,
    /// Decides what is forgotten first past the cap.
    #[schema(minimum = 0, maximum = 1)]
    importance: f32,
    /// When it happened; the world clock's now when absent.
    #[schema(minimum = 0)]
    game_time_ms: Option<i64>,
}

/// `POST /v1/npcs/{id}/memories` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct RecordedJson {
    memory: MemoryJson,
    /// Memories forgotten to stay within the cap (this one, when it was the
    /// least important).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    dropped_memory_ids: Vec<i64>,
}

/// `GET /v1/npcs/{id}/memories` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct MemoriesQuery {
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page (newest first).
    #[param(pattern = "^d(0|[1-9][0-9]{0,17})$")]
    cursor: Option<String>,
}

/// The player's disposition with an NPC.
#[derive(Debug, Serialize, ToSchema)]
pub struct DispositionJson {
    npc_id: i64,
    /// -100 (hostile) ..= 100 (devoted); 0 is neutral.
    #[schema(minimum = -100, maximum = 100)]
    score: i32,
    /// RFC 3339 UTC; left out while the player never changed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    updated_at: Option<String>,
}

/// Creates an NPC (admin). Honours `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/npcs",
    operation_id = "createNpc",
    tag = "npcs",
    params(IdempotencyKey),
    request_body = NewNpcJson,
    security(("admin" = [])),
    responses(
        (status = 201, description = "The NPC, created now or by an earlier request with the same `Idempotency-Key`", body = NpcJson,
            headers(("idempotent-replayed" = String, description = "`true` when an earlier request with this key created it"))),
        (status = 400, description = "A field is invalid, or names an unknown region, faction or a hex outside the region", body = ErrorBody),
        (status = 409, description = "The `Idempotency-Key` was used for a different request", body = ErrorBody),
        (status = 503, description = "The NPC or world service is unavailable", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    headers: HeaderMap,
    Body(body): Body<NewNpcJson>,
) -> GatewayResult<impl IntoResponse> {
    let position = match (body.q, body.r) {
        (Some(q), Some(r)) => Some(pb::Hex { q, r }),
        (None, None) => None,
        _ => return Err(GatewayError::invalid("q and r go together: give both or neither")),
    };
    let request = pb::CreateNpcRequest {
        npc: Some(pb::NpcSpec {
            name: body.name,
            region_id: body.region_id,
            position,
            faction_id: body.faction_id,
            traits: body.traits.map(|t| pb::Traits {
                gullibility: t.gullibility,
                talkativeness: t.talkativeness,
                honesty: t.honesty,
            }),
        }),
        idempotency_key: idempotency_key(&headers)?,
    };
    let response = state.npc.clone().create_npc(request).await?.into_inner();
    let npc = response
        .npc
        .ok_or_else(|| GatewayError::Internal("create_npc answered without an npc".into()))?;
    // This replica's pages of NPCs miss it now, before the bus says so.
    state.edge.invalidate(Kind::Npc, npc.id).await;
    let replayed = if response.replayed { "true" } else { "false" };
    Ok((
        [("idempotent-replayed", replayed)],
        Reply::created(format, NpcJson::from(npc)),
    ))
}

/// Reads one NPC.
#[utoipa::path(
    get,
    path = "/v1/npcs/{id}",
    operation_id = "getNpc",
    tag = "npcs",
    params(PathId),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The NPC", body = NpcJson,
            headers(("etag" = String, description = "A strong validator of this body in this format"))),
        (status = 304, description = "The NPC has not changed since the `If-None-Match` ETag"),
        (status = 404, description = "No NPC has this id", body = ErrorBody),
        (status = 503, description = "The NPC service is unavailable", body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    Conditional(headers): Conditional,
    PathId(id): PathId,
) -> Response {
    tracing::Span::current().record("npc.id", id);
    // The client is cloned only for a miss.
    let client = &state.npc;
    state
        .edge
        .serve(Resource::Npc(id), format, &headers, move || {
            let mut client = client.clone();
            async move {
                let npc = client.get_npc(pb::GetNpcRequest { id }).await?.into_inner();
                Ok(NpcJson::from(npc))
            }
        })
        .await
}

/// Reads many NPCs at once (one query); unknown ids are left out.
#[utoipa::path(
    post,
    path = "/v1/npcs:batchGet",
    operation_id = "batchGetNpcs",
    tag = "npcs",
    request_body = BatchGetBody,
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The NPCs found (never a `next_cursor`)", body = ListJson<NpcJson>),
        (status = 503, description = "The NPC service is unavailable", body = ErrorBody),
    ),
)]
pub async fn batch_get(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    Body(body): Body<BatchGetBody>,
) -> GatewayResult<Reply<ListJson<NpcJson>>> {
    let npcs = state
        .npc
        .clone()
        .batch_get_npcs(pb::BatchGetNpcsRequest { ids: body.ids })
        .await?
        .into_inner()
        .npcs;
    Ok(Reply::ok(
        format,
        ListJson::new(npcs.into_iter().map(NpcJson::from).collect(), String::new()),
    ))
}

/// Lists NPCs by region and faction.
#[utoipa::path(
    get,
    path = "/v1/npcs",
    operation_id = "listNpcs",
    tag = "npcs",
    params(ListNpcsQuery),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "A page of NPCs", body = ListJson<NpcJson>,
            headers(("etag" = String, description = "A strong validator of this body in this format"))),
        (status = 304, description = "The page has not changed since the `If-None-Match` ETag"),
        (status = 503, description = "The NPC service is unavailable", body = ErrorBody),
    ),
)]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    Conditional(headers): Conditional,
    QueryArgs(q): QueryArgs<ListNpcsQuery>,
) -> Response {
    let request = match list_request(q) {
        Ok(request) => request,
        Err(err) => return err.into_response(),
    };
    // The client is cloned only for a miss.
    let client = &state.npc;
    state
        .edge
        .serve(Resource::npc_page(&request), format, &headers, move || {
            let mut client = client.clone();
            async move {
                let page = client.list_npcs(request).await?.into_inner();
                Ok(ListJson::new(
                    page.npcs.into_iter().map(NpcJson::from).collect(),
                    page.next_cursor,
                ))
            }
        })
        .await
}

/// The service request of a `GET /v1/npcs` query, checked.
fn list_request(q: ListNpcsQuery) -> GatewayResult<pb::ListNpcsRequest> {
    Ok(pb::ListNpcsRequest {
        region_id: q.region_id,
        faction_id: q.faction_id,
        limit: check_limit(q.limit)?,
        cursor: q.cursor.unwrap_or_default(),
    })
}

/// Moves an NPC to a hex on the map (admin).
#[utoipa::path(
    post,
    path = "/v1/npcs/{id}/move",
    operation_id = "moveNpc",
    tag = "npcs",
    params(PathId),
    request_body = MoveJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The NPC at its new hex (and region)", body = NpcJson),
        (status = 400, description = "The body is invalid, or the hex is outside the map", body = ErrorBody),
        (status = 404, description = "No NPC has this id", body = ErrorBody),
        (status = 503, description = "The NPC or world service is unavailable, or a concurrent change won", body = ErrorBody),
    ),
)]
pub async fn move_to(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    PathId(id): PathId,
    Body(body): Body<MoveJson>,
) -> GatewayResult<Reply<NpcJson>> {
    tracing::Span::current().record("npc.id", id);
    let request = pb::MoveNpcRequest {
        id,
        to: Some(pb::Hex { q: body.q, r: body.r }),
    };
    let npc = state.npc.clone().move_npc(request).await?.into_inner();
    // Read-your-writes on this replica, before `npc.moved` arrives.
    state.edge.invalidate(Kind::Npc, id).await;
    Ok(Reply::ok(format, NpcJson::from(npc)))
}

/// Changes an NPC's name, faction or traits (admin).
#[utoipa::path(
    patch,
    path = "/v1/npcs/{id}",
    operation_id = "updateNpc",
    tag = "npcs",
    params(PathId),
    request_body = NpcPatchJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The NPC as changed", body = NpcJson),
        (status = 400, description = "A field is invalid, or names an unknown faction", body = ErrorBody),
        (status = 404, description = "No NPC has this id", body = ErrorBody),
        (status = 503, description = "The NPC or world service is unavailable", body = ErrorBody),
    ),
)]
pub async fn update(
    State(state): State<AppState>,
    _admin: Admin,
    _no_query: NoQuery,
    format: Format,
    PathId(id): PathId,
    Body(body): Body<NpcPatchJson>,
) -> GatewayResult<Reply<NpcJson>> {
    tracing::Span::current().record("npc.id", id);
    let request = pb::UpdateNpcRequest {
        id,
        name: body.name,
        faction: body.faction_id.map(|id| pb::FactionChange { id }),
        traits: body.traits.map(|t| pb::Traits {
            gullibility: t.gullibility,
            talkativeness: t.talkativeness,
            honesty: t.honesty,
        }),
    };
    let npc = state.npc.clone().update_npc(request).await?.into_inner();
    // Read-your-writes on this replica, before the bus event arrives.
    state.edge.invalidate(Kind::Npc, id).await;
    Ok(Reply::ok(format, NpcJson::from(npc)))
}

/// Lists an NPC's memories, newest first.
#[utoipa::path(
    get,
    path = "/v1/npcs/{id}/memories",
    operation_id = "listNpcMemories",
    tag = "npcs",
    params(PathId, MemoriesQuery),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "A page of memories, newest first", body = ListJson<MemoryJson>),
        (status = 404, description = "No NPC has this id", body = ErrorBody),
        (status = 503, description = "The NPC service is unavailable", body = ErrorBody),
    ),
)]
pub async fn memories(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    PathId(id): PathId,
    QueryArgs(q): QueryArgs<MemoriesQuery>,
) -> GatewayResult<Reply<ListJson<MemoryJson>>> {
    tracing::Span::current().record("npc.id", id);
    let request = pb::ListMemoriesRequest {
        npc_id: id,
        limit: check_limit(q.limit)?,
        cursor: q.cursor.unwrap_or_default(),
    };
    let page = state.npc.clone().list_memories(request).await?.into_inner();
    Ok(Reply::ok(
        format,
        ListJson::new(
            page.memories.into_iter().map(MemoryJson::from).collect(),
            page.next_cursor,
        ),
    ))
}

/// Records a memory of an NPC (admin). Honours `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/npcs/{id}/memories",
    operation_id = "recordNpcMemory",
    tag = "npcs",
    params(PathId, IdempotencyKey),
    request_body = NewMemoryJson,
    security(("admin" = [])),
    responses(
        (status = 201, description = "The memory, and those forgotten to stay within the cap", body = RecordedJson,
            headers(("idempotent-replayed" = String, description = "`true` when an earlier request with this key recorded it"))),
        (status = 404, description = "No NPC has this id", body = ErrorBody),
        (status = 409, description = "The `Idempotency-Key` was used for a different request", body = ErrorBody),
        (status = 503, description = "The NPC or world service is unavailable, or a concurrent change won", body = ErrorBody),
    ),
)]
pub async fn record_memory(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    headers: HeaderMap,
    PathId(id): PathId,
    Body(body): Body<NewMemoryJson>,
) -> GatewayResult<impl IntoResponse> {
    tracing::Span::current().record("npc.id", id);
    let request = pb::RecordMemoryRequest {
        npc_id: id,
        kind: body.kind,
        text: body.text,
        subject_ids: body.subject_ids,
        importance: body.importance,
        game_time_ms: body.game_time_ms,
        idempotency_key: idempotency_key(&headers)?,
    };
    let response = state.npc.clone().record_memory(request).await?.into_inner();
    let memory = response
        .memory
        .ok_or_else(|| GatewayError::Internal("record_memory answered without a memory".into()))?;
    let replayed = if response.replayed { "true" } else { "false" };
    Ok((
        [("idempotent-replayed", replayed)],
        Reply::created(
            format,
            RecordedJson {
                memory: MemoryJson::from(memory),
                dropped_memory_ids: response.dropped_memory_ids,
            },
        ),
    ))
}

/// The calling player's disposition with an NPC.
#[utoipa::path(
    get,
    path = "/v1/me/npcs/{id}/disposition",
    operation_id = "getMyDisposition",
    tag = "npcs",
    params(PathId),
    security(("session" = [])),
    responses(
        (status = 200, description = "The player's disposition with the NPC (0 when never changed)", body = DispositionJson),
        (status = 404, description = "No NPC has this id", body = ErrorBody),
        (status = 503, description = "The NPC service is unavailable", body = ErrorBody),
    ),
)]
pub async fn disposition(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
    PathId(npc_id): PathId,
) -> GatewayResult<Reply<DispositionJson>> {
    tracing::Span::current().record("npc.id", npc_id);
    let d = state
        .npc
        .clone()
        .get_disposition(pb::GetDispositionRequest { npc_id, player_id })
        .await?
        .into_inner();
    Ok(Reply::ok(
        format,
        DispositionJson {
            npc_id: d.npc_id,
            score: d.score,
            updated_at: (d.updated_at_ms != 0).then(|| vdm_kit::rfc3339(d.updated_at_ms)),
        },
    ))
}

impl From<pb::Npc> for NpcJson {
    fn from(npc: pb::Npc) -> NpcJson {
        let position = npc.position.unwrap_or_default();
        let traits = npc.traits.unwrap_or_default();
        NpcJson {
            id: npc.id,
            name: npc.name,
            region_id: npc.region_id,
            q: position.q,
            r: position.r,
            faction_id: npc.faction_id,
            traits: TraitsJson {
                gullibility: traits.gullibility,
                talkativeness: traits.talkativeness,
                honesty: traits.honesty,
            },
        }
    }
}

impl From<pb::Memory> for MemoryJson {
    fn from(m: pb::Memory) -> MemoryJson {
        MemoryJson {
            id: m.id,
            kind: m.kind,
            text: m.text,
            subject_ids: m.subject_ids,
            importance: m.importance,
            game_time_ms: m.game_time_ms,
            at: vdm_kit::rfc3339(m.created_at_ms),
        }
    }
}
