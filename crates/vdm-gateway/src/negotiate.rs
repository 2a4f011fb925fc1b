//! Content negotiation: JSON by default, MessagePack when the client asks
//! (`Accept` / `Content-Type: application/msgpack`), and extractors whose
//! rejections are JSON errors naming what was wrong.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;
use serde::de::DeserializeOwned;
use vdm_kit::ErrorCode;

use crate::error::GatewayError;

/// The deepest nesting a MessagePack body may have: serde_json's own
/// recursion limit, so both formats refuse the same (deep) bodies before
/// they cost stack.
pub const MAX_DEPTH: usize = 128;

/// The media type of MessagePack bodies.
pub const MSGPACK: &str = "application/msgpack";

/// The encoding of a body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `application/msgpack` (maps with field names, the same shape as JSON).
    Msgpack,
}

impl Format {
    /// The format a client prefers, from its `Accept` header(s): the one
    /// with the highest q-value (RFC 9110, 12.5.1), each format taking the
    /// q of the most specific range that matches it (`application/msgpack`
    /// over `application/*` over `*/*`); on a tie the range listed first
    /// wins, and JSON when one range covers both. `q=0` means "not this
    /// one". JSON when the header is absent or accepts neither: a client
    /// that cannot take JSON still gets a readable error.
    pub fn from_accept(headers: &HeaderMap) -> Format {
        let ranges: Vec<(&str, f32)> = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(media_range)
            .collect();
        let json = preference(&ranges, &["application/json"]);
        let msgpack = preference(&ranges, &[MSGPACK, "application/x-msgpack"]);
        match (json, msgpack) {
            (_, None) => Format::Json,
            (None, Some(_)) => Format::Msgpack,
            (Some((json_q, json_at)), Some((msgpack_q, msgpack_at))) => {
                if msgpack_q > json_q || (msgpack_q == json_q && msgpack_at < json_at) {
                    Format::Msgpack
                } else {
                    Format::Json
                }
            }
        }
    }

    /// The `Content-Type` of a body in this format.
    pub(crate) fn content_type(self) -> HeaderValue {
        match self {
            Format::Json => HeaderValue::from_static("application/json"),
            Format::Msgpack => HeaderValue::from_static(MSGPACK),
        }
    }

    /// Encodes `value` in this format.
    pub fn encode<T: Serialize>(self, value: &T) -> Result<Vec<u8>, GatewayError> {
        match self {
            Format::Json => {
                serde_json::to_vec(value).map_err(|e| GatewayError::Internal(format!("json encoding: {e}")))
            }
            Format::Msgpack => {
                rmp_serde::to_vec_named(value).map_err(|e| GatewayError::Internal(format!("msgpack encoding: {e}")))
            }
        }
    }
}

/// One element of an `Accept` header: its lowercased media range and its
/// q-value. A q that is not a number in 0..=1 drops the element (it cannot
/// be honoured as meant).
fn media_range(element: &str) -> Option<(&str, f32)> {
    let mut parts = element.split(';');
    let range = parts.next()?.trim();
    if range.is_empty() {
        return None;
    }
    let mut q = 1.0;
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        if name.trim().eq_ignore_ascii_case("q") {
            q = value.trim().parse::<f32>().ok().filter(|q| (0.0..=1.0).contains(q))?;
        }
    }
    Some((range, q))
}

/// How much `ranges` want a format known by `names`: the q of the most
/// specific matching range and that range's position, or `None` when no
/// range matches or the match has `q=0`.
fn preference(ranges: &[(&str, f32)], names: &[&str]) -> Option<(f32, usize)> {
    let specificity = |range: &str| -> Option<u8> {
        if names.iter().any(|name| range.eq_ignore_ascii_case(name)) {
            Some(2)
        } else if range.eq_ignore_ascii_case("application/*") {
            Some(1)
        } else if range == "*/*" {
            Some(0)
        } else {
            None
        }
    };
    let mut best: Option<(u8, f32, usize)> = None;
    for (at, (range, q)) in ranges.iter().enumerate() {
        let Some(level) = specificity(range) else { continue };
        if best.is_none_or(|(best_level, _, _)| level > best_level) {
            best = Some((level, *q, at));
        }
    }
    best.filter(|(_, q, _)| *q > 0.0).map(|(_, q, at)| (q, at))
}

impl<S: Send + Sync> FromRequestParts<S> for Format {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Format, GatewayError> {
        Ok(Format::from_accept(&parts.headers))
    }
}

/// A response body encoded in the negotiated format.
pub struct Reply<T> {
    status: StatusCode,
    format: Format,
    body: T,
}

impl<T: Serialize> Reply<T> {
    /// A 200 with `body`.
    pub fn ok(format: Format, body: T) -> Reply<T> {
        Reply {
            status: StatusCode::OK,
            format,
            body,
        }
    }

    /// A 202 with `body`: taken in, with effects that are not read back.
    pub fn accepted(format: Format, body: T) -> Reply<T> {
        Reply {
            status: StatusCode::ACCEPTED,
            format,
            body,
        }
    }

    /// A 201 with `body`.
    pub fn created(format: Format, body: T) -> Reply<T> {
        Reply {
            status: StatusCode::CREATED,
            format,
            body,
        }
    }
}

impl<T: Serialize> IntoResponse for Reply<T> {
    fn into_response(self) -> Response {
        match self.format.encode(&self.body) {
            Ok(bytes) => (self.status, [(header::CONTENT_TYPE, self.format.content_type())], bytes).into_response(),
            Err(err) => err.into_response(),
        }
    }
}

/// A request body decoded from JSON or MessagePack by its `Content-Type`.
pub struct Body<T>(pub T);

impl<T, S> FromRequest<S> for Body<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = GatewayError;

    async fn from_request(req: Request, state: &S) -> Result<Body<T>, GatewayError> {
        let format = match req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|v| v.to_str().unwrap_or(""))
        {
            // A missing Content-Type is read as JSON, as most clients mean.
            None => Format::Json,
            Some(ct) if ct.starts_with("application/json") => Format::Json,
            Some(ct) if ct.starts_with(MSGPACK) || ct.starts_with("application/x-msgpack") => Format::Msgpack,
            Some(ct) => {
                return Err(GatewayError::api(
                    ErrorCode::UnsupportedMediaType,
                    format!("content type {ct:?} is not supported; send application/json or {MSGPACK}"),
                ));
            }
        };
        // Request bodies are read as sent: a compressed one would only fail
        // to decode with a confusing message (and decompressing would need
        // its own bomb guard), so it is refused up front, by name.
        if let Some(encoding) = req.headers().get(header::CONTENT_ENCODING) {
            let encoding = String::from_utf8_lossy(encoding.as_bytes()).into_owned();
            if !encoding.trim().eq_ignore_ascii_case("identity") {
                return Err(GatewayError::api(
                    ErrorCode::UnsupportedMediaType,
                    format!(
                        "Content-Encoding {encoding:?} is not supported for request bodies; send them uncompressed"
                    ),
                ));
            }
        }
        let watch = req.extensions().get::<BodyWatch>().cloned();
        let read = Bytes::from_request(req, state);
        let bytes = match &watch {
            Some(watch) => tokio::time::timeout_at(watch.deadline, read)
                .await
                .map_err(|_| body_timeout(watch))?,
            None => read.await,
        }
        .map_err(body_rejection)?;
        if let Some(watch) = &watch {
            watch.read.store(true, Ordering::Release);
        }
        decode_body(format, &bytes).map(Body)
    }
}

/// What the body guard (`middleware::rules`) tells the [`Body`]
/// extractor about a request that declares a body: by when the body must
/// have arrived, and a flag the extractor sets once it has read all of it
/// (so the guard knows whether the connection can carry another request).
#[derive(Debug, Clone)]
pub struct BodyWatch {
    /// When the client must have sent the whole body.
    pub deadline: tokio::time::Instant,
    /// The read timeout the deadline came from, for the error message.
    pub timeout: std::time::Duration,
    /// Set once the body was read to its end.
    pub read: Arc<AtomicBool>,
}

impl BodyWatch {
    /// A watch whose deadline is `timeout` from now.
    pub fn starting_now(timeout: std::time::Duration) -> BodyWatch {
        BodyWatch {
            deadline: tokio::time::Instant::now() + timeout,
            timeout,
            read: Arc::default(),
        }
    }

    /// Whether the body was read to its end.
    pub fn was_read(&self) -> bool {
        self.read.load(Ordering::Acquire)
    }
}

/// A body that did not arrive in time: the client is too slow (or sends
/// nothing after its headers), which is the client's failure, a 408, not
/// the gateway's 504.
fn body_timeout(watch: &BodyWatch) -> GatewayError {
    GatewayError::api(
        ErrorCode::RequestTimeout,
        format!(
            "the request body did not arrive within {} ms",
            watch.timeout.as_millis()
        ),
    )
}

/// Decodes a request body of `format`: what the [`Body`] extractor does once
/// the bytes are read. Either format must hold one value and nothing after
/// it (bar JSON whitespace).
pub fn decode_body<T: DeserializeOwned>(format: Format, bytes: &[u8]) -> Result<T, GatewayError> {
    match format {
        Format::Json => {
            let mut de = serde_json::Deserializer::from_slice(bytes);
            let value = serde_path_to_error::deserialize(&mut de).map_err(|e| invalid_body("JSON", e))?;
            de.end()
                .map_err(|e| GatewayError::invalid(format!("invalid JSON body: {e}")))?;
            Ok(value)
        }
        Format::Msgpack => {
            let mut rest = bytes;
            let mut de = rmp_serde::Deserializer::new(&mut rest);
            de.set_max_depth(MAX_DEPTH);
            let value = serde_path_to_error::deserialize(&mut de).map_err(|e| invalid_body("MessagePack", e))?;
            msgpack_end(rest).map_err(|e| GatewayError::invalid(format!("invalid MessagePack body: {e}")))?;
            Ok(value)
        }
    }
}

/// Refuses bytes left after a MessagePack value (`rest`), as `de.end()`
/// does for JSON: a body or frame is one value, not a value and a smuggled
/// second one.
pub fn msgpack_end(rest: &[u8]) -> Result<(), String> {
    if rest.is_empty() {
        Ok(())
    } else {
        Err(format!("{} bytes after the value", rest.len()))
    }
}

/// A body that does not decode: the message names the field at fault
/// (`truth: invalid type: string "very", expected f32`) when there is one.
fn invalid_body<E: std::fmt::Display>(format: &str, err: serde_path_to_error::Error<E>) -> GatewayError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    if path == "." || path.is_empty() {
        GatewayError::invalid(format!("invalid {format} body: {inner}"))
    } else {
        GatewayError::invalid(format!("invalid {format} body: {path}: {inner}"))
    }
}

fn body_rejection(rejection: BytesRejection) -> GatewayError {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        GatewayError::api(
            ErrorCode::PayloadTooLarge,
            "request body is larger than the server accepts",
        )
    } else {
        GatewayError::invalid(format!("cannot read the request body: {}", rejection.body_text()))
    }
}

/// A positive integer id from the path's single `{id}` segment.
pub struct PathId(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for PathId {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<PathId, GatewayError> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| GatewayError::invalid(e.body_text()))?;
        match raw.parse::<i64>() {
            Ok(id) if id > 0 => Ok(PathId(id)),
            _ => Err(GatewayError::invalid(format!(
                "path id must be a positive integer, got {raw:?}"
            ))),
        }
    }
}

impl utoipa::IntoParams for PathId {
    fn into_params(
        _parameter_in: impl Fn() -> Option<utoipa::openapi::path::ParameterIn>,
    ) -> Vec<utoipa::openapi::path::Parameter> {
        use utoipa::openapi::Required;
        use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        vec![
            ParameterBuilder::new()
                .name("id")
                .parameter_in(ParameterIn::Path)
                .required(Required::True)
                .description(Some("The id: a positive integer"))
                .schema(Some(
                    ObjectBuilder::new()
                        .schema_type(Type::Integer)
                        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                        .minimum(Some(1)),
                ))
                .build(),
        ]
    }
}

/// Query parameters, with a JSON 400 naming the bad parameter.
pub struct QueryArgs<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<QueryArgs<T>, GatewayError> {
        decode_query(&parts.uri).map(QueryArgs)
    }
}

/// A route that takes no query parameters: any parameter is a 400 naming
/// it, as on routes with a query type, so that a client never believes it
/// set something (a `player_id=`, say) that was ignored.
pub struct NoQuery;

/// The query of a route that has none.
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct NoParameters {}

impl<S: Send + Sync> FromRequestParts<S> for NoQuery {
    type Rejection = GatewayError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<NoQuery, GatewayError> {
        decode_query::<NoParameters>(&parts.uri).map(|_| NoQuery)
    }
}

/// Decodes the query string of `uri`: what the [`QueryArgs`] extractor does.
pub fn decode_query<T: DeserializeOwned>(uri: &axum::http::Uri) -> Result<T, GatewayError> {
    axum::extract::Query::<T>::try_from_uri(uri)
        .map(|axum::extract::Query(v)| v)
        .map_err(|e| GatewayError::invalid(e.body_text()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msgpack_only_when_asked() {
        let mut headers = HeaderMap::new();
        assert_eq!(Format::from_accept(&headers), Format::Json);
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("application/msgpack, application/json;q=0.5"),
        );
        assert_eq!(Format::from_accept(&headers), Format::Msgpack);
    }

    fn accepting(values: &[&'static str]) -> Format {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::ACCEPT, HeaderValue::from_static(value));
        }
        Format::from_accept(&headers)
    }

    #[test]
    fn q_values_are_honoured() {
        use Format::{Json, Msgpack};
        let cases: [(&[&'static str], Format); 17] = [
            // q=0 is a refusal, not a preference.
            (&["application/msgpack;q=0"], Json),
            (&["application/msgpack; q=0.0, application/json"], Json),
            (&["application/json;q=0, application/msgpack;q=0"], Json),
            // The highest q wins, wherever it is listed.
            (&["application/json;q=0.4, application/msgpack;q=0.9"], Msgpack),
            (&["application/msgpack;q=0.4, application/json;q=0.9"], Json),
            (&["application/x-msgpack;q=1, application/json;q=0.99"], Msgpack),
            // Ties go to the one listed first.
            (&["application/json, application/msgpack"], Json),
            (&["application/msgpack, application/json"], Msgpack),
            (&["application/msgpack;q=0.5, application/json;q=0.5"], Msgpack),
            // Across several Accept headers, in order.
            (&["application/json;q=0.5", "application/msgpack"], Msgpack),
            // The most specific range decides a format's q.
            (&["application/msgpack;q=0.5, */*"], Json),
            (&["application/msgpack, */*;q=0.1"], Msgpack),
            (&["*/*, application/msgpack;q=0"], Json),
            (&["application/json;q=0, */*"], Msgpack),
            // Wildcards alone, or unusable values: JSON.
            (&["*/*"], Json),
            (&["application/*;q=0.8, text/html"], Json),
            (&["application/msgpack;q=lots"], Json),
        ];
        for (values, expected) in cases {
            assert_eq!(accepting(values), expected, "{values:?}");
        }
        assert_eq!(accepting(&["APPLICATION/MSGPACK;Q=0.7"]), Msgpack);
        assert_eq!(accepting(&[]), Json);
    }

    #[test]
    fn a_body_is_one_value_in_either_format() {
        #[derive(Debug, serde::Deserialize, serde::Serialize)]
        struct Device {
            device_id: String,
        }
        let packed = rmp_serde::to_vec_named(&Device {
            device_id: "d-1".into(),
        })
        .unwrap();
        assert_eq!(
            decode_body::<Device>(Format::Msgpack, &packed).unwrap().device_id,
            "d-1"
        );
        // Found by the fuzzer (fuzz/corpus/body_msgpack/regression-value-after-body):
        // a second value after the body was ignored.
        let mut smuggled = packed.clone();
        smuggled.push(0xc0);
        let err = decode_body::<Device>(Format::Msgpack, &smuggled).unwrap_err();
        assert!(err.to_string().contains("1 bytes after the value"), "{err}");
        assert!(decode_body::<Device>(Format::Json, br#"{"device_id":"d"} "#).is_ok());
        assert!(decode_body::<Device>(Format::Json, br#"{"device_id":"d"} 1"#).is_err());
    }
}
