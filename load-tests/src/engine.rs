//! The request engine: N keep-alive HTTP/1.1 connections, each sending one
//! request at a time (closed loop) or on a schedule (`--rate`), recording
//! every latency in microseconds.
//!
//! Each connection is one task that writes a request's bytes and reads the
//! answer off its own socket ([`Connection`]), as wrk does: the generator
//! shares the machine's two cores with the server it measures, and hyper's
//! client (a connection task and a request task per connection, a wake-up
//! between them each way) cost it about as much CPU per request as the
//! server spent answering, which the server's latency then paid for.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What to run.
pub struct Plan {
    /// `host:port` of the server.
    pub authority: String,
    /// Concurrent connections.
    pub connections: usize,
    /// Measured time.
    pub duration: Duration,
    /// Time before measuring starts (requests sent, not recorded).
    pub warmup: Duration,
    /// Total requests per second, or `None` for as fast as possible.
    pub rate: Option<f64>,
}

/// Builds the n-th request.
#[derive(Clone)]
pub enum RequestFactory {
    /// GET a path template with `{id}` from a range, scrambled.
    Get {
        template: Arc<str>,
        ids: (u64, u64),
        auth: Option<Arc<str>>,
        /// Sent as `If-None-Match` (conditional reads: a 304 is a success).
        if_none_match: Option<Arc<str>>,
    },
    /// POST /v1/auth/device for one of `devices` device ids.
    DeviceAuth { devices: u64 },
}

impl RequestFactory {
    /// See [`RequestFactory::Get`].
    pub fn get(
        template: String,
        ids: (u64, u64),
        auth: Option<String>,
        if_none_match: Option<String>,
    ) -> RequestFactory {
        RequestFactory::Get {
            template: template.into(),
            ids,
            auth: auth.map(Into::into),
            if_none_match: if_none_match.map(Into::into),
        }
    }

    /// See [`RequestFactory::DeviceAuth`].
    pub fn device_auth(devices: u64) -> RequestFactory {
        RequestFactory::DeviceAuth {
            devices: devices.max(1),
        }
    }

    /// Writes the n-th request, head and body, into `out` (emptied first;
    /// written in place, no allocation per request).
    fn encode(&self, authority: &str, n: u64, out: &mut Vec<u8>) {
        use std::io::Write;
        out.clear();
        // Writing into a `Vec` cannot fail.
        match self {
            RequestFactory::Get {
                template,
                ids,
                auth,
                if_none_match,
            } => {
                let span = ids.1 - ids.0 + 1;
                // A multiplicative scramble spreads consecutive n over the range.
                let id = ids.0 + (n.wrapping_mul(2_654_435_761) % span);
                let _ = match template.split_once("{id}") {
                    Some((before, after)) => write!(out, "GET {before}{id}{after}"),
                    None => write!(out, "GET {template}"),
                };
                let _ = write!(out, " HTTP/1.1\r\nhost: {authority}\r\n");
                if let Some(auth) = auth {
                    let _ = write!(out, "authorization: {auth}\r\n");
                }
                if let Some(tag) = if_none_match {
                    let _ = write!(out, "if-none-match: {tag}\r\n");
                }
                out.extend_from_slice(b"\r\n");
            }
            RequestFactory::DeviceAuth { devices } => {
                let body = format!(r#"{{"device_id":"load-device-{}"}}"#, n % devices);
                let _ = write!(
                    out,
                    "POST /v1/auth/device HTTP/1.1\r\nhost: {authority}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection: a request written whole, its
/// answer read whole (a `Content-Length` body, or none).
struct Connection {
    stream: TcpStream,
    /// Bytes read and not yet consumed.
    buf: Vec<u8>,
}

impl Connection {
    async fn open(authority: &str) -> Result<Connection, String> {
        let stream = TcpStream::connect(authority)
            .await
            .map_err(|e| format!("connect {authority}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        Ok(Connection {
            stream,
            buf: Vec::with_capacity(16 * 1024),
        })
    }

    /// Sends `request` and reads its answer; the answer's status.
    async fn exchange(&mut self, request: &[u8]) -> Result<u16, String> {
        self.stream.write_all(request).await.map_err(|e| e.to_string())?;
        loop {
            if let Some((status, length)) = self.parsed()?
                && self.buf.len() >= length
            {
                self.buf.drain(..length);
                return Ok(status);
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(16 * 1024);
            }
            let read = self.stream.read_buf(&mut self.buf).await.map_err(|e| e.to_string())?;
            if read == 0 {
                return Err("the server closed the connection".to_owned());
            }
        }
    }

    /// The status of the answer at the front of the buffer and its whole
    /// length (head and body), once its head is there.
    fn parsed(&self) -> Result<Option<(u16, usize)>, String> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head = match response.parse(&self.buf).map_err(|e| format!("bad answer: {e}"))? {
            httparse::Status::Complete(head) => head,
            httparse::Status::Partial => return Ok(None),
        };
        let status = response.code.unwrap_or(0);
        let mut body = 0;
        for header in response.headers.iter() {
            if header.name.eq_ignore_ascii_case("content-length") {
                body = std::str::from_utf8(header.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .ok_or("bad content-length")?;
            } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                return Err("a chunked answer: the engine reads Content-Length bodies only".to_owned());
            }
        }
        // No body on a 1xx, 204 or 304, whatever the headers say.
        if matches!(status, 100..=199 | 204 | 304) {
            body = 0;
        }
        Ok(Some((status, head + body)))
    }
}

struct Shared {
    sent: AtomicU64,
    done: AtomicU64,
    errors: AtomicU64,
    /// Errors that are the server's (5xx) or the connection's, not the
    /// request's own 4xx.
    server_errors: AtomicU64,
    recording: AtomicBool,
    stop: AtomicBool,
}

/// Runs the plan, prints progress and a summary; `Ok(true)` when no request failed.
pub async fn run(plan: Plan, factory: RequestFactory) -> Result<bool, String> {
    let shared = Arc::new(Shared {
        sent: AtomicU64::new(0),
        done: AtomicU64::new(0),
        errors: AtomicU64::new(0),
        server_errors: AtomicU64::new(0),
        recording: AtomicBool::new(plan.warmup.is_zero()),
        stop: AtomicBool::new(false),
    });
    let per_connection_interval = plan.rate.map(|r| Duration::from_secs_f64(plan.connections as f64 / r));
    let mut tasks = Vec::with_capacity(plan.connections);
    for c in 0..plan.connections {
        let connection = Connection::open(&plan.authority).await?;
        let (shared, factory, authority) = (shared.clone(), factory.clone(), plan.authority.clone());
        // Stagger paced connections so their sends interleave.
        let offset = per_connection_interval.map(|i| i.mul_f64(c as f64 / plan.connections as f64));
        tasks.push(tokio::spawn(connection_loop(
            connection,
            shared,
            factory,
            authority,
            c as u64,
            per_connection_interval,
            offset,
        )));
    }

    let started = Instant::now();
    let progress = {
        let shared = shared.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let done = shared.done.load(Ordering::Relaxed);
                eprintln!(
                    "  [{:>4.0}s] {:>8} req/s  errors {}",
                    started.elapsed().as_secs_f64(),
                    // The count restarts at 0 when the warm-up ends.
                    done.checked_sub(last).unwrap_or(done),
                    shared.errors.load(Ordering::Relaxed)
                );
                last = done;
            }
        })
    };
    tokio::time::sleep(plan.warmup).await;
    shared.done.store(0, Ordering::Relaxed);
    shared.errors.store(0, Ordering::Relaxed);
    shared.recording.store(true, Ordering::Relaxed);
    let measured_from = Instant::now();
    tokio::time::sleep(plan.duration).await;
    shared.stop.store(true, Ordering::Relaxed);
    let elapsed = measured_from.elapsed();
    progress.abort();

    let mut latencies = Vec::new();
    for task in tasks {
        if let Ok(mut l) = task.await {
            latencies.append(&mut l);
        }
    }
    latencies.sort_unstable();
    let errors = shared.errors.load(Ordering::Relaxed);
    let count = latencies.len() as u64;
    let pct = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let i = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        latencies[i] as f64 / 1000.0
    };
    let rps = count as f64 / elapsed.as_secs_f64();
    let server_errors = shared.server_errors.load(Ordering::Relaxed);
    println!(
        "requests {count}  rate {rps:.0} req/s  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms  errors {errors} (5xx or transport {server_errors})  (connections {}, {:.0} s{})",
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
        plan.connections,
        elapsed.as_secs_f64(),
        plan.rate.map(|r| format!(", target {r:.0} req/s")).unwrap_or_default(),
    );
    let _ = shared.sent.load(Ordering::Relaxed);
    Ok(errors == 0 && count > 0)
}

async fn connection_loop(
    mut connection: Connection,
    shared: Arc<Shared>,
    factory: RequestFactory,
    authority: String,
    index: u64,
    interval: Option<Duration>,
    offset: Option<Duration>,
) -> Vec<u32> {
    let mut latencies = Vec::with_capacity(1 << 16);
    let mut request = Vec::with_capacity(1024);
    let mut n = index.wrapping_mul(1_000_003);
    let mut next_send = Instant::now() + offset.unwrap_or_default();
    while !shared.stop.load(Ordering::Relaxed) {
        let scheduled = match interval {
            Some(interval) => {
                let due = next_send;
                next_send += interval;
                if Instant::now() >= due {
                    // Behind schedule because the server was slow: count from
                    // when the request was due (no coordinated omission).
                    due
                } else {
                    // Ahead of schedule: the timer's own lag (tokio timers
                    // tick in milliseconds) is not the server's latency.
                    tokio::time::sleep_until(due.into()).await;
                    Instant::now()
                }
            }
            None => Instant::now(),
        };
        factory.encode(&authority, n, &mut request);
        n += 1;
        shared.sent.fetch_add(1, Ordering::Relaxed);
        let answer = connection.exchange(&request).await;
        let micros = u32::try_from(scheduled.elapsed().as_micros()).unwrap_or(u32::MAX);
        // A 304 answers a conditional read (`--if-none-match`).
        let (ok, server_fault) = match answer {
            Ok(status) => ((200..300).contains(&status) || status == 304, status >= 500),
            Err(_) => (false, true),
        };
        let recorded = shared.recording.load(Ordering::Relaxed) && !shared.stop.load(Ordering::Relaxed);
        if recorded {
            shared.done.fetch_add(1, Ordering::Relaxed);
            if ok {
                latencies.push(micros);
            } else {
                shared.errors.fetch_add(1, Ordering::Relaxed);
                if server_fault {
                    shared.server_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        } else {
            shared.done.fetch_add(1, Ordering::Relaxed);
        }
        if answer.is_err() {
            // The connection is in an unknown state: this one stops, and
            // its failure counts once, also in the warm-up.
            if !recorded {
                shared.errors.fetch_add(1, Ordering::Relaxed);
            }
            break;
        }
    }
    latencies
}
