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

use std::io;
use std::time::Duration;

use axum::Router;
use axum::extract::{ConnectInfo, Request};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::shutdown::CancellationToken;

/// The most request headers a client may send.
pub const MAX_HEADERS: usize = 100;

/// The largest request head (request line and headers) in bytes; also the
/// connection's read buffer.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// The header read timeout of listeners that have no setting of their own.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` is cancelled, then lets
/// requests in flight finish and returns once every connection is closed
/// (upgraded WebSockets are on their own by then).
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) -> io::Result<()> {
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .max_headers(MAX_HEADERS)
        .max_buf_size(MAX_HEAD_BYTES);
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
        let service = router.clone().map_request(move |mut request: Request<Incoming>| {
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
