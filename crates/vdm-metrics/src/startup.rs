//! The metrics service on the kit's service skeleton: what it connects and
//! serves, and the scraper beside it.

use std::path::Path;

use tonic::service::Routes;
use vdm_kit::config::{ConfigError, DatabaseConfig, Env};
use vdm_kit::service::{Parts, Peers, Service, StartError};

use crate::config::MetricsConfig;
use crate::error::{MetricsError, MetricsResult};
use crate::grpc::{MetricsGrpc, SERVICE_NAME};
use crate::scraper::Scraper;
use crate::service::MetricsService;
use crate::store::MetricsStore;
use crate::store::migration::Migrator;

/// The metrics service, as the binary starts it
/// (`vdm_kit::service::GrpcApp::build::<Metrics>`).
pub struct Metrics;

impl Service for Metrics {
    const NAME: &'static str = "metrics";
    type Config = MetricsConfig;
    type Error = MetricsError;
    type Migrator = Migrator;

    fn config_from_env(env: &Env, data_dir: &Path) -> Result<MetricsConfig, ConfigError> {
        MetricsConfig::from_env(env, data_dir)
    }

    fn database(config: &MetricsConfig) -> &DatabaseConfig {
        &config.database
    }

    /// Connects the database (running migrations if configured); runs the
    /// scraper beside the server when there are scrape targets. The metrics
    /// service keeps no cache and publishes no events.
    async fn build(config: &MetricsConfig, _peers: &Peers) -> MetricsResult<Parts> {
        let db = vdm_kit::db::connect::<Migrator>(&config.database, Self::NAME)
            .await
            .map_err(StartError::from)?;
        let service = MetricsService::new(MetricsStore::new(db), config.scrape.interval, config.budgets.clone());
        let readiness = vdm_kit::admin::readiness_check("metrics database", service.clone(), |service| async move {
            service.ready().await
        });
        let parts = Parts::new(
            Routes::new(MetricsGrpc::server(service.clone())),
            SERVICE_NAME,
            readiness,
        );
        if config.scrape.targets.is_empty() {
            tracing::info!("no scrape targets (VDM_METRICS_TARGETS): backend stats are off");
            return Ok(parts);
        }
        let scraper = Scraper::new(config.scrape.clone(), service);
        Ok(parts.with_background(move |stop| Box::pin(scraper.run(stop))))
    }
}
