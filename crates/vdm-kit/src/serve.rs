//! Serving an axum router over HTTP/1.1 with bounded header reads: the
//! gateway's public listener and every service's admin port.
//!
//! `axum::serve` gives hyper no timer, so a client that sends a header byte
//! a second (slowloris), or nothing at all, holds its connection forever.
//! [`serve`] drives hyper's HTTP/1.1 connection builder itself with a timer:
//! request headers must arrive within the header read timeout (which also
//! closes idle keep-alive connections), at most [`MAX_HEADERS`] of them in
//! at most [`MAX_HEAD_BYTES`] (hyper answers 431 beyond). WebSocket
//! upgrades work as with `axum::serve`, and the client address is inserted
//! as `ConnectInfo<SocketAddr>`.

use std::convert::Infallible;
use std::io;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::response::Response;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::{Service, ServiceExt};

use crate::shutdown::CancellationToken;

/// The most request headers a client may send: hyper's own limit, which it
/// applies unless told another. Told explicitly (even the same number), it
/// fills a header array of that size for every request it parses.
pub const MAX_HEADERS: usize = 100;

/// The largest request head (request line and headers) in bytes.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The header read timeout of listeners that have no setting of their own.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `service` (an axum router, or a service in front of one) on
/// `listener` until `shutdown` is cancelled, then lets
/// requests in flight finish and returns once every connection is closed
/// (upgraded WebSockets are on their own by then).
pub async fn serve<S>(
    listener: TcpListener,
    service: S,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) -> io::Result<()>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_header_size(MAX_HEAD_BYTES);
    // Every connection task holds a receiver; the server has stopped when
    // the last one is dropped.
    let (close_tx, close_rx) = tokio::sync::watch::channel(());
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(err) => {
                    accept_failed(err).await;
                    continue;
                }
            },
            () = shutdown.cancelled() => break,
        };
        // Small request/response pairs: send without waiting for more.
        let _ = tcp.set_nodelay(true);
        let service = service.clone().map_request(move |request: Request<Incoming>| {
            let mut request = request.map(Body::new);
            request.extensions_mut().insert(ConnectInfo(remote));
            request
        });
        let connection = builder
            .serve_connection(TokioIo::new(tcp), TowerToHyperService::new(service))
            .with_upgrades();
        let (stopping, close_rx) = (shutdown.clone(), close_rx.clone());
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stopping.cancelled() => {
                    // Finish the request in flight, then close.
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(peer = %remote, error = %err, "connection ended with an error");
            }
            drop(close_rx);
        });
    }
    drop(listener);
    drop(close_rx);
    close_tx.closed().await;
    Ok(())
}

/// Waits after a failed accept: a reset connection is the client's problem,
/// anything else (out of file descriptors) is ours, and retrying at once
/// would spin.
async fn accept_failed(err: io::Error) {
    use io::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %err, "accepting a connection failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::net::SocketAddr;
    use std::time::Instant;

    use axum::Router;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    async fn start(timeout: Duration) -> (SocketAddr, CancellationToken, tokio::task::JoinHandle<io::Result<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router = Router::new().route(
            "/peer",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(serve(listener, router, timeout, shutdown.clone()));
        (addr, shutdown, server)
    }

    async fn exchange(addr: SocketAddr, request: &[u8]) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream.write_all(request).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer))
            .await
            .expect("answered and closed within 5 s");
        String::from_utf8_lossy(&answer).into_owned()
    }

    #[tokio::test]
    async fn answers_bounds_headers_and_cuts_slow_clients_off() {
        let (addr, shutdown, server) = start(Duration::from_millis(300)).await;
        let ok = exchange(addr, b"GET /peer HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n").await;
        assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
        assert!(ok.ends_with("127.0.0.1"), "ConnectInfo is set: {ok}");

        let mut flood = String::from("GET /peer HTTP/1.1\r\nhost: x\r\n");
        for i in 0..=MAX_HEADERS {
            flood.push_str(&format!("x-{i}: {i}\r\n"));
        }
        flood.push_str("\r\n");
        let answer = exchange(addr, flood.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
        let huge = format!(
            "GET /peer HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
            "a".repeat(MAX_HEAD_BYTES)
        );
        let answer = exchange(addr, huge.as_bytes()).await;
        assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");

        // A silent client and a half-sent head are closed after the timeout.
        let started = Instant::now();
        exchange(addr, b"").await;
        exchange(addr, b"GET /peer HTTP/1.1\r\nhost: x\r\nx-slow: a").await;
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("stops once cancelled")
            .unwrap()
            .unwrap();
    }
}
