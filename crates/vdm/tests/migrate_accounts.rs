//! `vdm migrate accounts` carries the accounts an earlier gateway kept (its
//! `players` and `sessions` tables) into the player service: the real binary
//! imports them, a second run changes nothing, and then the real `vdm all`
//! signs the old device in as its old player id and honours the imported
//! refresh generations (the current one rotates, a spent one is a reuse).
//! On Postgres the import also moves the player id sequence past the
//! imported ids.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection};
use serde_json::{Value, json};
use vdm_gateway::auth::TokenKeys;
use vdm_gateway::auth::operators::Operators;
use vdm_gateway::auth::sessions::Revocations;
use vdm_kit::config::Secret;
use vdm_kit::testing::free_port;

const ADMIN: &str = "migrate-admin-token-0123456789";
const JWT: &str = "migrate-jwt-secret-0123456789abcdef0123456789";

/// The gateway's tables as its last migration left them.
const LEGACY_TABLES: [&str; 2] = [
    "CREATE TABLE players (id BIGINT PRIMARY KEY, device_id VARCHAR(128) NOT NULL UNIQUE, \
     created_at_ms BIGINT NOT NULL, sessions_revoked_at_ms BIGINT NOT NULL DEFAULT 0)",
    "CREATE TABLE sessions (id VARCHAR(64) PRIMARY KEY, player_id BIGINT NOT NULL, generation BIGINT NOT NULL, \
     revoked_at_ms BIGINT NULL, updated_at_ms BIGINT NOT NULL)",
];

/// Two players (the second with every session revoked until 5000) and two
/// session families (the first at refresh generation 3, the second revoked).
const LEGACY_ROWS: [&str; 4] = [
    "INSERT INTO players VALUES (7, 'old-device-a', 1000, 0)",
    "INSERT INTO players VALUES (9, 'old-device-b', 1000, 5000)",
    "INSERT INTO sessions VALUES ('family-a', 7, 3, NULL, 2000)",
    "INSERT INTO sessions VALUES ('family-b', 9, 1, 4000, 4000)",
];

async fn legacy_database(db: &DatabaseConnection) {
    for sql in LEGACY_TABLES.iter().chain(LEGACY_ROWS.iter()) {
        db.execute_unprepared(sql).await.unwrap();
    }
}

fn vdm(args: &[&str], env: &[(&str, String)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vdm"));
    command.args(args).env_clear();
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().expect("vdm runs")
}

fn import(env: &[(&str, String)]) -> String {
    let output = vdm(&["migrate", "accounts"], env);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "vdm migrate accounts failed: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn keys() -> TokenKeys {
    TokenKeys::new(
        &Secret::new(JWT),
        Arc::new(Operators::new(Secret::new(ADMIN), None).unwrap()),
        Arc::new(Revocations::new(Duration::from_secs(600))),
        Duration::from_secs(600),
        Duration::from_secs(3600),
    )
}

async fn post(base: &str, path: &str, body: Value) -> (u16, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let request = http::Request::post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap();
    let response = client.request(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_ready(url: &str) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let request = http::Request::get(url).body(Full::new(Bytes::new())).unwrap();
        if let Ok(response) = client.request(request).await
            && response.status() == 200
        {
            return;
        }
        assert!(Instant::now() < deadline, "{url} not ready within 60 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_gateways_accounts_move_to_the_player_service_on_sqlite() {
    let dir = std::env::temp_dir().join(format!("vdm-migrate-accounts-{}", free_port()));
    std::fs::create_dir_all(&dir).unwrap();
    let legacy = Database::connect(format!("sqlite://{}?mode=rwc", dir.join("gateway.db").display()))
        .await
        .unwrap();
    legacy_database(&legacy).await;
    legacy.close().await.unwrap();
    let env = vec![("VDM_DATA_DIR", dir.display().to_string())];

    let first = import(&env);
    assert!(
        first.contains("players: 2 created, 0 updated, 0 unchanged; session families: 2 created"),
        "{first}"
    );
    let second = import(&env);
    assert!(
        second.contains(
            "players: 0 created, 0 updated, 2 unchanged; session families: 0 created, 0 updated, 2 unchanged"
        ),
        "{second}"
    );

    let http_port = free_port();
    let base = format!("http://127.0.0.1:{http_port}");
    let mut command = Command::new(env!("CARGO_BIN_EXE_vdm"));
    command
        .arg("all")
        .env_clear()
        .env("VDM_DATA_DIR", dir.display().to_string())
        .env("VDM_HTTP_ADDR", format!("127.0.0.1:{http_port}"))
        .env("VDM_ADMIN_TOKEN", ADMIN)
        .env("VDM_JWT_SECRET", JWT)
        .env("VDM_RATE_LIMITS", "off")
        .env("VDM_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let running = Process(command.spawn().expect("vdm starts"));
    wait_ready(&format!("{base}/ready")).await;

    let (status, signed) = post(&base, "/v1/auth/device", json!({"device_id": "old-device-a"})).await;
    assert_eq!((status, signed["player_id"].as_i64()), (200, Some(7)), "{signed}");
    let (status, fresh) = post(&base, "/v1/auth/device", json!({"device_id": "a-new-device"})).await;
    assert_eq!(status, 201, "{fresh}");
    assert!(
        fresh["player_id"].as_i64().unwrap() > 9,
        "a new player gets a new id: {fresh}"
    );

    let keys = keys();
    let current = keys.issue(7, Some(("family-a", 3))).unwrap().refresh_token;
    let (status, body) = post(&base, "/v1/auth/refresh", json!({"refresh_token": current})).await;
    assert_eq!(status, 200, "the imported generation is current: {body}");
    let spent = keys.issue(7, Some(("family-a", 2))).unwrap().refresh_token;
    let (status, body) = post(&base, "/v1/auth/refresh", json!({"refresh_token": spent})).await;
    assert_eq!(status, 401, "{body}");
    assert!(body.to_string().contains("used already"), "{body}");
    let revoked = keys.issue(9, Some(("family-b", 1))).unwrap().refresh_token;
    let (status, body) = post(&base, "/v1/auth/refresh", json!({"refresh_token": revoked})).await;
    assert_eq!(status, 401, "the imported revocation holds: {body}");

    drop(running);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_earlier_gateways_accounts_move_to_the_player_service_on_postgres() {
    let url =
        std::env::var("VDM_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let admin = match Database::connect(&url).await {
        Ok(db) => db,
        Err(err) => {
            assert!(
                std::env::var("VDM_TEST_REQUIRE_EXTERNAL").as_deref() != Ok("1"),
                "VDM_TEST_REQUIRE_EXTERNAL=1 but postgres does not answer: {err}"
            );
            eprintln!("SKIPPED: postgres does not answer: {err}");
            return;
        }
    };
    let suffix = free_port();
    let (legacy_schema, player_schema) = (format!("legacy_gw_{suffix}"), format!("player_mig_{suffix}"));
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {legacy_schema}"))
        .await
        .unwrap();
    let legacy = Database::connect(
        sea_orm::ConnectOptions::new(url.clone())
            .set_schema_search_path(&legacy_schema)
            .to_owned(),
    )
    .await
    .unwrap();
    legacy_database(&legacy).await;
    let env = vec![
        ("DATABASE_URL", url.clone()),
        ("VDM_GATEWAY_DB_SCHEMA", legacy_schema.clone()),
        ("VDM_DB_SCHEMA", player_schema.clone()),
        ("VDM_DATA_DIR", std::env::temp_dir().display().to_string()),
    ];
    let first = import(&env);
    assert!(first.contains("players: 2 created"), "{first}");
    let second = import(&env);
    assert!(
        second.contains("players: 0 created, 0 updated, 2 unchanged"),
        "{second}"
    );
    // A later change at the old gateway (a revocation) is merged by a rerun.
    legacy
        .execute_unprepared("UPDATE players SET sessions_revoked_at_ms = 9000 WHERE id = 7")
        .await
        .unwrap();
    let third = import(&env);
    assert!(third.contains("players: 0 created, 1 updated, 1 unchanged"), "{third}");

    let next = admin
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!("SELECT nextval(pg_get_serial_sequence('{player_schema}.players', 'id')) AS next"),
        ))
        .await
        .unwrap()
        .unwrap();
    let next: i64 = next.try_get("", "next").unwrap();
    assert!(next > 9, "the id sequence moved past the imported ids: {next}");

    for schema in [&legacy_schema, &player_schema] {
        let _ = admin
            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
    }
}
