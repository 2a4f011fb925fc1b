//! A small JSON client of the gateway's REST API, as an operator's tool
//! calls it: plain HTTP/1.1 (inside a cluster the gateway's Service; TLS,
//! when wanted, ends at the ingress), the admin token as a bearer token,
//! and an error that names the request and the gateway's error body.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::VdmError;

/// How long one request may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// A gateway at a base URL, called as an operator.
#[derive(Debug, Clone)]
pub struct Gateway {
    base: String,
    token: Option<HeaderValue>,
    http: Client<HttpConnector, Full<Bytes>>,
}

/// What a write answered: the body, and whether it created something
/// (`201`) or replayed an earlier create (`idempotent-replayed: true`).
#[derive(Debug)]
pub struct Written<T> {
    /// The answer's body.
    pub body: T,
    /// The answer was `201 Created`.
    pub created: bool,
    /// An earlier request with the same idempotency key did the write.
    pub replayed: bool,
}

impl Gateway {
    /// A client of the gateway at `base` (`http://host:port`), sending
    /// `token` (the admin token) when given.
    pub fn new(base: &str, token: Option<&str>) -> Result<Gateway, VdmError> {
        let base = base.trim_end_matches('/').to_owned();
        let uri: Uri = base
            .parse()
            .map_err(|_| VdmError::Other(format!("--url {base:?} is not a URL")))?;
        if uri.scheme_str() != Some("http") || uri.host().is_none() {
            return Err(VdmError::Other(format!(
                "--url {base:?}: expected http://host[:port] (the gateway, or its Service in the cluster)"
            )));
        }
        let token = token
            .map(|token| {
                HeaderValue::from_str(&format!("Bearer {token}"))
                    .map_err(|_| VdmError::Other("VDM_ADMIN_TOKEN is not a valid header value".to_owned()))
            })
            .transpose()?;
        let http = Client::builder(TokioExecutor::new()).build_http();
        Ok(Gateway { base, token, http })
    }

    /// `GET path` answered 200 with a `T`.
    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, VdmError> {
        Ok(self.call::<(), T>(Method::GET, path, None, None).await?.body)
    }

    /// Every item of a paged list (`{items, next_cursor}`) at `path`.
    pub async fn list<T: DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, VdmError> {
        #[derive(serde::Deserialize)]
        struct Page<T> {
            items: Vec<T>,
            next_cursor: Option<String>,
        }
        let mut all = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let page_path = match &cursor {
                None => format!("{path}?limit=100"),
                Some(cursor) => format!("{path}?limit=100&cursor={}", query_escape(cursor)),
            };
            let page: Page<T> = self.get(&page_path).await?;
            all.extend(page.items);
            match page.next_cursor {
                Some(next) if !next.is_empty() => cursor = Some(next),
                _ => return Ok(all),
            }
        }
    }

    /// A write (`PUT`, `POST`, `PATCH`) of `body` to `path`, with an
    /// idempotency key when given; any 2xx is success.
    pub async fn write<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        idempotency_key: Option<&str>,
    ) -> Result<Written<T>, VdmError> {
        self.call(method, path, Some(body), idempotency_key).await
    }

    async fn call<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        idempotency_key: Option<&str>,
    ) -> Result<Written<T>, VdmError> {
        let what = format!("{method} {path}");
        let fail = |problem: String| VdmError::Other(format!("{what}: {problem}"));
        let mut request = Request::builder()
            .method(method.clone())
            .uri(format!("{}{path}", self.base))
            .header(header::ACCEPT, "application/json");
        if let Some(token) = &self.token {
            request = request.header(header::AUTHORIZATION, token.clone());
        }
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let payload = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Bytes::from(serde_json::to_vec(body).map_err(|e| fail(e.to_string()))?)
            }
            None => Bytes::new(),
        };
        let request = request.body(Full::new(payload)).map_err(|e| fail(e.to_string()))?;
        let response = tokio::time::timeout(TIMEOUT, self.http.request(request))
            .await
            .map_err(|_| fail(format!("no answer within {}s", TIMEOUT.as_secs())))?
            .map_err(|e| {
                fail(format!(
                    "cannot reach the gateway at {}: {}",
                    self.base,
                    error_chain(&e)
                ))
            })?;
        let status = response.status();
        let replayed = response
            .headers()
            .get("idempotent-replayed")
            .is_some_and(|v| v.as_bytes() == b"true");
        let bytes = tokio::time::timeout(TIMEOUT, response.into_body().collect())
            .await
            .map_err(|_| fail("the answer's body did not arrive in time".to_owned()))?
            .map_err(|e| fail(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(fail(error_text(status, &bytes)));
        }
        let body = serde_json::from_slice(&bytes).map_err(|e| fail(format!("unexpected answer: {e}")))?;
        Ok(Written {
            body,
            created: status == StatusCode::CREATED,
            replayed,
        })
    }
}

/// The gateway's `{"error": {"code", "message"}}` as one line.
fn error_text(status: StatusCode, bytes: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Body {
        error: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        code: String,
        message: String,
    }
    match serde_json::from_slice::<Body>(bytes) {
        Ok(body) => format!("{status}: {} ({})", body.error.message, body.error.code),
        Err(_) => format!(
            "{status}: {}",
            String::from_utf8_lossy(bytes).chars().take(200).collect::<String>()
        ),
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

/// Escapes a cursor for a query string (cursors are ASCII, but may hold
/// characters a query reserves).
fn query_escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for byte in raw.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
