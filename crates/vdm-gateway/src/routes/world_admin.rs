//! The operators' world routes: regions with their hexes
//! (`PUT /v1/world/regions/{id}`), factions (`PUT /v1/world/factions/{id}`)
//! and the relation of two factions (`PUT /v1/world/relations`). Each is an
//! upsert by a key the caller chooses, so sending the same body twice
//! changes nothing; world content files are imported through them.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use vdm_proto::world::v1 as pb;

use super::world::{FactionJson, RegionJson, RelationJson};
use crate::auth::Admin;
use crate::edge_cache::Kind;
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, NoQuery, PathId, Reply};
use crate::state::AppState;

/// `PUT /v1/world/regions/{id}` body: the region whole.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegionBodyJson {
    name: String,
    biome: String,
    /// The region's hexes, each `[q, r]` (axial coordinates); none may
    /// belong to another region.
    #[schema(min_items = 1, max_items = 10_000)]
    cells: Vec<[i32; 2]>,
}

/// `PUT /v1/world/factions/{id}` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FactionBodyJson {
    name: String,
}

/// `PUT /v1/world/relations` body: the score of a pair of factions, in
/// either order.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RelationBodyJson {
    /// One faction's id.
    #[schema(minimum = 1)]
    a: i64,
    /// The other faction's id.
    #[schema(minimum = 1)]
    b: i64,
    /// From -100 (war) to 100 (alliance).
    #[schema(minimum = -100, maximum = 100)]
    score: i32,
}

/// Creates or replaces a region with its hexes (admin).
#[utoipa::path(
    put,
    path = "/v1/world/regions/{id}",
    operation_id = "putRegion",
    tag = "world",
    params(PathId),
    request_body = RegionBodyJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The region, replaced", body = RegionJson),
        (status = 201, description = "The region, created", body = RegionJson),
        (status = 400, description = "A field is invalid, or a hex is off the map", body = ErrorBody),
        (status = 409, description = "A hex belongs to another region", body = ErrorBody),
        (status = 503, description = "The world service is unavailable, or a concurrent change won", body = ErrorBody),
    ),
)]
pub async fn put_region(
    State(state): State<AppState>,
    _admin: Admin,
    _no_query: NoQuery,
    format: Format,
    PathId(id): PathId,
    Body(body): Body<RegionBodyJson>,
) -> GatewayResult<Reply<RegionJson>> {
    tracing::Span::current().record("region.id", id);
    let request = pb::UpsertRegionRequest {
        region: Some(pb::RegionSpec {
            id,
            name: body.name,
            biome: body.biome,
            cells: body.cells.into_iter().map(|[q, r]| pb::Hex { q, r }).collect(),
        }),
    };
    let response = state.world.clone().upsert_region(request).await?.into_inner();
    let region = response
        .region
        .ok_or_else(|| GatewayError::Internal("upsert_region answered without a region".into()))?;
    // Read-your-writes on this replica, before the bus event arrives.
    state.edge.invalidate(Kind::Region, id).await;
    Ok(put_reply(format, response.created, RegionJson::from(region)))
}

/// Creates or renames a faction (admin).
#[utoipa::path(
    put,
    path = "/v1/world/factions/{id}",
    operation_id = "putFaction",
    tag = "world",
    params(PathId),
    request_body = FactionBodyJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The faction, renamed or as it was", body = FactionJson),
        (status = 201, description = "The faction, created", body = FactionJson),
        (status = 400, description = "The name is invalid", body = ErrorBody),
        (status = 503, description = "The world service is unavailable", body = ErrorBody),
    ),
)]
pub async fn put_faction(
    State(state): State<AppState>,
    _admin: Admin,
    _no_query: NoQuery,
    format: Format,
    PathId(id): PathId,
    Body(body): Body<FactionBodyJson>,
) -> GatewayResult<Reply<FactionJson>> {
    let request = pb::UpsertFactionRequest {
        faction: Some(pb::Faction { id, name: body.name }),
    };
    let response = state.world.clone().upsert_faction(request).await?.into_inner();
    let faction = response
        .faction
        .ok_or_else(|| GatewayError::Internal("upsert_faction answered without a faction".into()))?;
    state.edge.invalidate(Kind::Faction, id).await;
    Ok(put_reply(format, response.created, FactionJson::from(faction)))
}

/// Sets the relation of two factions to a score (admin).
#[utoipa::path(
    put,
    path = "/v1/world/relations",
    operation_id = "putFactionRelation",
    tag = "world",
    request_body = RelationBodyJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The relation as set (`a < b`)", body = RelationJson),
        (status = 400, description = "The two factions are the same, or the score is out of range", body = ErrorBody),
        (status = 404, description = "No faction has one of the ids", body = ErrorBody),
        (status = 503, description = "The world service is unavailable, or a concurrent change won", body = ErrorBody),
    ),
)]
pub async fn put_relation(
    State(state): State<AppState>,
    _admin: Admin,
    _no_query: NoQuery,
    format: Format,
    Body(body): Body<RelationBodyJson>,
) -> GatewayResult<Reply<RelationJson>> {
    if body.a <= 0 || body.b <= 0 {
        return Err(GatewayError::invalid("a and b must be positive faction ids"));
    }
    let request = pb::SetFactionRelationRequest {
        faction_a: body.a,
        faction_b: body.b,
        score: body.score,
    };
    let relation = state.world.clone().set_faction_relation(request).await?.into_inner();
    state.edge.invalidate(Kind::Faction, 0).await;
    Ok(Reply::ok(format, RelationJson::from(relation)))
}

/// 201 for what a put created, 200 for what it replaced.
fn put_reply<T: serde::Serialize>(format: Format, created: bool, body: T) -> Reply<T> {
    if created {
        Reply::created(format, body)
    } else {
        Reply::ok(format, body)
    }
}
