//! The bot's part: while a conversation is with the bot (no owner, status pending), a bot's
//! key may write to it; the bot or an agent hands it to the humans, and the bot-reply watch
//! does when the customer has waited too long or the bot cannot be reached.

use super::Conversation;
use crate::conversation::{
    ConversationCommand, ConversationError, ConversationEvent, ConversationStatus,
};
use crate::Timestamp;

impl Conversation {
    /// Whether the bot has it: no agent owns it and its status is pending.
    pub fn with_bot(&self) -> bool {
        self.owner.is_none() && self.status == ConversationStatus::Pending
    }

    /// Since when the customer has been waiting for the bot's answer, if they are.
    pub fn awaiting_bot_since(&self) -> Option<Timestamp> {
        self.awaiting_bot_since
    }

    /// Decides [`ConversationCommand::HandOff`] and [`ConversationCommand::HandOffUnanswered`].
    pub(super) fn decide_bot(
        &self,
        command: ConversationCommand,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        match command {
            ConversationCommand::HandOff {
                write,
                group,
                reason,
            } => {
                self.authorize_write(&write)?;
                if !self.with_bot() {
                    return Err(ConversationError::NotWithBot);
                }
                Ok(vec![ConversationEvent::HandedOff {
                    group: group.or(self.assigned_group),
                    reason,
                    by: Some(write.actor.agent_id),
                    at: write.at,
                }])
            }
            ConversationCommand::HandOffUnanswered {
                timeout_seconds,
                bot_unreachable,
                at,
            } => {
                let Some(since) = self.awaiting_bot_since.filter(|_| self.with_bot()) else {
                    return Ok(vec![]);
                };
                let reason = if bot_unreachable {
                    "bot_unreachable"
                } else if since.plus_seconds(timeout_seconds) <= at {
                    "bot_timeout"
                } else {
                    return Ok(vec![]);
                };
                Ok(vec![ConversationEvent::HandedOff {
                    group: self.assigned_group,
                    reason: reason.to_owned(),
                    by: None,
                    at,
                }])
            }
            _ => Ok(vec![]),
        }
    }
}
