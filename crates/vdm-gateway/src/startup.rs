//! Building and running the gateway: create one gRPC client per service,
//! compose the router and its layers, serve. The gateway keeps no database:
//! accounts are the player service's.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::response::IntoResponse;
use serde_json::Value;
use tokio::net::TcpListener;
use tonic::codec::CompressionEncoding;
use tonic_health::pb::health_client::HealthClient;
use tower::ServiceBuilder;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::compression::predicate::{DefaultPredicate, Predicate, SizeAbove};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use vdm_kit::bus::EventBus;
use vdm_kit::cache::CacheStore;
use vdm_kit::service::Peers;
use vdm_kit::shutdown::CancellationToken;
use vdm_kit::tower::deadline::DeadlineLayer;
use vdm_proto::metrics::v1::metrics_service_client::MetricsServiceClient;
use vdm_proto::npc::v1::npc_service_client::NpcServiceClient;
use vdm_proto::player::v1::player_service_client::PlayerServiceClient;
use vdm_proto::quest::v1::quest_service_client::QuestServiceClient;
use vdm_proto::rumor::v1::rumor_service_client::RumorServiceClient;
use vdm_proto::world::v1::world_service_client::WorldServiceClient;

use crate::auth::TokenKeys;
use crate::auth::accounts::Accounts;
use crate::auth::operators::Operators;
use crate::auth::sessions::Revocations;
use crate::config::GatewayConfig;
use crate::edge_cache::EdgeCache;
use crate::error::{GatewayError, GatewayResult};
use crate::middleware::{BodyRules, CompressLayer, EdgeRulesLayer, Front, FrontParts, ObserveLayer, RequestIds};
use crate::openapi::Document;
use crate::rate_limit::{self, LimitState, Limiter};
use crate::realtime::hub::Hub;
use crate::realtime::resume::SessionStore;
use crate::realtime::{self, Realtime};
use crate::routes::{
    bootstrap, dashboard, docs, npcs, ops, players, quests, rumors, stats, telemetry, world, world_admin,
};
use crate::standings::Standings;
use crate::state::{AppState, Shared};
use crate::{auth, openapi, pushes};

/// Responses smaller than this are not worth compressing.
const COMPRESS_ABOVE_BYTES: u64 = 1024;

/// A gateway that is connected and bound, ready to run.
pub struct App {
    listener: TcpListener,
    /// The router, behind the front that answers edge cache hits.
    service: Front<Router>,
    shutdown: CancellationToken,
    shutdown_delay: std::time::Duration,
    header_read_timeout: std::time::Duration,
}

impl App {
    /// Creates the clients of the services `peers` names (they connect
    /// lazily; quest, NPC, world and player are required, rumor and metrics
    /// optional), starts reading the session revocations that still matter
    /// and binds the listener.
    pub async fn build(config: &GatewayConfig, peers: &Peers, shutdown: CancellationToken) -> GatewayResult<App> {
        let quest_channel = peers.channel("quest", config.request_timeout)?;
        let quest = QuestServiceClient::new(quest_channel.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let caches = CacheStore::new(&config.cache).map_err(|e| GatewayError::Internal(format!("cache setup: {e}")))?;
        let bus = EventBus::new(&caches, &config.cache.key_prefix);
        // Sessions resume on any replica when records and events are in Redis.
        let sessions = match caches.redis_pool() {
            Some(pool) if bus.keeps_history() => SessionStore::Redis {
                pool: pool.clone(),
                prefix: config.cache.key_prefix.clone(),
            },
            _ => SessionStore::memory(),
        };
        let hub = Hub::new(Realtime::hub_config(&config.realtime), sessions, bus.keeps_history());
        hub.clone().spawn(bus.clone(), shutdown.clone());
        let npc_channel = peers.channel("npc", config.request_timeout)?;
        let npc = NpcServiceClient::new(npc_channel.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let world_channel = peers.channel("world", config.request_timeout)?;
        let world = WorldServiceClient::new(world_channel.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let rumor_channel = peers.optional_channel("rumor", config.request_timeout)?;
        let rumor = rumor_channel.clone().map(|channel| {
            RumorServiceClient::new(channel)
                .accept_compressed(CompressionEncoding::Gzip)
                .accept_compressed(CompressionEncoding::Zstd)
        });
        let player_channel = peers.channel("player", config.request_timeout)?;
        let player = PlayerServiceClient::new(player_channel.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd);
        let metrics_channel = peers.optional_channel("metrics", config.request_timeout)?;
        // Telemetry batches go uncompressed, as every other call: even a
        // full batch is tens of KB on a data-centre network, and gzip cost
        // both sides a fresh deflate state per call (in `vdm all`, with no
        // network at all).
        let metrics = metrics_channel
            .clone()
            .map(|channel| MetricsServiceClient::new(channel).accept_compressed(CompressionEncoding::Gzip));
        let mut health = vec![
            ("vdm.quest.v1.QuestService", HealthClient::new(quest_channel)),
            ("vdm.npc.v1.NpcService", HealthClient::new(npc_channel)),
            ("vdm.world.v1.WorldService", HealthClient::new(world_channel)),
            ("vdm.player.v1.PlayerService", HealthClient::new(player_channel)),
        ];
        if let Some(channel) = rumor_channel {
            health.push(("vdm.rumor.v1.RumorService", HealthClient::new(channel)));
        }
        if let Some(channel) = metrics_channel {
            health.push(("vdm.metrics.v1.MetricsService", HealthClient::new(channel)));
        }
        let operators = Arc::new(
            Operators::new(config.admin_token.clone(), config.admin_tokens_file.clone())
                .map_err(|e| GatewayError::Internal(format!("operator credentials: {e}")))?,
        );
        operators.clone().spawn_reloader(shutdown.clone());
        let accounts = Accounts::new(player.clone());
        // Revocations younger than a session token's lifetime still matter:
        // follow the other replicas' from now on, and read the earlier ones
        // as soon as the player service answers (`/ready` waits for them).
        let revocations = Arc::new(Revocations::new(config.session_ttl));
        revocations.clone().spawn_listener(&bus, shutdown.clone());
        accounts.spawn_revocation_loader(revocations.clone(), shutdown.clone());
        let edge = EdgeCache::new(&config.edge_cache);
        edge.spawn_listener(&bus, shutdown.clone());
        let standings = Standings::default();
        standings.spawn_listener(&bus, shutdown.clone());
        let tokens = Arc::new(TokenKeys::new(
            &config.jwt_secret,
            operators,
            revocations,
            config.session_ttl,
            config.refresh_ttl,
        ));
        let state = AppState::new(Shared {
            tokens,
            accounts,
            bus,
            edge,
            quest,
            npc,
            world,
            rumor,
            player,
            standings,
            metrics,
            bootstrap_budget: config.bootstrap_budget,
            health,
            shutdown: shutdown.clone(),
            document: Document::new(&document()),
        });
        vdm_kit::metrics::install();
        let service = router(state, hub, config);
        let listener = TcpListener::bind(config.http_addr).await?;
        Ok(App {
            listener,
            service,
            shutdown,
            shutdown_delay: config.shutdown_delay,
            header_read_timeout: config.header_read_timeout,
        })
    }

    /// The router this app serves: every route of [`routes()`] and
    /// [`socket_routes()`] behind the middleware stack (tests read its route
    /// table).
    pub fn router(&self) -> &Router {
        self.service.inner()
    }

    /// The address the HTTP server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// Serves until the shutdown token is cancelled; then `/ready` answers
    /// 503 and sockets are told to reconnect (1012) at once, new requests
    /// are still served for the shutdown delay, and then the listener
    /// closes and in-flight requests finish. HTTP/1.1 and WebSocket
    /// upgrades, with the header read timeout and header limits of
    /// [`vdm_kit::serve`] (slow and flooding clients are cut off).
    pub async fn run(self) -> GatewayResult<()> {
        tracing::info!(addr = %self.local_addr(), "gateway listening");
        let stop_accepting = CancellationToken::new();
        let (shutdown, delay, stop) = (self.shutdown.clone(), self.shutdown_delay, stop_accepting.clone());
        tokio::spawn(async move {
            drain(shutdown, delay).await;
            stop.cancel();
        });
        vdm_kit::serve::serve(self.listener, self.service, self.header_read_timeout, stop_accepting).await?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}

/// Completes `delay` after the shutdown token is cancelled.
async fn drain(shutdown: CancellationToken, delay: std::time::Duration) {
    shutdown.cancelled().await;
    if !delay.is_zero() {
        tracing::info!(
            delay_ms = delay.as_millis() as u64,
            "shutting down: readiness off, still serving"
        );
        tokio::time::sleep(delay).await;
    }
    tracing::info!("shutting down: no new connections, finishing in-flight requests");
}

/// The route table: every REST route of the gateway, each registered with
/// `routes!` from its handler's `#[utoipa::path]`, so that the router and
/// the OpenAPI document ([`document()`]) come from the same declarations.
/// Handlers of one path go in one `routes!` (it routes every handler it is
/// given at every path among them). The socket route is in
/// [`socket_routes()`].
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(openapi::base())
        .routes(routes!(auth::routes::device))
        .routes(routes!(auth::routes::refresh))
        .routes(routes!(auth::routes::sign_out))
        .routes(routes!(auth::routes::revoke_player))
        .routes(routes!(quests::create, quests::list))
        .routes(routes!(quests::batch_get))
        .routes(routes!(quests::get, quests::update, quests::delete))
        .routes(routes!(quests::player::accept))
        .routes(routes!(quests::player::list_mine))
        .routes(routes!(quests::player::progress))
        .routes(routes!(quests::player::abandon))
        .routes(routes!(world::regions))
        .routes(routes!(world::region, world_admin::put_region))
        .routes(routes!(world::factions))
        .routes(routes!(world_admin::put_faction))
        .routes(routes!(world_admin::put_relation))
        .routes(routes!(world::time))
        .routes(routes!(world::publish_event, world::events))
        .routes(routes!(npcs::create, npcs::list))
        .routes(routes!(npcs::batch_get))
        .routes(routes!(npcs::get, npcs::update))
        .routes(routes!(npcs::move_to))
        .routes(routes!(npcs::memories, npcs::record_memory))
        .routes(routes!(npcs::disposition))
        .routes(routes!(rumors::known_by_npc))
        .routes(routes!(rumors::talk))
        .routes(routes!(rumors::create))
        .routes(routes!(rumors::tick))
        .routes(routes!(rumors::get))
        .routes(routes!(rumors::spread))
        .routes(routes!(rumors::mine))
        .routes(routes!(players::me, players::update_me))
        .routes(routes!(players::inventory))
        .routes(routes!(players::ledger))
        .routes(routes!(players::factions))
        .routes(routes!(players::admin::grant))
        .routes(routes!(players::admin::list_items))
        .routes(routes!(players::admin::get_item, players::admin::put_item))
        .routes(routes!(bootstrap::bootstrap))
        .routes(routes!(telemetry::upload))
        .routes(routes!(telemetry::stats))
        .routes(routes!(stats::current))
        .routes(routes!(stats::history))
        .routes(routes!(stats::budgets))
        .routes(routes!(dashboard::page))
        .routes(routes!(docs::page))
        .routes(routes!(ops::health))
        .routes(routes!(ops::ready))
        .routes(routes!(ops::metrics))
        .routes(routes!(openapi::serve))
}

/// The socket route, `/v1/ws`: a table of its own, because its state, the
/// [`Realtime`], holds the finished router of [`routes()`] that socket
/// requests are dispatched to.
pub fn socket_routes() -> OpenApiRouter<Arc<Realtime>> {
    OpenApiRouter::default().routes(routes!(realtime::connect))
}

/// The OpenAPI document of every route of both tables, finished by
/// [`openapi::finish`].
pub fn document() -> Value {
    let mut declared = routes().into_openapi();
    declared.merge(socket_routes().into_openapi());
    declared.merge(<pushes::Schemas as utoipa::OpenApi>::openapi());
    let mut document = openapi::finish(declared);
    pushes::describe(&mut document);
    crate::routes::telemetry::describe(&mut document);
    document
}

/// Builds the router: the REST routes of [`routes()`] behind the middleware
/// stack, then the socket route of [`socket_routes()`] around that finished
/// REST router, and both behind the same stack. Socket requests thus pass
/// the same layers (limits, metrics, error bodies) as HTTP requests, and
/// the REST router never refers to the socket route that holds it. In
/// front of it all, the [`Front`] that answers edge cache hits with what
/// the stack would have done to them.
fn router(state: AppState, hub: Arc<Hub>, config: &GatewayConfig) -> Front<Router> {
    let limits = LimitState {
        limiter: config.rate_limits.clone().map(|limits| Arc::new(Limiter::new(limits))),
        tokens: state.tokens.clone(),
    };
    if let Some(limiter) = &limits.limiter {
        rate_limit::spawn_sweeper(limiter.clone(), state.shutdown.clone());
    }
    // One sequence of request ids for both stacks.
    let ids = RequestIds::default();
    let (api, _declared) = routes().split_for_parts();
    // The API reference page's script: an asset, outside the document.
    let api = api
        .route(docs::REDOC_PATH, axum::routing::get(docs::redoc))
        .with_state(state.clone());
    let realtime = Arc::new(Realtime {
        contract: pushes::contract(state.document.bytes()),
        config: config.realtime.clone(),
        hub,
        bus: state.bus.clone(),
        tokens: state.tokens.clone(),
        shutdown: state.shutdown.clone(),
        api: layers(api.clone(), config, limits.clone(), ids.clone()),
    });
    let (socket, _declared) = socket_routes().split_for_parts();
    let front = FrontParts {
        edge: state.edge.clone(),
        tokens: state.tokens.clone(),
        limits: limits.clone(),
        ids: ids.clone(),
        compress_from: COMPRESS_ABOVE_BYTES as usize,
        cors: cors(&config.cors_origins),
    };
    Front::new(
        layers(api.merge(socket.with_state(realtime)), config, limits, ids),
        front,
    )
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(origins.iter().filter_map(|o| HeaderValue::from_str(o).ok()))
    };
    Some(
        CorsLayer::new()
            .allow_origin(allow)
            .allow_methods([Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::ACCEPT,
                HeaderName::from_static("idempotency-key"),
            ])
            .expose_headers([
                HeaderName::from_static("x-trace-id"),
                HeaderName::from_static("x-request-id"),
                header::RETRY_AFTER,
            ]),
    )
}

/// The middleware stack, outermost first: each request passes the layers in
/// this order and its response comes back through them in reverse.
fn layers(router: Router, config: &GatewayConfig, limits: LimitState, ids: RequestIds) -> Router {
    router.layer(
        ServiceBuilder::new()
            // Span, trace id header, request metrics and x-request-id (the
            // client's, or a new one; echoed on the response); outermost so
            // the status it records is the one the client gets.
            .layer(ObserveLayer::new(ids))
            // Browser (WebGL) clients: the configured origins only.
            .option_layer(cors(&config.cors_origins))
            // One layer, outside in: every error becomes `{"error": ...}`
            // (JSON or MessagePack), including the bodiless ones of the
            // layers below and the router; a declared body over the limit
            // is a 413 before reading it, a declared body must arrive
            // within the body read timeout (408, a client's failure,
            // before the 504 below), and an answer that leaves the body
            // unread says `Connection: close`; quotas per verified caller
            // (or client address) and route class: 429 + Retry-After.
            .layer(EdgeRulesLayer::new(
                BodyRules {
                    limit: config.body_limit,
                    read_timeout: config.body_read_timeout,
                },
                limits,
            ))
            // A handler that panics answers a JSON 500 (and a socket
            // request its reply) instead of dropping the connection.
            .layer(CatchPanicLayer::custom(panicked))
            // gzip, Brotli or zstd by Accept-Encoding, for bodies worth it
            // (tower-http compresses; other answers pass unwrapped).
            .layer(CompressLayer::new(
                DefaultPredicate::new().and(SizeAbove::new(COMPRESS_ABOVE_BYTES)),
            ))
            // A request that takes longer than this gets a 504 (no timer
            // for an answer ready at once: a cache hit).
            .layer(DeadlineLayer::new(config.request_timeout, StatusCode::GATEWAY_TIMEOUT))
            // Bodies are buffered up to this size; beyond it, 413.
            .layer(DefaultBodyLimit::max(config.body_limit)),
    )
}

/// The answer of a handler that panicked: the uniform 500 body. The panic
/// itself is printed by the panic hook; its message stays out of the answer.
fn panicked(_panic: Box<dyn std::any::Any + Send + 'static>) -> axum::response::Response {
    tracing::error!("request handler panicked");
    GatewayError::Internal("request handler panicked".to_owned()).into_response()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::body::Body;
    use axum::routing::get;
    use vdm_kit::config::Env;

    use super::*;
    use crate::config::SecretDefaults;

    async fn boom_handler() -> &'static str {
        panic!("secret detail")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_a_json_500() {
        let env = Env::from_pairs([
            ("VDM_ADMIN_TOKEN", "0123456789abcdef"),
            ("VDM_JWT_SECRET", "0123456789abcdef0123456789abcdef"),
            ("VDM_RATE_LIMITS", "off"),
        ]);
        let config = GatewayConfig::from_env(&env, SecretDefaults::default()).unwrap();
        let boom = Router::new().route("/boom", get(boom_handler));
        let request = axum::http::Request::get("/boom").body(Body::empty()).unwrap();
        let limits = LimitState {
            limiter: None,
            tokens: Arc::new(TokenKeys::new(
                &config.jwt_secret,
                Arc::new(Operators::new(config.admin_token.clone(), None).unwrap()),
                Arc::new(Revocations::new(config.session_ttl)),
                config.session_ttl,
                config.refresh_ttl,
            )),
        };
        let response = tower::ServiceExt::oneshot(layers(boom, &config, limits, RequestIds::default()), request)
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["error"]["code"], "internal", "{body}");
        assert_eq!(body["error"]["message"], "internal error", "{body}");
    }

    #[test]
    fn every_route_the_front_answers_is_a_get_route_of_the_gateway() {
        let document = document();
        for route in &crate::middleware::front::ROUTES {
            let pointer = format!("/paths/{}/get", route.template.replace('/', "~1"));
            assert!(
                document.pointer(&pointer).is_some(),
                "{} is not a GET route",
                route.template
            );
        }
    }

    #[test]
    fn every_text_rule_names_a_field_of_the_document() {
        let document = document();
        for (schema, field, _) in crate::openapi::FIELDS {
            let property = document.pointer(&format!("/components/schemas/{schema}/properties/{field}"));
            let pattern = property.and_then(|p| p.get("pattern"));
            assert!(pattern.is_some(), "{schema}.{field} is not in the document");
        }
        let rumor = document.pointer("/components/schemas/NewRumorJson/oneOf");
        assert!(rumor.is_some(), "a rumor's origins say exactly one");
    }
}
