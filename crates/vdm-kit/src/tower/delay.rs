//! Holds every call back for a fixed time before handing it on: a test
//! fixture that makes a service slow on purpose (the bootstrap fan-out tests
//! use it to show that the gateway's calls overlap). Without a delay the
//! layer passes calls straight through.

use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::{BoxFuture, Either};
use tower::{Layer, Service};

/// Wraps a service in [`Delay`].
#[derive(Debug, Clone, Copy, Default)]
pub struct DelayLayer {
    delay: Option<Duration>,
}

impl DelayLayer {
    /// A layer that delays each call by `delay` (`None`: no delay).
    pub fn new(delay: Option<Duration>) -> DelayLayer {
        DelayLayer { delay }
    }
}

impl<S> Layer<S> for DelayLayer {
    type Service = Delay<S>;

    fn layer(&self, inner: S) -> Delay<S> {
        Delay {
            inner,
            delay: self.delay.filter(|d| !d.is_zero()),
        }
    }
}

/// The service [`DelayLayer`] builds.
#[derive(Debug, Clone)]
pub struct Delay<S> {
    inner: S,
    delay: Option<Duration>,
}

impl<S, Req> Service<Req> for Delay<S>
where
    S: Service<Req> + Clone + Send + 'static,
    S::Future: Send + 'static,
    Req: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Either<S::Future, BoxFuture<'static, Result<S::Response, S::Error>>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Req) -> Self::Future {
        let Some(delay) = self.delay else {
            return Either::Left(self.inner.call(req));
        };
        // The instance that was polled ready goes into the future; a fresh
        // clone stays behind for the next call.
        let fresh = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, fresh);
        Either::Right(Box::pin(async move {
            tokio::time::sleep(delay).await;
            ready.call(req).await
        }))
    }
}
