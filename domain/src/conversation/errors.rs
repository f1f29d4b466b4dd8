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
}

impl ConversationError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongPhoneNumber { .. } => "conversation_wrong_phone_number",
        }
    }
}
