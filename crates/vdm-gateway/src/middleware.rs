//! The gateway's own middleware (the tower-http ones are composed in
//! `startup::layers`).
//!
//! - [`observe`]: a span per request named by method and route template,
//!   continuing the client's W3C trace; request metrics by route and status,
//!   and `vdm_http_requests_in_flight`;
//!   the trace id in an `x-trace-id` response header.
//! - [`edge_rules`], in this order:
//!   - the error body: every error response carries the `{"error": ...}`
//!     body, also those produced outside handlers (unknown route, 405, 413,
//!     504), re-encoded as MessagePack when the client asked for that;
//!   - the body guard: a declared body over the limit is a 413 before any
//!     of it is read; a declared body gets a read deadline (408 past it);
//!     an answer given without reading the declared body says
//!     `Connection: close`;
//!   - the quotas per caller ([`crate::rate_limit::limit`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::HttpBody;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::SharedString;
use tracing::Instrument;
use vdm_kit::ErrorCode;

use crate::error::{ErrorBody, GatewayError};
use crate::negotiate::{BodyWatch, Format, MSGPACK};

/// See the module docs.
pub async fn observe(request: Request, next: Next) -> Response {
    let start = Instant::now();
    // Dropped with this future, also when the client goes away.
    let _in_flight = vdm_kit::metrics::InFlight::new(IN_FLIGHT.with(Clone::clone));
    let method = request.method().clone();
    // An `Arc` inside: cloning it copies no path.
    let matched = request.extensions().get::<MatchedPath>().cloned();
    let route = matched.as_ref().map_or(UNMATCHED, MatchedPath::as_str);
    let span = tracing::info_span!(
        "http_request",
        otel.name = format_args!("{} {}", method, route),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %method,
        http.route = route,
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
    vdm_kit::telemetry::set_parent_from_headers(&span, request.headers());
    let trace_id = span.in_scope(vdm_kit::telemetry::current_trace_id);
    if let Some(trace_id) = &trace_id {
        // Every log line of the request then carries the id to find it in Jaeger.
        span.record("trace_id", trace_id.as_str());
    }

    let mut response = next.run(request).instrument(span.clone()).await;

    let status = response.status();
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    if let Some(trace_id) = trace_id.and_then(|t| HeaderValue::from_str(&t).ok()) {
        response.headers_mut().insert("x-trace-id", trace_id);
    }
    let (requests, duration) = request_metrics(route, method_label(&method), status_label(status.as_u16()));
    requests.increment(1);
    duration.record(start.elapsed().as_secs_f64());
    response
}

/// What [`edge_rules`] holds requests to.
#[derive(Clone)]
pub struct EdgeRules {
    /// Body size and read deadline.
    pub body: BodyRules,
    /// Quotas per caller.
    pub limits: crate::rate_limit::LimitState,
}

/// See the module docs: the body guard and the quotas
/// ([`crate::rate_limit::limit`]) inside the uniform error body, as one
/// layer (each `from_fn` layer clones the stack under it and boxes a
/// future per request).
pub async fn edge_rules(State(rules): State<EdgeRules>, request: Request, next: Next) -> Response {
    let format = Format::from_accept(request.headers());
    let limits = rules.limits;
    let response = body_guard(rules.body, request, move |request| {
        crate::rate_limit::limit(limits, request, next)
    })
    .await;
    error_body(response, format)
}

/// Gives an error response the uniform body in the client's format.
fn error_body(response: Response, format: Format) -> Response {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let body = response.extensions().get::<ErrorBody>().cloned();
    match (body, format) {
        // A handler's error, and JSON is what the client takes.
        (Some(_), Format::Json) => response,
        (Some(body), Format::Msgpack) => re_encode(response, &body),
        // A handler's own structured answer (readiness, for one).
        (None, _) if is_structured(&response) => response,
        // A layer or the router answered with its own (plain or empty) body.
        (None, _) => {
            let code = ErrorCode::from_http(status);
            let message = match status.as_u16() {
                404 => "no such route".to_owned(),
                405 => "method not allowed on this route".to_owned(),
                413 => "request body is larger than the server accepts".to_owned(),
                408 => "the request did not arrive in time".to_owned(),
                504 => "the request took too long".to_owned(),
                _ => status.canonical_reason().unwrap_or("error").to_lowercase(),
            };
            let (mut parts, _) = response.into_parts();
            let mut fresh = ErrorBody::new(code, message).into_response_with(code);
            // Keep headers the layer set (Allow, Retry-After, ...), but not
            // the old body's framing.
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.remove(header::CONTENT_TYPE);
            for (name, value) in parts.headers.iter() {
                fresh.headers_mut().entry(name).or_insert_with(|| value.clone());
            }
            *fresh.status_mut() = status;
            match format {
                Format::Json => fresh,
                Format::Msgpack => {
                    let body = fresh.extensions().get::<ErrorBody>().cloned();
                    match body {
                        Some(body) => re_encode(fresh, &body),
                        None => fresh,
                    }
                }
            }
        }
    }
}

/// What [`body_guard`] holds requests to.
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    /// The largest body accepted (`VDM_BODY_LIMIT_BYTES`).
    pub limit: usize,
    /// How long after its headers a request's body may take to arrive
    /// (`VDM_BODY_READ_TIMEOUT_MS`).
    pub read_timeout: Duration,
}

/// See the module docs. A client that declares a body it then does not
/// send (or sends a byte at a time) would otherwise hold the handler until
/// the request timeout, and get the gateway's 504 for its own failure.
async fn body_guard<F, Fut>(rules: BodyRules, mut request: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: std::future::Future<Output = Response>,
{
    if let Some(declared) = declared_length(request.headers())
        && declared > rules.limit as u64
    {
        // Nothing of the body is read: hyper closes the connection after
        // this answer, and the header says so.
        let mut response = GatewayError::api(
            ErrorCode::PayloadTooLarge,
            format!(
                "request body is larger than the server accepts: {declared} bytes declared, at most {} accepted",
                rules.limit
            ),
        )
        .into_response();
        close_connection(&mut response);
        return response;
    }
    if request.body().is_end_stream() {
        return next(request).await;
    }
    let watch = BodyWatch::starting_now(rules.read_timeout);
    request.extensions_mut().insert(watch.clone());
    let mut response = next(request).await;
    // An unread (or partly read) body is still on the connection: hyper
    // will not read another request after it, so the client is told the
    // connection ends here (429 and 401 before the body, 408, a 413 from
    // the streaming limit, a route that takes no body).
    if !watch.was_read() {
        close_connection(&mut response);
    }
    response
}

/// The body length a request declares, if it declares a valid one.
fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

fn close_connection(response: &mut Response) {
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
}

fn is_structured(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json") || ct.starts_with(MSGPACK))
}

fn re_encode(response: Response, body: &ErrorBody) -> Response {
    let Ok(bytes) = rmp_serde::to_vec_named(body) else {
        return response;
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(MSGPACK));
    Response::from_parts(parts, axum::body::Body::from(bytes)).into_response()
}

/// The route label of a request no route took, so a client's paths never
/// become label values. [`observe`] runs inside the router (`Router::layer`
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

impl tower_http::request_id::MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _request: &axum::http::Request<B>) -> Option<tower_http::request_id::RequestId> {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n:x}", self.prefix))
            .ok()
            .map(tower_http::request_id::RequestId::new)
    }
}
