//! The skeleton every vdm gRPC service is built on.
//!
//! A service crate implements [`Service`] (how to read its settings, which
//! migrations it owns, how to build its routes from its settings and its
//! [`Peers`]) and an error type that implements [`ServiceError`]. Everything
//! else is here, written once: binding ([`Listener`]), health, reflection,
//! readiness, background tasks and draining ([`GrpcApp`]), connecting the
//! database, cache and event bus ([`Backends`]).
//!
//! The binary starts any service through these types alone, so a new
//! service is a crate with two trait impls and a line in the binary.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use futures_util::future::BoxFuture;
use sea_orm::DatabaseConnection;
use sea_orm_migration::MigratorTrait;
use tokio::net::TcpListener;
use tonic::service::Routes;

use crate::ErrorCode;
use crate::admin::ReadinessCheck;
use crate::bus::EventBus;
use crate::cache::{CacheSetupError, CacheStore};
use crate::config::{CacheConfig, ConfigError, DatabaseConfig, Env};
use crate::db::DbSetupError;
use crate::grpc::{ConnectionAge, GrpcChannel, GrpcError, LocalService, LocalSlot, ServeOptions};
use crate::shutdown::CancellationToken;

/// A service's error type: each error knows its failure class, and turns
/// into a `tonic::Status` the one way every service does.
pub trait ServiceError: std::error::Error + Send + Sync + Sized + 'static {
    /// The failure class of this error.
    fn code(&self) -> ErrorCode;

    /// The status a caller sees. Internal and unavailable failures are
    /// logged with their whole cause chain (the caller gets the class and
    /// the top-level message, never the causes).
    fn into_status(self) -> tonic::Status {
        let code = self.code();
        if matches!(code, ErrorCode::Internal | ErrorCode::Unavailable) {
            tracing::error!(error = %error_chain(&self), code = code.as_str(), "request failed");
        }
        code.to_status(self.to_string())
    }
}

/// Formats an error with its whole cause chain on one line
/// (`outer: middle: root`).
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// What can stop a service from starting or serving, whatever the service.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The database could not be reached or migrated.
    #[error("database setup failed")]
    Db(#[from] DbSetupError),
    /// The cache could not be set up.
    #[error("cache setup failed")]
    Cache(#[from] CacheSetupError),
    /// A service this one calls has no address.
    #[error("{var} is required: the {peer} service's http://host:port")]
    MissingPeer {
        /// The peer's name.
        peer: &'static str,
        /// The variable that names its address.
        var: String,
    },
    /// The gRPC listener could not be bound.
    #[error("cannot bind the grpc listener on {addr}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server (or a client channel) failed.
    #[error("grpc failed")]
    Grpc(#[from] GrpcError),
}

/// The addresses of the services a process calls, by service name
/// (`world` → `http://world:50051`).
///
/// A process on its own reads them from `VDM_<NAME>_URL`; `vdm all` passes
/// the addresses its services are bound to. Services ask for the ones they
/// need when they are built.
#[derive(Clone, Default)]
pub struct Peers {
    urls: BTreeMap<&'static str, String>,
    /// Services that run in this process: called without a socket (once
    /// each one's slot is filled).
    local: BTreeMap<&'static str, LocalSlot>,
}

impl std::fmt::Debug for Peers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("urls", &self.urls)
            .field(
                "local",
                &self
                    .local
                    .iter()
                    .map(|(name, slot)| (name, slot.is_filled()))
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Every service name a process may call.
pub const PEER_NAMES: &[&str] = &["quest", "npc", "world", "rumor", "player", "metrics"];

impl Peers {
    /// Reads `VDM_<NAME>_URL` for every name of [`PEER_NAMES`] that is set;
    /// an address that is not `http(s)://host:port` is an error naming it.
    pub fn from_env(env: &Env) -> Result<Peers, ConfigError> {
        let mut peers = Peers::default();
        for name in PEER_NAMES {
            let var = url_var(name);
            if let Some(url) = env.string(&var) {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    return Err(ConfigError::new(
                        &var,
                        format!("expected http://host:port, got {url:?}"),
                    ));
                }
                peers.urls.insert(name, url);
            }
        }
        Ok(peers)
    }

    /// Sets (or replaces) the address of `name`.
    pub fn insert(&mut self, name: &'static str, url: impl Into<String>) {
        self.urls.insert(name, url.into());
    }

    /// The address of `name`, which the caller cannot run without.
    pub fn url(&self, name: &'static str) -> Result<&str, StartError> {
        self.get(name).ok_or_else(|| StartError::MissingPeer {
            peer: name,
            var: url_var(name),
        })
    }

    /// The address of `name`, when there is one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.urls.get(name).map(String::as_str)
    }

    /// Calls to `name` go to `service`, in this process, not over a socket;
    /// that includes the calls of channels made since
    /// [`Peers::reserve_local`] named it.
    pub fn insert_local(&mut self, name: &'static str, service: LocalService) {
        let slot = self.local.entry(name).or_default();
        if !slot.fill(service.clone()) {
            // A second service under one name replaces the first for
            // channels made from now on.
            self.local.insert(name, LocalSlot::filled(service));
        }
    }

    /// `name` will run in this process: channels made from now on call it
    /// in-process once [`Peers::insert_local`] gives its service; a call
    /// made before that waits for it, within its deadline.
    pub fn reserve_local(&mut self, name: &'static str) {
        self.local.entry(name).or_default();
    }

    /// Whether `name` is known, in this process or by address.
    pub fn contains(&self, name: &str) -> bool {
        self.local.contains_key(name) || self.urls.contains_key(name)
    }

    /// A channel to `name` (which the caller cannot run without), each call
    /// with `timeout` as its deadline: in this process when it runs here,
    /// else to its address.
    pub fn channel(&self, name: &'static str, timeout: std::time::Duration) -> Result<GrpcChannel, StartError> {
        if let Some(slot) = self.local.get(name) {
            return Ok(crate::grpc::local_channel(slot.clone(), timeout));
        }
        Ok(crate::grpc::channel(self.url(name)?, timeout)?)
    }

    /// [`Peers::channel`] for a service the caller can run without.
    pub fn optional_channel(
        &self,
        name: &'static str,
        timeout: std::time::Duration,
    ) -> Result<Option<GrpcChannel>, StartError> {
        if self.contains(name) {
            self.channel(name, timeout).map(Some)
        } else {
            Ok(None)
        }
    }
}

/// `VDM_WORLD_URL` for `world`.
fn url_var(name: &str) -> String {
    format!("VDM_{}_URL", name.to_ascii_uppercase())
}

/// A service's database connection, cache store and event bus.
pub struct Backends {
    /// The service's own database (its schema, or its SQLite file).
    pub db: DatabaseConnection,
    /// Its caches (Redis, or in-process).
    pub caches: CacheStore,
    /// Its event bus (over the same Redis, or in-process).
    pub events: EventBus,
}

impl Backends {
    /// Connects the database (running `M`'s migrations when configured),
    /// then the cache and the event bus.
    pub async fn connect<M: MigratorTrait>(
        service: &'static str,
        database: &DatabaseConfig,
        cache: &CacheConfig,
    ) -> Result<Backends, StartError> {
        let db = crate::db::connect::<M>(database, service).await?;
        let caches = CacheStore::new(cache)?;
        let events = EventBus::new(&caches, &cache.key_prefix);
        tracing::debug!(
            service,
            cache = caches.backend_name(),
            postgres = database.is_postgres(),
            "backends connected"
        );
        Ok(Backends { db, caches, events })
    }
}

/// A task that runs beside a service's server and stops with it: it gets
/// a token that is cancelled when the server stops, and must return soon
/// after (the server waits for it).
pub type Background = Box<dyn FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send>;

/// What a built service hands to [`GrpcApp`]: its gRPC routes and how to
/// run them.
pub struct Parts {
    routes: Routes,
    grpc_name: &'static str,
    readiness: ReadinessCheck,
    options: ServeOptions,
    background: Vec<Background>,
}

impl Parts {
    /// The routes of one gRPC service (`grpc_name`: its full name, which
    /// health checks report), and the readiness check of its process.
    pub fn new(routes: Routes, grpc_name: &'static str, readiness: ReadinessCheck) -> Parts {
        Parts {
            routes,
            grpc_name,
            readiness,
            options: ServeOptions::default(),
            background: Vec::new(),
        }
    }

    /// Serves with `options`.
    pub fn with_options(mut self, options: ServeOptions) -> Parts {
        self.options = options;
        self
    }

    /// Runs `task` beside the server (a ticker, a scraper).
    pub fn with_background(
        mut self,
        task: impl FnOnce(CancellationToken) -> BoxFuture<'static, ()> + Send + 'static,
    ) -> Parts {
        self.background.push(Box::new(task));
        self
    }
}

/// One vdm gRPC service: its settings, its migrations, how it is built.
pub trait Service {
    /// Its name: the subcommand, the database schema, the peer name, the
    /// prefix of its variables (`VDM_QUEST_GRPC_ADDR` in `vdm all`).
    const NAME: &'static str;
    /// Its settings.
    type Config: Clone + Send + Sync + 'static;
    /// Its one error type.
    type Error: ServiceError + From<StartError>;
    /// Its database migrations.
    type Migrator: MigratorTrait;

    /// Reads its settings from the environment (`data_dir`: where SQLite
    /// files go without `DATABASE_URL`).
    fn config_from_env(env: &Env, data_dir: &Path) -> Result<Self::Config, ConfigError>;

    /// The database settings, for `vdm migrate`.
    fn database(config: &Self::Config) -> &DatabaseConfig;

    /// Connects what it needs and builds its routes.
    fn build(config: &Self::Config, peers: &Peers) -> impl Future<Output = Result<Parts, Self::Error>> + Send;
}

/// A bound gRPC listener: its address is known (and can be handed to
/// peers) before the service behind it is built.
pub struct Listener(TcpListener);

impl Listener {
    /// Binds `addr` (port 0 picks a free port).
    pub async fn bind(addr: SocketAddr) -> Result<Listener, StartError> {
        TcpListener::bind(addr)
            .await
            .map(Listener)
            .map_err(|source| StartError::Bind { addr, source })
    }

    /// The address it is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        crate::grpc::bound_addr(&self.0)
    }

    /// `http://<local address>`, as peers dial it.
    pub fn url(&self) -> String {
        format!("http://{}", self.local_addr())
    }
}

/// A service that is built and bound, ready to run.
pub struct GrpcApp {
    name: &'static str,
    listener: TcpListener,
    parts: Parts,
    health: tonic_health::server::HealthReporter,
    connection_age: ConnectionAge,
}

impl GrpcApp {
    /// Builds service `S` from `config` and `peers`, to be served on
    /// `listener`.
    pub async fn build<S: Service>(listener: Listener, config: &S::Config, peers: &Peers) -> Result<GrpcApp, S::Error> {
        let mut parts = S::build(config, peers).await?;
        let (routes, health) = crate::grpc::complete_routes(parts.grpc_name, parts.routes)
            .await
            .map_err(StartError::from)?;
        parts.routes = routes;
        tracing::info!(service = S::NAME, addr = %listener.local_addr(), "service built");
        Ok(GrpcApp {
            name: S::NAME,
            listener: listener.0,
            parts,
            health,
            connection_age: ConnectionAge::default(),
        })
    }

    /// Serves with `age` as the callers' connection lifetime instead of the
    /// default (5 minutes, 30 s grace).
    pub fn with_connection_age(mut self, age: ConnectionAge) -> GrpcApp {
        self.connection_age = age;
        self
    }

    /// The service as callers in this process reach it: its routes (health
    /// and reflection included) behind the same layers as the network
    /// server, without a socket.
    pub fn local_service(&self) -> LocalService {
        crate::grpc::local_service(self.parts.routes.clone(), self.parts.options)
    }

    /// The address the gRPC server is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        crate::grpc::bound_addr(&self.listener)
    }

    /// The service's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The readiness check of the service.
    pub fn readiness(&self) -> ReadinessCheck {
        self.parts.readiness.clone()
    }

    /// Serves gRPC (with health and reflection) and runs the background
    /// tasks until `shutdown` completes, then stops the tasks and drains
    /// in-flight calls.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), StartError> {
        let Parts {
            routes,
            grpc_name,
            options,
            background,
            ..
        } = self.parts;
        tracing::info!(service = self.name, addr = %crate::grpc::bound_addr(&self.listener), "service listening");
        let stop = CancellationToken::new();
        // The tasks stop with the server, also when serving fails.
        let _stop_tasks = stop.clone().drop_guard();
        let tasks: Vec<_> = background
            .into_iter()
            .map(|task| tokio::spawn(task(stop.clone())))
            .collect();
        let served = crate::grpc::serve_routes(
            self.listener,
            grpc_name,
            routes,
            self.health,
            shutdown,
            options,
            self.connection_age,
        )
        .await;
        stop.cancel();
        for task in tasks {
            let _ = task.await;
        }
        served?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn peers_come_from_their_variables_and_name_the_missing_one() {
        let peers = Peers::from_env(&Env::from_pairs([("VDM_WORLD_URL", "http://w:1")])).unwrap();
        assert_eq!(peers.url("world").unwrap(), "http://w:1");
        let missing = peers.url("npc").unwrap_err();
        assert!(missing.to_string().starts_with("VDM_NPC_URL is required"), "{missing}");
        assert_eq!(peers.get("rumor"), None);

        let bad = Peers::from_env(&Env::from_pairs([("VDM_QUEST_URL", "quest:1")])).unwrap_err();
        assert_eq!(bad.var, "VDM_QUEST_URL");

        let mut peers = peers;
        peers.insert("world", "http://127.0.0.1:5");
        assert_eq!(peers.url("world").unwrap(), "http://127.0.0.1:5");
    }

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn an_error_chain_names_every_cause() {
        let err = Outer(std::io::Error::other("root cause"));
        assert_eq!(error_chain(&err), "outer: root cause");
    }
}
