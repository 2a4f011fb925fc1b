//! The gRPC face of the metrics service: convert the request, call
//! [`MetricsService`], convert the answer back. Protobuf types stop here.

use tonic::{Request, Response, Status};
use vdm_proto::metrics::v1 as pb;
use vdm_proto::metrics::v1::metrics_service_server::MetricsServiceServer;

use crate::domain::ClientBatchInput;
use crate::domain::stats::StatsSample;
use crate::domain::telemetry::ClientSampleInput;
use crate::service::MetricsService;

/// The full gRPC name of the service, as health checks report it.
pub const SERVICE_NAME: &str = "vdm.metrics.v1.MetricsService";

/// Implements `vdm.metrics.v1.MetricsService` over [`MetricsService`].
#[derive(Clone)]
pub struct MetricsGrpc {
    service: MetricsService,
}

impl MetricsGrpc {
    /// Wraps the service for tonic; batches may arrive compressed.
    pub fn server(service: MetricsService) -> MetricsServiceServer<MetricsGrpc> {
        use tonic::codec::CompressionEncoding;
        MetricsServiceServer::new(MetricsGrpc { service })
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
    }
}

impl From<pb::RecordClientSamplesRequest> for ClientBatchInput {
    fn from(r: pb::RecordClientSamplesRequest) -> ClientBatchInput {
        ClientBatchInput {
            player_id: r.player_id,
            client_version: r.client_version,
            device_class: r.device_class,
            samples: r
                .samples
                .into_iter()
                .map(|s| ClientSampleInput {
                    frame_time_ms: s.frame_time_ms,
                    gc_collections: s.gc_collections,
                    gc_pause_ms: s.gc_pause_ms,
                    memory_mb: s.memory_mb,
                    input_latency_ms: s.input_latency_ms,
                    event_dispatch_ms: s.event_dispatch_ms,
                    systems: s.systems.into_iter().collect(),
                    gc_alloc_bytes: s.gc_alloc_bytes,
                })
                .collect(),
        }
    }
}

#[tonic::async_trait]
impl pb::metrics_service_server::MetricsService for MetricsGrpc {
    async fn record_client_samples(
        &self,
        request: Request<pb::RecordClientSamplesRequest>,
    ) -> Result<Response<pb::RecordClientSamplesResponse>, Status> {
        let input = ClientBatchInput::from(request.into_inner());
        let accepted = self.service.record_client_samples(input, vdm_kit::now_ms()).await?;
        Ok(Response::new(pb::RecordClientSamplesResponse {
            accepted: u32::try_from(accepted).unwrap_or(u32::MAX),
        }))
    }

    async fn client_stats(
        &self,
        request: Request<pb::ClientStatsRequest>,
    ) -> Result<Response<pb::ClientStatsResponse>, Status> {
        let r = request.into_inner();
        let system = Some(r.system.as_str()).filter(|s| !s.is_empty());
        let version = Some(r.client_version.as_str()).filter(|s| !s.is_empty());
        let (metric, p) = self.service.client_stats(&r.metric, system, version).await?;
        Ok(Response::new(pb::ClientStatsResponse {
            metric: metric.name().to_owned(),
            count: p.count,
            p50: p.p50,
            p95: p.p95,
            p99: p.p99,
        }))
    }

    async fn get_budgets(
        &self,
        _request: Request<pb::GetBudgetsRequest>,
    ) -> Result<Response<pb::GetBudgetsResponse>, Status> {
        let budgets = self
            .service
            .budgets()
            .into_iter()
            .map(|s| pb::BudgetState {
                name: s.budget.name,
                description: s.budget.description,
                service: s.budget.service.unwrap_or_default(),
                metric: s.budget.metric.name().to_owned(),
                max: s.budget.max,
                min: s.budget.min,
                min_when_idle: s.budget.min_when_idle,
                state: s.verdict.name().to_owned(),
                since_ms: s.since_ms,
                value: s.value,
                evaluated_at_ms: s.evaluated_at_ms,
                reason: s.reason,
            })
            .collect();
        Ok(Response::new(pb::GetBudgetsResponse { budgets }))
    }

    async fn get_stats(
        &self,
        _request: Request<pb::GetStatsRequest>,
    ) -> Result<Response<pb::GetStatsResponse>, Status> {
        let (latest, interval) = self.service.stats();
        Ok(Response::new(pb::GetStatsResponse {
            services: latest.iter().map(pb::ServiceSnapshot::from).collect(),
            interval_ms: u64::try_from(interval.as_millis()).unwrap_or(u64::MAX),
        }))
    }

    async fn get_stats_history(
        &self,
        request: Request<pb::GetStatsHistoryRequest>,
    ) -> Result<Response<pb::GetStatsHistoryResponse>, Status> {
        let r = request.into_inner();
        let (samples, truncated) = self.service.stats_history(&r.service, r.from_ms, r.to_ms).await?;
        Ok(Response::new(pb::GetStatsHistoryResponse {
            samples: samples.iter().map(pb::ServiceSnapshot::from).collect(),
            truncated,
        }))
    }
}

impl From<&StatsSample> for pb::ServiceSnapshot {
    fn from(sample: &StatsSample) -> pb::ServiceSnapshot {
        let s = sample.snapshot.as_ref();
        pb::ServiceSnapshot {
            service: sample.service.clone(),
            scraped_at_ms: sample.at_ms,
            up: sample.up,
            memory_mb: s.and_then(|s| s.memory_mb),
            cpu_percent: s.and_then(|s| s.cpu_percent),
            request_count: s.map(|s| s.request_count),
            error_count: s.map(|s| s.error_count),
            throughput_rps: s.and_then(|s| s.throughput_rps),
            p50_ms: s.and_then(|s| s.p50_ms),
            p99_ms: s.and_then(|s| s.p99_ms),
            error: sample.error.clone().unwrap_or_default(),
        }
    }
}
