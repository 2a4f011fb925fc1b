//! Rumor routes: rumors (`/v1/rumors`), what an NPC knows
//! (`/v1/npcs/{id}/rumors`), talking to an NPC (`/v1/npcs/{id}/talk`: the
//! player hears a rumor), what the player has heard (`/v1/me/rumors`), and
//! one spreading tick of a region on demand (`/v1/rumors:tick`, admin). Each
//! handler converts JSON to a gRPC request, calls the rumor service and
//! converts the answer back.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdm_proto::rumor::v1 as pb;

use super::shared::{IdempotencyKey, ListJson, check_limit, idempotency_key, rumor_client};
use crate::auth::{Admin, Caller, Player};
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, NoQuery, PathId, QueryArgs, Reply};
use crate::state::AppState;

/// `POST /v1/rumors` body: one of `origin_npc_id` and `origin_event_id`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRumorJson {
    text: String,
    /// The NPC who starts it (it knows the rumor at once).
    #[schema(minimum = 1)]
    origin_npc_id: Option<i64>,
    /// The world event it is about (3 NPCs of the region start with it).
    #[schema(minimum = 1)]
    origin_event_id: Option<i64>,
    region_id: i64,
    /// How true it is, 0..=1.
    #[schema(minimum = 0, maximum = 1)]
    truth: f32,
}

/// A rumor as the client sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct RumorJson {
    id: i64,
    text: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin_npc_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    origin_event_id: Option<i64>,
    region_id: i64,
    truth: f32,
    /// The first telling.
    root_variant_id: i64,
    variant_count: i64,
    /// RFC 3339 UTC.
    #[schema(format = DateTime)]
    created_at: String,
}

/// One telling of a rumor: the text as its listener heard it.
#[derive(Debug, Serialize, ToSchema)]
pub struct VariantJson {
    id: i64,
    rumor_id: i64,
    /// The telling this one retells; left out for the first.
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<i64>,
    text: String,
    /// How far the text drifted from the first telling, 0..=1.
    distortion: f32,
    truth: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    teller_npc_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listener_npc_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    listener_player_id: Option<i64>,
    /// What retold it (`local/...` or the upstream model).
    transformer: String,
    /// RFC 3339 UTC: when it was told.
    #[schema(format = DateTime)]
    at: String,
}

/// `POST /v1/rumors/{id}/spread` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SpreadJson {
    from_npc_id: i64,
    to_npc_id: i64,
    /// Varies the retelling; the same seed gives the same text.
    seed: Option<u64>,
}

/// `POST /v1/rumors/{id}/spread` answer: the listener's variant.
#[derive(Debug, Serialize, ToSchema)]
pub struct SpreadAnswerJson {
    #[serde(flatten)]
    variant: VariantJson,
    /// True when the listener already knew the rumor (nothing retold).
    already_known: bool,
}

/// A variant someone knows, and since when.
#[derive(Debug, Serialize, ToSchema)]
pub struct KnownJson {
    #[serde(flatten)]
    variant: VariantJson,
    region_id: i64,
    /// RFC 3339 UTC: since when it is known.
    #[schema(format = DateTime)]
    since: String,
}

/// `GET .../rumors` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct KnownQuery {
    /// Only rumors of this region.
    #[param(minimum = 1)]
    region_id: Option<i64>,
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page (newest first).
    #[param(pattern = "^d(0|[1-9][0-9]{0,17})$")]
    cursor: Option<String>,
}

/// `POST /v1/npcs/{id}/talk` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TalkJson {
    npc_id: i64,
    /// False when the NPC knows nothing to tell, or will not talk.
    told: bool,
    /// What the player heard.
    #[serde(skip_serializing_if = "Option::is_none")]
    rumor: Option<VariantJson>,
    /// True when the player had not heard this rumor before.
    first_time: bool,
    attitude: AttitudeJson,
    /// Why the NPC told nothing, when it is hostile.
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<String>,
    /// What a friendly NPC told besides `rumor`: further rumors the player
    /// had not heard.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    more: Vec<VariantJson>,
}

/// How an NPC is disposed to talk to the player, from the player's
/// standing with its faction.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttitudeJson {
    /// Standing below -20: it tells nothing, and `refusal` says why.
    Hostile,
    /// Standing from -20 to 19, or the NPC has no faction: one rumor.
    Neutral,
    /// Standing 20 or more: up to two rumors the player has not heard.
    Friendly,
}

/// `POST /v1/rumors:tick` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TickJson {
    region_id: i64,
    /// The most tellings of this tick (the service's default when absent).
    #[schema(minimum = 1)]
    max_tellings: Option<u32>,
    /// Varies who tells whom; the same seed gives the same tick.
    seed: Option<u64>,
}

/// `POST /v1/rumors:tick` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct TickReportJson {
    region_id: i64,
    /// NPCs in the region.
    npcs: u32,
    /// NPCs that knew a rumor.
    knowers: u32,
    /// Rumors told in this tick.
    tellings: u32,
}

/// Creates a rumor (admin). Honours `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/rumors",
    operation_id = "createRumor",
    tag = "rumors",
    params(IdempotencyKey),
    request_body = NewRumorJson,
    security(("admin" = [])),
    responses(
        (status = 201, description = "The rumor, created now or by an earlier request with the same `Idempotency-Key`", body = RumorJson,
            headers(("idempotent-replayed" = String, description = "`true` when an earlier request with this key created it"))),
        (status = 400, description = "A field is invalid, or names an unknown region or world event", body = ErrorBody),
        (status = 404, description = "The origin NPC does not exist", body = ErrorBody),
        (status = 409, description = "The `Idempotency-Key` was used for a different request", body = ErrorBody),
        (status = 503, description = "The rumor service (or the NPC or world service it asks) is unavailable, or rumors are not enabled on this gateway", body = ErrorBody),
    ),
)]
pub async fn create(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    headers: HeaderMap,
    Body(body): Body<NewRumorJson>,
) -> GatewayResult<impl IntoResponse> {
    let request = pb::CreateRumorRequest {
        text: body.text,
        origin_npc_id: body.origin_npc_id,
        origin_event_id: body.origin_event_id,
        region_id: body.region_id,
        truth: body.truth,
        idempotency_key: idempotency_key(&headers)?,
    };
    let response = rumor_client(&state)?.create_rumor(request).await?.into_inner();
    let rumor = response
        .rumor
        .ok_or_else(|| GatewayError::Internal("create_rumor answered without a rumor".into()))?;
    tracing::Span::current().record("rumor.id", rumor.id);
    let replayed = if response.replayed { "true" } else { "false" };
    Ok((
        [("idempotent-replayed", replayed)],
        Reply::created(format, RumorJson::from(rumor)),
    ))
}

/// Reads one rumor.
#[utoipa::path(
    get,
    path = "/v1/rumors/{id}",
    operation_id = "getRumor",
    tag = "rumors",
    params(PathId),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The rumor", body = RumorJson),
        (status = 404, description = "No rumor has this id", body = ErrorBody),
        (status = 503, description = "The rumor service is unavailable, or rumors are not enabled on this gateway", body = ErrorBody),
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    PathId(id): PathId,
) -> GatewayResult<Reply<RumorJson>> {
    tracing::Span::current().record("rumor.id", id);
    let rumor = rumor_client(&state)?
        .get_rumor(pb::GetRumorRequest { id })
        .await?
        .into_inner();
    Ok(Reply::ok(format, RumorJson::from(rumor)))
}

/// One NPC tells another a rumor (admin): 201 with the listener's new
/// variant, or 200 with the one it had when it knew the rumor already.
#[utoipa::path(
    post,
    path = "/v1/rumors/{id}/spread",
    operation_id = "spreadRumor",
    tag = "rumors",
    params(PathId),
    request_body = SpreadJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The listener knew the rumor already: its variant, `already_known: true`", body = SpreadAnswerJson),
        (status = 201, description = "The listener's new variant", body = SpreadAnswerJson),
        (status = 404, description = "No rumor has this id, or an NPC does not exist", body = ErrorBody),
        (status = 409, description = "The teller does not know the rumor", body = ErrorBody),
        (status = 503, description = "The rumor service (or the NPC or world service it asks) is unavailable, or rumors are not enabled on this gateway", body = ErrorBody),
    ),
)]
pub async fn spread(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    PathId(id): PathId,
    Body(body): Body<SpreadJson>,
) -> GatewayResult<impl IntoResponse> {
    tracing::Span::current().record("rumor.id", id);
    let request = pb::SpreadRumorRequest {
        rumor_id: id,
        from_npc_id: body.from_npc_id,
        to_npc_id: body.to_npc_id,
        seed: body.seed.unwrap_or(0),
    };
    let response = rumor_client(&state)?.spread_rumor(request).await?.into_inner();
    let variant = response
        .variant
        .ok_or_else(|| GatewayError::Internal("spread_rumor answered without a variant".into()))?;
    let answer = SpreadAnswerJson {
        variant: VariantJson::from(variant),
        already_known: response.already_known,
    };
    let status = if response.already_known {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    Ok((status, Reply::ok(format, answer)))
}

/// What an NPC knows, newest rumor first.
#[utoipa::path(
    get,
    path = "/v1/npcs/{id}/rumors",
    operation_id = "listNpcRumors",
    tag = "rumors",
    params(PathId, KnownQuery),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "A page of the variants the NPC knows, newest rumor first", body = ListJson<KnownJson>),
        (status = 503, description = "The rumor service is unavailable, or rumors are not enabled on this gateway", body = ErrorBody),
    ),
)]
pub async fn known_by_npc(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    PathId(id): PathId,
    QueryArgs(q): QueryArgs<KnownQuery>,
) -> GatewayResult<Reply<ListJson<KnownJson>>> {
    tracing::Span::current().record("npc.id", id);
    list_known(&state, format, Some(id), None, q).await
}

/// What the calling player has heard, newest rumor first.
#[utoipa::path(
    get,
    path = "/v1/me/rumors",
    operation_id = "listMyRumors",
    tag = "rumors",
    params(KnownQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of the variants the player has heard, newest rumor first", body = ListJson<KnownJson>),
        (status = 503, description = "The rumor service is unavailable, or rumors are not enabled on this gateway", body = ErrorBody),
    ),
)]
pub async fn mine(
    State(state): State<AppState>,
    Player(player_id): Player,
    format: Format,
    QueryArgs(q): QueryArgs<KnownQuery>,
) -> GatewayResult<Reply<ListJson<KnownJson>>> {
    list_known(&state, format, None, Some(player_id), q).await
}

async fn list_known(
    state: &AppState,
    format: Format,
    npc_id: Option<i64>,
    player_id: Option<i64>,
    q: KnownQuery,
) -> GatewayResult<Reply<ListJson<KnownJson>>> {
    let request = pb::ListKnownRumorsRequest {
        npc_id,
        player_id,
        region_id: q.region_id,
        limit: check_limit(q.limit)?,
        cursor: q.cursor.unwrap_or_default(),
    };
    let page = rumor_client(state)?.list_known_rumors(request).await?.into_inner();
    let items = page
        .known
        .into_iter()
        .filter_map(|k| {
            k.variant.map(|v| KnownJson {
                variant: VariantJson::from(v),
                region_id: k.region_id,
                since: vdm_kit::rfc3339(k.since_ms),
            })
        })
        .collect();
    Ok(Reply::ok(format, ListJson::new(items, page.next_cursor)))
}

/// The calling player talks to an NPC, which tells a rumor it knows: the
/// newest the player has not heard, else the newest. The player's standing
/// with the NPC's faction decides how it talks: hostile (below -20) it
/// tells nothing and says why, friendly (20 or more) it tells up to two
/// rumors the player has not heard.
#[utoipa::path(
    post,
    path = "/v1/npcs/{id}/talk",
    operation_id = "talkToNpc",
    tag = "rumors",
    params(PathId),
    security(("session" = [])),
    responses(
        (status = 200, description = "What the player heard; `told: false` when the NPC knows nothing or is hostile (`refusal` says why)", body = TalkJson),
        (status = 404, description = "No NPC has this id", body = ErrorBody),
        (status = 503, description = "The rumor service (or the NPC or world service it asks) is unavailable, or rumors are not enabled on this gateway", body = ErrorBody),
    ),
)]
pub async fn talk(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
    PathId(npc_id): PathId,
) -> GatewayResult<Reply<TalkJson>> {
    tracing::Span::current().record("npc.id", npc_id);
    let mut rumors = rumor_client(&state)?;
    let standings = state.standings.of(&state.player, player_id).await;
    let response = rumors
        .tell_player(pb::TellPlayerRequest {
            npc_id,
            player_id,
            standings: standings.to_vec(),
        })
        .await?
        .into_inner();
    let attitude = match response.attitude() {
        pb::Attitude::Hostile => AttitudeJson::Hostile,
        pb::Attitude::Friendly => AttitudeJson::Friendly,
        pb::Attitude::Neutral | pb::Attitude::Unspecified => AttitudeJson::Neutral,
    };
    Ok(Reply::ok(
        format,
        TalkJson {
            npc_id,
            told: response.told,
            rumor: response.variant.map(VariantJson::from),
            first_time: response.first_time,
            attitude,
            refusal: Some(response.refusal).filter(|r| !r.is_empty()),
            more: response.more.into_iter().map(VariantJson::from).collect(),
        },
    ))
}

/// Runs one spreading tick of a region now (admin); the background ticker
/// does the same every `VDM_RUMOR_TICK_INTERVAL_MS`.
#[utoipa::path(
    post,
    path = "/v1/rumors:tick",
    operation_id = "tickRumors",
    tag = "rumors",
    request_body = TickJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "What the tick did", body = TickReportJson),
        (status = 503, description = "The rumor service (or the NPC or world service it asks) is unavailable, or rumors are not enabled on this gateway", body = ErrorBody),
    ),
)]
pub async fn tick(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    Body(body): Body<TickJson>,
) -> GatewayResult<Reply<TickReportJson>> {
    tracing::Span::current().record("region.id", body.region_id);
    let request = pb::SpreadTickRequest {
        region_id: body.region_id,
        max_tellings: match body.max_tellings {
            Some(0) => return Err(GatewayError::invalid("max_tellings must be at least 1")),
            other => other.unwrap_or(0),
        },
        seed: body.seed.unwrap_or(0),
    };
    let report = rumor_client(&state)?.spread_tick(request).await?.into_inner();
    Ok(Reply::ok(
        format,
        TickReportJson {
            region_id: body.region_id,
            npcs: report.npcs,
            knowers: report.knowers,
            tellings: report.tellings,
        },
    ))
}

impl From<pb::Rumor> for RumorJson {
    fn from(r: pb::Rumor) -> RumorJson {
        RumorJson {
            id: r.id,
            text: r.text,
            origin_npc_id: r.origin_npc_id,
            origin_event_id: r.origin_event_id,
            region_id: r.region_id,
            truth: r.truth,
            root_variant_id: r.root_variant_id,
            variant_count: r.variant_count,
            created_at: vdm_kit::rfc3339(r.created_at_ms),
        }
    }
}

/// A variant as clients see it (the bootstrap uses it too).
impl From<pb::Variant> for VariantJson {
    fn from(v: pb::Variant) -> VariantJson {
        VariantJson {
            id: v.id,
            rumor_id: v.rumor_id,
            parent_id: v.parent_id,
            text: v.text,
            distortion: v.distortion,
            truth: v.truth,
            teller_npc_id: v.teller_npc_id,
            listener_npc_id: v.listener_npc_id,
            listener_player_id: v.listener_player_id,
            transformer: v.transformer,
            at: vdm_kit::rfc3339(v.created_at_ms),
        }
    }
}
