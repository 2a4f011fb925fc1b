//! Building and running the metrics service: connect, migrate, bind, serve.

use std::net::SocketAddr;

use tokio::net::TcpListener;
use tonic::service::Routes;
use vdm_kit::admin::ReadinessCheck;

use crate::config::{MetricsConfig, ScrapeConfig};
use crate::domain::targets::Target;
use crate::error::{MetricsError, MetricsResult};
use crate::grpc::{MetricsGrpc, SERVICE_NAME};
use crate::scraper::Scraper;
use crate::service::MetricsService;
use crate::store::MetricsStore;
use crate::store::migration::Migrator;

/// A metrics service that is connected and bound, ready to run.
pub struct App {
    listener: TcpListener,
    service: MetricsService,
    scrape: ScrapeConfig,
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
            service: MetricsService::new(MetricsStore::new(db), config.scrape.interval, config.budgets.clone()),
            scrape: config.scrape.clone(),
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

    /// The scrape targets (those of the config until replaced).
    pub fn scrape_targets(&self) -> &[Target] {
        &self.scrape.targets
    }

    /// Replaces the scrape targets before the app runs (`vdm all` knows
    /// the other addresses only once everything is bound).
    pub fn set_scrape_targets(&mut self, targets: Vec<Target>) {
        self.scrape.targets = targets;
    }

    /// Serves gRPC until `shutdown` completes, then drains in-flight calls;
    /// the scraper (when there are targets) runs alongside and stops first.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> MetricsResult<()> {
        tracing::info!(addr = %self.local_addr(), "metrics service listening");
        let stop = vdm_kit::shutdown::CancellationToken::new();
        let scraper = if self.scrape.targets.is_empty() {
            tracing::info!("no scrape targets (VDM_METRICS_TARGETS): backend stats are off");
            None
        } else {
            let scraper = Scraper::new(self.scrape.clone(), self.service.clone());
            Some(tokio::spawn(scraper.run(stop.clone())))
        };
        // The scraper stops with the server, also when serving fails.
        let _stop_scraper = stop.clone().drop_guard();
        let routes = Routes::new(MetricsGrpc::server(self.service));
        let served = vdm_kit::grpc::serve(self.listener, SERVICE_NAME, routes, shutdown).await;
        stop.cancel();
        if let Some(task) = scraper {
            let _ = task.await;
        }
        served?;
        Ok(())
    }
}
