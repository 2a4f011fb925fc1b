//! `POST /v1/auth/device` and `POST /v1/auth/refresh`.

use axum::extract::State;
use serde::Deserialize;
use utoipa::ToSchema;
use vdm_kit::ErrorCode;

use crate::auth::TokenPair;
use crate::error::{ErrorBody, GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, Reply};
use crate::state::AppState;

/// `POST /v1/auth/device` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeviceSignIn {
    /// A stable identifier of the device (Unity's `SystemInfo.deviceUniqueIdentifier`):
    /// 1 to 128 printable ASCII characters.
    #[schema(min_length = 1, max_length = 128)]
    pub device_id: String,
}

/// `POST /v1/auth/refresh` body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// A refresh token from an earlier sign-in or refresh.
    pub refresh_token: String,
}

/// Signs a device in, creating its player on first use.
#[utoipa::path(
    post,
    path = "/v1/auth/device",
    operation_id = "signInDevice",
    tag = "auth",
    request_body = DeviceSignIn,
    responses(
        (status = 200, description = "Signed in: the device's player exists", body = TokenPair),
        (status = 201, description = "Signed in: the device's player was created", body = TokenPair),
        (status = 503, description = "The player database is unavailable", body = ErrorBody),
    ),
)]
pub async fn device(
    State(state): State<AppState>,
    format: Format,
    Body(body): Body<DeviceSignIn>,
) -> GatewayResult<Reply<TokenPair>> {
    let device_id = body.device_id.trim();
    if device_id.is_empty() || device_id.len() > 128 || !device_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(GatewayError::invalid(
            "device_id must be 1 to 128 printable ASCII characters",
        ));
    }
    let (player_id, created) = state.players.sign_in(device_id).await?;
    if created {
        tracing::info!(player.id = player_id, "player created");
    }
    let pair = state.tokens.issue(player_id)?;
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
        (status = 200, description = "A new pair of tokens", body = TokenPair),
        (status = 401, description = "The refresh token is invalid or expired, or its player no longer exists", body = ErrorBody),
        (status = 503, description = "The player database is unavailable", body = ErrorBody),
    ),
)]
pub async fn refresh(
    State(state): State<AppState>,
    format: Format,
    Body(body): Body<Refresh>,
) -> GatewayResult<Reply<TokenPair>> {
    let player_id = state.tokens.verify_refresh(body.refresh_token.trim())?;
    if !state.players.exists(player_id).await? {
        return Err(GatewayError::api(
            ErrorCode::Unauthenticated,
            "the token's player no longer exists",
        ));
    }
    Ok(Reply::ok(format, state.tokens.issue(player_id)?))
}
