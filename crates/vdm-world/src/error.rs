//! The world service's one error type and its mapping to `tonic::Status`.

use sea_orm::DbErr;
use vdm_kit::ErrorCode;

use crate::domain::Hex;

/// Everything that can go wrong in the world service.
#[derive(Debug, thiserror::Error)]
pub enum WorldError {
    /// A field of the request is missing, malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// No region has this id.
    #[error("region {0} not found")]
    RegionNotFound(i64),
    /// No region holds this hex.
    #[error("hex {0} is outside the map")]
    OutsideMap(Hex),
    /// A request names regions that do not exist (as a field's value, so it
    /// is the request that is wrong, not a missing resource).
    #[error("region_ids names unknown region {0}")]
    UnknownRegion(i64),
    /// No faction has this id.
    #[error("faction {0} not found")]
    FactionNotFound(i64),
    /// No world event has this id.
    #[error("world event {0} not found")]
    EventNotFound(i64),
    /// A cell asked for belongs to another region.
    #[error("hex {hex} already belongs to region {owner}")]
    CellTaken {
        /// The cell.
        hex: Hex,
        /// Its owner.
        owner: i64,
    },
    /// An idempotency key was reused with a different request.
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyConflict(String),
    /// A concurrent writer changed the same rows; retrying may work.
    #[error("a concurrent change to the same {0} won; retry")]
    Contended(&'static str),
    /// The database is unreachable or its pool is exhausted.
    #[error("the world database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Any other database failure.
    #[error("world database error")]
    Db(#[source] DbErr),
    /// A stored value could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Start-up could not reach or migrate the database.
    #[error("world database setup failed")]
    DbSetup(#[from] vdm_kit::db::DbSetupError),
    /// Start-up could not set up the cache.
    #[error("world cache setup failed")]
    CacheSetup(#[from] vdm_kit::cache::CacheSetupError),
    /// The gRPC listener could not be bound.
    #[error("cannot bind the world grpc listener on {addr}")]
    Bind {
        /// The address asked for.
        addr: std::net::SocketAddr,
        /// Why not.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC server failed.
    #[error("world grpc server failed")]
    Serve(#[from] vdm_kit::grpc::GrpcError),
}

/// The world service's result type.
pub type WorldResult<T> = Result<T, WorldError>;

impl From<DbErr> for WorldError {
    fn from(err: DbErr) -> WorldError {
        if vdm_kit::db::is_unavailable(&err) {
            WorldError::Unavailable(err)
        } else {
            WorldError::Db(err)
        }
    }
}

impl WorldError {
    /// Returns the failure class of this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            WorldError::Invalid(_) | WorldError::UnknownRegion(_) => ErrorCode::InvalidArgument,
            WorldError::RegionNotFound(_)
            | WorldError::OutsideMap(_)
            | WorldError::FactionNotFound(_)
            | WorldError::EventNotFound(_) => ErrorCode::NotFound,
            WorldError::CellTaken { .. } => ErrorCode::FailedPrecondition,
            WorldError::IdempotencyConflict(_) => ErrorCode::AlreadyExists,
            WorldError::Unavailable(_) | WorldError::Contended(_) => ErrorCode::Unavailable,
            WorldError::Db(_)
            | WorldError::Corrupt(_)
            | WorldError::DbSetup(_)
            | WorldError::CacheSetup(_)
            | WorldError::Bind { .. }
            | WorldError::Serve(_) => ErrorCode::Internal,
        }
    }
}

impl From<WorldError> for tonic::Status {
    fn from(err: WorldError) -> tonic::Status {
        let code = err.code();
        match code {
            ErrorCode::Internal | ErrorCode::Unavailable => {
                tracing::error!(error = %err, cause = ?std::error::Error::source(&err), "world request failed");
                // Internal causes stay in the logs; the client gets the class.
                code.to_status(err.to_string())
            }
            _ => code.to_status(err.to_string()),
        }
    }
}

impl From<vdm_kit::page::PageError> for WorldError {
    fn from(err: vdm_kit::page::PageError) -> WorldError {
        WorldError::Invalid(err.0)
    }
}

impl From<vdm_kit::validate::Invalid> for WorldError {
    fn from(err: vdm_kit::validate::Invalid) -> WorldError {
        WorldError::Invalid(err.0)
    }
}
