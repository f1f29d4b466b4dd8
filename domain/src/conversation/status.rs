//! The values a conversation holds: status, lock, tags.

use serde::{Deserialize, Serialize};

use crate::conversation::ConversationError;
use crate::{AgentId, Timestamp};

/// Where a conversation stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ConversationStatus {
    /// Waiting for (or being handled by) an agent.
    #[default]
    Open,
    /// With the bot.
    Pending,
    /// Set aside until a time; a customer message or that time wakes it.
    Snoozed {
        /// When it wakes up.
        until: Timestamp,
    },
    /// Done.
    Resolved,
}

impl ConversationStatus {
    /// The name clients see.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Pending => "pending",
            Self::Snoozed { .. } => "snoozed",
            Self::Resolved => "resolved",
        }
    }
}

/// The lock an agent holds while answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    /// The holder.
    pub agent: AgentId,
    /// When it was taken (not renewed).
    pub acquired_at: Timestamp,
    /// When it lapses.
    pub expires_at: Timestamp,
}

impl Lock {
    /// Whether the lock still holds at `at` (a lock past its expiry is free, whether or not
    /// `LockExpired` has been written yet).
    pub fn holds_at(&self, at: Timestamp) -> bool {
        at < self.expires_at
    }
}

/// The most tags one conversation may carry.
pub const MAX_TAGS: usize = 30;

/// A tag: trimmed, lower-case, 1 to 50 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Tag(String);

impl Tag {
    /// Parses a tag.
    ///
    /// # Errors
    /// [`ConversationError::InvalidTag`] when empty, too long or containing control characters.
    pub fn parse(text: &str) -> Result<Self, ConversationError> {
        let tag = text.trim().to_lowercase();
        if tag.is_empty() || tag.chars().count() > 50 || tag.chars().any(char::is_control) {
            return Err(ConversationError::InvalidTag);
        }
        Ok(Self(tag))
    }

    /// The tag.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
