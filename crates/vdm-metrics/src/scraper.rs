//! The backend stats scraper: every interval it reads each target's
//! `/metrics`, turns it into a snapshot (rates and window percentiles from
//! the previous scrape of the same target), publishes the round to the
//! service, stores it, appends it to the CSV file, and deletes what is older
//! than the retention. A target that does not answer gives a sample marked
//! down; nothing a target does fails the round.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tracing::Instrument;
use vdm_kit::shutdown::CancellationToken;

use crate::config::ScrapeConfig;
use crate::domain::scrape::{Scrape, snapshot};
use crate::domain::stats::{CSV_HEADER, StatsSample, csv_line_time};
use crate::domain::targets::Target;
use crate::service::MetricsService;

/// The most bytes of Prometheus text read from one target.
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// Scrapes the configured targets until stopped.
pub struct Scraper {
    config: ScrapeConfig,
    service: MetricsService,
    client: Client<HttpConnector, Empty<Bytes>>,
    previous: HashMap<String, (Scrape, Instant)>,
    csv: Option<CsvLog>,
}

impl Scraper {
    /// A scraper of `config.targets` that reports to `service`.
    pub fn new(config: ScrapeConfig, service: MetricsService) -> Scraper {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(config.timeout));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        let csv = config.csv_path.clone().map(CsvLog::new);
        Scraper {
            config,
            service,
            client,
            previous: HashMap::new(),
            csv,
        }
    }

    /// Runs a round at once, then one per interval, until `stop` is
    /// cancelled.
    pub async fn run(mut self, stop: CancellationToken) {
        tracing::info!(
            targets = self.config.targets.len(),
            interval_ms = self.config.interval.as_millis() as u64,
            csv = ?self.config.csv_path,
            "stats scraper started"
        );
        let mut tick = tokio::time::interval(self.config.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let span = tracing::info_span!("scrape_round", targets = self.config.targets.len());
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = self.round().instrument(span) => {}
            }
        }
        tracing::info!("stats scraper stopped");
    }

    /// One round: scrape, publish, judge the budgets, store, log, enforce
    /// retention.
    pub async fn round(&mut self) {
        let samples = self.scrape_all().await;
        self.service.publish_round(samples.clone());
        self.service.evaluate_budgets(&samples).await;
        if let Err(err) = self.service.store_samples(&samples).await {
            tracing::error!(error = %err, cause = ?std::error::Error::source(&err), "storing stats samples failed");
        }
        let cutoff_ms = vdm_kit::now_ms() - i64::try_from(self.config.retention.as_millis()).unwrap_or(i64::MAX);
        if let Some(csv) = self.csv.take() {
            let lines: Vec<String> = samples.iter().map(StatsSample::csv_line).collect();
            let slack_ms = i64::try_from((self.config.retention / 10).as_millis()).unwrap_or(i64::MAX);
            let joined = tokio::task::spawn_blocking(move || {
                let mut csv = csv;
                let result = csv.append(&lines, cutoff_ms, slack_ms);
                (csv, result)
            })
            .await;
            match joined {
                Ok((csv, result)) => {
                    if let Err(err) = result {
                        tracing::error!(error = %err, path = %csv.path.display(), "appending to the stats csv failed");
                    }
                    self.csv = Some(csv);
                }
                Err(err) => tracing::error!(error = %err, "stats csv task failed"),
            }
        }
        match self.service.delete_samples_before(cutoff_ms).await {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "old stats samples deleted"),
            Err(err) => tracing::error!(error = %err, "deleting old stats samples failed"),
        }
    }

    /// Reads every target (each distinct URL once, all at the same time)
    /// and returns one sample per target, in configuration order.
    async fn scrape_all(&mut self) -> Vec<StatsSample> {
        let mut urls: Vec<&str> = self.config.targets.iter().map(|t| t.url.as_str()).collect();
        urls.sort_unstable();
        urls.dedup();
        let fetches = urls.iter().map(|url| {
            let url = (*url).to_owned();
            let client = self.client.clone();
            let timeout = self.config.timeout;
            async move {
                let start = Instant::now();
                let result = fetch(&client, &url, timeout).await;
                (url, result, start.elapsed())
            }
        });
        let fetched = futures_util::future::join_all(fetches).await;
        let at_ms = vdm_kit::now_ms();
        let now = Instant::now();
        let targets: Vec<Target> = self.config.targets.clone();
        let mut samples = Vec::with_capacity(targets.len());
        for target in &targets {
            let Some((_, result, elapsed)) = fetched.iter().find(|(url, _, _)| *url == target.url) else {
                continue;
            };
            let name = target.name.clone();
            metrics::histogram!("vdm_metrics_scrape_duration_seconds", "target" => name.clone())
                .record(elapsed.as_secs_f64());
            match result {
                Ok(text) => {
                    metrics::gauge!("vdm_metrics_target_up", "target" => name).set(1.0);
                    let current = Scrape::parse_for(text, &target.name);
                    let previous = self.previous.get(&target.name);
                    let elapsed_secs = previous.map_or(0.0, |(_, at)| now.duration_since(*at).as_secs_f64());
                    let snap = snapshot(previous.map(|(s, _)| s), &current, elapsed_secs);
                    self.previous.insert(target.name.clone(), (current, now));
                    samples.push(StatsSample::up(&target.name, at_ms, snap));
                }
                Err(why) => {
                    metrics::gauge!("vdm_metrics_target_up", "target" => name.clone()).set(0.0);
                    metrics::counter!("vdm_metrics_scrape_failures_total", "target" => name).increment(1);
                    tracing::warn!(target_name = %target.name, url = %target.url, error = %why, "scrape failed");
                    // The next good scrape starts a new window.
                    self.previous.remove(&target.name);
                    samples.push(StatsSample::down(&target.name, at_ms, why.clone()));
                }
            }
        }
        samples
    }
}

/// GETs one target's text; the error says why in a few words.
async fn fetch(client: &Client<HttpConnector, Empty<Bytes>>, url: &str, timeout: Duration) -> Result<String, String> {
    let request = http::Request::get(url)
        .body(Empty::new())
        .map_err(|e| format!("bad url: {e}"))?;
    let read = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| format!("request failed: {e}"))?;
        if !response.status().is_success() {
            return Err(format!("status {}", response.status().as_u16()));
        }
        let body = Limited::new(response.into_body(), MAX_BODY_BYTES)
            .collect()
            .await
            .map_err(|e| format!("reading the body failed: {e}"))?
            .to_bytes();
        String::from_utf8(body.to_vec()).map_err(|_| "the body is not UTF-8".to_owned())
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(result) => result,
        Err(_) => Err(format!("no answer within {} ms", timeout.as_millis())),
    }
}

/// The CSV file of samples: a header once, then a line per sample; lines
/// older than the retention are dropped by rewriting the file, which
/// happens once they are `slack` older than the cutoff, not every round.
struct CsvLog {
    path: PathBuf,
    /// The time of the first line, once known (`None`: not read yet).
    oldest_ms: Option<Option<i64>>,
}

impl CsvLog {
    fn new(path: PathBuf) -> CsvLog {
        CsvLog { path, oldest_ms: None }
    }

    fn append(&mut self, lines: &[String], cutoff_ms: i64, slack_ms: i64) -> std::io::Result<()> {
        use std::io::Write;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let oldest = match self.oldest_ms {
            Some(oldest) => oldest,
            None => {
                set_aside_other_formats(&self.path)?;
                first_line_time(&self.path)?
            }
        };
        let oldest = match oldest {
            Some(t) if t < cutoff_ms.saturating_sub(slack_ms) => compact(&self.path, cutoff_ms)?,
            other => other,
        };
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?;
        let mut text = String::new();
        if file.metadata()?.len() == 0 {
            text.push_str(CSV_HEADER);
            text.push('\n');
        }
        for line in lines {
            text.push_str(line);
            text.push('\n');
        }
        file.write_all(text.as_bytes())?;
        let first_new = lines.first().and_then(|l| csv_line_time(l));
        self.oldest_ms = Some(oldest.or(first_new));
        Ok(())
    }
}

/// Renames a file whose header is not [`CSV_HEADER`] (written by an
/// earlier version, with other columns) to `<name>.<unix ms>.old`, so new
/// lines never land under another header.
fn set_aside_other_formats(path: &Path) -> std::io::Result<()> {
    use std::io::BufRead;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(err) => return Err(err),
    };
    let header = std::io::BufReader::new(file).lines().next().transpose()?;
    match header {
        None => Ok(()),
        Some(header) if header == CSV_HEADER => Ok(()),
        Some(_) => {
            let mut aside = path.as_os_str().to_owned();
            aside.push(format!(".{}.old", vdm_kit::now_ms()));
            std::fs::rename(path, &aside)?;
            tracing::warn!(
                path = %path.display(),
                moved_to = %Path::new(&aside).display(),
                "stats csv had other columns; set it aside and started a new one"
            );
            Ok(())
        }
    }
}

/// The time of the first data line of the file (`None`: no file, or no line).
fn first_line_time(path: &Path) -> std::io::Result<Option<i64>> {
    use std::io::BufRead;
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => return Err(err),
    };
    for line in std::io::BufReader::new(file).lines().take(2) {
        if let Some(t) = csv_line_time(&line?) {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// Rewrites the file without the lines older than `cutoff_ms` (through a
/// temporary file and a rename, so a crash leaves one or the other);
/// returns the time of the first line kept.
fn compact(path: &Path, cutoff_ms: i64) -> std::io::Result<Option<i64>> {
    let text = std::fs::read_to_string(path)?;
    let mut kept = String::with_capacity(text.len());
    kept.push_str(CSV_HEADER);
    kept.push('\n');
    let mut oldest = None;
    let mut dropped = 0u64;
    for line in text.lines() {
        match csv_line_time(line) {
            Some(t) if t >= cutoff_ms => {
                oldest = oldest.or(Some(t));
                kept.push_str(line);
                kept.push('\n');
            }
            Some(_) => dropped += 1,
            None => {}
        }
    }
    let tmp = path.with_extension("csv.tmp");
    std::fs::write(&tmp, kept)?;
    std::fs::rename(&tmp, path)?;
    tracing::debug!(dropped, path = %path.display(), "stats csv compacted");
    Ok(oldest)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_csv_with_other_columns_is_set_aside() {
        let dir = std::env::temp_dir().join(format!("vdm-csv-old-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("stats.csv");
        std::fs::write(
            &path,
            "timestamp,service,memory_mb\n2026-01-01T00:00:00.000Z,quest,1.0\n",
        )
        .unwrap();
        let mut log = CsvLog::new(path.clone());
        log.append(&[StatsSample::down("quest", 1_000, "x".into()).csv_line()], 0, 0)
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some(CSV_HEADER));
        assert_eq!(text.lines().count(), 2);
        let aside: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".old"))
            .collect();
        assert_eq!(aside.len(), 1, "the old file is kept beside it");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn csv_gets_one_header_and_loses_old_lines() {
        let dir = std::env::temp_dir().join(format!("vdm-csv-{}", std::process::id()));
        let path = dir.join("nested").join("stats.csv");
        let _ = std::fs::remove_dir_all(&dir);
        let line = |ms: i64| StatsSample::down("quest", ms, "x".into()).csv_line();
        let mut log = CsvLog::new(path.clone());
        log.append(&[line(1_000), line(1_000)], 0, 0).unwrap();
        log.append(&[line(5_000)], 0, 0).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().next(), Some(CSV_HEADER));
        assert_eq!(text.lines().count(), 4);
        // Within the slack: nothing rewritten yet.
        log.append(&[line(6_000)], 1_500, 1_000).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap().lines().count(), 5);
        // A new process on the same file reads its first line's time.
        let mut log = CsvLog::new(path.clone());
        log.append(&[line(9_000)], 4_000, 1_000).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let times: Vec<i64> = text.lines().filter_map(csv_line_time).collect();
        assert_eq!(times, vec![5_000, 6_000, 9_000]);
        assert_eq!(text.matches(CSV_HEADER).count(), 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
