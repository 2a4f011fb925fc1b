//! Building and running the metrics service: connect, migrate, bind, serve.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::service::Routes;
use vdm_kit::admin::ReadinessCheck;

use crate::config::MetricsConfig;
use crate::error::{MetricsError, MetricsResult};
use crate::grpc::{MetricsGrpc, SERVICE_NAME};
use crate::service::MetricsService;
use crate::store::MetricsStore;
use crate::store::migration::Migrator;

/// A metrics service that is connected and bound, ready to run.
pub struct App {
    listener: TcpListener,
    service: MetricsService,
}

impl App {
    /// Connects to the database (running migrations if configured) and binds
    /// the gRPC listener.
    pub async fn build(config: &MetricsConfig) -> MetricsResult<App> {
        let db = vdm_kit::db::connect::<Migrator>(&config.database, "metrics").await?;
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|source| MetricsError::Bind {
                addr: config.grpc_addr,
                source,
            })?;
        tracing::info!(postgres = config.database.is_postgres(), "metrics service built");
        Ok(App {
            listener,
            service: MetricsService::new(MetricsStore::new(db)),
        })
    }

    /// The address the gRPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        vdm_kit::grpc::bound_addr(&self.listener)
    }

    /// The readiness check: the database answers.
    pub fn readiness(&self) -> ReadinessCheck {
        vdm_kit::admin::readiness_check("metrics database", self.service.clone(), |service| async move {
            service.ready().await
        })
    }

    /// Serves gRPC until `shutdown` completes, then drains in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> MetricsResult<()> {
        tracing::info!(addr = %self.local_addr(), "metrics service listening");
        let routes = Routes::new(MetricsGrpc::server(self.service));
        vdm_kit::grpc::serve(self.listener, SERVICE_NAME, routes, shutdown).await?;
        Ok(())
    }
}
