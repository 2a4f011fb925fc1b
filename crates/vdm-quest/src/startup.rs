//! Building and running the quest service: connect, migrate, bind, serve.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::service::Routes;
use vdm_kit::admin::ReadinessCheck;
use vdm_kit::bus::EventBus;
use vdm_kit::cache::CacheStore;

use crate::config::QuestConfig;
use crate::error::{QuestError, QuestResult};
use crate::grpc::{QuestGrpc, SERVICE_NAME};
use crate::service::QuestService;
use crate::store::QuestStore;
use crate::store::migration::Migrator;

/// A quest service that is connected and bound, ready to run.
pub struct App {
    listener: TcpListener,
    service: QuestService,
}

impl App {
    /// Connects to the database (running migrations if configured), sets up
    /// the cache and binds the gRPC listener.
    pub async fn build(config: &QuestConfig) -> QuestResult<App> {
        let db = vdm_kit::db::connect::<Migrator>(&config.database, "quest").await?;
        let caches = CacheStore::new(&config.cache)?;
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|source| QuestError::Bind {
                addr: config.grpc_addr,
                source,
            })?;
        tracing::info!(
            cache = caches.backend_name(),
            postgres = config.database.is_postgres(),
            "quest service built"
        );
        let events = EventBus::new(&caches, &config.cache.key_prefix);
        Ok(App {
            listener,
            service: QuestService::new(QuestStore::new(db), &caches, events),
        })
    }

    /// The address the gRPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        vdm_kit::grpc::bound_addr(&self.listener)
    }

    /// The readiness check: the database answers.
    pub fn readiness(&self) -> ReadinessCheck {
        vdm_kit::admin::readiness_check("quest database", self.service.clone(), |service| async move {
            service.ready().await
        })
    }

    /// Serves gRPC until `shutdown` completes, then drains in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> QuestResult<()> {
        tracing::info!(addr = %self.local_addr(), "quest service listening");
        let routes = Routes::new(QuestGrpc::server(self.service));
        vdm_kit::grpc::serve(self.listener, SERVICE_NAME, routes, shutdown).await?;
        Ok(())
    }
}
