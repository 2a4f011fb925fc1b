//! The OpenAPI document at `/v1/openapi.json`: well formed (OpenAPI 3.1,
//! every `$ref` resolves, unique operation ids), listing exactly the routes
//! the gateway's router serves, with the security the handlers enforce, and
//! real answers (JSON and MessagePack) that match its schemas.
//!
//! The schemas are checked by [`check`], a small JSON Schema checker of the
//! keywords the document uses; a keyword it does not know fails the test
//! rather than being skipped.

use std::collections::{BTreeMap, BTreeSet};

use http::Method;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::{self, client::IntoClientRequest};
use vdm_gateway::rate_limit::{Rate, RateLimits};

use crate::helpers::{ADMIN_TOKEN, Backend, Options, TestApp, TestResponse, spawn_app_with, wolves};
use vdm_kit::backend_tests;

backend_tests!(
    the_document_is_openapi_3_1_and_self_consistent,
    the_documented_routes_are_the_routes_the_router_serves,
    documented_security_is_what_the_handlers_enforce,
    real_answers_match_the_documented_schemas,
    pushes_match_their_documented_schemas_and_the_contract_is_the_document,
);

/// `vdm openapi` writes, byte for byte, the document the gateway serves: a
/// client generator can read it without starting a server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_command_writes_the_served_document() {
    let Some(app) = spawn_app_with(Backend::Embedded, Options::default()).await else {
        return;
    };
    let served = app.send(Method::GET, "/v1/openapi.json", &[], Vec::new()).await;
    assert_eq!(served.status, 200);
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_vdm"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(
        output.stdout == served.body.as_ref(),
        "vdm openapi differs from GET /v1/openapi.json"
    );
    app.finish().await;
}

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// Probed against the router: the methods a REST route may be served on.
const PROBED: [Method; 5] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE];

/// No rate limit worth the name: the probes send hundreds of requests.
fn unlimited() -> Options {
    let rate = Rate {
        per_second: 1e6,
        burst: 1e6,
    };
    Options {
        rate_limits: Some(RateLimits {
            auth: rate,
            write: rate,
            read: rate,
            in_flight: 16,
            trusted_proxies: Vec::new(),
        }),
        ..Options::default()
    }
}

async fn fetch_document(app: &TestApp) -> Value {
    let response = app.send(Method::GET, "/v1/openapi.json", &[], Vec::new()).await;
    assert_eq!(response.status, 200, "{}", String::from_utf8_lossy(&response.body));
    assert_eq!(response.header("content-type"), Some("application/json"));
    response.json()
}

/// Every (METHOD, path template) of the document, with its operation.
fn operations(doc: &Value) -> BTreeMap<(String, String), &Value> {
    let mut found = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(operation) = item.get(method) {
                found.insert((method.to_uppercase(), path.clone()), operation);
            }
        }
    }
    found
}

/// A concrete path for a template: every `{param}` becomes `value`.
fn fill(template: &str, value: &str) -> String {
    let mut path = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let close = rest[open..].find('}').expect("closed parameter") + open;
        path.push_str(&rest[..open]);
        path.push_str(value);
        rest = &rest[close + 1..];
    }
    path.push_str(rest);
    path
}

/// Every `"$ref"` value in `value`.
fn refs<'v>(value: &'v Value, found: &mut Vec<&'v str>) {
    match value {
        Value::Object(fields) => {
            for (name, field) in fields {
                match (name.as_str(), field) {
                    ("$ref", Value::String(target)) => found.push(target),
                    _ => refs(field, found),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| refs(item, found)),
        _ => {}
    }
}

fn resolve<'d>(doc: &'d Value, reference: &str) -> Option<&'d Value> {
    reference.strip_prefix('#').and_then(|pointer| doc.pointer(pointer))
}

fn is_error_body(doc: &Value, schema: &Value) -> bool {
    schema.get("$ref").and_then(Value::as_str).and_then(|r| resolve(doc, r))
        == doc.pointer("/components/schemas/ErrorBody")
}

async fn the_document_is_openapi_3_1_and_self_consistent(backend: Backend) {
    let Some(app) = spawn_app_with(backend, Options::default()).await else {
        return;
    };
    // Public: no token.
    let doc = fetch_document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["info"]["title"].is_string() && doc["info"]["version"].is_string(),
        "{}",
        doc["info"]
    );

    let mut all_refs = Vec::new();
    refs(&doc, &mut all_refs);
    assert!(all_refs.len() > 50, "only {} $refs", all_refs.len());
    for reference in &all_refs {
        assert!(resolve(&doc, reference).is_some(), "$ref {reference} does not resolve");
    }

    let schemes = doc["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let mut ids = BTreeSet::new();
    let ops = operations(&doc);
    assert!(ops.len() >= 40, "only {} operations", ops.len());
    for ((method, path), op) in &ops {
        let id = op["operationId"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {path}: no operationId"));
        assert!(
            !id.is_empty() && ids.insert(id.to_owned()),
            "{method} {path}: operationId {id:?} is empty or taken"
        );
        assert!(
            op["tags"].as_array().is_some_and(|t| t.len() == 1),
            "{method} {path}: one tag expected"
        );
        let responses = op["responses"]
            .as_object()
            .unwrap_or_else(|| panic!("{method} {path}: no responses"));
        assert!(
            responses.keys().any(|s| s.starts_with('2') || s == "101"),
            "{method} {path}: no success response"
        );
        for requirement in op["security"].as_array().into_iter().flatten() {
            for name in requirement.as_object().expect("security requirement").keys() {
                assert!(
                    schemes.contains_key(name),
                    "{method} {path}: unknown security scheme {name}"
                );
            }
        }

        // Path parameters: exactly the template's, each required.
        let declared: BTreeSet<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                assert_eq!(p["required"], true, "{method} {path}: path parameter not required");
                p["name"].as_str().expect("parameter name")
            })
            .collect();
        let in_template: BTreeSet<&str> = path
            .split('{')
            .skip(1)
            .map(|s| s.split('}').next().expect("closed parameter"))
            .collect();
        assert_eq!(declared, in_template, "{method} {path}: path parameters");

        let negotiated = op["tags"][0] != "ops";
        if let Some(body) = op.get("requestBody") {
            let content = body["content"].as_object().expect("request body content");
            assert!(content.contains_key("application/json"), "{method} {path}: JSON body");
            assert_eq!(
                content.get("application/json"),
                content.get("application/msgpack"),
                "{method} {path}: the MessagePack body is the JSON one"
            );
        }
        for (status, response) in responses {
            assert!(
                response["description"].is_string(),
                "{method} {path} {status}: description"
            );
            let json = response.pointer("/content/application~1json/schema");
            let error = json.is_some_and(|schema| is_error_body(&doc, schema));
            let code: u16 = status.parse().expect("numeric status");
            if code >= 400 && !(path == "/ready" && code == 503) {
                assert!(error, "{method} {path} {status}: not the error body");
            }
            if negotiated || error {
                assert_eq!(
                    response.pointer("/content/application~1json"),
                    response.pointer("/content/application~1msgpack"),
                    "{method} {path} {status}: MessagePack beside JSON"
                );
            }
            if error && (code == 429 || code == 503) {
                assert!(
                    response.pointer("/headers/Retry-After").is_some(),
                    "{method} {path} {status}: Retry-After"
                );
            }
        }
        // What every route can answer: the timeout and panic layers.
        for status in ["500", "504"] {
            assert!(responses.contains_key(status), "{method} {path}: {status}");
        }
        if !["/health", "/ready", "/metrics"].contains(&path.as_str()) {
            assert!(responses.contains_key("429"), "{method} {path}: 429");
        }
        if op.get("security").is_some() {
            assert!(responses.contains_key("401"), "{method} {path}: 401");
        }
    }
    let ws = &doc["paths"]["/v1/ws"]["get"];
    assert!(
        ws["responses"]["101"].is_object(),
        "the socket upgrade answers 101: {ws}"
    );
    app.finish().await;
}

/// The route templates of the router the gateway serves: axum's router
/// has no API to list them, but its `Debug` prints them (`Node { paths:
/// {RouteId(1): "/health", ...} }`, the first node being the routes', the
/// second the fallbacks').
fn router_paths(router: &axum::Router) -> BTreeSet<String> {
    let debug = format!("{router:?}");
    let start = debug.find("paths: {").expect("the router's Debug prints its paths") + "paths: {".len();
    let mut paths = BTreeSet::new();
    let (mut in_string, mut current) = (false, String::new());
    for c in debug[start..].chars() {
        match (in_string, c) {
            (false, '}') => break,
            (false, '"') => in_string = true,
            (true, '"') => {
                paths.insert(std::mem::take(&mut current));
                in_string = false;
            }
            (true, c) => current.push(c),
            (false, _) => {}
        }
    }
    assert!(
        paths.len() > 10,
        "too few paths parsed from the router's Debug: {paths:?}"
    );
    paths
}

async fn the_documented_routes_are_the_routes_the_router_serves(backend: Backend) {
    let Some(app) = spawn_app_with(backend, unlimited()).await else {
        return;
    };
    let doc = fetch_document(&app).await;
    let documented: BTreeSet<(String, String)> = operations(&doc).into_keys().collect();

    // The route table of the router a gateway built by `App::build` serves
    // (the same build as the running one), and the methods each path
    // answers through the running gateway: anything but 405.
    let router = app.gateway_router().await;
    let mut served = BTreeSet::new();
    for path in router_paths(&router) {
        // The API reference page's script is an asset of `/docs`, not an
        // operation: it is the one route left out of the document.
        if path == vdm_gateway::routes::docs::REDOC_PATH {
            continue;
        }
        let concrete = fill(&path, "1");
        for method in PROBED {
            // A token that fails every check: no handler runs far.
            let response = app
                .send(
                    method.clone(),
                    &concrete,
                    &[("authorization", "Bearer probe")],
                    Vec::new(),
                )
                .await;
            assert_ne!(response.status, 404, "{method} {concrete}: the router has {path}");
            if response.status != 405 {
                served.insert((method.to_string(), path.clone()));
            }
        }
    }
    let undocumented: Vec<_> = served.difference(&documented).collect();
    let unserved: Vec<_> = documented.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unserved.is_empty(),
        "served but not documented: {undocumented:?}; documented but not served: {unserved:?}"
    );
    // The metric labels are the document's templates too.
    let metrics = app.send(Method::GET, "/metrics", &[], Vec::new()).await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.contains(r#"route="/v1/openapi.json""#),
        "the document's own route is labelled"
    );
    app.finish().await;
}

/// Status of a request to a documented operation with `token`.
async fn status_with(app: &TestApp, method: &str, path: &str, token: Option<&str>) -> u16 {
    let concrete = fill(path, "1");
    if path == "/v1/ws" {
        let mut request = format!("ws://{}{concrete}", app.addr).into_client_request().unwrap();
        if let Some(token) = token {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {token}").parse().unwrap());
        }
        return match tokio_tungstenite::connect_async(request).await {
            Ok((mut socket, response)) => {
                let _ = socket.close(None).await;
                response.status().as_u16()
            }
            Err(tungstenite::Error::Http(response)) => response.status().as_u16(),
            Err(other) => panic!("socket: {other}"),
        };
    }
    let method: Method = method.parse().unwrap();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("content-type", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("authorization", auth));
    }
    app.send(method, &concrete, &headers, "{}").await.status.as_u16()
}

async fn documented_security_is_what_the_handlers_enforce(backend: Backend) {
    let Some(app) = spawn_app_with(backend, unlimited()).await else {
        return;
    };
    let doc = fetch_document(&app).await;
    let (_, mut player) = app.sign_in("security-probe").await;
    let mut secured = 0;
    for ((method, path), op) in operations(&doc) {
        let schemes: BTreeSet<&str> = op["security"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|r| r.as_object().expect("requirement").keys().map(String::as_str))
            .collect();
        if schemes.is_empty() {
            // Public: no token gets through the extractors.
            let status = status_with(&app, &method, &path, None).await;
            assert!(
                status != 401 && status != 403,
                "{method} {path} is documented as public but answers {status} without a token"
            );
            continue;
        }
        secured += 1;
        assert_eq!(
            status_with(&app, &method, &path, None).await,
            401,
            "{method} {path} without a token"
        );
        for (token, scheme) in [(player.as_str(), "session"), (ADMIN_TOKEN, "admin")] {
            let status = status_with(&app, &method, &path, Some(token)).await;
            if schemes.contains(scheme) {
                assert!(
                    status != 401 && status != 403,
                    "{method} {path} documents {scheme} but refuses it with {status}"
                );
            } else {
                assert_eq!(status, 403, "{method} {path} does not document {scheme}");
                assert!(op["responses"]["403"].is_object(), "{method} {path}: 403 documented");
            }
        }
        if path.contains("signout") || path.contains("sessions:revoke") {
            // That may have ended the probe's session (player 1): a new one.
            player = app.sign_in("security-probe").await.1;
        }
    }
    assert!(secured > 30, "only {secured} secured operations");
    app.finish().await;
}

/// A small JSON Schema checker (2020-12 keywords the document uses):
/// `Err` names where `value` does not match. Unknown keywords are errors,
/// so nothing is silently skipped.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let Some(keywords) = schema.as_object() else {
        return match schema {
            Value::Bool(true) => Ok(()),
            Value::Bool(false) => Err(format!("{at}: no value allowed")),
            _ => Err(format!("{at}: schema is not an object: {schema}")),
        };
    };
    for (keyword, arg) in keywords {
        match keyword.as_str() {
            "$ref" => {
                let target = arg
                    .as_str()
                    .and_then(|r| resolve(doc, r))
                    .ok_or(format!("{at}: bad $ref {arg}"))?;
                check(doc, target, value, at)?;
            }
            "type" => {
                let types: Vec<&str> = match arg {
                    Value::String(t) => vec![t.as_str()],
                    Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
                    _ => return Err(format!("{at}: bad type {arg}")),
                };
                let ok = types.iter().any(|t| match *t {
                    "null" => value.is_null(),
                    "boolean" => value.is_boolean(),
                    "integer" => value.is_i64() || value.is_u64(),
                    "number" => value.is_number(),
                    "string" => value.is_string(),
                    "array" => value.is_array(),
                    "object" => value.is_object(),
                    _ => false,
                });
                if !ok {
                    return Err(format!("{at}: {value} is not of type {arg}"));
                }
            }
            "enum" => {
                if !arg.as_array().is_some_and(|options| options.contains(value)) {
                    return Err(format!("{at}: {value} is not one of {arg}"));
                }
            }
            "const" => {
                if arg != value {
                    return Err(format!("{at}: {value} is not {arg}"));
                }
            }
            "properties" => {
                if let (Some(properties), Some(fields)) = (arg.as_object(), value.as_object()) {
                    for (name, property) in properties {
                        if let Some(field) = fields.get(name) {
                            check(doc, property, field, &format!("{at}.{name}"))?;
                        }
                    }
                }
            }
            "required" => {
                if let Some(fields) = value.as_object() {
                    for name in arg.as_array().into_iter().flatten().filter_map(Value::as_str) {
                        if !fields.contains_key(name) {
                            return Err(format!("{at}: required field {name} is missing"));
                        }
                    }
                }
            }
            "additionalProperties" => {
                if let Some(fields) = value.as_object() {
                    let known = keywords.get("properties").and_then(Value::as_object);
                    for (name, field) in fields {
                        if !known.is_some_and(|k| k.contains_key(name)) {
                            check(doc, arg, field, &format!("{at}.{name}"))
                                .map_err(|e| format!("{e} (field {name} is not in the schema)"))?;
                        }
                    }
                }
            }
            "propertyNames" => {
                if let Some(fields) = value.as_object() {
                    for name in fields.keys() {
                        check(doc, arg, &Value::String(name.clone()), &format!("{at}.{name} (name)"))?;
                    }
                }
            }
            "items" => {
                if let Some(items) = value.as_array() {
                    let skip = keywords
                        .get("prefixItems")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                    for (i, item) in items.iter().enumerate().skip(skip) {
                        check(doc, arg, item, &format!("{at}[{i}]"))?;
                    }
                }
            }
            "prefixItems" => {
                if let (Some(schemas), Some(items)) = (arg.as_array(), value.as_array()) {
                    for (i, (schema, item)) in schemas.iter().zip(items).enumerate() {
                        check(doc, schema, item, &format!("{at}[{i}]"))?;
                    }
                }
            }
            "minItems" | "maxItems" => {
                if let (Some(bound), Some(items)) = (arg.as_u64(), value.as_array()) {
                    let len = items.len() as u64;
                    if (keyword == "minItems" && len < bound) || (keyword == "maxItems" && len > bound) {
                        return Err(format!("{at}: {len} items, {keyword} {bound}"));
                    }
                }
            }
            "minLength" | "maxLength" => {
                if let (Some(bound), Some(text)) = (arg.as_u64(), value.as_str()) {
                    let len = text.chars().count() as u64;
                    if (keyword == "minLength" && len < bound) || (keyword == "maxLength" && len > bound) {
                        return Err(format!("{at}: length {len}, {keyword} {bound}"));
                    }
                }
            }
            "minimum" | "maximum" | "exclusiveMinimum" | "exclusiveMaximum" => {
                if let (Some(bound), Some(number)) = (arg.as_f64(), value.as_f64()) {
                    let ok = match keyword.as_str() {
                        "minimum" => number >= bound,
                        "maximum" => number <= bound,
                        "exclusiveMinimum" => number > bound,
                        _ => number < bound,
                    };
                    if !ok {
                        return Err(format!("{at}: {number} breaks {keyword} {bound}"));
                    }
                }
            }
            "oneOf" | "anyOf" | "allOf" => {
                let schemas = arg.as_array().ok_or(format!("{at}: {keyword} is not a list"))?;
                let results: Vec<Result<(), String>> = schemas.iter().map(|s| check(doc, s, value, at)).collect();
                let passed = results.iter().filter(|r| r.is_ok()).count();
                let ok = match keyword.as_str() {
                    "oneOf" => passed == 1,
                    "anyOf" => passed >= 1,
                    _ => passed == schemas.len(),
                };
                if !ok {
                    let why: Vec<String> = results.into_iter().filter_map(Result::err).collect();
                    return Err(format!(
                        "{at}: {keyword} matched {passed} of {}: {why:?}",
                        schemas.len()
                    ));
                }
            }
            "format" => match arg.as_str() {
                Some("date-time") => {
                    let text = value.as_str().unwrap_or("");
                    let bytes = text.as_bytes();
                    let looks_right = bytes.len() >= 20
                        && bytes[4] == b'-'
                        && bytes[7] == b'-'
                        && bytes[10] == b'T'
                        && (text.ends_with('Z') || text[19..].contains(['+', '-']));
                    if value.is_string() && !looks_right {
                        return Err(format!("{at}: {value} is not an RFC 3339 date-time"));
                    }
                }
                // Number widths: the integer/number type and bounds are checked.
                Some("int32" | "int64" | "uint32" | "uint64" | "float" | "double") => {}
                _ => return Err(format!("{at}: unsupported format {arg}")),
            },
            "description" | "title" | "default" | "example" | "examples" | "deprecated" | "readOnly" | "writeOnly"
            | "summary" => {}
            other => return Err(format!("{at}: unsupported keyword {other}")),
        }
    }
    Ok(())
}

/// The checker fails what it should, so a pass means something.
#[test]
fn the_checker_refuses_wrong_values() {
    let doc = json!({"components": {"schemas": {
        "Thing": {
            "type": "object",
            "required": ["id", "tags"],
            "additionalProperties": false,
            "properties": {
                "id": {"type": "integer", "minimum": 1},
                "tags": {"type": "array", "items": {"type": "string", "enum": ["a", "b"]}},
                "note": {"type": ["string", "null"]},
                "at": {"type": "string", "format": "date-time"},
                "inner": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Thing"}]}
            }
        }
    }}});
    let thing = json!({"$ref": "#/components/schemas/Thing"});
    let good =
        json!({"id": 1, "tags": ["a"], "note": null, "at": "2026-01-31T12:00:00.000Z", "inner": {"id": 2, "tags": []}});
    assert_eq!(check(&doc, &thing, &good, "$"), Ok(()));
    for (bad, why) in [
        (json!({"tags": []}), "required field id"),
        (json!({"id": 0, "tags": []}), "minimum"),
        (json!({"id": 1.5, "tags": []}), "not of type"),
        (json!({"id": 1, "tags": ["c"]}), "not one of"),
        (json!({"id": 1, "tags": [], "extra": 1}), "not in the schema"),
        (json!({"id": 1, "tags": [], "at": "yesterday"}), "date-time"),
        (json!({"id": 1, "tags": [], "inner": {"id": 1}}), "oneOf"),
    ] {
        let err = check(&doc, &thing, &bad, "$").expect_err(why);
        assert!(err.contains(why), "{bad}: {err}");
    }
    assert!(
        check(&doc, &json!({"pattern": "x"}), &json!("x"), "$").is_err(),
        "unknown keywords fail"
    );
}

/// The documented answers, checked as they come.
struct Checked<'d> {
    doc: &'d Value,
    seen: BTreeSet<(String, String, u16)>,
}

impl Checked<'_> {
    /// Asserts that `response` is a documented answer of `method template`
    /// (its status, content type, headers and body); returns the body.
    #[track_caller]
    fn answer(&mut self, method: &str, template: &str, response: &TestResponse) -> Value {
        let status = response.status.as_u16();
        let documented = self
            .doc
            .pointer(&format!(
                "/paths/{}/{}/responses/{status}",
                template.replace('~', "~0").replace('/', "~1"),
                method.to_lowercase()
            ))
            .unwrap_or_else(|| {
                panic!(
                    "{method} {template} answered {status}, which is not documented: {}",
                    String::from_utf8_lossy(&response.body)
                )
            });
        self.seen.insert((method.to_owned(), template.to_owned(), status));
        for header in documented["headers"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(name, _)| name)
        {
            assert!(
                response.header(header).is_some(),
                "{method} {template} {status}: header {header}"
            );
        }
        let Some(content) = documented["content"].as_object() else {
            assert!(
                response.body.is_empty(),
                "{method} {template} {status}: undocumented body"
            );
            return Value::Null;
        };
        let content_type = response.header("content-type").expect("content type");
        let media = content
            .get(content_type)
            .unwrap_or_else(|| panic!("{method} {template} {status}: {content_type} is not documented"));
        let body: Value = match content_type {
            "application/json" => response.json(),
            "application/msgpack" => rmp_serde::from_slice(&response.body).expect("MessagePack body"),
            other => return Value::String(format!("{other}: {} bytes", response.body.len())),
        };
        let schema = &media["schema"];
        if let Err(why) = check(self.doc, schema, &body, "$") {
            panic!("{method} {template} {status}: {why}\nbody: {body}");
        }
        body
    }
}

async fn real_answers_match_the_documented_schemas(backend: Backend) {
    let options = Options {
        seed_demo: true,
        ..unlimited()
    };
    let Some(app) = spawn_app_with(backend, options).await else {
        return;
    };
    let doc = fetch_document(&app).await;
    let mut checked = Checked {
        doc: &doc,
        seen: BTreeSet::new(),
    };
    let admin = Some(ADMIN_TOKEN);
    let msgpack = [("accept", "application/msgpack")];

    // Auth: a new player (201), the same device again (200), a refresh.
    let device = json!({"device_id": "openapi-device"});
    let created = app.post_json("/v1/auth/device", None, &device).await;
    let pair = checked.answer("POST", "/v1/auth/device", &created);
    let again = app.post_json("/v1/auth/device", None, &device).await;
    checked.answer("POST", "/v1/auth/device", &again);
    let refresh = json!({"refresh_token": pair["refresh_token"]});
    let refreshed = app.post_json("/v1/auth/refresh", None, &refresh).await;
    checked.answer("POST", "/v1/auth/refresh", &refreshed);
    let token = pair["session_token"].as_str().unwrap().to_owned();
    let player = Some(token.as_str());

    // Quests: create, read (JSON and MessagePack), list, batch, accept,
    // progress, the quest log, abandon.
    let quest = app.post_json("/v1/quests", admin, &wolves()).await;
    let quest = checked.answer("POST", "/v1/quests", &quest);
    let id = quest["id"].as_i64().unwrap();
    let objective = quest["objectives"][0]["id"].as_i64().unwrap();
    checked.answer(
        "GET",
        "/v1/quests/{id}",
        &app.get(&format!("/v1/quests/{id}"), &token).await,
    );
    let packed = app
        .send(
            Method::GET,
            &format!("/v1/quests/{id}"),
            &[("authorization", &format!("Bearer {token}")), msgpack[0]],
            Vec::new(),
        )
        .await;
    assert_eq!(packed.header("content-type"), Some("application/msgpack"));
    assert_eq!(checked.answer("GET", "/v1/quests/{id}", &packed), quest);
    let page = app.get("/v1/quests?limit=1", &token).await;
    checked.answer("GET", "/v1/quests", &page);
    let batch = app
        .post_json("/v1/quests:batchGet", player, &json!({"ids": [id, 1, 999_999]}))
        .await;
    checked.answer("POST", "/v1/quests:batchGet", &batch);
    let patch = json!({"title": "Wolves at the Old Mill", "reward": {"gold": 60}});
    let patched = app
        .json_request(Method::PATCH, &format!("/v1/quests/{id}"), admin, &patch)
        .await;
    checked.answer("PATCH", "/v1/quests/{id}", &patched);
    let accepted = app
        .post_json(&format!("/v1/quests/{id}/accept"), player, &json!({}))
        .await;
    checked.answer("POST", "/v1/quests/{id}/accept", &accepted);
    let step = json!({"objective_id": objective, "amount": 2});
    let advanced = app
        .post_json(&format!("/v1/me/quests/{id}/progress"), player, &step)
        .await;
    checked.answer("POST", "/v1/me/quests/{id}/progress", &advanced);
    checked.answer(
        "GET",
        "/v1/me/quests",
        &app.get("/v1/me/quests?status=active", &token).await,
    );
    let abandoned = app
        .post_json(&format!("/v1/me/quests/{id}/abandon"), player, &json!({}))
        .await;
    checked.answer("POST", "/v1/me/quests/{id}/abandon", &abandoned);

    // NPCs: read, then one created and moved.
    checked.answer(
        "GET",
        "/v1/npcs",
        &app.get("/v1/npcs?region_id=1&limit=3", &token).await,
    );
    let tobin = checked.answer("GET", "/v1/npcs/{id}", &app.get("/v1/npcs/4", &token).await);
    let region = tobin["region_id"].as_i64().unwrap();
    let neighbours = checked.answer(
        "GET",
        "/v1/npcs",
        &app.get(&format!("/v1/npcs?region_id={region}"), &token).await,
    );
    let listener = neighbours["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["id"].as_i64())
        .find(|n| *n != 4)
        .expect("another NPC in Tobin's region");
    let new_npc = json!({"name": "Ada Quill", "region_id": 1, "traits": {"honesty": 0.9}});
    let new_npc = checked.answer("POST", "/v1/npcs", &app.post_json("/v1/npcs", admin, &new_npc).await);
    let cell = checked.answer(
        "GET",
        "/v1/world/regions/{id}",
        &app.get("/v1/world/regions/1", &token).await,
    )["cells"][1]
        .clone();
    let moved = app
        .post_json(
            &format!("/v1/npcs/{}/move", new_npc["id"]),
            admin,
            &json!({"q": cell[0], "r": cell[1]}),
        )
        .await;
    checked.answer("POST", "/v1/npcs/{id}/move", &moved);
    let patch = json!({"faction_id": 2, "traits": {"honesty": 0.4}});
    let patched = app
        .json_request(Method::PATCH, &format!("/v1/npcs/{}", new_npc["id"]), admin, &patch)
        .await;
    assert_eq!(checked.answer("PATCH", "/v1/npcs/{id}", &patched)["faction_id"], 2);
    let unknown = json!({"faction_id": 999});
    let refused = app
        .json_request(Method::PATCH, &format!("/v1/npcs/{}", new_npc["id"]), admin, &unknown)
        .await;
    checked.answer("PATCH", "/v1/npcs/{id}", &refused);
    let npcs = app
        .post_json("/v1/npcs:batchGet", player, &json!({"ids": [1, 2, 4]}))
        .await;
    checked.answer("POST", "/v1/npcs:batchGet", &npcs);
    checked.answer(
        "GET",
        "/v1/npcs/{id}/memories",
        &app.get("/v1/npcs/4/memories", &token).await,
    );
    checked.answer(
        "GET",
        "/v1/me/npcs/{id}/disposition",
        &app.get("/v1/me/npcs/4/disposition", &token).await,
    );
    let memory = json!({"kind": "saw", "text": "a wolf at the mill", "importance": 0.4, "subject_ids": [1]});
    let recorded = app.post_json("/v1/npcs/4/memories", admin, &memory).await;
    checked.answer("POST", "/v1/npcs/{id}/memories", &recorded);

    // The world.
    checked.answer("GET", "/v1/world/regions", &app.get("/v1/world/regions", &token).await);
    checked.answer(
        "GET",
        "/v1/world/regions/{id}",
        &app.get("/v1/world/regions/1", &token).await,
    );
    checked.answer(
        "GET",
        "/v1/world/factions",
        &app.get("/v1/world/factions", &token).await,
    );
    checked.answer("GET", "/v1/world/time", &app.get("/v1/world/time", &token).await);
    let event = json!({"kind": "fair", "text": "A fair comes to town", "region_ids": [1]});
    let published = app.post_json("/v1/world/events", admin, &event).await;
    checked.answer("POST", "/v1/world/events", &published);
    checked.answer(
        "GET",
        "/v1/world/events",
        &app.get("/v1/world/events?region_id=1", &token).await,
    );

    // Rumors: the player talks to Tobin Reed (NPC 4), who knows one.
    let talk = app.post_json("/v1/npcs/4/talk", player, &json!({})).await;
    let talk = checked.answer("POST", "/v1/npcs/{id}/talk", &talk);
    assert_eq!(talk["told"], true, "{talk}");
    let rumor_id = talk["rumor"]["rumor_id"].as_i64().unwrap();
    checked.answer(
        "GET",
        "/v1/rumors/{id}",
        &app.get(&format!("/v1/rumors/{rumor_id}"), &token).await,
    );
    checked.answer("GET", "/v1/me/rumors", &app.get("/v1/me/rumors", &token).await);
    checked.answer(
        "GET",
        "/v1/npcs/{id}/rumors",
        &app.get("/v1/npcs/4/rumors", &token).await,
    );
    let tick = app
        .post_json("/v1/rumors:tick", admin, &json!({"region_id": 1, "seed": 7}))
        .await;
    checked.answer("POST", "/v1/rumors:tick", &tick);
    let rumor =
        json!({"text": "The mill wheel turns at night", "origin_npc_id": 4, "region_id": region, "truth": 0.25});
    let rumor = checked.answer("POST", "/v1/rumors", &app.post_json("/v1/rumors", admin, &rumor).await);
    let spread = json!({"from_npc_id": 4, "to_npc_id": listener, "seed": 3});
    let spread_path = format!("/v1/rumors/{}/spread", rumor["id"]);
    let first = checked.answer(
        "POST",
        "/v1/rumors/{id}/spread",
        &app.post_json(&spread_path, admin, &spread).await,
    );
    assert_eq!(first["already_known"], false, "{first}");
    let second = app.post_json(&spread_path, admin, &spread).await;
    assert_eq!(second.status, 200);
    checked.answer("POST", "/v1/rumors/{id}/spread", &second);
    let unknown = json!({"from_npc_id": new_npc["id"], "to_npc_id": 4});
    let refused = app.post_json(&spread_path, admin, &unknown).await;
    assert_eq!(refused.status, 409, "{}", String::from_utf8_lossy(&refused.body));
    checked.answer("POST", "/v1/rumors/{id}/spread", &refused);

    // The player: the catalog, a grant (and its replay), the profile, a
    // rename (and a taken name), the inventory and the ledger.
    let item =
        json!({"key": "wolf_pelt", "name": "Wolf Pelt", "kind": "material", "rarity": "common", "max_stack": 20});
    let put = app.json_request(Method::PUT, "/v1/items/40", admin, &item).await;
    checked.answer("PUT", "/v1/items/{id}", &put);
    checked.answer("GET", "/v1/items/{id}", &app.get("/v1/items/40", &token).await);
    checked.answer("GET", "/v1/items/{id}", &app.get("/v1/items/4040", &token).await);
    checked.answer("GET", "/v1/items", &app.get("/v1/items?limit=2", &token).await);
    let player_id = pair["player_id"].as_i64().unwrap();
    let grant = json!({"gold": 30, "xp": 150, "items": [{"item_id": 40, "quantity": 3}], "reason": "openapi check"});
    let grants = format!("/v1/players/{player_id}/grants");
    let auth = format!("Bearer {ADMIN_TOKEN}");
    let keyed = [
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
        ("idempotency-key", "openapi-grant-1"),
    ];
    let body = serde_json::to_vec(&grant).unwrap();
    for _ in 0..2 {
        let granted = app.send(Method::POST, &grants, &keyed, body.clone()).await;
        checked.answer("POST", "/v1/players/{id}/grants", &granted);
    }
    let unknown = app
        .post_json(
            "/v1/players/999999/grants",
            admin,
            &json!({"gold": 1, "reason": "nobody"}),
        )
        .await;
    checked.answer("POST", "/v1/players/{id}/grants", &unknown);
    checked.answer("GET", "/v1/me", &app.get("/v1/me", &token).await);
    let renamed = app
        .json_request(Method::PATCH, "/v1/me", player, &json!({"display_name": "Open Api"}))
        .await;
    checked.answer("PATCH", "/v1/me", &renamed);
    let (_, second) = app.sign_in("openapi-second").await;
    let taken = app
        .json_request(
            Method::PATCH,
            "/v1/me",
            Some(&second),
            &json!({"display_name": "open api"}),
        )
        .await;
    assert_eq!(taken.status, 409, "{}", String::from_utf8_lossy(&taken.body));
    checked.answer("PATCH", "/v1/me", &taken);
    // Demo quest 2 (Brother Aldo, of faction 3) completed: its reward and
    // standing reach the ledger and the factions a moment later.
    let letter = app.get("/v1/quests/2", &token).await.json();
    app.post_json("/v1/quests/2/accept", player, &json!({})).await;
    let done = json!({"objective_id": letter["objectives"][0]["id"], "amount": 1});
    app.post_json("/v1/me/quests/2/progress", player, &done).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let factions = loop {
        let factions = app.get("/v1/me/factions", &token).await;
        if factions.status != 200 || !factions.json()["items"].as_array().unwrap().is_empty() {
            break factions;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the quest's standing never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    checked.answer("GET", "/v1/me/factions", &factions);
    checked.answer("GET", "/v1/me/inventory", &app.get("/v1/me/inventory", &token).await);
    checked.answer("GET", "/v1/me/ledger", &app.get("/v1/me/ledger?limit=2", &token).await);

    // The bootstrap, in both formats.
    checked.answer(
        "GET",
        "/v1/bootstrap",
        &app.get("/v1/bootstrap?region_id=1", &token).await,
    );
    let packed = app
        .send(
            Method::GET,
            "/v1/bootstrap?region_id=1",
            &[("authorization", &format!("Bearer {token}")), msgpack[0]],
            Vec::new(),
        )
        .await;
    checked.answer("GET", "/v1/bootstrap", &packed);

    // Telemetry and stats.
    let batch = json!({"client_version": "1.4.2", "device_class": "desktop", "samples": [
        {"frame_time_ms": 16.6, "gc_collections": 0, "systems": {"ai": 1.5}},
        {"frame_time_ms": 18.0}
    ]});
    checked.answer(
        "POST",
        "/v1/telemetry/client",
        &app.post_json("/v1/telemetry/client", player, &batch).await,
    );
    checked.answer("GET", "/v1/stats/client", &app.get("/v1/stats/client", &token).await);
    checked.answer("GET", "/v1/stats", &app.get("/v1/stats", ADMIN_TOKEN).await);
    checked.answer("GET", "/v1/budgets", &app.get("/v1/budgets", ADMIN_TOKEN).await);
    checked.answer(
        "GET",
        "/v1/stats/history",
        &app.get("/v1/stats/history?from=0", ADMIN_TOKEN).await,
    );
    checked.answer(
        "GET",
        "/v1/stats/history",
        &app.get("/v1/stats/history?from=yesterday", ADMIN_TOKEN).await,
    );

    // Errors: each a documented status with the error body.
    checked.answer("GET", "/v1/quests/{id}", &app.get("/v1/quests/999999", &token).await);
    checked.answer("GET", "/v1/quests/{id}", &app.get("/v1/quests/abc", &token).await);
    checked.answer(
        "GET",
        "/v1/quests",
        &app.send(Method::GET, "/v1/quests", &[], Vec::new()).await,
    );
    checked.answer(
        "POST",
        "/v1/quests",
        &app.post_json("/v1/quests", player, &wolves()).await,
    );
    let bad = app.post_json("/v1/quests", admin, &json!({"title": 1})).await;
    checked.answer("POST", "/v1/quests", &bad);
    let xml = app
        .send(
            Method::POST,
            "/v1/auth/device",
            &[("content-type", "application/xml")],
            "<device/>",
        )
        .await;
    checked.answer("POST", "/v1/auth/device", &xml);
    checked.answer("GET", "/v1/bootstrap", &app.get("/v1/bootstrap", &token).await);
    let error = app
        .send(
            Method::GET,
            "/v1/quests/999999",
            &[("authorization", &format!("Bearer {token}")), msgpack[0]],
            Vec::new(),
        )
        .await;
    checked.answer("GET", "/v1/quests/{id}", &error);
    checked.answer(
        "DELETE",
        "/v1/quests/{id}",
        &app.send(
            Method::DELETE,
            &format!("/v1/quests/{id}"),
            &[("authorization", &format!("Bearer {ADMIN_TOKEN}"))],
            Vec::new(),
        )
        .await,
    );

    // Sessions: an operator revokes another player's sessions (and a
    // missing player is a 404), then the player signs out.
    let (leaving_id, leaving) = app.sign_in("openapi-leaving").await;
    checked.answer(
        "POST",
        "/v1/players/{id}/sessions:revoke",
        &app.post_json(&format!("/v1/players/{leaving_id}/sessions:revoke"), admin, &json!({}))
            .await,
    );
    checked.answer(
        "POST",
        "/v1/players/{id}/sessions:revoke",
        &app.post_json("/v1/players/999999/sessions:revoke", admin, &json!({}))
            .await,
    );
    checked.answer(
        "POST",
        "/v1/auth/signout",
        &app.post_json("/v1/auth/signout", Some(&leaving), &json!({})).await,
    );
    let (_, leaving) = app.sign_in("openapi-leaving").await;
    checked.answer(
        "POST",
        "/v1/auth/signout",
        &app.post_json("/v1/auth/signout", Some(&leaving), &json!({})).await,
    );

    // The world writes of an operator (world content imports use them).
    let region = json!({"name": "Far Isle", "biome": "island", "cells": [[60, 60], [61, 60]]});
    for _ in 0..2 {
        let put = app
            .json_request(Method::PUT, "/v1/world/regions/9", admin, &region)
            .await;
        checked.answer("PUT", "/v1/world/regions/{id}", &put);
    }
    let faction = json!({"name": "Isle Wardens"});
    for _ in 0..2 {
        let put = app
            .json_request(Method::PUT, "/v1/world/factions/9", admin, &faction)
            .await;
        checked.answer("PUT", "/v1/world/factions/{id}", &put);
    }
    let relation = json!({"a": 9, "b": 1, "score": 15});
    checked.answer(
        "PUT",
        "/v1/world/relations",
        &app.json_request(Method::PUT, "/v1/world/relations", admin, &relation)
            .await,
    );

    // Operations.
    for path in [
        "/health",
        "/ready",
        "/metrics",
        "/dashboard",
        "/docs",
        "/v1/openapi.json",
    ] {
        checked.answer("GET", path, &app.send(Method::GET, path, &[], Vec::new()).await);
    }

    // Every operation but the socket (`documented_security_is_what_the_handlers_enforce`
    // opens it) was answered and checked.
    let seen: BTreeSet<_> = checked.seen.iter().map(|(m, p, _)| (m.clone(), p.clone())).collect();
    let unchecked: Vec<_> = operations(&doc)
        .into_keys()
        .filter(|op| !seen.contains(op) && op.1 != "/v1/ws")
        .collect();
    assert!(unchecked.is_empty(), "operations never checked: {unchecked:?}");
    let statuses: BTreeSet<u16> = checked.seen.iter().map(|(_, _, s)| *s).collect();
    for status in [200, 201, 202, 204, 400, 401, 403, 404, 415] {
        assert!(
            statuses.contains(&status),
            "no {status} answer was checked: {statuses:?}"
        );
    }
    app.finish().await;
}

/// Every push a socket gets is in the document (`x-vdm-pushes`: its name and
/// payload schema) and matches it; the contract version the socket announces
/// is the hash of the document the client reads, so a change to anything a
/// client sees changes it.
async fn pushes_match_their_documented_schemas_and_the_contract_is_the_document(backend: Backend) {
    let Some(app) = crate::helpers::spawn_demo(backend).await else {
        return;
    };
    let served = app.send(Method::GET, "/v1/openapi.json", &[], Vec::new()).await;
    assert_eq!(served.status, 200);
    let contract = format!("v1-{}", vdm_kit::hash::Fnv64::default().bytes(&served.body).hex());
    let doc: Value = served.json();
    let pushes = doc["x-vdm-pushes"].as_object().expect("x-vdm-pushes");
    let names: BTreeSet<&str> = pushes.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "npc.moved",
            "player.level_up",
            "player.updated",
            "quest.updated",
            "rumor.heard",
            "rumor.spread",
            "world.event"
        ])
    );

    let (player_id, token) = app.sign_in("push-schemas").await;
    let mut socket = crate::realtime::connect(&app, "", Some(&token), "vdm.v1.json")
        .await
        .unwrap();
    let welcome = crate::realtime::next(&mut socket).await;
    assert_eq!(welcome["contract"], contract.as_str(), "{welcome}");
    crate::realtime::send(&mut socket, json!({"id": "s", "type": "subscribe", "regions": [1, 2]})).await;
    crate::realtime::collect(&mut socket, "s", 0).await;

    let admin = Some(ADMIN_TOKEN);
    let event = json!({"kind": "storm", "text": "Hail over the vale.", "region_ids": [1]});
    assert_eq!(app.post_json("/v1/world/events", admin, &event).await.status, 201);
    let moved = app.post_json("/v1/npcs/1/move", admin, &json!({"q": 6, "r": -4})).await;
    assert_eq!(moved.status, 200, "{}", String::from_utf8_lossy(&moved.body));
    let accepted = app.post_json("/v1/quests/1/accept", Some(&token), &json!({})).await;
    assert_eq!(accepted.status, 200, "{}", String::from_utf8_lossy(&accepted.body));
    let talked = app.post_json("/v1/npcs/4/talk", Some(&token), &json!({})).await;
    assert_eq!(talked.status, 200, "{}", String::from_utf8_lossy(&talked.body));
    // 100 xp: level 2, so `player.updated` and `player.level_up`.
    let grant = json!({"xp": 100, "reason": "push schemas"});
    let granted = app
        .post_json(&format!("/v1/players/{player_id}/grants"), admin, &grant)
        .await;
    assert_eq!(granted.status, 200, "{}", String::from_utf8_lossy(&granted.body));
    let mut seen = BTreeSet::new();
    for _ in 0..6 {
        let push = crate::realtime::next(&mut socket).await;
        seen.insert(check_push(&doc, &push));
    }
    for seed in 1..=10 {
        let tick = app
            .post_json("/v1/rumors:tick", admin, &json!({"region_id": 1, "seed": seed}))
            .await
            .json();
        if tick["tellings"].as_u64().unwrap() > 0 {
            break;
        }
    }
    let push = crate::realtime::next(&mut socket).await;
    seen.insert(check_push(&doc, &push));
    assert_eq!(seen, names.iter().map(|n| (*n).to_owned()).collect::<BTreeSet<_>>());
    app.finish().await;
}

/// Checks a push against its documented schema; returns its name.
fn check_push(doc: &Value, push: &Value) -> String {
    assert_eq!(push["type"], "event", "{push}");
    let name = push["event"].as_str().expect("a push name").to_owned();
    let reference = doc["x-vdm-pushes"][&name]["$ref"]
        .as_str()
        .unwrap_or_else(|| panic!("{name} is not documented"));
    let schema = resolve(doc, reference).expect("the push schema resolves");
    if let Err(mismatch) = check(doc, schema, &push["payload"], &name) {
        panic!("{name}: {mismatch}: {push}");
    }
    name
}
