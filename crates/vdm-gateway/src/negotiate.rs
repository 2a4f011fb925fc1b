//! Content negotiation: JSON by default, MessagePack when the client asks
//! (`Accept` / `Content-Type: application/msgpack`), and extractors whose
//! rejections are JSON errors naming what was wrong.

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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `application/msgpack` (maps with field names, the same shape as JSON).
    Msgpack,
}

impl Format {
    /// The format a client accepts, from its `Accept` header.
    pub fn from_accept(headers: &HeaderMap) -> Format {
        let accepts_msgpack = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains(MSGPACK) || v.contains("application/x-msgpack"));
        if accepts_msgpack { Format::Msgpack } else { Format::Json }
    }

    fn content_type(self) -> HeaderValue {
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
        let bytes = Bytes::from_request(req, state).await.map_err(body_rejection)?;
        decode_body(format, &bytes).map(Body)
    }
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
