//! Building and running the rumor service: connect, migrate, bind, serve,
//! and tick.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use vdm_kit::admin::ReadinessCheck;
use vdm_kit::bus::EventBus;
use vdm_kit::cache::CacheStore;
use vdm_kit::grpc::ServeOptions;

use crate::config::RumorConfig;
use crate::error::{RumorError, RumorResult};
use crate::grpc::{RumorGrpc, SERVICE_NAME};
use crate::peers::Peers;
use crate::service::RumorService;
use crate::store::RumorStore;
use crate::store::migration::Migrator;
use crate::transform::{LlmClient, LocalTransformer, Pipeline, Transformer};

/// A rumor service that is connected and bound, ready to run.
pub struct App {
    listener: TcpListener,
    service: RumorService,
    store: RumorStore,
    peers: Peers,
    tick_interval: Option<Duration>,
    options: ServeOptions,
}

impl App {
    /// Connects to the database (running migrations if configured), sets up
    /// the cache, the transformer pipeline and the NPC and world clients
    /// (which connect lazily) and binds the gRPC listener.
    pub async fn build(config: &RumorConfig) -> RumorResult<App> {
        let db = vdm_kit::db::connect::<Migrator>(&config.database, "rumor").await?;
        let caches = CacheStore::new(&config.cache)?;
        let events = EventBus::new(&caches, &config.cache.key_prefix);
        let peers = Peers::connect(&config.npc_url, &config.world_url, config.peer_timeout)?;
        let transformer = match &config.transform.llm {
            Some(llm) => Transformer::Llm(Box::new(LlmClient::new(llm).map_err(RumorError::Invalid)?)),
            None => Transformer::Local(LocalTransformer),
        };
        let pipeline = Pipeline::new(transformer, &caches, &config.transform);
        let listener = TcpListener::bind(config.grpc_addr)
            .await
            .map_err(|source| RumorError::Bind {
                addr: config.grpc_addr,
                source,
            })?;
        tracing::info!(
            cache = caches.backend_name(),
            postgres = config.database.is_postgres(),
            transformer = pipeline.transformer_id(),
            batch_size = config.transform.batch_size,
            batch_window_ms = config.transform.batch_window.as_millis() as u64,
            tick_interval_ms = config.tick.interval.map(|d| d.as_millis() as u64),
            "rumor service built"
        );
        let store = RumorStore::new(db);
        Ok(App {
            listener,
            service: RumorService::new(store.clone(), peers.clone(), pipeline, events, config.tick.clone()),
            store,
            peers,
            tick_interval: config.tick.interval,
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
        vdm_kit::admin::readiness_check("rumor database", self.service.clone(), |service| async move {
            service.ready().await
        })
    }

    /// Serves gRPC (and runs the ticker, when configured) until `shutdown`
    /// completes, then drains in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> RumorResult<()> {
        tracing::info!(addr = %self.local_addr(), "rumor service listening");
        let ticker = self
            .tick_interval
            .map(|interval| tokio::spawn(run_ticker(self.service.clone(), self.store, self.peers, interval)));
        let routes = Routes::new(RumorGrpc::server(self.service));
        let served = vdm_kit::grpc::serve_with(self.listener, SERVICE_NAME, routes, shutdown, self.options).await;
        if let Some(ticker) = ticker {
            ticker.abort();
        }
        served?;
        Ok(())
    }
}

/// Every `interval`, one tick of every region whose lease this replica
/// takes (so several replicas tick each region once per interval).
async fn run_ticker(service: RumorService, store: RumorStore, peers: Peers, interval: Duration) {
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
