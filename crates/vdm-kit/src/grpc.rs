//! Serving a vdm gRPC service, and connecting to one.
//!
//! Every server gets `grpc.health.v1` health, server reflection over the
//! vdm descriptors, and the [`RpcServerLayer`] span and metrics; every client
//! channel gets the [`RpcClientLayer`].

use std::time::Duration;

use futures_util::future::BoxFuture;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tonic::service::Routes;
use tonic::transport::server::TcpIncoming;
use tonic_health::ServingStatus;

use crate::breaker::Breaker;
use crate::tower::delay::DelayLayer;
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

/// How long a caller's connection to a server lives before the server asks
/// it to reconnect (spreads callers over the pods a Service has now).
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// How long calls in flight on an aged connection may still run.
pub const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(30);

/// How a server runs, beyond what every server gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Holds every call back this long before handling it. Tests only: it
    /// makes a service slow on purpose. `None` in every real configuration.
    pub artificial_delay: Option<Duration>,
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
    serve_with(listener, service_name, routes, shutdown, ServeOptions::default()).await
}

/// [`serve`], with [`ServeOptions`].
pub async fn serve_with(
    listener: TcpListener,
    service_name: &'static str,
    routes: Routes,
    shutdown: impl Future<Output = ()> + Send,
    options: ServeOptions,
) -> Result<(), GrpcError> {
    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter
        .set_service_status(service_name, ServingStatus::Serving)
        .await;
    health_reporter.set_service_status("", ServingStatus::Serving).await;
    // Reflection in both versions: grpcurl and most tools ask v1, older
    // ones (and some GUIs) only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(vdm_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let routes = routes
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);

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
        // Callers keep one HTTP/2 connection per service address; without an
        // age limit a gateway stays pinned to the pods it first reached and
        // pods the autoscaler adds get no traffic from it. GOAWAY after
        // MAX_CONNECTION_AGE makes callers reconnect (through the Service,
        // to any pod); calls in flight get the grace period to finish.
        .max_connection_age(MAX_CONNECTION_AGE)
        .max_connection_age_grace(MAX_CONNECTION_AGE_GRACE)
        // Outermost: the span and metrics see the whole call, delay included.
        .layer(RpcServerLayer)
        .layer(DelayLayer::new(options.artificial_delay))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// The address a listener is bound to (a bound listener always has one).
pub fn bound_addr(listener: &TcpListener) -> std::net::SocketAddr {
    listener
        .local_addr()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
}

/// A gRPC channel with trace propagation and client metrics.
pub type GrpcChannel = RpcClient<HttpChannel>;

/// Creates a lazily connecting channel to `address` (`http://host:port`).
///
/// The channel reconnects by itself after the service restarts; every call
/// gets `timeout` as its deadline, and a call that cannot reach the service
/// fails with `Unavailable`. A [`Breaker`] per channel fails calls fast while
/// the service keeps being unreachable.
pub fn channel(address: &str, timeout: Duration) -> Result<GrpcChannel, GrpcError> {
    let invalid = || GrpcError::InvalidAddress(address.to_owned());
    let uri: http::Uri = address.parse().map_err(|_| invalid())?;
    let (Some(scheme), Some(authority)) = (uri.scheme().cloned(), uri.authority().cloned()) else {
        return Err(invalid());
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(2)));
    connector.enforce_http(scheme == http::uri::Scheme::HTTP);
    let client = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .http2_keep_alive_while_idle(true)
        .timer(hyper_util::rt::TokioTimer::new())
        .pool_idle_timeout(Duration::from_secs(300))
        .build(connector);
    let channel = HttpChannel {
        client,
        breaker: Breaker::new(authority.as_str()),
        scheme,
        authority,
        timeout,
    };
    Ok(tower::Layer::layer(&RpcClientLayer, channel))
}

/// The transport under [`GrpcChannel`]: a pooled HTTP/2 client that sends
/// each call straight to the connection (no extra buffer task between the
/// caller and the socket), stamping the service's address on each request.
#[derive(Clone)]
pub struct HttpChannel {
    client: Client<HttpConnector, tonic::body::Body>,
    breaker: Breaker,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    timeout: Duration,
}

impl tower::Service<http::Request<tonic::body::Body>> for HttpChannel {
    type Response = http::Response<hyper::body::Incoming>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: http::Request<tonic::body::Body>) -> Self::Future {
        let mut parts = std::mem::take(request.uri_mut()).into_parts();
        parts.scheme = Some(self.scheme.clone());
        parts.authority = Some(self.authority.clone());
        match http::Uri::from_parts(parts) {
            Ok(uri) => *request.uri_mut() = uri,
            Err(err) => {
                return Box::pin(async move { Err(tonic::Status::internal(format!("bad rpc uri: {err}")).into()) });
            }
        }
        let authority = self.authority.clone();
        let ticket = match self.breaker.call() {
            Ok(ticket) => ticket,
            Err(wait) => {
                return Box::pin(async move {
                    Err(tonic::Status::unavailable(format!(
                        "{authority} is failing: circuit open, next try in {} ms",
                        wait.as_millis()
                    ))
                    .into())
                });
            }
        };
        let call = self.client.request(request);
        let timeout = self.timeout;
        Box::pin(async move {
            match tokio::time::timeout(timeout, call).await {
                Ok(Ok(response)) => {
                    ticket.succeeded();
                    Ok(response)
                }
                Ok(Err(err)) => {
                    if is_service_failure(&err) {
                        ticket.failed();
                    } else {
                        // The service answered; this one call broke.
                        ticket.succeeded();
                    }
                    let cause = std::error::Error::source(&err)
                        .map(|c| c.to_string())
                        .unwrap_or_default();
                    Err(tonic::Status::unavailable(format!("{authority} unreachable: {err} {cause}")).into())
                }
                Err(_) => {
                    ticket.failed();
                    Err(
                        tonic::Status::deadline_exceeded(format!("{authority} did not answer within {timeout:?}"))
                            .into(),
                    )
                }
            }
        })
    }
}

/// Whether a call that failed below gRPC says the service is unreachable
/// or broken (what the breaker counts), rather than that this one call was
/// refused.
///
/// A reset of one HTTP/2 stream (an answer over a header limit, a refused
/// stream) concerns that call only: the connection, and the calls of every
/// other caller on it, are fine. Counting it would let one caller's request
/// open the breaker for everybody.
fn is_service_failure(err: &hyper_util::client::legacy::Error) -> bool {
    if err.is_connect() {
        return true;
    }
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        if let Some(h2) = cause.downcast_ref::<h2::Error>() {
            return !h2.is_reset() || h2.is_go_away();
        }
        source = cause.source();
    }
    true
}
