//! The operators' player routes: grants (`/v1/players/{id}/grants`) and the
//! item catalog (`/v1/items`, which players may read).

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use vdm_proto::player::v1 as pb;

use super::json::{ChangeJson, GrantJson, ItemBodyJson, ItemJson, ListItemsQuery};
use crate::auth::{Admin, Caller};
use crate::error::{ErrorBody, GatewayResult};
use crate::negotiate::{Body, Format, NoQuery, PathId, QueryArgs, Reply};
use crate::routes::shared::{IdempotencyKey, ListJson, check_limit, idempotency_key};
use crate::state::AppState;

/// Grants gold, xp and items to a player (admin); every change is a ledger
/// entry. With an `Idempotency-Key` (the grant id, 1 to 128 printable ASCII
/// characters) a retried grant applies once.
#[utoipa::path(
    post,
    path = "/v1/players/{id}/grants",
    operation_id = "grantToPlayer",
    tag = "players",
    params(PathId, IdempotencyKey),
    request_body = GrantJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "Granted now or by an earlier request with the same `Idempotency-Key` (`replayed`)", body = ChangeJson,
            headers(("idempotent-replayed" = String, description = "`true` when an earlier request with this key granted it"))),
        (status = 400, description = "Nothing to grant, or a bad `Idempotency-Key`", body = ErrorBody),
        (status = 404, description = "No player, or no catalog item, has this id", body = ErrorBody),
        (status = 409, description = "A stack would pass its item's `max_stack`, a balance would overflow, or the `Idempotency-Key` was used for another grant", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn grant(
    State(state): State<AppState>,
    _admin: Admin,
    _no_query: NoQuery,
    format: Format,
    headers: HeaderMap,
    PathId(player_id): PathId,
    Body(body): Body<GrantJson>,
) -> GatewayResult<impl IntoResponse> {
    let grant_id = idempotency_key(&headers)?;
    let change = state
        .player
        .clone()
        .grant(body.into_pb(player_id, grant_id))
        .await?
        .into_inner();
    let replayed = if change.replayed { "true" } else { "false" };
    Ok((
        [("idempotent-replayed", replayed)],
        Reply::ok(format, ChangeJson::from(change)),
    ))
}

/// Creates or replaces a catalog item (admin).
#[utoipa::path(
    put,
    path = "/v1/items/{id}",
    operation_id = "putItem",
    tag = "players",
    params(PathId),
    request_body = ItemBodyJson,
    security(("admin" = [])),
    responses(
        (status = 200, description = "The item as stored", body = ItemJson),
        (status = 409, description = "Another item has this key", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn put_item(
    State(state): State<AppState>,
    _admin: Admin,
    _no_query: NoQuery,
    format: Format,
    PathId(id): PathId,
    Body(body): Body<ItemBodyJson>,
) -> GatewayResult<Reply<ItemJson>> {
    let request = pb::PutItemRequest {
        item: Some(body.into_pb(id)),
    };
    let item = state.player.clone().put_item(request).await?.into_inner();
    Ok(Reply::ok(format, ItemJson::from(item)))
}

/// Reads one catalog item.
#[utoipa::path(
    get,
    path = "/v1/items/{id}",
    operation_id = "getItem",
    tag = "players",
    params(PathId),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "The item", body = ItemJson),
        (status = 404, description = "No item has this id", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn get_item(
    State(state): State<AppState>,
    _caller: Caller,
    _no_query: NoQuery,
    format: Format,
    PathId(id): PathId,
) -> GatewayResult<Reply<ItemJson>> {
    let item = state
        .player
        .clone()
        .get_item(pb::GetItemRequest { id })
        .await?
        .into_inner();
    Ok(Reply::ok(format, ItemJson::from(item)))
}

/// Lists the item catalog in id order.
#[utoipa::path(
    get,
    path = "/v1/items",
    operation_id = "listItems",
    tag = "players",
    params(ListItemsQuery),
    security(("session" = []), ("admin" = [])),
    responses(
        (status = 200, description = "A page of items", body = ListJson<ItemJson>),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn list_items(
    State(state): State<AppState>,
    _caller: Caller,
    format: Format,
    QueryArgs(q): QueryArgs<ListItemsQuery>,
) -> GatewayResult<Reply<ListJson<ItemJson>>> {
    let request = pb::ListItemsRequest {
        limit: check_limit(q.limit)?,
        cursor: q.cursor.unwrap_or_default(),
    };
    let page = state.player.clone().list_items(request).await?.into_inner();
    Ok(Reply::ok(
        format,
        ListJson::new(page.items.into_iter().map(ItemJson::from).collect(), page.next_cursor),
    ))
}
