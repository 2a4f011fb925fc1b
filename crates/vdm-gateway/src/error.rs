//! The gateway's one error type, and how it becomes an HTTP response.
//!
//! gRPC statuses from the services come back through
//! [`vdm_kit::ErrorCode::from_grpc`], the same table the services used to
//! send them, so a `NotFound` from the quest service is a 404 here. Every
//! error response has the body `{"error": {"code", "message"}}` (plus
//! `trace_id` when the request is traced); `Unavailable` and
//! `ResourceExhausted` carry `Retry-After`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;
use vdm_kit::ErrorCode;

/// Seconds a client should wait before retrying an unavailable service.
const RETRY_AFTER_SECS: &str = "1";

/// Everything that can go wrong in the gateway.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// A failure the client can act on, with its class and message.
    #[error("{message}")]
    Api {
        /// The failure class.
        code: ErrorCode,
        /// What was wrong, for the client.
        message: String,
    },
    /// A service answered with an error status.
    #[error("service call failed: {0}")]
    Grpc(#[from] tonic::Status),
    /// An unexpected failure inside the gateway.
    #[error("{0}")]
    Internal(String),
    /// A service address is unusable.
    #[error("gateway client setup failed")]
    Client(#[from] vdm_kit::grpc::GrpcError),
    /// A service address is missing.
    #[error("gateway start-up failed")]
    Start(#[from] vdm_kit::service::StartError),
    /// The HTTP listener could not be bound or failed.
    #[error("gateway http server failed")]
    Io(#[from] std::io::Error),
}

/// The gateway's result type.
pub type GatewayResult<T> = Result<T, GatewayError>;

impl GatewayError {
    /// Builds a client-facing error.
    pub fn api(code: ErrorCode, message: impl Into<String>) -> GatewayError {
        GatewayError::Api {
            code,
            message: message.into(),
        }
    }

    /// A 400 naming what was wrong.
    pub fn invalid(message: impl Into<String>) -> GatewayError {
        GatewayError::api(ErrorCode::InvalidArgument, message)
    }

    /// Returns the failure class.
    pub fn code(&self) -> ErrorCode {
        match self {
            GatewayError::Api { code, .. } => *code,
            GatewayError::Grpc(status) => ErrorCode::from_grpc(status.code()),
            GatewayError::Internal(_) | GatewayError::Client(_) | GatewayError::Start(_) | GatewayError::Io(_) => {
                ErrorCode::Internal
            }
        }
    }

    fn client_message(&self) -> String {
        match (self, self.code()) {
            (GatewayError::Api { message, .. }, _) => message.clone(),
            (GatewayError::Grpc(status), ErrorCode::Unavailable) => {
                tracing::warn!(grpc.code = ?status.code(), grpc.message = status.message(), "service unavailable");
                "a backend service is unavailable; retry shortly".to_owned()
            }
            (GatewayError::Grpc(status), ErrorCode::DeadlineExceeded) => {
                tracing::warn!(grpc.message = status.message(), "service call timed out");
                "a backend service took too long to answer".to_owned()
            }
            (GatewayError::Grpc(status), ErrorCode::Internal) => {
                tracing::error!(grpc.code = ?status.code(), grpc.message = status.message(), "service failed");
                "internal error".to_owned()
            }
            (GatewayError::Grpc(status), _) => status.message().to_owned(),
            (other, ErrorCode::Unavailable) => {
                tracing::warn!(error = %other, cause = ?std::error::Error::source(other), "dependency unavailable");
                "a backend dependency is unavailable; retry shortly".to_owned()
            }
            (other, _) => {
                tracing::error!(error = %other, cause = ?std::error::Error::source(other), "request failed");
                "internal error".to_owned()
            }
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// The stable snake_case failure class (`not_found`, ...).
    #[schema(schema_with = error_codes)]
    pub code: &'static str,
    /// A human-readable explanation.
    pub message: String,
    /// The trace to look up in Jaeger, when the request was traced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
}

/// The schema of `code`: one of the failure classes' names.
fn error_codes() -> utoipa::openapi::Object {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .enum_values(Some(ErrorCode::ALL.iter().map(|code| code.as_str())))
        .description(Some("The stable snake_case failure class"))
        .build()
}

impl ErrorBody {
    /// Builds the body for a class and message (bounded: messages may
    /// repeat what the client sent).
    pub fn new(code: ErrorCode, message: String) -> ErrorBody {
        ErrorBody {
            error: ErrorDetail {
                code: code.as_str(),
                message: vdm_kit::error::bounded_message(message),
                trace_id: vdm_kit::telemetry::current_trace_id(),
            },
        }
    }

    /// Builds the JSON response for this body (re-encoded as MessagePack by
    /// the negotiation layer when the client asked for it).
    pub fn into_response_with(self, code: ErrorCode) -> Response {
        let status: StatusCode = code.http_status();
        let bytes = serde_json::to_vec(&self)
            .unwrap_or_else(|_| br#"{"error":{"code":"internal","message":"internal error"}}"#.to_vec());
        let mut response = (
            status,
            [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
            bytes,
        )
            .into_response();
        if matches!(code, ErrorCode::Unavailable | ErrorCode::ResourceExhausted) {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS));
        }
        response.extensions_mut().insert(self);
        response
    }
}

impl IntoResponse for GatewayError {
    fn into_response(self) -> Response {
        let code = self.code();
        ErrorBody::new(code, self.client_message()).into_response_with(code)
    }
}
