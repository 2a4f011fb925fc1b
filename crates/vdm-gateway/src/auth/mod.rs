//! Who is calling: device sign-in, session and refresh tokens (HS256 JWTs),
//! operator credentials, and the extractors handlers use to demand one of
//! them.
//!
//! - [`Player`]: a valid session token; the handler acts for that player only.
//! - [`Admin`]: an operator credential ([`operators`]); for definition writes.
//! - [`Caller`]: either, for reads open to both.
//!
//! Tokens name their session family (`sid`): a sign-in starts one, each
//! refresh moves it to the next refresh generation (`gen`), and a refresh
//! token works once ([`accounts::Accounts::rotate`]; the player service
//! keeps the families). Session tokens are checked without a call:
//! signature, `exp`, `nbf`, `iat`, and the replica's
//! [`sessions::Revocations`].

pub mod accounts;
pub mod hs256;
pub mod memo;
pub mod operators;
pub mod routes;
pub mod sessions;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{FromRef, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use vdm_kit::ErrorCode;
use vdm_kit::config::Secret;

use crate::auth::memo::{TokenMemo, Verified};
use crate::auth::operators::Operators;
use crate::auth::sessions::Revocations;
use crate::error::GatewayError;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
const LEEWAY_SECS: u64 = 5;

/// How many verified session tokens a replica remembers ([`memo`]): about
/// 350 bytes each, so at most a few MB.
const MEMO_CAPACITY: usize = 16_384;

/// Signs and checks tokens.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    operators: Arc<Operators>,
    revocations: Arc<Revocations>,
    session_ttl: Duration,
    refresh_ttl: Duration,
    memo: TokenMemo,
}

/// What a token says.
#[derive(Debug, Serialize, Deserialize)]
pub struct Claims {
    /// The player id.
    pub sub: String,
    /// `session` or `refresh`.
    pub kind: String,
    /// The session family.
    pub sid: String,
    /// The refresh generation (refresh tokens).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r#gen: Option<i64>,
    /// Issued at (Unix seconds).
    pub iat: u64,
    /// Issued at (Unix milliseconds): revocations of all of a player's
    /// sessions cut at a millisecond, not a whole second.
    pub ims: i64,
    /// Not valid before (Unix seconds).
    pub nbf: u64,
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
    /// The token that gets a new pair from `POST /v1/auth/refresh`; it works
    /// once (the answer carries its successor).
    pub refresh_token: String,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: u64,
}

/// A verified session token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The player.
    pub player_id: i64,
    /// The session family.
    pub sid: String,
    /// When the token was issued (Unix ms).
    pub issued_ms: i64,
}

/// A verified refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshGrant {
    /// The session it belongs to.
    pub session: Session,
    /// Its refresh generation.
    pub generation: i64,
}

const SESSION: &str = "session";
const REFRESH: &str = "refresh";

impl TokenKeys {
    /// Builds the keys from the signing secret, the operator credentials
    /// and the replica's revocations.
    pub fn new(
        jwt_secret: &Secret,
        operators: Arc<Operators>,
        revocations: Arc<Revocations>,
        session_ttl: Duration,
        refresh_ttl: Duration,
    ) -> TokenKeys {
        hs256::install();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "nbf", "iat", "sub"]);
        TokenKeys {
            encoding: EncodingKey::from_secret(jwt_secret.expose().as_bytes()),
            decoding: DecodingKey::from_secret(jwt_secret.expose().as_bytes()),
            validation,
            operators,
            revocations,
            session_ttl,
            refresh_ttl,
            memo: TokenMemo::new(MEMO_CAPACITY),
        }
    }

    /// The revocations this replica knows.
    pub fn revocations(&self) -> &Arc<Revocations> {
        &self.revocations
    }

    /// Issues a session and a refresh token for a player: a new session
    /// family when `sid` is `None`, else generation `generation` of `sid`.
    pub fn issue(&self, player_id: i64, family: Option<(&str, i64)>) -> Result<TokenPair, GatewayError> {
        let fresh;
        let (sid, generation) = match family {
            Some(family) => family,
            None => {
                fresh = vdm_kit::secure::random_token(16)
                    .map_err(|e| GatewayError::Internal(format!("no session id: {e}")))?;
                (fresh.as_str(), 0)
            }
        };
        Ok(TokenPair {
            player_id,
            token_type: "Bearer",
            session_token: self.sign(player_id, SESSION, sid, None, self.session_ttl)?,
            expires_in: self.session_ttl.as_secs(),
            refresh_token: self.sign(player_id, REFRESH, sid, Some(generation), self.refresh_ttl)?,
            refresh_expires_in: self.refresh_ttl.as_secs(),
        })
    }

    fn sign(
        &self,
        player_id: i64,
        kind: &str,
        sid: &str,
        generation: Option<i64>,
        ttl: Duration,
    ) -> Result<String, GatewayError> {
        let ims = vdm_kit::now_ms();
        let iat = (ims / 1000).max(0) as u64;
        let claims = Claims {
            sub: player_id.to_string(),
            kind: kind.to_owned(),
            sid: sid.to_owned(),
            r#gen: generation,
            iat,
            ims,
            nbf: iat,
            exp: iat + ttl.as_secs(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| GatewayError::Internal(format!("token signing failed: {e}")))
    }

    /// Checks a token of the given kind and returns its claims.
    fn verify(&self, token: &str, kind: &str) -> Result<(i64, Claims), GatewayError> {
        let unauthenticated = |why: &str| GatewayError::api(ErrorCode::Unauthenticated, why);
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind;
            unauthenticated(match e.kind() {
                ErrorKind::ExpiredSignature => "token has expired",
                ErrorKind::ImmatureSignature => "token is not valid yet",
                ErrorKind::InvalidSignature => "token signature is invalid",
                _ => "token is malformed",
            })
        })?;
        let claims = data.claims;
        if claims.iat > unix_now() + LEEWAY_SECS {
            return Err(unauthenticated("token is issued in the future"));
        }
        if claims.kind != kind {
            return Err(GatewayError::api(
                ErrorCode::Unauthenticated,
                format!("expected a {kind} token"),
            ));
        }
        let player_id = claims
            .sub
            .parse::<i64>()
            .ok()
            .filter(|id| *id > 0)
            .ok_or_else(|| unauthenticated("token is malformed"))?;
        Ok((player_id, claims))
    }

    /// Checks a session token: signature, times, and revocation.
    pub fn verify_session(&self, token: &str) -> Result<Session, GatewayError> {
        let verified = self.session(token)?;
        Ok(Session {
            player_id: verified.player_id,
            sid: verified.sid.clone(),
            issued_ms: verified.issued_ms,
        })
    }

    /// A session token's claims, once its signature and times are checked
    /// (or were, by an earlier request: [`memo`]) and its session is not
    /// revoked.
    fn session(&self, token: &str) -> Result<Arc<Verified>, GatewayError> {
        let now = unix_now();
        let verified = match self.memo.get(token, now, LEEWAY_SECS) {
            Some(verified) => verified,
            None => self.verified_session(token, now)?,
        };
        self.unrevoked(verified)
    }

    /// Verifies a session token the memo does not hold, and remembers it.
    fn verified_session(&self, token: &str, now: u64) -> Result<Arc<Verified>, GatewayError> {
        let (player_id, claims) = self.verify(token, SESSION)?;
        let verified = Arc::new(Verified {
            player_id,
            sid: claims.sid,
            issued_ms: claims.ims,
            exp: claims.exp,
        });
        self.memo.insert(token, verified.clone(), now);
        Ok(verified)
    }

    /// The session, unless this replica has heard it revoked.
    fn unrevoked(&self, verified: Arc<Verified>) -> Result<Arc<Verified>, GatewayError> {
        if self
            .revocations
            .is_revoked(verified.player_id, &verified.sid, verified.issued_ms)
        {
            return Err(GatewayError::api(
                ErrorCode::Unauthenticated,
                "session has been revoked",
            ));
        }
        Ok(verified)
    }

    /// Checks a refresh token's signature and times (its generation is
    /// checked against the database by the caller).
    pub fn verify_refresh(&self, token: &str) -> Result<RefreshGrant, GatewayError> {
        let (player_id, claims) = self.verify(token, REFRESH)?;
        let generation = claims
            .r#gen
            .filter(|g| *g >= 0)
            .ok_or_else(|| GatewayError::api(ErrorCode::Unauthenticated, "token is malformed"))?;
        Ok(RefreshGrant {
            session: Session {
                player_id,
                sid: claims.sid,
                issued_ms: claims.ims,
            },
            generation,
        })
    }

    /// Whether `token` is an operator credential.
    pub fn is_operator(&self, token: &str) -> bool {
        self.operators.name_of(token).is_some()
    }

    /// The player of a session token this replica has verified before (its
    /// memo) and that is not revoked since; `None` for any other token,
    /// which only [`TokenKeys::caller`] can settle. Never verifies a
    /// signature: for a path that hands what it cannot settle cheaply to
    /// one that can.
    pub fn remembered(&self, token: &str) -> Option<i64> {
        let verified = self.memo.get(token, unix_now(), LEEWAY_SECS)?;
        self.unrevoked(verified).ok().map(|session| session.player_id)
    }

    /// Resolves a bearer token to a caller. A session token this replica
    /// verified before is known by the memo alone: the operator
    /// credentials (a lock every worker reads, and a constant-time compare
    /// with each) are consulted only for the other tokens.
    pub fn caller(&self, token: &str) -> Result<Caller, GatewayError> {
        let now = unix_now();
        let verified = match self.memo.get(token, now, LEEWAY_SECS) {
            Some(verified) => verified,
            None => {
                if let Some(name) = self.operators.name_of(token) {
                    return Ok(Caller::Operator(name));
                }
                self.verified_session(token, now)?
            }
        };
        self.unrevoked(verified).map(|s| Caller::Player(s.player_id))
    }
}

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// A player with a valid session token.
    Player(i64),
    /// An operator, by the name of the credential used.
    Operator(Arc<str>),
}

/// A caller that must be a player (session token).
#[derive(Debug, Clone, Copy)]
pub struct Player(pub i64);

/// A caller that must be an operator (an operator credential).
#[derive(Debug, Clone)]
pub struct Admin(pub Arc<str>);

/// Verifies the request's bearer token, if any, and remembers the verdict
/// for the extractors; `None` when there is no valid token.
pub fn verified_caller(tokens: &TokenKeys, request: &mut axum::extract::Request) -> Option<Caller> {
    if let Some(caller) = request.extensions().get::<Caller>() {
        return Some(caller.clone());
    }
    let token = bearer_in(request.headers()).ok()?;
    let caller = tokens.caller(token).ok()?;
    request.extensions_mut().insert(caller.clone());
    Some(caller)
}

/// Verifies the bearer token with the state's [`TokenKeys`], unless the rate
/// limiter did already (its verdict is in the request's extensions).
impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Arc<TokenKeys>: FromRef<S>,
{
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, GatewayError> {
        let caller = match parts.extensions.get::<Caller>() {
            Some(caller) => caller.clone(),
            None => {
                let tokens = Arc::<TokenKeys>::from_ref(state);
                let caller = tokens.caller(bearer_in(&parts.headers)?)?;
                parts.extensions.insert(caller.clone());
                caller
            }
        };
        match &caller {
            Caller::Player(id) => {
                tracing::Span::current().record("player.id", id);
            }
            Caller::Operator(name) => {
                tracing::Span::current().record("operator.name", &**name);
            }
        }
        Ok(caller)
    }
}

impl<S> FromRequestParts<S> for Player
where
    S: Send + Sync,
    Arc<TokenKeys>: FromRef<S>,
{
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Player, GatewayError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Player(id) => Ok(Player(id)),
            Caller::Operator(_) => Err(GatewayError::api(
                ErrorCode::PermissionDenied,
                "this route needs a player's session token, not an operator credential",
            )),
        }
    }
}

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    Arc<TokenKeys>: FromRef<S>,
{
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Admin, GatewayError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Operator(name) => Ok(Admin(name)),
            Caller::Player(_) => Err(GatewayError::api(
                ErrorCode::PermissionDenied,
                "this route needs the admin token",
            )),
        }
    }
}

/// The token of an `Authorization: Bearer <token>` header (the scheme in
/// any case, surrounding spaces ignored).
pub fn bearer_in(headers: &axum::http::HeaderMap) -> Result<&str, GatewayError> {
    let value = headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| GatewayError::api(ErrorCode::Unauthenticated, "missing Authorization: Bearer token"))?;
    let value = value
        .to_str()
        .map_err(|_| GatewayError::api(ErrorCode::Unauthenticated, "Authorization header is not text"))?;
    let value = value.trim();
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(GatewayError::api(
            ErrorCode::Unauthenticated,
            "Authorization must be `Bearer <token>`",
        ));
    }
    Ok(token)
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn keys_with(secret: &str, admin: &str) -> TokenKeys {
        TokenKeys::new(
            &Secret::new(secret.to_owned()),
            Arc::new(Operators::new(Secret::new(admin.to_owned()), None).unwrap()),
            Arc::new(Revocations::new(Duration::from_secs(60))),
            Duration::from_secs(60),
            Duration::from_secs(600),
        )
    }

    fn keys() -> TokenKeys {
        keys_with(&"k".repeat(32), "admin-token-0123456789")
    }

    fn forge(keys: &TokenKeys, edit: impl FnOnce(&mut Claims)) -> String {
        let now = unix_now();
        let mut claims = Claims {
            sub: "7".into(),
            kind: SESSION.into(),
            sid: "s".into(),
            r#gen: None,
            iat: now,
            ims: vdm_kit::now_ms(),
            nbf: now,
            exp: now + 60,
        };
        edit(&mut claims);
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &keys.encoding).unwrap()
    }

    #[test]
    fn session_and_refresh_tokens_are_not_interchangeable() {
        let keys = keys();
        let pair = keys.issue(7, None).unwrap();
        assert_eq!(keys.caller(&pair.session_token).unwrap(), Caller::Player(7));
        let grant = keys.verify_refresh(&pair.refresh_token).unwrap();
        assert_eq!((grant.session.player_id, grant.generation), (7, 0));
        assert!(keys.caller(&pair.refresh_token).is_err());
        assert!(keys.verify_refresh(&pair.session_token).is_err());
        assert_eq!(
            keys.caller("admin-token-0123456789").unwrap(),
            Caller::Operator(Arc::from("admin"))
        );
    }

    #[test]
    fn a_token_signed_with_another_key_is_refused() {
        let other = keys_with(&"x".repeat(32), &"a".repeat(16));
        let pair = other.issue(7, None).unwrap();
        assert!(keys().caller(&pair.session_token).is_err());
    }

    #[test]
    fn times_in_the_future_are_refused() {
        let keys = keys();
        assert!(keys.verify_session(&forge(&keys, |_| {})).is_ok());
        let later = unix_now() + 3600;
        let not_yet = forge(&keys, |c| c.nbf = later);
        assert!(keys.verify_session(&not_yet).is_err(), "nbf in the future");
        let from_the_future = forge(&keys, |c| {
            c.iat = later;
            c.exp = later + 60;
        });
        assert!(keys.verify_session(&from_the_future).is_err(), "iat in the future");
    }

    #[test]
    fn a_revoked_session_is_refused() {
        let keys = keys();
        let pair = keys.issue(7, None).unwrap();
        let session = keys.verify_session(&pair.session_token).unwrap();
        keys.revocations().apply(&sessions::Revocation::Session {
            player_id: 7,
            sid: session.sid,
            at_ms: vdm_kit::now_ms(),
        });
        assert!(keys.verify_session(&pair.session_token).is_err());
        let other = keys.issue(7, None).unwrap();
        assert!(keys.verify_session(&other.session_token).is_ok(), "another family");
    }

    #[test]
    fn the_bearer_scheme_is_read_in_any_case() {
        let mut headers = axum::http::HeaderMap::new();
        for value in ["Bearer abc", "bearer abc", "BEARER   abc  ", "  Bearer abc"] {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(bearer_in(&headers).unwrap(), "abc", "{value:?}");
        }
        for value in ["Basic abc", "Bearer", "Bearer    ", "abc"] {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert!(bearer_in(&headers).is_err(), "{value:?}");
        }
    }
}
