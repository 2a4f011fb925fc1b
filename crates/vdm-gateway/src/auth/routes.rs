//! `POST /v1/auth/device` and `POST /v1/auth/refresh`.

use axum::extract::State;
use serde::Deserialize;
use vdm_kit::ErrorCode;

use crate::auth::TokenPair;
use crate::error::{GatewayError, GatewayResult};
use crate::negotiate::{Body, Format, Reply};
use crate::state::AppState;

/// `POST /v1/auth/device` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSignIn {
    /// A stable identifier of the device (Unity's `SystemInfo.deviceUniqueIdentifier`).
    pub device_id: String,
}

/// `POST /v1/auth/refresh` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Refresh {
    /// A refresh token from an earlier sign-in or refresh.
    pub refresh_token: String,
}

/// Signs a device in, creating its player on first use.
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
