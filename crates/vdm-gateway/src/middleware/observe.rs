//! [`Observe`]: the outermost layer of every route. A span per request
//! named by method and route template, continuing the client's W3C trace;
//! request metrics by route and status, and `vdm_http_requests_in_flight`;
//! the trace id in an `x-trace-id` response header; the request id (the
//! client's `x-request-id`, or a new one) on the request and its response.
//! The bookkeeping itself is [`begin`] and [`Watch::finish`], which the
//! front (`middleware::front`) uses for the requests it answers before the
//! router, so that they are observed exactly as the routed ones.
//!
//! A hand-written service rather than an axum `from_fn`: that clones the
//! whole stack under it and boxes a future for every request, which a
//! cached read, answered in a few microseconds, feels.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Response};
use metrics::SharedString;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tracing::instrument::{Instrument, Instrumented};
use vdm_kit::metrics::InFlight;

/// `x-request-id`.
static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Wraps a service in an [`Observe`].
#[derive(Clone, Default)]
pub struct ObserveLayer {
    ids: RequestIds,
}

impl ObserveLayer {
    /// Names new requests with `ids`.
    pub fn new(ids: RequestIds) -> ObserveLayer {
        ObserveLayer { ids }
    }
}

impl<S> Layer<S> for ObserveLayer {
    type Service = Observe<S>;

    fn layer(&self, inner: S) -> Observe<S> {
        Observe {
            inner,
            ids: self.ids.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Observe<S> {
    inner: S,
    ids: RequestIds,
}

impl<S, B> Service<Request> for Observe<S>
where
    S: Service<Request, Response = Response<B>>,
{
    type Response = Response<B>;
    type Error = S::Error;
    type Future = ObserveFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        // An `Arc` inside: cloning it copies no path.
        let route = match request.extensions().get::<MatchedPath>() {
            Some(matched) => RouteLabel::Matched(matched.clone()),
            None => RouteLabel::Fixed(UNMATCHED),
        };
        let (span, watch) = begin(&self.ids, &mut request, route);
        let inner = span.in_scope(|| self.inner.call(request)).instrument(span);
        ObserveFuture { inner, watch }
    }
}

/// The route label of a request: the template the router matched (as
/// [`Observe`] finds it), or one known in advance (the front's).
pub enum RouteLabel {
    /// The router's matched template.
    Matched(MatchedPath),
    /// A template named by the caller.
    Fixed(&'static str),
}

impl RouteLabel {
    fn as_str(&self) -> &str {
        match self {
            RouteLabel::Matched(matched) => matched.as_str(),
            RouteLabel::Fixed(route) => route,
        }
    }
}

/// Starts observing `request` on `route`: its span (continuing the
/// client's trace), and the [`Watch`] that records its answer. Gives the
/// request its request id when it came without one.
pub fn begin(ids: &RequestIds, request: &mut Request, route: RouteLabel) -> (tracing::Span, Watch) {
    let start = Instant::now();
    // Dropped with the watch, also when the client goes away.
    let in_flight = InFlight::new(IN_FLIGHT.with(Clone::clone));
    let method = request.method();
    let label = route.as_str();
    let span = tracing::info_span!(
        "http_request",
        otel.name = format_args!("{} {}", method, label),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = label,
        http.response.status_code = tracing::field::Empty,
        player.id = tracing::field::Empty,
        quest.id = tracing::field::Empty,
        trace_id = tracing::field::Empty,
        npc.id = tracing::field::Empty,
        rumor.id = tracing::field::Empty,
        region.id = tracing::field::Empty,
        // hit, miss or joined, on routes the edge cache serves.
        edge_cache = tracing::field::Empty,
    );
    let method = method_label(method);
    vdm_kit::telemetry::set_parent_from_headers(&span, request.headers());
    let trace_id = span.in_scope(vdm_kit::telemetry::current_trace_id);
    if let Some(trace_id) = &trace_id {
        // Every log line of the request then carries the id to find it in Jaeger.
        span.record("trace_id", trace_id.as_str());
    }
    let request_id = match request.headers().get(&X_REQUEST_ID) {
        Some(id) => Some(id.clone()),
        None => {
            let id = ids.next();
            if let Some(id) = &id {
                request.headers_mut().insert(X_REQUEST_ID.clone(), id.clone());
            }
            id
        }
    };
    let watch = Watch {
        start,
        method,
        route,
        trace_id,
        request_id,
        _in_flight: in_flight,
    };
    (span, watch)
}

/// What is recorded of a request when its answer is ready
/// ([`Watch::finish`]).
pub struct Watch {
    start: Instant,
    method: &'static str,
    route: RouteLabel,
    trace_id: Option<String>,
    request_id: Option<HeaderValue>,
    _in_flight: InFlight,
}

impl Watch {
    /// Records `response` in `span` and the request metrics, and gives it
    /// the trace id and request id headers.
    pub fn finish<B>(&mut self, span: &tracing::Span, response: &mut Response<B>) {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "ERROR");
        }
        if let Some(trace_id) = self.trace_id.take().and_then(|t| HeaderValue::from_str(&t).ok()) {
            response.headers_mut().insert("x-trace-id", trace_id);
        }
        if let Some(request_id) = self.request_id.take() {
            response.headers_mut().entry(&X_REQUEST_ID).or_insert(request_id);
        }
        let (requests, duration) = request_metrics(self.route.as_str(), self.method, status_label(status.as_u16()));
        requests.increment(1);
        duration.record(self.start.elapsed().as_secs_f64());
    }
}

pin_project! {
    /// The answer of an [`Observe`], recorded when it is ready.
    pub struct ObserveFuture<F> {
        #[pin]
        inner: Instrumented<F>,
        watch: Watch,
    }
}

impl<F, B, E> Future for ObserveFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut this = self.project();
        let mut response = match ready!(this.inner.as_mut().poll(cx)) {
            Ok(response) => response,
            Err(err) => return Poll::Ready(Err(err)),
        };
        this.watch.finish(this.inner.as_ref().get_ref().span(), &mut response);
        Poll::Ready(Ok(response))
    }
}

/// The route label of a request no route took, so a client's paths never
/// become label values. [`Observe`] runs inside the router (`Router::layer`
/// wraps each route and the fallback), where the matched route template is
/// known.
const UNMATCHED: &str = "unmatched";

/// The handles of one route's request metrics, by method and status.
#[derive(Default)]
struct RouteMetrics {
    requests: Vec<((&'static str, &'static str), metrics::Counter)>,
    durations: Vec<(&'static str, metrics::Histogram)>,
}

thread_local! {
    /// `vdm_http_requests_in_flight`, resolved once per thread.
    static IN_FLIGHT: metrics::Gauge = metrics::gauge!("vdm_http_requests_in_flight");
    /// Request metric handles per route template, resolved once per thread:
    /// a lookup by labels in the recorder (a key built and hashed, a shard
    /// locked, the route copied into a label) cost more than the rest of a
    /// cached read's bookkeeping. The sets are small and fixed: route
    /// templates, methods, status labels.
    static ROUTE_METRICS: std::cell::RefCell<std::collections::HashMap<Box<str>, RouteMetrics>> =
        Default::default();
}

/// `http_server_requests_total` and `http_server_request_duration_seconds`
/// for a route template (`/v1/quests/{id}`), method and status label.
fn request_metrics(route: &str, method: &'static str, status: &'static str) -> (metrics::Counter, metrics::Histogram) {
    ROUTE_METRICS.with_borrow_mut(|routes| match routes.get_mut(route) {
        Some(handles) => handles.get(route, method, status),
        None => {
            let mut handles = RouteMetrics::default();
            let found = handles.get(route, method, status);
            routes.insert(route.into(), handles);
            found
        }
    })
}

impl RouteMetrics {
    fn get(
        &mut self,
        route: &str,
        method: &'static str,
        status: &'static str,
    ) -> (metrics::Counter, metrics::Histogram) {
        let label = || SharedString::from(Arc::<str>::from(route));
        let requests = match self.requests.iter().find(|(k, _)| *k == (method, status)) {
            Some((_, counter)) => counter.clone(),
            None => {
                let counter = metrics::counter!("http_server_requests_total", "method" => method, "route" => label(), "status" => status);
                self.requests.push(((method, status), counter.clone()));
                counter
            }
        };
        let duration = match self.durations.iter().find(|(m, _)| *m == method) {
            Some((_, histogram)) => histogram.clone(),
            None => {
                let histogram =
                    metrics::histogram!("http_server_request_duration_seconds", "method" => method, "route" => label());
                self.durations.push((method, histogram.clone()));
                histogram
            }
        };
        (requests, duration)
    }
}

fn method_label(method: &axum::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        _ => "OTHER",
    }
}

fn status_label(status: u16) -> &'static str {
    const LABELS: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
    match status {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        408 => "408",
        409 => "409",
        413 => "413",
        429 => "429",
        500 => "500",
        503 => "503",
        504 => "504",
        s => LABELS
            .get(usize::from(s / 100).saturating_sub(1))
            .copied()
            .unwrap_or("other"),
    }
}

/// Makes request ids: a per-process random prefix and a counter, unique
/// across replicas without a UUID crate.
#[derive(Clone)]
pub struct RequestIds {
    prefix: std::sync::Arc<str>,
    next: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> RequestIds {
        // An id, not a secret: the process id will do if the random
        // source fails.
        let prefix = vdm_kit::secure::random_token(6).unwrap_or_else(|_| format!("p{:x}", std::process::id()));
        RequestIds {
            prefix: prefix.into(),
            next: Default::default(),
        }
    }
}

impl RequestIds {
    /// The next id: `prefix-counter` in hex.
    fn next(&self) -> Option<HeaderValue> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix)).ok()
    }
}
