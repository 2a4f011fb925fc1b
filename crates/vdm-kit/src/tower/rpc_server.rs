//! Observes every gRPC call a server handles: a span named after the method
//! (`quest.v1.QuestService/GetQuest`) that continues the caller's W3C trace,
//! and `grpc_server_handled_total` / `grpc_server_handling_seconds` by method
//! and code; `vdm_rpc_requests_in_flight` while calls run.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::instrument::Instrumented;
use tracing::{Instrument, Span};

use super::{code_label, grpc_code_of, intern, rpc_name};
use crate::metrics::InFlight;
use crate::telemetry;

/// Wraps a gRPC server's routes in [`RpcServer`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RpcServerLayer;

impl<S> Layer<S> for RpcServerLayer {
    type Service = RpcServer<S>;

    fn layer(&self, inner: S) -> RpcServer<S> {
        RpcServer { inner }
    }
}

/// The service [`RpcServerLayer`] builds.
#[derive(Debug, Clone)]
pub struct RpcServer<S> {
    inner: S,
}

impl<S, B, R> Service<http::Request<B>> for RpcServer<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RpcServerFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let uri = req.uri().clone();
        let name = rpc_name(uri.path());
        let (service, method) = name.split_once('/').unwrap_or((name, ""));
        let span = tracing::info_span!(
            "grpc_server",
            otel.name = name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = tracing::field::Empty,
            trace_id = tracing::field::Empty,
        );
        telemetry::set_parent_from_headers(&span, req.headers());
        if let Some(trace_id) = span.in_scope(telemetry::current_trace_id) {
            // Every log line of the call carries the id to find it in Jaeger.
            span.record("trace_id", trace_id.as_str());
        }
        RpcServerFuture {
            in_flight: InFlight::new(metrics::gauge!("vdm_rpc_requests_in_flight")),
            inner: self.inner.call(req).instrument(span),
            uri,
            start: Instant::now(),
        }
    }
}

pin_project! {
    /// The response future of [`RpcServer`].
    pub struct RpcServerFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        uri: http::Uri,
        start: Instant,
        // Counted until the future is dropped (answered or cancelled).
        in_flight: InFlight,
    }
}

impl<F, R, E> Future for RpcServerFuture<F>
where
    F: Future<Output = Result<http::Response<R>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let mut result = std::task::ready!(this.inner.as_mut().poll(cx));
        let code = match &mut result {
            Ok(response) => {
                cap_grpc_message(response.headers_mut());
                grpc_code_of(response.headers())
            }
            Err(_) => tonic::Code::Internal,
        };
        record(
            this.uri.path(),
            code,
            this.start.elapsed().as_secs_f64(),
            this.inner.as_ref().get_ref().span(),
        );
        Poll::Ready(result)
    }
}

/// The longest `grpc-message` header a server sends: a bounded message
/// percent-encoded (each byte at most three).
const MAX_GRPC_MESSAGE_HEADER: usize = 3 * crate::error::MAX_MESSAGE_BYTES;

/// Cuts an over-long `grpc-message` header of a trailers-only answer.
///
/// Every vdm status is bounded where it is built
/// ([`crate::ErrorCode::to_status`]); this is the backstop for statuses built
/// elsewhere (tonic's own, a handler's `Status::new`), so that no answer can
/// outgrow the caller's HTTP/2 header limit and turn one caller's bad
/// request into a transport failure of the whole service.
fn cap_grpc_message(headers: &mut http::HeaderMap) {
    let Some(value) = headers.get("grpc-message") else {
        return;
    };
    if value.len() <= MAX_GRPC_MESSAGE_HEADER {
        return;
    }
    let bytes = value.as_bytes();
    let mut end = MAX_GRPC_MESSAGE_HEADER;
    // Never split a `%XX` escape.
    if let Some(percent) = bytes[end - 2..end].iter().rposition(|b| *b == b'%') {
        end = end - 2 + percent;
    }
    if let Ok(cut) = http::HeaderValue::from_bytes(&bytes[..end]) {
        headers.insert("grpc-message", cut);
    } else {
        headers.remove("grpc-message");
    }
}

fn record(path: &str, code: tonic::Code, seconds: f64, span: &Span) {
    span.record("rpc.grpc.status_code", code as i32);
    if is_server_fault(code) {
        span.record("otel.status_code", "ERROR");
    }
    let method = if code == tonic::Code::Unimplemented {
        "unknown"
    } else {
        intern(rpc_name(path))
    };
    let code = code_label(code);
    metrics::counter!("grpc_server_handled_total", "grpc_method" => method, "grpc_code" => code).increment(1);
    metrics::histogram!("grpc_server_handling_seconds", "grpc_method" => method).record(seconds);
}

/// Codes that mean the server failed, as OpenTelemetry's gRPC conventions
/// define them for server spans (client mistakes leave the span unset).
fn is_server_fault(code: tonic::Code) -> bool {
    use tonic::Code::*;
    matches!(
        code,
        Unknown | DeadlineExceeded | Unimplemented | Internal | Unavailable | DataLoss
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn an_over_long_grpc_message_is_cut_without_splitting_an_escape() {
        let mut headers = http::HeaderMap::new();
        let long = "%C3%A9".repeat(2_000);
        headers.insert("grpc-message", http::HeaderValue::from_str(&long).unwrap());
        cap_grpc_message(&mut headers);
        let cut = headers
            .get("grpc-message")
            .map(|v| v.as_bytes().to_vec())
            .unwrap_or_default();
        assert!(cut.len() <= MAX_GRPC_MESSAGE_HEADER);
        assert_eq!(cut.len() % 3, 0, "ends on a whole escape");
        let mut short = http::HeaderMap::new();
        short.insert("grpc-message", http::HeaderValue::from_static("bad%20cursor"));
        cap_grpc_message(&mut short);
        assert_eq!(
            short.get("grpc-message").map(|v| v.as_bytes()),
            Some(&b"bad%20cursor"[..])
        );
    }
}
