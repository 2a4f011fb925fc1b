//! The metrics service's one error type and its mapping to `tonic::Status`.

use sea_orm::DbErr;
use vdm_kit::ErrorCode;
use vdm_kit::service::{ServiceError, StartError};

/// Everything that can go wrong in the metrics service.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// A field of the request is missing, malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// The database is unreachable or its pool is exhausted.
    #[error("the metrics database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Any other database failure.
    #[error("metrics database error")]
    Db(#[source] DbErr),
    /// The service could not start or serve.
    #[error("metrics service start-up failed")]
    Start(#[from] StartError),
}

/// The metrics service's result type.
pub type MetricsResult<T> = Result<T, MetricsError>;

impl From<DbErr> for MetricsError {
    fn from(err: DbErr) -> MetricsError {
        if vdm_kit::db::is_unavailable(&err) {
            MetricsError::Unavailable(err)
        } else {
            MetricsError::Db(err)
        }
    }
}

impl ServiceError for MetricsError {
    fn code(&self) -> ErrorCode {
        match self {
            MetricsError::Invalid(_) => ErrorCode::InvalidArgument,
            MetricsError::Unavailable(_) => ErrorCode::Unavailable,
            MetricsError::Db(_) | MetricsError::Start(_) => ErrorCode::Internal,
        }
    }
}

impl From<MetricsError> for tonic::Status {
    fn from(err: MetricsError) -> tonic::Status {
        err.into_status()
    }
}
