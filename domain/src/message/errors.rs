//! The rules a message command can break.

use serde::{Deserialize, Serialize};

/// Why a message command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum MessageError {
    /// Only an inbound message with a file has media to record.
    #[error("the message carries no file")]
    NoMedia,
    /// The file was given up before it was fetched (its customer erased, its retention
    /// ended): what the fetch brought must not be kept.
    #[error("the message's file is no longer to be kept")]
    MediaNotKept,
    /// Only a dead-lettered message can be queued again.
    #[error("the message is not in the dead-letter queue")]
    NotDeadLettered,
    /// An inbound message arrived under the id of a message we sent (or the reverse).
    #[error("message {id} already exists with the other direction")]
    DirectionMismatch {
        /// The message id.
        id: String,
    },
}

impl MessageError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::DirectionMismatch { .. } => "message_direction_mismatch",
            Self::NotDeadLettered => "not_dead_lettered",
            Self::NoMedia => "no_media",
            Self::MediaNotKept => "media_not_kept",
        }
    }
}
