//! The rumor service's one error type and its mapping to `tonic::Status`.

use sea_orm::DbErr;
use vdm_kit::ErrorCode;
use vdm_kit::service::{ServiceError, StartError};

/// Everything that can go wrong in the rumor service.
#[derive(Debug, thiserror::Error)]
pub enum RumorError {
    /// A field of the request is missing, malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// No rumor has this id.
    #[error("rumor {0} not found")]
    RumorNotFound(i64),
    /// No NPC has this id (as the NPC service says).
    #[error("npc {0} not found")]
    NpcNotFound(i64),
    /// The request names a region the world does not have.
    #[error("region_id names unknown region {0}")]
    UnknownRegion(i64),
    /// The request names a world event the world does not have.
    #[error("origin_event_id names unknown world event {0}")]
    UnknownEvent(i64),
    /// The teller does not know the rumor it is asked to tell.
    #[error("npc {npc_id} does not know rumor {rumor_id}")]
    NotKnown {
        /// The would-be teller.
        npc_id: i64,
        /// The rumor.
        rumor_id: i64,
    },
    /// An idempotency key was reused with a different request.
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyConflict(String),
    /// The NPC or world service cannot be reached or did not answer in time.
    #[error("the {0} service is unavailable")]
    PeerUnavailable(&'static str, #[source] tonic::Status),
    /// The NPC or world service answered with an unexpected error.
    #[error("the {0} service failed")]
    Peer(&'static str, #[source] tonic::Status),
    /// The database is unreachable or its pool is exhausted.
    #[error("the rumor database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Any other database failure.
    #[error("rumor database error")]
    Db(#[source] DbErr),
    /// The service could not start or serve (or a peer client not be made).
    #[error("rumor service start-up failed")]
    Start(#[from] StartError),
}

/// The rumor service's result type.
pub type RumorResult<T> = Result<T, RumorError>;

impl From<DbErr> for RumorError {
    fn from(err: DbErr) -> RumorError {
        if vdm_kit::db::is_unavailable(&err) {
            RumorError::Unavailable(err)
        } else {
            RumorError::Db(err)
        }
    }
}

impl From<vdm_kit::idempotency::KeyConflict> for RumorError {
    fn from(err: vdm_kit::idempotency::KeyConflict) -> RumorError {
        RumorError::IdempotencyConflict(err.0)
    }
}

impl From<vdm_kit::validate::Invalid> for RumorError {
    fn from(err: vdm_kit::validate::Invalid) -> RumorError {
        RumorError::Invalid(err.0)
    }
}

impl From<vdm_kit::page::PageError> for RumorError {
    fn from(err: vdm_kit::page::PageError) -> RumorError {
        RumorError::Invalid(err.0)
    }
}

impl ServiceError for RumorError {
    fn code(&self) -> ErrorCode {
        match self {
            RumorError::Invalid(_) | RumorError::UnknownRegion(_) | RumorError::UnknownEvent(_) => {
                ErrorCode::InvalidArgument
            }
            RumorError::RumorNotFound(_) | RumorError::NpcNotFound(_) => ErrorCode::NotFound,
            RumorError::NotKnown { .. } => ErrorCode::FailedPrecondition,
            RumorError::IdempotencyConflict(_) => ErrorCode::AlreadyExists,
            RumorError::PeerUnavailable(..) | RumorError::Unavailable(_) => ErrorCode::Unavailable,
            RumorError::Peer(..) | RumorError::Db(_) | RumorError::Start(_) => ErrorCode::Internal,
        }
    }
}

impl From<RumorError> for tonic::Status {
    fn from(err: RumorError) -> tonic::Status {
        err.into_status()
    }
}
