//! Connecting to a service's database and bringing its schema up to date.
//!
//! Postgres: one schema per service (created when missing) selected through
//! the connection's `search_path`, so a service's migrations and queries never
//! name another service's tables. SQLite: one file per service, in WAL mode.

use std::sync::Arc;
use std::time::Duration;

use sea_orm::sqlx::postgres::PgSslMode;
use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, DbErr};
use sea_orm_migration::MigratorTrait;

use crate::config::{DatabaseConfig, valid_identifier};

/// How long a pooled connection may sit idle before it is pinged on its
/// next acquire.
const IDLE_BEFORE_PING: Duration = Duration::from_secs(1);

/// A failure while connecting or migrating.
#[derive(Debug, thiserror::Error)]
pub enum DbSetupError {
    /// The schema name cannot be used as an SQL identifier.
    #[error("invalid schema name {0:?}")]
    InvalidSchema(String),
    /// The SQLite file's folder could not be created.
    #[error("cannot create the data folder {path}")]
    DataDir {
        /// The folder.
        path: String,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The database refused or failed.
    #[error("database {step} failed")]
    Db {
        /// What was being done.
        step: &'static str,
        /// The database's error.
        #[source]
        source: DbErr,
    },
}

/// Opens the pool for one service, creates its Postgres schema if needed and
/// runs `M`'s pending migrations when the config asks for it.
///
/// `pool_name` labels the pool in `/metrics`.
pub async fn connect<M: MigratorTrait>(
    config: &DatabaseConfig,
    pool_name: &'static str,
) -> Result<DatabaseConnection, DbSetupError> {
    if !valid_identifier(&config.schema) {
        return Err(DbSetupError::InvalidSchema(config.schema.clone()));
    }
    let url = config.url.expose();
    if let Some(path) = sqlite_path(url)
        && let Some(dir) = std::path::Path::new(path).parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir).map_err(|source| DbSetupError::DataDir {
            path: dir.display().to_string(),
            source,
        })?;
    }

    let tls_is_default = !names_ssl_mode(url) && std::env::var_os("PGSSLMODE").is_none();
    let mut options = ConnectOptions::new(url.to_owned());
    options
        .max_connections(config.max_connections)
        .min_connections(config.min_connections.clamp(1, config.max_connections))
        .acquire_timeout(config.acquire_timeout)
        .connect_timeout(Duration::from_secs(5))
        .idle_timeout(Duration::from_secs(300))
        // A connection that sat idle may have died with a database restart:
        // check it before use rather than fail the request that draws it.
        // One in steady use is not pinged: a ping on every acquire doubled
        // the round trips (and the task wake-ups) of every statement, and a
        // connection a restart broke fails once and is dropped.
        .test_before_acquire_if_idle_for(IDLE_BEFORE_PING)
        .sqlx_logging(false)
        // Statements carry placeholders, never values: safe in traces, and
        // they name the table an SRE is looking for.
        .record_stmt_in_spans(true)
        .set_schema_search_path(config.schema.clone())
        .set_application_name(format!("vdm-{pool_name}"))
        .map_sqlx_postgres_opts(move |opts| {
            // TLS to a server on this host protects nothing and cost 6 % of
            // the machine under the mixed load (OpenSSL in Postgres, rustls
            // here). An explicit `sslmode` (URL or PGSSLMODE) still rules.
            if tls_is_default && is_loopback(opts.get_host()) {
                opts.ssl_mode(PgSslMode::Disable)
            } else {
                opts
            }
        })
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(true)
        });

    let mut db = Database::connect(options).await.map_err(|source| DbSetupError::Db {
        step: "connect",
        source,
    })?;
    // Every statement's duration, by pool and outcome: the latency an SRE
    // compares with the RPC's, and the count that shows an N+1.
    db.set_metric_callback(move |info| {
        let result = if info.failed { "error" } else { "ok" };
        metrics::histogram!("vdm_db_query_duration_seconds", "pool" => pool_name, "result" => result)
            .record(info.elapsed.as_secs_f64());
    });
    if db.get_database_backend() == DbBackend::Postgres {
        create_schema(&db, &config.schema).await?;
    }
    if config.migrate_on_start {
        M::up(&db, None).await.map_err(|source| DbSetupError::Db {
            step: "migration",
            source,
        })?;
        tracing::info!(pool = pool_name, "database migrations applied");
    }
    crate::metrics::register_db_pool(pool_name, Arc::new(db.clone()));
    Ok(db)
}

/// No migrations: for opening a database this process only reads (an
/// earlier release's schema being imported).
pub struct NoMigrations;

impl MigratorTrait for NoMigrations {
    fn migrations() -> Vec<Box<dyn sea_orm_migration::MigrationTrait>> {
        Vec::new()
    }
}

/// Runs `M`'s pending migrations and returns; used by `vdm migrate`.
pub async fn migrate<M: MigratorTrait>(config: &DatabaseConfig, pool_name: &'static str) -> Result<(), DbSetupError> {
    let mut config = config.clone();
    config.migrate_on_start = true;
    let db = connect::<M>(&config, pool_name).await?;
    let _ = db.close().await;
    Ok(())
}

async fn create_schema(db: &DatabaseConnection, schema: &str) -> Result<(), DbSetupError> {
    // Two replicas starting together may race on the catalog; the schema
    // existing afterwards is all that matters.
    let created = db
        .execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await;
    if let Err(source) = created {
        let exists = db
            .query_one_raw(sea_orm::Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT 1 FROM information_schema.schemata WHERE schema_name = $1",
                [schema.into()],
            ))
            .await
            .map(|row| row.is_some())
            .unwrap_or(false);
        if !exists {
            return Err(DbSetupError::Db {
                step: "schema creation",
                source,
            });
        }
    }
    Ok(())
}

fn sqlite_path(url: &str) -> Option<&str> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split('?').next().unwrap_or(rest);
    (!path.is_empty() && path != ":memory:").then_some(path)
}

/// Tells whether a connection URL chooses its TLS mode itself.
fn names_ssl_mode(url: &str) -> bool {
    url.split_once('?').is_some_and(|(_, query)| {
        query
            .split('&')
            .any(|pair| matches!(pair.split('=').next(), Some("sslmode" | "ssl-mode")))
    })
}

/// Tells whether a Postgres host is this machine: a loopback address,
/// `localhost`, or a Unix socket folder.
fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.starts_with('/')
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Tells whether a database error means the database is unreachable or
/// overloaded (worth a retry) rather than a bad statement.
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(sea_orm::RuntimeErr::SqlxError(e)) | DbErr::Exec(sea_orm::RuntimeErr::SqlxError(e)) => {
            sqlx_unavailable(e)
        }
        _ => false,
    }
}

/// A statement that failed because the server went away mid-way (a
/// restart, a failover, a dropped connection) rather than because of the
/// statement: worth a retry once the pool has reconnected.
fn sqlx_unavailable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_)
        | Error::Tls(_)
        | Error::Protocol(_)
        | Error::PoolTimedOut
        | Error::PoolClosed
        | Error::WorkerCrashed => true,
        // SQLSTATE class 08 (connection exception) and 57P0x (the server
        // is shutting down, crashed, or not accepting connections yet).
        Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lost_connections_are_unavailable_and_bad_statements_are_not() {
        use sea_orm::RuntimeErr;
        use sea_orm::sqlx::Error;
        use std::sync::Arc;
        let sqlx = |e: Error| DbErr::Query(RuntimeErr::SqlxError(Arc::new(e)));
        assert!(is_unavailable(&sqlx(Error::PoolTimedOut)));
        assert!(is_unavailable(&sqlx(Error::Io(std::io::Error::from(
            std::io::ErrorKind::ConnectionReset
        )))));
        assert!(is_unavailable(&DbErr::Conn(RuntimeErr::Internal("refused".into()))));
        assert!(!is_unavailable(&sqlx(Error::RowNotFound)));
        assert!(!is_unavailable(&DbErr::Query(RuntimeErr::Internal("syntax".into()))));
        assert!(!is_unavailable(&DbErr::RecordNotFound("x".into())));
    }

    #[test]
    fn tls_is_left_out_only_on_this_host_and_only_when_no_mode_is_named() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.0.0.2"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("/var/run/postgresql"));
        assert!(!is_loopback("10.0.0.7"));
        assert!(!is_loopback("postgres.vdm.svc"));
        assert!(names_ssl_mode("postgres://u@h/db?sslmode=require"));
        assert!(names_ssl_mode("postgres://u@h/db?application_name=x&ssl-mode=prefer"));
        assert!(!names_ssl_mode("postgres://u@h/db"));
        assert!(!names_ssl_mode("postgres://u@h/db?sslrootcert=/ca.pem"));
    }

    #[test]
    fn finds_the_sqlite_file() {
        assert_eq!(sqlite_path("sqlite://data/quest.db?mode=rwc"), Some("data/quest.db"));
        assert_eq!(sqlite_path("sqlite::memory:"), None);
        assert_eq!(sqlite_path("postgres://x/y"), None);
    }
}
