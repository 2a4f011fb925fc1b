//! Who is calling: device sign-in, session and refresh tokens (HS256 JWTs),
//! the admin token, and the extractors handlers use to demand one of them.
//!
//! - [`Player`]: a valid session token; the handler acts for that player only.
//! - [`Admin`]: the admin token (`VDM_ADMIN_TOKEN`); for definition writes.
//! - [`Caller`]: either, for reads open to both.

pub mod players;
pub mod routes;

use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use vdm_kit::ErrorCode;
use vdm_kit::config::Secret;

use crate::error::GatewayError;
use crate::state::AppState;

/// Signs and checks tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    admin_token: Secret,
    session_ttl: Duration,
    refresh_ttl: Duration,
}

/// What a token says.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The player id.
    pub sub: String,
    /// `session` or `refresh`.
    pub kind: String,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Expires at (Unix seconds).
    pub exp: u64,
}

/// A freshly issued pair of tokens.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenPair {
    /// The player the tokens are for.
    pub player_id: i64,
    /// Always `Bearer`.
    #[schema(value_type = String, example = "Bearer")]
    pub token_type: &'static str,
    /// The session token for `Authorization: Bearer`.
    pub session_token: String,
    /// Seconds until the session token expires.
    pub expires_in: u64,
    /// The token that gets a new pair from `POST /v1/auth/refresh`.
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

const SESSION: &str = "session";
const REFRESH: &str = "refresh";

impl TokenKeys {
    /// Builds the keys from the signing secret and the admin token.
    pub fn new(jwt_secret: &Secret, admin_token: Secret, session_ttl: Duration, refresh_ttl: Duration) -> TokenKeys {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = 5;
        validation.set_required_spec_claims(&["exp", "sub"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(jwt_secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(jwt_secret.expose().as_bytes()),
            validation,
            admin_token,
            session_ttl,
            refresh_ttl,
        }
    }

    /// Issues a session and a refresh token for a player.
    pub fn issue(&self, player_id: i64) -> Result<TokenPair, GatewayError> {
        Ok(TokenPair {
            player_id,
            token_type: "Bearer",
            session_token: self.sign(player_id, SESSION, self.session_ttl)?,
            expires_in: self.session_ttl.as_secs(),
            refresh_token: self.sign(player_id, REFRESH, self.refresh_ttl)?,
            refresh_expires_in: self.refresh_ttl.as_secs(),
        })
    }

    fn sign(&self, player_id: i64, kind: &str, ttl: Duration) -> Result<String, GatewayError> {
        let iat = unix_now();
        let claims = Claims {
            sub: player_id.to_string(),
            kind: kind.to_owned(),
            iat,
            exp: iat + ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| GatewayError::Internal(format!("token signing failed: {e}")))
    }

    /// Checks a token of the given kind and returns its player id.
    fn verify(&self, token: &str, kind: &str) -> Result<i64, GatewayError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            let why = match e.kind() {
                ErrorKind::ExpiredSignature => "token has expired",
                ErrorKind::InvalidSignature => "token signature is invalid",
                _ => "token is malformed",
            };
            GatewayError::api(ErrorCode::Unauthenticated, why)
        })?;
        if data.claims.kind != kind {
            return Err(GatewayError::api(
                ErrorCode::Unauthenticated,
                format!("expected a {kind} token"),
            ));
        }
        data.claims
            .sub
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| GatewayError::api(ErrorCode::Unauthenticated, "token is malformed"))
    }

    /// Checks a refresh token and returns its player id.
    pub fn verify_refresh(&self, token: &str) -> Result<i64, GatewayError> {
        self.verify(token, REFRESH)
    }

    fn is_admin(&self, token: &str) -> bool {
        constant_time_eq(token.as_bytes(), self.admin_token.expose().as_bytes())
    }

    /// Resolves a bearer token to a caller.
    pub fn caller(&self, token: &str) -> Result<Caller, GatewayError> {
        if self.is_admin(token) {
            return Ok(Caller::Admin);
        }
        self.verify(token, SESSION).map(Caller::Player)
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    /// A player with a valid session token.
    Player(i64),
    /// The operator, with the admin token.
    Admin,
}

/// A caller that must be a player (session token).
#[derive(Debug, Clone, Copy)]
pub struct Player(pub i64);

/// A caller that must be the operator (admin token).
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Caller {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Caller, GatewayError> {
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(*caller);
        }
        let token = bearer_token(parts)?;
        let caller = state.tokens.caller(token)?;
        if let Caller::Player(id) = caller {
            tracing::Span::current().record("player.id", id);
        }
        parts.extensions.insert(caller);
        Ok(caller)
    }
}

impl FromRequestParts<AppState> for Player {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Player, GatewayError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Player(id) => Ok(Player(id)),
            Caller::Admin => Err(GatewayError::api(
                ErrorCode::PermissionDenied,
                "this route needs a player's session token, not the admin token",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Admin, GatewayError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Admin => Ok(Admin),
            Caller::Player(_) => Err(GatewayError::api(
                ErrorCode::PermissionDenied,
                "this route needs the admin token",
            )),
        }
    }
}

fn bearer_token(parts: &Parts) -> Result<&str, GatewayError> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| GatewayError::api(ErrorCode::Unauthenticated, "missing Authorization: Bearer token"))?;
    let value = value
        .to_str()
        .map_err(|_| GatewayError::api(ErrorCode::Unauthenticated, "Authorization header is not text"))?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| GatewayError::api(ErrorCode::Unauthenticated, "Authorization must be `Bearer <token>`"))?;
    Ok(token)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(
            &Secret::new("k".repeat(32)),
            Secret::new("admin-token-0123456789"),
            Duration::from_secs(60),
            Duration::from_secs(600),
        )
    }

    #[test]
    fn session_and_refresh_tokens_are_not_interchangeable() {
        let keys = keys();
        let pair = keys.issue(7).unwrap();
        assert_eq!(keys.caller(&pair.session_token).unwrap(), Caller::Player(7));
        assert_eq!(keys.verify_refresh(&pair.refresh_token).unwrap(), 7);
        assert!(keys.caller(&pair.refresh_token).is_err());
        assert!(keys.verify_refresh(&pair.session_token).is_err());
        assert_eq!(keys.caller("admin-token-0123456789").unwrap(), Caller::Admin);
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = TokenKeys::new(
            &Secret::new("x".repeat(32)),
            Secret::new("a".repeat(16)),
            Duration::from_secs(60),
            Duration::from_secs(60),
        );
        let pair = other.issue(7).unwrap();
        assert!(keys().caller(&pair.session_token).is_err());
    }
}
