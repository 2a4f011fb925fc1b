//! A kept answer: either a body encoded once, hashed into a strong ETag
//! and answered as a 200 or, when the client already holds it, as a 304;
//! or a service's answer kept as it came, for a composed answer (the
//! bootstrap) to take its public parts from.

use std::any::Any;
use std::sync::Arc;
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

/// A kept answer.
pub(super) struct Entry {
    held: Held,
    /// From when a hit also renews the entry in the background (before
    /// the TTL ends it); set when the fill lands.
    refresh_at: Instant,
}

enum Held {
    /// A ready-to-send body.
    Body {
        format: Format,
        body: Bytes,
        etag: HeaderValue,
    },
    /// A service's answer, and what it weighs (its encoded size).
    Value {
        value: Arc<dyn Any + Send + Sync>,
        size: usize,
    },
}

impl Entry {
    /// Encodes `value`; the ETag is a hash of the body, tagged with the
    /// format so a JSON and a MessagePack body never share one.
    pub(super) fn encode<T: Serialize>(format: Format, value: &T) -> GatewayResult<Entry> {
        let body = format.encode(value)?;
        let tag = match format {
            Format::Json => 'j',
            Format::Msgpack => 'm',
        };
        let hash = vdm_kit::hash::Fnv64::default().bytes(&body).hex();
        let etag = HeaderValue::from_str(&format!("\"{tag}{hash}\""))
            .map_err(|e| GatewayError::Internal(format!("etag: {e}")))?;
        Ok(Entry {
            held: Held::Body {
                format,
                body: Bytes::from(body),
                etag,
            },
            refresh_at: Instant::now(),
        })
    }

    /// Keeps a service's answer as it came (`size`: its encoded size).
    pub(super) fn value<M: Any + Send + Sync>(value: Arc<M>, size: usize) -> Entry {
        Entry {
            held: Held::Value { value, size },
            refresh_at: Instant::now(),
        }
    }

    /// Renews the entry from `at` on.
    pub(super) fn refresh_from(mut self, at: Instant) -> Entry {
        self.refresh_at = at;
        self
    }

    /// Whether a hit should renew the entry now.
    pub(super) fn refresh_due(&self) -> bool {
        Instant::now() >= self.refresh_at
    }

    pub(super) fn weight(&self) -> u32 {
        let size = match &self.held {
            Held::Body { body, .. } => body.len(),
            Held::Value { size, .. } => *size,
        };
        u32::try_from(size + ENTRY_OVERHEAD).unwrap_or(u32::MAX)
    }

    /// The size of the kept body; `None` for a kept service answer.
    pub(super) fn body_len(&self) -> Option<usize> {
        match &self.held {
            Held::Body { body, .. } => Some(body.len()),
            Held::Value { .. } => None,
        }
    }

    /// The kept service answer, when this entry holds one of type `M`.
    pub(super) fn held_value<M: Any + Send + Sync>(&self) -> Option<Arc<M>> {
        match &self.held {
            Held::Value { value, .. } => value.clone().downcast::<M>().ok(),
            Held::Body { .. } => None,
        }
    }

    /// The 200 with the body, or a 304 when the client already holds it.
    pub(super) fn respond(&self, request: &HeaderMap) -> Response {
        let Held::Body { format, body, etag } = &self.held else {
            // Keys of kept values are never answered as bodies.
            return GatewayError::Internal("edge cache entry holds no body".to_owned()).into_response();
        };
        // The body depends on `Accept`: shared HTTP caches must key on it.
        let vary = HeaderValue::from_static("accept");
        if none_match(request, etag) {
            return (
                StatusCode::NOT_MODIFIED,
                [(header::ETAG, etag.clone()), (header::VARY, vary)],
            )
                .into_response();
        }
        (
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, format.content_type()),
                (header::ETAG, etag.clone()),
                (header::VARY, vary),
            ],
            body.clone(),
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
