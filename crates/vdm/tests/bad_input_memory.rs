//! Bad input does not grow memory: the real `vdm all` process (SQLite, its
//! own memory) takes rounds of oversize bodies, a gzip bomb, deeply nested
//! JSON, truncated MessagePack and header floods; its resident memory after
//! many more rounds stays within a bound of what it was after a warm-up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vdm_kit::testing::free_port;

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
    }
}

/// The process's resident memory in KiB (Linux).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS in /proc/<pid>/status")
}

async fn send(
    client: &Client<HttpConnector, Full<Bytes>>,
    url: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Option<u16> {
    let mut request = http::Request::post(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    match client.request(request.body(Full::new(body)).unwrap()).await {
        Ok(response) => {
            let status = response.status().as_u16();
            let _ = response.into_body().collect().await;
            Some(status)
        }
        // The server may answer and close before the upload ends.
        Err(_) => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_does_not_grow_memory() {
    if !std::path::Path::new("/proc/self/status").exists() {
        eprintln!("SKIPPED: needs /proc");
        return;
    }
    let dir = std::env::temp_dir().join(format!("vdm-memory-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let stdout_path = dir.join("stdout.log");
    let port = free_port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_vdm"));
    command
        .arg("all")
        .env_clear()
        .env("VDM_DATA_DIR", dir.display().to_string())
        .env("VDM_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env("VDM_SEED_DEMO", "false")
        .env("VDM_RATE_LIMITS", "off")
        .env("VDM_LOG", "warn")
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .stdout(Stdio::from(std::fs::File::create(&stdout_path).unwrap()))
        .stderr(Stdio::null());
    let vdm = Process(command.spawn().expect("vdm starts"));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&stdout_path)
        .unwrap_or_default()
        .contains("vdm is ready")
    {
        assert!(Instant::now() < deadline, "vdm not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let base = format!("http://127.0.0.1:{port}");
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let signed = client
        .request(
            http::Request::post(format!("{base}/v1/auth/device"))
                .header("content-type", "application/json")
                .body(Full::new(Bytes::from_static(br#"{"device_id":"memory"}"#)))
                .unwrap(),
        )
        .await
        .unwrap();
    let signed: serde_json::Value =
        serde_json::from_slice(&signed.into_body().collect().await.unwrap().to_bytes()).unwrap();
    let bearer = format!("Bearer {}", signed["session_token"].as_str().unwrap());

    // Over the 1 MiB default body limit; a bomb of 64 MiB; nesting within it.
    let oversize = Bytes::from(vec![b' '; 3 << 20]);
    let bomb = {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&vec![b' '; 64 << 20]).unwrap();
        Bytes::from(encoder.finish().unwrap())
    };
    let deep = Bytes::from("[".repeat(900_000));
    let truncated = Bytes::from_static(&[0x85, 0xa4, b't', b'e', b'x', b't', 0xda, 0xff]);
    let flood = {
        let mut head = String::from("GET /health HTTP/1.1\r\nhost: x\r\n");
        for i in 0..400 {
            head.push_str(&format!("x-flood-{i}: {}\r\n", "v".repeat(200)));
        }
        head.push_str("\r\n");
        head.into_bytes()
    };
    let telemetry = format!("{base}/v1/telemetry/client");
    let round = || async {
        let json = [("content-type", "application/json"), ("authorization", bearer.as_str())];
        let statuses = [
            send(&client, &telemetry, &json, oversize.clone()).await,
            send(
                &client,
                &telemetry,
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                    ("authorization", bearer.as_str()),
                ],
                bomb.clone(),
            )
            .await,
            send(&client, &telemetry, &json, deep.clone()).await,
            send(
                &client,
                &format!("{base}/v1/auth/device"),
                &[("content-type", "application/msgpack")],
                truncated.clone(),
            )
            .await,
        ];
        // A refusal before the upload ended may reach the client as a reset.
        for (status, expected) in statuses.iter().zip([413, 415, 400, 400]) {
            assert!(status.is_none_or(|s| s == expected), "{statuses:?}");
        }
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        let _ = stream.write_all(&flood).await;
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        assert!(
            answer.starts_with(b"HTTP/1.1 431"),
            "{}",
            String::from_utf8_lossy(&answer)
        );
    };

    for _ in 0..20 {
        round().await;
    }
    let pid = vdm.0.id();
    let warm = rss_kib(pid);
    for _ in 0..150 {
        round().await;
    }
    let after = rss_kib(pid);
    let grown_mib = after.saturating_sub(warm) / 1024;
    eprintln!("resident memory: {warm} KiB after the warm-up, {after} KiB after 150 more rounds");
    drop(vdm);
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        grown_mib < 32,
        "resident memory grew {grown_mib} MiB over 150 rounds of bad input ({warm} -> {after} KiB)"
    );
}
