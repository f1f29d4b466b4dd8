//! The conversation aggregate.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::conversation::{
    ConversationCommand, ConversationError, ConversationEvent, ConversationStatus, Lock, Tag,
    Write, MAX_TAGS,
};
use crate::{Actor, AgentId, Customer, GroupId, PhoneNumberId, Timestamp, WaMessageId};

/// How long after a customer's message free-form replies are allowed: Meta's 24 hours.
pub const SERVICE_WINDOW_SECONDS: i64 = 24 * 60 * 60;

/// One customer on one business number.
///
/// `#[serde(default)]`: snapshots taken before a field was added still load.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Conversation {
    /// Events applied so far: the version clients send back as `expected_version`.
    version: u64,
    phone_number_id: Option<PhoneNumberId>,
    customer: Option<Customer>,
    profile_name: Option<String>,
    last_customer_message_at: Option<Timestamp>,
    last_customer_message: Option<WaMessageId>,
    window_closes_at: Option<Timestamp>,
    assigned_agent: Option<AgentId>,
    assigned_group: Option<GroupId>,
    /// `None`: the bot.
    owner: Option<AgentId>,
    status: ConversationStatus,
    tags: Vec<Tag>,
    lock: Option<Lock>,
    sla: sla::SlaClock,
    /// When the customer began waiting for the bot: their first unanswered message while the
    /// conversation is with the bot.
    awaiting_bot_since: Option<Timestamp>,
    /// Contents before this time were erased by retention.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    content_expired_before: Option<Timestamp>,
}

impl Conversation {
    /// The version: how many events the conversation has.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When the customer-service window closes, if it was ever opened.
    pub fn window_closes_at(&self) -> Option<Timestamp> {
        self.window_closes_at
    }

    /// The customer, once the conversation has started.
    pub fn customer(&self) -> Option<&Customer> {
        self.customer.as_ref()
    }

    /// The agent and group it is assigned to.
    pub fn assignment(&self) -> (Option<AgentId>, Option<GroupId>) {
        (self.assigned_agent, self.assigned_group)
    }

    /// The owning agent (`None`: the bot).
    pub fn owner(&self) -> Option<AgentId> {
        self.owner
    }

    /// The status.
    pub fn status(&self) -> ConversationStatus {
        self.status
    }

    /// The tags.
    pub fn tags(&self) -> &[Tag] {
        &self.tags
    }

    /// The lock as recorded (it may have lapsed: see [`Self::lock_at`]).
    pub fn recorded_lock(&self) -> Option<Lock> {
        self.lock
    }

    /// The lock in force at `at`: a lock past its expiry is free even before `LockExpired`.
    pub fn lock_at(&self, at: Timestamp) -> Option<Lock> {
        self.lock.filter(|lock| lock.holds_at(at))
    }

    /// Whether the conversation exists.
    pub fn exists(&self) -> bool {
        self.phone_number_id.is_some()
    }

    /// Whether `actor` may see this conversation.
    pub fn visible_to(&self, actor: &Actor) -> bool {
        self.exists() && actor.may_read(self.assigned_agent, self.assigned_group)
    }

    /// Checks that `actor` may write to this conversation at `at`: it is visible to them, they
    /// are on duty, their write scope covers it, and no other agent holds the lock.
    fn authorize(&self, actor: &Actor, at: Timestamp) -> Result<(), ConversationError> {
        if !self.visible_to(actor) {
            return Err(ConversationError::NotFound);
        }
        if !actor.on_duty {
            return Err(ConversationError::OffDuty);
        }
        if !actor.may_write(self.assigned_agent, self.assigned_group) {
            return Err(ConversationError::NotPermitted);
        }
        if actor.bot && !self.with_bot() {
            return Err(ConversationError::NotWithBot);
        }
        if let Some(lock) = self.lock_at(at).filter(|l| l.agent != actor.agent_id) {
            return Err(ConversationError::LockedByAnotherAgent {
                holder: lock.agent,
                until: lock.expires_at,
            });
        }
        Ok(())
    }

    /// The business number the conversation is on.
    pub fn phone_number_id(&self) -> Option<&PhoneNumberId> {
        self.phone_number_id.as_ref()
    }

    /// The customer's newest message, if any.
    pub fn last_customer_message(&self) -> Option<&WaMessageId> {
        self.last_customer_message.as_ref()
    }

    /// Whether the customer-service window is open at `at`.
    pub fn window_open_at(&self, at: Timestamp) -> bool {
        self.window_closes_at.is_some_and(|closes| at < closes)
    }

    /// Checks that the agent may send a message now: write rights, no other agent's lock, the
    /// version they saw, and — unless it is a template — the 24-hour window.
    ///
    /// # Errors
    /// The rule that was broken.
    pub fn authorize_send(&self, write: &Write, template: bool) -> Result<(), ConversationError> {
        self.authorize_write(write)?;
        if !template && !self.window_open_at(write.at) {
            return Err(ConversationError::WindowClosed {
                closed_at: self.window_closes_at,
            });
        }
        Ok(())
    }

    /// [`Self::authorize`] plus collision detection on the version the agent saw.
    fn authorize_write(&self, write: &Write) -> Result<(), ConversationError> {
        self.authorize(&write.actor, write.at)?;
        match write.expected_version {
            Some(expected) if expected != self.version => Err(ConversationError::Changed {
                expected,
                current: self.version,
            }),
            _ => Ok(()),
        }
    }

    fn decide(
        &self,
        command: ConversationCommand,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        match command {
            ConversationCommand::RecordCustomerMessage {
                phone_number_id,
                customer,
                profile_name,
                wamid,
                sent_at,
                opens_window,
            } => {
                let mut events = self.start_or_identify(phone_number_id, customer, sent_at)?;
                if let Some(name) = profile_name.filter(|n| !n.is_empty()) {
                    if self.profile_name.as_deref() != Some(name.as_str()) {
                        events.push(ConversationEvent::CustomerProfileNamed { name });
                    }
                }
                if self
                    .last_customer_message_at
                    .is_none_or(|last| sent_at > last)
                {
                    events.push(ConversationEvent::CustomerMessageReceived {
                        wamid,
                        sent_at,
                        window_closes_at: opens_window
                            .then(|| sent_at.plus_seconds(SERVICE_WINDOW_SECONDS)),
                    });
                    if matches!(
                        self.status,
                        ConversationStatus::Resolved | ConversationStatus::Snoozed { .. }
                    ) {
                        events.push(ConversationEvent::StatusChanged {
                            status: ConversationStatus::Open,
                            by: None,
                            reason: Some("customer_wrote".to_owned()),
                            at: sent_at,
                        });
                    }
                }
                Ok(events)
            }
            ConversationCommand::Touch {
                phone_number_id,
                customer,
                at,
            } => self.start_or_identify(phone_number_id, customer, at),
            ConversationCommand::Assign {
                write,
                agent,
                group,
                reason,
            } => {
                self.authorize_write(&write)?;
                if (agent, group) == (self.assigned_agent, self.assigned_group) {
                    return Ok(vec![]);
                }
                if agent.is_none() && group.is_none() {
                    return Ok(self.unassign(&write));
                }
                Ok(vec![ConversationEvent::Assigned {
                    agent,
                    group,
                    reason,
                    by: write.actor.agent_id,
                    at: write.at,
                }])
            }
            ConversationCommand::Unassign { write } => {
                self.authorize_write(&write)?;
                Ok(self.unassign(&write))
            }
            ConversationCommand::TakeOver { write, reason } => {
                self.authorize_write(&write)?;
                let agent = write.actor.agent_id;
                let mut events = Vec::new();
                if self.owner != Some(agent) {
                    events.push(ConversationEvent::TakenOver {
                        agent,
                        from: self.owner,
                        reason,
                        at: write.at,
                    });
                }
                if self.status == ConversationStatus::Pending {
                    events.push(self.status_changed(ConversationStatus::Open, &write, None));
                }
                Ok(events)
            }
            ConversationCommand::HandBackToBot { write, reason } => {
                self.authorize_write(&write)?;
                Ok(self.hand_back(&write, reason))
            }
            ConversationCommand::HandOff { .. } | ConversationCommand::HandOffUnanswered { .. } => {
                self.decide_bot(command)
            }
            ConversationCommand::ChangeStatus {
                write,
                status,
                reason,
            } => {
                self.authorize_write(&write)?;
                match status {
                    ConversationStatus::Pending => Ok(self.hand_back(&write, reason)),
                    ConversationStatus::Snoozed { until } if until <= write.at => {
                        Err(ConversationError::SnoozeInThePast)
                    }
                    _ if status == self.status => Ok(vec![]),
                    _ => Ok(vec![self.status_changed(status, &write, reason)]),
                }
            }
            ConversationCommand::AddTag { write, tag } => {
                self.authorize_write(&write)?;
                if !write.actor.permissions.can_use_tags {
                    return Err(ConversationError::TagsNotAllowed);
                }
                if self.tags.contains(&tag) {
                    return Ok(vec![]);
                }
                if self.tags.len() >= MAX_TAGS {
                    return Err(ConversationError::TooManyTags { max: MAX_TAGS });
                }
                let mut tags = self.tags.clone();
                tags.push(tag.clone());
                Ok(vec![ConversationEvent::TagAdded {
                    tag,
                    tags,
                    by: write.actor.agent_id,
                    at: write.at,
                }])
            }
            ConversationCommand::RemoveTag { write, tag } => {
                self.authorize_write(&write)?;
                if !write.actor.permissions.can_use_tags {
                    return Err(ConversationError::TagsNotAllowed);
                }
                if !self.tags.contains(&tag) {
                    return Ok(vec![]);
                }
                let tags = self.tags.iter().filter(|t| **t != tag).cloned().collect();
                Ok(vec![ConversationEvent::TagRemoved {
                    tag,
                    tags,
                    by: write.actor.agent_id,
                    at: write.at,
                }])
            }
            ConversationCommand::Reply {
                write,
                message_id,
                template,
            } => {
                self.authorize_send(&write, template)?;
                Ok(vec![ConversationEvent::AgentReplied {
                    message_id,
                    by: write.actor.agent_id,
                    at: write.at,
                }])
            }
            ConversationCommand::AcquireLock { .. }
            | ConversationCommand::ReleaseLock { .. }
            | ConversationCommand::ExpireLock { .. } => self.decide_lock(command),
            ConversationCommand::AddNote { .. } | ConversationCommand::AutoAssign { .. } => {
                self.decide_teamwork(command)
            }
            ConversationCommand::EraseCustomer { reason, by, at } => {
                if self.customer.is_none() {
                    return Err(ConversationError::NotFound);
                }
                if by.role != crate::agent::Role::Admin {
                    return Err(ConversationError::ErasureNotAllowed);
                }
                let reason = reason.trim().to_owned();
                if reason.is_empty() || reason.chars().count() > 500 {
                    return Err(ConversationError::InvalidReason);
                }
                Ok(vec![ConversationEvent::CustomerErased {
                    reason,
                    by: by.agent_id,
                    at,
                }])
            }
            ConversationCommand::ExpireContent { before, at } => {
                if self.customer.is_none() {
                    return Err(ConversationError::NotFound);
                }
                let hour = crate::privacy::CONTENT_KEY_SECONDS * 1_000;
                let millis = before.unix_millis().div_euclid(hour) * hour;
                let before = Timestamp::from_unix_millis(millis).unwrap_or(before);
                if self
                    .content_expired_before
                    // The same time again when a late message's key appeared in an hour
                    // already erased: its key goes too.
                    .is_some_and(|done| done > before)
                {
                    return Ok(vec![]);
                }
                Ok(vec![ConversationEvent::ContentExpired { before, at }])
            }
            ConversationCommand::MarkRead { write } => {
                self.authorize_write(&write)?;
                let up_to = self
                    .last_customer_message
                    .clone()
                    .ok_or(ConversationError::NothingToRead)?;
                Ok(vec![ConversationEvent::ReadByAgent {
                    up_to,
                    by: write.actor.agent_id,
                    at: write.at,
                }])
            }
            ConversationCommand::EvaluateSla { policies, at } => Ok(self.decide_sla(&policies, at)),
            ConversationCommand::WakeUp { at } => match self.status {
                ConversationStatus::Snoozed { until } if until <= at => {
                    Ok(vec![ConversationEvent::StatusChanged {
                        status: ConversationStatus::Open,
                        by: None,
                        reason: Some("snooze_ended".to_owned()),
                        at,
                    }])
                }
                _ => Ok(vec![]),
            },
        }
    }

    fn status_changed(
        &self,
        status: ConversationStatus,
        write: &Write,
        reason: Option<String>,
    ) -> ConversationEvent {
        ConversationEvent::StatusChanged {
            status,
            by: Some(write.actor.agent_id),
            reason,
            at: write.at,
        }
    }

    fn hand_back(&self, write: &Write, reason: Option<String>) -> Vec<ConversationEvent> {
        let mut events = Vec::new();
        if self.owner.is_some() {
            events.push(ConversationEvent::HandedBackToBot {
                by: write.actor.agent_id,
                reason: reason.clone(),
                at: write.at,
            });
        }
        if self.status != ConversationStatus::Pending {
            events.push(self.status_changed(ConversationStatus::Pending, write, reason));
        }
        events
    }

    fn unassign(&self, write: &Write) -> Vec<ConversationEvent> {
        if self.assigned_agent.is_none() && self.assigned_group.is_none() {
            return vec![];
        }
        vec![ConversationEvent::Unassigned {
            by: write.actor.agent_id,
            at: write.at,
        }]
    }

    fn start_or_identify(
        &self,
        phone_number_id: PhoneNumberId,
        customer: Customer,
        at: Timestamp,
    ) -> Result<Vec<ConversationEvent>, ConversationError> {
        let (Some(own_number), Some(known)) = (&self.phone_number_id, &self.customer) else {
            return Ok(vec![ConversationEvent::Started {
                phone_number_id,
                customer,
                started_at: at,
            }]);
        };
        if *own_number != phone_number_id {
            return Err(ConversationError::WrongPhoneNumber {
                expected: own_number.to_string(),
                actual: phone_number_id.to_string(),
            });
        }
        let merged = known.merged_with(customer);
        if merged == *known {
            return Ok(vec![]);
        }
        Ok(vec![ConversationEvent::CustomerIdentified {
            customer: merged,
        }])
    }
}

impl Aggregate for Conversation {
    const TYPE: &'static str = "Conversation";
    type Command = ConversationCommand;
    type Event = ConversationEvent;
    type Error = ConversationError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        self.version += 1;
        self.sla.apply(&event);
        match event {
            ConversationEvent::Started {
                phone_number_id,
                customer,
                ..
            } => {
                self.phone_number_id = Some(phone_number_id);
                self.customer = Some(customer);
            }
            ConversationEvent::CustomerIdentified { customer } => self.customer = Some(customer),
            ConversationEvent::CustomerProfileNamed { name } => self.profile_name = Some(name),
            ConversationEvent::CustomerMessageReceived {
                wamid,
                sent_at,
                window_closes_at,
            } => {
                if self.with_bot() && self.awaiting_bot_since.is_none() {
                    self.awaiting_bot_since = Some(sent_at);
                }
                self.last_customer_message_at = Some(sent_at);
                self.last_customer_message = Some(wamid);
                if window_closes_at.is_some() {
                    self.window_closes_at = window_closes_at;
                }
            }
            ConversationEvent::AutoAssigned { agent, .. } => self.assigned_agent = Some(agent),
            ConversationEvent::NoteAdded { .. } => {}
            // What the customer tells us afterwards is new data, recorded again.
            // As a reload reads it once the keys are gone: the number and user id erased.
            ConversationEvent::CustomerErased { .. } => {
                self.profile_name = None;
                self.customer = self.customer.as_ref().map(Customer::erased);
            }
            ConversationEvent::ContentExpired { before, .. } => {
                self.content_expired_before = Some(before);
            }
            ConversationEvent::Assigned { agent, group, .. } => {
                self.assigned_agent = agent;
                self.assigned_group = group;
            }
            ConversationEvent::Unassigned { .. } => {
                self.assigned_agent = None;
                self.assigned_group = None;
            }
            ConversationEvent::TakenOver { agent, .. } => {
                self.owner = Some(agent);
                self.awaiting_bot_since = None;
            }
            ConversationEvent::AgentReplied { .. } => self.awaiting_bot_since = None,
            ConversationEvent::HandedOff { group, .. } => {
                self.status = ConversationStatus::Open;
                self.owner = None;
                self.assigned_agent = None;
                self.assigned_group = group;
                self.awaiting_bot_since = None;
            }
            ConversationEvent::ReadByAgent { .. }
            | ConversationEvent::SlaMet { .. }
            | ConversationEvent::SlaBreached { .. } => {}
            ConversationEvent::HandedBackToBot { .. } => self.owner = None,
            ConversationEvent::StatusChanged { status, .. } => {
                self.status = status;
                if status != ConversationStatus::Pending {
                    self.awaiting_bot_since = None;
                }
            }
            ConversationEvent::TagAdded { tags, .. }
            | ConversationEvent::TagRemoved { tags, .. } => self.tags = tags,
            ConversationEvent::LockAcquired {
                agent,
                acquired_at,
                expires_at,
            } => {
                self.lock = Some(Lock {
                    agent,
                    acquired_at,
                    expires_at,
                });
            }
            ConversationEvent::LockRenewed { expires_at, .. } => {
                if let Some(lock) = self.lock.as_mut() {
                    lock.expires_at = expires_at;
                }
            }
            ConversationEvent::LockReleased { .. } | ConversationEvent::LockExpired { .. } => {
                self.lock = None
            }
        }
    }
}

mod bot;
mod locks;
mod sla;
mod teamwork;
pub use teamwork::{MAX_MENTIONS, MAX_NOTE_CHARS};

#[cfg(test)]
mod bot_tests;
#[cfg(test)]
mod tests;
