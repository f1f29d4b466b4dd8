//! The rules a conversation command can break.

use serde::{Deserialize, Serialize};

use crate::{AgentId, Timestamp};

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
    /// There is no such conversation (or the agent may not see it).
    #[error("no such conversation")]
    NotFound,
    /// A note must say something, within [`MAX_NOTE_CHARS`](super::MAX_NOTE_CHARS) characters
    /// and [`MAX_MENTIONS`](super::MAX_MENTIONS) mentions.
    #[error("a note needs 1 to {max_chars} characters and at most {max_mentions} mentions")]
    InvalidNote {
        /// The longest note.
        max_chars: usize,
        /// The most mentions.
        max_mentions: usize,
    },
    /// Auto-assignment only takes open conversations no agent has and no human owns.
    #[error("the conversation is not waiting for an assignment")]
    NotWaitingForAssignment,
    /// The agent's write permission does not cover this conversation.
    #[error("you may not write to this conversation")]
    NotPermitted,
    /// A bot wrote to (or handed off) a conversation that is not with the bot.
    #[error("the conversation is not with the bot")]
    NotWithBot,
    /// The agent is outside their working hours (read-only until they start again).
    #[error("outside your working hours: read-only")]
    OffDuty,
    /// Another agent holds the lock.
    #[error("conversation is locked by another agent until {until}")]
    LockedByAnotherAgent {
        /// The holder.
        holder: AgentId,
        /// When the lock lapses.
        until: Timestamp,
    },
    /// The conversation changed since the version the agent saw.
    #[error("the conversation changed since version {expected}; it is now at {current}")]
    Changed {
        /// What the agent saw.
        expected: u64,
        /// What it is now.
        current: u64,
    },
    /// Only supervisors and admins may force-release a lock, and only with a reason.
    #[error("forcing a lock open needs the supervisor or admin role and a reason")]
    ForceReleaseNotAllowed,
    /// Tags need `can_use_tags`.
    #[error("you may not use tags")]
    TagsNotAllowed,
    /// A tag must be 1 to 50 characters without control characters.
    #[error("a tag is 1 to 50 characters without control characters")]
    InvalidTag,
    /// Too many tags.
    #[error("a conversation carries at most {max} tags")]
    TooManyTags {
        /// The limit.
        max: usize,
    },
    /// A snooze must end in the future.
    #[error("a snooze must end in the future")]
    SnoozeInThePast,
    /// Free-form messages are allowed only within 24 hours of the customer's last message;
    /// outside the window only templates may be sent (Meta answers 131047 otherwise).
    #[error("the 24-hour customer-service window is closed; send a template")]
    WindowClosed {
        /// When it closed (absent: the customer never wrote).
        closed_at: Option<Timestamp>,
    },
    /// There is no customer message to mark read.
    #[error("the customer has not written yet")]
    NothingToRead,
    /// Erasing a customer's data needs the admin role.
    #[error("erasing a customer's data needs the admin role")]
    ErasureNotAllowed,
    /// An erasure needs a reason of 1 to 500 characters.
    #[error("an erasure needs a reason of 1 to 500 characters")]
    InvalidReason,
    /// A lock lasts at least a second.
    #[error("a lock lasts at least one second")]
    InvalidTtl,
}

impl ConversationError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::WrongPhoneNumber { .. } => "conversation_wrong_phone_number",
            Self::NotFound => "not_found",
            Self::InvalidNote { .. } => "invalid_note",
            Self::NotWaitingForAssignment => "not_waiting",
            Self::NotPermitted => "forbidden",
            Self::NotWithBot => "not_with_bot",
            Self::OffDuty => "outside_working_hours",
            Self::LockedByAnotherAgent { .. } => "conversation_locked",
            Self::Changed { .. } => "conversation_changed",
            Self::ForceReleaseNotAllowed => "forbidden",
            Self::TagsNotAllowed => "forbidden",
            Self::InvalidTag => "invalid_tag",
            Self::TooManyTags { .. } => "too_many_tags",
            Self::SnoozeInThePast => "invalid_snooze",
            Self::InvalidTtl => "invalid_ttl",
            Self::WindowClosed { .. } => "window_closed",
            Self::NothingToRead => "nothing_to_read",
            Self::ErasureNotAllowed => "forbidden",
            Self::InvalidReason => "invalid_reason",
        }
    }
}
