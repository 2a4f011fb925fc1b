//! `vdm all`: every service and the gateway in one process.
//!
//! Each service listens on its own loopback gRPC port (picked by the OS
//! unless configured) and the gateway, and the NPC service for the world,
//! reach it over gRPC, so the same code path runs as in Kubernetes. With no
//! configuration it uses SQLite files under `./data`, the in-process cache,
//! generated secrets, and seeds the demo world.

use std::net::SocketAddr;

use tokio::task::JoinSet;
use vdm_gateway::{GatewayConfig, Overrides};
use vdm_kit::config::Env;
use vdm_kit::shutdown::CancellationToken;
use vdm_metrics::MetricsConfig;
use vdm_npc::NpcConfig;
use vdm_quest::QuestConfig;
use vdm_rumor::RumorConfig;
use vdm_world::WorldConfig;

use crate::{Common, VdmError};

/// The stats history CSV of `vdm all` under the data folder, when
/// `VDM_METRICS_CSV` does not name another file.
pub const STATS_CSV: &str = "stats-history.csv";

/// The services [`start`] runs. One left out (`None`) is not started, and
/// its callers keep the address their own config names for it (tests point
/// that at a closed port to play a service that is down).
#[derive(Debug, Clone)]
pub struct Services {
    /// The world service.
    pub world: Option<WorldConfig>,
    /// The NPC service; its `world_url` is replaced when the world runs here.
    pub npc: Option<NpcConfig>,
    /// The quest service.
    pub quest: Option<QuestConfig>,
    /// The rumor service; its NPC and world URLs are replaced when those
    /// run here.
    pub rumor: Option<RumorConfig>,
    /// The metrics service.
    pub metrics: Option<MetricsConfig>,
    /// Seed the demo world (through the services' gRPC APIs) before the
    /// gateway starts serving, so `/ready` never answers for an empty world.
    pub seed_demo: bool,
}

/// The running apps of one process.
pub struct Running {
    /// Where the gateway serves HTTP.
    pub http_addr: SocketAddr,
    /// Where the world service serves gRPC, when started.
    pub world_addr: Option<SocketAddr>,
    /// Where the NPC service serves gRPC, when started.
    pub npc_addr: Option<SocketAddr>,
    /// Where the quest service serves gRPC, when started.
    pub quest_addr: Option<SocketAddr>,
    /// Where the rumor service serves gRPC, when started.
    pub rumor_addr: Option<SocketAddr>,
    /// Where the metrics service serves gRPC, when started.
    pub metrics_addr: Option<SocketAddr>,
    tasks: JoinSet<Result<(), VdmError>>,
}

impl Running {
    /// Waits until every app has stopped; returns the first failure.
    pub async fn wait(mut self) -> Result<(), VdmError> {
        let mut first_error = None;
        while let Some(joined) = self.tasks.join_next().await {
            let result = joined
                .map_err(|e| VdmError::Other(format!("task failed: {e}")))
                .and_then(|r| r);
            if let Err(err) = result
                && first_error.is_none()
            {
                first_error = Some(err);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Builds and starts the services (world first, then NPC pointed at it,
/// then quest, then rumor pointed at NPC and world, then metrics) and the gateway pointed at them; all stop when `shutdown`
/// is cancelled. Returns once every one is bound.
pub async fn start(
    services: &Services,
    mut gateway: GatewayConfig,
    shutdown: CancellationToken,
) -> Result<Running, VdmError> {
    let mut tasks = JoinSet::new();

    let world_addr = match &services.world {
        Some(config) => {
            let app = vdm_world::App::build(config).await?;
            let addr = app.local_addr();
            gateway.world_url = format!("http://{addr}");
            let stop = shutdown.clone();
            tasks.spawn(async move { app.run_until(stop.cancelled_owned()).await.map_err(VdmError::from) });
            Some(addr)
        }
        None => None,
    };
    let npc_addr = match &services.npc {
        Some(config) => {
            let mut config = config.clone();
            if let Some(world) = world_addr {
                config.world_url = format!("http://{world}");
            }
            let app = vdm_npc::App::build(&config).await?;
            let addr = app.local_addr();
            gateway.npc_url = format!("http://{addr}");
            let stop = shutdown.clone();
            tasks.spawn(async move { app.run_until(stop.cancelled_owned()).await.map_err(VdmError::from) });
            Some(addr)
        }
        None => None,
    };
    let quest_addr = match &services.quest {
        Some(config) => {
            let app = vdm_quest::App::build(config).await?;
            let addr = app.local_addr();
            gateway.quest_url = format!("http://{addr}");
            let stop = shutdown.clone();
            tasks.spawn(async move { app.run_until(stop.cancelled_owned()).await.map_err(VdmError::from) });
            Some(addr)
        }
        None => None,
    };
    let rumor_addr = match &services.rumor {
        Some(config) => {
            let mut config = config.clone();
            if let Some(world) = world_addr {
                config.world_url = format!("http://{world}");
            }
            if let Some(npc) = npc_addr {
                config.npc_url = format!("http://{npc}");
            }
            let app = vdm_rumor::App::build(&config).await?;
            let addr = app.local_addr();
            gateway.rumor_url = Some(format!("http://{addr}"));
            let stop = shutdown.clone();
            tasks.spawn(async move { app.run_until(stop.cancelled_owned()).await.map_err(VdmError::from) });
            Some(addr)
        }
        None => None,
    };

    if services.seed_demo {
        let seeded = match (world_addr, npc_addr, quest_addr) {
            (Some(world), Some(npc), Some(quest)) => crate::demo::seed(world, npc, quest, rumor_addr).await,
            _ => Err(VdmError::Other(
                "demo seed: the world, NPC and quest services must run here".to_owned(),
            )),
        };
        if let Err(err) = seeded {
            shutdown.cancel();
            while tasks.join_next().await.is_some() {}
            return Err(err);
        }
    }

    // Built now (the gateway needs its address), started once the gateway
    // is bound (its scraper needs the gateway's).
    let metrics_app = match &services.metrics {
        Some(config) => {
            let app = vdm_metrics::App::build(config).await?;
            gateway.metrics_url = Some(format!("http://{}", app.local_addr()));
            Some(app)
        }
        None => None,
    };

    let gateway_app = vdm_gateway::App::build(&gateway, shutdown.clone()).await?;
    let http_addr = gateway_app.local_addr();
    let metrics_addr = match metrics_app {
        Some(mut app) => {
            if app.scrape_targets().is_empty() {
                app.set_scrape_targets(in_process_targets(
                    http_addr,
                    [
                        ("world", world_addr),
                        ("npc", npc_addr),
                        ("quest", quest_addr),
                        ("rumor", rumor_addr),
                        ("metrics", Some(app.local_addr())),
                    ],
                ));
            }
            let addr = app.local_addr();
            let stop = shutdown.clone();
            tasks.spawn(async move { app.run_until(stop.cancelled_owned()).await.map_err(VdmError::from) });
            Some(addr)
        }
        None => None,
    };
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let result = gateway_app.run().await.map_err(VdmError::from);
        // If the gateway dies, take the services down with it.
        stop.cancel();
        result
    });
    Ok(Running {
        http_addr,
        world_addr,
        npc_addr,
        quest_addr,
        rumor_addr,
        metrics_addr,
        tasks,
    })
}

/// The scrape targets of one process: the gateway and every service that
/// runs here. They share the process and its one `/metrics` (the
/// gateway's); the scraper tells them apart by RPC package.
fn in_process_targets(
    http_addr: SocketAddr,
    services: [(&str, Option<SocketAddr>); 5],
) -> Vec<vdm_metrics::domain::targets::Target> {
    let url = format!("http://{http_addr}/metrics");
    std::iter::once("gateway")
        .chain(
            services
                .iter()
                .filter(|(_, addr)| addr.is_some())
                .map(|(name, _)| *name),
        )
        .map(|name| vdm_metrics::domain::targets::Target {
            name: name.to_owned(),
            url: url.clone(),
        })
        .collect()
}

/// Runs `vdm all` until a shutdown signal.
pub async fn run(env: &Env, common: &Common, shutdown: CancellationToken) -> Result<(), VdmError> {
    let started = std::time::Instant::now();
    let loopback = |var: &str| env.parse_or(var, SocketAddr::from(([127, 0, 0, 1], 0)));
    // Filled in by `start` once each service is bound.
    let placeholder = || Some("http://127.0.0.1:0".to_owned());
    let services = Services {
        world: Some(WorldConfig::from_env(
            env,
            loopback("VDM_WORLD_GRPC_ADDR")?,
            &common.data_dir,
        )?),
        npc: Some(NpcConfig::from_env(
            env,
            loopback("VDM_NPC_GRPC_ADDR")?,
            &common.data_dir,
            placeholder(),
        )?),
        quest: Some(QuestConfig::from_env(
            env,
            loopback("VDM_QUEST_GRPC_ADDR")?,
            &common.data_dir,
        )?),
        rumor: Some(RumorConfig::from_env(
            env,
            loopback("VDM_RUMOR_GRPC_ADDR")?,
            &common.data_dir,
            placeholder(),
            placeholder(),
        )?),
        metrics: Some({
            let mut metrics = MetricsConfig::from_env(env, loopback("VDM_METRICS_GRPC_ADDR")?, &common.data_dir)?;
            // The history log is on in the embedded default, beside its data.
            metrics
                .scrape
                .csv_path
                .get_or_insert_with(|| common.data_dir.join(STATS_CSV));
            metrics
        }),
        seed_demo: env.bool_or("VDM_SEED_DEMO", true)?,
    };

    let generated_admin = env.secret("VDM_ADMIN_TOKEN").is_none();
    let overrides = Overrides {
        quest_url: placeholder(),
        npc_url: placeholder(),
        world_url: placeholder(),
        rumor_url: placeholder(),
        metrics_url: placeholder(),
        admin_token: Some(vdm_gateway::config::generate_secret(18)?),
        jwt_secret: Some(vdm_gateway::config::generate_secret(32)?),
    };
    if env.secret("VDM_JWT_SECRET").is_none() {
        tracing::warn!("VDM_JWT_SECRET is not set: using a generated key, so session tokens end with this process");
    }
    let gateway = GatewayConfig::from_env(env, &common.data_dir, overrides)?;
    let admin_token = gateway.admin_token.clone();
    let running = start(&services, gateway, shutdown.clone()).await?;

    let url = format!("http://{}", running.http_addr);
    tracing::info!(%url, elapsed_ms = started.elapsed().as_millis() as u64, "vdm is ready");
    println!(
        "\nvdm is ready at {url}  (data: {}, cache: {})",
        common.data_dir.display(),
        cache_name(env)
    );
    if generated_admin {
        println!("admin token (generated for this run): {}", admin_token.expose());
    }
    if env.string("VDM_LOG").is_none() && env.string("RUST_LOG").is_none() {
        println!("logs: start-up and warnings only (VDM_LOG=info logs every service's writes)");
    }
    println!(
        "try:\n  curl -s -X POST {url}/v1/auth/device -H 'content-type: application/json' -d '{{\"device_id\":\"my-device\"}}'"
    );
    println!("  curl -s '{url}/v1/bootstrap?region_id=1' -H \"authorization: Bearer $TOKEN\"\n");
    running.wait().await
}

fn cache_name(env: &Env) -> &'static str {
    if env.string("REDIS_URL").is_some() {
        "redis"
    } else {
        "in-process"
    }
}
