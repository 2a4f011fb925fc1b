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
    /// Requests one service answered per second in the window (the
    /// gateway's API routes, or a service's RPCs).
    ThroughputRps,
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
            BudgetMetric::ThroughputRps => "throughput_rps",
            BudgetMetric::MemoryMb => "memory_mb",
            BudgetMetric::CpuPercent => "cpu_percent",
            BudgetMetric::ClientFrameTimeP95Ms => "client_frame_time_p95_ms",
        }
    }

    fn needs_service(self) -> bool {
        matches!(
            self,
            BudgetMetric::P50Ms | BudgetMetric::P99Ms | BudgetMetric::ErrorRatePercent | BudgetMetric::ThroughputRps
        )
    }

    /// The unit as alert texts print it after a number.
    fn unit(self) -> &'static str {
        match self {
            BudgetMetric::ErrorRatePercent | BudgetMetric::CpuPercent => "%",
            BudgetMetric::MemoryMb => " MB",
            BudgetMetric::ThroughputRps => " req/s",
            BudgetMetric::P50Ms | BudgetMetric::P99Ms | BudgetMetric::ClientFrameTimeP95Ms => " ms",
        }
    }
}

/// One budget: `metric` (of `service`) must stay at or below `max` and at
/// or above `min`; a budget has one of them or both.
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
    /// The ceiling, in the metric's unit; above it the budget is violated.
    #[serde(default)]
    pub max: Option<f64>,
    /// The floor, in the metric's unit; below it the budget is violated.
    #[serde(default)]
    pub min: Option<f64>,
    /// Whether a window in which the service answered no request breaks
    /// `min`: `true` for a floor that holds at every hour (a game that
    /// always has players); `false` (the default) judges `min` only while
    /// there is traffic, so a deployment idle by design does not fire.
    #[serde(default)]
    pub min_when_idle: bool,
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
        if b.min.is_none() && b.max.is_none() {
            return Err(format!("{at} ({}) needs a min or a max (or both)", b.name));
        }
        if b.max.is_some_and(|max| !(max.is_finite() && max > 0.0)) {
            return Err(format!("{at}.max must be a positive number"));
        }
        // A floor of 0 could never be broken.
        if b.min.is_some_and(|min| !(min.is_finite() && min > 0.0)) {
            return Err(format!("{at}.min must be a positive number"));
        }
        if let (Some(min), Some(max)) = (b.min, b.max)
            && min >= max
        {
            return Err(format!("{at}.min must be below its max"));
        }
        if b.min_when_idle && b.min.is_none() {
            return Err(format!("{at}.min_when_idle needs a min"));
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
    /// in the window (for a latency, or for a `min` judged only with
    /// traffic).
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
    /// Why the verdict is what it is, for people.
    pub reason: String,
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
                    reason: "not evaluated yet: no scrape round since the start".to_owned(),
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
            let measured = measure(&state.budget, samples, client_frame_p95);
            let (verdict, reason) = judge(&state.budget, measured);
            if verdict != state.verdict {
                state.since_ms = now_ms;
                state.verdict = verdict;
            }
            state.value = measured.map(|m| m.value);
            state.reason = reason;
            state.evaluated_at_ms = now_ms;
        }
    }
}

/// What a round measured for one budget.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Measured {
    /// The figure judged.
    value: f64,
    /// Whether the service (every service, without one) answered no
    /// request in the window.
    idle: bool,
}

/// A budget's verdict on a measurement, and why.
fn judge(budget: &Budget, measured: Option<Measured>) -> (Verdict, String) {
    let metric = budget.metric.name();
    let unit = budget.metric.unit();
    let Some(Measured { value, idle }) = measured else {
        return (
            Verdict::NoData,
            format!("no {metric} this round: no scrape yet, the target is down, or nothing measured in the window"),
        );
    };
    let shown = format!("{metric} is {}{unit}", round(value));
    if let Some(max) = budget.max
        && value > max
    {
        return (
            Verdict::Violated,
            format!("{shown}, above the max {}{unit}", format_number(max)),
        );
    }
    // An idle window leaves the min unjudged, unless the budget says otherwise.
    let min = budget.min.filter(|_| !idle || budget.min_when_idle);
    if let Some(min) = min
        && value < min
    {
        return (
            Verdict::Violated,
            format!("{shown}, below the min {}{unit}", format_number(min)),
        );
    }
    let unjudged = " with no request in the window: the min is judged only with traffic";
    match (min, budget.max) {
        (Some(min), Some(max)) => (
            Verdict::Ok,
            format!("{shown}, within {} to {}{unit}", format_number(min), format_number(max)),
        ),
        (Some(min), None) => (
            Verdict::Ok,
            format!("{shown}, at or above the min {}{unit}", format_number(min)),
        ),
        (None, Some(max)) => {
            let note = if budget.min.is_some() { unjudged } else { "" };
            (
                Verdict::Ok,
                format!("{shown}, at or below the max {}{unit}{note}", format_number(max)),
            )
        }
        // Only a min, left unjudged: nothing was judged.
        (None, None) => (Verdict::NoData, format!("{shown}{unjudged}")),
    }
}

/// A figure for people: at most three decimals.
fn round(v: f64) -> String {
    format_number((v * 1000.0).round() / 1000.0)
}

/// The value a budget judges: the figure of its service's sample, or the
/// largest over every service that answered (the smallest, for a budget
/// with only a min: the service furthest below it).
fn measure(budget: &Budget, samples: &[StatsSample], client_frame_p95: Option<f64>) -> Option<Measured> {
    if budget.metric == BudgetMetric::ClientFrameTimeP95Ms {
        return client_frame_p95.map(|value| Measured { value, idle: false });
    }
    let snapshots: Vec<_> = samples
        .iter()
        .filter(|s| budget.service.as_ref().is_none_or(|name| *name == s.service))
        .filter_map(|s| s.snapshot.as_ref())
        .collect();
    let worst = if budget.max.is_none() { f64::min } else { f64::max };
    let value = snapshots
        .iter()
        .filter_map(|s| match budget.metric {
            BudgetMetric::P50Ms => s.p50_ms,
            BudgetMetric::P99Ms => s.p99_ms,
            BudgetMetric::ErrorRatePercent => s.error_percent,
            BudgetMetric::ThroughputRps => s.throughput_rps,
            BudgetMetric::MemoryMb => s.memory_mb,
            BudgetMetric::CpuPercent => s.cpu_percent,
            BudgetMetric::ClientFrameTimeP95Ms => None,
        })
        .reduce(worst)?;
    // Idle: every judged service had a window, and no request in it.
    let idle = snapshots.iter().all(|s| s.throughput_rps == Some(0.0));
    Some(Measured { value, idle })
}

/// vdm processes by job name, as deploy/prometheus/alerts.yaml finds them:
/// `vdm` (`vdm all`) or `...vdm-<service>`.
const JOB: &str = r#"job=~"(.*-)?vdm(-.+)?""#;
/// The gateway's figures leave out probes, scrapes and unknown routes.
const API_ROUTES: &str = r#"route!~"/health|/ready|/metrics|unmatched""#;
/// gRPC codes that count as the server's failure (as the scraper counts them).
const GRPC_ERRORS: &str = r#"grpc_code=~"INTERNAL|UNAVAILABLE|UNKNOWN|DEADLINE_EXCEEDED|DATA_LOSS""#;

/// The PromQL expression that is true (non-empty) while `budget` is broken,
/// over a 5 minute window: its figure above the max, or below the min
/// (only while the service has requests, unless `min_when_idle`).
pub fn promql(budget: &Budget) -> String {
    let value = value_expr(budget);
    let above = budget.max.map(|max| format!("{value} > {}", format_number(max)));
    let below = budget.min.map(|min| {
        let min = format_number(min);
        if budget.min_when_idle {
            format!("{value} < {min}")
        } else {
            // `x > 0 < min`: the first comparison drops idle series, the
            // second keeps those under the floor.
            format!("{value} > 0 < {min}")
        }
    });
    match (above, below) {
        (Some(above), Some(below)) => format!("{above}\nor\n{below}"),
        (Some(expr), None) | (None, Some(expr)) => expr,
        // parse_budgets refuses a budget with neither.
        (None, None) => "vector(0) > 1".to_owned(),
    }
}

/// The PromQL expression of a budget's figure, per job, over 5 minutes.
fn value_expr(budget: &Budget) -> String {
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
                "histogram_quantile({q}, sum by (job, le) (rate(http_server_request_duration_seconds_bucket{{{JOB}, {API_ROUTES}}}[5m]))) * 1000"
            )
        } else {
            format!(
                "histogram_quantile({q}, sum by (job, le) (rate(grpc_server_handling_seconds_bucket{{{JOB}, {rpc}}}[5m]))) * 1000"
            )
        }
    };
    match budget.metric {
        BudgetMetric::P50Ms => quantile("0.5"),
        BudgetMetric::P99Ms => quantile("0.99"),
        BudgetMetric::ErrorRatePercent if service == "gateway" => format!(
            "100 * sum by (job) (rate(http_server_requests_total{{{JOB}, {API_ROUTES}, status=~\"5..\"}}[5m]))\n  / sum by (job) (rate(http_server_requests_total{{{JOB}, {API_ROUTES}}}[5m]))"
        ),
        BudgetMetric::ErrorRatePercent => format!(
            "100 * sum by (job) (rate(grpc_server_handled_total{{{JOB}, {rpc}, {GRPC_ERRORS}}}[5m]))\n  / sum by (job) (rate(grpc_server_handled_total{{{JOB}, {rpc}}}[5m]))"
        ),
        BudgetMetric::ThroughputRps if service == "gateway" => {
            format!("sum by (job) (rate(http_server_requests_total{{{JOB}, {API_ROUTES}}}[5m]))")
        }
        BudgetMetric::ThroughputRps => {
            format!("sum by (job) (rate(grpc_server_handled_total{{{JOB}, {rpc}}}[5m]))")
        }
        BudgetMetric::MemoryMb => {
            format!("max by (job) (process_resident_memory_bytes{{{job}}}) / 1048576")
        }
        BudgetMetric::CpuPercent => {
            format!("100 * max by (job) (rate(process_cpu_seconds_total{{{job}}}[5m]))")
        }
        BudgetMetric::ClientFrameTimeP95Ms => format!(
            "histogram_quantile(0.95, sum by (le) (rate(vdm_client_frame_time_seconds_bucket{{{JOB}}}[5m]))) * 1000"
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
        let unit = budget.metric.unit();
        let limits = match (budget.min, budget.max) {
            (Some(min), Some(max)) => format!("min {}{unit}, max {}{unit}", format_number(min), format_number(max)),
            (Some(min), None) => format!("min {}{unit}", format_number(min)),
            (None, Some(max)) => format!("max {}{unit}", format_number(max)),
            (None, None) => String::new(),
        };
        let while_busy = if budget.min_when_idle {
            ""
        } else {
            " while serving requests"
        };
        let broken = match (budget.min, budget.max) {
            (Some(min), Some(max)) => format!(
                "above {}{unit}, or below {}{unit}{while_busy},",
                format_number(max),
                format_number(min)
            ),
            (Some(min), None) => format!("below {}{unit}{while_busy}", format_number(min)),
            (None, Some(max)) => format!("above {}{unit}", format_number(max)),
            (None, None) => String::new(),
        };
        let of = budget
            .service
            .as_deref()
            .map(|s| format!(" of {s}"))
            .unwrap_or_default();
        let expr = promql(budget).replace('\n', "\n          ");
        out.push_str(&format!(
            "      - alert: {alert}\n        expr: |\n          {expr}\n        for: {for_}\n        labels:\n          severity: {severity}\n          budget: {name}\n        annotations:\n          summary: \"Budget {name} is broken: {metric}{of} is {{{{ $value | printf \\\"%.2f\\\" }}}}{unit} ({limits})\"\n          description: >-\n            {description}: {metric}{of} has been {broken} for {for_}.\n          runbook_url: docs/OBSERVABILITY.md#budgets\n",
            alert = alert_name(budget),
            for_ = budget.alert_for,
            severity = budget.severity,
            name = budget.name,
            metric = budget.metric.name(),
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
        assert!(budgets.iter().any(|b| b.name == "gateway_p99" && b.max == Some(50.0)));
        assert!(
            budgets
                .iter()
                .any(|b| b.metric == BudgetMetric::ThroughputRps && b.min.is_some())
        );
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
        let bounds = r#""name": "floor", "description": "d", "metric": "throughput_rps", "service": "gateway""#;
        for (bad, message) in [
            (bounds.to_owned(), "budgets[0] (floor) needs a min or a max"),
            (
                format!("{bounds}, \"min\": 0"),
                "budgets[0].min must be a positive number",
            ),
            (
                format!("{bounds}, \"min\": 5, \"max\": 5"),
                "budgets[0].min must be below its max",
            ),
            (
                format!("{bounds}, \"max\": 5, \"min_when_idle\": true"),
                "budgets[0].min_when_idle needs a min",
            ),
            (
                r#""name": "t", "description": "d", "metric": "throughput_rps", "min": 1"#.to_owned(),
                "budgets[0].service is needed for throughput_rps",
            ),
        ] {
            let err = one(&format!("{{{bad}}}")).unwrap_err();
            assert!(err.contains(message), "{message} in {err}");
        }
        let both = one(&format!("{{{bounds}, \"min\": 1, \"max\": 500}}")).unwrap();
        assert_eq!(
            (both[0].min, both[0].max, both[0].min_when_idle),
            (Some(1.0), Some(500.0), false)
        );
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

    fn traffic(service: &str, rps: Option<f64>) -> StatsSample {
        StatsSample::up(
            service,
            0,
            Snapshot {
                memory_mb: Some(10.0),
                cpu_percent: None,
                request_count: 0,
                error_count: 0,
                throughput_rps: rps,
                p50_ms: None,
                p99_ms: None,
                error_percent: None,
            },
        )
    }

    fn floors() -> Vec<Budget> {
        parse_budgets(
            r#"{"budgets": [
                {"name": "floor", "description": "d", "service": "gateway", "metric": "throughput_rps", "min": 2},
                {"name": "always", "description": "d", "service": "gateway", "metric": "throughput_rps", "min": 2, "min_when_idle": true},
                {"name": "band", "description": "d", "service": "gateway", "metric": "throughput_rps", "min": 2, "max": 100}
            ]}"#,
        )
        .unwrap()
    }

    fn judged(board: &BudgetBoard) -> Vec<(Verdict, String)> {
        board.states().iter().map(|s| (s.verdict, s.reason.clone())).collect()
    }

    #[test]
    fn a_min_is_broken_below_it_and_judged_when_idle_only_if_asked() {
        let mut board = BudgetBoard::new(floors(), 0);
        assert!(board.states()[0].reason.contains("not evaluated yet"));

        // Traffic under the floor breaks every budget.
        board.evaluate(&[traffic("gateway", Some(0.5)), traffic("quest", Some(50.0))], None, 1);
        for (verdict, reason) in judged(&board) {
            assert_eq!(verdict, Verdict::Violated, "{reason}");
            assert!(
                reason.contains("throughput_rps is 0.5 req/s, below the min 2 req/s"),
                "{reason}"
            );
        }
        assert_eq!(board.states()[0].value, Some(0.5), "the budget's own service");

        // Within the floor (and the band's ceiling).
        board.evaluate(&[traffic("gateway", Some(20.0))], None, 2);
        let states = judged(&board);
        assert_eq!(
            states[0],
            (
                Verdict::Ok,
                "throughput_rps is 20 req/s, at or above the min 2 req/s".into()
            )
        );
        assert_eq!(
            states[2],
            (Verdict::Ok, "throughput_rps is 20 req/s, within 2 to 100 req/s".into())
        );
        assert_eq!(board.states()[0].since_ms, 2);

        // Above the band's ceiling.
        board.evaluate(&[traffic("gateway", Some(250.5))], None, 3);
        assert_eq!(board.states()[0].verdict, Verdict::Ok);
        assert_eq!(board.states()[2].verdict, Verdict::Violated);
        assert!(board.states()[2].reason.contains("above the max 100 req/s"));

        // Idle: no request in the window. The plain floor has nothing to
        // judge, the always-on floor is broken, the band judges its max.
        board.evaluate(&[traffic("gateway", Some(0.0))], None, 4);
        let states = judged(&board);
        assert_eq!(states[0].0, Verdict::NoData, "{}", states[0].1);
        assert!(states[0].1.contains("no request in the window"), "{}", states[0].1);
        assert_eq!(board.states()[0].value, Some(0.0));
        assert_eq!(states[1].0, Verdict::Violated, "{}", states[1].1);
        assert!(states[1].1.contains("below the min 2 req/s"), "{}", states[1].1);
        assert_eq!(states[2].0, Verdict::Ok, "{}", states[2].1);
        assert!(
            states[2].1.contains("at or below the max 100 req/s with no request"),
            "{}",
            states[2].1
        );

        // No window yet (first scrape) or the target down: no data.
        board.evaluate(&[traffic("gateway", None)], None, 5);
        assert!(board.states().iter().all(|s| s.verdict == Verdict::NoData));
        board.evaluate(&[], None, 6);
        assert!(board.states().iter().all(|s| s.value.is_none()));
    }

    #[test]
    fn a_min_over_every_service_judges_the_lowest() {
        let budgets = parse_budgets(
            r#"{"budgets": [
                {"name": "low_cpu", "description": "d", "metric": "cpu_percent", "min": 1},
                {"name": "high_memory", "description": "d", "metric": "memory_mb", "max": 100}
            ]}"#,
        )
        .unwrap();
        let mut board = BudgetBoard::new(budgets, 0);
        let with_cpu = |service: &str, cpu: f64, memory: f64| {
            let mut s = traffic(service, Some(3.0));
            if let Some(snapshot) = s.snapshot.as_mut() {
                snapshot.cpu_percent = Some(cpu);
                snapshot.memory_mb = Some(memory);
            }
            s
        };
        board.evaluate(&[with_cpu("quest", 0.5, 20.0), with_cpu("npc", 9.0, 50.0)], None, 1);
        assert_eq!(board.states()[0].value, Some(0.5));
        assert_eq!(board.states()[0].verdict, Verdict::Violated);
        assert_eq!(board.states()[1].value, Some(50.0));
    }

    #[test]
    fn min_rules_skip_idle_windows_unless_asked() {
        let rules: Vec<String> = floors().iter().map(promql).collect();
        let gateway = r#"sum by (job) (rate(http_server_requests_total{job=~"(.*-)?vdm(-.+)?", route!~"/health|/ready|/metrics|unmatched"}[5m]))"#;
        assert_eq!(rules[0], format!("{gateway} > 0 < 2"));
        assert_eq!(rules[1], format!("{gateway} < 2"));
        assert_eq!(rules[2], format!("{gateway} > 100\nor\n{gateway} > 0 < 2"));
        let quest = parse_budgets(
            r#"{"budgets": [{"name": "q", "description": "d", "service": "quest", "metric": "throughput_rps", "min": 0.5}]}"#,
        )
        .unwrap();
        assert_eq!(
            promql(&quest[0]),
            r#"sum by (job) (rate(grpc_server_handled_total{job=~"(.*-)?vdm(-.+)?", grpc_method=~`quest\..+`}[5m])) > 0 < 0.5"#
        );
        let file = alert_rules(&floors());
        assert!(file.contains("(min 2 req/s)\""), "{file}");
        assert!(file.contains("(min 2 req/s, max 100 req/s)\""), "{file}");
        assert!(
            file.contains("has been below 2 req/s while serving requests for 5m."),
            "{file}"
        );
        assert!(file.contains("has been below 2 req/s for 5m."), "{file}");
        assert!(
            file.contains("          or\n"),
            "the or of a band keeps the block's indent: {file}"
        );
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
