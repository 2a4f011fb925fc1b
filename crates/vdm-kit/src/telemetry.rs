//! Logs and traces: one `tracing` subscriber per process, with an
//! OpenTelemetry layer exporting over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, and W3C trace-context propagation
//! helpers for HTTP headers and gRPC metadata. [`quiet`] turns a start-up's
//! INFO lines into DEBUG ones for the log output.

use std::sync::atomic::{AtomicUsize, Ordering};

use opentelemetry::propagation::{Extractor, Injector, TextMapCompositePropagator};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{KeyValue, global};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::{BaggagePropagator, TraceContextPropagator};
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::level_filters::LevelFilter;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::{Context, Filter, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::{ConfigError, Env};

/// How a process logs and traces.
#[derive(Debug, Clone)]
pub struct TelemetryConfig {
    /// `service.name` of exported spans.
    pub service_name: String,
    /// `deployment.environment.name` of exported spans.
    pub environment: String,
    /// OTLP/gRPC collector endpoint; `None` exports nothing.
    pub otlp_endpoint: Option<String>,
    /// An `EnvFilter` directive such as `info,vdm_quest=debug`.
    pub log_filter: String,
    /// Logs as JSON lines instead of text.
    pub log_json: bool,
}

impl TelemetryConfig {
    /// Reads `OTEL_EXPORTER_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `VDM_ENV`,
    /// `VDM_LOG` (or `RUST_LOG`; default `info`) and `VDM_LOG_FORMAT`
    /// (`text` or `json`).
    pub fn from_env(env: &Env, default_service_name: &str) -> Result<TelemetryConfig, ConfigError> {
        let log_json = match env.string("VDM_LOG_FORMAT").as_deref() {
            None | Some("text") => false,
            Some("json") => true,
            Some(other) => {
                return Err(ConfigError::new(
                    "VDM_LOG_FORMAT",
                    format!("expected text or json, got {other:?}"),
                ));
            }
        };
        let log_filter = env
            .string("VDM_LOG")
            .or_else(|| env.string("RUST_LOG"))
            .unwrap_or_else(|| "info".to_owned());
        if let Err(err) = EnvFilter::try_new(&log_filter) {
            return Err(ConfigError::new("VDM_LOG", err.to_string()));
        }
        Ok(TelemetryConfig {
            service_name: env
                .string("OTEL_SERVICE_NAME")
                .unwrap_or_else(|| default_service_name.to_owned()),
            environment: env.string("VDM_ENV").unwrap_or_else(|| "local".to_owned()),
            otlp_endpoint: env.string("OTEL_EXPORTER_OTLP_ENDPOINT"),
            log_filter,
            log_json,
        })
    }
}

/// Keeps the trace exporter alive; dropping it flushes pending spans.
pub struct TelemetryGuard {
    provider: Option<SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(provider) = self.provider.take()
            && let Err(err) = provider.shutdown()
        {
            eprintln!("trace exporter shutdown failed: {err}");
        }
    }
}

/// A telemetry set-up failure.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// The OTLP exporter could not be built.
    #[error("cannot build the OTLP exporter")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
    /// A global subscriber was installed already.
    #[error("a tracing subscriber is installed already")]
    AlreadyInstalled(#[from] tracing_subscriber::util::TryInitError),
}

/// Installs the process-wide subscriber. Call it once, inside the tokio
/// runtime (the exporter spawns its batch task there).
pub fn init(config: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    // W3C traceparent/tracestate and baggage, in and out.
    global::set_text_map_propagator(TextMapCompositePropagator::new(vec![
        Box::new(TraceContextPropagator::new()),
        Box::new(BaggagePropagator::new()),
    ]));
    let filter = EnvFilter::try_new(&config.log_filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // With DEBUG enabled anywhere, what `quiet` holds back would show at
    // DEBUG: it then holds nothing back.
    let quiet_filter = QuietFilter {
        off: filter.max_level_hint().is_none_or(|max| max >= LevelFilter::DEBUG),
    };
    let fmt_layer = if config.log_json {
        tracing_subscriber::fmt::layer().json().with_current_span(true).boxed()
    } else {
        tracing_subscriber::fmt::layer().with_target(false).boxed()
    }
    .with_filter(quiet_filter);

    let provider = match &config.otlp_endpoint {
        None => None,
        Some(endpoint) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint.clone())
                .build()?;
            let resource = opentelemetry_sdk::Resource::builder()
                .with_service_name(config.service_name.clone())
                .with_attributes([
                    KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                    KeyValue::new("deployment.environment.name", config.environment.clone()),
                ])
                .build();
            Some(
                SdkTracerProvider::builder()
                    .with_batch_exporter(exporter)
                    .with_resource(resource)
                    .build(),
            )
        }
    };
    let otel_layer = provider.as_ref().map(|p| {
        tracing_opentelemetry::layer()
            .with_tracer(p.tracer("vdm"))
            .with_filter(EnvFilter::new("info"))
    });

    tracing_subscriber::registry()
        .with(filter)
        .with(fmt_layer)
        .with(otel_layer)
        .try_init()?;
    if let Some(endpoint) = &config.otlp_endpoint {
        tracing::info!(endpoint, service = config.service_name, "exporting traces over OTLP");
    }
    Ok(TelemetryGuard { provider })
}

/// Start-ups holding a [`QuietGuard`] now.
static QUIET: AtomicUsize = AtomicUsize::new(0);

/// Until the guard is dropped, the log output treats INFO events as DEBUG
/// ones: they show only when the log filter enables DEBUG (`VDM_LOG=debug`).
/// Warnings and errors always show; spans, and their export, are untouched.
///
/// `vdm all` holds it while it migrates, builds and seeds the demo world
/// through its own services (a line per record written otherwise), and
/// drops it before it serves, so the writes of clients log at INFO.
pub fn quiet() -> QuietGuard {
    QUIET.fetch_add(1, Ordering::SeqCst);
    QuietGuard(())
}

/// Ends [`quiet`] when dropped.
#[derive(Debug)]
#[must_use = "the quiet ends when the guard is dropped"]
pub struct QuietGuard(());

impl Drop for QuietGuard {
    fn drop(&mut self) {
        QUIET.fetch_sub(1, Ordering::SeqCst);
    }
}

/// The log output's filter behind [`quiet`].
struct QuietFilter {
    /// DEBUG is enabled: nothing is held back.
    off: bool,
}

impl QuietFilter {
    fn holds_back(&self, meta: &Metadata<'_>) -> bool {
        !self.off && meta.is_event() && *meta.level() == Level::INFO
    }
}

impl<S> Filter<S> for QuietFilter {
    fn enabled(&self, meta: &Metadata<'_>, _: &Context<'_, S>) -> bool {
        !(self.holds_back(meta) && QUIET.load(Ordering::SeqCst) > 0)
    }

    fn callsite_enabled(&self, meta: &'static Metadata<'static>) -> Interest {
        // INFO events are asked each time (the quiet comes and goes); the
        // rest is decided once.
        if self.holds_back(meta) {
            Interest::sometimes()
        } else {
            Interest::always()
        }
    }
}

/// Makes `span` a child of the W3C trace context carried in `headers`, if any.
pub fn set_parent_from_headers(span: &tracing::Span, headers: &http::HeaderMap) {
    if headers.contains_key("traceparent") || headers.contains_key("baggage") {
        let cx = global::get_text_map_propagator(|p| p.extract(&HeaderCarrier(headers)));
        // A span that is disabled or already started keeps its own parent.
        let _ = span.set_parent(cx);
    }
}

/// Writes the trace context of `span` into `headers` (HTTP or gRPC metadata).
pub fn inject_context(span: &tracing::Span, headers: &mut http::HeaderMap) {
    let cx = span.context();
    global::get_text_map_propagator(|p| p.inject_context(&cx, &mut HeaderCarrierMut(headers)));
}

/// Returns the current span's trace id as hex, when one is being recorded.
pub fn current_trace_id() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    let cx = tracing::Span::current().context();
    let span_ref = cx.span();
    let span_cx = span_ref.span_context();
    span_cx.is_valid().then(|| span_cx.trace_id().to_string())
}

struct HeaderCarrier<'a>(&'a http::HeaderMap);

impl Extractor for HeaderCarrier<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

struct HeaderCarrierMut<'a>(&'a mut http::HeaderMap);

impl Injector for HeaderCarrierMut<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(key), http::HeaderValue::try_from(value)) {
            self.0.insert(name, value);
        }
    }
}
