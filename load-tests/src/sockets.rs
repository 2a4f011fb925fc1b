//! Socket scenarios against `/v1/ws`:
//!
//! - idle: sign N devices in, open one socket each, hold them, and report
//!   the gateway's RSS growth per socket (`--pid` of the gateway process);
//! - push: the same sockets subscribed to `--region`, then `--pushes` world
//!   events for that region posted to `--push-url` (`/v1/world/events`,
//!   admin), reporting delivery latency over every socket: from the event's
//!   `at` (stamped by the world service, millisecond resolution) to its
//!   arrival.
//!
//! - across replicas: several client processes, each holding its sockets on
//!   one gateway (`--devices-from` keeps their players apart), write
//!   `--ready-file` once open, and wait for `--listen-pushes` region pushes
//!   that someone else posts (load-tests/sockets-replicas.sh), writing every
//!   delivery latency to `--latencies-out` for one merged report.
//!
//! Sockets are spread over the local addresses 127.0.0.1..127.0.0.N
//! (`--sources`) so one client process is not bound by one source address's
//! ephemeral ports.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::StreamExt;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::Mutex;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::Options;

/// Runs the scenario; `Ok(true)` when every socket opened (and, for
/// pushes, every push arrived).
pub async fn run(options: &Options) -> Result<bool, String> {
    let authority = crate::authority(options.positional(0, "URL")?)?;
    let addr: SocketAddr = authority.parse().map_err(|_| "URL must be http://ip:port")?;
    let sockets: usize = options.num("sockets", 1000)?;
    let sources: u8 = options.num("sources", 4)?;
    let hold: f64 = options.num("hold", 5.0)?;
    let pid: Option<u32> = options
        .get("pid")
        .map(|p| p.parse().map_err(|_| "--pid: not a number"))
        .transpose()?;
    let region: i64 = options.num("region", 1)?;
    let pushes: usize = options.num("pushes", 0)?;
    let listen_pushes: usize = options.num("listen-pushes", 0)?;
    let devices_from: usize = options.num("devices-from", 0)?;
    // Handshakes in flight at once: clients ramp up, and on a shared
    // 2-core machine 100,000 simultaneous handshakes would starve each
    // other past the gateway's header timeout.
    let opening = Arc::new(tokio::sync::Semaphore::new(options.num("open-concurrency", 256)?));

    let started = Instant::now();
    let tokens = sign_in(addr, &authority, devices_from, sockets).await?;
    eprintln!(
        "  {} devices signed in in {:.1} s",
        tokens.len(),
        started.elapsed().as_secs_f64()
    );
    // Measured after the sign-ins, so only the sockets' own memory counts.
    let rss_before = pid.and_then(rss_kb);

    // Sharded so that thousands of sockets recording at once do not queue
    // on one lock (the client shares the machine with the server).
    let latencies: Arc<Vec<std::sync::Mutex<Vec<u64>>>> = Arc::new((0..64).map(|_| Default::default()).collect());
    let received = Arc::new(AtomicU64::new(0));
    let opened = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(sockets);
    for (i, token) in tokens.into_iter().enumerate() {
        let source = std::net::Ipv4Addr::new(127, 0, 0, 1 + (i % usize::from(sources.max(1))) as u8);
        let (latencies, received, opened, authority, opening) = (
            latencies.clone(),
            received.clone(),
            opened.clone(),
            authority.clone(),
            opening.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let permit = opening.acquire_owned().await.map_err(|e| e.to_string())?;
            let socket = TcpSocket::new_v4().map_err(|e| e.to_string())?;
            socket
                .bind(SocketAddr::new(source.into(), 0))
                .map_err(|e| e.to_string())?;
            let stream = socket.connect(addr).await.map_err(|e| format!("connect: {e}"))?;
            let mut ws = open_subscribed(stream, &authority, &token, region).await?;
            opened.fetch_add(1, Ordering::Relaxed);
            drop(permit);
            while let Some(Ok(message)) = ws.next().await {
                if let Message::Text(text) = message
                    && let Some(at) = sent_at(text.as_str())
                {
                    let now = now_us();
                    if let Ok(mut shard) = latencies[i % 64].lock() {
                        shard.push(now.saturating_sub(at));
                    }
                    received.fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok::<(), String>(())
        }));
    }
    // Until every socket opened or failed (a failed one's task ends).
    let mut failed = 0;
    while started.elapsed() < Duration::from_secs(300) {
        failed = tasks.iter().filter(|t| t.is_finished()).count();
        if opened.load(Ordering::Relaxed) as usize + failed >= sockets {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let open = opened.load(Ordering::Relaxed) as usize;
    println!(
        "sockets open {open}/{sockets} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        let mut first = None;
        for task in tasks.iter_mut().filter(|t| t.is_finished()) {
            if let Ok(Err(err)) = task.await {
                first = Some(err);
                break;
            }
        }
        println!(
            "{failed} sockets failed or closed; first error: {}",
            first.unwrap_or_default()
        );
    }
    tokio::time::sleep(Duration::from_secs_f64(hold)).await;
    if let (Some(before), Some(after)) = (rss_before, pid.and_then(rss_kb)) {
        let per = (after.saturating_sub(before)) as f64 * 1024.0 / open.max(1) as f64;
        println!(
            "gateway RSS {:.1} MB -> {:.1} MB: {:.1} KB per idle socket",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            per / 1024.0
        );
    }

    let mut ok = open == sockets;
    if let Some(ready) = options.get("ready-file") {
        std::fs::write(ready, format!("{open}\n")).map_err(|e| format!("--ready-file: {e}"))?;
    }
    if listen_pushes > 0 {
        let wait: f64 = options.num("wait", 120.0)?;
        let expected = (open * listen_pushes) as u64;
        let deadline = Instant::now() + Duration::from_secs_f64(wait);
        while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Give late deliveries a moment, then report.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let latencies: Vec<u64> = latencies
            .iter()
            .filter_map(|l| l.lock().ok())
            .flat_map(|l| l.clone())
            .collect();
        println!("pushes delivered {}/{expected}", latencies.len());
        if let Some(out) = options.get("latencies-out") {
            let text: String = latencies.iter().map(|l| format!("{l}\n")).collect();
            std::fs::write(out, text).map_err(|e| format!("--latencies-out: {e}"))?;
        }
        ok &= latencies.len() as u64 == expected;
    }
    if pushes > 0 {
        let push_url = options.get("push-url").ok_or("--push-url is required with --pushes")?;
        let admin = options
            .get("admin-token")
            .ok_or("--admin-token is required with --pushes")?;
        for n in 0..pushes {
            let body = format!(r#"{{"kind":"storm","text":"load test push {n}","region_ids":[{region}]}}"#);
            post(addr, &authority, push_url, Some(admin), body).await?;
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
        let expected = (open * pushes) as u64;
        let deadline = Instant::now() + Duration::from_secs(10);
        while received.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut latencies: Vec<u64> = latencies
            .iter()
            .filter_map(|l| l.lock().ok())
            .flat_map(|l| l.clone())
            .collect();
        latencies.sort_unstable();
        let pct = |p: f64| {
            latencies
                .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0) as f64
                / 1000.0
        };
        println!(
            "pushes delivered {}/{expected}  p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
            latencies.len(),
            pct(0.5),
            pct(0.99),
            pct(1.0)
        );
        ok &= latencies.len() as u64 == expected;
    }
    for task in tasks {
        task.abort();
    }
    Ok(ok)
}

/// Upgrades a connected stream to `/v1/ws` as the player of `token` and
/// subscribes the socket to `region`.
pub(crate) async fn open_subscribed(
    stream: TcpStream,
    authority: &str,
    token: &str,
    region: i64,
) -> Result<tokio_tungstenite::WebSocketStream<TcpStream>, String> {
    let mut request = format!("ws://{authority}/v1/ws")
        .into_client_request()
        .map_err(|e| e.to_string())?;
    let bearer = format!("Bearer {token}").parse().map_err(|_| "token header")?;
    request.headers_mut().insert("authorization", bearer);
    let (mut ws, _) = tokio_tungstenite::client_async(request, stream)
        .await
        .map_err(|e| format!("upgrade: {e}"))?;
    let subscribe = format!(r#"{{"id":"s","type":"subscribe","regions":[{region}]}}"#);
    futures_util::SinkExt::send(&mut ws, Message::Text(subscribe.into()))
        .await
        .map_err(|e| e.to_string())?;
    Ok(ws)
}

fn sent_at(text: &str) -> Option<u64> {
    // A substring scan, not a JSON parse: the client must not be the
    // bottleneck it measures.
    if !text.starts_with(r#"{"type":"event""#) {
        return None;
    }
    let start = text.find(r#""at":""#)? + 6;
    rfc3339_us(text.get(start..start + 24)?)
}

/// Microseconds since the epoch of `2026-11-27T08:55:00.123Z` (the form the
/// backend writes: UTC, milliseconds).
fn rfc3339_us(raw: &str) -> Option<u64> {
    let (date, time) = raw.strip_suffix('Z')?.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut t = hms.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let millis: i64 = format!("{frac:0<3}")[..3].parse().ok()?;
    // Days from the civil date (proleptic Gregorian), Howard Hinnant's way.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from((secs * 1000 + millis) * 1000).ok()
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

pub(crate) fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// CPU time (user + system) a process used so far, in seconds (`/proc`
/// counts it in USER_HZ ticks, 100 per second on Linux).
pub(crate) fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is the
    // first, utime and stime the 12th and 13th.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace().skip(11);
    let user: u64 = fields.next()?.parse().ok()?;
    let system: u64 = fields.next()?.parse().ok()?;
    Some((user + system) as f64 / 100.0)
}

async fn sign_in(addr: SocketAddr, authority: &str, from: usize, count: usize) -> Result<Vec<String>, String> {
    let next = Arc::new(AtomicU64::new(0));
    let tokens = Arc::new(Mutex::new(vec![String::new(); count]));
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (next, tokens, authority) = (next.clone(), tokens.clone(), authority.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= count {
                    return Ok::<(), String>(());
                }
                let body = format!(r#"{{"device_id":"socket-load-{}"}}"#, from + i);
                let answer = post(addr, &authority, "/v1/auth/device", None, body).await?;
                let value: serde_json::Value = serde_json::from_slice(&answer).map_err(|e| e.to_string())?;
                let token = value["session_token"].as_str().ok_or("no session token")?.to_owned();
                tokens.lock().await[i] = token;
            }
        }));
    }
    for task in tasks {
        task.await.map_err(|e| e.to_string())??;
    }
    let tokens = tokens.lock().await.clone();
    Ok(tokens)
}

async fn post(
    addr: SocketAddr,
    authority: &str,
    path: &str,
    token: Option<&str>,
    body: String,
) -> Result<bytes::Bytes, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| e.to_string())?;
    tokio::spawn(conn);
    let mut request = http::Request::post(path)
        .header(http::header::HOST, authority)
        .header(http::header::CONTENT_TYPE, "application/json");
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(bytes::Bytes::from(body)))
        .map_err(|e| e.to_string())?;
    let response = sender.send_request(request).await.map_err(|e| e.to_string())?;
    let status = response.status();
    let bytes = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    if !status.is_success() {
        return Err(format!("POST {path}: {status} {}", String::from_utf8_lossy(&bytes)));
    }
    Ok(bytes)
}
