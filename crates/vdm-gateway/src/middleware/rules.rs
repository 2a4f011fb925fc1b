//! [`EdgeRules`], one layer, outside in:
//! - the error body: every error response carries the `{"error": ...}`
//!   body, also those produced outside handlers (unknown route, 405, 413,
//!   504), re-encoded as MessagePack when the client asked for that;
//! - the body guard: a declared body over the limit is a 413 before any of
//!   it is read; a declared body gets a read deadline (408 past it); an
//!   answer given without reading the declared body says
//!   `Connection: close`. A client that declares a body it then does not
//!   send (or sends a byte at a time) would otherwise hold the handler
//!   until the request timeout, and get the gateway's 504 for its own
//!   failure;
//! - the quotas per caller ([`crate::rate_limit::admit`]): 429 with
//!   `Retry-After`, and an in-flight slot held until the answer.
//!
//! Everything before the service is called is decided at once, so the
//! service is called from `call` and the answer is finished by a plain
//! future: no clone of the stack below and no boxed future per request.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use vdm_kit::ErrorCode;

use crate::error::{ErrorBody, GatewayError};
use crate::negotiate::{BodyWatch, Format, MSGPACK};
use crate::rate_limit::{LimitState, Refused, Slot};

/// Wraps a service in [`EdgeRules`].
#[derive(Clone)]
pub struct EdgeRulesLayer {
    rules: Arc<Rules>,
}

/// What [`EdgeRules`] holds requests to.
struct Rules {
    body: BodyRules,
    limits: LimitState,
}

impl EdgeRulesLayer {
    /// Holds requests to `body` and the quotas of `limits`.
    pub fn new(body: BodyRules, limits: LimitState) -> EdgeRulesLayer {
        EdgeRulesLayer {
            rules: Arc::new(Rules { body, limits }),
        }
    }
}

impl<S> Layer<S> for EdgeRulesLayer {
    type Service = EdgeRules<S>;

    fn layer(&self, inner: S) -> EdgeRules<S> {
        EdgeRules {
            inner,
            rules: self.rules.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct EdgeRules<S> {
    inner: S,
    rules: Arc<Rules>,
}

impl<S, B> Service<Request> for EdgeRules<S>
where
    S: Service<Request, Response = Response<B>, Error = Infallible>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = EdgeRulesFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let format = Format::from_accept(request.headers());
        let limit = self.rules.body.limit;
        if let Some(declared) = declared_length(request.headers())
            && declared > limit as u64
        {
            // Nothing of the body is read: hyper closes the connection
            // after this answer, and the header says so.
            let mut response = GatewayError::api(
                ErrorCode::PayloadTooLarge,
                format!("request body is larger than the server accepts: {declared} bytes declared, at most {limit} accepted"),
            )
            .into_response();
            close_connection(&mut response);
            return EdgeRulesFuture::answered(response, format, None);
        }
        let watch = (!request.body().is_end_stream()).then(|| {
            let watch = BodyWatch::starting_now(self.rules.body.read_timeout);
            request.extensions_mut().insert(watch.clone());
            watch
        });
        match crate::rate_limit::admit(&self.rules.limits, &mut request) {
            Ok(slot) => EdgeRulesFuture {
                inner: Some(self.inner.call(request)),
                answered: None,
                format,
                watch,
                slot,
            },
            Err(refused) => EdgeRulesFuture::answered(refused.into_response(), format, watch),
        }
    }
}

pin_project! {
    /// The answer of [`EdgeRules`]: the service's, or the rules' own,
    /// finished by the body guard and the error body.
    pub struct EdgeRulesFuture<F> {
        #[pin]
        inner: Option<F>,
        answered: Option<Response>,
        format: Format,
        watch: Option<BodyWatch>,
        slot: Option<Slot>,
    }
}

impl<F> EdgeRulesFuture<F> {
    fn answered(response: Response, format: Format, watch: Option<BodyWatch>) -> EdgeRulesFuture<F> {
        EdgeRulesFuture {
            inner: None,
            answered: Some(response),
            format,
            watch,
            slot: None,
        }
    }
}

impl<F, B> Future for EdgeRulesFuture<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
    B: HttpBody<Data = Bytes> + Send + 'static,
    B::Error: Into<axum::BoxError>,
{
    type Output = Result<Response, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.as_pin_mut() {
            Some(inner) => match ready!(inner.poll(cx)) {
                Ok(response) => response.map(Body::new),
                Err(never) => match never {},
            },
            None => this.answered.take().unwrap_or_default(),
        };
        // The request is answered: its in-flight slot is free.
        this.slot.take();
        // An unread (or partly read) body is still on the connection:
        // hyper will not read another request after it, so the client is
        // told the connection ends here (429 and 401 before the body, 408,
        // a 413 from the streaming limit, a route that takes no body).
        if this.watch.as_ref().is_some_and(|watch| !watch.was_read()) {
            close_connection(&mut response);
        }
        Poll::Ready(Ok(error_body(response, *this.format)))
    }
}

/// The answer to a request the quotas refused, as [`EdgeRules`] gives it:
/// a 429 with `Retry-After` and the error body in `format`.
pub(crate) fn refusal(refused: Refused, format: Format) -> Response {
    error_body(refused.into_response(), format)
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

/// The body rules [`EdgeRules`] holds requests to.
#[derive(Debug, Clone, Copy)]
pub struct BodyRules {
    /// The largest body accepted (`VDM_BODY_LIMIT_BYTES`).
    pub limit: usize,
    /// How long after its headers a request's body may take to arrive
    /// (`VDM_BODY_READ_TIMEOUT_MS`).
    pub read_timeout: Duration,
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
