//! What a completed quest owes reaches its receiver exactly once, whatever
//! restarts: the real `vdm` binary as separate processes (world, npc,
//! player, quest, gateway) on a Postgres database and a Redis key prefix
//! of this test's own. Players complete quests through the gateway while
//! the player, quest and NPC services are SIGKILLed and started again; at
//! the end every player's ledger, profile and inventory hold each
//! completed quest's reward exactly once, none missing, their standing
//! with the givers' faction rose by each quest's amount once, and each
//! quest's giver's disposition toward each player moved by the quest's
//! amount once.
//!
//! Skipped with a note when Postgres or Redis does not answer, unless
//! `VDM_TEST_REQUIRE_EXTERNAL=1` (as in CI).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use sea_orm::{ConnectionTrait, Database};
use serde_json::{Value, json};
use vdm_kit::testing::free_port;

const ADMIN: &str = "reward-faults-admin-token";
const JWT: &str = "reward-faults-jwt-secret-0123456789abcdef";
const PLAYERS: usize = 6;
/// The catalog item every quest gives one of.
const ITEM: i64 = 41;
/// The faction of every quest's giver.
const FACTION: i64 = 3;
/// What completing quest k adds to its giver's disposition: the default
/// (10) for quest 0, which names none; 10 + k for the others.
fn disposition(k: usize) -> i64 {
    10 + k as i64
}
/// What completing quest k adds to the standing with the givers' faction:
/// the default (5) for quest 0, which names none; 5 + k for the others.
fn standing(k: usize) -> i64 {
    5 + k as i64
}

fn require_external() -> bool {
    std::env::var("VDM_TEST_REQUIRE_EXTERNAL").is_ok_and(|v| v == "1")
}

/// The arguments and variables of one process.
type Spec = (Vec<&'static str>, Vec<(String, String)>);

/// The processes of the test, by name, with what starts each again.
struct Procs {
    dir: PathBuf,
    env: Vec<(String, String)>,
    specs: HashMap<&'static str, Spec>,
    running: HashMap<&'static str, Child>,
}

impl Procs {
    fn start(&mut self, name: &'static str) {
        let (args, extra) = self.specs[name].clone();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join(format!("{name}.log")))
            .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_vdm"));
        command
            .args(args)
            .env_clear()
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log));
        for (k, v) in self.env.iter().chain(extra.iter()) {
            command.env(k, v);
        }
        self.running.insert(name, command.spawn().expect("vdm starts"));
    }

    /// SIGKILL: no drain, no flush, whatever was in flight is cut off.
    fn kill(&mut self, name: &'static str) {
        let mut child = self.running.remove(name).unwrap();
        child.kill().unwrap();
        child.wait().unwrap();
    }

    fn log(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.join(format!("{name}.log"))).unwrap_or_default()
    }
}

impl Drop for Procs {
    fn drop(&mut self) {
        for child in self.running.values_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
    base: String,
}

impl Http {
    /// One request; `None` when the connection failed.
    async fn try_send(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Option<(u16, Value)> {
        let mut request = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.header("authorization", format!("Bearer {token}"));
        }
        let bytes = match body {
            Some(body) => {
                request = request.header("content-type", "application/json");
                Bytes::from(serde_json::to_vec(body).unwrap())
            }
            None => Bytes::new(),
        };
        let response = tokio::time::timeout(
            Duration::from_secs(15),
            self.client.request(request.body(Full::new(bytes)).unwrap()),
        )
        .await
        .ok()?
        .ok()?;
        let status = response.status().as_u16();
        let bytes = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)))
    }

    /// A request retried while the answer is a transport error or a 5xx
    /// (a service restarting behind the gateway), for at most 30 s.
    async fn send(&self, method: &str, path: &str, token: Option<&str>, body: Option<&Value>) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.try_send(method, path, token, body).await {
                Some((status, value)) if status < 500 => return (status, value),
                other => assert!(Instant::now() < deadline, "{method} {path}: still {other:?} after 30 s"),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn wait_ready(url: &str) {
    let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Ok(response) = client.get(url.parse().unwrap()).await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} not ready within 60 s");
}

struct Player {
    id: i64,
    token: String,
}

/// Accepts quest `quest` (objective `objective`, target 1) and completes
/// it, retrying through restarts; a retry of a step that committed before
/// its answer was lost is refused with a 409, which is fine.
async fn complete(http: &Http, player: &Player, quest: i64, objective: i64) {
    let (status, body) = http
        .send(
            "POST",
            &format!("/v1/quests/{quest}/accept"),
            Some(&player.token),
            Some(&json!({})),
        )
        .await;
    // 409: accepted by an earlier try whose answer was lost.
    assert!(status == 200 || status == 409, "accept: {status} {body}");
    let (status, body) = http
        .send(
            "POST",
            &format!("/v1/me/quests/{quest}/progress"),
            Some(&player.token),
            Some(&json!({"objective_id": objective})),
        )
        .await;
    // 409: completed by an earlier try whose answer was lost.
    assert!(status == 200 || status == 409, "progress: {status} {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn quest_rewards_survive_killed_services_exactly_once() {
    let admin_url =
        std::env::var("VDM_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let redis_url = std::env::var("VDM_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let Ok(admin) = Database::connect(admin_url.as_str()).await else {
        assert!(
            !require_external(),
            "VDM_TEST_REQUIRE_EXTERNAL=1 but postgres does not answer"
        );
        eprintln!("SKIPPED: postgres at {admin_url} does not answer");
        return;
    };
    let redis_addr = redis_url
        .trim_start_matches("redis://")
        .rsplit('@')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    if tokio::net::TcpStream::connect(&redis_addr).await.is_err() {
        assert!(
            !require_external(),
            "VDM_TEST_REQUIRE_EXTERNAL=1 but redis does not answer"
        );
        eprintln!("SKIPPED: redis at {redis_addr} does not answer");
        return;
    }
    let started = Instant::now();
    let tag = free_port();
    let database = format!("vdm_reward_faults_{tag}");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    let (base_url, _) = admin_url.rsplit_once('/').unwrap();
    let db_url = format!("{base_url}/{database}");

    let dir = std::env::temp_dir().join(format!("vdm-reward-faults-{tag}"));
    std::fs::create_dir_all(&dir).unwrap();
    let port = |_: &str| free_port();
    let (player_grpc, player_admin, quest_grpc, quest_admin, http_port) = (
        port("player"),
        port("player"),
        port("quest"),
        port("quest"),
        port("http"),
    );
    let (world_grpc, world_admin, npc_grpc, npc_admin) = (port("world"), port("world"), port("npc"), port("npc"));
    let addr = |p: u16| format!("127.0.0.1:{p}");
    let url = |p: u16| format!("http://127.0.0.1:{p}");
    let common = [
        ("DATABASE_URL", db_url.clone()),
        ("REDIS_URL", redis_url.clone()),
        ("VDM_CACHE_PREFIX", format!("rf{tag}")),
        ("VDM_DATA_DIR", dir.display().to_string()),
        ("VDM_LOG", "info".to_owned()),
        ("VDM_LOG_FORMAT", "text".to_owned()),
        ("VDM_ADMIN_TOKEN", ADMIN.to_owned()),
        ("VDM_JWT_SECRET", JWT.to_owned()),
        ("VDM_RATE_LIMITS", "off".to_owned()),
        ("VDM_DB_MAX_CONNECTIONS", "4".to_owned()),
        ("VDM_OUTBOX_POLL_MS", "300".to_owned()),
        ("VDM_PEER_TIMEOUT_MS", "1000".to_owned()),
        ("PATH", std::env::var("PATH").unwrap_or_default()),
    ];
    let pairs = |list: &[(&str, String)]| {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect::<Vec<_>>()
    };
    let mut procs = Procs {
        dir: dir.clone(),
        env: pairs(&common),
        specs: HashMap::from([
            (
                "world",
                (
                    vec!["world"],
                    pairs(&[
                        ("VDM_GRPC_ADDR", addr(world_grpc)),
                        ("VDM_ADMIN_ADDR", addr(world_admin)),
                    ]),
                ),
            ),
            (
                "npc",
                (
                    vec!["npc"],
                    pairs(&[
                        ("VDM_GRPC_ADDR", addr(npc_grpc)),
                        ("VDM_ADMIN_ADDR", addr(npc_admin)),
                        ("VDM_WORLD_URL", url(world_grpc)),
                    ]),
                ),
            ),
            (
                "player",
                (
                    vec!["player"],
                    pairs(&[
                        ("VDM_GRPC_ADDR", addr(player_grpc)),
                        ("VDM_ADMIN_ADDR", addr(player_admin)),
                    ]),
                ),
            ),
            (
                "quest",
                (
                    vec!["quest"],
                    pairs(&[
                        ("VDM_GRPC_ADDR", addr(quest_grpc)),
                        ("VDM_ADMIN_ADDR", addr(quest_admin)),
                        ("VDM_PLAYER_URL", url(player_grpc)),
                        ("VDM_NPC_URL", url(npc_grpc)),
                    ]),
                ),
            ),
            (
                "gateway",
                (
                    vec!["gateway"],
                    pairs(&[
                        ("VDM_HTTP_ADDR", addr(http_port)),
                        ("VDM_QUEST_URL", url(quest_grpc)),
                        ("VDM_PLAYER_URL", url(player_grpc)),
                        ("VDM_NPC_URL", url(npc_grpc)),
                        ("VDM_WORLD_URL", url(world_grpc)),
                    ]),
                ),
            ),
        ]),
        running: HashMap::new(),
    };
    // One after the other: each migrates its own schema on start.
    procs.start("world");
    wait_ready(&format!("{}/ready", url(world_admin))).await;
    procs.start("npc");
    wait_ready(&format!("{}/ready", url(npc_admin))).await;
    procs.start("player");
    wait_ready(&format!("{}/ready", url(player_admin))).await;
    procs.start("quest");
    wait_ready(&format!("{}/ready", url(quest_admin))).await;
    procs.start("gateway");
    wait_ready(&format!("{}/ready", url(http_port))).await;

    let http = Http {
        client: Client::builder(TokioExecutor::new()).build_http(),
        base: url(http_port),
    };
    let item =
        json!({"key": "fault_token", "name": "Fault token", "kind": "trinket", "rarity": "rare", "max_stack": 100});
    let (status, body) = http
        .send("PUT", &format!("/v1/items/{ITEM}"), Some(ADMIN), Some(&item))
        .await;
    assert_eq!(status, 200, "{body}");
    let region = json!({"name": "Drill yard", "biome": "plains", "cells": [[0, 0], [1, 0]]});
    let (status, body) = http
        .send("PUT", "/v1/world/regions/1", Some(ADMIN), Some(&region))
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    let (status, body) = http
        .send(
            "PUT",
            &format!("/v1/world/factions/{FACTION}"),
            Some(ADMIN),
            Some(&json!({"name": "Drillmasters"})),
        )
        .await;
    assert!(status == 200 || status == 201, "{status} {body}");
    // Quest k gives 10^k gold, so a total tells which rewards arrived; each
    // has a giver of its own, so each giver's disposition tells whether its
    // quest moved it once.
    let mut quests = Vec::new();
    let mut givers = Vec::new();
    for k in 0..4u32 {
        let npc = json!({"name": format!("Sergeant {k}"), "region_id": 1, "faction_id": FACTION});
        let (status, npc) = http.send("POST", "/v1/npcs", Some(ADMIN), Some(&npc)).await;
        assert_eq!(status, 201, "{npc}");
        let giver = npc["id"].as_i64().unwrap();
        givers.push(giver);
        let mut reward = json!({"gold": 10i64.pow(k), "xp": 1 + i64::from(k), "item_ids": [ITEM]});
        if k > 0 {
            reward["standing"] = json!(standing(k as usize));
            reward["disposition"] = json!(disposition(k as usize));
        }
        let spec = json!({
            "title": format!("Drill {k}"),
            "description": "Survive the drill.",
            "giver_npc_id": giver,
            "region_id": 1,
            "level_requirement": 1,
            "reward": reward,
            "objectives": [{"description": "Hold on", "target_count": 1}]
        });
        let (status, quest) = http.send("POST", "/v1/quests", Some(ADMIN), Some(&spec)).await;
        assert_eq!(status, 201, "{quest}");
        quests.push((
            quest["id"].as_i64().unwrap(),
            quest["objectives"][0]["id"].as_i64().unwrap(),
        ));
    }
    let mut players = Vec::new();
    for i in 0..PLAYERS {
        let (status, body) = http
            .send(
                "POST",
                "/v1/auth/device",
                None,
                Some(&json!({"device_id": format!("faulty-{tag}-{i}")})),
            )
            .await;
        assert!(status == 200 || status == 201, "{status} {body}");
        players.push(Player {
            id: body["player_id"].as_i64().unwrap(),
            token: body["session_token"].as_str().unwrap().to_owned(),
        });
    }
    let run_all = |quest: (i64, i64)| {
        let http = &http;
        futures_util::future::join_all(players.iter().map(move |p| complete(http, p, quest.0, quest.1)))
    };

    // 1. Everything up.
    run_all(quests[0]).await;
    // 2. The player service dies: completions still commit, their rewards
    //    wait in the outbox while the relay retries.
    procs.kill("player");
    run_all(quests[1]).await;
    // 3. The quest service dies with those rewards undelivered; the player
    //    service comes back first, then the quest service, whose relay
    //    finds the rows on start.
    procs.kill("quest");
    procs.start("player");
    wait_ready(&format!("{}/ready", url(player_admin))).await;
    procs.start("quest");
    wait_ready(&format!("{}/ready", url(quest_admin))).await;
    // 4. Completions while all three die mid-way: the quest service right
    //    as its relay is delivering (a reward or a disposition may be
    //    applied and its row not marked: it is sent again), the NPC and
    //    player services a moment later.
    let killer = async {
        tokio::time::sleep(Duration::from_millis(150)).await;
        procs.kill("quest");
        tokio::time::sleep(Duration::from_millis(100)).await;
        procs.kill("npc");
        tokio::time::sleep(Duration::from_millis(50)).await;
        procs.kill("player");
        tokio::time::sleep(Duration::from_millis(300)).await;
        procs.start("player");
        procs.start("quest");
        tokio::time::sleep(Duration::from_millis(500)).await;
        procs.start("npc");
    };
    let ((), _) = tokio::join!(killer, run_all(quests[2]));
    wait_ready(&format!("{}/ready", url(quest_admin))).await;
    wait_ready(&format!("{}/ready", url(player_admin))).await;
    wait_ready(&format!("{}/ready", url(npc_admin))).await;
    run_all(quests[3]).await;

    // Every player completed every quest (a completion cut off above was
    // retried); each reward arrives, once.
    let gold_each: i64 = (0..4).map(|k| 10i64.pow(k)).sum();
    let xp_each: i64 = (0..4).map(|k| 1 + k).sum();
    let deadline = Instant::now() + Duration::from_secs(20);
    for player in &players {
        let (_, log) = http
            .send("GET", "/v1/me/quests?status=completed", Some(&player.token), None)
            .await;
        assert_eq!(log["items"].as_array().unwrap().len(), quests.len(), "{log}");
        loop {
            let (status, me) = http.send("GET", "/v1/me", Some(&player.token), None).await;
            assert_eq!(status, 200, "{me}");
            if me["gold"] == gold_each {
                assert_eq!(me["xp"], xp_each, "{me}");
                break;
            }
            assert!(
                me["gold"].as_i64().unwrap() < gold_each,
                "player {} got more than every reward once: {me}",
                player.id
            );
            assert!(
                Instant::now() < deadline,
                "player {} still misses rewards: {me}",
                player.id
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    // Let a late duplicate delivery, if any could still land, land.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for player in &players {
        let (_, ledger) = http
            .send("GET", "/v1/me/ledger?limit=100", Some(&player.token), None)
            .await;
        let entries = ledger["items"].as_array().unwrap();
        let mut per_grant: HashMap<String, Vec<(String, i64)>> = HashMap::new();
        for entry in entries {
            per_grant
                .entry(entry["grant_id"].as_str().unwrap().to_owned())
                .or_default()
                .push((
                    entry["kind"].as_str().unwrap().to_owned(),
                    entry["amount"].as_i64().unwrap(),
                ));
        }
        assert_eq!(per_grant.len(), quests.len(), "one grant per completed quest: {ledger}");
        for (k, (quest_id, _)) in quests.iter().enumerate() {
            let mut rows = per_grant
                .remove(&format!("quest-{quest_id}-player-{}", player.id))
                .unwrap_or_else(|| panic!("player {} misses quest {quest_id}'s reward: {ledger}", player.id));
            rows.sort();
            let amount = standing(k);
            let k = k as u32;
            assert_eq!(
                rows,
                [
                    ("gold".to_owned(), 10i64.pow(k)),
                    ("item".to_owned(), 1),
                    ("standing".to_owned(), amount),
                    ("xp".to_owned(), 1 + i64::from(k))
                ],
                "quest {quest_id}'s reward once for player {}",
                player.id
            );
        }
        let (_, me) = http.send("GET", "/v1/me", Some(&player.token), None).await;
        assert_eq!(
            (me["gold"].as_i64(), me["xp"].as_i64()),
            (Some(gold_each), Some(xp_each)),
            "{me}"
        );
        let (_, inventory) = http.send("GET", "/v1/me/inventory", Some(&player.token), None).await;
        assert_eq!(inventory["stacks"][0]["count"], quests.len(), "{inventory}");
        let (_, factions) = http.send("GET", "/v1/me/factions", Some(&player.token), None).await;
        assert_eq!(
            factions["items"],
            json!([{"faction_id": FACTION, "name": "Drillmasters", "standing": (0..quests.len()).map(standing).sum::<i64>()}]),
            "standing rose once per quest for player {}",
            player.id
        );
    }
    // Each quest moved its giver's disposition toward each player by the
    // quest's amount, once (read through the gateway, as the client does).
    let deadline = Instant::now() + Duration::from_secs(20);
    for player in &players {
        for (k, giver) in givers.iter().enumerate() {
            let amount = disposition(k);
            let path = format!("/v1/me/npcs/{giver}/disposition");
            loop {
                let (status, disposition) = http.send("GET", &path, Some(&player.token), None).await;
                assert_eq!(status, 200, "{disposition}");
                let score = disposition["score"].as_i64().unwrap();
                assert!(
                    score <= amount,
                    "npc {giver} moved more than once for player {}: {disposition}",
                    player.id
                );
                if score == amount {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "npc {giver}'s disposition toward player {} never moved: {disposition}",
                    player.id
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    // Let a late duplicate, if any could still land, land; then read again.
    tokio::time::sleep(Duration::from_millis(800)).await;
    for player in &players {
        for (k, giver) in givers.iter().enumerate() {
            let path = format!("/v1/me/npcs/{giver}/disposition");
            let (_, answer) = http.send("GET", &path, Some(&player.token), None).await;
            assert_eq!(answer["score"], disposition(k), "player {}: {answer}", player.id);
        }
    }
    // The relay did meet the player service down, and retried.
    let quest_log = procs.log("quest");
    assert!(
        quest_log.contains("will retry"),
        "no delivery was retried:\n{quest_log}"
    );
    eprintln!(
        "deliveries retried: {}, grants replayed by the player service: {}, dispositions replayed by the npc service: {}",
        quest_log.matches("will retry").count(),
        procs.log("player").matches("grant replayed").count(),
        procs.log("npc").matches("disposition adjustment replayed").count()
    );
    // The outbox is drained.
    let metrics_text = {
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let response = client
            .get(format!("{}/metrics", url(quest_admin)).parse().unwrap())
            .await
            .unwrap();
        String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap()
    };
    assert!(
        metrics_text.lines().any(|l| l == "vdm_outbox_pending 0"),
        "no reward left pending: {}",
        metrics_text
            .lines()
            .filter(|l| l.starts_with("vdm_outbox"))
            .collect::<Vec<_>>()
            .join("\n")
    );

    drop(procs);
    let _ = admin
        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .await;
    let _ = std::fs::remove_dir_all(&dir);
    eprintln!("reward faults drill took {:?}", started.elapsed());
}
