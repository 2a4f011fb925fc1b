//! `vdm all`: every service and the gateway in one process.
//!
//! Each service listens on its own loopback gRPC port (picked by the OS
//! unless configured); the gateway, and the NPC and rumor services for their
//! peers, call it through the same gRPC client and server stacks, in-process
//! (no socket) unless `VDM_IN_PROCESS_CALLS=false`, so the same code path
//! runs as in Kubernetes. With no configuration it uses SQLite files under
//! `./data`, the in-process cache, generated secrets, and seeds the demo
//! world.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use tokio::task::JoinSet;
use vdm_gateway::{GatewayConfig, SecretDefaults};
use vdm_kit::config::{ConfigError, Env};
use vdm_kit::grpc::ConnectionAge;
use vdm_kit::service::{GrpcApp, Listener, PEER_NAMES, Peers, Service};
use vdm_kit::shutdown::CancellationToken;
use vdm_metrics::{Metrics, MetricsConfig};
use vdm_npc::{Npc, NpcConfig};
use vdm_player::{Player, PlayerConfig};
use vdm_quest::{Quest, QuestConfig};
use vdm_rumor::{Rumor, RumorConfig};
use vdm_world::{World, WorldConfig};

use crate::{Common, VdmError};

/// The stats history CSV of `vdm all` under the data folder, when
/// `VDM_METRICS_CSV` does not name another file.
pub const STATS_CSV: &str = "stats-history.csv";

/// The services [`start`] runs. One left out (`None`) is not started, and
/// its callers get the address the `peers` given to [`start`] name for it
/// (tests point that at a closed port to play a service that is down).
#[derive(Debug, Clone)]
pub struct Services {
    /// The world service.
    pub world: Option<WorldConfig>,
    /// The NPC service.
    pub npc: Option<NpcConfig>,
    /// The quest service.
    pub quest: Option<QuestConfig>,
    /// The rumor service.
    pub rumor: Option<RumorConfig>,
    /// The player service.
    pub player: Option<PlayerConfig>,
    /// The metrics service; with no scrape targets it scrapes every app of
    /// the process.
    pub metrics: Option<MetricsConfig>,
    /// Where each service listens (loopback, a free port, unless set).
    pub grpc_addrs: GrpcAddrs,
    /// Callers in this process (the gateway, the NPC and rumor services)
    /// call the services started here in-process, through the same client
    /// and server stacks but without a socket; `false`: over loopback
    /// HTTP/2, as between pods. Every service listens either way.
    pub in_process: bool,
    /// Seed the demo world (through the services' gRPC APIs) before the
    /// gateway starts serving, so `/ready` never answers for an empty world.
    pub seed_demo: bool,
    /// How long each gRPC server keeps a caller's connection.
    pub connection_age: ConnectionAge,
}

/// The gRPC listen address of each service in one process.
#[derive(Debug, Clone, Default)]
pub struct GrpcAddrs(BTreeMap<&'static str, SocketAddr>);

impl GrpcAddrs {
    /// Reads `VDM_<NAME>_GRPC_ADDR` for every service.
    pub fn from_env(env: &Env) -> Result<GrpcAddrs, ConfigError> {
        let mut addrs = GrpcAddrs::default();
        for name in PEER_NAMES {
            let var = format!("VDM_{}_GRPC_ADDR", name.to_ascii_uppercase());
            if env.string(&var).is_some() {
                addrs.0.insert(name, env.parse_or(&var, LOOPBACK)?);
            }
        }
        Ok(addrs)
    }

    /// Where `service` listens.
    pub fn get(&self, service: &str) -> SocketAddr {
        self.0.get(service).copied().unwrap_or(LOOPBACK)
    }
}

/// Loopback, a port the OS picks.
const LOOPBACK: SocketAddr = SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 0);

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
    /// Where the player service serves gRPC, when started.
    pub player_addr: Option<SocketAddr>,
    /// Where the metrics service serves gRPC, when started.
    pub metrics_addr: Option<SocketAddr>,
    /// Every service's address as the gateway got it (another gateway in
    /// front of the same services takes these).
    pub peers: Peers,
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

/// Binds every service's listener first, so each one's address is known
/// before any is built and every service (and the gateway) gets its peers'
/// addresses as values; then builds and starts the services, seeds the
/// demo world if asked, starts the gateway, and last the metrics service
/// (which scrapes the gateway). Services not run here keep the address
/// `peers` names. All stop when `shutdown` is cancelled. Returns once every
/// app is bound.
pub async fn start(
    services: &Services,
    peers: &Peers,
    gateway: GatewayConfig,
    shutdown: CancellationToken,
) -> Result<Running, VdmError> {
    let mut peers = peers.clone();
    let addrs = &services.grpc_addrs;
    let local = services.in_process;
    let world = bind::<World>(services.world.as_ref(), addrs, local, &mut peers).await?;
    let npc = bind::<Npc>(services.npc.as_ref(), addrs, local, &mut peers).await?;
    let quest = bind::<Quest>(services.quest.as_ref(), addrs, local, &mut peers).await?;
    let rumor = bind::<Rumor>(services.rumor.as_ref(), addrs, local, &mut peers).await?;
    let player = bind::<Player>(services.player.as_ref(), addrs, local, &mut peers).await?;
    let metrics = bind::<Metrics>(services.metrics.as_ref(), addrs, local, &mut peers).await?;

    let mut tasks = JoinSet::new();
    let age = services.connection_age;
    let world_addr = spawn::<World>(world, &mut peers, local, age, &mut tasks, &shutdown).await?;
    let npc_addr = spawn::<Npc>(npc, &mut peers, local, age, &mut tasks, &shutdown).await?;
    let quest_addr = spawn::<Quest>(quest, &mut peers, local, age, &mut tasks, &shutdown).await?;
    let rumor_addr = spawn::<Rumor>(rumor, &mut peers, local, age, &mut tasks, &shutdown).await?;
    let player_addr = spawn::<Player>(player, &mut peers, local, age, &mut tasks, &shutdown).await?;

    if services.seed_demo {
        let seeded = match (world_addr, npc_addr, quest_addr) {
            (Some(world), Some(npc), Some(quest)) => match crate::demo::seed(world, npc, quest, rumor_addr).await {
                // The item catalog lives in the player service, when it runs here.
                Ok(()) => match player_addr {
                    Some(player) => crate::demo::seed_items(player).await,
                    None => Ok(()),
                },
                Err(err) => Err(err),
            },
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

    let gateway_app = vdm_gateway::App::build(&gateway, &peers, shutdown.clone()).await?;
    let http_addr = gateway_app.local_addr();
    // Scrapes every app of the process unless told otherwise.
    let metrics = metrics.map(|(mut config, listener)| {
        if config.scrape.targets.is_empty() {
            config.scrape.targets = in_process_targets(
                http_addr,
                [
                    ("world", world_addr),
                    ("npc", npc_addr),
                    ("quest", quest_addr),
                    ("rumor", rumor_addr),
                    ("player", player_addr),
                    ("metrics", Some(listener.local_addr())),
                ],
            );
        }
        (config, listener)
    });
    // Built after the gateway (it scrapes the gateway's address); the
    // gateway's channel to it was made on the reserved slot, so telemetry
    // uploads go in-process too.
    let metrics_addr = spawn::<Metrics>(metrics, &mut peers, local, age, &mut tasks, &shutdown).await?;
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
        player_addr,
        metrics_addr,
        peers,
        tasks,
    })
}

/// Binds `S`'s listener when it runs here, and names its address in
/// `peers`; with `local`, reserves its in-process slot, so services built
/// before it call it without a socket too.
async fn bind<S: Service>(
    config: Option<&S::Config>,
    addrs: &GrpcAddrs,
    local: bool,
    peers: &mut Peers,
) -> Result<Option<(S::Config, Listener)>, VdmError> {
    let Some(config) = config else { return Ok(None) };
    let listener = Listener::bind(addrs.get(S::NAME))
        .await
        .map_err(|err| VdmError::service(S::NAME, err))?;
    peers.insert(S::NAME, listener.url());
    if local {
        peers.reserve_local(S::NAME);
    }
    Ok(Some((config.clone(), listener)))
}

/// Builds `S` on its listener and runs it until `shutdown`; with `local`,
/// callers in this process (built before or after it) reach it in-process.
async fn spawn<S: Service>(
    bound: Option<(S::Config, Listener)>,
    peers: &mut Peers,
    local: bool,
    connection_age: ConnectionAge,
    tasks: &mut JoinSet<Result<(), VdmError>>,
    shutdown: &CancellationToken,
) -> Result<Option<SocketAddr>, VdmError> {
    let Some((config, listener)) = bound else {
        return Ok(None);
    };
    let app = GrpcApp::build::<S>(listener, &config, peers)
        .await
        .map_err(|err| VdmError::service(S::NAME, err))?
        .with_connection_age(connection_age);
    if local {
        peers.insert_local(S::NAME, app.local_service());
    }
    let addr = app.local_addr();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        app.run_until(stop.cancelled_owned())
            .await
            .map_err(|err| VdmError::service(S::NAME, err))
    });
    Ok(Some(addr))
}

/// The scrape targets of one process: the gateway and every service that
/// runs here. They share the process and its one `/metrics` (the
/// gateway's); the scraper tells them apart by RPC package.
fn in_process_targets(
    http_addr: SocketAddr,
    services: [(&str, Option<SocketAddr>); 6],
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
    // Migrating, building and seeding the demo world write a line per
    // record at INFO; until it serves, those are DEBUG lines, so a newcomer
    // sees the banner. Once it serves, clients' writes log at INFO.
    let quiet = vdm_kit::telemetry::quiet();
    let data = &common.data_dir;
    let services = Services {
        world: Some(World::config_from_env(env, data)?),
        npc: Some(Npc::config_from_env(env, data)?),
        quest: Some(Quest::config_from_env(env, data)?),
        rumor: Some(Rumor::config_from_env(env, data)?),
        player: Some(Player::config_from_env(env, data)?),
        metrics: Some({
            let mut metrics = Metrics::config_from_env(env, data)?;
            // The history log is on in the embedded default, beside its data.
            metrics.scrape.csv_path.get_or_insert_with(|| data.join(STATS_CSV));
            metrics
        }),
        grpc_addrs: GrpcAddrs::from_env(env)?,
        in_process: env.bool_or("VDM_IN_PROCESS_CALLS", true)?,
        connection_age: common.connection_age,
        seed_demo: env.bool_or("VDM_SEED_DEMO", true)?,
    };

    let generated_admin = env.secret("VDM_ADMIN_TOKEN").is_none();
    let secrets = SecretDefaults {
        admin_token: Some(vdm_gateway::config::generate_secret(18)?),
        jwt_secret: Some(vdm_gateway::config::generate_secret(32)?),
    };
    if env.secret("VDM_JWT_SECRET").is_none() {
        tracing::warn!("VDM_JWT_SECRET is not set: using a generated key, so session tokens end with this process");
    }
    let gateway = GatewayConfig::from_env(env, secrets)?;
    let admin_token = gateway.admin_token.clone();
    // Every service runs here: each one's address is the one it is bound to.
    let running = start(&services, &Peers::default(), gateway, shutdown.clone()).await?;

    drop(quiet);
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
