//! [`Front`]: the gateway's answer to a read the edge cache holds, given
//! before the router and the per-route stack see the request.
//!
//! Why it exists: a cache hit of one public resource (`GET
//! /v1/quests/{id}`, `/v1/npcs/{id}`, `/v1/world/regions/{id}`) through
//! the router pays the route match, the future of every layer, four
//! extractors, a boxed handler future and the cache's generic read path:
//! a fifth of the request's CPU or more (16 µs against 12-14 answered
//! here, docs/PERFORMANCE.md), for an answer that is one lookup
//! of a ready body. `Front` answers such a hit itself when it can answer
//! it exactly as the stack would, and hands every other request to the
//! router untouched. It answers only when all of these hold:
//! - a GET of one of those paths with a plain positive id (ASCII digits),
//!   no query, no body, and no weights in `Accept-Encoding` (the only way
//!   to compression's 406);
//! - the session token is one this replica has verified before (the memo
//!   of [`TokenKeys`]) and not revoked since: a token that needs verifying
//!   goes to the router, so no token is ever verified twice;
//! - the cache holds a body of the resource in the asked format, not due
//!   for renewal (the router's path renews it), and below the size the
//!   stack compresses.
//!
//! What it keeps of the stack: the request span, the request id and the
//! trace id, and the request metrics ([`observe::begin`], as [`Observe`]
//! does them), the cache's hit count, the quotas ([`rate_limit::admit`]:
//! a refusal is answered here, a 429 with the error body in the client's
//! format, as [`EdgeRules`] answers it), and CORS (the answer passes the
//! stack's own CORS layer, when one is configured). A request it declines
//! costs it a path match and, for a cacheable path, one lookup.
//!
//! [`Observe`]: super::observe::Observe
//! [`EdgeRules`]: super::rules::EdgeRules

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::{Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::FutureExt;
use futures_util::future::{Either, Ready, ready};
use tower::{Layer, Service};
use tower_http::cors::CorsLayer;

use super::compress::Handover;
use super::observe::{self, RequestIds, RouteLabel};
use crate::auth::{Caller, TokenKeys, bearer_in};
use crate::edge_cache::{EdgeCache, Hit, Resource};
use crate::error::GatewayError;
use crate::negotiate::Format;
use crate::rate_limit::{self, LimitState};

/// A route [`Front`] may answer.
pub(crate) struct CachedRoute {
    /// The path up to the id.
    prefix: &'static str,
    /// The route template: the route label the router gives it.
    pub(crate) template: &'static str,
    /// The request span's field for the id.
    id_field: &'static str,
    /// The cached resource of an id.
    resource: fn(i64) -> Resource,
}

/// The routes [`Front`] may answer.
pub(crate) static ROUTES: [CachedRoute; 3] = [
    CachedRoute {
        prefix: "/v1/quests/",
        template: "/v1/quests/{id}",
        id_field: "quest.id",
        resource: Resource::Quest,
    },
    CachedRoute {
        prefix: "/v1/npcs/",
        template: "/v1/npcs/{id}",
        id_field: "npc.id",
        resource: Resource::Npc,
    },
    CachedRoute {
        prefix: "/v1/world/regions/",
        template: "/v1/world/regions/{id}",
        id_field: "region.id",
        resource: Resource::Region,
    },
];

/// What [`Front`] needs to answer a hit as the stack would.
pub struct FrontParts {
    /// The cache the routes read.
    pub edge: EdgeCache,
    /// The keys (and memo) that verify session tokens.
    pub tokens: Arc<TokenKeys>,
    /// The quotas, as the stack's [`EdgeRules`](super::rules::EdgeRules) holds them.
    pub limits: LimitState,
    /// The request ids the stack's [`Observe`](super::observe::Observe) hands out.
    pub ids: RequestIds,
    /// Bodies of this many bytes or more go to the router (the stack may
    /// compress them).
    pub compress_from: usize,
    /// The stack's CORS layer, when CORS is configured.
    pub cors: Option<CorsLayer>,
}

/// See the module docs. Wraps the finished router.
#[derive(Clone)]
pub struct Front<S> {
    inner: S,
    parts: Arc<FrontParts>,
}

impl<S> Front<S> {
    /// `inner` behind a front that answers hits with `parts`.
    pub fn new(inner: S, parts: FrontParts) -> Front<S> {
        Front {
            inner,
            parts: Arc::new(parts),
        }
    }

    /// The service behind the front.
    pub fn inner(&self) -> &S {
        &self.inner
    }
}

impl<S> Service<Request> for Front<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        if let Some(hit) = self.parts.hit(&request) {
            return Either::Left(ready(Ok(self.parts.answer(hit, request))));
        }
        Either::Right(self.inner.call(request))
    }
}

/// A hit [`Front`] will answer: what it found before committing to it.
struct FrontHit {
    route: &'static CachedRoute,
    id: i64,
    player_id: i64,
    format: Format,
    kept: Hit,
}

impl FrontParts {
    /// The hit `request` asks for, when the front can answer it (see the
    /// module docs); `None` hands it to the router.
    fn hit(&self, request: &Request) -> Option<FrontHit> {
        if request.method() != Method::GET || request.uri().query().is_some() || !request.body().is_end_stream() {
            return None;
        }
        let (route, id) = cached_route(request.uri().path())?;
        let headers = request.headers();
        let weighted = headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .any(|value| value.as_bytes().contains(&b';'));
        if weighted {
            return None;
        }
        // The token first: a request without one, or with one to verify,
        // never touches the cache here (the router refuses or verifies it).
        let player_id = self.tokens.remembered(bearer_in(headers).ok()?)?;
        let format = Format::from_accept(headers);
        let kept = self.edge.fresh((route.resource)(id), format)?;
        if kept.body_len() >= self.compress_from {
            return None;
        }
        Some(FrontHit {
            route,
            id,
            player_id,
            format,
            kept,
        })
    }

    /// Answers `hit`: the quota first, then the kept body (or a 304), in
    /// the request's span, with its request metrics.
    fn answer(&self, hit: FrontHit, mut request: Request) -> Response {
        let (span, mut watch) = observe::begin(&self.ids, &mut request, RouteLabel::Fixed(hit.route.template));
        let mut response = span.in_scope(|| {
            // The quota keys on the caller found above, not verified again.
            request.extensions_mut().insert(Caller::Player(hit.player_id));
            let answer = match rate_limit::admit(&self.limits, &mut request) {
                // The in-flight slot is held until the answer is made.
                Ok(_slot) => {
                    // What the route's extractors record; a refusal comes
                    // before them, as in the stack.
                    span.record("player.id", hit.player_id);
                    span.record(hit.route.id_field, hit.id);
                    hit.kept.answer(request.headers())
                }
                Err(refused) => super::rules::refusal(refused, hit.format),
            };
            match &self.cors {
                Some(cors) => with_cors(cors, request, answer),
                None => answer,
            }
        });
        watch.finish(&span, &mut response);
        vdm_kit::metrics::static_counter("vdm_edge_front_answers_total", [("status", status_label(&response))])
            .increment(1);
        response
    }
}

/// The route of [`ROUTES`] that `path` names, and its id, when the id is
/// a plain positive one: digits only, so that it reads as the router's
/// `PathId` would read it (anything else, the router's to answer).
fn cached_route(path: &str) -> Option<(&'static CachedRoute, i64)> {
    ROUTES.iter().find_map(|route| {
        let digits = path.strip_prefix(route.prefix)?;
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let id = digits.parse::<i64>().ok().filter(|id| *id > 0)?;
        Some((route, id))
    })
}

/// `answer` as the stack's CORS layer gives it back for `request`.
fn with_cors(cors: &CorsLayer, request: Request, answer: Response) -> Response {
    let (parts, _body) = request.into_parts();
    let mut cors = cors.layer(Handover(Some(answer)));
    match cors.call(Request::from_parts(parts, ())).now_or_never() {
        Some(Ok(response)) => response,
        Some(Err(never)) => match never {},
        // The layer answers at once what it is handed at once.
        None => GatewayError::Internal("cors answer not ready".to_owned()).into_response(),
    }
}

fn status_label(response: &Response) -> &'static str {
    match response.status().as_u16() {
        200 => "200",
        304 => "304",
        429 => "429",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_plain_positive_ids_of_the_cached_routes_are_taken() {
        let taken = |path: &str| cached_route(path).map(|(route, id)| ((route.resource)(id), route.id_field));
        assert_eq!(taken("/v1/quests/42"), Some((Resource::Quest(42), "quest.id")));
        assert_eq!(taken("/v1/npcs/7"), Some((Resource::Npc(7), "npc.id")));
        assert_eq!(taken("/v1/world/regions/007"), Some((Resource::Region(7), "region.id")));
        for path in [
            "/v1/quests/0",
            "/v1/quests/-1",
            "/v1/quests/+1",
            "/v1/quests/1/",
            "/v1/quests/%31",
            "/v1/quests/",
            "/v1/quests/99999999999999999999",
            "/v1/quests/1/accept",
            "/v1/quests",
            "/v1/world/regions",
            "/v1/me/quests/1",
        ] {
            assert!(cached_route(path).is_none(), "{path}");
        }
    }
}
