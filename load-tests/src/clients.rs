//! `vdm-load clients URL --clients N --duration S [--think-ms T] [--pid P] [--region R]
//! [--max-rss-growth-mb M] [--every S] [--only KIND,...]`:
//! a population of Unity clients. Each signs a device in, opens a socket
//! (subscribed to its region) and, until the end, every `T` ms (±50 %):
//! loads the bootstrap (10 %), reads a quest (15 %), its profile (5 %), its
//! inventory (5 %) or an NPC (15 %), accepts or abandons its quest in turn
//! (15 %), talks to an NPC (25 %), or uploads a batch of 10 telemetry
//! samples (10 %). Prints, per kind, the
//! requests, non-2xx answers, p50/p99/max latency, the pushes the sockets
//! received, and the RSS of `--pid` every 5 s with its growth after warm-up
//! (the first fifth of the run), failing when it grew more than
//! `--max-rss-growth-mb`. With `--every S` it also prints, every S seconds,
//! that interval's throughput, p50/p99/max latency over every kind,
//! non-2xx and 5xx answers, and the RSS (for soaks: how they move over time).
//! `--only` keeps the kinds named (a kind's name with dashes for spaces, or
//! a prefix of it: `quest-a` is accept and abandon): with `--pid`, the
//! server's CPU per request of one kind (printed at the end).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::net::TcpStream;

use crate::Options;
use crate::rumors::Conn;

type Stats = BTreeMap<&'static str, (u64, u64, Vec<Duration>)>;
/// The first non-2xx answer of each (kind, status), to say what went wrong.
type Examples = BTreeMap<(&'static str, u16), String>;
/// The requests of the current `--every` interval: (latency in µs, status;
/// 0 for a broken connection).
type Window = Arc<std::sync::Mutex<Vec<(u64, u16)>>>;

/// Runs the population; `Ok(true)` when no request failed with a 5xx or a
/// transport error.
pub async fn run(options: &Options) -> Result<bool, String> {
    let authority = crate::authority(options.positional(0, "URL")?)?;
    let addr: SocketAddr = authority.parse().map_err(|_| "URL must be http://ip:port")?;
    let clients: usize = options.num("clients", 100)?;
    let duration = Duration::from_secs_f64(options.num("duration", 60.0)?);
    let think = Duration::from_millis(options.num("think-ms", 200)?);
    let pid: Option<u32> = options
        .get("pid")
        .map(|p| p.parse().map_err(|_| "--pid: not a number"))
        .transpose()?;
    let regions: i64 = options.num("regions", 4)?;
    // With --pid: fail when the RSS grows more than this after warm-up.
    let max_growth_mb: Option<f64> = options
        .get("max-rss-growth-mb")
        .map(|m| m.parse().map_err(|_| "--max-rss-growth-mb: not a number"))
        .transpose()?;

    let only: Arc<[String]> = options
        .get("only")
        .map(|kinds| kinds.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    let cpu_before = pid.and_then(crate::sockets::cpu_seconds);

    let every: Option<u64> = options
        .get("every")
        .map(|m| m.parse().map_err(|_| "--every: not a number of seconds"))
        .transpose()?;

    let pushes = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let window: Window = Default::default();
    let started = Instant::now();
    let deadline = started + duration;
    let rss = tokio::spawn(sample_rss(pid, deadline));
    let reporter = every.map(|secs| {
        tokio::spawn(report_every(
            Duration::from_secs(secs.max(1)),
            window.clone(),
            pid,
            deadline,
        ))
    });
    let mut tasks = Vec::with_capacity(clients);
    for i in 0..clients {
        let (authority, pushes, failures, window, only) = (
            authority.clone(),
            pushes.clone(),
            failures.clone(),
            window.clone(),
            only.clone(),
        );
        tasks.push(tokio::spawn(async move {
            client(
                i,
                addr,
                authority,
                think,
                deadline,
                1 + (i as i64 % regions),
                pushes,
                failures,
                window,
                &only,
            )
            .await
        }));
        // Arrivals spread over the first second.
        tokio::time::sleep(Duration::from_micros(1_000_000 / clients.max(1) as u64)).await;
    }
    let mut stats: Stats = BTreeMap::new();
    let mut examples: Examples = BTreeMap::new();
    for task in tasks {
        let (mine, seen) = task.await.map_err(|e| e.to_string())??;
        for (key, example) in seen {
            examples.entry(key).or_insert(example);
        }
        for (kind, (count, errors, latencies)) in mine {
            let entry = stats.entry(kind).or_default();
            entry.0 += count;
            entry.1 += errors;
            entry.2.extend(latencies);
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let rss = rss.await.map_err(|e| e.to_string())?;
    if let Some(reporter) = reporter {
        reporter.abort();
    }

    let total: u64 = stats.values().map(|s| s.0).sum();
    println!(
        "{clients} clients for {elapsed:.0} s (think {} ms): {total} requests, {:.0} req/s, {} socket pushes received",
        think.as_millis(),
        total as f64 / elapsed,
        pushes.load(Ordering::Relaxed)
    );
    println!(
        "{:<14} {:>8} {:>8} {:>9} {:>9} {:>9}",
        "kind", "requests", "non-2xx", "p50 ms", "p99 ms", "max ms"
    );
    for (kind, (count, errors, mut latencies)) in stats {
        latencies.sort();
        let pick = |q: f64| {
            latencies
                .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
                .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{kind:<14} {count:>8} {errors:>8} {:>9.2} {:>9.2} {:>9.2}",
            pick(0.5),
            pick(0.99),
            pick(1.0)
        );
    }
    for ((kind, status), example) in &examples {
        println!("first {status} of {kind}: {example}");
    }
    let mut grew_too_much = false;
    if !rss.is_empty() {
        let line: Vec<String> = rss
            .iter()
            .map(|(t, kb)| format!("{t}s {:.1}", *kb as f64 / 1024.0))
            .collect();
        println!("RSS (MB) every 5 s: {}", line.join(", "));
        let warm = rss.iter().find(|(t, _)| *t as f64 >= elapsed / 5.0).map(|(_, kb)| *kb);
        if let (Some(warm), Some((_, last))) = (warm, rss.last()) {
            println!(
                "RSS after warm-up {:.1} MB, at the end {:.1} MB ({:+.1} MB)",
                warm as f64 / 1024.0,
                *last as f64 / 1024.0,
                (*last as f64 - warm as f64) / 1024.0
            );
            if let Some(max) = max_growth_mb {
                let growth = (*last as f64 - warm as f64) / 1024.0;
                grew_too_much = growth > max;
                println!(
                    "RSS growth after warm-up: {growth:+.1} MB, at most {max:.1} MB: {}",
                    if grew_too_much { "FAIL" } else { "ok" }
                );
            }
        }
    }
    if let (Some(before), Some(after)) = (cpu_before, pid.and_then(crate::sockets::cpu_seconds)) {
        let used = after - before;
        println!(
            "server CPU: {used:.2} s, {:.0} us per request (sign-ins and sockets included)",
            used * 1e6 / total.max(1) as f64
        );
    }
    let failed = failures.load(Ordering::Relaxed);
    println!("5xx or transport failures: {failed}");
    Ok(failed == 0 && !grew_too_much)
}

#[allow(clippy::too_many_arguments)]
async fn client(
    i: usize,
    addr: SocketAddr,
    authority: String,
    think: Duration,
    deadline: Instant,
    region: i64,
    pushes: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    window: Window,
    only: &[String],
) -> Result<(Stats, Examples), String> {
    let mut stats: Stats = BTreeMap::new();
    let mut examples: Examples = BTreeMap::new();
    let mut conn = Conn::open(&authority).await?;
    let body = format!(r#"{{"device_id":"mixed-client-{i}"}}"#);
    let sent = Instant::now();
    let (status, value) = conn.send("POST", "/v1/auth/device", None, Some(body)).await?;
    record(&mut stats, "sign-in", status, sent.elapsed(), &failures, &window);
    let token = value["session_token"].as_str().ok_or("no session token")?.to_owned();

    // The socket: subscribed to the client's region, counting pushes.
    let stream = TcpStream::connect(addr).await.map_err(|e| format!("connect: {e}"))?;
    let mut ws = crate::sockets::open_subscribed(stream, &authority, &token, region).await?;
    let reader = tokio::spawn(async move {
        while let Some(Ok(message)) = ws.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = message
                && text.contains(r#""type":"event""#)
            {
                pushes.fetch_add(1, Ordering::Relaxed);
            }
        }
    });

    let mut rng = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // The demo quests a new player (level 1) may accept: 1 and 2.
    let quest = 1 + (i % 2) as u64;
    let mut accepted = false;
    while Instant::now() < deadline {
        let jitter = think.as_millis() as u64 / 2 + next() % (think.as_millis() as u64 + 1);
        tokio::time::sleep(Duration::from_millis(jitter)).await;
        let (kind, method, path, body) = loop {
            let request = pick(&mut next, region, quest, accepted);
            if only.is_empty() || only.iter().any(|o| request.0.replace(' ', "-").starts_with(o.as_str())) {
                break request;
            }
        };
        let sent = Instant::now();
        let status = match conn.send(method, &path, Some(&token), body).await {
            Ok((status, value)) => {
                if !status.is_success() {
                    let text: String = value.to_string().chars().take(160).collect();
                    examples.entry((kind, status.as_u16())).or_insert(text);
                }
                status
            }
            Err(err) => {
                // The connection broke: count it, say how (status 0), and
                // reconnect.
                failures.fetch_add(1, Ordering::Relaxed);
                window.lock().unwrap_or_else(|e| e.into_inner()).push((0, 0));
                examples.entry((kind, 0)).or_insert(err);
                conn = Conn::open(&authority).await?;
                continue;
            }
        };
        if status.is_success() && kind.starts_with("quest a") {
            accepted = !accepted;
        }
        record(&mut stats, kind, status, sent.elapsed(), &failures, &window);
    }
    reader.abort();
    Ok((stats, examples))
}

/// One request of the mix: its kind, method, path and body.
fn pick(
    next: &mut impl FnMut() -> u64,
    region: i64,
    quest: u64,
    accepted: bool,
) -> (&'static str, &'static str, String, Option<String>) {
    let roll = next() % 100;
    let npc = 1 + next() % 32;
    match roll {
        0..10 => ("bootstrap", "GET", format!("/v1/bootstrap?region_id={region}"), None),
        10..25 => ("quest read", "GET", format!("/v1/quests/{}", 1 + next() % 8), None),
        25..30 => ("profile", "GET", "/v1/me".to_owned(), None),
        30..35 => ("inventory", "GET", "/v1/me/inventory".to_owned(), None),
        35..50 => ("npc read", "GET", format!("/v1/npcs/{npc}"), None),
        50..65 if accepted => ("quest abandon", "POST", format!("/v1/me/quests/{quest}/abandon"), None),
        50..65 => ("quest accept", "POST", format!("/v1/quests/{quest}/accept"), None),
        // The route takes no body: one sent would go unread and end
        // the connection (`Connection: close`).
        65..90 => ("npc talk", "POST", format!("/v1/npcs/{npc}/talk"), None),
        _ => (
            "telemetry",
            "POST",
            "/v1/telemetry/client".to_owned(),
            Some(telemetry(next)),
        ),
    }
}

fn record(
    stats: &mut Stats,
    kind: &'static str,
    status: http::StatusCode,
    took: Duration,
    failures: &AtomicU64,
    window: &Window,
) {
    window
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((took.as_micros() as u64, status.as_u16()));
    let entry = stats.entry(kind).or_default();
    entry.0 += 1;
    if !status.is_success() {
        entry.1 += 1;
    }
    if status.is_server_error() {
        failures.fetch_add(1, Ordering::Relaxed);
    }
    entry.2.push(took);
}

fn telemetry(next: &mut impl FnMut() -> u64) -> String {
    let samples: Vec<String> = (0..10)
        .map(|_| {
            format!(
                r#"{{"frame_time_ms":{}.{},"gc_collections":{},"gc_alloc_bytes":{},"memory_mb":{},"systems":{{"animation":1.5,"quest":0.3}}}}"#,
                8 + next() % 20,
                next() % 10,
                next() % 2,
                // Most frames allocate nothing; some a few KiB.
                (next() % 4).saturating_sub(1) * 2048,
                600 + next() % 400
            )
        })
        .collect();
    format!(
        r#"{{"client_version":"1.4.2","device_class":"desktop","samples":[{}]}}"#,
        samples.join(",")
    )
}

async fn sample_rss(pid: Option<u32>, deadline: Instant) -> Vec<(u64, u64)> {
    let Some(pid) = pid else {
        return Vec::new();
    };
    let started = Instant::now();
    let mut samples = Vec::new();
    while Instant::now() < deadline + Duration::from_secs(1) {
        if let Some(kb) = crate::sockets::rss_kb(pid) {
            samples.push((started.elapsed().as_secs(), kb));
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    samples
}

/// `--every`: one line per interval, from the requests it finished.
async fn report_every(every: Duration, window: Window, pid: Option<u32>, deadline: Instant) {
    let started = Instant::now();
    println!(
        "{:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6} {:>8}",
        "t s", "req/s", "p50 ms", "p99 ms", "max ms", "non-2xx", "5xx", "RSS MB"
    );
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    while Instant::now() < deadline {
        ticks.tick().await;
        let mut taken = std::mem::take(&mut *window.lock().unwrap_or_else(|e| e.into_inner()));
        taken.sort_unstable();
        let count = taken.len();
        let at = |q: f64| {
            taken
                .get(((count as f64 * q) as usize).min(count.saturating_sub(1)))
                .map_or(0.0, |(us, _)| *us as f64 / 1000.0)
        };
        let non_2xx = taken.iter().filter(|(_, s)| !(200..300).contains(s)).count();
        let server = taken.iter().filter(|(_, s)| *s >= 500 || *s == 0).count();
        let rss = pid
            .and_then(crate::sockets::rss_kb)
            .map_or("-".to_owned(), |kb| format!("{:.1}", kb as f64 / 1024.0));
        println!(
            "{:>7} {:>8.0} {:>8.2} {:>8.2} {:>8.2} {:>8} {:>6} {:>8}",
            started.elapsed().as_secs(),
            count as f64 / every.as_secs_f64(),
            at(0.5),
            at(0.99),
            taken.last().map_or(0.0, |(us, _)| *us as f64 / 1000.0),
            non_2xx,
            server,
            rss
        );
    }
}
