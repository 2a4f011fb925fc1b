//! Player routes: the caller's profile, inventory, ledger and faction
//! standings (`/v1/me`, `/v1/me/inventory`, `/v1/me/ledger`,
//! `/v1/me/factions`) here; the operators' grants and the
//! item catalog in [`admin`]; the JSON shapes in [`json`]. Each handler
//! converts JSON to a gRPC request, calls the player service and converts
//! the answer back.

pub mod admin;
pub mod json;

use axum::extract::State;
use vdm_proto::player::v1 as pb;

use self::json::{
    FactionStandingJson, FactionStandingsJson, InventoryJson, LedgerEntryJson, LedgerQuery, ProfileJson,
    ProfilePatchJson,
};
use super::shared::{ListJson, check_limit};
use crate::auth::Player;
use crate::error::{ErrorBody, GatewayResult};
use crate::negotiate::{Body, Format, NoQuery, QueryArgs, Reply};
use crate::state::AppState;

/// Reads the calling player's profile.
#[utoipa::path(
    get,
    path = "/v1/me",
    operation_id = "getMe",
    tag = "players",
    security(("session" = [])),
    responses(
        (status = 200, description = "The player's profile", body = ProfileJson),
        (status = 404, description = "The player service has no profile for this player yet (it is made at device sign-in)", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn me(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
) -> GatewayResult<Reply<ProfileJson>> {
    let profile = state
        .player
        .clone()
        .get_profile(pb::GetProfileRequest { player_id })
        .await?
        .into_inner();
    Ok(Reply::ok(format, ProfileJson::from(profile)))
}

/// Changes the calling player's profile: the display name.
#[utoipa::path(
    patch,
    path = "/v1/me",
    operation_id = "updateMe",
    tag = "players",
    request_body = ProfilePatchJson,
    security(("session" = [])),
    responses(
        (status = 200, description = "The profile as changed", body = ProfileJson),
        (status = 400, description = "The display name is not 3 to 24 letters, digits, spaces, `_` or `-`", body = ErrorBody),
        (status = 404, description = "The player service has no profile for this player yet", body = ErrorBody),
        (status = 409, description = "Another player has this display name (compared case-insensitively)", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn update_me(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
    Body(body): Body<ProfilePatchJson>,
) -> GatewayResult<Reply<ProfileJson>> {
    let request = pb::UpdateProfileRequest {
        player_id,
        display_name: body.display_name,
    };
    let profile = state.player.clone().update_profile(request).await?.into_inner();
    Ok(Reply::ok(format, ProfileJson::from(profile)))
}

/// Reads the calling player's inventory: one stack per item held.
#[utoipa::path(
    get,
    path = "/v1/me/inventory",
    operation_id = "getMyInventory",
    tag = "players",
    security(("session" = [])),
    responses(
        (status = 200, description = "The player's stacks, in item id order", body = InventoryJson),
        (status = 404, description = "The player service has no profile for this player yet", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn inventory(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
) -> GatewayResult<Reply<InventoryJson>> {
    let inventory = state
        .player
        .clone()
        .get_inventory(pb::GetInventoryRequest { player_id })
        .await?
        .into_inner();
    Ok(Reply::ok(format, InventoryJson::from(inventory)))
}

/// Lists the calling player's ledger, newest first: every change of gold,
/// xp and items, with why and the balance after it.
#[utoipa::path(
    get,
    path = "/v1/me/ledger",
    operation_id = "listMyLedger",
    tag = "players",
    params(LedgerQuery),
    security(("session" = [])),
    responses(
        (status = 200, description = "A page of the ledger, newest first", body = ListJson<LedgerEntryJson>),
        (status = 404, description = "The player service has no profile for this player yet", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn ledger(
    State(state): State<AppState>,
    Player(player_id): Player,
    format: Format,
    QueryArgs(q): QueryArgs<LedgerQuery>,
) -> GatewayResult<Reply<ListJson<LedgerEntryJson>>> {
    let request = pb::ListLedgerRequest {
        player_id,
        limit: check_limit(q.limit)?,
        cursor: q.cursor.unwrap_or_default(),
        newest_first: true,
    };
    let page = state.player.clone().list_ledger(request).await?.into_inner();
    Ok(Reply::ok(
        format,
        ListJson::new(
            page.entries.into_iter().map(LedgerEntryJson::from).collect(),
            page.next_cursor,
        ),
    ))
}

/// Lists the calling player's standing with each faction it has one with,
/// with the faction's name.
#[utoipa::path(
    get,
    path = "/v1/me/factions",
    operation_id = "listMyFactionStandings",
    tag = "players",
    security(("session" = [])),
    responses(
        (status = 200, description = "The player's standings, in faction id order (a faction left out is at 0); names are left out while the world service is unavailable", body = FactionStandingsJson),
        (status = 404, description = "The player service has no profile for this player yet", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn factions(
    State(state): State<AppState>,
    Player(player_id): Player,
    _no_query: NoQuery,
    format: Format,
) -> GatewayResult<Reply<FactionStandingsJson>> {
    let mut players = state.player.clone();
    let mut world = state.world.clone();
    let (standings, factions) = tokio::join!(
        players.list_standings(pb::ListStandingsRequest { player_id }),
        world.list_factions(vdm_proto::world::v1::ListFactionsRequest {}),
    );
    let standings = standings?.into_inner().standings;
    // Names are a convenience: the standings answer without them.
    let names: std::collections::HashMap<i64, String> = match factions {
        Ok(factions) => factions
            .into_inner()
            .factions
            .into_iter()
            .map(|f| (f.id, f.name))
            .collect(),
        Err(status) => {
            tracing::warn!(code = ?status.code(), "faction names unavailable");
            Default::default()
        }
    };
    Ok(Reply::ok(
        format,
        FactionStandingsJson {
            items: standings
                .into_iter()
                .map(|s| FactionStandingJson::named(s, &names))
                .collect(),
        },
    ))
}
