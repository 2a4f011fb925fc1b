//! A service's `/metrics` text reduced to the figures of a backend stats
//! snapshot, and a snapshot computed from two scrapes. No IO: the scraper
//! (`crate::scraper`) fetches the text and keeps the previous [`Scrape`].

use std::collections::BTreeMap;

/// gRPC codes counted as errors (the server's fault, not the caller's).
const GRPC_ERROR_CODES: &[&str] = &["INTERNAL", "UNAVAILABLE", "UNKNOWN", "DEADLINE_EXCEEDED", "DATA_LOSS"];

/// The figures of one scrape that a snapshot needs.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scrape {
    /// `process_resident_memory_bytes`.
    pub resident_bytes: Option<f64>,
    /// `process_cpu_seconds_total`.
    pub cpu_seconds: Option<f64>,
    /// HTTP requests (to API routes: not `/health`, `/ready`, `/metrics`
    /// or unmatched ones) plus RPCs answered.
    pub requests: f64,
    /// HTTP 5xx plus RPCs failed with a server-side code.
    pub errors: f64,
    /// Cumulative latency bucket counts by upper bound (seconds), summed
    /// over every `*_seconds` server histogram.
    pub buckets: BTreeMap<Bound, f64>,
}

/// A bucket's upper bound, ordered (`+Inf` last).
#[derive(Debug, Clone, Copy)]
pub struct Bound(pub f64);

impl PartialEq for Bound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other).is_eq()
    }
}

impl Eq for Bound {}

impl PartialOrd for Bound {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Bound {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// One backend stats sample of one service.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Resident memory in MiB.
    pub memory_mb: Option<f64>,
    /// CPU use since the previous scrape, in percent of one core.
    pub cpu_percent: Option<f64>,
    /// Requests answered since start.
    pub request_count: u64,
    /// Errors since start.
    pub error_count: u64,
    /// Requests per second since the previous scrape.
    pub throughput_rps: Option<f64>,
    /// Median latency in ms (since the previous scrape when there is one).
    pub p50_ms: Option<f64>,
    /// 99th percentile latency in ms.
    pub p99_ms: Option<f64>,
    /// Errors per request in the window, in percent (`None` without a
    /// previous scrape or without requests in the window).
    pub error_percent: Option<f64>,
}

impl Scrape {
    /// Reads Prometheus text; lines it does not understand are skipped.
    pub fn parse(text: &str) -> Scrape {
        Scrape::parse_scoped(text, None)
    }

    /// Reads the figures of one service out of a process's text: HTTP
    /// requests count for `gateway` only, RPCs only for the service whose
    /// package they belong to (`quest` for `quest.v1.QuestService/...`).
    /// In `vdm all` every service shares one process and one `/metrics`;
    /// memory and CPU are then the whole process's.
    pub fn parse_for(text: &str, service: &str) -> Scrape {
        Scrape::parse_scoped(text, Some(service))
    }

    fn parse_scoped(text: &str, service: Option<&str>) -> Scrape {
        let http_counts = service.is_none_or(|s| s == "gateway");
        let rpc_counts = |method: Option<&str>| match service {
            None => true,
            Some(service) => method.is_some_and(|m| rpc_package(m) == service),
        };
        let mut scrape = Scrape::default();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, labels, value)) = parse_line(line) else {
                continue;
            };
            let label = |key: &str| labels.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
            match name {
                "process_resident_memory_bytes" => scrape.resident_bytes = Some(value),
                "process_cpu_seconds_total" => scrape.cpu_seconds = Some(value),
                "http_server_requests_total" if http_counts && api_route(label("route")) => {
                    scrape.requests += value;
                    if label("status").is_some_and(|s| s.starts_with('5')) {
                        scrape.errors += value;
                    }
                }
                "grpc_server_handled_total" if rpc_counts(label("grpc_method")) => {
                    scrape.requests += value;
                    if label("grpc_code").is_some_and(|c| GRPC_ERROR_CODES.contains(&c)) {
                        scrape.errors += value;
                    }
                }
                "http_server_request_duration_seconds_bucket" | "grpc_server_handling_seconds_bucket"
                    if (name.starts_with("http") && http_counts && api_route(label("route")))
                        || (name.starts_with("grpc") && rpc_counts(label("grpc_method"))) =>
                {
                    let bound = match label("le") {
                        Some("+Inf") => f64::INFINITY,
                        Some(le) => match le.parse::<f64>() {
                            Ok(b) => b,
                            Err(_) => continue,
                        },
                        None => continue,
                    };
                    *scrape.buckets.entry(Bound(bound)).or_insert(0.0) += value;
                }
                _ => {}
            }
        }
        scrape
    }
}

/// A snapshot from the current scrape and, when there is one, the previous
/// scrape `elapsed_secs` earlier (rates and window percentiles need both).
pub fn snapshot(previous: Option<&Scrape>, current: &Scrape, elapsed_secs: f64) -> Snapshot {
    let window = previous.filter(|_| elapsed_secs > 0.0);
    let cpu_percent = window.and_then(|prev| {
        let delta = current.cpu_seconds? - prev.cpu_seconds?;
        Some((delta / elapsed_secs * 100.0).max(0.0))
    });
    let throughput_rps = window.map(|prev| ((current.requests - prev.requests) / elapsed_secs).max(0.0));
    let error_percent = window.and_then(|prev| {
        let requests = current.requests - prev.requests;
        (requests > 0.0).then(|| ((current.errors - prev.errors) / requests * 100.0).clamp(0.0, 100.0))
    });
    let buckets: Vec<(f64, f64)> = current
        .buckets
        .iter()
        .map(|(bound, count)| {
            let before = window.and_then(|p| p.buckets.get(bound)).copied().unwrap_or(0.0);
            (bound.0, (count - before).max(0.0))
        })
        .collect();
    Snapshot {
        memory_mb: current.resident_bytes.map(|b| b / (1024.0 * 1024.0)),
        cpu_percent,
        request_count: current.requests.max(0.0) as u64,
        error_count: current.errors.max(0.0) as u64,
        throughput_rps,
        p50_ms: bucket_quantile(0.5, &buckets).map(|s| s * 1000.0),
        p99_ms: bucket_quantile(0.99, &buckets).map(|s| s * 1000.0),
        error_percent,
    }
}

/// The `q` quantile of cumulative buckets (ascending bounds), interpolated
/// linearly inside its bucket as Prometheus's `histogram_quantile` does; a
/// quantile in the `+Inf` bucket is the largest finite bound.
pub fn bucket_quantile(q: f64, buckets: &[(f64, f64)]) -> Option<f64> {
    let total = buckets.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let mut lower_bound = 0.0;
    let mut lower_count = 0.0;
    for &(bound, count) in buckets {
        if count >= rank {
            if bound.is_infinite() {
                return Some(lower_bound);
            }
            let in_bucket = count - lower_count;
            if in_bucket <= 0.0 {
                return Some(bound);
            }
            return Some(lower_bound + (bound - lower_bound) * (rank - lower_count) / in_bucket);
        }
        lower_bound = bound;
        lower_count = count;
    }
    Some(lower_bound)
}

/// Whether an HTTP route counts: probes, scrapes (the scraper's own
/// requests among them) and unknown routes do not, as in the alert rules.
fn api_route(route: Option<&str>) -> bool {
    !matches!(route, Some("/health" | "/ready" | "/metrics" | "unmatched"))
}

/// The service an RPC name belongs to: `quest` for
/// `quest.v1.QuestService/GetQuest` (or `vdm.quest.v1...`).
fn rpc_package(method: &str) -> &str {
    let method = method.strip_prefix("vdm.").unwrap_or(method);
    method.split('.').next().unwrap_or(method)
}

type Labels = Vec<(String, String)>;

/// `name{k="v",...} value [timestamp]` or `name value`.
fn parse_line(line: &str) -> Option<(&str, Labels, f64)> {
    let (name, labels, rest) = match line.find('{') {
        Some(open) => {
            let close = line.rfind('}')?;
            (
                &line[..open],
                parse_labels(line.get(open + 1..close)?)?,
                &line[close + 1..],
            )
        }
        None => {
            let space = line.find(' ')?;
            (&line[..space], Vec::new(), &line[space..])
        }
    };
    let value = rest.split_whitespace().next()?.parse::<f64>().ok()?;
    Some((name, labels, value))
}

fn parse_labels(text: &str) -> Option<Labels> {
    let mut labels = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        if chars.peek().is_none() {
            return Some(labels);
        }
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        labels.push((key.trim().to_owned(), value));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const FIRST: &str = r#"# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 104857600
process_cpu_seconds_total 10
http_server_requests_total{method="GET",route="/v1/quests/{id}",status="200"} 90
http_server_requests_total{method="GET",route="/v1/quests/{id}",status="500"} 10
grpc_server_handled_total{grpc_method="quest.v1.QuestService/GetQuest",grpc_code="OK"} 50
grpc_server_handled_total{grpc_method="quest.v1.QuestService/GetQuest",grpc_code="NOT_FOUND"} 5
grpc_server_handled_total{grpc_method="quest.v1.QuestService/GetQuest",grpc_code="INTERNAL"} 1
http_server_request_duration_seconds_bucket{method="GET",route="/x",le="0.01"} 50
http_server_request_duration_seconds_bucket{method="GET",route="/x",le="0.1"} 100
http_server_request_duration_seconds_bucket{method="GET",route="/x",le="+Inf"} 100
"#;

    #[test]
    fn reads_the_families_a_snapshot_needs() {
        let scrape = Scrape::parse(FIRST);
        assert_eq!(scrape.resident_bytes, Some(104_857_600.0));
        assert_eq!(scrape.requests, 156.0);
        assert_eq!(scrape.errors, 11.0);
        let first = snapshot(None, &scrape, 0.0);
        assert_eq!(first.memory_mb, Some(100.0));
        assert_eq!((first.request_count, first.error_count), (156, 11));
        assert_eq!((first.cpu_percent, first.throughput_rps), (None, None));
        // Half the requests took up to 10 ms: the median is the bound.
        assert!((first.p50_ms.unwrap() - 10.0).abs() < 1e-9);
    }

    #[test]
    fn rates_and_percentiles_over_the_window() {
        let before = Scrape::parse(FIRST);
        let after = Scrape::parse(
            &FIRST
                .replace("process_cpu_seconds_total 10", "process_cpu_seconds_total 15")
                .replace("status=\"200\"} 90", "status=\"200\"} 190")
                .replace("le=\"0.01\"} 50", "le=\"0.01\"} 150")
                .replace("le=\"0.1\"} 100", "le=\"0.1\"} 200")
                .replace("le=\"+Inf\"} 100", "le=\"+Inf\"} 200"),
        );
        let snap = snapshot(Some(&before), &after, 10.0);
        assert_eq!(snap.cpu_percent, Some(50.0));
        assert_eq!(snap.throughput_rps, Some(10.0));
        // 100 more requests, no more errors.
        assert_eq!(snap.error_percent, Some(0.0));
        // Every request of the window took at most 10 ms.
        assert!(snap.p99_ms.unwrap() <= 10.0);
    }

    #[test]
    fn a_shared_process_is_split_by_service() {
        let text = format!(
            "{FIRST}grpc_server_handled_total{{grpc_method=\"world.v1.WorldService/GetRegion\",grpc_code=\"OK\"}} 7\n\
             grpc_server_handling_seconds_bucket{{grpc_method=\"world.v1.WorldService/GetRegion\",le=\"+Inf\"}} 7\n"
        );
        let gateway = Scrape::parse_for(&text, "gateway");
        assert_eq!((gateway.requests, gateway.errors), (100.0, 10.0));
        assert_eq!(gateway.buckets.get(&Bound(f64::INFINITY)), Some(&100.0));
        let quest = Scrape::parse_for(&text, "quest");
        assert_eq!((quest.requests, quest.errors), (56.0, 1.0));
        assert!(quest.buckets.is_empty());
        let world = Scrape::parse_for(&text, "world");
        assert_eq!(world.requests, 7.0);
        assert_eq!(world.buckets.get(&Bound(f64::INFINITY)), Some(&7.0));
        // The process's own figures belong to every service in it.
        assert_eq!(world.resident_bytes, Some(104_857_600.0));
        assert_eq!(Scrape::parse(&text).requests, 163.0);
        let probes = "http_server_requests_total{method=\"GET\",route=\"/metrics\",status=\"200\"} 9\n";
        assert_eq!(Scrape::parse_for(probes, "gateway").requests, 0.0);
    }

    #[test]
    fn quantiles_interpolate_and_skip_bad_lines() {
        let buckets = [(0.1, 0.0), (0.2, 100.0), (f64::INFINITY, 100.0)];
        assert!((bucket_quantile(0.5, &buckets).unwrap() - 0.15).abs() < 1e-9);
        assert_eq!(bucket_quantile(0.5, &[(f64::INFINITY, 0.0)]), None);
        let scrape = Scrape::parse("garbage\nhttp_server_requests_total{status=\"200\" 3\nprocess_threads 4\n");
        assert_eq!(scrape, Scrape::default());
    }
}
