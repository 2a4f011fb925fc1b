//! A deadline per request that costs nothing when the answer is ready at
//! once.
//!
//! tower-http's `TimeoutLayer` starts a timer for every request before the
//! service is first polled: a clock read and an insert into (and removal
//! from) the runtime's timer wheel, about 2 % of the CPU of a cached read
//! that is answered on its first poll. [`Deadline`] polls the service
//! first and starts the timer only when the answer is not ready, so a
//! request that waits still gets the same bound (measured from its first
//! poll, a few microseconds after it arrived) and one that does not never
//! touches the timer.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use tokio::time::Sleep;
use tower::{Layer, Service};

/// Wraps a service in a [`Deadline`].
#[derive(Debug, Clone, Copy)]
pub struct DeadlineLayer {
    timeout: Duration,
    status: StatusCode,
}

impl DeadlineLayer {
    /// Answers `status` with an empty body when a request is not answered
    /// within `timeout`.
    pub fn new(timeout: Duration, status: StatusCode) -> DeadlineLayer {
        DeadlineLayer { timeout, status }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = Deadline<S>;

    fn layer(&self, inner: S) -> Deadline<S> {
        Deadline {
            inner,
            timeout: self.timeout,
            status: self.status,
        }
    }
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Deadline<S> {
    inner: S,
    timeout: Duration,
    status: StatusCode,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for Deadline<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Default,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        DeadlineFuture {
            inner: self.inner.call(request),
            sleep: None,
            timeout: self.timeout,
            status: self.status,
        }
    }
}

pin_project! {
    /// The answer of a [`Deadline`]: the service's, or the deadline's.
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        // Started at the first poll that finds the answer not ready.
        #[pin]
        sleep: Option<Sleep>,
        timeout: Duration,
        status: StatusCode,
    }
}

impl<F, B, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Default,
{
    type Output = Result<Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let Poll::Ready(answer) = this.inner.poll(cx) {
            return Poll::Ready(answer);
        }
        if this.sleep.is_none() {
            this.sleep.set(Some(tokio::time::sleep(*this.timeout)));
        }
        match this.sleep.as_pin_mut().map(|sleep| sleep.poll(cx)) {
            Some(Poll::Ready(())) => {
                let mut response = Response::new(B::default());
                *response.status_mut() = *this.status;
                Poll::Ready(Ok(response))
            }
            _ => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::convert::Infallible;

    use tower::ServiceExt;

    use super::*;

    fn after(
        wait: Duration,
    ) -> impl Service<Request<()>, Response = Response<String>, Error = Infallible, Future: Send> {
        tower::service_fn(move |_request: Request<()>| async move {
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
            Ok::<_, Infallible>(Response::new("answer".to_owned()))
        })
    }

    async fn status_of(wait: Duration) -> (StatusCode, String) {
        let service = DeadlineLayer::new(Duration::from_millis(100), StatusCode::GATEWAY_TIMEOUT).layer(after(wait));
        let response = service.oneshot(Request::new(())).await.unwrap();
        (response.status(), response.into_body())
    }

    #[tokio::test]
    async fn answers_in_time_pass_and_late_ones_get_the_status() {
        assert_eq!(status_of(Duration::ZERO).await, (StatusCode::OK, "answer".to_owned()));
        assert_eq!(
            status_of(Duration::from_millis(10)).await,
            (StatusCode::OK, "answer".to_owned())
        );
        let started = std::time::Instant::now();
        assert_eq!(
            status_of(Duration::from_secs(5)).await,
            (StatusCode::GATEWAY_TIMEOUT, String::new())
        );
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(100) && waited < Duration::from_secs(2),
            "{waited:?}"
        );
    }
}
