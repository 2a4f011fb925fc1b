//! The player service's one error type and its mapping to `tonic::Status`.

use sea_orm::DbErr;
use vdm_kit::ErrorCode;
use vdm_kit::service::{ServiceError, StartError};

/// Everything that can go wrong in the player service.
#[derive(Debug, thiserror::Error)]
pub enum PlayerError {
    /// A field of the request is missing, malformed or out of range.
    #[error("{0}")]
    Invalid(String),
    /// No player has this id.
    #[error("player {0} not found")]
    PlayerNotFound(i64),
    /// No catalog item has this id.
    #[error("item {0} not found")]
    ItemNotFound(i64),
    /// Another player has this display name (compared case-insensitively).
    #[error("display name {0:?} is taken")]
    NameTaken(String),
    /// The device belongs to another player.
    #[error("device is registered to another player than {0}")]
    DeviceTaken(i64),
    /// Another item has this key.
    #[error("item key {0:?} is used by another item")]
    ItemKeyTaken(String),
    /// A grant id was reused with a different payload.
    #[error("grant id {0:?} was already used for a different grant")]
    GrantConflict(String),
    /// A removal asks for more than the player holds.
    #[error("player {player_id} has {have} {what}, cannot remove {asked}")]
    Insufficient {
        /// The player.
        player_id: i64,
        /// `gold`, `xp` or `units of item N`.
        what: String,
        /// The balance.
        have: i64,
        /// The amount asked for.
        asked: i64,
    },
    /// A grant would push a stack past its item's `max_stack`.
    #[error("a stack of item {item_id} holds at most {max_stack}; player {player_id} has {have}, cannot add {added}")]
    StackFull {
        /// The player.
        player_id: i64,
        /// The item.
        item_id: i64,
        /// The item's limit.
        max_stack: i64,
        /// Units held now.
        have: i64,
        /// Units asked for.
        added: i64,
    },
    /// A balance would pass the largest value it can hold.
    #[error("{0} would overflow")]
    Overflow(String),
    /// The database is unreachable or its pool is exhausted.
    #[error("the player database is unavailable")]
    Unavailable(#[source] DbErr),
    /// Any other database failure.
    #[error("player database error")]
    Db(#[source] DbErr),
    /// A stored value could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The service could not start or serve.
    #[error("player service start-up failed")]
    Start(#[from] StartError),
}

/// The player service's result type.
pub type PlayerResult<T> = Result<T, PlayerError>;

impl From<DbErr> for PlayerError {
    fn from(err: DbErr) -> PlayerError {
        if vdm_kit::db::is_unavailable(&err) {
            PlayerError::Unavailable(err)
        } else {
            PlayerError::Db(err)
        }
    }
}

impl ServiceError for PlayerError {
    fn code(&self) -> ErrorCode {
        match self {
            PlayerError::Invalid(_) => ErrorCode::InvalidArgument,
            PlayerError::PlayerNotFound(_) | PlayerError::ItemNotFound(_) => ErrorCode::NotFound,
            PlayerError::NameTaken(_)
            | PlayerError::DeviceTaken(_)
            | PlayerError::ItemKeyTaken(_)
            | PlayerError::GrantConflict(_) => ErrorCode::AlreadyExists,
            PlayerError::Insufficient { .. } | PlayerError::StackFull { .. } | PlayerError::Overflow(_) => {
                ErrorCode::FailedPrecondition
            }
            PlayerError::Unavailable(_) => ErrorCode::Unavailable,
            PlayerError::Db(_) | PlayerError::Corrupt(_) | PlayerError::Start(_) => ErrorCode::Internal,
        }
    }
}

impl From<PlayerError> for tonic::Status {
    fn from(err: PlayerError) -> tonic::Status {
        err.into_status()
    }
}

impl From<vdm_kit::page::PageError> for PlayerError {
    fn from(err: vdm_kit::page::PageError) -> PlayerError {
        PlayerError::Invalid(err.0)
    }
}

impl From<vdm_kit::validate::Invalid> for PlayerError {
    fn from(err: vdm_kit::validate::Invalid) -> PlayerError {
        PlayerError::Invalid(err.0)
    }
}
