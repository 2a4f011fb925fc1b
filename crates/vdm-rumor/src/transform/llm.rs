//! An OpenAI-compatible chat-completions client that transforms a whole
//! batch in one call, with a deadline, bounded retries with exponential
//! backoff, and the local transformer as fallback. Every outcome is counted:
//! `vdm_rumor_llm_requests_total{result}` per attempt,
//! `vdm_rumor_transform_fallbacks_total{reason}` per ask answered locally.
//!
//! The request asks for a JSON object `{"texts": [...]}` with one text per
//! retelling, in order; an answer that is not that (wrong count, not JSON,
//! an empty or over-long text) is "malformed" and answered locally.
//!
//! `https://` upstreams are reached over rustls, trusting the system's roots
//! and, when `VDM_LLM_CA_FILE` names one, a private CA as well.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode, header};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::json;
use vdm_kit::config::Secret;
use vdm_kit::validate::{Lines, check_text};

use super::{Ask, LocalTransformer, Transformed};
use crate::config::LlmConfig;
use crate::domain::MAX_TEXT_CHARS;

/// The largest upstream answer read (bigger ones are malformed).
const MAX_ANSWER_BYTES: usize = 1 << 20;

const SYSTEM_PROMPT: &str = "You retell rumors in a fantasy RPG. For each item of `retellings`, rewrite \
`text` as the listener would repeat it: the higher `intensity`, the more it drifts (numbers grow, names \
and places from `names`/`places` may be swapped); a gullible listener embellishes, a sceptical one \
hedges. Keep each text under 500 characters, one or two sentences, no preamble. Answer with a JSON \
object {\"texts\": [...]} holding exactly one string per retelling, in order.";

/// See the module docs.
pub struct LlmClient {
    http: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    endpoint: http::Uri,
    model: String,
    api_key: Option<Secret>,
    timeout: Duration,
    retries: u32,
    backoff: Duration,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The upstream could not be reached.
    #[error("upstream unreachable: {0}")]
    Connect(String),
    /// The upstream answered an error status.
    #[error("upstream answered {0}")]
    Status(StatusCode),
    /// The upstream did not answer in time.
    #[error("upstream timed out")]
    Timeout,
    /// The answer is not what was asked for.
    #[error("malformed upstream answer: {0}")]
    Malformed(String),
}

impl Failure {
    fn label(&self) -> &'static str {
        match self {
            Failure::Connect(_) | Failure::Status(_) => "error",
            Failure::Timeout => "timeout",
            Failure::Malformed(_) => "malformed",
        }
    }

    /// Worth another attempt: the upstream was unreachable, overloaded or
    /// failed. A malformed answer or a refused request would fail again.
    fn retryable(&self) -> bool {
        match self {
            Failure::Connect(_) => true,
            Failure::Status(status) => status.is_server_error() || *status == StatusCode::TOO_MANY_REQUESTS,
            Failure::Timeout | Failure::Malformed(_) => false,
        }
    }
}

#[derive(Deserialize)]
struct Completion {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Texts {
    Object { texts: Vec<String> },
    List(Vec<String>),
}

/// The TLS settings of https upstreams: the system's roots, plus the
/// certificate authorities of `ca_file` (PEM) when given.
fn tls_config(ca_file: Option<&std::path::Path>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for error in &native.errors {
        tracing::warn!(%error, "a system root certificate could not be read");
    }
    roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("VDM_LLM_CA_FILE {}: {e}", path.display()))?;
        if certs.is_empty() {
            return Err(format!("VDM_LLM_CA_FILE {}: no certificate in it", path.display()));
        }
        let (added, _) = roots.add_parsable_certificates(certs);
        if added == 0 {
            return Err(format!("VDM_LLM_CA_FILE {}: no usable certificate", path.display()));
        }
    }
    Ok(rustls::ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth())
}

impl LlmClient {
    /// A client of the upstream in `config` (connects on first use).
    pub fn new(config: &LlmConfig) -> Result<LlmClient, String> {
        let url = config.url.trim_end_matches('/');
        let url = if url.ends_with("/chat/completions") {
            url.to_owned()
        } else {
            format!("{url}/chat/completions")
        };
        let endpoint: http::Uri = url.parse().map_err(|e| format!("VDM_LLM_URL {url:?}: {e}"))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(config.timeout));
        // `https_or_http` unwraps the plain connector's refusal of https.
        connector.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(config.ca_file.as_deref())?)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        Ok(LlmClient {
            http: Client::builder(TokioExecutor::new())
                .pool_idle_timeout(Duration::from_secs(30))
                .build(connector),
            endpoint,
            model: config.model.clone(),
            api_key: config.api_key.clone(),
            timeout: config.timeout,
            retries: config.retries,
            backoff: config.backoff,
        })
    }

    /// `llm/<model>`.
    pub fn id(&self) -> String {
        format!("llm/{}", self.model)
    }

    /// Transforms a batch upstream, within the deadline; what the upstream
    /// cannot answer, the local transformer does.
    pub async fn transform_batch(&self, asks: &[Ask]) -> Vec<Transformed> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let mut attempt = 0;
        let failure = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                break Failure::Timeout;
            }
            let tried = Instant::now();
            let result = match tokio::time::timeout(remaining, self.call(asks)).await {
                Ok(result) => result,
                Err(_) => Err(Failure::Timeout),
            };
            metrics::histogram!("vdm_rumor_llm_request_duration_seconds").record(tried.elapsed().as_secs_f64());
            match result {
                Ok(texts) => {
                    metrics::counter!("vdm_rumor_llm_requests_total", "result" => "ok").increment(1);
                    return self.accept(asks, texts);
                }
                Err(failure) => {
                    metrics::counter!("vdm_rumor_llm_requests_total", "result" => failure.label()).increment(1);
                    tracing::warn!(attempt, error = %failure, asks = asks.len(), "rumor upstream attempt failed");
                    if !failure.retryable() || attempt >= self.retries {
                        break failure;
                    }
                }
            }
            // Exponential backoff, never past the deadline.
            let wait = self.backoff.saturating_mul(1 << attempt.min(16));
            let remaining = deadline.saturating_duration_since(Instant::now());
            if wait >= remaining {
                break Failure::Timeout;
            }
            tokio::time::sleep(wait).await;
            attempt += 1;
        };
        let reason = failure.label();
        tracing::warn!(
            error = %failure,
            asks = asks.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "rumor upstream failed; answering with the local transformer"
        );
        metrics::counter!("vdm_rumor_transform_fallbacks_total", "reason" => reason).increment(asks.len() as u64);
        asks.iter().map(fallback).collect()
    }

    /// Keeps the upstream's texts that are usable; the others are answered
    /// locally.
    fn accept(&self, asks: &[Ask], texts: Vec<String>) -> Vec<Transformed> {
        let by = self.id();
        asks.iter()
            .zip(texts)
            .map(|(ask, text)| {
                let text = text.trim();
                if !usable(text) {
                    metrics::counter!("vdm_rumor_transform_fallbacks_total", "reason" => "invalid_text").increment(1);
                    let chars = text.chars().count();
                    tracing::warn!(chars, "rumor upstream text unusable; answering it locally");
                    return fallback(ask);
                }
                Transformed {
                    text: text.to_owned(),
                    by: by.clone(),
                }
            })
            .collect()
    }

    async fn call(&self, asks: &[Ask]) -> Result<Vec<String>, Failure> {
        let retellings: Vec<_> = asks
            .iter()
            .map(|a| {
                json!({
                    "text": a.text,
                    "intensity": a.intensity,
                    "teller": a.teller,
                    "listener": a.listener,
                    "seed": a.seed,
                    "names": a.names,
                    "places": a.places,
                })
            })
            .collect();
        let body = json!({
            "model": self.model,
            "temperature": 0,
            "response_format": {"type": "json_object"},
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": json!({"retellings": retellings}).to_string()},
            ],
        });
        let mut request = Request::post(self.endpoint.clone())
            .header(header::CONTENT_TYPE, "application/json")
            .header(header::ACCEPT, "application/json");
        if let Some(key) = &self.api_key {
            request = request.header(header::AUTHORIZATION, format!("Bearer {}", key.expose()));
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| Failure::Connect(e.to_string()))?;
        let response = self
            .http
            .request(request)
            .await
            .map_err(|e| Failure::Connect(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            return Err(Failure::Status(status));
        }
        let bytes = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| Failure::Malformed(format!("reading the body: {e}")))?
            .to_bytes();
        parse_answer(&bytes, asks.len())
    }
}

/// The texts of a chat-completions answer: the first choice's content, a
/// JSON object `{"texts": [...]}` (or a bare array) with `expected` strings.
pub fn parse_answer(bytes: &[u8], expected: usize) -> Result<Vec<String>, Failure> {
    let completion: Completion =
        serde_json::from_slice(bytes).map_err(|e| Failure::Malformed(format!("not a chat completion: {e}")))?;
    let content = completion
        .choices
        .into_iter()
        .next()
        .ok_or_else(|| Failure::Malformed("no choices".to_owned()))?
        .message
        .content;
    // Some models wrap JSON in a code fence.
    let content = content
        .trim()
        .trim_start_matches("```json")
        .trim_start_matches("```")
        .trim_end_matches("```")
        .trim();
    let texts = match serde_json::from_str::<Texts>(content) {
        Ok(Texts::Object { texts }) | Ok(Texts::List(texts)) => texts,
        Err(e) => return Err(Failure::Malformed(format!("content is not {{\"texts\": [...]}}: {e}"))),
    };
    if texts.len() != expected {
        return Err(Failure::Malformed(format!(
            "{} texts for {expected} retellings",
            texts.len()
        )));
    }
    Ok(texts)
}

/// Whether an upstream text (trimmed) can be shown to players: 1 to
/// [`MAX_TEXT_CHARS`] characters under the text policy players' own texts
/// are held to (no bidi controls, nothing invisible-only), and without tabs.
/// The upstream is not trusted to write what a client renders safely.
fn usable(text: &str) -> bool {
    let chars = text.chars().count();
    chars > 0 && chars <= MAX_TEXT_CHARS && !text.contains('\t') && check_text("text", text, Lines::Many).is_ok()
}

fn fallback(ask: &Ask) -> Transformed {
    let local = LocalTransformer.transform(ask);
    Transformed {
        text: local.text,
        by: format!("{} (fallback)", local.by),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(content: &str) -> Vec<u8> {
        json!({"choices": [{"message": {"role": "assistant", "content": content}}]})
            .to_string()
            .into_bytes()
    }

    #[test]
    fn upstream_texts_follow_the_text_policy() {
        assert!(usable("Wolves at the mill.\nOr so they say."));
        assert!(!usable(""));
        assert!(!usable(&"x".repeat(MAX_TEXT_CHARS + 1)));
        assert!(!usable("wolves\tat the mill"));
        assert!(!usable("wolves \u{202E}llim eht ta"));
        assert!(!usable("\u{200B}\u{200B}"));
        assert!(!usable("a\u{1b}[2Jb"));
    }

    #[test]
    fn parses_objects_lists_and_fences_and_refuses_the_rest() {
        assert_eq!(parse_answer(&answer(r#"{"texts":["a","b"]}"#), 2).unwrap(), ["a", "b"]);
        assert_eq!(parse_answer(&answer(r#"["a"]"#), 1).unwrap(), ["a"]);
        assert_eq!(
            parse_answer(&answer("```json\n{\"texts\":[\"a\"]}\n```"), 1).unwrap(),
            ["a"]
        );
        for bad in [
            answer(r#"{"texts":["a"]}"#),
            answer("sure! here you go"),
            b"{}".to_vec(),
            b"not json".to_vec(),
            br#"{"choices": []}"#.to_vec(),
        ] {
            assert!(matches!(parse_answer(&bad, 2), Err(Failure::Malformed(_))));
        }
    }
}
