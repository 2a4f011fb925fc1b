//! Serving a vdm gRPC service, and connecting to one.
//!
//! Every server gets `grpc.health.v1` health, server reflection over the
//! vdm descriptors, and the [`RpcServerLayer`] span and metrics; every client
//! channel gets the [`RpcClientLayer`].
//!
//! A channel reaches its service over HTTP/2 ([`channel`]), or, when the
//! service runs in the same process, by calling its server stack directly
//! ([`local_channel`]): the same tonic client and server code, the same
//! layers (spans, metrics, the artificial delay), the same deadline, but no
//! socket, no HTTP/2 framing and no HPACK.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
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
use crate::config::{ConfigError, Env};
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
/// it to reconnect (spreads callers over the pods a Service has now), by
/// default.
pub const MAX_CONNECTION_AGE: Duration = Duration::from_secs(300);
/// How long calls in flight on an aged connection may still run, by default.
pub const MAX_CONNECTION_AGE_GRACE: Duration = Duration::from_secs(30);

/// How long a server keeps a caller's HTTP/2 connection: after `max` it
/// sends GOAWAY (the caller reconnects, through the Kubernetes Service, to
/// any pod), and calls still running on it get `grace` to finish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionAge {
    /// Age at which the server asks the caller to reconnect.
    pub max: Duration,
    /// Time calls in flight on an aged connection may still take.
    pub grace: Duration,
}

impl Default for ConnectionAge {
    fn default() -> ConnectionAge {
        ConnectionAge {
            max: MAX_CONNECTION_AGE,
            grace: MAX_CONNECTION_AGE_GRACE,
        }
    }
}

impl ConnectionAge {
    /// Reads `VDM_GRPC_MAX_CONNECTION_AGE_SECS` (default 300) and
    /// `VDM_GRPC_MAX_CONNECTION_AGE_GRACE_SECS` (default 30); both must be
    /// positive.
    pub fn from_env(env: &Env) -> Result<ConnectionAge, ConfigError> {
        Ok(ConnectionAge {
            max: env.secs_or("VDM_GRPC_MAX_CONNECTION_AGE_SECS", MAX_CONNECTION_AGE)?,
            grace: env.secs_or("VDM_GRPC_MAX_CONNECTION_AGE_GRACE_SECS", MAX_CONNECTION_AGE_GRACE)?,
        })
    }
}

/// How a server runs, beyond what every server gets.
#[derive(Debug, Clone, Copy, Default)]
pub struct ServeOptions {
    /// Holds every call back this long before handling it. Tests only: it
    /// makes a service slow on purpose. `None` in every real configuration.
    pub artificial_delay: Option<Duration>,
}

/// A service's routes with what every vdm server adds: `grpc.health.v1`
/// (reporting `service_name` as serving) and reflection v1 and v1alpha.
/// The reporter turns health to not serving when the server drains.
pub async fn complete_routes(
    service_name: &'static str,
    routes: Routes,
) -> Result<(Routes, tonic_health::server::HealthReporter), GrpcError> {
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
    Ok((routes, health_reporter))
}

/// A service running in this process, as a caller in the same process
/// calls it: its completed routes behind the same layers the network server
/// puts in front of them.
pub type LocalService =
    tower::util::BoxCloneSyncService<http::Request<tonic::body::Body>, http::Response<tonic::body::Body>, Infallible>;

/// The in-process entry of completed `routes` (see [`complete_routes`]).
pub fn local_service(routes: Routes, options: ServeOptions) -> LocalService {
    let stack = tower::ServiceBuilder::new()
        // As in `serve`: the span and metrics see the whole call.
        .layer(RpcServerLayer)
        .layer(DelayLayer::new(options.artificial_delay))
        .service(routes);
    tower::util::BoxCloneSyncService::new(stack)
}

/// Serves completed `routes` (see [`complete_routes`]) on `listener` until
/// `shutdown` completes, then reports not serving and drains in-flight
/// calls.
pub async fn serve_routes(
    listener: TcpListener,
    service_name: &'static str,
    routes: Routes,
    health_reporter: tonic_health::server::HealthReporter,
    shutdown: impl Future<Output = ()> + Send,
    options: ServeOptions,
    connection_age: ConnectionAge,
) -> Result<(), GrpcError> {
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
        // the connection age makes callers reconnect (through the Service,
        // to any pod); calls in flight get the grace period to finish.
        .max_connection_age(connection_age.max)
        .max_connection_age_grace(connection_age.grace)
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
pub type GrpcChannel = RpcClient<Transport>;

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
    Ok(tower::Layer::layer(&RpcClientLayer, Transport::Http(channel)))
}

/// Where a service of this process is called once it is built. A caller
/// built before the service holds the empty slot, and its calls go
/// in-process from the moment the slot is filled: so the order in which one
/// process builds its services does not decide which calls cross a socket.
#[derive(Clone, Default)]
pub struct LocalSlot(Arc<SlotInner>);

#[derive(Default)]
struct SlotInner {
    service: OnceLock<LocalService>,
    filled: tokio::sync::Notify,
}

impl LocalSlot {
    /// A slot that already holds `service`.
    pub fn filled(service: LocalService) -> LocalSlot {
        let slot = LocalSlot::default();
        slot.fill(service);
        slot
    }

    /// Puts `service` in the slot and wakes the calls waiting for it;
    /// `false` when it already held one (which stays).
    pub fn fill(&self, service: LocalService) -> bool {
        let first = self.0.service.set(service).is_ok();
        self.0.filled.notify_waiters();
        first
    }

    /// Whether the service is there yet.
    pub fn is_filled(&self) -> bool {
        self.0.service.get().is_some()
    }

    /// The service, once the slot is filled.
    async fn service(&self) -> LocalService {
        loop {
            // Registered before the check, so a fill in between still wakes it.
            let filled = self.0.filled.notified();
            if let Some(service) = self.0.service.get() {
                return service.clone();
            }
            filled.await;
        }
    }
}

/// A channel to a service in this process: calls go straight to the
/// [`LocalService`] in `slot`, each with `timeout` as its deadline. A call
/// made before the slot is filled waits for it within that deadline, as a
/// call to a bound server that is not serving yet would. Nothing can be
/// unreachable, so there is no breaker.
pub fn local_channel(slot: LocalSlot, timeout: Duration) -> GrpcChannel {
    tower::Layer::layer(&RpcClientLayer, Transport::Local { slot, timeout })
}

/// How a [`GrpcChannel`] reaches its service.
// A channel is made once per peer and lives as long as its client; the
// size of the HTTP variant costs nothing per call.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum Transport {
    /// Over HTTP/2 to an address.
    Http(HttpChannel),
    /// In this process.
    Local {
        /// The service's server stack, once it is built.
        slot: LocalSlot,
        /// Every call's deadline.
        timeout: Duration,
    },
}

impl tower::Service<http::Request<tonic::body::Body>> for Transport {
    type Response = http::Response<ResponseBody>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both are always ready: the HTTP client pools connections, a
        // local service has no back pressure of its own.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        match self {
            Transport::Http(channel) => {
                let call = channel.call(request);
                Box::pin(async move { Ok(call.await?.map(|body| ResponseBody::Http { body })) })
            }
            Transport::Local { slot, timeout } => {
                let slot = slot.clone();
                let call = async move { tower::ServiceExt::oneshot(slot.service().await, request).await };
                let timeout = *timeout;
                Box::pin(async move {
                    match tokio::time::timeout(timeout, call).await {
                        Ok(Ok(response)) => Ok(response.map(|body| ResponseBody::Local { body })),
                        Ok(Err(never)) => match never {},
                        Err(_) => Err(tonic::Status::deadline_exceeded(format!(
                            "the in-process service did not answer within {timeout:?}"
                        ))
                        .into()),
                    }
                })
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The body of an answer, from either transport.
    #[project = ResponseBodyProj]
    pub enum ResponseBody {
        /// From the network.
        Http { #[pin] body: hyper::body::Incoming },
        /// From a service in this process.
        Local { #[pin] body: tonic::body::Body },
    }
}

impl http_body::Body for ResponseBody {
    type Data = bytes::Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        match self.project() {
            ResponseBodyProj::Http { body } => body.poll_frame(cx).map_err(Into::into),
            ResponseBodyProj::Local { body } => body.poll_frame(cx).map_err(|status| Box::new(status) as _),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            ResponseBody::Http { body } => body.is_end_stream(),
            ResponseBody::Local { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> http_body::SizeHint {
        match self {
            ResponseBody::Http { body } => body.size_hint(),
            ResponseBody::Local { body } => body.size_hint(),
        }
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Serves health and reflection with `age` on a port-0 listener; returns
    /// its address and the handle that stops it.
    async fn server(age: ConnectionAge) -> (std::net::SocketAddr, tokio_util::sync::CancellationToken) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = bound_addr(&listener);
        let (routes, health) = complete_routes("test.v1.Test", Routes::default()).await.unwrap();
        let stop = tokio_util::sync::CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        tokio::spawn(serve_routes(
            listener,
            "test.v1.Test",
            routes,
            health,
            shutdown,
            ServeOptions::default(),
            age,
        ));
        (addr, stop)
    }

    /// Opens an HTTP/2 connection and answers when the server ends it.
    async fn connection_end(addr: std::net::SocketAddr, wait: Duration) -> Option<Result<(), h2::Error>> {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (_client, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::time::timeout(wait, connection).await.ok()
    }

    #[tokio::test]
    async fn a_server_ends_a_connection_past_its_age_and_keeps_a_young_one() {
        let short = ConnectionAge {
            max: Duration::from_millis(200),
            grace: Duration::from_millis(200),
        };
        let (addr, stop) = server(short).await;
        let ended = connection_end(addr, Duration::from_secs(5)).await;
        assert!(
            matches!(ended, Some(Ok(()))),
            "the aged connection ends with GOAWAY: {ended:?}"
        );
        stop.cancel();

        let (addr, stop) = server(ConnectionAge::default()).await;
        let ended = connection_end(addr, Duration::from_secs(1)).await;
        assert!(ended.is_none(), "a connection younger than 5 minutes stays: {ended:?}");
        stop.cancel();
    }

    #[tokio::test]
    async fn a_local_call_made_before_its_service_is_built_waits_for_it_within_the_deadline() {
        use tonic_health::pb::HealthCheckRequest;
        use tonic_health::pb::health_client::HealthClient;
        let check = || HealthCheckRequest {
            service: "test.v1.Test".to_owned(),
        };

        // Never filled: the call ends at its deadline, not before, not never.
        let empty = LocalSlot::default();
        let mut client = HealthClient::new(local_channel(empty, Duration::from_millis(100)));
        let status = client.check(check()).await.unwrap_err();
        assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");

        // Filled while the call waits: the call is answered in-process.
        let slot = LocalSlot::default();
        let mut client = HealthClient::new(local_channel(slot.clone(), Duration::from_secs(5)));
        let call = tokio::spawn(async move { client.check(check()).await });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!call.is_finished(), "the call waits for the service");
        let (routes, _health) = complete_routes("test.v1.Test", Routes::default()).await.unwrap();
        assert!(slot.fill(local_service(routes, ServeOptions::default())));
        let answer = call.await.unwrap().unwrap().into_inner();
        assert_eq!(answer.status, ServingStatus::Serving as i32);
    }

    #[test]
    fn connection_age_comes_from_the_environment_and_must_be_positive() {
        assert_eq!(
            ConnectionAge::from_env(&Env::from_pairs::<&str, &str>([])).unwrap(),
            ConnectionAge::default()
        );
        let env = Env::from_pairs([
            ("VDM_GRPC_MAX_CONNECTION_AGE_SECS", "60"),
            ("VDM_GRPC_MAX_CONNECTION_AGE_GRACE_SECS", "5"),
        ]);
        let age = ConnectionAge::from_env(&env).unwrap();
        assert_eq!((age.max, age.grace), (Duration::from_secs(60), Duration::from_secs(5)));
        let err = ConnectionAge::from_env(&Env::from_pairs([("VDM_GRPC_MAX_CONNECTION_AGE_SECS", "0")])).unwrap_err();
        assert!(err.to_string().contains("VDM_GRPC_MAX_CONNECTION_AGE_SECS"), "{err}");
    }
}
