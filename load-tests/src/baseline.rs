//! The floor of the benchmarks: a bare axum server answering every GET with
//! the same JSON bytes from memory (no auth, no gRPC, no cache, no layers).

use axum::Router;
use axum::http::header;
use axum::routing::get;
use bytes::Bytes;

use crate::Options;

/// `vdm-load baseline --addr 127.0.0.1:8090 --body-file quest.json`
pub async fn run(options: &Options) -> Result<bool, String> {
    let addr = options.get("addr").unwrap_or("127.0.0.1:8090");
    let file = options.get("body-file").ok_or("--body-file is required")?;
    let body = Bytes::from(std::fs::read(file).map_err(|e| format!("{file}: {e}"))?);
    let app = Router::new().fallback(get(move || {
        let body = body.clone();
        async move { ([(header::CONTENT_TYPE, "application/json")], body) }
    }));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))?;
    eprintln!("baseline serving {file} on {addr}");
    axum::serve(listener, app).await.map_err(|e| e.to_string())?;
    Ok(true)
}
