//! One request as one trace: the real `vdm gateway` and `vdm quest`
//! processes export over OTLP/gRPC to a receiver running inside this test;
//! a client request with a W3C `traceparent` must come back as spans of that
//! trace, gateway → quest → database, with the right parents and service
//! names, and the trace id in the response header.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use serde_json::{Value, json};
use vdm_kit::testing::free_port;

const ADMIN: &str = "trace-admin-token-0123456789";

#[derive(Default, Clone)]
struct Receiver {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// A received span, flattened.
#[derive(Debug, Clone)]
struct Span {
    service: String,
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    attributes: HashMap<String, String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn flatten(requests: &[ExportTraceServiceRequest]) -> Vec<Span> {
    let mut spans = Vec::new();
    for request in requests {
        for resource_spans in &request.resource_spans {
            let service = resource_spans
                .resource
                .as_ref()
                .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
                .and_then(|kv| kv.value.as_ref())
                .and_then(|v| match &v.value {
                    Some(AnyValue::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for scope in &resource_spans.scope_spans {
                for span in &scope.spans {
                    let attributes = span
                        .attributes
                        .iter()
                        .map(|kv| {
                            let value = match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                                Some(AnyValue::StringValue(s)) => s.clone(),
                                Some(AnyValue::IntValue(i)) => i.to_string(),
                                Some(AnyValue::BoolValue(b)) => b.to_string(),
                                Some(AnyValue::DoubleValue(d)) => d.to_string(),
                                _ => String::new(),
                            };
                            (kv.key.clone(), value)
                        })
                        .collect();
                    spans.push(Span {
                        service: service.clone(),
                        name: span.name.clone(),
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        attributes,
                    });
                }
            }
        }
    }
    spans
}

struct Process(Child);

impl Process {
    fn spawn(args: &[&str], env: &[(&str, String)]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_vdm"));
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .env_clear();
        for (k, v) in env {
            command.env(k, v);
        }
        Process(command.spawn().expect("vdm starts"))
    }

    /// SIGTERM, then wait: the exporter flushes on the way out.
    fn stop(mut self) {
        let _ = Command::new("kill").arg("-TERM").arg(self.0.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.0.try_wait() {
                assert!(status.success(), "vdm exited with {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("vdm did not stop within 10 s of SIGTERM");
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

async fn http(method: &str, url: &str, headers: &[(&str, &str)], body: Option<Value>) -> (u16, http::HeaderMap, Value) {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut request = http::Request::builder().method(method).uri(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let body = body
        .map(|b| Bytes::from(serde_json::to_vec(&b).unwrap()))
        .unwrap_or_default();
    if !body.is_empty() {
        request = request.header("content-type", "application/json");
    }
    let response = client
        .request(request.body(Full::new(body)).unwrap())
        .await
        .expect("request");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn wait_ready(url: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        if let Ok(response) = client.get(url.parse().unwrap()).await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{url} not ready within 20 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_is_one_trace_across_gateway_quest_and_database() {
    let receiver = Receiver::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp: SocketAddr = listener.local_addr().unwrap();
    let server = tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(receiver.clone()))
            .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener)),
    );

    let dir = std::env::temp_dir().join(format!("vdm-trace-{}", free_port()));
    let (grpc, admin_port, http_port) = (free_port(), free_port(), free_port());
    let common = |service: &str| {
        vec![
            ("VDM_DATA_DIR", dir.display().to_string()),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{otlp}")),
            ("OTEL_SERVICE_NAME", service.to_owned()),
            ("VDM_LOG", "info".to_owned()),
            ("PATH", std::env::var("PATH").unwrap_or_default()),
        ]
    };
    let mut quest_env = common("quest");
    quest_env.push(("VDM_GRPC_ADDR", format!("127.0.0.1:{grpc}")));
    quest_env.push(("VDM_ADMIN_ADDR", format!("127.0.0.1:{admin_port}")));
    let quest = Process::spawn(&["quest"], &quest_env);
    // The gateway is ready only when every service it fronts answers.
    let (world_grpc, world_admin, npc_grpc, npc_admin) = (free_port(), free_port(), free_port(), free_port());
    let mut world_env = common("world");
    world_env.push(("VDM_GRPC_ADDR", format!("127.0.0.1:{world_grpc}")));
    world_env.push(("VDM_ADMIN_ADDR", format!("127.0.0.1:{world_admin}")));
    let world = Process::spawn(&["world"], &world_env);
    let mut npc_env = common("npc");
    npc_env.push(("VDM_GRPC_ADDR", format!("127.0.0.1:{npc_grpc}")));
    npc_env.push(("VDM_ADMIN_ADDR", format!("127.0.0.1:{npc_admin}")));
    npc_env.push(("VDM_WORLD_URL", format!("http://127.0.0.1:{world_grpc}")));
    let npc = Process::spawn(&["npc"], &npc_env);
    // Sign-in is the player service's.
    let (player_grpc, player_admin) = (free_port(), free_port());
    let mut player_env = common("player");
    player_env.push(("VDM_GRPC_ADDR", format!("127.0.0.1:{player_grpc}")));
    player_env.push(("VDM_ADMIN_ADDR", format!("127.0.0.1:{player_admin}")));
    let player = Process::spawn(&["player"], &player_env);
    let mut gateway_env = common("gateway");
    gateway_env.push(("VDM_PLAYER_URL", format!("http://127.0.0.1:{player_grpc}")));
    gateway_env.push(("VDM_WORLD_URL", format!("http://127.0.0.1:{world_grpc}")));
    gateway_env.push(("VDM_NPC_URL", format!("http://127.0.0.1:{npc_grpc}")));
    gateway_env.push(("VDM_HTTP_ADDR", format!("127.0.0.1:{http_port}")));
    gateway_env.push(("VDM_QUEST_URL", format!("http://127.0.0.1:{grpc}")));
    gateway_env.push(("VDM_ADMIN_TOKEN", ADMIN.to_owned()));
    gateway_env.push((
        "VDM_JWT_SECRET",
        "trace-jwt-secret-0123456789abcdef0123456789".to_owned(),
    ));
    let gateway = Process::spawn(&["gateway"], &gateway_env);
    let base = format!("http://127.0.0.1:{http_port}");
    for admin in [admin_port, world_admin, npc_admin, player_admin] {
        wait_ready(&format!("http://127.0.0.1:{admin}/ready")).await;
    }
    wait_ready(&format!("{base}/ready")).await;

    let quest_body = json!({"title": "Traced", "giver_npc_id": 1, "region_id": 1, "objectives": [{"description": "Be seen", "target_count": 1}]});
    // A 503 is the API's "retry shortly" (it carries Retry-After), as a
    // client would: five processes just started on one busy machine.
    let deadline = Instant::now() + Duration::from_secs(10);
    let created = loop {
        let (status, _, created) = http(
            "POST",
            &format!("{base}/v1/quests"),
            &[("authorization", &format!("Bearer {ADMIN}"))],
            Some(quest_body.clone()),
        )
        .await;
        if status == 503 && Instant::now() < deadline {
            eprintln!("create answered 503, retrying: {created}");
            tokio::time::sleep(Duration::from_millis(200)).await;
            continue;
        }
        assert_eq!(status, 201, "{created}");
        break created;
    };
    let id = created["id"].as_i64().unwrap();
    let (_, _, signed) = http(
        "POST",
        &format!("{base}/v1/auth/device"),
        &[],
        Some(json!({"device_id": "tracer"})),
    )
    .await;
    let token = format!("Bearer {}", signed["session_token"].as_str().unwrap());

    // The client's own trace context: the gateway must continue it.
    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    let traceparent = format!("00-{client_trace}-{client_span}-01");
    let (status, headers, _) = http(
        "GET",
        &format!("{base}/v1/quests/{id}"),
        &[("authorization", &token), ("traceparent", &traceparent)],
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers.get("x-trace-id").and_then(|v| v.to_str().ok()),
        Some(client_trace),
        "trace id comes back to the client"
    );

    // An error body names the trace too.
    let (status, _, error) = http(
        "GET",
        &format!("{base}/v1/quests/987654"),
        &[("authorization", &token), ("traceparent", &traceparent)],
        None,
    )
    .await;
    assert_eq!(status, 404);
    assert_eq!(error["error"]["trace_id"], client_trace);

    // A write publishes its event inside the same trace.
    let write_trace = "0af7651916cd43dd8448eb211c80319c";
    let write_parent = format!("00-{write_trace}-b7ad6b7169203331-01");
    let (status, _, _) = http(
        "POST",
        &format!("{base}/v1/quests/{id}/accept"),
        &[("authorization", &token), ("traceparent", &write_parent)],
        None,
    )
    .await;
    assert_eq!(status, 200);

    gateway.stop();
    quest.stop();
    npc.stop();
    world.stop();
    player.stop();
    let spans = flatten(&receiver.requests.lock().unwrap());
    server.abort();
    let _ = std::fs::remove_dir_all(&dir);

    let trace: Vec<&Span> = spans.iter().filter(|s| s.trace_id == client_trace).collect();
    let names: Vec<(&str, &str)> = trace.iter().map(|s| (s.service.as_str(), s.name.as_str())).collect();
    let http_span = trace
        .iter()
        .find(|s| {
            s.service == "gateway"
                && s.name == "GET /v1/quests/{id}"
                && s.attributes.get("http.response.status_code").map(String::as_str) == Some("200")
        })
        .unwrap_or_else(|| panic!("gateway span missing; spans of the trace: {names:?}"));
    assert_eq!(
        http_span.parent_span_id, client_span,
        "the gateway span continues the client's span"
    );
    assert_eq!(
        http_span.attributes.get("http.route").map(String::as_str),
        Some("/v1/quests/{id}")
    );

    // The first read misses the gateway's edge cache: its fill makes the call.
    let fill_span = trace
        .iter()
        .find(|s| s.service == "gateway" && s.name == "edge_cache_fill" && s.parent_span_id == http_span.span_id)
        .unwrap_or_else(|| panic!("the edge cache's fill span is missing; spans: {names:?}"));
    assert_eq!(
        fill_span.attributes.get("cache.resource").map(String::as_str),
        Some("quest")
    );
    let client_span = trace
        .iter()
        .find(|s| {
            s.service == "gateway"
                && s.name == "quest.v1.QuestService/GetQuest"
                && s.parent_span_id == fill_span.span_id
        })
        .unwrap_or_else(|| panic!("the gateway's client span of the call is missing; spans: {names:?}"));
    let rpc_span = trace
        .iter()
        .find(|s| {
            s.service == "quest"
                && s.name == "quest.v1.QuestService/GetQuest"
                && s.parent_span_id == client_span.span_id
        })
        .unwrap_or_else(|| panic!("quest rpc span under the gateway span missing; spans: {names:?}"));
    assert_eq!(rpc_span.attributes.get("rpc.system").map(String::as_str), Some("grpc"));

    // Below the RPC: the service's own span, the cache call and the database read.
    let descendants = |root: &str| {
        let mut ids = vec![root.to_owned()];
        let mut found = Vec::new();
        while let Some(id) = ids.pop() {
            for span in trace.iter().filter(|s| s.parent_span_id == id) {
                ids.push(span.span_id.clone());
                found.push(*span);
            }
        }
        found
    };
    let below = descendants(&rpc_span.span_id);
    assert!(below.iter().all(|s| s.service == "quest"), "{names:?}");
    let db = below
        .iter()
        .find(|s| s.attributes.get("db.system").map(String::as_str) == Some("sqlite"))
        .unwrap_or_else(|| panic!("no database span under the rpc; spans: {names:?}"));
    let statement = db.attributes.get("db.statement").cloned().unwrap_or_default();
    assert!(
        statement.contains("quests"),
        "the statement names the table: {statement}"
    );
    assert!(
        !statement.contains("Traced"),
        "no parameter values in spans: {statement}"
    );
    assert!(
        below
            .iter()
            .any(|s| s.name == "GET" && s.attributes.get("cache").map(String::as_str) == Some("quest")),
        "cache span: {names:?}"
    );

    // The 404 is one trace too, with the error recorded on the gateway span.
    assert!(
        trace.iter().any(|s| s.service == "gateway"
            && s.attributes.get("http.response.status_code").map(String::as_str) == Some("404"))
    );

    let publish = spans
        .iter()
        .find(|s| s.trace_id == write_trace && s.name == "PUBLISH events");
    let publish = publish.unwrap_or_else(|| {
        panic!(
            "no publish span in the write's trace: {:?}",
            spans
                .iter()
                .filter(|s| s.trace_id == write_trace)
                .map(|s| &s.name)
                .collect::<Vec<_>>()
        )
    });
    assert_eq!(publish.service, "quest");
    assert_eq!(
        publish.attributes.get("event").map(String::as_str),
        Some("quest.updated")
    );
}
