//! The NPC service on the kit's service skeleton: what it connects and
//! what it serves.

use std::path::Path;

use tonic::service::Routes;
use vdm_kit::config::{ConfigError, DatabaseConfig, Env};
use vdm_kit::grpc::ServeOptions;
use vdm_kit::service::{Backends, Parts, Peers, Service};

use crate::config::NpcConfig;
use crate::error::{NpcError, NpcResult};
use crate::grpc::{NpcGrpc, SERVICE_NAME};
use crate::service::NpcService;
use crate::store::NpcStore;
use crate::store::migration::Migrator;
use crate::world::WorldClient;

/// The NPC service, as the binary starts it
/// (`vdm_kit::service::GrpcApp::build::<Npc>`).
pub struct Npc;

impl Service for Npc {
    const NAME: &'static str = "npc";
    type Config = NpcConfig;
    type Error = NpcError;
    type Migrator = Migrator;

    fn config_from_env(env: &Env, data_dir: &Path) -> Result<NpcConfig, ConfigError> {
        NpcConfig::from_env(env, data_dir)
    }

    fn database(config: &NpcConfig) -> &DatabaseConfig {
        &config.database
    }

    /// Connects the database (running migrations if configured), the cache,
    /// the event bus and the world client (which connects lazily, so the
    /// world service may start later).
    async fn build(config: &NpcConfig, peers: &Peers) -> NpcResult<Parts> {
        let world = WorldClient::new(peers.channel("world", config.world_timeout)?);
        let backends = Backends::connect::<Migrator>(Self::NAME, &config.database, &config.cache).await?;
        tracing::info!(memory_cap = config.memory_cap, "npc service built");
        // Subscribed before any disposition is read and kept.
        let changes = backends.events.subscribe();
        let service = NpcService::new(
            NpcStore::new(backends.db),
            &backends.caches,
            world,
            config.memory_cap,
            backends.events,
        );
        let readiness = vdm_kit::admin::readiness_check("npc database", service.clone(), |service| async move {
            service.ready().await
        });
        let follower = service.clone();
        let parts =
            Parts::new(Routes::new(NpcGrpc::server(service)), SERVICE_NAME, readiness).with_background(move |stop| {
                Box::pin(async move { follower.follow_disposition_changes(changes, stop).await })
            });
        Ok(parts.with_options(ServeOptions {
            artificial_delay: config.artificial_delay,
        }))
    }
}
