//! `vdm all` as a newcomer starts it (no configuration, the default log
//! level): the demo seeding writes no line per record before the ready
//! banner, yet a client's write once it serves is logged at INFO; the stats
//! history CSV is written under the data folder with the plan's columns
//! first.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use vdm_kit::testing::free_port;

const ADMIN: &str = "quiet-start-admin-token-0123456789";

/// Stops the process with SIGTERM (and for good if it lingers).
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One HTTP/1.1 request; returns the status and the body.
fn http(port: u16, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let request = format!(
        "{method} {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n{auth}content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let status = answer.split(' ').nth(1).unwrap().parse().unwrap();
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// Waits until `done` holds for the log's text, or fails showing it.
fn wait_for(log: &Path, what: &str, done: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if done(&text) {
            return text;
        }
        assert!(Instant::now() < deadline, "no {what} within 60 s; log:\n{text}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn vdm_all_seeds_quietly_then_logs_client_writes_at_info() {
    let dir = std::env::temp_dir().join(format!("vdm-quiet-start-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("vdm.log");
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_vdm"));
    command
        .arg("all")
        .env("VDM_DATA_DIR", dir.join("data"))
        .env("VDM_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("VDM_ADMIN_TOKEN", ADMIN)
        .env("VDM_LOG_FORMAT", "text")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(std::fs::File::options().append(true).open(&log).unwrap());
    // The newcomer's start: no log filter, the embedded back ends.
    for var in [
        "VDM_LOG",
        "RUST_LOG",
        "DATABASE_URL",
        "REDIS_URL",
        "VDM_METRICS_CSV",
        "OTEL_EXPORTER_OTLP_ENDPOINT",
    ] {
        command.env_remove(var);
    }
    let process = Process(command.spawn().unwrap());

    let text = wait_for(&log, "ready banner", |t| t.contains("vdm is ready at"));
    let before: Vec<&str> = text
        .lines()
        .take_while(|l| !l.contains("vdm is ready at"))
        .filter(|l| !l.trim().is_empty())
        .collect();
    // The demo world is dozens of records; none of them is a line here.
    for seeded in ["region saved", "faction saved", "npc created", "quest created"] {
        assert!(
            !text.contains(seeded),
            "seeding logged {seeded:?} at the default level:\n{text}"
        );
    }
    // Before the banner: the generated-key warning, the ready line and the
    // listening lines of the servers (their tasks log as they start, on
    // either side of the banner); nothing else.
    let unexpected: Vec<&&str> = before
        .iter()
        .filter(|line| {
            !["VDM_JWT_SECRET is not set", " listening ", "vdm is ready"]
                .iter()
                .any(|known| line.contains(known))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "lines before the banner other than start-up's: {unexpected:?}\nlog:\n{text}"
    );
    assert!(before.iter().any(|line| line.contains("vdm is ready")), "{text}");

    // Serving: a client's write is logged at INFO.
    let (status, body) = http(port, "POST", "/v1/auth/device", None, r#"{"device_id":"quiet-start"}"#);
    assert_eq!(status, 201, "{body}");
    let token = body
        .split("\"session_token\":\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    let (status, body) = http(port, "POST", "/v1/quests/1/accept", Some(&token), "");
    assert_eq!(status, 200, "{body}");
    let text = wait_for(&log, "INFO line for the accepted quest", |t| {
        t.contains("quest accepted")
    });
    let line = text.lines().find(|l| l.contains("quest accepted")).unwrap();
    assert!(line.contains("INFO"), "{line}");

    // The stats history is on by default in vdm all, beside its data; its
    // first round runs at start.
    let csv = dir.join("data").join("stats-history.csv");
    let deadline = Instant::now() + Duration::from_secs(30);
    let header = loop {
        let text = std::fs::read_to_string(&csv).unwrap_or_default();
        if let Some(header) = text.lines().next() {
            break header.to_owned();
        }
        assert!(Instant::now() < deadline, "no {} after 30 s", csv.display());
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        header.starts_with("timestamp,memory_mb,cpu_percent,request_count,error_count,throughput_rps,"),
        "{header}"
    );
    drop(process);
    let _ = std::fs::remove_dir_all(&dir);
}
