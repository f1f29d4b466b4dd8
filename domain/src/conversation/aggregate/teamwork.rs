//! Work among agents that the customer never sees: private notes and auto-assignment.

use super::Conversation;
use crate::conversation::ConversationStatus;
use crate::conversation::{ConversationCommand, ConversationError, ConversationEvent};

/// The longest note, in characters.
pub const MAX_NOTE_CHARS: usize = 4096;
/// The most agents one note mentions.
pub const MAX_MENTIONS: usize = 20;

impl Conversation {
    /// Decides [`ConversationCommand::AddNote`] and [`ConversationCommand::AutoAssign`].
    pub(super) fn decide_teamwork(
        &self,
        command: ConversationCommand,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        match command {
            ConversationCommand::AddNote {
                write,
                note_id,
                text,
                mut mentions,
            } => {
                // A note is for the team: another agent's lock does not stop it, the scopes do.
                if !self.visible_to(&write.actor) {
                    return Err(ConversationError::NotFound);
                }
                if !write.actor.on_duty {
                    return Err(ConversationError::OffDuty);
                }
                if !write
                    .actor
                    .may_write(self.assigned_agent, self.assigned_group)
                {
                    return Err(ConversationError::NotPermitted);
                }
                mentions.sort();
                mentions.dedup();
                let chars = text.chars().count();
                if text.trim().is_empty() || chars > MAX_NOTE_CHARS || mentions.len() > MAX_MENTIONS
                {
                    return Err(ConversationError::InvalidNote {
                        max_chars: MAX_NOTE_CHARS,
                        max_mentions: MAX_MENTIONS,
                    });
                }
                Ok(vec![ConversationEvent::NoteAdded {
                    note_id,
                    text,
                    mentions,
                    by: write.actor.agent_id,
                    at: write.at,
                }])
            }
            ConversationCommand::AutoAssign {
                agent,
                group,
                policy,
                reason,
                at,
            } => {
                let waiting = self.exists()
                    && self.status == ConversationStatus::Open
                    && self.assigned_agent.is_none()
                    && self.owner.is_none()
                    && group == self.assigned_group;
                if !waiting {
                    return Err(ConversationError::NotWaitingForAssignment);
                }
                Ok(vec![ConversationEvent::AutoAssigned {
                    agent,
                    group,
                    policy,
                    reason,
                    at,
                }])
            }
            _ => Ok(vec![]),
        }
    }
}
