//! The short lock an agent holds while answering: taken, renewed, released (or forced open by
//! a supervisor with a reason), and recorded as lapsed once past its expiry.

use super::Conversation;
use crate::agent::Role;
use crate::conversation::{ConversationCommand, ConversationError, ConversationEvent, Write};

impl Conversation {
    /// Decides [`ConversationCommand::AcquireLock`], [`ConversationCommand::ReleaseLock`] and
    /// [`ConversationCommand::ExpireLock`].
    pub(super) fn decide_lock(
        &self,
        command: ConversationCommand,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        match command {
            ConversationCommand::AcquireLock {
                actor,
                expected_version,
                ttl_seconds,
                at,
            } => {
                if ttl_seconds < 1 {
                    return Err(ConversationError::InvalidTtl);
                }
                let agent = actor.agent_id;
                self.authorize_write(&Write {
                    actor,
                    expected_version,
                    at,
                })?;
                let expires_at = at.plus_seconds(ttl_seconds);
                match self.lock {
                    Some(lock) if lock.holds_at(at) => Ok(vec![ConversationEvent::LockRenewed {
                        agent,
                        renewed_at: at,
                        expires_at,
                    }]),
                    lapsed => Ok(lapsed
                        .map(|lock| ConversationEvent::LockExpired {
                            agent: lock.agent,
                            expired_at: lock.expires_at,
                        })
                        .into_iter()
                        .chain([ConversationEvent::LockAcquired {
                            agent,
                            acquired_at: at,
                            expires_at,
                        }])
                        .collect()),
                }
            }
            ConversationCommand::ReleaseLock {
                actor,
                force,
                reason,
                at,
            } => {
                if !self.visible_to(&actor) {
                    return Err(ConversationError::NotFound);
                }
                let Some(lock) = self.lock else {
                    return Ok(vec![]);
                };
                if !lock.holds_at(at) {
                    return Ok(vec![ConversationEvent::LockExpired {
                        agent: lock.agent,
                        expired_at: lock.expires_at,
                    }]);
                }
                let forced = lock.agent != actor.agent_id;
                if forced {
                    let may_force = matches!(actor.role, Role::Supervisor | Role::Admin)
                        && reason.as_deref().is_some_and(|r| !r.trim().is_empty());
                    if !force {
                        return Err(ConversationError::LockedByAnotherAgent {
                            holder: lock.agent,
                            until: lock.expires_at,
                        });
                    }
                    if !may_force {
                        return Err(ConversationError::ForceReleaseNotAllowed);
                    }
                }
                Ok(vec![ConversationEvent::LockReleased {
                    agent: lock.agent,
                    by: actor.agent_id,
                    forced,
                    reason,
                    at,
                }])
            }
            ConversationCommand::ExpireLock { at } => Ok(self
                .lock
                .filter(|lock| !lock.holds_at(at))
                .map(|lock| ConversationEvent::LockExpired {
                    agent: lock.agent,
                    expired_at: lock.expires_at,
                })
                .into_iter()
                .collect()),
            _ => Ok(vec![]),
        }
    }
}
