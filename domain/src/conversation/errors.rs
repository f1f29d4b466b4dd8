//! The rules a conversation command can break.

use serde::{Deserialize, Serialize};

/// Why a conversation command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ConversationError {
    /// A conversation belongs to one business number; a command named another.
    #[error("conversation belongs to phone number {expected}, not {actual}")]
    WrongPhoneNumber {
        /// The conversation's number.
        expected: String,
        /// The number in the command.
        actual: String,
    },
    /// There is no such conversation.
    #[error("no such conversation")]
    NotFound,
    /// The agent's write permission does not cover this conversation.
    #[error("you may not write to this conversation")]
    NotPermitted,
    /// The agent is outside their working hours (read-only until they start again).
    #[error("outside your working hours: read-only")]
    OffDuty,
}

impl ConversationError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongPhoneNumber { .. } => "conversation_wrong_phone_number",
            Self::NotFound => "not_found",
            Self::NotPermitted => "forbidden",
            Self::OffDuty => "outside_working_hours",
        }
    }
}
