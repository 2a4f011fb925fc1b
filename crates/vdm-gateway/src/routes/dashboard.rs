//! `GET /dashboard`: one self-contained HTML page (inline CSS and JS, no
//! build step, nothing fetched from elsewhere) that plots the stats history
//! and shows the budgets' states, refreshing itself. The page is public; the
//! data it reads (`/v1/stats*`, `/v1/budgets`) needs the admin token, which
//! the operator types into the page (or passes once as `#token=...`, a
//! fragment browsers never send) and the page keeps in the tab's
//! sessionStorage.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

/// The page, compiled in.
const PAGE: &str = include_str!("dashboard.html");

/// Nothing but this origin, so the page cannot load or send anything
/// elsewhere; inline script and style are the page itself.
const CSP: &str = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// Serves the dashboard page.
#[utoipa::path(
    get,
    path = "/dashboard",
    operation_id = "dashboard",
    tag = crate::openapi::OPS_TAG,
    summary = "The operator dashboard: one self-contained HTML page (its data needs the admin token, typed into it)",
    responses((status = 200, description = "The page", content_type = "text/html; charset=utf-8", body = String)),
)]
pub async fn page() -> Response {
    self_contained_page(PAGE, CSP)
}

/// An HTML page compiled into the binary, with its content security
/// policy; never cached without asking again, and no referrer sent from it.
pub(crate) fn self_contained_page(page: &'static str, csp: &'static str) -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp)),
            (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
        ],
        page,
    )
        .into_response()
}
