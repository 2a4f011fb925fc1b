//! The quest service's one error type and its mapping to `tonic::Status`.

use sea_orm::DbErr;
use vdm_kit::ErrorCode;
use vdm_kit::service::{ServiceError, StartError};

use crate::domain::QuestStatus;

/// Everything that can go wrong in the quest service.
#[derive(Debug, thiserror::Error)]
pub enum QuestError {
    /// A field of the request is missing, malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// No quest has this id.
    #[error("quest {0} not found")]
    QuestNotFound(i64),
    /// The player has never accepted this quest.
    #[error("player {player_id} has not accepted quest {quest_id}")]
    PlayerQuestNotFound {
        /// The player.
        player_id: i64,
        /// The quest.
        quest_id: i64,
    },
    /// The objective does not belong to the quest.
    #[error("objective {objective_id} is not part of quest {quest_id}")]
    ObjectiveNotFound {
        /// The quest.
        quest_id: i64,
        /// The objective asked for.
        objective_id: i64,
    },
    /// The state machine refuses this move.
    #[error("cannot {action} quest {quest_id}: it is {status}")]
    InvalidTransition {
        /// The quest.
        quest_id: i64,
        /// What was asked (`accept`, `advance`, `abandon`).
        action: &'static str,
        /// The player quest's current status.
        status: QuestStatus,
    },
    /// The player's level is under the quest's requirement.
    #[error("quest {quest_id} needs level {required}; the player is level {level}")]
    LevelTooLow {
        /// The quest.
        quest_id: i64,
        /// Its level requirement.
        required: u32,
        /// The player's level.
        level: u32,
    },
    /// The quest has a level requirement and no player service is
    /// configured to read the player's level.
    #[error("quest {quest_id} needs level {required}, and the player service that knows levels is not configured")]
    NoLevels {
        /// The quest.
        quest_id: i64,
        /// Its level requirement.
        required: u32,
    },
    /// A peer service is down or overloaded (retryable).
    #[error("the {0} service is unavailable")]
    PeerUnavailable(&'static str, #[source] tonic::Status),
    /// A peer service failed otherwise.
    #[error("the {0} service failed")]
    Peer(&'static str, #[source] tonic::Status),
    /// An idempotency key was reused with a different request.
    #[error("idempotency key {0:?} was already used for a different request")]
    IdempotencyConflict(String),
    /// The database is unreachable or its pool is exhausted.
    #[error("the quest database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Concurrent writers kept changing the same row.
    #[error("too many concurrent updates to quest {quest_id} of player {player_id}")]
    Contended {
        /// The player.
        player_id: i64,
        /// The quest.
        quest_id: i64,
    },
    /// Any other database failure.
    #[error("quest database error")]
    Db(#[source] DbErr),
    /// A stored value could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The service could not start or serve.
    #[error("quest service start-up failed")]
    Start(#[from] StartError),
}

/// The quest service's result type.
pub type QuestResult<T> = Result<T, QuestError>;

impl From<DbErr> for QuestError {
    fn from(err: DbErr) -> QuestError {
        if vdm_kit::db::is_unavailable(&err) {
            QuestError::Unavailable(err)
        } else {
            QuestError::Db(err)
        }
    }
}

impl ServiceError for QuestError {
    fn code(&self) -> ErrorCode {
        match self {
            QuestError::Invalid(_) => ErrorCode::InvalidArgument,
            QuestError::QuestNotFound(_)
            | QuestError::PlayerQuestNotFound { .. }
            | QuestError::ObjectiveNotFound { .. } => ErrorCode::NotFound,
            QuestError::InvalidTransition { .. } | QuestError::LevelTooLow { .. } => ErrorCode::FailedPrecondition,
            QuestError::NoLevels { .. } | QuestError::PeerUnavailable(..) => ErrorCode::Unavailable,
            QuestError::Peer(..) => ErrorCode::Internal,
            QuestError::IdempotencyConflict(_) => ErrorCode::AlreadyExists,
            QuestError::Unavailable(_) | QuestError::Contended { .. } => ErrorCode::Unavailable,
            QuestError::Db(_) | QuestError::Corrupt(_) | QuestError::Start(_) => ErrorCode::Internal,
        }
    }
}

impl From<QuestError> for tonic::Status {
    fn from(err: QuestError) -> tonic::Status {
        err.into_status()
    }
}

impl From<vdm_kit::page::PageError> for QuestError {
    fn from(err: vdm_kit::page::PageError) -> QuestError {
        QuestError::Invalid(err.0)
    }
}

impl From<vdm_kit::idempotency::KeyConflict> for QuestError {
    fn from(err: vdm_kit::idempotency::KeyConflict) -> QuestError {
        QuestError::IdempotencyConflict(err.0)
    }
}

impl From<vdm_kit::validate::Invalid> for QuestError {
    fn from(err: vdm_kit::validate::Invalid) -> QuestError {
        QuestError::Invalid(err.0)
    }
}
