//! Reading and writing the metrics tables. A batch is stored with one
//! multi-row insert per table (chunked below the databases' bind-parameter
//! limits), in one transaction; on Postgres a batch that fits in one
//! insert per table is one statement (the first insert in a `WITH`), so an
//! upload costs one round trip and one commit.

pub mod entities;
mod group;
pub mod migration;

use sea_orm::sea_query::{Alias, CommonTableExpression, WithClause};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseBackend, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, TransactionTrait,
};

use self::entities::{client_sample, client_system_time, stats_sample};
use self::group::GroupWriter;
use crate::domain::scrape::Snapshot;
use crate::domain::stats::{HistoryQuery, StatsSample};
use crate::domain::{ClientBatch, StatsMetric};
use crate::error::{MetricsError, MetricsResult};

/// Rows per insert statement: 12 columns × 2000 stays under SQLite's and
/// Postgres's bind-parameter limits.
const ROWS_PER_INSERT: usize = 2000;

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
        let samples: Vec<client_sample::ActiveModel> = batch
            .samples
            .iter()
            .map(|s| client_sample::ActiveModel {
                player_id: Set(batch.player_id),
                client_version: Set(batch.client_version.clone()),
                device_class: Set(batch.device_class.clone()),
                recorded_at_ms: Set(now_ms),
                frame_time_ms: Set(s.frame_time_ms),
                gc_collections: Set(s.gc_collections),
                gc_pause_ms: Set(s.gc_pause_ms),
                memory_mb: Set(s.memory_mb),
                input_latency_ms: Set(s.input_latency_ms),
                event_dispatch_ms: Set(s.event_dispatch_ms),
                gc_alloc_bytes: Set(s.gc_alloc_bytes),
                ..Default::default()
            })
            .collect();
        let systems: Vec<client_system_time::ActiveModel> = batch
            .samples
            .iter()
            .flat_map(|s| s.systems.iter())
            .map(|(name, ms)| client_system_time::ActiveModel {
                client_version: Set(batch.client_version.clone()),
                device_class: Set(batch.device_class.clone()),
                system: Set(name.clone()),
                recorded_at_ms: Set(now_ms),
                update_ms: Set(*ms),
                ..Default::default()
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

/// Stores upload rows: one statement when they fit in one insert per
/// table (on SQLite without system times), else one transaction of
/// chunked inserts.
async fn insert_rows(
    db: &DatabaseConnection,
    samples: Vec<client_sample::ActiveModel>,
    systems: Vec<client_system_time::ActiveModel>,
) -> MetricsResult<()> {
    let fits = samples.len() <= ROWS_PER_INSERT && systems.len() <= ROWS_PER_INSERT;
    if fits && systems.is_empty() {
        client_sample::Entity::insert_many(samples)
            .exec_without_returning(db)
            .await?;
        return Ok(());
    }
    if fits && db.get_database_backend() == DatabaseBackend::Postgres {
        // Both inserts in one statement: atomic without BEGIN and
        // COMMIT, one round trip. A full chunk of each (11 and 5
        // columns) stays under Postgres's 65,535 bind parameters.
        let first = CommonTableExpression::new()
            .query(client_sample::Entity::insert_many(samples).into_query())
            .table_name(Alias::new("stored_samples"))
            .to_owned();
        let both = WithClause::new()
            .cte(first)
            .to_owned()
            .query(client_system_time::Entity::insert_many(systems).into_query());
        db.execute(&both).await?;
        return Ok(());
    }
    insert_in_transaction(db, samples, systems).await
}

/// Stores a batch's rows in one transaction, in chunks of
/// [`ROWS_PER_INSERT`].
async fn insert_in_transaction(
    db: &DatabaseConnection,
    samples: Vec<client_sample::ActiveModel>,
    systems: Vec<client_system_time::ActiveModel>,
) -> MetricsResult<()> {
    let txn = db.begin().await?;
    for chunk in samples.chunks(ROWS_PER_INSERT) {
        client_sample::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await?;
    }
    for chunk in systems.chunks(ROWS_PER_INSERT) {
        client_system_time::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(&txn)
            .await?;
    }
    txn.commit().await?;
    Ok(())
}
