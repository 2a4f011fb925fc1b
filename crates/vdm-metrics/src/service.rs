//! The metrics service's use cases: check a client batch (domain), store it
//! (store) and record it in the process's Prometheus histograms; percentiles
//! of stored samples. Transport-free: `grpc.rs` converts protobuf messages.

use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use tracing::instrument;

use crate::domain::budgets::{Budget, BudgetBoard, BudgetState, Verdict};
use crate::domain::labels::device_label;
use crate::domain::stats::{HistoryQuery, StatsSample};
use crate::domain::{ClientBatch, ClientBatchInput, LabelCap, Percentiles, StatsMetric, percentiles};
use crate::error::{MetricsError, MetricsResult};
use crate::store::MetricsStore;

/// Distinct client versions kept as label values; newer ones are `other`.
pub const MAX_VERSION_LABELS: usize = 20;
/// Distinct system names kept as label values; newer ones are `other`.
pub const MAX_SYSTEM_LABELS: usize = 64;

/// Client telemetry and backend stats, backed by the database and the
/// process's recorder.
#[derive(Clone)]
pub struct MetricsService {
    store: MetricsStore,
    labels: Arc<Mutex<Labels>>,
    latest: Arc<RwLock<Vec<StatsSample>>>,
    scrape_interval: Duration,
    budgets: Arc<Mutex<BudgetBoard>>,
}

/// The label values admitted so far. A std mutex: held only to look up or
/// insert a string, never across an await.
struct Labels {
    versions: LabelCap,
    systems: LabelCap,
}

impl MetricsService {
    /// Builds the service over a store; `scrape_interval` is reported with
    /// the stats so readers know how fresh they are.
    pub fn new(store: MetricsStore, scrape_interval: Duration, budgets: Vec<Budget>) -> MetricsService {
        let board = BudgetBoard::new(budgets, vdm_kit::now_ms());
        record_budget_gauges(board.states());
        MetricsService {
            store,
            labels: Arc::new(Mutex::new(Labels {
                versions: LabelCap::new(MAX_VERSION_LABELS),
                systems: LabelCap::new(MAX_SYSTEM_LABELS),
            })),
            latest: Arc::new(RwLock::new(Vec::new())),
            scrape_interval,
            budgets: Arc::new(Mutex::new(board)),
        }
    }

    /// Judges every budget on a round's samples (and the stored client
    /// frame times, when a budget needs them), and updates the
    /// `vdm_budget_*` gauges.
    #[instrument(skip_all)]
    pub async fn evaluate_budgets(&self, samples: &[StatsSample]) {
        let needs_frames = self
            .budgets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .needs_client_frame_time();
        let client_frame_p95 = if needs_frames {
            match self.store.frame_times(None).await {
                Ok(mut values) => {
                    values.sort_by(f64::total_cmp);
                    percentiles(&values).p95
                }
                Err(err) => {
                    tracing::warn!(error = %err, "client frame times unavailable for the budgets");
                    None
                }
            }
        } else {
            None
        };
        let states = {
            let mut board = self.budgets.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let before: Vec<Verdict> = board.states().iter().map(|s| s.verdict).collect();
            board.evaluate(samples, client_frame_p95, vdm_kit::now_ms());
            for (state, before) in board.states().iter().zip(before) {
                if state.verdict != before {
                    tracing::info!(
                        budget = %state.budget.name,
                        from = before.name(),
                        to = state.verdict.name(),
                        value = ?state.value,
                        min = ?state.budget.min,
                        max = ?state.budget.max,
                        reason = %state.reason,
                        "budget state changed"
                    );
                }
            }
            board.states().to_vec()
        };
        record_budget_gauges(&states);
    }

    /// Every budget and its verdict at the last evaluation.
    pub fn budgets(&self) -> Vec<BudgetState> {
        self.budgets
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .states()
            .to_vec()
    }

    /// Makes a scrape round's samples the current stats.
    pub fn publish_round(&self, samples: Vec<StatsSample>) {
        // A std lock: held only to swap a vector, never across an await.
        *self.latest.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = samples;
    }

    /// The newest sample of every target (empty before the first round),
    /// and the scrape interval.
    pub fn stats(&self) -> (Vec<StatsSample>, Duration) {
        let latest = self
            .latest
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone();
        (latest, self.scrape_interval)
    }

    /// Stores a scrape round's samples.
    #[instrument(skip_all, fields(samples = samples.len()))]
    pub async fn store_samples(&self, samples: &[StatsSample]) -> MetricsResult<()> {
        self.store.insert_samples(samples).await
    }

    /// Deletes the samples taken before `cutoff_ms` (the retention).
    #[instrument(skip_all)]
    pub async fn delete_samples_before(&self, cutoff_ms: i64) -> MetricsResult<u64> {
        self.store.delete_samples_before(cutoff_ms).await
    }

    /// Stored samples of one service (or all) in a range, oldest first,
    /// and whether older ones of the range were left out.
    #[instrument(skip_all, fields(service = service))]
    pub async fn stats_history(
        &self,
        service: &str,
        from_ms: Option<i64>,
        to_ms: Option<i64>,
    ) -> MetricsResult<(Vec<StatsSample>, bool)> {
        let query = HistoryQuery::parse(service, from_ms, to_ms).map_err(MetricsError::Invalid)?;
        self.store.history(&query).await
    }

    /// Answers whether the database is reachable.
    pub async fn ready(&self) -> MetricsResult<()> {
        self.store.ping().await
    }

    /// Checks, stores and records one batch; returns how many samples.
    #[instrument(skip_all, fields(player.id = input.player_id, samples = input.samples.len()))]
    pub async fn record_client_samples(&self, input: ClientBatchInput, now_ms: i64) -> MetricsResult<usize> {
        let batch = ClientBatch::parse(input).map_err(MetricsError::Invalid)?;
        self.store.insert_batch(&batch, now_ms).await?;
        self.record_histograms(&batch);
        Ok(batch.samples.len())
    }

    /// Percentiles of one field of the newest stored samples (`metric`,
    /// frame time when empty), or of one system's update times; optionally
    /// of one client version.
    #[instrument(skip_all, fields(metric = tracing::field::Empty))]
    pub async fn client_stats(
        &self,
        metric: &str,
        system: Option<&str>,
        client_version: Option<&str>,
    ) -> MetricsResult<(StatsMetric, Percentiles)> {
        if let Some(system) = system
            && (system.len() > 32
                || !system
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        {
            return Err(MetricsError::Invalid(
                "system must be 1 to 32 characters of [a-z0-9_]".to_owned(),
            ));
        }
        if let Some(version) = client_version
            && version.len() > 32
        {
            return Err(MetricsError::Invalid(
                "client_version must be at most 32 characters".to_owned(),
            ));
        }
        let metric = StatsMetric::parse(metric, system).map_err(MetricsError::Invalid)?;
        tracing::Span::current().record("metric", metric.name());
        let mut values = match system {
            Some(system) => self.store.system_times(system, client_version).await?,
            None => self.store.sample_values(metric, client_version).await?,
        };
        values.sort_by(f64::total_cmp);
        Ok((metric, percentiles(&values)))
    }

    fn record_histograms(&self, batch: &ClientBatch) {
        let device = device_label(&batch.device_class).to_owned();
        let (version, systems) = {
            let mut labels = self.labels.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
            let version = labels.versions.admit(&batch.client_version);
            let mut names: Vec<(String, String)> = Vec::new();
            for sample in &batch.samples {
                for name in sample.systems.keys() {
                    if !names.iter().any(|(n, _)| n == name) {
                        names.push((name.clone(), labels.systems.admit(name)));
                    }
                }
            }
            (version, names)
        };
        // One handle per system of the batch, not one lookup per sample.
        let systems: Vec<(String, metrics::Histogram)> = systems
            .into_iter()
            .map(|(name, label)| {
                let histogram = metrics::histogram!("vdm_client_system_update_seconds", "system" => label);
                (name, histogram)
            })
            .collect();
        let frame = metrics::histogram!(
            "vdm_client_frame_time_seconds",
            "client_version" => version.clone(),
            "device_class" => device.clone()
        );
        let gc_pause = metrics::histogram!(
            "vdm_client_gc_pause_seconds",
            "client_version" => version.clone(),
            "device_class" => device.clone()
        );
        let input_latency = metrics::histogram!(
            "vdm_client_input_latency_seconds",
            "client_version" => version.clone(),
            "device_class" => device.clone()
        );
        let dispatch = metrics::histogram!(
            "vdm_client_event_dispatch_seconds",
            "client_version" => version.clone(),
            "device_class" => device.clone()
        );
        let gc_alloc = metrics::histogram!(
            "vdm_client_gc_alloc_bytes",
            "client_version" => version,
            "device_class" => device
        );
        // Unity reports milliseconds; Prometheus families are in seconds.
        let seconds = |ms: f64| ms / 1000.0;
        for sample in &batch.samples {
            frame.record(seconds(sample.frame_time_ms));
            if let Some(v) = sample.gc_pause_ms {
                gc_pause.record(seconds(v));
            }
            if let Some(v) = sample.input_latency_ms {
                input_latency.record(seconds(v));
            }
            if let Some(v) = sample.event_dispatch_ms {
                dispatch.record(seconds(v));
            }
            if let Some(bytes) = sample.gc_alloc_bytes {
                // At most 2^30 (the upload bound): exact as f64.
                gc_alloc.record(bytes as f64);
            }
            for (name, ms) in &sample.systems {
                // Every name of the batch has its handle (collected above).
                if let Some((_, histogram)) = systems.iter().find(|(n, _)| n == name) {
                    histogram.record(seconds(*ms));
                }
            }
        }
        metrics::counter!("vdm_client_samples_total").increment(batch.samples.len() as u64);
    }
}

/// `vdm_budget_violated` (1 or 0), `vdm_budget_value` (NaN without data),
/// `vdm_budget_limit` (the max, for budgets with one) and `vdm_budget_floor`
/// (the min, for budgets with one), by budget.
fn record_budget_gauges(states: &[BudgetState]) {
    for state in states {
        let name = state.budget.name.clone();
        let violated = if state.verdict == Verdict::Violated { 1.0 } else { 0.0 };
        metrics::gauge!("vdm_budget_violated", "budget" => name.clone()).set(violated);
        metrics::gauge!("vdm_budget_value", "budget" => name.clone()).set(state.value.unwrap_or(f64::NAN));
        if let Some(max) = state.budget.max {
            metrics::gauge!("vdm_budget_limit", "budget" => name.clone()).set(max);
        }
        if let Some(min) = state.budget.min {
            metrics::gauge!("vdm_budget_floor", "budget" => name).set(min);
        }
    }
}
