//! A kept body: encoded once, hashed into a strong ETag, answered as a 200
//! or, when the client already holds it, as a 304.

use std::time::Instant;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Serialize;

use crate::error::{GatewayError, GatewayResult};
use crate::negotiate::Format;

/// What an entry costs beyond its body: the key, the ETag, moka's own
/// bookkeeping (an estimate, so that many tiny bodies still count).
const ENTRY_OVERHEAD: usize = 160;

/// A ready-to-send body.
#[derive(Debug)]
pub(super) struct Entry {
    format: Format,
    body: Bytes,
    etag: HeaderValue,
    /// From when a hit also renews the entry in the background (before
    /// the TTL ends it).
    refresh_at: Instant,
}

impl Entry {
    /// Encodes `value`, to be renewed from `refresh_at`; the ETag is a
    /// hash of the body, tagged with the format so a JSON and a
    /// MessagePack body never share one.
    pub(super) fn encode<T: Serialize>(format: Format, value: &T, refresh_at: Instant) -> GatewayResult<Entry> {
        let body = format.encode(value)?;
        let tag = match format {
            Format::Json => 'j',
            Format::Msgpack => 'm',
        };
        let hash = vdm_kit::hash::Fnv64::default().bytes(&body).hex();
        let etag = HeaderValue::from_str(&format!("\"{tag}{hash}\""))
            .map_err(|e| GatewayError::Internal(format!("etag: {e}")))?;
        Ok(Entry {
            format,
            body: Bytes::from(body),
            etag,
            refresh_at,
        })
    }

    /// Whether a hit should renew the entry now.
    pub(super) fn refresh_due(&self) -> bool {
        Instant::now() >= self.refresh_at
    }

    pub(super) fn weight(&self) -> u32 {
        u32::try_from(self.body.len() + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
    }

    /// The 200 with the body, or a 304 when the client already holds it.
    pub(super) fn respond(&self, request: &HeaderMap) -> Response {
        // The body depends on `Accept`: shared HTTP caches must key on it.
        let vary = HeaderValue::from_static("accept");
        if none_match(request, &self.etag) {
            return (
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, self.etag.clone()), (header::VARY, vary)],
            )
                .into_response();
        }
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, self.format.content_type()),
                (header::ETAG, self.etag.clone()),
                (header::VARY, vary),
            ],
            self.body.clone(),
        )
            .into_response()
    }
}

/// Whether `If-None-Match` names `etag` (or is `*`). The comparison is the
/// weak one RFC 9110 asks of `If-None-Match`: a `W/` prefix is ignored.
fn none_match(request: &HeaderMap, etag: &HeaderValue) -> bool {
    let etag = etag.as_bytes();
    request
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(|tag| tag.trim_ascii())
        .any(|tag| tag == b"*" || tag.strip_prefix(b"W/").unwrap_or(tag) == etag)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_lists_and_weak_tags_match() {
        let etag = HeaderValue::from_static("\"j0123\"");
        let with = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_static(value));
            none_match(&headers, &etag)
        };
        assert!(with("\"j0123\""));
        assert!(with("\"x\", W/\"j0123\""));
        assert!(with("*"));
        assert!(!with("\"m0123\""));
        assert!(!none_match(&HeaderMap::new(), &etag));
    }
}
