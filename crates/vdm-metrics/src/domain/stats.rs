//! Backend stats samples as stored and exported: one row per service per
//! scrape round, its CSV line, and the checks of a history query.

use chrono::{DateTime, SecondsFormat};

use super::scrape::Snapshot;
use super::targets::valid_service_name;

/// The CSV file's header line (without the newline).
pub const CSV_HEADER: &str =
    "timestamp,memory_mb,cpu_percent,request_count,error_count,throughput_rps,service,p50_ms,p99_ms";

/// One service's backend stats at one scrape.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsSample {
    /// The target's name.
    pub service: String,
    /// When the scrape ended (Unix ms).
    pub at_ms: i64,
    /// Whether the target answered; a down target has no figures.
    pub up: bool,
    /// The figures, when up.
    pub snapshot: Option<Snapshot>,
    /// Why the target is down.
    pub error: Option<String>,
}

impl StatsSample {
    /// A target that answered.
    pub fn up(service: &str, at_ms: i64, snapshot: Snapshot) -> StatsSample {
        StatsSample {
            service: service.to_owned(),
            at_ms,
            up: true,
            snapshot: Some(snapshot),
            error: None,
        }
    }

    /// A target that did not answer, or answered with an error.
    pub fn down(service: &str, at_ms: i64, error: String) -> StatsSample {
        StatsSample {
            service: service.to_owned(),
            at_ms,
            up: false,
            snapshot: None,
            error: Some(error),
        }
    }

    /// The sample as one CSV line (without the newline) under
    /// [`CSV_HEADER`]: an RFC 3339 UTC timestamp, then the figures; a
    /// figure not measured (a down target's, say) is an empty field.
    pub fn csv_line(&self) -> String {
        let number = |v: Option<f64>| v.map(|v| format!("{v:.3}")).unwrap_or_default();
        let count = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let s = self.snapshot.as_ref();
        format!(
            "{},{},{},{},{},{},{},{},{}",
            format_time(self.at_ms),
            number(s.and_then(|s| s.memory_mb)),
            number(s.and_then(|s| s.cpu_percent)),
            count(s.map(|s| s.request_count)),
            count(s.map(|s| s.error_count)),
            number(s.and_then(|s| s.throughput_rps)),
            self.service,
            number(s.and_then(|s| s.p50_ms)),
            number(s.and_then(|s| s.p99_ms)),
        )
    }
}

/// Unix ms as RFC 3339 UTC with milliseconds.
pub fn format_time(at_ms: i64) -> String {
    DateTime::from_timestamp_millis(at_ms)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// The time of a CSV line (Unix ms), `None` for the header or a line that
/// is not one of ours.
pub fn csv_line_time(line: &str) -> Option<i64> {
    let first = line.split(',').next()?;
    DateTime::parse_from_rfc3339(first).ok().map(|t| t.timestamp_millis())
}

/// A checked history query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryQuery {
    /// One service, or every one.
    pub service: Option<String>,
    /// Inclusive lower bound (Unix ms).
    pub from_ms: Option<i64>,
    /// Inclusive upper bound (Unix ms).
    pub to_ms: Option<i64>,
}

impl HistoryQuery {
    /// Checks the service name and the range; the error names the field.
    pub fn parse(service: &str, from_ms: Option<i64>, to_ms: Option<i64>) -> Result<HistoryQuery, String> {
        let service = Some(service).filter(|s| !s.is_empty());
        if let Some(name) = service
            && !valid_service_name(name)
        {
            return Err("service must be 1 to 32 characters of [a-z0-9_-], starting with a letter".to_owned());
        }
        for (field, value) in [("from", from_ms), ("to", to_ms)] {
            if value.is_some_and(|v| v < 0) {
                return Err(format!("{field} must not be before 1970"));
            }
        }
        if let (Some(from), Some(to)) = (from_ms, to_ms)
            && from > to
        {
            return Err("from must not be after to".to_owned());
        }
        Ok(HistoryQuery {
            service: service.map(str::to_owned),
            from_ms,
            to_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn csv_lines_have_every_column_and_read_back_their_time() {
        let snapshot = Snapshot {
            memory_mb: Some(100.0),
            cpu_percent: Some(12.5),
            request_count: 156,
            error_count: 11,
            throughput_rps: Some(2.0),
            p50_ms: Some(1.25),
            p99_ms: None,
            error_percent: None,
        };
        let line = StatsSample::up("quest", 1_795_000_000_123, snapshot).csv_line();
        assert_eq!(
            line,
            "2026-11-18T11:06:40.123Z,100.000,12.500,156,11,2.000,quest,1.250,"
        );
        assert_eq!(line.split(',').count(), CSV_HEADER.split(',').count());
        assert_eq!(csv_line_time(&line), Some(1_795_000_000_123));
        assert_eq!(csv_line_time(CSV_HEADER), None);
        let down = StatsSample::down("npc", 0, "refused".into()).csv_line();
        assert_eq!(down, "1970-01-01T00:00:00.000Z,,,,,,npc,,");
    }

    #[test]
    fn history_queries_name_the_bad_field() {
        assert_eq!(HistoryQuery::parse("", None, None).unwrap().service, None);
        assert!(
            HistoryQuery::parse("Bad!", None, None)
                .unwrap_err()
                .starts_with("service")
        );
        assert!(
            HistoryQuery::parse("quest", Some(-1), None)
                .unwrap_err()
                .starts_with("from")
        );
        assert!(
            HistoryQuery::parse("quest", Some(5), Some(4))
                .unwrap_err()
                .starts_with("from")
        );
        assert!(HistoryQuery::parse("quest", Some(4), Some(4)).is_ok());
    }
}
