//! The one vdm binary's library: parse the subcommand, read the config,
//! start the right apps, wait for a shutdown signal.
//!
//! # Layout
//! - [`Command`]: the subcommands.
//! - [`run`]: builds the runtime, telemetry and config, then dispatches.
//! - [`embedded`]: `vdm all`: every service and the gateway in one process,
//!   each service on its own loopback gRPC port and called in-process, and
//!   the demo world.
//! - [`demo`]: the demo world seeded on first start.
//! - [`content`]: `vdm content`: world files validated, imported through
//!   the gateway, exported.

pub mod content;
pub mod demo;
pub mod embedded;

use std::net::SocketAddr;
use std::path::PathBuf;

use vdm_gateway::SecretDefaults;
use vdm_kit::config::{ConfigError, DatabaseConfig, Env};
use vdm_kit::grpc::ConnectionAge;
use vdm_kit::service::{GrpcApp, Listener, Peers, Service};
use vdm_kit::shutdown::CancellationToken;
use vdm_kit::telemetry::TelemetryConfig;

/// The command-line help.
pub const USAGE: &str = "\
usage: vdm [COMMAND]

commands:
  all                 run every service and the gateway in one process (default)
  gateway             run the HTTP gateway
  quest               run the quest service
  npc                 run the NPC service
  rumor               run the rumor service
  world               run the world service
  player              run the player service
  metrics             run the metrics service
  migrate <service>   run a service's database migrations and exit
                      (quest, npc, world, rumor, player, metrics, all)
  migrate accounts    import the player accounts and sessions an earlier
                      gateway kept (its `gateway` schema, or gateway.db) into
                      the player service's database; idempotent
  budgets alert-rules [--out FILE]
                      write the performance budgets (VDM_BUDGETS_FILE, else
                      the compiled-in deploy/budgets.json) as Prometheus
                      alert rules, to FILE or standard output
  openapi [--out FILE]
                      write the gateway's OpenAPI document, byte for byte as
                      GET /v1/openapi.json serves it, to FILE or standard
                      output (client generators read it; no server needed)
  content validate FILE
                      check a world file (docs/CONTENT.md); no server needed
  content import FILE [--dry-run] [--url URL]
                      make the live world match FILE through the gateway
                      (--url, else VDM_URL, else http://127.0.0.1:8080; the
                      admin token from VDM_ADMIN_TOKEN); --dry-run prints
                      the plan and writes nothing
  content export [--out FILE] [--url URL]
                      write the live world as a world file, to FILE or
                      standard output
  help                print this help

Configuration is read from the environment (VDM_*, DATABASE_URL, REDIS_URL,
OTEL_*); see the README.";

/// What to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Every service and the gateway in one process.
    All,
    /// The gateway alone.
    Gateway,
    /// One service alone (a name of [`SERVICES`]).
    Service(&'static str),
    /// Migrate one service's database (or all) and exit.
    Migrate(String),
    /// Write the budgets as Prometheus alert rules (to a file, or stdout).
    BudgetAlertRules(Option<PathBuf>),
    /// Write the gateway's OpenAPI document (to a file, or stdout).
    OpenApi(Option<PathBuf>),
    /// A `vdm content` command: world files.
    Content(content::ContentCommand),
    /// Print the help.
    Help,
    /// Print the version.
    Version,
}

impl Command {
    /// Parses the arguments after the program name.
    pub fn parse(mut args: impl Iterator<Item = String>) -> Result<Command, String> {
        let command = match args.next().as_deref() {
            None | Some("all") => Command::All,
            Some("gateway") => Command::Gateway,
            Some("migrate") => Command::Migrate(args.next().ok_or("migrate needs a service name")?),
            Some("budgets") => match args.next().as_deref() {
                Some("alert-rules") => match args.next().as_deref() {
                    None => Command::BudgetAlertRules(None),
                    Some("--out") => {
                        Command::BudgetAlertRules(Some(PathBuf::from(args.next().ok_or("--out needs a file name")?)))
                    }
                    Some(other) => return Err(format!("unexpected argument {other:?}")),
                },
                _ => return Err("usage: vdm budgets alert-rules [--out FILE]".to_owned()),
            },
            Some("openapi") => match args.next().as_deref() {
                None => Command::OpenApi(None),
                Some("--out") => Command::OpenApi(Some(PathBuf::from(args.next().ok_or("--out needs a file name")?))),
                Some(other) => return Err(format!("unexpected argument {other:?}")),
            },
            Some("content") => return content::ContentCommand::parse(args).map(Command::Content),
            Some("help" | "-h" | "--help") => Command::Help,
            Some("version" | "-V" | "--version") => Command::Version,
            Some(other) => match SERVICES.iter().find(|service| **service == other) {
                Some(service) => Command::Service(service),
                None => return Err(format!("unknown command {other:?}")),
            },
        };
        match args.next() {
            Some(extra) => Err(format!("unexpected argument {extra:?}")),
            None => Ok(command),
        }
    }
}

/// Everything that can stop the binary.
#[derive(Debug, thiserror::Error)]
pub enum VdmError {
    /// A setting is wrong.
    #[error("configuration error")]
    Config(#[from] ConfigError),
    /// Telemetry could not start.
    #[error("telemetry setup failed")]
    Telemetry(#[from] vdm_kit::telemetry::TelemetryError),
    /// A service failed to start or while serving.
    #[error("{service} service failed")]
    Service {
        /// Which one.
        service: &'static str,
        /// What went wrong.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The gateway failed.
    #[error("gateway failed")]
    Gateway(#[from] vdm_gateway::GatewayError),
    /// A database migration failed.
    #[error("migration failed")]
    Migrate(#[from] vdm_kit::db::DbSetupError),
    /// An IO failure (runtime, admin listener).
    #[error("io error")]
    Io(#[from] std::io::Error),
    /// A task panicked or the demo seed failed.
    #[error("{0}")]
    Other(String),
}

impl VdmError {
    /// A failure of `service`.
    pub fn service(service: &'static str, err: impl std::error::Error + Send + Sync + 'static) -> VdmError {
        VdmError::Service {
            service,
            source: Box::new(err),
        }
    }
}

pub use vdm_kit::service::error_chain;

/// The services the binary runs one per process (`vdm quest`), in the
/// order `vdm migrate all` migrates them after the gateway.
pub const SERVICES: &[&str] = &["quest", "npc", "world", "rumor", "player", "metrics"];

/// Settings every subcommand shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// Where SQLite files live without `DATABASE_URL` (`VDM_DATA_DIR`, default `./data`).
    pub data_dir: PathBuf,
    /// Logging and tracing.
    pub telemetry: TelemetryConfig,
    /// How long gRPC servers keep a caller's connection
    /// (`VDM_GRPC_MAX_CONNECTION_AGE_SECS`, `..._GRACE_SECS`).
    pub connection_age: ConnectionAge,
}

impl Common {
    fn from_env(env: &Env, service_name: &str) -> Result<Common, ConfigError> {
        Ok(Common {
            data_dir: env
                .string("VDM_DATA_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("data")),
            telemetry: TelemetryConfig::from_env(env, service_name)?,
            connection_age: ConnectionAge::from_env(env)?,
        })
    }
}

/// Runs a command to completion (until a shutdown signal for the servers).
pub fn run(command: Command) -> Result<(), VdmError> {
    match command {
        Command::Help => {
            println!("{USAGE}");
            return Ok(());
        }
        Command::Version => {
            println!("vdm {}", env!("CARGO_PKG_VERSION"));
            return Ok(());
        }
        Command::BudgetAlertRules(out) => return write_alert_rules(&Env::from_process(), out.as_deref()),
        Command::OpenApi(out) => return write_openapi(out.as_deref()),
        Command::Content(content) => {
            // A client of the gateway: one thread is plenty, and it logs
            // nothing but what it prints.
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            return runtime.block_on(content::run(content, &Env::from_process()));
        }
        _ => {}
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(run_async(command))
}

async fn run_async(command: Command) -> Result<(), VdmError> {
    let env = Env::from_process();
    let service_name = match &command {
        Command::All => "vdm",
        Command::Gateway => "gateway",
        Command::Service(name) => name,
        _ => "vdm-migrate",
    };
    let common = Common::from_env(&env, service_name)?;
    let _telemetry = vdm_kit::telemetry::init(&common.telemetry)?;
    vdm_kit::metrics::install();
    let shutdown = CancellationToken::new();
    spawn_signal_watch(shutdown.clone());

    match command {
        Command::All => embedded::run(&env, &common, shutdown).await,
        Command::Gateway => {
            let config = vdm_gateway::GatewayConfig::from_env(&env, SecretDefaults::default())?;
            let app = vdm_gateway::App::build(&config, &Peers::from_env(&env)?, shutdown).await?;
            app.run().await?;
            Ok(())
        }
        Command::Service(name) => match name {
            "quest" => serve_one::<vdm_quest::Quest>(&env, &common, shutdown).await,
            "npc" => serve_one::<vdm_npc::Npc>(&env, &common, shutdown).await,
            "world" => serve_one::<vdm_world::World>(&env, &common, shutdown).await,
            "rumor" => serve_one::<vdm_rumor::Rumor>(&env, &common, shutdown).await,
            "player" => serve_one::<vdm_player::Player>(&env, &common, shutdown).await,
            "metrics" => serve_one::<vdm_metrics::Metrics>(&env, &common, shutdown).await,
            other => Err(VdmError::Other(format!("unknown service {other:?}"))),
        },
        Command::Migrate(service) => migrate(&env, &common, &service).await,
        Command::Help | Command::Version | Command::BudgetAlertRules(_) | Command::OpenApi(_) | Command::Content(_) => {
            Ok(())
        }
    }
}

/// `vdm budgets alert-rules`: the budgets as Prometheus rules.
fn write_alert_rules(env: &Env, out: Option<&std::path::Path>) -> Result<(), VdmError> {
    let budgets = vdm_metrics::config::budgets_from_env(env)?;
    let rules = vdm_metrics::domain::budgets::alert_rules(&budgets);
    match out {
        Some(path) => {
            std::fs::write(path, rules)?;
            eprintln!("wrote {} alert rules to {}", budgets.len(), path.display());
        }
        None => print!("{rules}"),
    }
    Ok(())
}

/// `vdm openapi`: the document the gateway serves, and its contract version.
fn write_openapi(out: Option<&std::path::Path>) -> Result<(), VdmError> {
    let document = vdm_gateway::openapi::Document::new(&vdm_gateway::startup::document());
    let contract = vdm_gateway::pushes::contract(document.bytes());
    match out {
        Some(path) => {
            std::fs::write(path, document.bytes())?;
            eprintln!("wrote the OpenAPI document (contract {contract}) to {}", path.display());
        }
        None => {
            use std::io::Write;
            std::io::stdout().write_all(document.bytes())?;
        }
    }
    Ok(())
}

/// Runs service `S` alone: its gRPC server on `VDM_GRPC_ADDR` (default
/// `0.0.0.0:50051`), its peers from `VDM_<NAME>_URL`, and beside it the
/// admin listener on `VDM_ADMIN_ADDR` (`/health`, `/ready`, `/metrics`).
async fn serve_one<S: Service>(env: &Env, common: &Common, shutdown: CancellationToken) -> Result<(), VdmError> {
    let grpc_addr = env.parse_or("VDM_GRPC_ADDR", SocketAddr::from(([0, 0, 0, 0], 50051)))?;
    let admin_addr: SocketAddr = env.parse_or("VDM_ADMIN_ADDR", SocketAddr::from(([0, 0, 0, 0], 9090)))?;
    let config = S::config_from_env(env, &common.data_dir)?;
    let peers = Peers::from_env(env)?;
    let listener = Listener::bind(grpc_addr)
        .await
        .map_err(|err| VdmError::service(S::NAME, err))?;
    let app = GrpcApp::build::<S>(listener, &config, &peers)
        .await
        .map_err(|err| VdmError::service(S::NAME, err))?
        .with_connection_age(common.connection_age);
    let admin = tokio::net::TcpListener::bind(admin_addr).await?;
    tracing::info!(addr = %admin_addr, "admin endpoints listening");
    let admin = tokio::spawn(vdm_kit::admin::serve(admin, app.readiness(), shutdown.clone()));
    let result = app
        .run_until(shutdown.clone().cancelled_owned())
        .await
        .map_err(|err| VdmError::service(S::NAME, err));
    // The admin listener stops with the same token; make sure it does when
    // the service stopped on its own.
    shutdown.cancel();
    admin.await.map_err(|e| VdmError::Other(format!("admin task: {e}")))??;
    result
}

/// Runs `S`'s migrations on the database its settings name.
async fn migrate_one<S: Service>(env: &Env, common: &Common) -> Result<(), VdmError> {
    let config = S::config_from_env(env, &common.data_dir)?;
    vdm_kit::db::migrate::<S::Migrator>(S::database(&config), S::NAME).await?;
    Ok(())
}

async fn migrate(env: &Env, common: &Common, service: &str) -> Result<(), VdmError> {
    let targets: Vec<&str> = match service {
        "all" => SERVICES.to_vec(),
        "accounts" => return import_gateway_accounts(env, common).await,
        "gateway" => {
            return Err(VdmError::Other(
                "the gateway keeps no database; `vdm migrate accounts` imports the accounts an earlier gateway kept"
                    .to_owned(),
            ));
        }
        one if SERVICES.contains(&one) => vec![one],
        one => {
            return Err(VdmError::Other(format!(
                "unknown service {one:?}; expected {}, all or accounts",
                SERVICES.join(", ")
            )));
        }
    };
    for target in targets {
        match target {
            "quest" => migrate_one::<vdm_quest::Quest>(env, common).await?,
            "npc" => migrate_one::<vdm_npc::Npc>(env, common).await?,
            "world" => migrate_one::<vdm_world::World>(env, common).await?,
            "rumor" => migrate_one::<vdm_rumor::Rumor>(env, common).await?,
            "player" => migrate_one::<vdm_player::Player>(env, common).await?,
            "metrics" => migrate_one::<vdm_metrics::Metrics>(env, common).await?,
            other => return Err(VdmError::Other(format!("unknown service {other:?}"))),
        }
        println!("migrated {target}");
    }
    Ok(())
}

/// `vdm migrate accounts`: reads the accounts an earlier gateway kept (the
/// schema `VDM_GATEWAY_DB_SCHEMA`, default `gateway`, of `DATABASE_URL`; or
/// `<data dir>/gateway.db`) and merges them into the player service's
/// database (migrated first). Prints what it did; refuses nothing it can
/// merge, and lists what it could not.
async fn import_gateway_accounts(env: &Env, common: &Common) -> Result<(), VdmError> {
    let player = vdm_player::Player::config_from_env(env, &common.data_dir)?;
    let mut legacy = DatabaseConfig::from_env(env, "gateway", &common.data_dir)?;
    legacy.schema = env
        .string("VDM_GATEWAY_DB_SCHEMA")
        .unwrap_or_else(|| "gateway".to_owned());
    legacy.migrate_on_start = false;
    if !legacy.is_postgres() && !common.data_dir.join("gateway.db").exists() {
        println!(
            "no gateway accounts to import (no {})",
            common.data_dir.join("gateway.db").display()
        );
        return Ok(());
    }
    let legacy_db = vdm_kit::db::connect::<vdm_kit::db::NoMigrations>(&legacy, "gateway-legacy").await?;
    let found = vdm_player::store::legacy::read_gateway_accounts(&legacy_db)
        .await
        .map_err(|err| VdmError::service("player", err))?;
    let Some((players, sessions)) = found else {
        println!(
            "no gateway accounts to import (schema {} has no players table)",
            legacy.schema
        );
        return Ok(());
    };
    let db = vdm_kit::db::connect::<vdm_player::store::migration::Migrator>(
        &DatabaseConfig {
            migrate_on_start: true,
            ..player.database.clone()
        },
        "player",
    )
    .await?;
    let store = vdm_player::store::PlayerStore::new(db, player.levels.clone());
    let report = store
        .import_gateway_accounts(&players, &sessions)
        .await
        .map_err(|err| VdmError::service("player", err))?;
    println!(
        "players: {} created, {} updated, {} unchanged; session families: {} created, {} updated, {} unchanged",
        report.players_created,
        report.players_updated,
        report.players_unchanged,
        report.sessions_created,
        report.sessions_updated,
        report.sessions_unchanged,
    );
    for conflict in &report.conflicts {
        println!("not imported: {conflict}");
    }
    Ok(())
}

fn spawn_signal_watch(shutdown: CancellationToken) {
    tokio::spawn(async move {
        vdm_kit::shutdown::shutdown_signal().await;
        shutdown.cancel();
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, String> {
        Command::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_subcommands() {
        assert_eq!(parse(&[]).unwrap(), Command::All);
        for service in SERVICES {
            assert_eq!(parse(&[service]).unwrap(), Command::Service(service));
        }
        assert_eq!(parse(&["gateway"]).unwrap(), Command::Gateway);
        assert_eq!(
            parse(&["budgets", "alert-rules"]).unwrap(),
            Command::BudgetAlertRules(None)
        );
        assert_eq!(
            parse(&["budgets", "alert-rules", "--out", "a.yml"]).unwrap(),
            Command::BudgetAlertRules(Some(PathBuf::from("a.yml")))
        );
        assert_eq!(parse(&["openapi"]).unwrap(), Command::OpenApi(None));
        assert_eq!(
            parse(&["openapi", "--out", "doc.json"]).unwrap(),
            Command::OpenApi(Some(PathBuf::from("doc.json")))
        );
        assert!(parse(&["openapi", "--out"]).is_err());
        assert!(parse(&["budgets"]).is_err());
        assert!(parse(&["budgets", "alert-rules", "--out"]).is_err());
        assert_eq!(
            parse(&["migrate", "metrics"]).unwrap(),
            Command::Migrate("metrics".into())
        );
        assert_eq!(parse(&["migrate", "world"]).unwrap(), Command::Migrate("world".into()));
        assert_eq!(parse(&["migrate", "quest"]).unwrap(), Command::Migrate("quest".into()));
        assert_eq!(parse(&["player"]).unwrap(), Command::Service("player"));
        assert!(parse(&["migrate"]).is_err());
        assert_eq!(
            parse(&["content", "validate", "w.json"]).unwrap(),
            Command::Content(content::ContentCommand::Validate(PathBuf::from("w.json")))
        );
        assert!(parse(&["bogus"]).is_err());
        assert!(parse(&["quest", "extra"]).is_err());
    }
}
