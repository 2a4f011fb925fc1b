//! `GET /docs`: the API reference, drawn in the browser by Redoc from the
//! OpenAPI document this gateway serves (`/v1/openapi.json`). Redoc's
//! standalone bundle is compiled in (`assets/redoc/`, pinned and checked by
//! `scripts/vendor-redoc.sh`) and served beside the page under a versioned
//! path, so the page loads nothing from elsewhere and browsers may keep the
//! bundle for good.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The page, compiled in.
const PAGE: &str = include_str!("docs.html");

/// Redoc's standalone bundle (MIT; its notices are in
/// `assets/redoc/THIRD-PARTY-NOTICES.txt`).
const REDOC: &[u8] = include_bytes!("../../assets/redoc/redoc.standalone.js");

/// Where the page loads the bundle from: the version is in the path, so a
/// new bundle is a new URL.
pub const REDOC_PATH: &str = "/docs/redoc-2.5.4.js";

/// This origin only. Redoc styles itself with inline styles, runs its
/// search index in a worker made from a `blob:` URL, and fetches the
/// document from here.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'unsafe-inline'; worker-src blob:; connect-src 'self'; img-src 'self' data:; font-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Serves the API reference page.
#[utoipa::path(
    get,
    path = "/docs",
    operation_id = "apiReference",
    tag = crate::openapi::OPS_TAG,
    summary = "The API reference: this document, rendered in the browser (Redoc, served from here)",
    responses((status = 200, description = "The page", content_type = "text/html; charset=utf-8", body = String)),
)]
pub async fn page() -> Response {
    super::dashboard::self_contained_page(PAGE, CSP)
}

/// Serves Redoc's bundle (an asset of the page, not part of the API: it is
/// left out of the OpenAPI document).
pub async fn redoc() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=31536000, immutable"),
            ),
        ],
        REDOC,
    )
        .into_response()
}
