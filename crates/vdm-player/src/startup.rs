//! The player service on the kit's service skeleton: what it connects and
//! what it serves.

use std::path::Path;

use tonic::service::Routes;
use vdm_kit::config::{ConfigError, DatabaseConfig, Env};
use vdm_kit::service::{Backends, Parts, Peers, Service};

use crate::config::PlayerConfig;
use crate::error::{PlayerError, PlayerResult};
use crate::grpc::{PlayerGrpc, SERVICE_NAME};
use crate::service::PlayerService;
use crate::store::PlayerStore;
use crate::store::migration::Migrator;

/// The player service, as the binary starts it
/// (`vdm_kit::service::GrpcApp::build::<Player>`).
pub struct Player;

impl Service for Player {
    const NAME: &'static str = "player";
    type Config = PlayerConfig;
    type Error = PlayerError;
    type Migrator = Migrator;

    fn config_from_env(env: &Env, data_dir: &Path) -> Result<PlayerConfig, ConfigError> {
        PlayerConfig::from_env(env, data_dir)
    }

    fn database(config: &PlayerConfig) -> &DatabaseConfig {
        &config.database
    }

    /// Connects the database (running migrations if configured) and the
    /// event bus. The player service calls no other service.
    async fn build(config: &PlayerConfig, _peers: &Peers) -> PlayerResult<Parts> {
        let backends = Backends::connect::<Migrator>(Self::NAME, &config.database, &config.cache).await?;
        let store = PlayerStore::new(backends.db, config.levels.clone());
        // Subscribed before any profile or inventory is read and kept.
        let (profile_changes, inventory_changes) = (backends.events.subscribe(), backends.events.subscribe());
        let service = PlayerService::new(store, &backends.caches, backends.events);
        let readiness = vdm_kit::admin::readiness_check("player database", service.clone(), |service| async move {
            service.ready().await
        });
        let follower = service.clone();
        Ok(
            Parts::new(Routes::new(PlayerGrpc::server(service)), SERVICE_NAME, readiness).with_background(
                move |stop| {
                    Box::pin(async move { follower.follow_changes(profile_changes, inventory_changes, stop).await })
                },
            ),
        )
    }
}
