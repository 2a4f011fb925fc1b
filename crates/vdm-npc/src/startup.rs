//! Building and running the NPC service: connect, migrate, bind, serve.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::service::Routes;
use vdm_kit::admin::ReadinessCheck;
use vdm_kit::bus::EventBus;
use vdm_kit::cache::CacheStore;
use vdm_kit::grpc::ServeOptions;

use crate::config::NpcConfig;
use crate::error::{NpcError, NpcResult};
use crate::grpc::{NpcGrpc, SERVICE_NAME};
use crate::service::NpcService;
use crate::store::NpcStore;
use crate::store::migration::Migrator;
use crate::world::WorldClient;

/// An NPC service that is connected and bound, ready to run.
pub struct App {
    listener: TcpListener,
    service: NpcService,
    options: ServeOptions,
}

impl App {
    /// Connects to the database (running migrations if configured), sets up
    /// the cache and the world client (which connects lazily, so the world
    /// service may start later) and binds the gRPC listener.
    pub async fn build(config: &NpcConfig) -> NpcResult<App> {
        let db = vdm_kit::db::connect::<Migrator>(&config.database, "npc").await?;
        let caches = CacheStore::new(&config.cache)?;
        let events = EventBus::new(&caches, &config.cache.key_prefix);
        let world = WorldClient::connect(&config.world_url, config.world_timeout)?;
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|source| NpcError::Bind {
                addr: config.grpc_addr,
                source,
            })?;
        tracing::info!(
            cache = caches.backend_name(),
            postgres = config.database.is_postgres(),
            world = %config.world_url,
            memory_cap = config.memory_cap,
            "npc service built"
        );
        Ok(App {
            listener,
            service: NpcService::new(NpcStore::new(db), &caches, world, config.memory_cap, events),
            options: ServeOptions {
                artificial_delay: config.artificial_delay,
            },
        })
    }

    /// The address the gRPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        vdm_kit::grpc::bound_addr(&self.listener)
    }

    /// The readiness check: the database answers.
    pub fn readiness(&self) -> ReadinessCheck {
        vdm_kit::admin::readiness_check("npc database", self.service.clone(), |service| async move {
            service.ready().await
        })
    }

    /// Serves gRPC until `shutdown` completes, then drains in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> NpcResult<()> {
        tracing::info!(addr = %self.local_addr(), "npc service listening");
        let routes = Routes::new(NpcGrpc::server(self.service));
        vdm_kit::grpc::serve_with(self.listener, SERVICE_NAME, routes, shutdown, self.options).await?;
        Ok(())
    }
}
