//! What every REST handler shares: token keys, the accounts client, the event
//! bus, the edge cache and one gRPC client per service, created once at start-up and cloned
//! per request (a clone shares the underlying HTTP/2 connection).
//!
//! Extractors and handlers outside `routes/` take only the part they need
//! (`State<Arc<TokenKeys>>`, `State<Accounts>`, ...) through the
//! [`FromRef`] impls here, so they never name this module.

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::FromRef;
use tonic_health::pb::health_client::HealthClient;
use vdm_kit::bus::EventBus;
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::shutdown::CancellationToken;
use vdm_proto::metrics::v1::metrics_service_client::MetricsServiceClient;
use vdm_proto::npc::v1::npc_service_client::NpcServiceClient;
use vdm_proto::player::v1::player_service_client::PlayerServiceClient;
use vdm_proto::quest::v1::quest_service_client::QuestServiceClient;
use vdm_proto::rumor::v1::rumor_service_client::RumorServiceClient;
use vdm_proto::world::v1::world_service_client::WorldServiceClient;

use crate::auth::TokenKeys;
use crate::auth::accounts::Accounts;
use crate::edge_cache::EdgeCache;
use crate::openapi::Document;
use crate::standings::Standings;

/// The state behind every REST route: a shared [`Shared`], cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    /// Wraps what the handlers share.
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// See [`AppState`].
pub struct Shared {
    /// Signs and checks tokens (shared with the rate limiter, which keys on
    /// the verified caller, and with the socket route).
    pub tokens: Arc<TokenKeys>,
    /// Player accounts (sign-in, refresh, revocations): the player service.
    pub accounts: Accounts,
    /// The event bus (revocations are published on it).
    pub bus: EventBus,
    /// Public read models as ready-to-send bodies.
    pub edge: EdgeCache,
    /// The quest service.
    pub quest: QuestServiceClient<GrpcChannel>,
    /// The NPC service.
    pub npc: NpcServiceClient<GrpcChannel>,
    /// The world service.
    pub world: WorldServiceClient<GrpcChannel>,
    /// The rumor service, when configured.
    pub rumor: Option<RumorServiceClient<GrpcChannel>>,
    /// The player service (profiles, inventories, the item catalog).
    pub player: PlayerServiceClient<GrpcChannel>,
    /// Players' faction standings, as NPC talks use them.
    pub standings: Standings,
    /// The metrics service, when configured.
    pub metrics: Option<MetricsServiceClient<GrpcChannel>>,
    /// The budget of each service call of the game bootstrap.
    pub bootstrap_budget: Duration,
    /// Health checks of each service, by gRPC service name.
    pub health: Vec<(&'static str, HealthClient<GrpcChannel>)>,
    /// Cancelled when the process begins to shut down.
    pub shutdown: CancellationToken,
    /// The OpenAPI document, as served.
    pub document: Document,
}

impl FromRef<AppState> for Arc<TokenKeys> {
    fn from_ref(state: &AppState) -> Arc<TokenKeys> {
        state.tokens.clone()
    }
}

impl FromRef<AppState> for Accounts {
    fn from_ref(state: &AppState) -> Accounts {
        state.accounts.clone()
    }
}

impl FromRef<AppState> for EventBus {
    fn from_ref(state: &AppState) -> EventBus {
        state.bus.clone()
    }
}

impl FromRef<AppState> for Document {
    fn from_ref(state: &AppState) -> Document {
        state.document.clone()
    }
}
