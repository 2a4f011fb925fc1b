//! `vdm-load seed URL --admin-token T --count N [--connections C]`: creates
//! N quests through `POST /v1/quests` with idempotency keys
//! `load-quest-<i>`, so a second run creates nothing; prints the id range.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::Options;

/// Seeds the quests; `Ok(true)` when every create succeeded.
pub async fn run(options: &Options) -> Result<bool, String> {
    let authority = crate::authority(options.positional(0, "URL")?)?;
    let token = options.get("admin-token").ok_or("--admin-token is required")?;
    let count: u64 = options.num("count", 10_000)?;
    let connections: u64 = options.num("connections", 16)?;
    let next = Arc::new(AtomicU64::new(0));
    let ids = Arc::new(std::sync::Mutex::new(Vec::with_capacity(count as usize)));
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let stream = TcpStream::connect(&authority)
            .await
            .map_err(|e| format!("connect: {e}"))?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        let (next, ids, authority, auth) = (next.clone(), ids.clone(), authority.clone(), format!("Bearer {token}"));
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return Ok::<(), String>(());
                }
                let body = format!(
                    r#"{{"title":"Load quest {i}","description":"Generated for load tests.","giver_npc_id":{},"region_id":{},"level_requirement":{},"reward":{{"gold":{},"xp":{},"item_ids":[{}]}},"objectives":[{{"description":"Collect tokens","target_count":{}}},{{"description":"Return to the giver","target_count":1}}]}}"#,
                    1 + i % 24,
                    1 + i % 4,
                    i % 20,
                    10 + i % 90,
                    100 + i % 900,
                    1 + i % 50,
                    1 + i % 10
                );
                let request = Request::post("/v1/quests")
                    .header(http::header::HOST, &authority)
                    .header(http::header::AUTHORIZATION, &auth)
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .header("idempotency-key", format!("load-quest-{i}"))
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                sender.ready().await.map_err(|e| e.to_string())?;
                let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
                let status = response.status();
                let bytes = response.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
                if !status.is_success() {
                    return Err(format!("create {i}: {status} {}", String::from_utf8_lossy(&bytes)));
                }
                let value: serde_json::Value = serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
                if let Some(id) = value["id"].as_i64() {
                    ids.lock().map_err(|_| "lock")?.push(id);
                }
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let ids = ids.lock().map_err(|_| "lock")?;
    let (min, max) = (
        ids.iter().min().copied().unwrap_or(0),
        ids.iter().max().copied().unwrap_or(0),
    );
    println!("seeded {} quests, ids {min}-{max}", ids.len());
    Ok(ids.len() as u64 == count)
}
