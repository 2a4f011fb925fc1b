//! The metrics service over gRPC, started through the kit's skeleton on each
//! back end (`vdm_kit::testing`): client telemetry in, percentiles out; the
//! scraper's snapshots and budget verdicts.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use sea_orm::{ConnectionTrait, DatabaseBackend, Statement};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tonic::Code;
use vdm_kit::config::{CacheConfig, DatabaseConfig};
use vdm_kit::grpc::GrpcChannel;
use vdm_kit::service::Peers;
use vdm_kit::testing::{Backend, TestService, closed_port_url, expect_status};
use vdm_metrics::config::{DEFAULT_INTERVAL, DEFAULT_RETENTION};
use vdm_metrics::domain::budgets::{Budget, parse_budgets};
use vdm_metrics::domain::targets::Target;
use vdm_metrics::domain::telemetry::ClientSampleInput;
use vdm_metrics::domain::{ClientBatch, ClientBatchInput};
use vdm_metrics::store::MetricsStore;
use vdm_metrics::store::migration::Migrator;
use vdm_metrics::{Metrics, MetricsConfig, ScrapeConfig};
use vdm_proto::metrics::v1 as pb;
use vdm_proto::metrics::v1::metrics_service_client::MetricsServiceClient;

vdm_kit::backend_tests!(
    a_batch_is_stored_and_summarized_by_percentile,
    bad_batches_name_the_first_bad_field,
    the_scraper_keeps_each_targets_snapshot_and_judges_budgets,
);

/// Uploads of many sizes, stored one after another through one Postgres
/// connection, leave one insert statement prepared on it, not one per size:
/// the driver keeps every statement text it prepared, on every pooled
/// connection, and a multi-row insert per group size grew that without end.
#[tokio::test]
async fn uploads_of_every_size_share_one_prepared_statement() {
    let mut database = None;
    let capture = |db: DatabaseConfig, cache: CacheConfig| {
        database = Some(db.clone());
        config(Vec::new(), Vec::new())(db, cache)
    };
    // The service migrates the fresh schema; the store below uses it.
    let Some(metrics) = TestService::<Metrics>::start(Backend::External, capture, Peers::default()).await else {
        return;
    };
    let database = DatabaseConfig {
        max_connections: 1,
        min_connections: 1,
        migrate_on_start: false,
        ..database.unwrap()
    };
    let db = vdm_kit::db::connect::<Migrator>(&database, "metrics_prepared_test")
        .await
        .unwrap();
    let store = MetricsStore::new(db.clone());
    for size in 1..=24 {
        let input = ClientBatchInput {
            player_id: 7,
            client_version: "1.0.0".to_owned(),
            device_class: "desktop".to_owned(),
            samples: (0..size)
                .map(|i| ClientSampleInput {
                    frame_time_ms: 10.0 + f64::from(i),
                    gc_alloc_bytes: Some(2048.0),
                    systems: vec![("physics".to_owned(), 0.5)],
                    ..ClientSampleInput::default()
                })
                .collect(),
        };
        store
            .insert_batch(&ClientBatch::parse(input).unwrap(), 1_000)
            .await
            .unwrap();
    }
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let row = db
                .query_one_raw(Statement::from_string(DatabaseBackend::Postgres, sql))
                .await
                .unwrap()
                .unwrap();
            row.try_get_by_index::<i64>(0).unwrap()
        }
    };
    assert_eq!(
        count("SELECT count(*) FROM client_samples").await,
        (1..=24).sum::<i64>()
    );
    assert_eq!(
        count("SELECT count(*) FROM client_system_times").await,
        (1..=24).sum::<i64>()
    );
    // (This query is prepared too: it leaves itself out.)
    let prepared = count(
        "SELECT count(*) FROM pg_prepared_statements \
         WHERE statement ILIKE '%INSERT INTO%client_samples%' AND statement NOT ILIKE '%pg_prepared_statements%'",
    )
    .await;
    assert_eq!(prepared, 1, "one prepared insert for uploads of 24 sizes");
    drop(store);
    metrics.finish().await;
}

/// Two budgets: the memory of the `mill` target, and client frame times.
const BUDGETS: &str = r#"{"budgets": [
    {"name": "mill_memory", "description": "resident memory of the mill", "service": "mill", "metric": "memory_mb", "max": 64},
    {"name": "frames", "description": "client frame time p95", "metric": "client_frame_time_p95_ms", "max": 16.7}
]}"#;

fn config(targets: Vec<Target>, budgets: Vec<Budget>) -> impl FnOnce(DatabaseConfig, CacheConfig) -> MetricsConfig {
    move |database, _cache| MetricsConfig {
        database,
        scrape: ScrapeConfig {
            targets,
            // One round at start, then none while the test runs.
            interval: DEFAULT_INTERVAL,
            timeout: Duration::from_secs(2),
            csv_path: None,
            retention: DEFAULT_RETENTION,
        },
        budgets,
    }
}

async fn start(
    backend: Backend,
    targets: Vec<Target>,
    budgets: Vec<Budget>,
) -> Option<(TestService<Metrics>, MetricsServiceClient<GrpcChannel>)> {
    let metrics = TestService::<Metrics>::start(backend, config(targets, budgets), Peers::default()).await?;
    let client = MetricsServiceClient::new(metrics.channel());
    Some((metrics, client))
}

fn sample(frame_time_ms: f64, systems: &[(&str, f64)]) -> pb::ClientSample {
    pb::ClientSample {
        frame_time_ms,
        gc_collections: Some(1.0),
        gc_pause_ms: Some(0.5),
        memory_mb: Some(512.0),
        input_latency_ms: None,
        event_dispatch_ms: Some(0.2),
        systems: systems.iter().map(|(name, ms)| ((*name).to_owned(), *ms)).collect(),
        gc_alloc_bytes: None,
    }
}

fn batch(version: &str, samples: Vec<pb::ClientSample>) -> pb::RecordClientSamplesRequest {
    pb::RecordClientSamplesRequest {
        player_id: 5,
        client_version: version.to_owned(),
        device_class: "desktop".to_owned(),
        samples,
    }
}

async fn stats(client: &mut MetricsServiceClient<GrpcChannel>, system: &str, version: &str) -> pb::ClientStatsResponse {
    client
        .client_stats(pb::ClientStatsRequest {
            system: system.to_owned(),
            client_version: version.to_owned(),
            metric: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
}

async fn a_batch_is_stored_and_summarized_by_percentile(backend: Backend) {
    let Some((metrics, mut client)) = start(backend, Vec::new(), Vec::new()).await else {
        return;
    };
    assert_eq!(metrics.ready().await, Ok(()));

    let empty = stats(&mut client, "", "").await;
    assert_eq!(empty.metric, "frame_time_ms");
    assert_eq!((empty.count, empty.p50, empty.p95, empty.p99), (0, None, None, None));

    // Frame times 1..=100 ms, animation taking a tenth of each.
    let samples = (1..=100)
        .map(|i| sample(f64::from(i), &[("animation", f64::from(i) / 10.0)]))
        .collect();
    let accepted = client
        .record_client_samples(batch("1.4.2", samples))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.accepted, 100);
    let old = stats(&mut client, "", "1.4.2").await;
    assert_eq!(
        (old.count, old.p50, old.p95, old.p99),
        (100, Some(50.0), Some(95.0), Some(99.0))
    );

    // Ten slow frames of another version: 200..=209 ms.
    let slow = (200..210).map(|i| sample(f64::from(i), &[])).collect();
    client.record_client_samples(batch("2.0.0-beta", slow)).await.unwrap();
    // Nearest rank of 110 values: p50 is the 55th, p95 the 105th, p99 the 109th.
    let all = stats(&mut client, "", "").await;
    assert_eq!(
        (all.count, all.p50, all.p95, all.p99),
        (110, Some(55.0), Some(204.0), Some(208.0))
    );
    let beta = stats(&mut client, "", "2.0.0-beta").await;
    assert_eq!((beta.count, beta.p50), (10, Some(204.0)));

    let animation = stats(&mut client, "animation", "").await;
    assert_eq!(animation.metric, "system_update_ms");
    assert_eq!(
        (animation.count, animation.p50, animation.p99),
        (100, Some(5.0), Some(9.9))
    );
    let unknown = stats(&mut client, "physics", "").await;
    assert_eq!((unknown.count, unknown.p50), (0, None));

    // Allocations: 0, 1024, ..., 9 * 1024 bytes in ten samples; the
    // samples without the field do not count.
    let allocating = (0..10)
        .map(|i| pb::ClientSample {
            gc_alloc_bytes: Some(f64::from(i) * 1024.0),
            ..sample(16.0, &[])
        })
        .collect();
    client.record_client_samples(batch("1.4.2", allocating)).await.unwrap();
    let by_metric = |metric: &str| pb::ClientStatsRequest {
        metric: metric.to_owned(),
        ..pb::ClientStatsRequest::default()
    };
    let alloc = client
        .client_stats(by_metric("gc_alloc_bytes"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(alloc.metric, "gc_alloc_bytes");
    assert_eq!(
        (alloc.count, alloc.p50, alloc.p99),
        (10, Some(4.0 * 1024.0), Some(9.0 * 1024.0))
    );
    // A whole-number column of 32 bits reads back on both databases too.
    let collections = client
        .client_stats(by_metric("gc_collections"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((collections.count, collections.p50), (120, Some(1.0)));
    let unknown = client.client_stats(by_metric("fps")).await;
    expect_status(unknown, Code::InvalidArgument, "metric \"fps\" is not one of");
    metrics.finish().await;
}

async fn bad_batches_name_the_first_bad_field(backend: Backend) {
    let Some((metrics, mut client)) = start(backend, Vec::new(), Vec::new()).await else {
        return;
    };
    let good = || batch("1.4.2", vec![sample(16.0, &[]), sample(17.0, &[("ui", 1.0)])]);
    type Change = fn(&mut pb::RecordClientSamplesRequest);
    let cases: Vec<(Change, &str)> = vec![
        (|b| b.player_id = 0, "player_id must be positive"),
        (
            |b| b.device_class = "Desktop!".to_owned(),
            "device_class \"Desktop!\" has a character outside its charset",
        ),
        (
            |b| b.client_version = String::new(),
            "client_version must be 1 to 32 characters",
        ),
        (|b| b.samples.clear(), "samples must hold at least one sample"),
        (
            |b| b.samples[1].frame_time_ms = -1.0,
            "samples[1].frame_time_ms must be a finite number between 0 and 10000, got -1",
        ),
        (
            |b| b.samples[0].gc_pause_ms = Some(f64::NAN),
            "samples[0].gc_pause_ms must be a finite number between 0 and 10000, got NaN",
        ),
        (
            |b| b.samples[0].gc_collections = Some(1.5),
            "samples[0].gc_collections must be a whole number",
        ),
        (
            |b| {
                b.samples[1].systems = HashMap::from([("UI".to_owned(), 1.0)]);
            },
            "samples[1].systems has a system name \"UI\"",
        ),
        (
            |b| b.samples = (0..501).map(|_| sample(16.0, &[])).collect(),
            "samples holds 501 samples; at most 500 per batch",
        ),
    ];
    for (change, message) in cases {
        let mut bad = good();
        change(&mut bad);
        expect_status(client.record_client_samples(bad).await, Code::InvalidArgument, message);
    }
    assert_eq!(
        stats(&mut client, "", "").await.count,
        0,
        "a refused batch stores nothing"
    );

    let system = client
        .client_stats(pb::ClientStatsRequest {
            system: "Bad!".to_owned(),
            client_version: String::new(),
            metric: String::new(),
        })
        .await;
    expect_status(
        system,
        Code::InvalidArgument,
        "system must be 1 to 32 characters of [a-z0-9_]",
    );
    let range = client
        .get_stats_history(pb::GetStatsHistoryRequest {
            service: String::new(),
            from_ms: Some(2_000),
            to_ms: Some(1_000),
        })
        .await;
    expect_status(range, Code::InvalidArgument, "from must not be after to");
    let service = client
        .get_stats_history(pb::GetStatsHistoryRequest {
            service: "Mill".to_owned(),
            from_ms: None,
            to_ms: None,
        })
        .await;
    expect_status(service, Code::InvalidArgument, "service must be 1 to 32 characters");

    assert_eq!(
        client
            .record_client_samples(good())
            .await
            .unwrap()
            .into_inner()
            .accepted,
        2
    );
    assert_eq!(stats(&mut client, "", "").await.count, 2);
    metrics.finish().await;
}

/// Serves `body` as the Prometheus text of every request on a loopback
/// port; returns its `/metrics` URL.
async fn serve_prometheus_text(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(body.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/metrics")
}

async fn the_scraper_keeps_each_targets_snapshot_and_judges_budgets(backend: Backend) {
    let mill =
        serve_prometheus_text("# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes 104857600\n")
            .await;
    let targets = vec![
        Target {
            name: "mill".to_owned(),
            url: mill,
        },
        Target {
            name: "ghost".to_owned(),
            url: format!("{}/metrics", closed_port_url()),
        },
    ];
    let budgets = parse_budgets(BUDGETS).unwrap();
    let Some((metrics, mut client)) = start(backend, targets, budgets).await else {
        return;
    };

    // The first round runs at start: scraped, published, judged, then
    // stored; once it is stored, everything before is done.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let history = loop {
        let history = client
            .get_stats_history(pb::GetStatsHistoryRequest {
                service: "mill".to_owned(),
                from_ms: None,
                to_ms: None,
            })
            .await
            .unwrap()
            .into_inner();
        if !history.samples.is_empty() {
            break history;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no scrape round stored within 10 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(!history.truncated);
    assert_eq!(history.samples.len(), 1, "one round, one sample per target");
    assert_eq!(history.samples[0].memory_mb, Some(100.0));

    let round = client.get_stats(pb::GetStatsRequest {}).await.unwrap().into_inner();
    assert_eq!(round.interval_ms, 60_000);
    let by_name: HashMap<&str, &pb::ServiceSnapshot> = round.services.iter().map(|s| (s.service.as_str(), s)).collect();
    assert_eq!(by_name.len(), 2);
    let up = by_name["mill"];
    assert!(up.up);
    assert_eq!(up.memory_mb, Some(100.0));
    assert_eq!(up.request_count, Some(0));
    assert_eq!(up.error, "");
    assert_eq!(up.scraped_at_ms, history.samples[0].scraped_at_ms);
    let down = by_name["ghost"];
    assert!(!down.up);
    assert_eq!(down.memory_mb, None);
    assert!(down.error.starts_with("request failed"), "{:?}", down.error);

    let budgets = client
        .get_budgets(pb::GetBudgetsRequest {})
        .await
        .unwrap()
        .into_inner()
        .budgets;
    let verdicts: Vec<(&str, &str, Option<f64>)> = budgets
        .iter()
        .map(|b| (b.name.as_str(), b.state.as_str(), b.value))
        .collect();
    assert_eq!(
        verdicts,
        vec![("mill_memory", "violated", Some(100.0)), ("frames", "no_data", None)]
    );

    let later = client
        .get_stats_history(pb::GetStatsHistoryRequest {
            service: "mill".to_owned(),
            from_ms: Some(up.scraped_at_ms + 1),
            to_ms: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(later.samples.is_empty(), "the range is inclusive of its ends only");
    metrics.finish().await;
}
