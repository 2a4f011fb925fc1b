//! The rumor transform path under load.
//!
//! `vdm-load mock-llm --addr A [--delay-ms D]`: an OpenAI-compatible
//! chat-completions server that answers every retelling of a batch after
//! `D` ms (200 by default, a slow upstream), and counts what it was asked:
//! `GET /stats` answers `{"calls": n, "items": m}`.
//!
//! `vdm-load talk URL --players A-B --npcs C-D [--connections N] [--stats-url U]`:
//! signs in players A..=B (device ids `talk-player-<i>`), then every player
//! talks to every NPC of C..=D (`POST /v1/npcs/{id}/talk`), in a scrambled
//! order over N connections; prints the latency of the asks and, with
//! `--stats-url` (the mock's), how many upstream calls they caused per
//! 1,000 asks.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::Json;
use axum::extract::State;
use axum::routing::{get, post};
use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

use crate::Options;

#[derive(Default)]
struct Counts {
    calls: AtomicU64,
    items: AtomicU64,
    delay_ms: AtomicU64,
}

/// Runs the mock upstream until killed.
pub async fn mock(options: &Options) -> Result<bool, String> {
    let addr = options.get("addr").unwrap_or("127.0.0.1:18099");
    let counts = Arc::new(Counts::default());
    counts.delay_ms.store(options.num("delay-ms", 200)?, Ordering::Relaxed);
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(complete))
        .route("/stats", get(stats))
        .with_state(counts);
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("bind {addr}: {e}"))?;
    eprintln!("mock chat-completions upstream on http://{addr}/v1");
    axum::serve(listener, app).await.map_err(|e| e.to_string())?;
    Ok(true)
}

async fn complete(State(counts): State<Arc<Counts>>, Json(body): Json<Value>) -> Json<Value> {
    counts.calls.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(counts.delay_ms.load(Ordering::Relaxed))).await;
    let user: Value = body["messages"][1]["content"]
        .as_str()
        .and_then(|c| serde_json::from_str(c).ok())
        .unwrap_or(Value::Null);
    let texts: Vec<String> = user["retellings"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|r| format!("They swear that {}", r["text"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    counts.items.fetch_add(texts.len() as u64, Ordering::Relaxed);
    let content = json!({"texts": texts}).to_string();
    Json(json!({"choices": [{"message": {"role": "assistant", "content": content}}]}))
}

async fn stats(State(counts): State<Arc<Counts>>) -> Json<Value> {
    Json(json!({
        "calls": counts.calls.load(Ordering::Relaxed),
        "items": counts.items.load(Ordering::Relaxed),
    }))
}

/// Signs players in, then has each talk to each NPC; prints latencies.
pub async fn talk(options: &Options) -> Result<bool, String> {
    let authority = crate::authority(options.positional(0, "URL")?)?;
    let players = crate::parse_range(options.get("players").ok_or("--players A-B is required")?)?;
    let npcs = crate::parse_range(options.get("npcs").ok_or("--npcs A-B is required")?)?;
    let connections: usize = options.num("connections", 32)?;
    let stats_url = options.get("stats-url").map(str::to_owned);

    let mut client = Conn::open(&authority).await?;
    let mut tokens = Vec::new();
    for i in players.0..=players.1 {
        let body = format!(r#"{{"device_id":"talk-player-{i}"}}"#);
        let (status, value) = client.send("POST", "/v1/auth/device", None, Some(body)).await?;
        if !status.is_success() {
            return Err(format!("sign-in {i}: {status} {value}"));
        }
        let token = value["session_token"].as_str().ok_or("no session_token")?.to_owned();
        tokens.push(token);
    }
    let mut asks: Vec<(usize, u64)> = (0..tokens.len())
        .flat_map(|p| (npcs.0..=npcs.1).map(move |n| (p, n)))
        .collect();
    // Scrambled, reproducibly: players do not queue at one NPC in turn.
    let len = asks.len();
    for i in 0..len {
        let j = (i.wrapping_mul(2_654_435_761) ^ (i >> 3)) % len;
        asks.swap(i, j);
    }
    let before = upstream_calls(stats_url.as_deref()).await?;
    let asks = Arc::new(asks);
    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let mut conn = Conn::open(&authority).await?;
        let (asks, tokens, next) = (asks.clone(), tokens.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut told = 0u64;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some((player, npc)) = asks.get(i).copied() else {
                    return Ok::<_, String>((latencies, told));
                };
                let sent = Instant::now();
                let path = format!("/v1/npcs/{npc}/talk");
                let (status, value) = conn
                    .send("POST", &path, Some(&tokens[player]), Some("{}".into()))
                    .await?;
                latencies.push(sent.elapsed());
                if !status.is_success() {
                    return Err(format!("{path}: {status} {value}"));
                }
                told += u64::from(value["told"] == true);
            }
        }));
    }
    let mut latencies = Vec::new();
    let mut told = 0;
    for task in tasks {
        let (l, t) = task.await.map_err(|e| e.to_string())??;
        latencies.extend(l);
        told += t;
    }
    let elapsed = started.elapsed();
    let after = upstream_calls(stats_url.as_deref()).await?;
    latencies.sort();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "talk: {} asks ({} told a rumor) by {} players to {} NPCs over {connections} connections in {:.2} s ({:.0} asks/s)",
        latencies.len(),
        told,
        players.1 - players.0 + 1,
        npcs.1 - npcs.0 + 1,
        elapsed.as_secs_f64(),
        latencies.len() as f64 / elapsed.as_secs_f64()
    );
    println!(
        "latency: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        ms(pick(0.50)),
        ms(pick(0.90)),
        ms(pick(0.99)),
        ms(pick(1.0))
    );
    if let (Some(before), Some(after)) = (before, after) {
        let calls = after - before;
        println!(
            "upstream calls: {calls} ({:.1} per 1,000 asks)",
            calls as f64 * 1000.0 / latencies.len() as f64
        );
    }
    Ok(true)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

async fn upstream_calls(stats_url: Option<&str>) -> Result<Option<u64>, String> {
    let Some(url) = stats_url else {
        return Ok(None);
    };
    let rest = url
        .strip_prefix("http://")
        .ok_or("--stats-url must start with http://")?;
    let (authority, path) = rest
        .split_once('/')
        .map_or((rest, "/"), |(a, _)| (a, &url[7 + a.len()..]));
    let mut conn = Conn::open(authority).await?;
    let (_, value) = conn.send("GET", path, None, None).await?;
    Ok(value["calls"].as_u64())
}

/// One HTTP/1.1 connection.
pub(crate) struct Conn {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    authority: String,
}

impl Conn {
    pub(crate) async fn open(authority: &str) -> Result<Conn, String> {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connect {authority}: {e}"))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| e.to_string())?;
        tokio::spawn(conn);
        Ok(Conn {
            sender,
            authority: authority.to_owned(),
        })
    }

    pub(crate) async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<String>,
    ) -> Result<(http::StatusCode, Value), String> {
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(http::header::HOST, &self.authority)
            .header(http::header::CONTENT_TYPE, "application/json");
        if let Some(token) = token {
            request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self.sender.send_request(request).await.map_err(|e| e.to_string())?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok((status, value))
    }
}
