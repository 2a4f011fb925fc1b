//! The world service's one error type and its mapping to `tonic::Status`.

use sea_orm::DbErr;
use vdm_kit::ErrorCode;
use vdm_kit::service::{ServiceError, StartError};

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
    /// The service could not start or serve.
    #[error("world service start-up failed")]
    Start(#[from] StartError),
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

impl ServiceError for WorldError {
    fn code(&self) -> ErrorCode {
        match self {
            WorldError::Invalid(_) | WorldError::UnknownRegion(_) => ErrorCode::InvalidArgument,
            WorldError::RegionNotFound(_)
            | WorldError::OutsideMap(_)
            | WorldError::FactionNotFound(_)
            | WorldError::EventNotFound(_) => ErrorCode::NotFound,
            WorldError::CellTaken { .. } => ErrorCode::FailedPrecondition,
            WorldError::IdempotencyConflict(_) => ErrorCode::AlreadyExists,
            WorldError::Unavailable(_) | WorldError::Contended(_) => ErrorCode::Unavailable,
            WorldError::Db(_) | WorldError::Corrupt(_) | WorldError::Start(_) => ErrorCode::Internal,
        }
    }
}

impl From<WorldError> for tonic::Status {
    fn from(err: WorldError) -> tonic::Status {
        err.into_status()
    }
}

impl From<vdm_kit::page::PageError> for WorldError {
    fn from(err: vdm_kit::page::PageError) -> WorldError {
        WorldError::Invalid(err.0)
    }
}

impl From<vdm_kit::idempotency::KeyConflict> for WorldError {
    fn from(err: vdm_kit::idempotency::KeyConflict) -> WorldError {
        WorldError::IdempotencyConflict(err.0)
    }
}

impl From<vdm_kit::validate::Invalid> for WorldError {
    fn from(err: vdm_kit::validate::Invalid) -> WorldError {
        WorldError::Invalid(err.0)
    }
}
