//! The one table that gives every failure a gRPC code and an HTTP status.
//!
//! Services turn their own error enums into an [`ErrorCode`] and a message;
//! `tonic::Status` carries it between processes; the gateway turns the
//! `tonic::Code` back into an [`ErrorCode`] and so into an HTTP status. No
//! other place in the workspace maps codes to statuses.

use http::StatusCode;
use tonic::Code;

/// A failure class that a client can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request is malformed or a value is out of range.
    InvalidArgument,
    /// The request names something that does not exist.
    NotFound,
    /// The thing to create exists already, or an idempotency key was reused
    /// for a different request.
    AlreadyExists,
    /// The request is valid but not in the current state (an invalid quest
    /// transition, for example).
    FailedPrecondition,
    /// No valid credentials were presented.
    Unauthenticated,
    /// The credentials do not allow this operation.
    PermissionDenied,
    /// A rate limit or quota was hit.
    ResourceExhausted,
    /// The request body is larger than the server accepts.
    PayloadTooLarge,
    /// The request's content type cannot be decoded.
    UnsupportedMediaType,
    /// A dependency is down or overloaded; retrying later may work.
    Unavailable,
    /// The request took longer than its deadline.
    DeadlineExceeded,
    /// A bug or an unexpected failure; details are in the server's logs.
    Internal,
}

impl ErrorCode {
    /// Every class, in the order of the enum.
    pub const ALL: [ErrorCode; 12] = [
        ErrorCode::InvalidArgument,
        ErrorCode::NotFound,
        ErrorCode::AlreadyExists,
        ErrorCode::FailedPrecondition,
        ErrorCode::Unauthenticated,
        ErrorCode::PermissionDenied,
        ErrorCode::ResourceExhausted,
        ErrorCode::PayloadTooLarge,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::Unavailable,
        ErrorCode::DeadlineExceeded,
        ErrorCode::Internal,
    ];

    /// Returns the gRPC status code for this class.
    pub fn grpc_code(self) -> Code {
        match self {
            ErrorCode::InvalidArgument => Code::InvalidArgument,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::FailedPrecondition => Code::FailedPrecondition,
            ErrorCode::Unauthenticated => Code::Unauthenticated,
            ErrorCode::PermissionDenied => Code::PermissionDenied,
            ErrorCode::ResourceExhausted => Code::ResourceExhausted,
            // gRPC has no "too large"; OutOfRange is what tonic itself uses
            // for messages over the decoding limit.
            ErrorCode::PayloadTooLarge => Code::OutOfRange,
            ErrorCode::UnsupportedMediaType => Code::InvalidArgument,
            ErrorCode::Unavailable => Code::Unavailable,
            ErrorCode::DeadlineExceeded => Code::DeadlineExceeded,
            ErrorCode::Internal => Code::Internal,
        }
    }

    /// Returns the HTTP status a REST client expects for this class.
    pub fn http_status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidArgument => StatusCode::BAD_REQUEST,
            ErrorCode::NotFound => StatusCode::NOT_FOUND,
            ErrorCode::AlreadyExists => StatusCode::CONFLICT,
            ErrorCode::FailedPrecondition => StatusCode::CONFLICT,
            ErrorCode::Unauthenticated => StatusCode::UNAUTHORIZED,
            ErrorCode::PermissionDenied => StatusCode::FORBIDDEN,
            ErrorCode::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Returns the stable snake_case name clients see in error bodies.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::NotFound => "not_found",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::FailedPrecondition => "failed_precondition",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::PermissionDenied => "permission_denied",
            ErrorCode::ResourceExhausted => "resource_exhausted",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::DeadlineExceeded => "deadline_exceeded",
            ErrorCode::Internal => "internal",
        }
    }

    /// Returns the class of a gRPC status code received from a service.
    ///
    /// Codes a vdm service never sends on purpose (`Unknown`, `DataLoss`,
    /// `Unimplemented`, ...) are internal errors from the client's view;
    /// `Cancelled` and `Aborted` mean the call did not happen and may be retried.
    pub fn from_grpc(code: Code) -> ErrorCode {
        match code {
            Code::InvalidArgument | Code::OutOfRange => ErrorCode::InvalidArgument,
            Code::NotFound => ErrorCode::NotFound,
            Code::AlreadyExists => ErrorCode::AlreadyExists,
            Code::FailedPrecondition => ErrorCode::FailedPrecondition,
            Code::Unauthenticated => ErrorCode::Unauthenticated,
            Code::PermissionDenied => ErrorCode::PermissionDenied,
            Code::ResourceExhausted => ErrorCode::ResourceExhausted,
            Code::Unavailable | Code::Cancelled | Code::Aborted => ErrorCode::Unavailable,
            Code::DeadlineExceeded => ErrorCode::DeadlineExceeded,
            Code::Ok | Code::Unknown | Code::Unimplemented | Code::Internal | Code::DataLoss => ErrorCode::Internal,
        }
    }

    /// Returns the class of an HTTP error status produced outside a handler
    /// (by a middleware layer or the router itself).
    pub fn from_http(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidArgument,
            StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED => ErrorCode::NotFound,
            StatusCode::CONFLICT => ErrorCode::FailedPrecondition,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
            StatusCode::FORBIDDEN => ErrorCode::PermissionDenied,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::ResourceExhausted,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
            StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => ErrorCode::DeadlineExceeded,
            s if s.is_client_error() => ErrorCode::InvalidArgument,
            _ => ErrorCode::Internal,
        }
    }

    /// Builds the `tonic::Status` a service returns for this class.
    pub fn to_status(self, message: impl Into<String>) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), message)
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 12] = ErrorCode::ALL;

    #[test]
    fn http_status_survives_a_grpc_round_trip() {
        for code in ALL {
            let back = ErrorCode::from_grpc(code.grpc_code());
            // Two classes share a gRPC code with a sibling; their HTTP status
            // after the hop is the sibling's, which is still a 4xx.
            match code {
                ErrorCode::PayloadTooLarge | ErrorCode::UnsupportedMediaType => {
                    assert_eq!(back, ErrorCode::InvalidArgument)
                }
                _ => assert_eq!(back.http_status(), code.http_status(), "{code}"),
            }
        }
    }

    #[test]
    fn http_statuses_map_back_to_their_class() {
        for code in ALL {
            let status = code.http_status();
            if code != ErrorCode::FailedPrecondition {
                assert_eq!(ErrorCode::from_http(status).http_status(), status, "{code}");
            }
        }
    }
}
