//! The gateway's own middleware (composed with the tower-http ones in
//! `startup::layers`), one module per layer:
//!
//! - [`observe`]: the span, request metrics, trace id and request id of
//!   every request (outermost);
//! - [`rules`]: the uniform error body, the body guard and the quotas per
//!   caller;
//! - [`compress`]: tower-http's compression, for the answers it would
//!   change only;
//! - [`front`]: not a layer but the service in front of the finished
//!   router: it answers edge cache hits of single resources itself, with
//!   what the stack would have done to them.
//!
//! All four are hand-written tower services: a cached read is answered in a
//! few microseconds, and an axum `from_fn` per layer (a clone of the stack
//! under it and a boxed future per request) was a visible part of that.

pub mod compress;
pub mod front;
pub mod observe;
pub mod rules;

pub use compress::CompressLayer;
pub use front::{Front, FrontParts};
pub use observe::{ObserveLayer, RequestIds};
pub use rules::{BodyRules, EdgeRulesLayer};
