//! Reading and writing the metrics tables. Uploads are stored in groups
//! (`group`), each group's rows with statements whose text is fixed: the
//! rows travel as JSON arrays. On Postgres that is one statement for both
//! tables (the first insert in a `WITH`), one round trip and one commit.

pub mod entities;
mod group;
pub mod migration;

use std::sync::Arc;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use serde::Serialize;

use self::entities::{client_sample, client_system_time, stats_sample};
use self::group::GroupWriter;
use crate::domain::scrape::Snapshot;
use crate::domain::stats::{HistoryQuery, StatsSample};
use crate::domain::{ClientBatch, StatsMetric};
use crate::error::{MetricsError, MetricsResult};

/// Most recent rows a percentile query reads.
pub const MAX_STATS_ROWS: u64 = 100_000;

/// Most rows a history query returns (the newest of its range).
pub const MAX_HISTORY_ROWS: u64 = 10_000;

/// The metrics tables behind one database pool.
#[derive(Clone)]
pub struct MetricsStore {
    db: DatabaseConnection,
    /// Stores client uploads, several in one insert when they arrive
    /// together.
    uploads: GroupWriter,
}

impl MetricsStore {
    /// Wraps a connected, migrated pool, and starts the upload writers on
    /// the current runtime.
    pub fn new(db: DatabaseConnection) -> MetricsStore {
        let uploads = GroupWriter::start(db.clone());
        MetricsStore { db, uploads }
    }

    /// Answers whether the database answers a trivial query.
    pub async fn ping(&self) -> MetricsResult<()> {
        self.db.ping().await.map_err(MetricsError::from)
    }

    /// Stores a checked batch: its samples, then its per-system times.
    pub async fn insert_batch(&self, batch: &ClientBatch, now_ms: i64) -> MetricsResult<()> {
        let version: Arc<str> = Arc::from(batch.client_version.as_str());
        let device: Arc<str> = Arc::from(batch.device_class.as_str());
        let samples = batch
            .samples
            .iter()
            .map(|s| SampleRow {
                player_id: batch.player_id,
                client_version: Arc::clone(&version),
                device_class: Arc::clone(&device),
                recorded_at_ms: now_ms,
                frame_time_ms: s.frame_time_ms,
                gc_collections: s.gc_collections,
                gc_pause_ms: s.gc_pause_ms,
                memory_mb: s.memory_mb,
                input_latency_ms: s.input_latency_ms,
                event_dispatch_ms: s.event_dispatch_ms,
                gc_alloc_bytes: s.gc_alloc_bytes,
            })
            .collect();
        let systems = batch
            .samples
            .iter()
            .flat_map(|s| s.systems.iter())
            .map(|(name, ms)| SystemRow {
                client_version: Arc::clone(&version),
                device_class: Arc::clone(&device),
                system: name.clone(),
                recorded_at_ms: now_ms,
                update_ms: *ms,
            })
            .collect();
        self.uploads.store(samples, systems).await
    }

    /// The frame times of the newest samples (of one version, if given).
    pub async fn frame_times(&self, client_version: Option<&str>) -> MetricsResult<Vec<f64>> {
        self.sample_values(StatsMetric::FrameTime, client_version).await
    }

    /// One field of the newest samples that measured it (of one version,
    /// if given); [`StatsMetric::SystemUpdate`] is not a sample field and
    /// has none.
    pub async fn sample_values(&self, metric: StatsMetric, client_version: Option<&str>) -> MetricsResult<Vec<f64>> {
        use client_sample::Column;
        // Each column reads back as its own SQL type: Postgres will not
        // decode an `integer` as a 64-bit value.
        enum Kind {
            Double,
            Integer,
            BigInteger,
        }
        let (column, kind) = match metric {
            StatsMetric::FrameTime => (Column::FrameTimeMs, Kind::Double),
            StatsMetric::GcAllocBytes => (Column::GcAllocBytes, Kind::BigInteger),
            StatsMetric::GcCollections => (Column::GcCollections, Kind::Integer),
            StatsMetric::GcPause => (Column::GcPauseMs, Kind::Double),
            StatsMetric::Memory => (Column::MemoryMb, Kind::Double),
            StatsMetric::InputLatency => (Column::InputLatencyMs, Kind::Double),
            StatsMetric::EventDispatch => (Column::EventDispatchMs, Kind::Double),
            StatsMetric::SystemUpdate => return Ok(Vec::new()),
        };
        let mut query = client_sample::Entity::find()
            .select_only()
            .column(column)
            .filter(column.is_not_null());
        if let Some(version) = client_version {
            query = query.filter(Column::ClientVersion.eq(version));
        }
        let query = query.order_by_desc(Column::Id).limit(MAX_STATS_ROWS);
        let values = match kind {
            Kind::Double => query.into_tuple::<f64>().all(&self.db).await?,
            Kind::Integer => {
                let values = query.into_tuple::<i32>().all(&self.db).await?;
                values.into_iter().map(f64::from).collect()
            }
            Kind::BigInteger => {
                let values = query.into_tuple::<i64>().all(&self.db).await?;
                // At most 2^30 (the upload bound): exact as f64.
                values.into_iter().map(|v| v as f64).collect()
            }
        };
        Ok(values)
    }

    /// The update times of one system in the newest samples (of one
    /// version, if given).
    pub async fn system_times(&self, system: &str, client_version: Option<&str>) -> MetricsResult<Vec<f64>> {
        let mut query = client_system_time::Entity::find()
            .select_only()
            .column(client_system_time::Column::UpdateMs)
            .filter(client_system_time::Column::System.eq(system));
        if let Some(version) = client_version {
            query = query.filter(client_system_time::Column::ClientVersion.eq(version));
        }
        let values = query
            .order_by_desc(client_system_time::Column::Id)
            .limit(MAX_STATS_ROWS)
            .into_tuple::<f64>()
            .all(&self.db)
            .await?;
        Ok(values)
    }

    /// Stores one scrape round's samples in one statement.
    pub async fn insert_samples(&self, samples: &[StatsSample]) -> MetricsResult<()> {
        if samples.is_empty() {
            return Ok(());
        }
        let rows: Vec<stats_sample::ActiveModel> = samples
            .iter()
            .map(|sample| {
                let s = sample.snapshot.as_ref();
                let count = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
                stats_sample::ActiveModel {
                    service: Set(sample.service.clone()),
                    at_ms: Set(sample.at_ms),
                    up: Set(sample.up),
                    memory_mb: Set(s.and_then(|s| s.memory_mb)),
                    cpu_percent: Set(s.and_then(|s| s.cpu_percent)),
                    request_count: Set(s.map(|s| count(s.request_count))),
                    error_count: Set(s.map(|s| count(s.error_count))),
                    throughput_rps: Set(s.and_then(|s| s.throughput_rps)),
                    p50_ms: Set(s.and_then(|s| s.p50_ms)),
                    p99_ms: Set(s.and_then(|s| s.p99_ms)),
                    error: Set(sample.error.as_ref().map(|e| e.chars().take(200).collect())),
                    ..Default::default()
                }
            })
            .collect();
        stats_sample::Entity::insert_many(rows)
            .exec_without_returning(&self.db)
            .await?;
        Ok(())
    }

    /// Samples of a range, oldest first: the newest [`MAX_HISTORY_ROWS`] of
    /// them, and whether older ones were left out.
    pub async fn history(&self, query: &HistoryQuery) -> MetricsResult<(Vec<StatsSample>, bool)> {
        let mut select = stats_sample::Entity::find();
        if let Some(service) = &query.service {
            select = select.filter(stats_sample::Column::Service.eq(service.as_str()));
        }
        if let Some(from) = query.from_ms {
            select = select.filter(stats_sample::Column::AtMs.gte(from));
        }
        if let Some(to) = query.to_ms {
            select = select.filter(stats_sample::Column::AtMs.lte(to));
        }
        let mut rows = select
            .order_by_desc(stats_sample::Column::AtMs)
            .order_by_desc(stats_sample::Column::Id)
            .limit(MAX_HISTORY_ROWS + 1)
            .all(&self.db)
            .await?;
        let truncated = rows.len() as u64 > MAX_HISTORY_ROWS;
        rows.truncate(MAX_HISTORY_ROWS as usize);
        rows.reverse();
        Ok((rows.into_iter().map(StatsSample::from).collect(), truncated))
    }

    /// Deletes the samples taken before `cutoff_ms`; returns how many.
    pub async fn delete_samples_before(&self, cutoff_ms: i64) -> MetricsResult<u64> {
        let result = stats_sample::Entity::delete_many()
            .filter(stats_sample::Column::AtMs.lt(cutoff_ms))
            .exec(&self.db)
            .await?;
        Ok(result.rows_affected)
    }
}

impl From<stats_sample::Model> for StatsSample {
    fn from(row: stats_sample::Model) -> StatsSample {
        let count = |v: Option<i64>| v.map(|v| u64::try_from(v).unwrap_or(0)).unwrap_or(0);
        let snapshot = row.up.then(|| Snapshot {
            memory_mb: row.memory_mb,
            cpu_percent: row.cpu_percent,
            request_count: count(row.request_count),
            error_count: count(row.error_count),
            throughput_rps: row.throughput_rps,
            p50_ms: row.p50_ms,
            p99_ms: row.p99_ms,
            // Not stored: budgets judge it from the round, not the history.
            error_percent: None,
        });
        StatsSample {
            service: row.service,
            at_ms: row.at_ms,
            up: row.up,
            snapshot,
            error: row.error,
        }
    }
}

/// A client sample as stored.
#[derive(Debug, Serialize)]
pub(crate) struct SampleRow {
    player_id: i64,
    client_version: Arc<str>,
    device_class: Arc<str>,
    recorded_at_ms: i64,
    frame_time_ms: f64,
    gc_collections: Option<i32>,
    gc_pause_ms: Option<f64>,
    memory_mb: Option<f64>,
    input_latency_ms: Option<f64>,
    event_dispatch_ms: Option<f64>,
    gc_alloc_bytes: Option<i64>,
}

/// One system's update time of a sample, as stored.
#[derive(Debug, Serialize)]
pub(crate) struct SystemRow {
    client_version: Arc<str>,
    device_class: Arc<str>,
    system: String,
    recorded_at_ms: i64,
    update_ms: f64,
}

/// Both tables' rows in one statement: the rows travel as two JSON
/// arrays, one parameter each, so the statement's text is the same for
/// any number of rows. The driver prepares and keeps each distinct text
/// on every pooled connection (and so does the server), and a multi-row
/// `VALUES` list of each group size was one more kept statement of up to
/// thousands of parameters: memory that grew with every new size.
const INSERT_ROWS_POSTGRES: &str = "WITH stored_samples AS (\
    INSERT INTO client_samples (player_id, client_version, device_class, recorded_at_ms, frame_time_ms, \
        gc_collections, gc_pause_ms, memory_mb, input_latency_ms, event_dispatch_ms, gc_alloc_bytes) \
    SELECT player_id, client_version, device_class, recorded_at_ms, frame_time_ms, \
        gc_collections, gc_pause_ms, memory_mb, input_latency_ms, event_dispatch_ms, gc_alloc_bytes \
    FROM json_to_recordset($1::json) AS r(player_id bigint, client_version text, device_class text, \
        recorded_at_ms bigint, frame_time_ms double precision, gc_collections integer, \
        gc_pause_ms double precision, memory_mb double precision, input_latency_ms double precision, \
        event_dispatch_ms double precision, gc_alloc_bytes bigint)) \
    INSERT INTO client_system_times (client_version, device_class, \"system\", recorded_at_ms, update_ms) \
    SELECT client_version, device_class, \"system\", recorded_at_ms, update_ms \
    FROM json_to_recordset($2::json) AS s(client_version text, device_class text, \"system\" text, \
        recorded_at_ms bigint, update_ms double precision)";

/// SQLite's forms of the same, one per table (in one transaction).
const INSERT_SAMPLES_SQLITE: &str = "INSERT INTO client_samples (player_id, client_version, device_class, \
    recorded_at_ms, frame_time_ms, gc_collections, gc_pause_ms, memory_mb, input_latency_ms, event_dispatch_ms, \
    gc_alloc_bytes) \
    SELECT json_extract(value, '$.player_id'), json_extract(value, '$.client_version'), \
        json_extract(value, '$.device_class'), json_extract(value, '$.recorded_at_ms'), \
        json_extract(value, '$.frame_time_ms'), json_extract(value, '$.gc_collections'), \
        json_extract(value, '$.gc_pause_ms'), json_extract(value, '$.memory_mb'), \
        json_extract(value, '$.input_latency_ms'), json_extract(value, '$.event_dispatch_ms'), \
        json_extract(value, '$.gc_alloc_bytes') \
    FROM json_each(?)";
const INSERT_SYSTEMS_SQLITE: &str = "INSERT INTO client_system_times (client_version, device_class, \"system\", \
    recorded_at_ms, update_ms) \
    SELECT json_extract(value, '$.client_version'), json_extract(value, '$.device_class'), \
        json_extract(value, '$.system'), json_extract(value, '$.recorded_at_ms'), json_extract(value, '$.update_ms') \
    FROM json_each(?)";

/// Stores upload rows atomically with statements whose text does not
/// depend on how many rows there are ([`INSERT_ROWS_POSTGRES`]): on
/// Postgres one statement, one round trip; on SQLite a transaction of two.
async fn insert_rows<S, Y>(db: &DatabaseConnection, samples: &[S], systems: &[Y]) -> MetricsResult<()>
where
    S: std::borrow::Borrow<SampleRow> + Serialize,
    Y: std::borrow::Borrow<SystemRow> + Serialize,
{
    let samples = rows_json(samples)?;
    let systems = rows_json(systems)?;
    let backend = db.get_database_backend();
    if backend == DatabaseBackend::Postgres {
        let both = Statement::from_sql_and_values(backend, INSERT_ROWS_POSTGRES, [samples.into(), systems.into()]);
        db.execute_raw(both).await?;
        return Ok(());
    }
    let txn = db.begin().await?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        INSERT_SAMPLES_SQLITE,
        [samples.into()],
    ))
    .await?;
    txn.execute_raw(Statement::from_sql_and_values(
        backend,
        INSERT_SYSTEMS_SQLITE,
        [systems.into()],
    ))
    .await?;
    txn.commit().await?;
    Ok(())
}

fn rows_json<T: Serialize>(rows: &[T]) -> MetricsResult<String> {
    // Plain numbers (checked finite) and strings: this cannot fail.
    serde_json::to_string(rows).map_err(|err| MetricsError::Db(DbErr::Custom(format!("encoding upload rows: {err}"))))
}
