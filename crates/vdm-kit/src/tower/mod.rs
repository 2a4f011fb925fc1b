//! Tower middleware shared by the vdm binaries, one module per layer.
//!
//! - [`rpc_server`]: a span, trace-context extraction and metrics around
//!   every gRPC call a service serves.
//! - [`rpc_client`]: trace-context injection and metrics around every gRPC
//!   call the gateway (or a service) makes.
//! - [`delay`]: an artificial, configured delay before every call (tests).
//! - [`deadline`]: a timeout per request that starts no timer for answers
//!   ready at once.

pub mod deadline;
pub mod delay;
pub mod rpc_client;
pub mod rpc_server;

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

/// Returns a `'static` copy of an RPC path for metric labels.
///
/// Only paths a server answered with something other than `Unimplemented`
/// are interned, so the set is bounded by the methods the services define.
pub(crate) fn intern(path: &str) -> &'static str {
    static PATHS: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut paths = PATHS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(found) = paths.get(path) {
        return found;
    }
    let leaked: &'static str = Box::leak(path.to_owned().into_boxed_str());
    paths.insert(leaked);
    leaked
}

/// `quest.v1.QuestService/GetQuest` from `/vdm.quest.v1.QuestService/GetQuest`.
pub(crate) fn rpc_name(path: &str) -> &str {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.strip_prefix("vdm.").unwrap_or(path)
}

/// Reads the `grpc-status` of a trailers-only response (how tonic sends
/// every error of a unary call); a response without one is a success whose
/// status travels in the trailers.
pub(crate) fn grpc_code_of(headers: &http::HeaderMap) -> tonic::Code {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
        .map(tonic::Code::from_i32)
        .unwrap_or(tonic::Code::Ok)
}

/// The label value of a gRPC code (`OK`, `NOT_FOUND`, ...).
pub(crate) fn code_label(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}
