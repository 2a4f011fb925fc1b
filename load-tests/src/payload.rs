//! `vdm-load payload URL PATH [--token T]`: fetches PATH once per body
//! format (JSON, MessagePack) and per content coding (none, gzip, br,
//! zstd), and prints the bytes each answer put on the wire (the body as
//! sent, compressed or not; headers not counted). Used for the bootstrap
//! payload figures in docs/PERFORMANCE.md.

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Options;

const FORMATS: [(&str, &str); 2] = [("json", "application/json"), ("msgpack", "application/msgpack")];
const CODINGS: [&str; 4] = ["identity", "gzip", "br", "zstd"];

/// Prints the size table; `Ok(false)` when an answer was not a 200 in the
/// format and coding asked for.
pub async fn run(options: &Options) -> Result<bool, String> {
    let url = options.positional(0, "URL")?;
    let path = options.positional(1, "PATH")?;
    let authority = crate::authority(url)?;
    let auth = options.get("token").map(|t| format!("Bearer {t}"));
    let stream = TcpStream::connect(&authority)
        .await
        .map_err(|e| format!("connect {authority}: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);

    println!("GET {path}: bytes on the wire");
    println!("{:<10}{:>10}{:>10}{:>10}{:>10}", "format", "none", "gzip", "br", "zstd");
    let mut all_ok = true;
    for (name, media_type) in FORMATS {
        let mut row = format!("{name:<10}");
        for coding in CODINGS {
            let mut request = Request::get(path)
                .header(http::header::HOST, &authority)
                .header(http::header::ACCEPT, media_type)
                .header(http::header::ACCEPT_ENCODING, coding);
            if let Some(auth) = &auth {
                request = request.header(http::header::AUTHORIZATION, auth);
            }
            let request = request.body(Full::new(Bytes::new())).map_err(|e| e.to_string())?;
            sender.ready().await.map_err(|e| e.to_string())?;
            let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
            let status = response.status();
            let got_coding = response
                .headers()
                .get(http::header::CONTENT_ENCODING)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("identity")
                .to_owned();
            let got_type = response
                .headers()
                .get(http::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let body = response
                .into_body()
                .collect()
                .await
                .map_err(|e| e.to_string())?
                .to_bytes();
            if !status.is_success() || got_coding != coding || !got_type.starts_with(media_type) {
                eprintln!(
                    "{name} {coding}: got {status}, {got_type}, content-encoding {got_coding}: {}",
                    String::from_utf8_lossy(&body[..body.len().min(200)])
                );
                all_ok = false;
            }
            row.push_str(&format!("{:>10}", body.len()));
        }
        println!("{row}");
    }
    Ok(all_ok)
}
