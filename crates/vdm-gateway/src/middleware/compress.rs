//! [`Compress`]: gzip, Brotli or zstd by `Accept-Encoding`, for the answers
//! worth it, with tower-http doing the compressing.
//!
//! tower-http's `Compression` wraps every answer's body in its
//! `CompressionBody`, compressed or not. That type holds each encoder's
//! state inline (about 5.8 KB), so a small answer that is never compressed
//! still has that value moved through the futures of every layer outside
//! it and boxed into a fresh 5.8 KB allocation: most of the memcpy left on
//! a cached read's profile. [`Compress`] first asks the same predicate the
//! way tower-http would, and hands the answer to tower-http only when it
//! may be changed: when it is worth compressing, or when the client's
//! `Accept-Encoding` carries parameters (`;q=`) that could refuse identity,
//! where tower-http answers 406. Every other answer passes with its body
//! untouched, exactly as tower-http would have passed it.

use std::convert::Infallible;
use std::future::{Future, Ready, ready};
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
use pin_project_lite::pin_project;
use tower::{Layer, Service};
use tower_http::compression::predicate::Predicate;
use tower_http::compression::{Compression, ResponseFuture as CompressionFuture};

/// Wraps a service in [`Compress`].
#[derive(Clone)]
pub struct CompressLayer<P> {
    predicate: P,
}

impl<P> CompressLayer<P> {
    /// Compresses the answers `predicate` says are worth it.
    pub fn new(predicate: P) -> CompressLayer<P> {
        CompressLayer { predicate }
    }
}

impl<S, P: Clone> Layer<S> for CompressLayer<P> {
    type Service = Compress<S, P>;

    fn layer(&self, inner: S) -> Compress<S, P> {
        Compress {
            inner,
            predicate: self.predicate.clone(),
        }
    }
}

/// See the module docs.
#[derive(Clone)]
pub struct Compress<S, P> {
    inner: S,
    predicate: P,
}

impl<S, P> Service<Request> for Compress<S, P>
where
    S: Service<Request, Response = Response, Error = Infallible>,
    P: Predicate,
{
    type Response = Response;
    type Error = Infallible;
    type Future = CompressFuture<S::Future, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let accept = accepted_encodings(&request);
        CompressFuture::Answering {
            inner: self.inner.call(request),
            accept,
            predicate: self.predicate.clone(),
        }
    }
}

/// The request's `Accept-Encoding`, as one value (several headers joined
/// into a list, which means the same), or `None` when it has none.
fn accepted_encodings(request: &Request) -> Option<HeaderValue> {
    let mut values = request.headers().get_all(header::ACCEPT_ENCODING).iter();
    let first = values.next()?;
    let mut list: Option<Vec<u8>> = None;
    for value in values {
        let list = list.get_or_insert_with(|| first.as_bytes().to_vec());
        list.extend_from_slice(b", ");
        list.extend_from_slice(value.as_bytes());
    }
    match list {
        None => Some(first.clone()),
        // Valid header values joined with ", ": valid again.
        Some(list) => HeaderValue::from_bytes(&list).ok(),
    }
}

/// Whether tower-http could change an answer the predicate passes over:
/// only a weight (`;q=0`) can refuse identity and turn it into a 406.
fn may_refuse_identity(accept: Option<&HeaderValue>) -> bool {
    accept.is_some_and(|value| value.as_bytes().contains(&b';'))
}

/// Whether tower-http would compress `response` (its own rule: never an
/// answer already encoded, nor a range, and only what the predicate
/// passes).
fn worth_compressing<P: Predicate>(predicate: &P, response: &Response) -> bool {
    !response.headers().contains_key(header::CONTENT_ENCODING)
        && !response.headers().contains_key(header::CONTENT_RANGE)
        && predicate.should_compress(response)
}

/// The service a tower-http layer wraps when an answer is handed to it
/// (`Compression` here, `Cors` in the front): it gives that answer, once.
pub(super) struct Handover(pub(super) Option<Response>);

impl Service<Request<()>> for Handover {
    type Response = Response;
    type Error = Infallible;
    type Future = Ready<Result<Response, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _request: Request<()>) -> Self::Future {
        ready(Ok(self.0.take().unwrap_or_default()))
    }
}

pin_project! {
    /// The answer of [`Compress`]: the inner service's, passed through or
    /// handed to tower-http.
    #[project = CompressProj]
    pub enum CompressFuture<F, P> {
        /// Waiting for the inner service.
        Answering {
            #[pin]
            inner: F,
            accept: Option<HeaderValue>,
            predicate: P,
        },
        /// tower-http compressing (or refusing) the answer.
        Compressing {
            #[pin]
            compression: CompressionFuture<Ready<Result<Response, Infallible>>, P>,
        },
    }
}

impl<F, P> Future for CompressFuture<F, P>
where
    F: Future<Output = Result<Response, Infallible>>,
    P: Predicate,
{
    type Output = Result<Response, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            match self.as_mut().project() {
                CompressProj::Answering {
                    inner,
                    accept,
                    predicate,
                } => {
                    let Poll::Ready(Ok(response)) = inner.poll(cx) else {
                        return Poll::Pending;
                    };
                    if !may_refuse_identity(accept.as_ref()) && !worth_compressing(predicate, &response) {
                        return Poll::Ready(Ok(response));
                    }
                    let mut request = Request::new(());
                    if let Some(accept) = accept.take() {
                        request.headers_mut().insert(header::ACCEPT_ENCODING, accept);
                    }
                    let compression = Compression::new(Handover(Some(response)))
                        .compress_when(predicate.clone())
                        .call(request);
                    self.set(CompressFuture::Compressing { compression });
                }
                CompressProj::Compressing { compression } => {
                    return compression
                        .poll(cx)
                        .map(|answer| answer.map(|response| response.map(Body::new)));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use axum::http::StatusCode;
    use tower::ServiceExt;
    use tower_http::compression::predicate::{DefaultPredicate, SizeAbove};

    use super::*;

    /// Answers `size` bytes of JSON through [`Compress`] to a request with
    /// these `Accept-Encoding` headers.
    async fn answer(size: usize, accept: &[&'static str]) -> Response {
        let body = format!("[{}]", "1,".repeat(size / 2).trim_end_matches(','));
        let inner = tower::service_fn(move |_: Request| {
            let body = body.clone();
            async move {
                let mut response = Response::new(Body::from(body));
                response
                    .headers_mut()
                    .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
                Ok::<_, Infallible>(response)
            }
        });
        let service = CompressLayer::new(DefaultPredicate::new().and(SizeAbove::new(1024))).layer(inner);
        let mut request = Request::new(Body::empty());
        for value in accept {
            request
                .headers_mut()
                .append(header::ACCEPT_ENCODING, HeaderValue::from_static(value));
        }
        service.oneshot(request).await.unwrap()
    }

    async fn bytes(response: Response) -> Vec<u8> {
        axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap()
            .to_vec()
    }

    #[tokio::test]
    async fn a_small_answer_passes_as_it_is() {
        let response = answer(200, &["gzip, br"]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        assert!(response.headers().get(header::VARY).is_none(), "as tower-http: no Vary");
        assert_eq!(bytes(response).await.len(), 201);
    }

    #[tokio::test]
    async fn a_large_answer_is_compressed_by_the_clients_choice() {
        for (accept, coding) in [(&["gzip"][..], "gzip"), (&["br"][..], "br"), (&["zstd"][..], "zstd")] {
            let response = answer(8_000, accept).await;
            assert_eq!(response.headers()[header::CONTENT_ENCODING], coding);
            assert_eq!(response.headers()[header::VARY], "accept-encoding");
            assert!(bytes(response).await.len() < 1_000, "{coding} compresses");
        }
        // Several headers mean the list they make together.
        let response = answer(8_000, &["identity;q=0.5", "zstd"]).await;
        assert_eq!(response.headers()[header::CONTENT_ENCODING], "zstd");
        // No Accept-Encoding: identity, and the answer says it varies.
        let response = answer(8_000, &[]).await;
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
        assert_eq!(response.headers()[header::VARY], "accept-encoding");
        assert_eq!(bytes(response).await.len(), 8_001);
    }

    #[tokio::test]
    async fn a_client_that_refuses_every_encoding_gets_406_whatever_the_size() {
        for size in [200, 8_000] {
            let response = answer(size, &["identity;q=0"]).await;
            assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE, "{size} bytes");
        }
        // A weight that refuses nothing leaves a small answer alone.
        let response = answer(200, &["gzip;q=0.8, identity;q=0.5"]).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().get(header::CONTENT_ENCODING).is_none());
    }
}
