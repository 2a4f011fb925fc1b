//! The OpenAPI 3.1 document of the REST API, served at
//! `GET /v1/openapi.json`.
//!
//! The document is generated from the code, never written by hand:
//!
//! - each handler carries `#[utoipa::path]` (method, path, parameters,
//!   request body, its own answers, who may call it), and the types it
//!   decodes and encodes derive `ToSchema` / `IntoParams` next to their
//!   serde derives, so a field renamed or made optional changes both;
//! - `startup::routes` (and `startup::socket_routes`, for `/v1/ws`)
//!   registers every handler with `utoipa_axum::routes!`, which adds the
//!   handler to the router and its operation to the document from that one
//!   declaration. A route added any other way (a bare `.route(..)`) would
//!   be served undocumented: `tests/api/openapi.rs` compares the built
//!   router with the document;
//! - `finish` adds what a handler's declaration does not show: the
//!   answers of its extractors (401/403 from the token extractors, 400, 413
//!   and 415 from body and query decoding) and of the layers of
//!   `startup::layers` (429, 500, 504), `Retry-After` on 429 and 503, and
//!   MessagePack beside every JSON body (`negotiate`); and it refers to
//!   named schemas where utoipa copied them.
//!
//! Two bearer schemes name who may call an operation: [`SESSION`] (a
//! player's session token) and [`ADMIN`] (the operator's token); an
//! operation that lists both takes either. The handlers' attributes spell
//! the names out (`security(("session" = []))`: the macro takes literals).

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::Value;
use utoipa::openapi::content::Content;
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi, Ref, RefOr};
use vdm_kit::page::Order;

use crate::negotiate::MSGPACK;

/// The security scheme of a player's session token (`Authorization: Bearer`).
pub const SESSION: &str = "session";
/// The security scheme of the session token passed as `?token=` (sockets
/// from WebGL builds, which cannot set headers).
pub const SESSION_QUERY: &str = "session_query";
/// The security scheme of the operator's admin token (`Authorization: Bearer`).
pub const ADMIN: &str = "admin";
/// The tag of the operational routes: their handlers answer fixed content
/// types (no MessagePack) and the rate limiter lets some of them through.
pub const OPS_TAG: &str = "ops";

const JSON: &str = "application/json";

/// The document as served: the JSON of [`finish`], encoded once when the
/// gateway is built. `startup::document` builds it from the route table and
/// [`serve`] reads it from the state, so this module never names the table
/// it documents.
#[derive(Clone)]
pub struct Document(Bytes);

impl Document {
    /// Encodes a finished document.
    pub fn new(document: &Value) -> Document {
        Document(serde_json::to_vec(document).expect("a JSON value encodes").into())
    }

    /// The encoded document.
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Serves this document.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "getOpenApi",
    tag = OPS_TAG,
    summary = "This OpenAPI 3.1 document",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of every REST route", content_type = "application/json", body = Object),
    ),
)]
pub async fn serve(State(Document(document)): State<Document>) -> Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(JSON)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        document,
    )
        .into_response()
}

/// The document before any route is added: title, tags, the error body
/// and the security schemes.
pub fn base() -> OpenApi {
    let mut doc = <Base as utoipa::OpenApi>::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    let components = doc.components.get_or_insert_with(Default::default);
    components.security_schemes.insert(
        SESSION.to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("JWT")
                .description(Some(
                    "A player's session token (`session_token` of `POST /v1/auth/device` or \
                     `POST /v1/auth/refresh`), as `Authorization: Bearer <token>`.",
                ))
                .build(),
        )),
    );
    components.security_schemes.insert(
        SESSION_QUERY.to_owned(),
        RefOr::T(SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
            "token",
            "A player's session token as the `token` query parameter, for clients that cannot \
             set headers on a WebSocket upgrade (WebGL).",
        )))),
    );
    components.security_schemes.insert(
        ADMIN.to_owned(),
        RefOr::T(SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .description(Some(
                    "The operator's admin token (`VDM_ADMIN_TOKEN`), as `Authorization: Bearer <token>`.",
                ))
                .build(),
        )),
    );
    doc
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "vdm gateway",
        description = "The REST API of the vdm game backend, for the Unity client and operators.\n\n\
            Every body is JSON (`application/json`) or, when the client asks with `Accept` / \
            `Content-Type: application/msgpack`, MessagePack with the same field names. Responses \
            are compressed (gzip, Brotli, zstd) by `Accept-Encoding`; request bodies are taken \
            uncompressed. Every error answers `{\"error\": {\"code\", \"message\", \"trace_id\"?}}` \
            (but `/ready`'s 503, which is its own status body); 429 and 503 carry `Retry-After`. \
            Every response carries `x-request-id`, and `x-trace-id` when the request is traced. \
            HTTP/1.1 only; a request with more than 100 headers or a head over 64 KiB gets a bare \
            431 before any route sees it. Pushes come over the one WebSocket, `GET /v1/ws`.",
        license(name = "MIT OR Apache-2.0"),
    ),
    components(schemas(crate::error::ErrorBody)),
    tags(
        (name = "auth", description = "Device sign-in and token refresh"),
        (name = "quests", description = "Quest definitions and the player's quest log"),
        (name = "world", description = "Regions, factions, the world clock and world events"),
        (name = "npcs", description = "NPCs, their memories and the player's disposition with them"),
        (name = "players", description = "The player's profile, inventory and ledger; grants and the item catalog"),
        (name = "rumors", description = "Rumors, who knows them, and talking to NPCs"),
        (name = "bootstrap", description = "Everything the client needs to render a region, in one round trip"),
        (name = "telemetry", description = "Unity client performance samples and their percentiles"),
        (name = "stats", description = "Backend stats and performance budgets (operators)"),
        (name = "realtime", description = "The WebSocket for pushes and low-latency requests"),
        (name = "ops", description = "Liveness, readiness, metrics, the dashboard and this document"),
    ),
)]
struct Base;

/// Completes the document the routes declared: the answers of extractors
/// and layers, `Retry-After`, and MessagePack beside JSON; then refers to
/// named schemas where utoipa wrote them out.
pub fn finish(mut doc: OpenApi) -> Value {
    for (path, item) in doc.paths.paths.iter_mut() {
        for operation in operations_mut(item) {
            add_extractor_answers(operation);
            add_layer_answers(path, operation);
            add_retry_after(operation);
            add_msgpack(operation);
        }
    }
    let mut doc = serde_json::to_value(&doc).expect("an OpenAPI document is plain JSON data");
    constrain_ids_and_cursors(&mut doc);
    constrain_fields(&mut doc);
    refer_to_named_schemas(&mut doc);
    doc
}

/// What a request field holds, as the services check it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Field {
    /// A required one-line text players see, of at most this many
    /// characters (`TextRule::line`).
    Line(u32),
    /// A required text that may span lines (`TextRule::paragraph`).
    Paragraph(u32),
    /// [`Field::Line`] that may also be empty or blank.
    OptionalLine(u32),
    /// [`Field::Paragraph`] that may also be empty or blank.
    OptionalParagraph(u32),
    /// A one-word label (`word_field`): a memory's or a world event's kind.
    Word,
}

/// The text rules of request fields (`vdm_kit::validate::text_field` and
/// `word_field` in the services), stated in the document where utoipa's
/// attributes cannot share a pattern. A test checks that every entry names
/// a field the document has.
pub(crate) const FIELDS: &[(&str, &str, Field)] = &[
    ("NewQuestJson", "title", Field::Line(200)),
    ("NewQuestJson", "description", Field::OptionalParagraph(4_000)),
    ("QuestPatchJson", "title", Field::Line(200)),
    ("QuestPatchJson", "description", Field::OptionalParagraph(4_000)),
    ("NewObjectiveJson", "description", Field::Line(500)),
    ("NewNpcJson", "name", Field::Line(100)),
    ("NewMemoryJson", "kind", Field::Word),
    ("NewMemoryJson", "text", Field::Paragraph(1_000)),
    ("NewRumorJson", "text", Field::Paragraph(500)),
    ("NewEventJson", "kind", Field::Word),
    ("NewEventJson", "text", Field::Paragraph(2_000)),
    ("ItemBodyJson", "name", Field::Line(64)),
    ("GrantJson", "reason", Field::Line(200)),
    ("GrantJson", "source_id", Field::OptionalLine(128)),
];

/// Characters `check_text` refuses anywhere: control characters and
/// bidirectional controls; with `lines`, tab and line feed stay allowed.
fn refused(lines: bool) -> &'static str {
    if lines {
        r"\u0000-\u0008\u000B-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069"
    } else {
        r"\u0000-\u001F\u007F-\u009F\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069"
    }
}

/// A text `check_text` accepts that also shows something: allowed
/// characters around one that is neither white space nor zero-width.
fn visible_text(lines: bool) -> String {
    let refused = refused(lines);
    format!(r"[^{refused}]*[^\s{refused}\u200B-\u200D\u2060\uFEFF][^{refused}]*")
}

impl Field {
    fn describe(self, schema: &mut serde_json::Map<String, Value>) {
        let (pattern, max) = match self {
            Field::Line(max) => (format!("^{}$", visible_text(false)), Some(max)),
            Field::Paragraph(max) => (format!("^{}$", visible_text(true)), Some(max)),
            Field::OptionalLine(max) => (format!("^( *|{})$", visible_text(false)), Some(max)),
            Field::OptionalParagraph(max) => (format!(r"^(\s*|{})$", visible_text(true)), Some(max)),
            Field::Word => ("^[a-z][a-z0-9_]{0,31}$".to_owned(), None),
        };
        schema.insert("pattern".into(), pattern.into());
        if let Some(max) = max {
            schema.insert("maxLength".into(), max.into());
        }
    }
}

fn constrain_fields(doc: &mut Value) {
    for (schema, field, rule) in FIELDS {
        let pointer = format!("/components/schemas/{schema}/properties/{field}");
        if let Some(Value::Object(property)) = doc.pointer_mut(&pointer) {
            rule.describe(property);
        }
    }
    // A grant moves some gold, xp or items.
    if let Some(Value::Object(grant)) = doc.pointer_mut("/components/schemas/GrantJson") {
        grant.insert(
            "anyOf".into(),
            serde_json::json!([
                {"required": ["gold"], "properties": {"gold": {"minimum": 1}}},
                {"required": ["xp"], "properties": {"xp": {"minimum": 1}}},
                {"required": ["items"], "properties": {"items": {"minItems": 1}}}
            ]),
        );
    }
    // A rumor starts from exactly one origin.
    if let Some(Value::Object(rumor)) = doc.pointer_mut("/components/schemas/NewRumorJson") {
        rumor.insert(
            "oneOf".into(),
            serde_json::json!([{"required": ["origin_npc_id"]}, {"required": ["origin_event_id"]}]),
        );
    }
}

/// Writes down, once for every route, two rules every handler enforces:
/// an id (`id`, `*_id`, and the items of `ids`, `*_ids`) is a positive
/// integer, and a `cursor` parameter is a cursor of the list's order
/// (oldest first unless the route's query says otherwise with its own
/// pattern). Written by hand on each field, one would be forgotten; a
/// client generator and a property tester read them from here.
fn constrain_ids_and_cursors(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            if let Some(Value::Object(properties)) = fields.get_mut("properties") {
                for (name, schema) in properties.iter_mut() {
                    constrain_field(name, schema);
                }
            }
            if let (Some(Value::String(name)), Some(Value::String(place))) = (fields.get("name"), fields.get("in"))
                && matches!(place.as_str(), "query" | "path")
            {
                let name = name.clone();
                if let Some(schema) = fields.get_mut("schema") {
                    if name == "cursor" {
                        if let Some(schema) = schema.as_object_mut() {
                            schema
                                .entry("pattern")
                                .or_insert(Order::Ascending.cursor_pattern().into());
                        }
                    } else {
                        constrain_field(&name, schema);
                    }
                }
            }
            fields.values_mut().for_each(constrain_ids_and_cursors);
        }
        Value::Array(items) => items.iter_mut().for_each(constrain_ids_and_cursors),
        _ => {}
    }
}

fn constrain_field(name: &str, schema: &mut Value) {
    let is_integer = |schema: &Value| match schema.get("type") {
        Some(Value::String(t)) => t == "integer",
        Some(Value::Array(types)) => types.iter().any(|t| t == "integer"),
        _ => false,
    };
    if (name == "id" || name.ends_with("_id")) && is_integer(schema) {
        if let Some(schema) = schema.as_object_mut() {
            schema.entry("minimum").or_insert(1.into());
        }
    } else if (name == "ids" || name.ends_with("_ids"))
        && let Some(items) = schema.get_mut("items")
        && is_integer(items)
        && let Some(items) = items.as_object_mut()
    {
        items.entry("minimum").or_insert(1.into());
    }
}

/// utoipa writes the schema of a generic's argument out in full
/// (`ListJson<QuestJson>`'s `items` is a copy of `QuestJson`): each such
/// copy becomes a `$ref` to the named schema, so generated clients get one
/// `QuestJson` type, not one per list.
fn refer_to_named_schemas(doc: &mut Value) {
    let Some(named) = doc.pointer("/components/schemas").and_then(Value::as_object).cloned() else {
        return;
    };
    let named: Vec<(String, Value)> = named
        .into_iter()
        // A plain type (`{"type": "string"}`) says nothing worth a name.
        .filter(|(_, schema)| schema.as_object().is_some_and(|s| s.len() > 1))
        .map(|(name, schema)| (Ref::from_schema_name(name).ref_location, schema))
        .collect();
    let replace = |value: &mut Value| replace_copies(value, &named);
    if let Some(schemas) = doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut) {
        // The named schemas themselves stay; what is inside them is looked at.
        for schema in schemas.values_mut() {
            if let Some(fields) = schema.as_object_mut() {
                fields.values_mut().for_each(replace);
            }
        }
    }
    if let Some(paths) = doc.get_mut("paths") {
        replace(paths);
    }
}

fn replace_copies(value: &mut Value, named: &[(String, Value)]) {
    if let Some((location, _)) = named.iter().find(|(_, schema)| schema == value) {
        *value = serde_json::json!({ "$ref": location });
        return;
    }
    match value {
        Value::Object(fields) => fields.values_mut().for_each(|v| replace_copies(v, named)),
        Value::Array(items) => items.iter_mut().for_each(|v| replace_copies(v, named)),
        _ => {}
    }
}

/// Each operation of a path item.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        &mut item.get,
        &mut item.put,
        &mut item.post,
        &mut item.delete,
        &mut item.patch,
        &mut item.head,
        &mut item.options,
        &mut item.trace,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

/// The security schemes an operation accepts (any one of them will do).
fn accepted_schemes(operation: &Operation) -> Vec<String> {
    operation
        .security
        .iter()
        .flatten()
        .filter_map(|requirement| serde_json::to_value(requirement).ok())
        .filter_map(|value| value.as_object().map(|o| o.keys().cloned().collect::<Vec<_>>()))
        .flatten()
        .collect()
}

/// 401 and 403 from `Caller` / `Player` / `Admin`; 400, 408, 413 and 415
/// from `Body`; 400 from `PathId`, `QueryArgs` and `NoQuery`.
fn add_extractor_answers(operation: &mut Operation) {
    let schemes = accepted_schemes(operation);
    if !schemes.is_empty() {
        add_error(
            operation,
            401,
            "No valid token: missing, malformed, expired, or of the wrong kind",
        );
        let players = schemes.iter().any(|s| s == SESSION || s == SESSION_QUERY);
        let admin = schemes.iter().any(|s| s == ADMIN);
        if players != admin {
            let who = if admin {
                "This route needs the admin token"
            } else {
                "This route needs a player's session token, not the admin token"
            };
            add_error(operation, 403, who);
        }
    }
    let has_body = operation.request_body.is_some();
    let has_params = operation.parameters.iter().flatten().any(|parameter| match parameter {
        RefOr::T(p) => matches!(p.parameter_in, ParameterIn::Path | ParameterIn::Query),
        RefOr::Ref(_) => true,
    });
    let invalid = match (has_body, has_params) {
        (true, true) => "The body or a path or query parameter is invalid (the message names the field)",
        (true, false) => {
            "The body does not decode, or a field is missing, unknown or out of range (the message names it)"
        }
        (false, true) => "A path or query parameter is invalid or unknown (the message names it)",
        (false, false) => "",
    };
    if !invalid.is_empty() {
        add_error(operation, 400, invalid);
    }
    if has_body {
        add_error(
            operation,
            408,
            "The declared body did not arrive within the body read timeout",
        );
        add_error(operation, 413, "The body is larger than the server accepts");
        add_error(
            operation,
            415,
            "The body is neither application/json nor application/msgpack, or is compressed",
        );
    }
}

/// The answers of `startup::layers`: the rate limiter's 429 (not on the
/// paths it lets through), the panic catcher's 500, the timeout's 504.
fn add_layer_answers(path: &str, operation: &mut Operation) {
    if !crate::rate_limit::is_exempt(path) {
        add_error(
            operation,
            429,
            "Too many requests from this caller; retry after `Retry-After` seconds",
        );
    }
    add_error(
        operation,
        500,
        "An unexpected failure; the details are in the server's logs",
    );
    add_error(
        operation,
        504,
        "The request took longer than the gateway's request timeout",
    );
}

/// `Retry-After` on every 429 and 503 error (`ErrorBody::into_response_with`
/// and the rate limiter set it).
fn add_retry_after(operation: &mut Operation) {
    for (status, response) in operation.responses.responses.iter_mut() {
        let RefOr::T(response) = response else { continue };
        if (status == "429" || status == "503") && is_error_response(response) {
            response.headers.insert(
                "Retry-After".to_owned(),
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0))))
                        .description(Some("Seconds to wait before retrying"))
                        .build(),
                ),
            );
        }
    }
}

/// MessagePack beside JSON: for error bodies everywhere (`error_body`
/// re-encodes them), and for every body of a negotiated route.
fn add_msgpack(operation: &mut Operation) {
    let negotiated = !operation.tags.iter().flatten().any(|t| t == OPS_TAG);
    if negotiated
        && let Some(RefOr::T(body)) = operation.request_body.as_mut()
        && let Some(json) = body.content.get(JSON).cloned()
    {
        body.content.insert(MSGPACK.to_owned(), json);
    }
    for response in operation.responses.responses.values_mut() {
        let RefOr::T(response) = response else { continue };
        if !(negotiated || is_error_response(response)) {
            continue;
        }
        if let Some(json) = response.content.get(JSON).cloned() {
            response.content.insert(MSGPACK.to_owned(), json);
        }
    }
}

fn error_schema() -> RefOr<Schema> {
    RefOr::Ref(Ref::from_schema_name("ErrorBody"))
}

/// Whether a response's JSON body is the uniform error body.
fn is_error_response(response: &utoipa::openapi::Response) -> bool {
    let error = Ref::from_schema_name("ErrorBody").ref_location;
    matches!(
        response.content.get(JSON),
        Some(RefOr::T(Content { schema: Some(RefOr::Ref(r)), .. })) if r.ref_location == error
    )
}

/// Adds an error answer with the uniform body, unless the handler declared
/// that status itself (its description is the more precise one).
fn add_error(operation: &mut Operation, status: u16, description: &str) {
    let status = status.to_string();
    if operation.responses.responses.contains_key(&status) {
        return;
    }
    let response = utoipa::openapi::ResponseBuilder::new()
        .description(description)
        .content(JSON, Content::new(Some(error_schema())))
        .build();
    operation.responses.responses.insert(status, RefOr::T(response));
}
