//! Serving a vdm gRPC service, and connecting to one.
//!
//! Every server gets `grpc.health.v1` health, server reflection over the
//! vdm descriptors, and the [`RpcServerLayer`] span and metrics; every client
//! channel gets the [`RpcClientLayer`].

use std::time::Duration;

use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic::transport::{Channel, Endpoint};
use tonic_health::ServingStatus;

use crate::tower::rpc_client::{RpcClient, RpcClientLayer};
use crate::tower::rpc_server::RpcServerLayer;

/// A gRPC server failure.
#[derive(Debug, thiserror::Error)]
pub enum GrpcError {
    /// Reflection could not read the descriptor set.
    #[error("cannot build the reflection service")]
    Reflection(#[from] tonic_reflection::server::Error),
    /// The server stopped with an error.
    #[error("grpc server failed")]
    Transport(#[from] tonic::transport::Error),
    /// An address to connect to is not a valid URI.
    #[error("invalid service address {0:?}")]
    InvalidAddress(String),
}

/// Serves `routes` (one vdm service) on `listener` until `shutdown`
/// completes, then drains in-flight calls.
///
/// `service_name` is the full gRPC name (`vdm.quest.v1.QuestService`) that
/// health checks report as serving while the server runs and as not serving
/// once shutdown has begun.
pub async fn serve(
    listener: TcpListener,
    service_name: &'static str,
    routes: Routes,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), GrpcError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(service_name, ServingStatus::Serving)
        .await;
    health_reporter.set_service_status("", ServingStatus::Serving).await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(vdm_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let routes = routes.add_service(health_service).add_service(reflection);

    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let shutdown = async move {
        shutdown.await;
        health_reporter
            .set_service_status(service_name, ServingStatus::NotServing)
            .await;
        health_reporter.set_service_status("", ServingStatus::NotServing).await;
        tracing::info!(service = service_name, "grpc server draining");
    };
    tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(RpcServerLayer)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// A gRPC channel with trace propagation and client metrics.
pub type GrpcChannel = RpcClient<Channel>;

/// Creates a lazily connecting channel to `address` (`http://host:port`).
///
/// The channel reconnects by itself after the service restarts; every call
/// gets `timeout` as its deadline.
pub fn channel(address: &str, timeout: Duration) -> Result<GrpcChannel, GrpcError> {
    let endpoint = Endpoint::from_shared(address.to_owned())
        .map_err(|_| GrpcError::InvalidAddress(address.to_owned()))?
        .connect_timeout(Duration::from_secs(2))
        .timeout(timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_while_idle(true);
    Ok(RpcClientLayer.layer_channel(endpoint.connect_lazy()))
}

impl RpcClientLayer {
    fn layer_channel(self, channel: Channel) -> GrpcChannel {
        tower::Layer::layer(&self, channel)
    }
}
