//! The rumor service on the kit's service skeleton: what it connects and
//! serves, and the spreading ticker beside it.

use std::path::Path;
use std::time::Duration;

use tonic::service::Routes;
use vdm_kit::config::{ConfigError, DatabaseConfig, Env};
use vdm_kit::grpc::ServeOptions;
use vdm_kit::service::{Backends, Parts, Peers, Service};
use vdm_kit::shutdown::CancellationToken;

use crate::config::RumorConfig;
use crate::error::{RumorError, RumorResult};
use crate::grpc::{RumorGrpc, SERVICE_NAME};
use crate::peers::Peers as PeerClients;
use crate::service::RumorService;
use crate::store::RumorStore;
use crate::store::migration::Migrator;
use crate::transform::{LlmClient, LocalTransformer, Pipeline, Transformer};

/// The rumor service, as the binary starts it
/// (`vdm_kit::service::GrpcApp::build::<Rumor>`).
pub struct Rumor;

impl Service for Rumor {
    const NAME: &'static str = "rumor";
    type Config = RumorConfig;
    type Error = RumorError;
    type Migrator = Migrator;

    fn config_from_env(env: &Env, data_dir: &Path) -> Result<RumorConfig, ConfigError> {
        RumorConfig::from_env(env, data_dir)
    }

    fn database(config: &RumorConfig) -> &DatabaseConfig {
        &config.database
    }

    /// Connects the database (running migrations if configured), the cache,
    /// the event bus, the transformer pipeline and the NPC and world clients
    /// (which connect lazily); follows NPC changes on the bus (to drop the
    /// NPCs it keeps) and runs the ticker when one is configured.
    async fn build(config: &RumorConfig, peers: &Peers) -> RumorResult<Parts> {
        let clients = PeerClients::new(
            peers.channel("npc", config.peer_timeout)?,
            peers.channel("world", config.peer_timeout)?,
        );
        let backends = Backends::connect::<Migrator>(Self::NAME, &config.database, &config.cache).await?;
        let transformer = match &config.transform.llm {
            Some(llm) => Transformer::Llm(Box::new(LlmClient::new(llm).map_err(RumorError::Invalid)?)),
            None => Transformer::Local(LocalTransformer),
        };
        let pipeline = Pipeline::new(transformer, &backends.caches, &config.transform);
        tracing::info!(
            transformer = pipeline.transformer_id(),
            batch_size = config.transform.batch_size,
            batch_window_ms = config.transform.batch_window.as_millis() as u64,
            tick_interval_ms = config.tick.interval.map(|d| d.as_millis() as u64),
            "rumor pipeline built"
        );
        let store = RumorStore::new(backends.db);
        let service = RumorService::new(
            store.clone(),
            clients.clone(),
            pipeline,
            backends.events.clone(),
            config.tick.clone(),
        );
        let readiness = vdm_kit::admin::readiness_check("rumor database", service.clone(), |service| async move {
            service.ready().await
        });
        let mut parts = Parts::new(Routes::new(RumorGrpc::server(service.clone())), SERVICE_NAME, readiness)
            .with_options(ServeOptions {
                artificial_delay: config.artificial_delay,
            });
        // Subscribed now, before any NPC is read and kept.
        let (npcs, changes) = (clients.clone(), backends.events.subscribe());
        parts = parts.with_background(move |stop: CancellationToken| {
            Box::pin(async move { npcs.follow_npc_changes(changes, stop).await })
        });
        // Subscribed now, before anyone's rumors are read and kept.
        let (knowledge, tellings) = (service.knowledge(), backends.events.subscribe());
        parts = parts.with_background(move |stop: CancellationToken| {
            Box::pin(async move { knowledge.follow_tellings(tellings, stop).await })
        });
        if let Some(interval) = config.tick.interval {
            parts = parts.with_background(move |stop: CancellationToken| {
                Box::pin(async move {
                    tokio::select! {
                        () = run_ticker(service, store, clients, interval) => {}
                        () = stop.cancelled() => {}
                    }
                })
            });
        }
        Ok(parts)
    }
}

/// Every `interval`, one tick of every region whose lease this replica
/// takes (so several replicas tick each region once per interval).
async fn run_ticker(service: RumorService, store: RumorStore, peers: PeerClients, interval: Duration) {
    let mut timer = tokio::time::interval(interval);
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick of `interval` fires at once; let the peers start.
    timer.tick().await;
    loop {
        timer.tick().await;
        let regions = match peers.region_ids().await {
            Ok(regions) => regions,
            Err(err) => {
                tracing::warn!(error = %err, "rumor ticker: cannot list regions; next round");
                continue;
            }
        };
        for region_id in regions {
            let now = vdm_kit::now_ms();
            // Held a little less than the interval, so the next round finds it free.
            let until = now + (interval.as_millis() as i64 * 9 / 10);
            match store.take_lease(region_id, now, until).await {
                Ok(true) => {
                    if let Err(err) = service.tick(region_id, 0, 0, now).await {
                        tracing::warn!(region.id = region_id, error = %err, "rumor tick failed");
                    }
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(region.id = region_id, error = %err, "rumor tick lease failed"),
            }
        }
    }
}
