//! The metrics service (`vdm.metrics.v1`): Unity client telemetry, validated,
//! stored, exposed as Prometheus histograms and summarized as percentiles;
//! backend stats scraped from every service's `/metrics`, kept as history.
//!
//! # Layout
//! - [`config`]: the service's settings.
//! - [`startup`]: [`Metrics`], the service on the kit's skeleton: what it
//!   connects and serves, with the scraper beside it.
//! - [`grpc`]: protobuf in, [`service`] call, protobuf out.
//! - [`service`]: the use cases: validate a batch, store it, record its
//!   histograms (with bounded label values); percentiles of any field of
//!   the stored samples; the budgets' verdicts and gauges.
//! - [`domain`]: rules without IO: batch validation, label folding,
//!   nearest-rank percentiles, budgets (a max, a min or both) and their
//!   alert rules.
//! - [`store`]: sea-orm entities, migrations and queries.
//! - [`scraper`]: the backend stats task: each interval, every target's
//!   `/metrics` becomes a snapshot, stored, appended to the CSV file, old
//!   samples deleted.
//! - [`error`]: [`MetricsError`] and its mapping to `tonic::Status`.

pub mod config;
pub mod domain;
pub mod error;
pub mod grpc;
pub mod scraper;
pub mod service;
pub mod startup;
pub mod store;

pub use config::{MetricsConfig, ScrapeConfig};
pub use error::{MetricsError, MetricsResult};
pub use startup::Metrics;
