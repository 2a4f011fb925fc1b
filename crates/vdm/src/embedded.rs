//! `vdm all`: every service and the gateway in one process.
//!
//! Each service listens on its own loopback gRPC port (picked by the OS
//! unless configured) and the gateway reaches it over gRPC, so the same code
//! path runs as in Kubernetes. With no configuration it uses SQLite files
//! under `./data`, the in-process cache, generated secrets, and seeds the
//! demo world.

use std::net::SocketAddr;

use tokio::task::JoinSet;
use vdm_gateway::{GatewayConfig, Overrides};
use vdm_kit::config::Env;
use vdm_kit::shutdown::CancellationToken;
use vdm_quest::QuestConfig;

use crate::{Common, VdmError};

/// The running apps of one process.
pub struct Running {
    /// Where the gateway serves HTTP.
    pub http_addr: SocketAddr,
    /// Where the quest service serves gRPC.
    pub quest_addr: SocketAddr,
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

/// Builds and starts the quest service and the gateway (pointed at it);
/// both stop when `shutdown` is cancelled. Returns once both are bound.
pub async fn start(
    quest: &QuestConfig,
    mut gateway: GatewayConfig,
    shutdown: CancellationToken,
) -> Result<Running, VdmError> {
    let quest_app = vdm_quest::App::build(quest).await?;
    let quest_addr = quest_app.local_addr();
    gateway.quest_url = format!("http://{quest_addr}");
    let gateway_app = vdm_gateway::App::build(&gateway, shutdown.clone()).await?;
    let http_addr = gateway_app.local_addr();

    let mut tasks = JoinSet::new();
    let stop = shutdown.clone();
    tasks.spawn(async move {
        quest_app
            .run_until(stop.cancelled_owned())
            .await
            .map_err(VdmError::from)
    });
    let stop = shutdown.clone();
    tasks.spawn(async move {
        let result = gateway_app.run().await.map_err(VdmError::from);
        // If the gateway dies, take the services down with it.
        stop.cancel();
        result
    });
    Ok(Running {
        http_addr,
        quest_addr,
        tasks,
    })
}

/// Runs `vdm all` until a shutdown signal.
pub async fn run(env: &Env, common: &Common, shutdown: CancellationToken) -> Result<(), VdmError> {
    let started = std::time::Instant::now();
    let quest_addr = env.parse_or("VDM_QUEST_GRPC_ADDR", SocketAddr::from(([127, 0, 0, 1], 0)))?;
    let quest = QuestConfig::from_env(env, quest_addr, &common.data_dir)?;

    let generated_admin = env.secret("VDM_ADMIN_TOKEN").is_none();
    let overrides = Overrides {
        // Filled in by `start` once the quest service is bound.
        quest_url: Some("http://127.0.0.1:0".to_owned()),
        admin_token: Some(vdm_gateway::config::generate_secret(18)?),
        jwt_secret: Some(vdm_gateway::config::generate_secret(32)?),
    };
    if env.secret("VDM_JWT_SECRET").is_none() {
        tracing::warn!("VDM_JWT_SECRET is not set: using a generated key, so session tokens end with this process");
    }
    let gateway = GatewayConfig::from_env(env, &common.data_dir, overrides)?;
    let admin_token = gateway.admin_token.clone();
    let running = start(&quest, gateway, shutdown.clone()).await?;

    if env.bool_or("VDM_SEED_DEMO", true)? {
        let seeded = crate::demo::seed(running.quest_addr).await;
        if let Err(err) = seeded {
            shutdown.cancel();
            let _ = running.wait().await;
            return Err(err);
        }
    }

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
    println!("  curl -s {url}/v1/quests?region_id=1 -H \"authorization: Bearer $TOKEN\"\n");
    running.wait().await
}

fn cache_name(env: &Env) -> &'static str {
    if env.string("REDIS_URL").is_some() {
        "redis"
    } else {
        "in-process"
    }
}
