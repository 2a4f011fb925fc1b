//! Prometheus metrics: one recorder per process, rendered as text on
//! `/metrics`, plus gauges read at scrape time (process memory and CPU,
//! database pools).
//!
//! Names follow Prometheus conventions: base units in the name, `_total` on
//! counters, labels by route template or RPC method, never by raw path or id.

use std::sync::{Arc, Mutex, OnceLock};

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sea_orm::{DatabaseConnection, DbBackend};

/// Latency histogram buckets in seconds: fine below 10 ms where the cached
/// paths live, coarse up to the request timeout.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
static POOLS: Mutex<Vec<(&'static str, Arc<DatabaseConnection>)>> = Mutex::new(Vec::new());

/// Installs the process-wide recorder (once; later calls reuse it) and
/// returns the handle that renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_ms".to_owned()), CLIENT_MS_BUCKETS))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_batch_size".to_owned()), BATCH_BUCKETS))
                .map(|b| b.build_recorder());
            match recorder {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    // Another recorder may be installed (a test harness);
                    // ours then only renders what it is given.
                    let _ = metrics::set_global_recorder(recorder);
                    spawn_upkeep(handle.clone());
                    handle
                }
                Err(err) => {
                    // The bucket lists are constants; this cannot fail at run time.
                    tracing::error!(error = %err, "prometheus recorder setup failed");
                    PrometheusBuilder::new().build_recorder().handle()
                }
            }
        })
        .clone()
}

/// Batch sizes (items per batch).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Client-side timings are milliseconds (as Unity reports them); buckets
/// around a 60 fps frame budget.
const CLIENT_MS_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 12.0, 16.7, 20.0, 25.0, 33.3, 50.0, 100.0, 250.0];

/// Renders every metric of the process in Prometheus text format.
pub fn render() -> String {
    record_process_gauges();
    record_pool_gauges();
    install().render()
}

/// Counts one request in a gauge for as long as it lives: incremented when
/// built, decremented when dropped, so a request whose future is dropped
/// (a client that went away) is not counted forever.
#[derive(Debug)]
pub struct InFlight(metrics::Gauge);

impl InFlight {
    /// Counts one more request in `gauge`.
    pub fn new(gauge: metrics::Gauge) -> InFlight {
        gauge.increment(1.0);
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Adds a database pool to the gauges read at scrape time.
pub(crate) fn register_db_pool(name: &'static str, db: Arc<DatabaseConnection>) {
    let mut pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    pools.retain(|(n, _)| *n != name);
    pools.push((name, db));
}

fn spawn_upkeep(handle: PrometheusHandle) {
    // Histograms drain into the handle only when it runs upkeep; without a
    // scrape for a long time that buffer would grow.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        runtime.spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        });
    }
}

fn record_pool_gauges() {
    let pools = POOLS.lock().unwrap_or_else(|e| e.into_inner());
    for (name, db) in pools.iter() {
        let (size, idle, max) = match db.get_database_backend() {
            DbBackend::Postgres => {
                let pool = db.get_postgres_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
            DbBackend::Sqlite => {
                let pool = db.get_sqlite_connection_pool();
                (pool.size(), pool.num_idle(), pool.options().get_max_connections())
            }
            _ => continue,
        };
        let name = *name;
        metrics::gauge!("vdm_db_pool_connections", "pool" => name, "state" => "open").set(f64::from(size));
        metrics::gauge!("vdm_db_pool_connections", "pool" => name, "state" => "idle").set(idle as f64);
        metrics::gauge!("vdm_db_pool_connections", "pool" => name, "state" => "in_use")
            .set(f64::from(size).max(idle as f64) - idle as f64);
        metrics::gauge!("vdm_db_pool_max_connections", "pool" => name).set(f64::from(max));
    }
}

/// Reads RSS and CPU time from `/proc/self` (Linux; elsewhere nothing is set).
fn record_process_gauges() {
    if let Some(rss) = resident_memory_bytes() {
        metrics::gauge!("process_resident_memory_bytes").set(rss as f64);
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name; utime and stime are
        // the 12th and 13th of those, in clock ticks (100 per second on Linux).
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
            metrics::gauge!("process_cpu_seconds_total").set((ticks(11) + ticks(12)) / 100.0);
            if let Some(threads) = fields.get(17).and_then(|v| v.parse::<f64>().ok()) {
                metrics::gauge!("process_threads").set(threads);
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        metrics::gauge!("process_open_fds").set(dir.count() as f64);
    }
}

/// Returns the process's resident set size in bytes (Linux only).
pub fn resident_memory_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}
