//! The metrics service's rules, without IO.
//!
//! - [`telemetry`]: a client batch as uploaded, and [`ClientBatch::parse`],
//!   which checks every field and names the first bad one; the
//!   [`StatsMetric`] a percentile query summarizes.
//! - [`labels`]: label values folded into a bounded set.
//! - [`percentile`]: nearest-rank percentiles.
//! - [`scrape`]: a service's `/metrics` text reduced to a backend stats
//!   snapshot (memory, CPU, requests, errors, throughput, p50/p99).
//! - [`budgets`]: the budgets file, each budget's verdict from a round,
//!   and the same budgets as Prometheus alert rules.
//! - [`targets`]: the scrape targets (`name=url`) and service names.
//! - [`stats`]: a stored sample, its CSV line, history query checks.

pub mod budgets;
pub mod labels;
pub mod percentile;
pub mod scrape;
pub mod stats;
pub mod targets;
pub mod telemetry;

pub use labels::LabelCap;
pub use percentile::{Percentiles, percentiles};
pub use telemetry::{ClientBatch, ClientBatchInput, ClientSample, StatsMetric};
