//! Observes every gRPC call a client makes: injects the current span's W3C
//! trace context into the call's metadata (so the callee continues the same
//! trace) and records `grpc_client_handled_total` /
//! `grpc_client_handling_seconds` by method and code.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing::instrument::Instrumented;

use super::{code_label, grpc_code_of, intern, rpc_name};
use crate::telemetry;

/// Wraps a gRPC channel in [`RpcClient`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcClientLayer;

impl<S> Layer<S> for RpcClientLayer {
    type Service = RpcClient<S>;

    fn layer(&self, inner: S) -> RpcClient<S> {
        RpcClient { inner }
    }
}

/// The service [`RpcClientLayer`] builds.
#[derive(Debug, Clone)]
pub struct RpcClient<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for RpcClient<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RpcClientFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let method = intern(rpc_name(req.uri().path()));
        let (service, rpc) = method.split_once('/').unwrap_or((method, ""));
        // The client side of the call, as its own span: the callee's span
        // becomes its child, so the time spent on the wire shows.
        let span = tracing::info_span!(
            "grpc_client",
            otel.name = method,
            otel.kind = "client",
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = rpc,
        );
        telemetry::inject_context(&span, req.headers_mut());
        RpcClientFuture {
            inner: self.inner.call(req).instrument(span),
            method,
            start: Instant::now(),
        }
    }
}

pin_project! {
    /// The response future of [`RpcClient`].
    pub struct RpcClientFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        method: &'static str,
        start: Instant,
    }
}

impl<F, R, E> Future for RpcClientFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = std::task::ready!(this.inner.poll(cx));
        let code = match &result {
            Ok(response) => grpc_code_of(response.headers()),
            // The transport failed: the service is down or unreachable.
            Err(_) => tonic::Code::Unavailable,
        };
        let method = *this.method;
        metrics::counter!("grpc_client_handled_total", "grpc_method" => method, "grpc_code" => code_label(code))
            .increment(1);
        metrics::histogram!("grpc_client_handling_seconds", "grpc_method" => method)
            .record(this.start.elapsed().as_secs_f64());
        Poll::Ready(result)
    }
}
