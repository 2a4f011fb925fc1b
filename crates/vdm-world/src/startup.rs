//! The world service on the kit's service skeleton: connect, load the
//! clock, serve.

use std::path::Path;

use tonic::service::Routes;
use vdm_kit::config::{ConfigError, DatabaseConfig, Env};
use vdm_kit::grpc::ServeOptions;
use vdm_kit::service::{Backends, Parts, Peers, Service};

use crate::config::WorldConfig;
use crate::domain::Clock;
use crate::error::{WorldError, WorldResult};
use crate::grpc::{SERVICE_NAME, WorldGrpc};
use crate::service::WorldService;
use crate::store::WorldStore;
use crate::store::migration::Migrator;

/// The world service, as the binary starts it
/// (`vdm_kit::service::GrpcApp::build::<World>`).
pub struct World;

impl Service for World {
    const NAME: &'static str = "world";
    type Config = WorldConfig;
    type Error = WorldError;
    type Migrator = Migrator;

    fn config_from_env(env: &Env, data_dir: &Path) -> Result<WorldConfig, ConfigError> {
        WorldConfig::from_env(env, data_dir)
    }

    fn database(config: &WorldConfig) -> &DatabaseConfig {
        &config.database
    }

    /// Connects the database (running migrations if configured), the caches
    /// and the event bus, and loads the world clock (starting it on the
    /// first start, re-anchoring it when the configured rate changed). The
    /// world service calls no other service.
    async fn build(config: &WorldConfig, _peers: &Peers) -> WorldResult<Parts> {
        let backends = Backends::connect::<Migrator>(Self::NAME, &config.database, &config.cache).await?;
        let store = WorldStore::new(backends.db);
        let now = vdm_kit::now_ms();
        let mut clock = store.load_clock(Clock::start(now, config.clock_rate)).await?;
        if clock.rate != config.clock_rate {
            let rerated = clock.rerated(now, config.clock_rate);
            store.save_clock(rerated).await?;
            tracing::info!(from = clock.rate, to = config.clock_rate, "world clock rate changed");
            clock = rerated;
        }
        tracing::info!(game_time_ms = clock.game_time_at(now), "world clock loaded");
        let service = WorldService::new(store, &backends.caches, clock, backends.events);
        let readiness = vdm_kit::admin::readiness_check("world database", service.clone(), |service| async move {
            service.ready().await
        });
        let parts = Parts::new(Routes::new(WorldGrpc::server(service)), SERVICE_NAME, readiness);
        Ok(parts.with_options(ServeOptions {
            artificial_delay: config.artificial_delay,
        }))
    }
}
