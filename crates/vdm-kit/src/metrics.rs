//! Prometheus metrics: one recorder per process, rendered as text on
//! `/metrics`, plus values read at scrape time (the `process_*` families
//! through `metrics-process`, database pools).
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
                // A prefix match wins over a suffix match, so the client's
                // timings get frame-sized buckets rather than server latencies'.
                .and_then(|b| b.set_buckets_for_metric(Matcher::Prefix("vdm_client_".to_owned()), CLIENT_BUCKETS))
                // A full name wins over a prefix: allocations are bytes.
                .and_then(|b| {
                    b.set_buckets_for_metric(Matcher::Full("vdm_client_gc_alloc_bytes".to_owned()), ALLOC_BUCKETS)
                })
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_batch_size".to_owned()), BATCH_BUCKETS))
                .map(|b| b.build_recorder());
            match recorder {
                Ok(recorder) => {
                    let handle = recorder.handle();
                    // Another recorder may be installed (a test harness);
                    // ours then only renders what it is given.
                    let _ = metrics::set_global_recorder(recorder);
                    describe();
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

/// What kind of family a metric is, for its description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only grows.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution in buckets.
    Histogram,
}

/// Every metric family a vdm process exports, with the `# HELP` text
/// `/metrics` gives it. A family missing here renders without HELP; the
/// end-to-end suite fails on that (`negotiation::every_metric_family_has_help`).
pub const FAMILIES: &[(&str, Kind, &str)] = &[
    (
        "http_server_requests_total",
        Kind::Counter,
        "HTTP requests answered, by method, route template and status",
    ),
    (
        "http_server_request_duration_seconds",
        Kind::Histogram,
        "Time to answer an HTTP request, by method and route template",
    ),
    (
        "vdm_http_requests_in_flight",
        Kind::Gauge,
        "HTTP requests being handled now",
    ),
    (
        "grpc_server_handled_total",
        Kind::Counter,
        "gRPC calls a server answered, by method and status code",
    ),
    (
        "grpc_server_handling_seconds",
        Kind::Histogram,
        "Time a server took to answer a gRPC call, by method",
    ),
    (
        "grpc_client_handled_total",
        Kind::Counter,
        "gRPC calls made, by method and status code",
    ),
    (
        "grpc_client_handling_seconds",
        Kind::Histogram,
        "Time a gRPC call took, as its caller saw it, by method",
    ),
    (
        "vdm_rpc_requests_in_flight",
        Kind::Gauge,
        "gRPC calls being handled now",
    ),
    (
        "vdm_grpc_client_circuit_open",
        Kind::Gauge,
        "1 while calls to a service address fail fast (circuit open)",
    ),
    (
        "vdm_grpc_client_circuit_rejections_total",
        Kind::Counter,
        "Calls failed fast by an open circuit, by service address",
    ),
    (
        "process_cpu_seconds_total",
        Kind::Counter,
        "User and system CPU time used by the process since it started, in whole seconds",
    ),
    (
        "process_resident_memory_bytes",
        Kind::Gauge,
        "Resident memory of the process, in bytes",
    ),
    (
        "process_virtual_memory_bytes",
        Kind::Gauge,
        "Virtual memory of the process, in bytes",
    ),
    (
        "process_virtual_memory_max_bytes",
        Kind::Gauge,
        "Largest virtual memory the process may map, in bytes",
    ),
    (
        "process_open_fds",
        Kind::Gauge,
        "Open file descriptors of the process (sockets included)",
    ),
    (
        "process_max_fds",
        Kind::Gauge,
        "Largest number of file descriptors the process may open",
    ),
    (
        "process_start_time_seconds",
        Kind::Gauge,
        "When the process started, in seconds since the Unix epoch",
    ),
    ("process_threads", Kind::Gauge, "OS threads of the process"),
    (
        "vdm_db_pool_connections",
        Kind::Gauge,
        "Database connections of a pool, by pool and state",
    ),
    (
        "vdm_db_pool_max_connections",
        Kind::Gauge,
        "Largest size of a database pool, by pool",
    ),
    (
        "vdm_db_query_duration_seconds",
        Kind::Histogram,
        "Time a database statement took, by pool",
    ),
    (
        "vdm_cache_requests_total",
        Kind::Counter,
        "Cache lookups, by cache and result (hit, miss, error)",
    ),
    (
        "vdm_edge_cache_requests_total",
        Kind::Counter,
        "Gateway edge cache lookups, by resource and result (hit, miss, joined: waited for a fill in flight)",
    ),
    (
        "vdm_edge_cache_invalidations_total",
        Kind::Counter,
        "Gateway edge cache drops on a change, by kind (quest, npc, region, faction, all)",
    ),
    (
        "vdm_edge_cache_evictions_total",
        Kind::Counter,
        "Gateway edge cache entries evicted, by cause (size: over the byte budget, expired: past the TTL)",
    ),
    (
        "vdm_edge_cache_refreshes_total",
        Kind::Counter,
        "Gateway edge cache entries renewed in the background by a hit past their refresh point, by resource",
    ),
    (
        "vdm_edge_cache_bytes",
        Kind::Gauge,
        "Bytes of bodies the gateway edge cache holds",
    ),
    (
        "vdm_edge_front_answers_total",
        Kind::Counter,
        "Gateway edge cache hits answered before the router (the front), by status (200, 304, 429)",
    ),
    (
        "vdm_events_published_total",
        Kind::Counter,
        "Events published on the event bus, by event",
    ),
    (
        "vdm_event_publish_errors_total",
        Kind::Counter,
        "Events that could not be published to Redis",
    ),
    (
        "vdm_event_subscription_errors_total",
        Kind::Counter,
        "Times a gateway lost its event stream connection and reconnected",
    ),
    (
        "vdm_event_history_trimmed_total",
        Kind::Counter,
        "Events trimmed from the Redis event stream by age",
    ),
    (
        "vdm_bootstrap_missing_total",
        Kind::Counter,
        "Bootstrap answers without a part, by part",
    ),
    (
        "vdm_rate_limited_total",
        Kind::Counter,
        "Requests refused with 429, by class (read, write, auth, in_flight)",
    ),
    (
        "vdm_rate_limit_keys",
        Kind::Gauge,
        "Callers holding a rate-limit quota after the last sweep",
    ),
    (
        "vdm_refresh_reuse_total",
        Kind::Counter,
        "Spent refresh tokens presented again (each revoked its session)",
    ),
    (
        "vdm_sessions_revoked",
        Kind::Gauge,
        "Session revocations this gateway replica holds",
    ),
    ("vdm_ws_connections", Kind::Gauge, "Open WebSockets"),
    (
        "vdm_ws_messages_total",
        Kind::Counter,
        "WebSocket messages, by direction",
    ),
    (
        "vdm_ws_resumes_total",
        Kind::Counter,
        "Socket reconnects that asked to resume, by result",
    ),
    (
        "vdm_ws_slow_consumers_total",
        Kind::Counter,
        "Sockets closed for not reading their pushes",
    ),
    (
        "vdm_ws_events_dropped_total",
        Kind::Counter,
        "Events a gateway missed because it fell behind the event bus",
    ),
    (
        "vdm_ws_checkpoint_errors_total",
        Kind::Counter,
        "Socket session checkpoints that could not be stored",
    ),
    (
        "vdm_client_samples_total",
        Kind::Counter,
        "Client performance samples received",
    ),
    (
        "vdm_client_frame_time_seconds",
        Kind::Histogram,
        "Client frame time, in seconds (Unity reports milliseconds; converted)",
    ),
    (
        "vdm_client_gc_pause_seconds",
        Kind::Histogram,
        "Client garbage collection pauses, in seconds",
    ),
    (
        "vdm_client_input_latency_seconds",
        Kind::Histogram,
        "Client input latency, in seconds",
    ),
    (
        "vdm_client_event_dispatch_seconds",
        Kind::Histogram,
        "Client event dispatch time, in seconds",
    ),
    (
        "vdm_client_gc_alloc_bytes",
        Kind::Histogram,
        "Bytes a client frame allocated on the managed (GC) heap (Unity's GC Allocated In Frame)",
    ),
    (
        "vdm_client_system_update_seconds",
        Kind::Histogram,
        "Client per-system update time, in seconds, by system",
    ),
    (
        "vdm_rumor_knowledge_reads_total",
        Kind::Counter,
        "Reads of who knows what for a talk, by holder (npc, player) and source (memo: kept by this replica; database)",
    ),
    (
        "vdm_metrics_client_inserts_total",
        Kind::Counter,
        "Inserts that stored client telemetry uploads; uploads that arrive together share one (compare with the RecordClientSamples calls)",
    ),
    (
        "vdm_metrics_scrape_duration_seconds",
        Kind::Histogram,
        "Time the stats scraper took to read a target, by target",
    ),
    (
        "vdm_metrics_scrape_failures_total",
        Kind::Counter,
        "Stats scrapes of a target that failed, by target",
    ),
    (
        "vdm_metrics_target_up",
        Kind::Gauge,
        "1 when the stats scraper's last read of a target succeeded",
    ),
    (
        "vdm_budget_value",
        Kind::Gauge,
        "The measured value a performance budget judges, by budget",
    ),
    (
        "vdm_budget_limit",
        Kind::Gauge,
        "The max (ceiling) of a performance budget, by budget; absent for a budget with only a min",
    ),
    (
        "vdm_budget_floor",
        Kind::Gauge,
        "The min (floor) of a performance budget, by budget; absent for a budget with only a max",
    ),
    (
        "vdm_budget_violated",
        Kind::Gauge,
        "1 while a performance budget is broken, by budget",
    ),
    (
        "vdm_rumor_transform_asks_total",
        Kind::Counter,
        "Rumor retellings asked of the transform pipeline, by result (cached, joined, transformed, ...)",
    ),
    (
        "vdm_rumor_transform_fallbacks_total",
        Kind::Counter,
        "Retellings the local transformer made in the upstream's place, by reason",
    ),
    (
        "vdm_rumor_transform_batch_size",
        Kind::Histogram,
        "Retellings per upstream batch",
    ),
    (
        "vdm_rumor_transform_duration_seconds",
        Kind::Histogram,
        "Time to make a retelling, by transformer",
    ),
    (
        "vdm_rumor_llm_requests_total",
        Kind::Counter,
        "Calls to the LLM upstream, by result",
    ),
    (
        "vdm_rumor_llm_request_duration_seconds",
        Kind::Histogram,
        "Time an LLM upstream call took",
    ),
    (
        "vdm_rumor_tellings_total",
        Kind::Counter,
        "Rumor retellings stored, by how they came about (tick, spread, talk)",
    ),
    (
        "vdm_rumor_talks_total",
        Kind::Counter,
        "Players talking to an NPC, by the NPC's attitude from the player's standing with its faction (hostile, neutral, friendly)",
    ),
    (
        "vdm_gateway_standings_reads_total",
        Kind::Counter,
        "Faction standings an NPC talk used, by source (replica: reused by this gateway until player.updated or 5 s; service: asked of the player service)",
    ),
    (
        "vdm_quest_player_quest_reads_total",
        Kind::Counter,
        "Reads of a player's quests for a list (the bootstrap's active quests), by source (replica: kept by this replica; database)",
    ),
    (
        "vdm_player_profile_reads_total",
        Kind::Counter,
        "Reads of a player's profile (bootstrap, GET /v1/me), by source (replica: kept by this replica; cache: the shared cache or the database)",
    ),
    (
        "vdm_player_inventory_reads_total",
        Kind::Counter,
        "Reads of a player's inventory (GET /v1/me/inventory), by source (replica: kept by this replica; database)",
    ),
    (
        "vdm_npc_disposition_reads_total",
        Kind::Counter,
        "Reads of a player's dispositions in a region (every bootstrap), by source (replica: kept by this replica; database)",
    ),
    (
        "vdm_quest_definition_reads_total",
        Kind::Counter,
        "Quest definitions the quest service's own writes and lists read, by source (replica: reused for up to 2 s; cache: read through the shared cache)",
    ),
    (
        "vdm_quest_write_bases_total",
        Kind::Counter,
        "Player quest write attempts of the quest service, by where they started (remembered: the row this replica last wrote; database: read first)",
    ),
    (
        "vdm_rumor_npc_reads_total",
        Kind::Counter,
        "NPC reads of the rumor service (talks, new rumors), by source (memo: kept since an earlier read; npc_service: asked over gRPC)",
    ),
    (
        "vdm_rumor_tick_duration_seconds",
        Kind::Histogram,
        "Time a rumor spreading tick took",
    ),
    (
        "vdm_outbox_pending",
        Kind::Gauge,
        "Outbox rows (quest rewards and dispositions owed) waiting for delivery",
    ),
    (
        "vdm_npc_disposition_replays_total",
        Kind::Counter,
        "Disposition adjustments whose idempotency key was applied before (answered, not applied again)",
    ),
    (
        "vdm_outbox_delivered_total",
        Kind::Counter,
        "Outbox rows delivered and acknowledged, by kind",
    ),
    (
        "vdm_outbox_failed_total",
        Kind::Counter,
        "Outbox rows refused for good by their receiver (not retried), by kind",
    ),
    (
        "vdm_outbox_retries_total",
        Kind::Counter,
        "Outbox deliveries that failed and will be tried again, by kind",
    ),
    (
        "vdm_outbox_delivery_seconds",
        Kind::Histogram,
        "Time from a completion to its outbox row's acknowledged delivery, by kind",
    ),
];

/// Gives every family of [`FAMILIES`] its HELP text.
fn describe() {
    for (name, kind, help) in FAMILIES {
        match kind {
            Kind::Counter => metrics::describe_counter!(*name, *help),
            Kind::Gauge => metrics::describe_gauge!(*name, *help),
            Kind::Histogram => metrics::describe_histogram!(*name, *help),
        }
    }
}

/// Batch sizes (items per batch).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];

/// Bytes allocated per client frame: zero (the goal of a steady frame),
/// then powers of four from 1 KiB to 64 MiB.
const ALLOC_BUCKETS: &[f64] = &[
    0.0,
    1024.0,
    4096.0,
    16_384.0,
    65_536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    16_777_216.0,
    67_108_864.0,
];

/// Client-side timings in seconds; buckets around a 60 fps frame budget
/// (16.7 ms) and a 30 fps one (33.3 ms).
const CLIENT_BUCKETS: &[f64] = &[
    0.001, 0.002, 0.004, 0.008, 0.012, 0.0167, 0.020, 0.025, 0.0333, 0.050, 0.100, 0.250,
];

/// Renders every metric of the process in Prometheus text format.
pub fn render() -> String {
    // Installed first: values set before it would go nowhere.
    let handle = install();
    record_process();
    record_pool_gauges();
    handle.render()
}

/// [`render`] on a blocking thread: rendering every histogram of a busy
/// process takes a millisecond or more, which on an async worker would
/// stall the requests queued behind it (a scrape showed in the p99 of
/// cached reads).
pub async fn render_off_workers() -> String {
    match tokio::task::spawn_blocking(render).await {
        Ok(text) => text,
        Err(err) => {
            tracing::error!(error = %err, "rendering the metrics failed");
            String::new()
        }
    }
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

/// The counter `name` with these label pairs, all `'static`, resolved in
/// the recorder once per thread and then kept: a lookup by labels builds
/// and hashes a key and locks a registry shard, which costs more than the
/// rest of a cached read's bookkeeping. For counters bumped on every
/// request whose label values come from a small fixed set.
pub fn static_counter<const N: usize>(
    name: &'static str,
    labels: [(&'static str, &'static str); N],
) -> metrics::Counter {
    /// Kept by the addresses of the name and the label values: all are
    /// `'static`, so equal addresses mean equal keys (an equal key at
    /// other addresses only resolves again, to the same counter).
    type Kept = (usize, [usize; MAX_LABELS], metrics::Counter);
    const MAX_LABELS: usize = 4;
    thread_local! {
        static COUNTERS: std::cell::RefCell<Vec<Kept>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let register = || {
        let pairs: Vec<metrics::Label> = labels
            .iter()
            .map(|&(k, v)| metrics::Label::from_static_parts(k, v))
            .collect();
        metrics::counter!(name, pairs)
    };
    if N > MAX_LABELS {
        return register();
    }
    let mut values = [0; MAX_LABELS];
    for (slot, (_, value)) in values.iter_mut().zip(labels.iter()) {
        *slot = value.as_ptr() as usize;
    }
    let name_at = name.as_ptr() as usize;
    COUNTERS.with_borrow_mut(|kept| {
        if let Some((_, _, counter)) = kept.iter().find(|(n, v, _)| *n == name_at && *v == values) {
            return counter.clone();
        }
        let counter = register();
        kept.push((name_at, values, counter.clone()));
        counter
    })
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
                // Off the async workers, for the reason `render_off_workers`
                // gives: it drains every histogram's samples since the last run.
                let handle = handle.clone();
                if tokio::task::spawn_blocking(move || handle.run_upkeep()).await.is_err() {
                    tracing::error!("metrics upkeep failed");
                }
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

/// Sets the `process_*` families (CPU, memory, file descriptors, threads,
/// start time) from the operating system, through `metrics-process`.
fn record_process() {
    static PROCESS: OnceLock<metrics_process::Collector> = OnceLock::new();
    // Its own `describe` is not called: the HELP texts are in FAMILIES.
    PROCESS.get_or_init(metrics_process::Collector::default).collect();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_are_named_once_and_by_the_conventions() {
        let mut names: Vec<&str> = FAMILIES.iter().map(|(name, _, _)| *name).collect();
        names.sort_unstable();
        let count = names.len();
        names.dedup();
        assert_eq!(names.len(), count, "a family is described twice");
        for (name, kind, help) in FAMILIES {
            assert!(!help.is_empty(), "{name}");
            if *kind == Kind::Counter {
                assert!(name.ends_with("_total"), "{name}: counters end in _total");
            }
            // Base units only: seconds and bytes, never milliseconds.
            assert!(!name.ends_with("_ms") && !name.contains("_ms_"), "{name}: use seconds");
        }
    }

    #[tokio::test]
    async fn process_families_are_described_and_cpu_time_is_a_counter() {
        let text = render();
        assert!(text.contains("# TYPE process_cpu_seconds_total counter"), "{text}");
        for family in [
            "process_cpu_seconds_total",
            "process_resident_memory_bytes",
            "process_open_fds",
        ] {
            assert!(
                text.contains(&format!("# HELP {family} ")),
                "{family} has no HELP: {text}"
            );
            assert!(
                text.lines().any(|line| line.starts_with(&format!("{family} "))),
                "{family} has no value: {text}"
            );
        }
    }
}
