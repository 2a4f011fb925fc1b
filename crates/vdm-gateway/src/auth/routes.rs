//! `POST /v1/auth/device`, `POST /v1/auth/refresh`, `POST /v1/auth/signout`
//! and the operators' `POST /v1/players/{id}/sessions:revoke`.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::ToSchema;
use vdm_kit::ErrorCode;
use vdm_kit::bus::EventBus;

use crate::auth::accounts::{Accounts, Rotation};
use crate::auth::sessions::{self, Revocation};
use crate::auth::{Admin, Player, TokenKeys, TokenPair};
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, Reply};

/// `POST /v1/auth/device` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceSignIn {
    /// A stable identifier of the device (Unity's `SystemInfo.deviceUniqueIdentifier`):
    /// 1 to 128 printable ASCII characters, no spaces (surrounding
    /// whitespace is trimmed).
    #[schema(min_length = 1, max_length = 128, pattern = "^[!-~]{1,128}$")]
    pub device_id: String,
}

/// `POST /v1/auth/refresh` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// A refresh token from an earlier sign-in or refresh.
    pub refresh_token: String,
}

/// Signs a device in, creating its player (with a fresh profile) on first
/// use.
#[utoipa::path(
    post,
    path = "/v1/auth/device",
    operation_id = "signInDevice",
    tag = "auth",
    request_body = DeviceSignIn,
    responses(
        (status = 200, description = "Signed in: the device's player exists", body = TokenPair),
        (status = 201, description = "Signed in: the device's player was created", body = TokenPair),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn device(
    State(tokens): State<Arc<TokenKeys>>,
    State(accounts): State<Accounts>,
    format: Format,
    Body(body): Body<DeviceSignIn>,
) -> GatewayResult<Reply<TokenPair>> {
    let device_id = body.device_id.trim();
    if device_id.is_empty() || device_id.len() > 128 || !device_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(GatewayError::invalid(
            "device_id must be 1 to 128 printable ASCII characters",
        ));
    }
    let (player_id, created) = accounts.sign_in(device_id).await?;
    if created {
        tracing::info!(player.id = player_id, "player created");
    }
    let pair = tokens.issue(player_id, None)?;
    Ok(if created {
        Reply::created(format, pair)
    } else {
        Reply::ok(format, pair)
    })
}

/// Trades a refresh token for a new pair.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    operation_id = "refreshTokens",
    tag = "auth",
    request_body = Refresh,
    responses(
        (status = 200, description = "A new pair of tokens; the refresh token sent is spent", body = TokenPair),
        (status = 401, description = "The refresh token is invalid, expired, spent or revoked, or its player no longer exists; \
            a spent token sent again revokes its whole session", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn refresh(
    State(tokens): State<Arc<TokenKeys>>,
    State(accounts): State<Accounts>,
    State(bus): State<EventBus>,
    format: Format,
    Body(body): Body<Refresh>,
) -> GatewayResult<Reply<TokenPair>> {
    let grant = tokens.verify_refresh(body.refresh_token.trim())?;
    let session = &grant.session;
    let refused = |message: &str| Err(GatewayError::api(ErrorCode::Unauthenticated, message));
    match accounts
        .rotate(session.player_id, &session.sid, grant.generation, session.issued_ms)
        .await?
    {
        Rotation::Rotated(generation) => Ok(Reply::ok(
            format,
            tokens.issue(session.player_id, Some((&session.sid, generation)))?,
        )),
        Rotation::NoPlayer => refused("the token's player no longer exists"),
        Rotation::Revoked => refused("the session has been revoked; sign in again"),
        Rotation::Reused => {
            tracing::warn!(
                player.id = session.player_id,
                generation = grant.generation,
                "spent refresh token used again: session revoked"
            );
            metrics::counter!("vdm_refresh_reuse_total").increment(1);
            revoked(
                &tokens,
                &bus,
                Revocation::Session {
                    player_id: session.player_id,
                    sid: session.sid.clone(),
                    at_ms: vdm_kit::now_ms(),
                },
            )
            .await;
            refused("this refresh token was used already; the session is revoked, sign in again")
        }
    }
}

/// Ends the caller's session: its tokens stop working on every replica and
/// its sockets close (4003).
#[utoipa::path(
    post,
    path = "/v1/auth/signout",
    operation_id = "signOut",
    tag = "auth",
    security(("session" = [])),
    responses(
        (status = 204, description = "Signed out: the session's tokens no longer work"),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn sign_out(
    State(tokens): State<Arc<TokenKeys>>,
    State(accounts): State<Accounts>,
    State(bus): State<EventBus>,
    Player(_): Player,
    headers: axum::http::HeaderMap,
) -> GatewayResult<StatusCode> {
    let session = tokens.verify_session(crate::auth::bearer_in(&headers)?)?;
    let at_ms = accounts.revoke_session(session.player_id, &session.sid).await?;
    tracing::info!(player.id = session.player_id, "signed out");
    revoked(
        &tokens,
        &bus,
        Revocation::Session {
            player_id: session.player_id,
            sid: session.sid,
            at_ms,
        },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes every session of a player (a lost device, a compromised
/// account): its tokens stop working on every replica and its sockets close.
#[utoipa::path(
    post,
    path = "/v1/players/{id}/sessions:revoke",
    operation_id = "revokePlayerSessions",
    tag = "auth",
    params(("id" = i64, Path, description = "The player")),
    security(("admin" = [])),
    responses(
        (status = 204, description = "Every session of the player issued until now is revoked"),
        (status = 404, description = "No such player", body = ErrorBody),
        (status = 503, description = "The player service is unavailable", body = ErrorBody),
    ),
)]
pub async fn revoke_player(
    State(tokens): State<Arc<TokenKeys>>,
    State(accounts): State<Accounts>,
    State(bus): State<EventBus>,
    Admin(operator): Admin,
    Path(player_id): Path<i64>,
) -> GatewayResult<StatusCode> {
    let not_found = || GatewayError::api(ErrorCode::NotFound, format!("player {player_id} not found"));
    if player_id <= 0 {
        return Err(not_found());
    }
    let at_ms = accounts.revoke_player(player_id).await?.ok_or_else(not_found)?;
    tracing::info!(
        player.id = player_id,
        operator.name = &*operator,
        "sessions revoked by an operator"
    );
    revoked(
        &tokens,
        &bus,
        Revocation::Player {
            player_id,
            before_ms: at_ms,
        },
    )
    .await;
    Ok(StatusCode::NO_CONTENT)
}

/// Applies a revocation (stored already) here at once, and tells the
/// other replicas.
async fn revoked(tokens: &TokenKeys, bus: &EventBus, revocation: Revocation) {
    tokens.revocations().apply(&revocation);
    bus.publish(sessions::event(&revocation)).await;
}
