//! `GET /dashboard` in a real browser: headless Chromium loads the page
//! from a running vdm, the page reads the stats routes with the admin token
//! and draws; the DOM it leaves behind says how many points each chart drew
//! and how many pixels it painted, checked against the API's own answers.
//!
//! Chromium is `$VDM_CHROMIUM`, else `chromium` (Debian's package; `.ci/run`
//! installs it). Without it the test is skipped with a message, unless
//! `VDM_TEST_REQUIRE_EXTERNAL=1` (as in CI), where that is a failure.

use std::time::Duration;

use serde_json::json;

use crate::helpers::{ADMIN_TOKEN, Backend, Options, chromium, spawn_app_with};
use vdm_kit::backend_tests;

backend_tests!(the_dashboard_draws_the_stats_in_a_browser);

/// The attribute `name` of the element whose id is `id`, in a dumped DOM.
fn attribute(dom: &str, id: &str, name: &str) -> String {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in the DOM"));
    let tag_start = dom[..start].rfind('<').unwrap();
    let tag = &dom[tag_start..tag_start + dom[tag_start..].find('>').unwrap()];
    let key = format!("{name}=\"");
    let at = tag.find(&key).unwrap_or_else(|| panic!("{name} on #{id}: {tag}")) + key.len();
    tag[at..at + tag[at..].find('"').unwrap()].to_owned()
}

fn number(dom: &str, id: &str, name: &str) -> f64 {
    attribute(dom, id, name)
        .parse()
        .unwrap_or_else(|_| panic!("{name} on #{id} is a number"))
}

async fn the_dashboard_draws_the_stats_in_a_browser(backend: Backend) {
    let Some(browser) = chromium() else {
        if std::env::var("VDM_TEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
            panic!("VDM_TEST_REQUIRE_EXTERNAL=1 but chromium is not installed (apt-get install chromium)");
        }
        eprintln!("SKIPPED dashboard browser test: chromium is not installed");
        return;
    };
    let Some(app) = spawn_app_with(
        backend,
        Options {
            // Rounds of a second: the page reads the budgets while chromium
            // starts and takes both cores, and a round's scrapes must end
            // within the round; at 200 ms the gateway's scrape of that round
            // once missed it, and the floor's row said "no data".
            stats_interval: Some(Duration::from_secs(1)),
            ..Options::default()
        },
    )
    .await
    else {
        return;
    };

    // The page itself: HTML, nothing loaded from elsewhere.
    let page = app
        .send(http::Method::GET, "/dashboard", &[], bytes::Bytes::new())
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'none'")
    );
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(
        !html.contains("src=") && !html.contains("href="),
        "no external resources"
    );

    // Data: client samples and requests through the gateway.
    let (_, token) = app.sign_in("dashboard-player").await;
    let samples: Vec<_> = (1..=20)
        .map(|i| json!({"frame_time_ms": f64::from(i), "gc_alloc_bytes": i * 1000}))
        .collect();
    let batch = json!({"client_version": "1.0.0", "device_class": "desktop", "samples": samples});
    assert_eq!(
        app.post_json("/v1/telemetry/client", Some(&token), &batch).await.status,
        202
    );
    for _ in 0..5 {
        app.get("/v1/quests", &token).await;
    }
    // Two rounds at least after the traffic, so each service has a line.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let history = app.get("/v1/stats/history?service=gateway", ADMIN_TOKEN).await.json();
        let with_rate = history["samples"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["throughput_rps"].is_number())
            .count();
        if with_rate >= 2 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no history: {history}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let profile = std::env::temp_dir().join(format!("vdm-chromium-{}", app.addr.port()));
    let url = app.url(&format!("/dashboard#token={ADMIN_TOKEN}"));
    let run = tokio::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,1600",
            // Lets the page's fetches and first drawing finish before the dump.
            "--virtual-time-budget=8000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(&url)
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(90), run)
        .await
        .expect("chromium finishes within 90 s")
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success() && dom.contains("<body"),
        "chromium failed: {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let status = dom
        .split("id=\"status\"")
        .nth(1)
        .and_then(|s| s.split('<').next())
        .unwrap_or("");
    let body_state = dom
        .split("<body")
        .nth(1)
        .and_then(|s| s.split("data-state=\"").nth(1))
        .and_then(|s| s.split('"').next())
        .unwrap_or("");
    assert_eq!(body_state, "drawn", "status: {status}");

    // What the API has now bounds what the page could have drawn.
    let history = app.get("/v1/stats/history", ADMIN_TOKEN).await.json();
    let history = history["samples"].as_array().unwrap();
    let count = |field: &str| history.iter().filter(|s| s[field].is_number()).count() as f64;
    let services = |field: &str| {
        let mut names: Vec<&str> = history
            .iter()
            .filter(|s| s[field].is_number())
            .map(|s| s["service"].as_str().unwrap())
            .collect();
        names.sort_unstable();
        names.dedup();
        names.len() as f64
    };
    for (chart, field) in [
        ("chart-throughput", "throughput_rps"),
        ("chart-p99", "p99_ms"),
        ("chart-memory", "memory_mb"),
    ] {
        let points = number(&dom, chart, "data-points");
        assert!(
            points >= 2.0 && points <= count(field),
            "{chart}: {points} of {}",
            count(field)
        );
        assert!(number(&dom, chart, "data-ink") > 500.0, "{chart} painted");
        assert!(number(&dom, chart, "data-series") >= 1.0);
        assert!(number(&dom, chart, "data-series") <= services(field));
    }
    // Memory is measured for every service of the process.
    // (gateway, world, NPC, quest, rumor, player and metrics).
    assert_eq!(number(&dom, "chart-memory", "data-series"), 7.0);
    // The frame time bars are the stored samples' percentiles.
    let client = app.get("/v1/stats/client", ADMIN_TOKEN).await.json();
    assert_eq!(number(&dom, "chart-frame", "data-points"), 3.0);
    assert_eq!(number(&dom, "chart-frame", "data-p95"), client["p95"].as_f64().unwrap());
    assert!(number(&dom, "chart-frame", "data-ink") > 500.0);
    // So are the allocation bars.
    let alloc = app
        .get("/v1/stats/client?metric=gc_alloc_bytes", ADMIN_TOKEN)
        .await
        .json();
    assert_eq!(alloc["p95"], 19_000.0);
    assert_eq!(number(&dom, "chart-alloc", "data-points"), 3.0);
    assert_eq!(number(&dom, "chart-alloc", "data-p95"), 19_000.0);
    assert!(number(&dom, "chart-alloc", "data-ink") > 500.0);
    // One row per budget.
    let budgets = app.get("/v1/budgets", ADMIN_TOKEN).await.json();
    let budgets = budgets["budgets"].as_array().unwrap();
    assert_eq!(number(&dom, "budgets", "data-rows"), budgets.len() as f64);
    for budget in budgets {
        let name = budget["name"].as_str().unwrap();
        assert!(dom.contains(&format!("data-budget=\"{name}\"")), "{name} row");
    }
    // The floor's row shows its min and why it stands where it does.
    let floor = budgets
        .iter()
        .find(|b| b["name"] == "gateway_throughput_floor")
        .expect("the repository's budgets have a throughput floor");
    assert_eq!(floor["min"], 1.0);
    let row = dom
        .split("data-budget=\"gateway_throughput_floor\"")
        .nth(1)
        .and_then(|s| s.split("</tr>").next())
        .unwrap();
    assert!(row.contains("<td>1.00</td>"), "the min: {row}");
    assert!(row.contains(" req/s"), "the reason: {row}");
    app.finish().await;
}
