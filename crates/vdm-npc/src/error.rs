//! The NPC service's one error type and its mapping to `tonic::Status`.

use sea_orm::DbErr;
use vdm_kit::ErrorCode;
use vdm_kit::service::{ServiceError, StartError};

use crate::domain::Hex;

/// Everything that can go wrong in the NPC service.
#[derive(Debug, thiserror::Error)]
pub enum NpcError {
    /// A field of the request is missing, malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// No NPC has this id.
    #[error("npc {0} not found")]
    NpcNotFound(i64),
    /// The request names a region the world does not have.
    #[error("region_id names unknown region {0}")]
    UnknownRegion(i64),
    /// The request names a faction the world does not have.
    #[error("faction_id names unknown faction {0}")]
    UnknownFaction(i64),
    /// No region holds the hex asked for.
    #[error("hex {0} is outside the map")]
    OutsideMap(Hex),
    /// The position is not a cell of the NPC's region.
    #[error("position {hex} is not a cell of region {region_id}")]
    NotInRegion {
        /// The cell asked for.
        hex: Hex,
        /// The region named.
        region_id: i64,
    },
    /// An idempotency key was reused with a different request.
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyConflict(String),
    /// The world service cannot be reached or did not answer in time.
    #[error("the world service is unavailable")]
    WorldUnavailable(#[source] tonic::Status),
    /// The world service answered with an unexpected error.
    #[error("the world service failed")]
    World(#[source] tonic::Status),
    /// A concurrent writer changed the same rows; retrying may work.
    #[error("a concurrent change to the same {0} won; retry")]
    Contended(&'static str),
    /// The database is unreachable or its pool is exhausted.
    #[error("the npc database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Any other database failure.
    #[error("npc database error")]
    Db(#[source] DbErr),
    /// A stored value could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The service could not start or serve (or a peer client not be made).
    #[error("npc service start-up failed")]
    Start(#[from] StartError),
}

/// The NPC service's result type.
pub type NpcResult<T> = Result<T, NpcError>;

impl From<DbErr> for NpcError {
    fn from(err: DbErr) -> NpcError {
        if vdm_kit::db::is_unavailable(&err) {
            NpcError::Unavailable(err)
        } else {
            NpcError::Db(err)
        }
    }
}

impl ServiceError for NpcError {
    fn code(&self) -> ErrorCode {
        match self {
            NpcError::Invalid(_)
            | NpcError::UnknownRegion(_)
            | NpcError::UnknownFaction(_)
            | NpcError::OutsideMap(_)
            | NpcError::NotInRegion { .. } => ErrorCode::InvalidArgument,
            NpcError::NpcNotFound(_) => ErrorCode::NotFound,
            NpcError::IdempotencyConflict(_) => ErrorCode::AlreadyExists,
            NpcError::WorldUnavailable(_) | NpcError::Unavailable(_) | NpcError::Contended(_) => ErrorCode::Unavailable,
            NpcError::World(_) | NpcError::Db(_) | NpcError::Corrupt(_) | NpcError::Start(_) => ErrorCode::Internal,
        }
    }
}

impl From<NpcError> for tonic::Status {
    fn from(err: NpcError) -> tonic::Status {
        err.into_status()
    }
}

impl From<vdm_kit::idempotency::KeyConflict> for NpcError {
    fn from(err: vdm_kit::idempotency::KeyConflict) -> NpcError {
        NpcError::IdempotencyConflict(err.0)
    }
}

impl From<vdm_kit::page::PageError> for NpcError {
    fn from(err: vdm_kit::page::PageError) -> NpcError {
        NpcError::Invalid(err.0)
    }
}

impl From<vdm_kit::validate::Invalid> for NpcError {
    fn from(err: vdm_kit::validate::Invalid) -> NpcError {
        NpcError::Invalid(err.0)
    }
}
