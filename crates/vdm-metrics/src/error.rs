//! The metrics service's one error type and its mapping to `tonic::Status`.

use sea_orm::DbErr;
use vdm_kit::ErrorCode;

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
    /// Start-up could not reach or migrate the database.
    #[error("metrics database setup failed")]
    DbSetup(#[from] vdm_kit::db::DbSetupError),
    /// The gRPC listener could not be bound.
    #[error("cannot bind the metrics grpc listener on {addr}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("metrics grpc server failed")]
    Serve(#[from] vdm_kit::grpc::GrpcError),
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

impl MetricsError {
    /// Returns the failure class of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            MetricsError::Invalid(_) => ErrorCode::InvalidArgument,
            MetricsError::Unavailable(_) => ErrorCode::Unavailable,
            MetricsError::Db(_) | MetricsError::DbSetup(_) | MetricsError::Bind { .. } | MetricsError::Serve(_) => {
                ErrorCode::Internal
            }
        }
    }
}

impl From<MetricsError> for tonic::Status {
    fn from(err: MetricsError) -> tonic::Status {
        let code = err.code();
        match code {
            ErrorCode::Internal | ErrorCode::Unavailable => {
                tracing::error!(error = %err, cause = ?std::error::Error::source(&err), "metrics request failed");
                // Internal causes stay in the logs; the client gets the class.
                code.to_status(err.to_string())
            }
            _ => code.to_status(err.to_string()),
        }
    }
}
