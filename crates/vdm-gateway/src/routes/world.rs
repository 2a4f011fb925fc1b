//! World routes (`/v1/world/...`): the map's regions, factions and their
//! relations, the world clock, and world events (the operators' writes of
//! regions, factions and relations are in [`super::world_admin`]). Each handler converts JSON
//! to a gRPC request, calls the world service and converts the answer back.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use vdm_proto::world::v1 as pb;

use super::shared::{IdempotencyKey, ListJson, check_limit, idempotency_key, parse_time, time_schema};
use crate::auth::{Admin, Caller};
use crate::edge_cache::{Conditional, Resource};
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, PathId, QueryArgs, Reply};
use crate::state::AppState;

/// A region as the client sees it; cells are `[q, r]` pairs.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegionJson {
    id: i64,
    name: String,
    biome: String,
    /// The region's hexes, each `[q, r]` (axial coordinates).
    cells: Vec<[i32; 2]>,
    /// Regions sharing an edge with this one; left out when none.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    neighbor_ids: Vec<i64>,
}

/// A faction.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactionJson {
    id: i64,
    name: String,
}

/// The relation of two factions (`a < b`), -100..=100.
#[derive(Debug, Serialize, ToSchema)]
pub struct RelationJson {
    a: i64,
    b: i64,
    #[schema(minimum = -100, maximum = 100)]
    score: i32,
}

/// `GET /v1/world/factions`: every faction, and the score of every pair.
#[derive(Debug, Serialize, ToSchema)]
pub struct FactionsJson {
    items: Vec<FactionJson>,
    relations: Vec<RelationJson>,
}

/// The world clock.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorldTimeJson {
    /// Game time in milliseconds since the world began.
    game_time_ms: i64,
    day: u32,
    hour: u32,
    minute: u32,
    /// Game seconds per real second.
    rate: f64,
}

/// A world event.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventJson {
    id: i64,
    kind: String,
    text: String,
    region_ids: Vec<i64>,
    /// Game time when it happened.
    game_time_ms: i64,
    /// RFC 3339 UTC: when it was published.
    #[schema(format = DateTime)]
    at: String,
}

/// `POST /v1/world/events` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEventJson {
    kind: String,
    text: String,
    /// The regions it concerns (existing ones).
    #[schema(min_items = 1, max_items = 64)]
    region_ids: Vec<i64>,
}

/// `GET /v1/world/events` query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Only events concerning this region.
    #[param(minimum = 1)]
    region_id: Option<i64>,
    /// Only events from this time on: Unix milliseconds, or an RFC 3339 time.
    #[param(schema_with = time_schema)]
    since: Option<String>,
    /// Page size, 1 to 100.
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// Lists every region of the map.
#[utoipa::path(
    get,
    path = "/v1/world/regions",
    operation_id = "listRegions",
    tag = "world",
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "Every region (never a `next_cursor`)", body = ListJson<RegionJson>,
            headers(("etag" = String, description = "A strong validator of this body in this format"))),
        (status = 304, description = "No region has changed since the `If-None-Match` ETag"),
        (status = 503, description = "The world service is unavailable", body = ErrorBody),
    ),
)]
pub async fn regions(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    Conditional(headers): Conditional,
) -> Response {
    // The client is cloned only for a miss.
    let client = &state.world;
    state
        .edge
        .serve(Resource::Regions, format, &headers, move || {
            let mut client = client.clone();
            async move {
                let regions = client
                    .list_regions(pb::ListRegionsRequest {})
                    .await?
                    .into_inner()
                    .regions;
                Ok(ListJson::new(
                    regions.into_iter().map(RegionJson::from).collect(),
                    String::new(),
                ))
            }
        })
        .await
}

/// Reads one region.
#[utoipa::path(
    get,
    path = "/v1/world/regions/{id}",
    operation_id = "getRegion",
    tag = "world",
    params(PathId),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The region", body = RegionJson,
            headers(("etag" = String, description = "A strong validator of this body in this format"))),
        (status = 304, description = "The region has not changed since the `If-None-Match` ETag"),
        (status = 404, description = "No region has this id", body = ErrorBody),
        (status = 503, description = "The world service is unavailable", body = ErrorBody),
    ),
)]
pub async fn region(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    Conditional(headers): Conditional,
    PathId(id): PathId,
) -> Response {
    tracing::Span::current().record("region.id", id);
    // The client is cloned only for a miss.
    let client = &state.world;
    state
        .edge
        .serve(Resource::Region(id), format, &headers, move || {
            let mut client = client.clone();
            async move {
                let region = client.get_region(pb::GetRegionRequest { id }).await?.into_inner();
                Ok(RegionJson::from(region))
            }
        })
        .await
}

/// Lists the factions and the relation of every pair.
#[utoipa::path(
    get,
    path = "/v1/world/factions",
    operation_id = "listFactions",
    tag = "world",
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "Every faction and the relation of every pair", body = FactionsJson,
            headers(("etag" = String, description = "A strong validator of this body in this format"))),
        (status = 304, description = "No faction or relation has changed since the `If-None-Match` ETag"),
        (status = 503, description = "The world service is unavailable", body = ErrorBody),
    ),
)]
pub async fn factions(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    Conditional(headers): Conditional,
) -> Response {
    let (mut for_factions, mut for_relations) = (state.world.clone(), state.world.clone());
    state
        .edge
        .serve(Resource::Factions, format, &headers, move || async move {
            let (factions, relations) = tokio::join!(
                for_factions.list_factions(pb::ListFactionsRequest {}),
                for_relations.get_faction_relations(pb::GetFactionRelationsRequest { faction_id: None }),
            );
            Ok(FactionsJson {
                items: factions?
                    .into_inner()
                    .factions
                    .into_iter()
                    .map(FactionJson::from)
                    .collect(),
                relations: relations?
                    .into_inner()
                    .relations
                    .into_iter()
                    .map(RelationJson::from)
                    .collect(),
            })
        })
        .await
}

/// The world clock now.
#[utoipa::path(
    get,
    path = "/v1/world/time",
    operation_id = "getWorldTime",
    tag = "world",
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The world clock", body = WorldTimeJson),
        (status = 503, description = "The world service is unavailable", body = ErrorBody),
    ),
)]
pub async fn time(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
) -> GatewayResult<Reply<WorldTimeJson>> {
    let time = state
        .world
        .clone()
        .get_world_time(pb::GetWorldTimeRequest {})
        .await?
        .into_inner();
    Ok(Reply::ok(format, WorldTimeJson::from(time)))
}

/// Publishes a world event (admin). Honours `Idempotency-Key`.
#[utoipa::path(
    post,
    path = "/v1/world/events",
    operation_id = "publishWorldEvent",
    tag = "world",
    params(IdempotencyKey),
    request_body = NewEventJson,
    security(("admin" = [])),
    responses(
        (status = 201, description = "The event, published now (at the current game time) or by an earlier request with the same `Idempotency-Key`", body = EventJson,
            headers(("idempotent-replayed" = String, description = "`true` when an earlier request with this key published it"))),
        (status = 400, description = "A field is invalid, or `region_ids` names an unknown region", body = ErrorBody),
        (status = 409, description = "The `Idempotency-Key` was used for a different request", body = ErrorBody),
        (status = 503, description = "The world service is unavailable, or a concurrent change won", body = ErrorBody),
    ),
)]
pub async fn publish_event(
    State(state): State<AppState>,
    _admin: Admin,
    format: Format,
    headers: HeaderMap,
    Body(body): Body<NewEventJson>,
) -> GatewayResult<impl IntoResponse> {
    let request = pb::PublishWorldEventRequest {
        kind: body.kind,
        text: body.text,
        region_ids: body.region_ids,
        idempotency_key: idempotency_key(&headers)?,
    };
    let response = state.world.clone().publish_world_event(request).await?.into_inner();
    let event = response
        .event
        .ok_or_else(|| GatewayError::Internal("publish_world_event answered without an event".into()))?;
    let replayed = if response.replayed { "true" } else { "false" };
    Ok((
        [("idempotent-replayed", replayed)],
        Reply::created(format, EventJson::from(event)),
    ))
}

/// Lists events oldest first, by region and since a time.
#[utoipa::path(
    get,
    path = "/v1/world/events",
    operation_id = "listWorldEvents",
    tag = "world",
    params(EventsQuery),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "A page of events, oldest first", body = ListJson<EventJson>),
        (status = 503, description = "The world service is unavailable", body = ErrorBody),
    ),
)]
pub async fn events(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    QueryArgs(q): QueryArgs<EventsQuery>,
) -> GatewayResult<Reply<ListJson<EventJson>>> {
    let request = pb::ListWorldEventsRequest {
        region_id: q.region_id,
        since_ms: q.since.as_deref().map(|raw| parse_time("since", raw)).transpose()?,
        limit: check_limit(q.limit)?,
        cursor: q.cursor.unwrap_or_default(),
    };
    if q.region_id.is_some_and(|id| id <= 0) {
        return Err(GatewayError::invalid("region_id must be a positive id"));
    }
    let page = state.world.clone().list_world_events(request).await?.into_inner();
    Ok(Reply::ok(
        format,
        ListJson::new(page.events.into_iter().map(EventJson::from).collect(), page.next_cursor),
    ))
}

impl From<pb::Region> for RegionJson {
    fn from(region: pb::Region) -> RegionJson {
        RegionJson {
            id: region.id,
            name: region.name,
            biome: region.biome,
            cells: region.cells.into_iter().map(|c| [c.q, c.r]).collect(),
            neighbor_ids: region.neighbor_ids,
        }
    }
}

impl From<pb::Faction> for FactionJson {
    fn from(faction: pb::Faction) -> FactionJson {
        FactionJson {
            id: faction.id,
            name: faction.name,
        }
    }
}

impl From<pb::FactionRelation> for RelationJson {
    fn from(relation: pb::FactionRelation) -> RelationJson {
        RelationJson {
            a: relation.faction_a,
            b: relation.faction_b,
            score: relation.score,
        }
    }
}

impl From<pb::WorldTime> for WorldTimeJson {
    fn from(time: pb::WorldTime) -> WorldTimeJson {
        WorldTimeJson {
            game_time_ms: time.game_time_ms,
            day: time.day,
            hour: time.hour,
            minute: time.minute,
            rate: time.rate,
        }
    }
}

impl From<pb::WorldEvent> for EventJson {
    fn from(event: pb::WorldEvent) -> EventJson {
        EventJson {
            id: event.id,
            kind: event.kind,
            text: event.text,
            region_ids: event.region_ids,
            game_time_ms: event.game_time_ms,
            at: vdm_kit::rfc3339(event.created_at_ms),
        }
    }
}
