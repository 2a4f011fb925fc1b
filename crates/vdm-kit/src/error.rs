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
    /// The client did not send its request (the body it declared) in time.
    RequestTimeout,
    /// The route exists, but not with this method.
    MethodNotAllowed,
    /// A bug or an unexpected failure; details are in the server's logs.
    Internal,
}

impl ErrorCode {
    /// Every class, in the order of the enum.
    pub const ALL: [ErrorCode; 14] = [
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
        ErrorCode::RequestTimeout,
        ErrorCode::MethodNotAllowed,
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
            ErrorCode::RequestTimeout => Code::DeadlineExceeded,
            ErrorCode::MethodNotAllowed => Code::Unimplemented,
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
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
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
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
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

    /// Whether the same call may succeed if tried again later: the callee
    /// was unreachable, overloaded or slow, not the request wrong. The one
    /// place callers sort failures into "retry later" and "give up".
    pub fn is_retryable(self) -> bool {
        matches!(
            self,
            ErrorCode::Unavailable | ErrorCode::ResourceExhausted | ErrorCode::DeadlineExceeded
        )
    }

    /// Returns the class of an HTTP error status produced outside a handler
    /// (by a middleware layer or the router itself).
    pub fn from_http(status: StatusCode) -> ErrorCode {
        match status {
            StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => ErrorCode::InvalidArgument,
            StatusCode::NOT_FOUND => ErrorCode::NotFound,
            StatusCode::METHOD_NOT_ALLOWED => ErrorCode::MethodNotAllowed,
            StatusCode::CONFLICT => ErrorCode::FailedPrecondition,
            StatusCode::UNAUTHORIZED => ErrorCode::Unauthenticated,
            StatusCode::FORBIDDEN => ErrorCode::PermissionDenied,
            StatusCode::TOO_MANY_REQUESTS => ErrorCode::ResourceExhausted,
            StatusCode::PAYLOAD_TOO_LARGE => ErrorCode::PayloadTooLarge,
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ErrorCode::UnsupportedMediaType,
            StatusCode::SERVICE_UNAVAILABLE => ErrorCode::Unavailable,
            StatusCode::REQUEST_TIMEOUT => ErrorCode::RequestTimeout,
            StatusCode::GATEWAY_TIMEOUT => ErrorCode::DeadlineExceeded,
            s if s.is_client_error() => ErrorCode::InvalidArgument,
            _ => ErrorCode::Internal,
        }
    }

    /// Builds the `tonic::Status` a service returns for this class, its
    /// message cut to [`MAX_MESSAGE_BYTES`] (see [`bounded_message`]).
    pub fn to_status(self, message: impl Into<String>) -> tonic::Status {
        tonic::Status::new(self.grpc_code(), bounded_message(message.into()))
    }
}

/// The longest error message, in bytes, that any status or error body
/// carries.
///
/// Messages often repeat a bad value back to the caller; unbounded, a long
/// value would make the gRPC status headers outgrow HTTP/2's header limits
/// (16 KiB by default), and the caller's 4xx would reach the gateway as a
/// transport failure counted against the whole service.
pub const MAX_MESSAGE_BYTES: usize = 512;

/// Cuts `message` to at most [`MAX_MESSAGE_BYTES`] bytes on a character
/// boundary, marking the cut with `…`.
pub fn bounded_message(mut message: String) -> String {
    if message.len() <= MAX_MESSAGE_BYTES {
        return message;
    }
    const MARK: &str = "…";
    let mut end = MAX_MESSAGE_BYTES - MARK.len();
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    message.truncate(end);
    message.push_str(MARK);
    message
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [ErrorCode; 14] = ErrorCode::ALL;

    #[test]
    fn retryable_classes_are_the_ones_a_later_try_may_fix() {
        let retryable: Vec<ErrorCode> = ALL.into_iter().filter(|c| c.is_retryable()).collect();
        assert_eq!(retryable.len(), 3, "{retryable:?}");
        for code in [
            ErrorCode::Unavailable,
            ErrorCode::ResourceExhausted,
            ErrorCode::DeadlineExceeded,
        ] {
            assert!(retryable.contains(&code), "{code:?}");
        }
        for code in [
            Code::Unavailable,
            Code::Cancelled,
            Code::Aborted,
            Code::DeadlineExceeded,
            Code::ResourceExhausted,
        ] {
            assert!(ErrorCode::from_grpc(code).is_retryable(), "{code:?}");
        }
        for code in [
            Code::InvalidArgument,
            Code::NotFound,
            Code::Internal,
            Code::PermissionDenied,
        ] {
            assert!(!ErrorCode::from_grpc(code).is_retryable(), "{code:?}");
        }
    }

    #[test]
    fn http_status_survives_a_grpc_round_trip() {
        for code in ALL {
            let back = ErrorCode::from_grpc(code.grpc_code());
            // Some classes share a gRPC code with a sibling; their HTTP status
            // after the hop is the sibling's. Those are the gateway's own
            // (body size, media type, a slow client, a wrong method), which
            // no service sends: a service's `Unimplemented` means the
            // gateway called a method it lacks, a deployment fault.
            match code {
                ErrorCode::PayloadTooLarge | ErrorCode::UnsupportedMediaType => {
                    assert_eq!(back, ErrorCode::InvalidArgument)
                }
                ErrorCode::RequestTimeout => assert_eq!(back, ErrorCode::DeadlineExceeded),
                ErrorCode::MethodNotAllowed => assert_eq!(back, ErrorCode::Internal),
                _ => assert_eq!(back.http_status(), code.http_status(), "{code}"),
            }
        }
    }

    #[test]
    fn messages_are_bounded_on_a_character_boundary() {
        assert_eq!(bounded_message("short".to_owned()), "short");
        let long = "é".repeat(MAX_MESSAGE_BYTES);
        let cut = bounded_message(long);
        assert!(cut.len() <= MAX_MESSAGE_BYTES, "{}", cut.len());
        assert!(cut.ends_with('…'));
        let status = ErrorCode::InvalidArgument.to_status("x".repeat(100_000));
        assert!(status.message().len() <= MAX_MESSAGE_BYTES);
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
