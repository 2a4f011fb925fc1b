//! `GET /docs`, the API reference: the page and Redoc's bundle come from
//! the gateway itself (nothing from elsewhere), and headless Chromium draws
//! the reference from the live OpenAPI document: the DOM it leaves names
//! the document's operations.
//!
//! Chromium as in `dashboard.rs`: skipped without it, unless
//! `VDM_TEST_REQUIRE_EXTERNAL=1`.

use std::time::Duration;

use crate::helpers::{Backend, chromium, spawn_app_with};
use vdm_kit::backend_tests;

backend_tests!(the_api_reference_is_drawn_from_the_live_document);

async fn the_api_reference_is_drawn_from_the_live_document(backend: Backend) {
    let Some(app) = spawn_app_with(backend, Default::default()).await else {
        return;
    };
    let page = app.send(http::Method::GET, "/docs", &[], bytes::Bytes::new()).await;
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").unwrap().to_owned();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
        "{csp}"
    );
    let html = String::from_utf8(page.body.to_vec()).unwrap();
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "nothing from elsewhere: {html}"
    );
    assert!(html.contains("src=\"docs/redoc-2.5.4.js\"") && html.contains("spec-url=\"v1/openapi.json\""));

    let script = app
        .send(
            http::Method::GET,
            vdm_gateway::routes::docs::REDOC_PATH,
            &[],
            bytes::Bytes::new(),
        )
        .await;
    assert_eq!(script.status, 200);
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert!(script.header("cache-control").unwrap().contains("immutable"));
    assert!(
        script.body.len() > 500_000,
        "the whole bundle: {} bytes",
        script.body.len()
    );

    let Some(browser) = chromium() else {
        if std::env::var("VDM_TEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1") {
            panic!("VDM_TEST_REQUIRE_EXTERNAL=1 but chromium is not installed (apt-get install chromium)");
        }
        eprintln!("SKIPPED the browser part: chromium is not installed");
        app.finish().await;
        return;
    };
    let profile = std::env::temp_dir().join(format!("vdm-chromium-docs-{}", app.addr.port()));
    let run = tokio::process::Command::new(&browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,1600",
            // Lets the bundle load, fetch the document and render.
            "--virtual-time-budget=15000",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg("--dump-dom")
        .arg(app.url("/docs"))
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("chromium finishes within 120 s")
        .expect("chromium runs");
    let _ = std::fs::remove_dir_all(&profile);
    let dom = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    // Operations of the document, as Redoc lists them (by summary), and
    // its own mark.
    for expected in ["signInDevice", "acceptQuest", "Redocly"] {
        assert!(
            dom.contains(expected),
            "{expected} is not in the drawn reference ({} bytes of DOM)",
            dom.len()
        );
    }
    app.finish().await;
}
