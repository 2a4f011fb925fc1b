//! Building and running the world service: connect, migrate, load the
//! clock, bind, serve.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::service::Routes;
use vdm_kit::admin::ReadinessCheck;
use vdm_kit::bus::EventBus;
use vdm_kit::cache::CacheStore;
use vdm_kit::grpc::ServeOptions;

use crate::config::WorldConfig;
use crate::domain::Clock;
use crate::error::{WorldError, WorldResult};
use crate::grpc::{SERVICE_NAME, WorldGrpc};
use crate::service::WorldService;
use crate::store::WorldStore;
use crate::store::migration::Migrator;

/// A world service that is connected and bound, ready to run.
pub struct App {
    listener: TcpListener,
    service: WorldService,
    options: ServeOptions,
}

impl App {
    /// Connects to the database (running migrations if configured), loads
    /// the world clock (starting it on the first start, re-anchoring it when
    /// the configured rate changed), sets up the caches and binds the gRPC
    /// listener.
    pub async fn build(config: &WorldConfig) -> WorldResult<App> {
        let db = vdm_kit::db::connect::<Migrator>(&config.database, "world").await?;
        let caches = CacheStore::new(&config.cache)?;
        let events = EventBus::new(&caches, &config.cache.key_prefix);
        let store = WorldStore::new(db);
        let now = vdm_kit::now_ms();
        let mut clock = store.load_clock(Clock::start(now, config.clock_rate)).await?;
        if clock.rate != config.clock_rate {
            let rerated = clock.rerated(now, config.clock_rate);
            store.save_clock(rerated).await?;
            tracing::info!(from = clock.rate, to = config.clock_rate, "world clock rate changed");
            clock = rerated;
        }
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|source| WorldError::Bind {
                addr: config.grpc_addr,
                source,
            })?;
        tracing::info!(
            cache = caches.backend_name(),
            postgres = config.database.is_postgres(),
            game_time_ms = clock.game_time_at(now),
            "world service built"
        );
        Ok(App {
            listener,
            service: WorldService::new(store, &caches, clock, events),
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
        vdm_kit::admin::readiness_check("world database", self.service.clone(), |service| async move {
            service.ready().await
        })
    }

    /// Serves gRPC until `shutdown` completes, then drains in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> WorldResult<()> {
        tracing::info!(addr = %self.local_addr(), "world service listening");
        let routes = Routes::new(WorldGrpc::server(self.service));
        vdm_kit::grpc::serve_with(self.listener, SERVICE_NAME, routes, shutdown, self.options).await?;
        Ok(())
    }
}
