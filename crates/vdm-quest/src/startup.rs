//! The quest service on the kit's service skeleton: what it connects and
//! what it serves.

use std::path::Path;

use tonic::service::Routes;
use vdm_kit::config::{ConfigError, DatabaseConfig, Env};
use vdm_kit::service::{Backends, Parts, Peers, Service};

use crate::config::QuestConfig;
use crate::error::{QuestError, QuestResult};
use crate::grpc::{QuestGrpc, SERVICE_NAME};
use crate::npcs::Npcs;
use crate::players::Players;
use crate::relay::Relay;
use crate::service::QuestService;
use crate::store::QuestStore;
use crate::store::migration::Migrator;

/// The quest service, as the binary starts it
/// (`vdm_kit::service::GrpcApp::build::<Quest>`).
pub struct Quest;

impl Service for Quest {
    const NAME: &'static str = "quest";
    type Config = QuestConfig;
    type Error = QuestError;
    type Migrator = Migrator;

    fn config_from_env(env: &Env, data_dir: &Path) -> Result<QuestConfig, ConfigError> {
        QuestConfig::from_env(env, data_dir)
    }

    fn database(config: &QuestConfig) -> &DatabaseConfig {
        &config.database
    }

    /// Connects the database (running migrations if configured), the cache
    /// and the event bus, and a client of the player service when `peers`
    /// names it (`VDM_PLAYER_URL`): it reads levels for level requirements,
    /// and the reward relay (a background task) delivers completed quests'
    /// rewards through it. Without it, rewards wait in the outbox. A client
    /// of the NPC service (`VDM_NPC_URL`), when named, takes the givers'
    /// changes of disposition and tells the relay the faction whose
    /// standing a reward raises.
    async fn build(config: &QuestConfig, peers: &Peers) -> QuestResult<Parts> {
        let backends = Backends::connect::<Migrator>(Self::NAME, &config.database, &config.cache).await?;
        let players = peers.optional_channel("player", config.peer_timeout)?.map(Players::new);
        let store = QuestStore::new(backends.db);
        // Subscribed before any player's quests are read and kept.
        let changes = backends.events.subscribe();
        let service = QuestService::new(store.clone(), &backends.caches, backends.events, players.clone());
        let readiness = vdm_kit::admin::readiness_check("quest database", service.clone(), |service| async move {
            service.ready().await
        });
        let follower = service.clone();
        let parts = Parts::new(Routes::new(QuestGrpc::server(service.clone())), SERVICE_NAME, readiness)
            .with_background(move |stop| {
                Box::pin(async move { follower.follow_player_quest_changes(changes, stop).await })
            });
        // The NPC service takes the giver's change of disposition and names
        // the giver's faction, whose standing a reward raises; without
        // `VDM_NPC_URL` dispositions wait in the outbox and rewards raise no
        // standing.
        let npcs = peers.optional_channel("npc", config.peer_timeout)?.map(Npcs::new);
        if players.is_none() {
            tracing::warn!("no player service configured (VDM_PLAYER_URL): quest rewards wait in the outbox");
        }
        if npcs.is_none() {
            tracing::warn!("no npc service configured (VDM_NPC_URL): givers' dispositions wait in the outbox");
        }
        if players.is_none() && npcs.is_none() {
            return Ok(parts);
        }
        let relay = Relay::new(store, players, npcs, service.rewards_queued(), config.outbox_poll);
        Ok(parts.with_background(move |stop| Box::pin(relay.run(stop))))
    }
}
