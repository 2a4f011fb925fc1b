//! Performance budgets: the budgets file (JSON), each budget's current
//! state from a scrape round, and the same budgets as Prometheus alert
//! rules. No IO: the service reads the file and keeps the states.

use serde::{Deserialize, Serialize};

use super::stats::StatsSample;
use super::targets::valid_service_name;

/// The budgets file of the repository (`deploy/budgets.json`), compiled
/// in; `VDM_BUDGETS_FILE` replaces it.
pub const DEFAULT_BUDGETS: &str = include_str!("../../../../deploy/budgets.json");

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetMetric {
    /// Median latency of one service's requests in the scrape window.
    P50Ms,
    /// 99th percentile latency of one service's requests in the window.
    P99Ms,
    /// Share of one service's requests that failed (5xx, server-side gRPC
    /// codes) in the window.
    ErrorRatePercent,
    /// Resident memory of a service's process (of every one without a service).
    MemoryMb,
    /// CPU use of a service's process, in percent of one core.
    CpuPercent,
    /// 95th percentile of the frame times Unity clients uploaded.
    ClientFrameTimeP95Ms,
}

impl BudgetMetric {
    /// The metric's name in the file and in answers.
    pub fn name(self) -> &'static str {
        match self {
            BudgetMetric::P50Ms => "p50_ms",
            BudgetMetric::P99Ms => "p99_ms",
            BudgetMetric::ErrorRatePercent => "error_rate_percent",
            BudgetMetric::MemoryMb => "memory_mb",
            BudgetMetric::CpuPercent => "cpu_percent",
            BudgetMetric::ClientFrameTimeP95Ms => "client_frame_time_p95_ms",
        }
    }

    fn needs_service(self) -> bool {
        matches!(
            self,
            BudgetMetric::P50Ms | BudgetMetric::P99Ms | BudgetMetric::ErrorRatePercent
        )
    }
}

/// One budget: `metric` (of `service`) must stay at or below `max`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// `[a-z0-9_]`, unique: the `budget` label of the gauges and alerts.
    pub name: String,
    /// What is measured, for people.
    pub description: String,
    /// The scrape target (`gateway`, `quest`, ...); none: the worst of all
    /// (memory and CPU only; not for client metrics).
    #[serde(default)]
    pub service: Option<String>,
    /// What is limited.
    pub metric: BudgetMetric,
    /// The limit, in the metric's unit; above it the budget is violated.
    pub max: f64,
    /// How long the alert waits before firing (Prometheus duration, default `5m`).
    #[serde(default = "default_alert_for")]
    pub alert_for: String,
    /// The alert's severity, `warning` (default) or `critical`.
    #[serde(default = "default_severity")]
    pub severity: String,
}

fn default_alert_for() -> String {
    "5m".to_owned()
}

fn default_severity() -> String {
    "warning".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetsFile {
    #[serde(default)]
    #[allow(dead_code)]
    about: Option<String>,
    budgets: Vec<Budget>,
}

/// Reads and checks a budgets file; the error names the budget and field.
pub fn parse_budgets(text: &str) -> Result<Vec<Budget>, String> {
    let file: BudgetsFile = serde_json::from_str(text).map_err(|e| format!("not a budgets file: {e}"))?;
    let mut seen: Vec<&str> = Vec::new();
    for (i, b) in file.budgets.iter().enumerate() {
        let at = format!("budgets[{i}]");
        let name_ok = (1..=48).contains(&b.name.len())
            && b.name.starts_with(|c: char| c.is_ascii_lowercase())
            && b.name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if !name_ok {
            return Err(format!(
                "{at}.name must be 1 to 48 characters of [a-z0-9_], starting with a letter"
            ));
        }
        if seen.contains(&b.name.as_str()) {
            return Err(format!("{at}.name: {:?} is used twice", b.name));
        }
        seen.push(&b.name);
        if !(b.max.is_finite() && b.max > 0.0) {
            return Err(format!("{at}.max must be a positive number"));
        }
        match (&b.service, b.metric) {
            (Some(_), BudgetMetric::ClientFrameTimeP95Ms) => {
                return Err(format!("{at}.service: client metrics belong to no service"));
            }
            (None, metric) if metric.needs_service() => {
                return Err(format!("{at}.service is needed for {}", metric.name()));
            }
            (Some(service), _) if !valid_service_name(service) || service.contains('-') => {
                return Err(format!("{at}.service must be a service name such as quest"));
            }
            _ => {}
        }
        let (digits, unit) = b.alert_for.split_at(b.alert_for.len().saturating_sub(1));
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) || !["s", "m", "h"].contains(&unit) {
            return Err(format!("{at}.alert_for must be a duration such as 5m"));
        }
        if !["warning", "critical"].contains(&b.severity.as_str()) {
            return Err(format!("{at}.severity must be warning or critical"));
        }
        if b.description.trim().is_empty() || b.description.contains(['\n', '"', '{', '}']) {
            return Err(format!("{at}.description must be one line without quotes or braces"));
        }
    }
    Ok(file.budgets)
}

/// A budget's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// At or below the limit.
    Ok,
    /// Above the limit.
    Violated,
    /// Nothing to judge: no scrape yet, the target is down, or no request
    /// in the window.
    NoData,
}

impl Verdict {
    /// The verdict's name in answers.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Violated => "violated",
            Verdict::NoData => "no_data",
        }
    }
}

/// A budget and where it stands.
#[derive(Debug, Clone, PartialEq)]
pub struct BudgetState {
    /// The budget.
    pub budget: Budget,
    /// Its verdict at the last evaluation.
    pub verdict: Verdict,
    /// Since when the verdict holds (Unix ms).
    pub since_ms: i64,
    /// The value judged, when there was one.
    pub value: Option<f64>,
    /// When it was last evaluated (Unix ms; the start before the first).
    pub evaluated_at_ms: i64,
}

/// The states of every budget, updated each round.
#[derive(Debug, Clone)]
pub struct BudgetBoard {
    states: Vec<BudgetState>,
}

impl BudgetBoard {
    /// Every budget without data, since `now_ms`.
    pub fn new(budgets: Vec<Budget>, now_ms: i64) -> BudgetBoard {
        BudgetBoard {
            states: budgets
                .into_iter()
                .map(|budget| BudgetState {
                    budget,
                    verdict: Verdict::NoData,
                    since_ms: now_ms,
                    value: None,
                    evaluated_at_ms: now_ms,
                })
                .collect(),
        }
    }

    /// The current states, in file order.
    pub fn states(&self) -> &[BudgetState] {
        &self.states
    }

    /// Whether a budget needs the client frame time percentile.
    pub fn needs_client_frame_time(&self) -> bool {
        self.states
            .iter()
            .any(|s| s.budget.metric == BudgetMetric::ClientFrameTimeP95Ms)
    }

    /// Judges every budget on a round's samples and the clients' frame time
    /// p95; a verdict that changes starts a new `since`.
    pub fn evaluate(&mut self, samples: &[StatsSample], client_frame_p95: Option<f64>, now_ms: i64) {
        for state in &mut self.states {
            let value = value_of(&state.budget, samples, client_frame_p95);
            let verdict = match value {
                None => Verdict::NoData,
                Some(v) if v > state.budget.max => Verdict::Violated,
                Some(_) => Verdict::Ok,
            };
            if verdict != state.verdict {
                state.since_ms = now_ms;
                state.verdict = verdict;
            }
            state.value = value;
            state.evaluated_at_ms = now_ms;
        }
    }
}

/// The value a budget judges: the figure of its service's sample, or the
/// largest over every service that answered.
fn value_of(budget: &Budget, samples: &[StatsSample], client_frame_p95: Option<f64>) -> Option<f64> {
    if budget.metric == BudgetMetric::ClientFrameTimeP95Ms {
        return client_frame_p95;
    }
    samples
        .iter()
        .filter(|s| budget.service.as_ref().is_none_or(|name| *name == s.service))
        .filter_map(|s| s.snapshot.as_ref())
        .filter_map(|s| match budget.metric {
            BudgetMetric::P50Ms => s.p50_ms,
            BudgetMetric::P99Ms => s.p99_ms,
            BudgetMetric::ErrorRatePercent => s.error_percent,
            BudgetMetric::MemoryMb => s.memory_mb,
            BudgetMetric::CpuPercent => s.cpu_percent,
            BudgetMetric::ClientFrameTimeP95Ms => None,
        })
        .reduce(f64::max)
}

/// vdm processes by job name, as deploy/prometheus/alerts.yaml finds them:
/// `vdm` (`vdm all`) or `...vdm-<service>`.
const JOB: &str = r#"job=~"(.*-)?vdm(-.+)?""#;
/// The gateway's figures leave out probes, scrapes and unknown routes.
const API_ROUTES: &str = r#"route!~"/health|/ready|/metrics|unmatched""#;
/// gRPC codes that count as the server's failure (as the scraper counts them).
const GRPC_ERRORS: &str = r#"grpc_code=~"INTERNAL|UNAVAILABLE|UNKNOWN|DEADLINE_EXCEEDED|DATA_LOSS""#;

/// The PromQL expression that is true (non-empty) while `budget` is broken,
/// over a 5 minute window.
pub fn promql(budget: &Budget) -> String {
    let max = format_number(budget.max);
    let service = budget.service.as_deref().unwrap_or("");
    let job = if service.is_empty() {
        JOB.to_owned()
    } else {
        format!(r#"job=~"(.*-)?vdm(-{service})?""#)
    };
    let rpc = format!("grpc_method=~`{service}\\..+`");
    let quantile = |q: &str| {
        if service == "gateway" {
            format!(
                "histogram_quantile({q}, sum by (job, le) (rate(http_server_request_duration_seconds_bucket{{{JOB}, {API_ROUTES}}}[5m]))) * 1000 > {max}"
            )
        } else {
            format!(
                "histogram_quantile({q}, sum by (job, le) (rate(grpc_server_handling_seconds_bucket{{{JOB}, {rpc}}}[5m]))) * 1000 > {max}"
            )
        }
    };
    match budget.metric {
        BudgetMetric::P50Ms => quantile("0.5"),
        BudgetMetric::P99Ms => quantile("0.99"),
        BudgetMetric::ErrorRatePercent if service == "gateway" => format!(
            "100 * sum by (job) (rate(http_server_requests_total{{{JOB}, {API_ROUTES}, status=~\"5..\"}}[5m]))\n  / sum by (job) (rate(http_server_requests_total{{{JOB}, {API_ROUTES}}}[5m])) > {max}"
        ),
        BudgetMetric::ErrorRatePercent => format!(
            "100 * sum by (job) (rate(grpc_server_handled_total{{{JOB}, {rpc}, {GRPC_ERRORS}}}[5m]))\n  / sum by (job) (rate(grpc_server_handled_total{{{JOB}, {rpc}}}[5m])) > {max}"
        ),
        BudgetMetric::MemoryMb => {
            format!("max by (job) (process_resident_memory_bytes{{{job}}}) / 1048576 > {max}")
        }
        BudgetMetric::CpuPercent => {
            format!("100 * max by (job) (rate(process_cpu_seconds_total{{{job}}}[5m])) > {max}")
        }
        BudgetMetric::ClientFrameTimeP95Ms => format!(
            "histogram_quantile(0.95, sum by (le) (rate(vdm_client_frame_time_seconds_bucket{{{JOB}}}[5m]))) * 1000 > {max}"
        ),
    }
}

/// The alert's name: `VdmBudget` and the budget's name in camel case.
pub fn alert_name(budget: &Budget) -> String {
    let mut name = String::from("VdmBudget");
    for part in budget.name.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            name.push(first.to_ascii_uppercase());
            name.extend(chars);
        }
    }
    name
}

/// The Prometheus rules file (YAML) with one alert per budget.
pub fn alert_rules(budgets: &[Budget]) -> String {
    let mut out = String::from(
        "# GENERATED from deploy/budgets.json by `vdm budgets alert-rules --out deploy/prometheus/alerts-budgets.yml`.\n\
         # Do not edit: change the budgets file and regenerate (a test checks this\n\
         # file is what the generator writes). One alert per budget; the metrics\n\
         # service judges the same budgets each scrape round (GET /v1/budgets).\n\
         \n\
         groups:\n  - name: vdm-budgets\n    rules:\n",
    );
    for budget in budgets {
        let unit = match budget.metric {
            BudgetMetric::ErrorRatePercent | BudgetMetric::CpuPercent => "%",
            BudgetMetric::MemoryMb => " MB",
            _ => " ms",
        };
        let of = budget
            .service
            .as_deref()
            .map(|s| format!(" of {s}"))
            .unwrap_or_default();
        let expr = promql(budget).replace('\n', "\n          ");
        out.push_str(&format!(
            "      - alert: {alert}\n        expr: |\n          {expr}\n        for: {for_}\n        labels:\n          severity: {severity}\n          budget: {name}\n        annotations:\n          summary: \"Budget {name} is broken: {metric}{of} is {{{{ $value | printf \\\"%.2f\\\" }}}}{unit} (max {max}{unit})\"\n          description: >-\n            {description}: {metric}{of} has been above {max}{unit} for {for_}.\n          runbook_url: docs/OBSERVABILITY.md#budgets\n",
            alert = alert_name(budget),
            for_ = budget.alert_for,
            severity = budget.severity,
            name = budget.name,
            metric = budget.metric.name(),
            max = format_number(budget.max),
            description = budget.description,
        ));
    }
    out
}

fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::scrape::Snapshot;

    fn sample(service: &str, p99: Option<f64>, memory: f64) -> StatsSample {
        StatsSample::up(
            service,
            0,
            Snapshot {
                memory_mb: Some(memory),
                cpu_percent: None,
                request_count: 0,
                error_count: 0,
                throughput_rps: None,
                p50_ms: None,
                p99_ms: p99,
                error_percent: None,
            },
        )
    }

    #[test]
    fn the_repository_file_parses() {
        let budgets = parse_budgets(DEFAULT_BUDGETS).unwrap();
        assert!(budgets.iter().any(|b| b.name == "gateway_p99" && b.max == 50.0));
        assert!(budgets.iter().any(|b| b.metric == BudgetMetric::ClientFrameTimeP95Ms));
    }

    #[test]
    fn bad_files_name_the_budget_and_field() {
        let one = |budget: &str| parse_budgets(&format!(r#"{{"budgets": [{budget}]}}"#));
        let base = r#""name": "b", "description": "d", "metric": "p99_ms", "service": "quest", "max": 1"#;
        assert!(one(&format!("{{{base}}}")).is_ok());
        for (bad, field) in [
            (base.replace("\"b\"", "\"B\""), "budgets[0].name"),
            (base.replace("\"max\": 1", "\"max\": -1"), "budgets[0].max"),
            (base.replace(", \"service\": \"quest\"", ""), "budgets[0].service"),
            (format!("{base}, \"alert_for\": \"soon\""), "budgets[0].alert_for"),
            (format!("{base}, \"severity\": \"page\""), "budgets[0].severity"),
            (base.replace("p99_ms", "p42_ms"), "p42_ms"),
        ] {
            let err = one(&format!("{{{bad}}}")).unwrap_err();
            assert!(err.contains(field), "{field} in {err}");
        }
        let twice = parse_budgets(&format!(r#"{{"budgets": [{{{base}}}, {{{base}}}]}}"#)).unwrap_err();
        assert!(twice.contains("budgets[1].name"), "{twice}");
    }

    #[test]
    fn verdicts_flip_and_keep_their_since() {
        let budgets = parse_budgets(
            r#"{"budgets": [
                {"name": "quest_p99", "description": "d", "service": "quest", "metric": "p99_ms", "max": 10},
                {"name": "memory", "description": "d", "metric": "memory_mb", "max": 100},
                {"name": "frames", "description": "d", "metric": "client_frame_time_p95_ms", "max": 16.7}
            ]}"#,
        )
        .unwrap();
        let mut board = BudgetBoard::new(budgets, 0);
        assert!(board.states().iter().all(|s| s.verdict == Verdict::NoData));
        board.evaluate(
            &[sample("quest", Some(5.0), 50.0), sample("npc", Some(99.0), 150.0)],
            Some(20.0),
            1,
        );
        let verdicts: Vec<Verdict> = board.states().iter().map(|s| s.verdict).collect();
        assert_eq!(verdicts, [Verdict::Ok, Verdict::Violated, Verdict::Violated]);
        assert_eq!(board.states()[1].value, Some(150.0), "the worst service");
        board.evaluate(&[sample("quest", Some(50.0), 50.0)], Some(20.0), 2);
        assert_eq!(board.states()[0].verdict, Verdict::Violated);
        assert_eq!(board.states()[0].since_ms, 2);
        assert_eq!(board.states()[2].since_ms, 1, "still violated since the first round");
        board.evaluate(&[sample("quest", None, 50.0)], None, 3);
        assert_eq!(board.states()[0].verdict, Verdict::NoData);
        assert_eq!(board.states()[1].verdict, Verdict::Ok);
    }

    #[test]
    fn alert_rules_have_one_alert_per_budget() {
        let budgets = parse_budgets(DEFAULT_BUDGETS).unwrap();
        let rules = alert_rules(&budgets);
        assert_eq!(rules.matches("- alert: VdmBudget").count(), budgets.len());
        assert!(rules.contains("- alert: VdmBudgetGatewayP99\n"));
        assert!(rules.contains("grpc_method=~`quest\\..+`"));
        assert!(rules.contains("* 1000 > 50\n"));
    }
}
