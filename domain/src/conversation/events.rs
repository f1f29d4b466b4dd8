//! What became true of a conversation. Event type names are frozen once shipped. Every event an
//! agent causes says who (`by`) and, where they gave one, why (`reason`).

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::conversation::{ConversationStatus, Tag};
use crate::sla::SlaTarget;
use crate::{AgentId, Customer, GroupId, PhoneNumberId, Timestamp, WaMessageId};

/// An event of a [`Conversation`](super::Conversation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum ConversationEvent {
    /// The first sign of a customer on a business number.
    Started {
        /// The business number.
        phone_number_id: PhoneNumberId,
        /// The customer.
        customer: Customer,
        /// When (Meta's timestamp of the first thing seen).
        started_at: Timestamp,
    },
    /// We learnt another identifier of the customer (a BSUID beside the phone, or the reverse).
    CustomerIdentified {
        /// Everything now known.
        customer: Customer,
    },
    /// The customer's WhatsApp profile name changed (or was first seen).
    CustomerProfileNamed {
        /// The profile name.
        name: String,
    },
    /// The customer wrote a message newer than any before.
    CustomerMessageReceived {
        /// The message.
        wamid: WaMessageId,
        /// Meta's timestamp of it.
        sent_at: Timestamp,
        /// When free-form replies stop being allowed, if this message opened the window.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window_closes_at: Option<Timestamp>,
    },
    /// The conversation was assigned.
    Assigned {
        /// The agent, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<AgentId>,
        /// The group, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupId>,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// The assignment was removed.
    Unassigned {
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// An agent took the conversation over (from the bot or from another agent).
    TakenOver {
        /// The new owner (who did it).
        agent: AgentId,
        /// The previous owner (`None`: the bot).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<AgentId>,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// The conversation went back to the bot.
    HandedBackToBot {
        /// Who.
        by: AgentId,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// The bot's part ended: the conversation is open for the humans, unowned, and waits for
    /// an agent (assignment picks it up as it would a new conversation).
    HandedOff {
        /// The group it goes to (`None`: unassigned).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupId>,
        /// Why (`bot_timeout`, `bot_unreachable` when the watch decided).
        reason: String,
        /// Who (the bot's key or an agent; `None`: the bot-reply watch).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// The status changed.
    StatusChanged {
        /// The new status.
        status: ConversationStatus,
        /// Who (`None`: the customer's message or the snooze timer).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// A tag was added.
    TagAdded {
        /// The tag.
        tag: Tag,
        /// Every tag now.
        tags: Vec<Tag>,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// A tag was removed.
    TagRemoved {
        /// The tag.
        tag: Tag,
        /// Every tag now.
        tags: Vec<Tag>,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// An agent read the customer's messages up to `up_to` (blue ticks for the customer).
    ReadByAgent {
        /// The newest customer message read.
        up_to: WaMessageId,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// An agent replied: the message (its own aggregate) was accepted for sending. Recorded on
    /// the conversation so that lock, scope, window and version are decided with the append,
    /// and the version moves on with every reply.
    AgentReplied {
        /// The outbound message.
        message_id: String,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// An agent took the lock.
    LockAcquired {
        /// The holder.
        agent: AgentId,
        /// When.
        acquired_at: Timestamp,
        /// When it lapses.
        expires_at: Timestamp,
    },
    /// The holder extended the lock.
    LockRenewed {
        /// The holder.
        agent: AgentId,
        /// When.
        renewed_at: Timestamp,
        /// When it now lapses.
        expires_at: Timestamp,
    },
    /// The lock was released (by its holder, or forced by a supervisor).
    LockReleased {
        /// The holder.
        agent: AgentId,
        /// Who released it.
        by: AgentId,
        /// Whether someone else forced it open.
        #[serde(default)]
        forced: bool,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// The lock lapsed without being released.
    LockExpired {
        /// The holder.
        agent: AgentId,
        /// When it lapsed.
        expired_at: Timestamp,
    },
    /// An agent wrote a private note: for the team, never sent to the customer.
    NoteAdded {
        /// The note's id.
        note_id: String,
        /// The text.
        text: String,
        /// Agents mentioned (notified).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<AgentId>,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// The customer's data in this conversation up to now was erased on request: every
    /// reader shows `[erased]` in place of its content, name and number.
    CustomerErased {
        /// Why (the request's reference).
        reason: String,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// What was said before `before` (a whole hour) passed the retention period and was
    /// erased: every reader shows `[erased]` in place of those messages' and notes' content.
    ContentExpired {
        /// Contents written before this time are gone (on an hour boundary).
        before: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// The auto-assignment gave the conversation to an agent.
    AutoAssigned {
        /// The agent.
        agent: AgentId,
        /// The group whose policy decided (`None`: the account's default policy).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        group: Option<GroupId>,
        /// The policy: `round_robin` or `least_busy`.
        policy: String,
        /// Why this agent (e.g. their open conversations against their capacity).
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// An SLA threshold was kept: answered (or resolved) by its due time.
    SlaMet {
        /// The policy.
        policy_id: String,
        /// What was measured.
        target: SlaTarget,
        /// When the measured stretch began.
        since: Timestamp,
        /// When it was due.
        due_at: Timestamp,
        /// When it was answered (resolved).
        at: Timestamp,
    },
    /// An SLA threshold was not kept.
    SlaBreached {
        /// The policy.
        policy_id: String,
        /// What was measured.
        target: SlaTarget,
        /// When the measured stretch began.
        since: Timestamp,
        /// When it was due.
        due_at: Timestamp,
        /// When the breach was recorded (after `due_at`).
        at: Timestamp,
    },
}

impl DomainEvent for ConversationEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Started { .. } => "ConversationStarted",
            Self::CustomerIdentified { .. } => "ConversationCustomerIdentified",
            Self::CustomerProfileNamed { .. } => "ConversationCustomerProfileNamed",
            Self::CustomerMessageReceived { .. } => "ConversationCustomerMessageReceived",
            Self::Assigned { .. } => "ConversationAssigned",
            Self::Unassigned { .. } => "ConversationUnassigned",
            Self::TakenOver { .. } => "ConversationTakenOver",
            Self::HandedBackToBot { .. } => "ConversationHandedBackToBot",
            Self::HandedOff { .. } => "ConversationHandedOff",
            Self::StatusChanged { .. } => "ConversationStatusChanged",
            Self::TagAdded { .. } => "ConversationTagAdded",
            Self::TagRemoved { .. } => "ConversationTagRemoved",
            Self::ReadByAgent { .. } => "ConversationReadByAgent",
            Self::AgentReplied { .. } => "ConversationAgentReplied",
            Self::NoteAdded { .. } => "ConversationNoteAdded",
            Self::CustomerErased { .. } => "ConversationCustomerErased",
            Self::ContentExpired { .. } => "ConversationContentExpired",
            Self::AutoAssigned { .. } => "ConversationAutoAssigned",
            Self::SlaMet { .. } => "ConversationSlaMet",
            Self::SlaBreached { .. } => "ConversationSlaBreached",
            Self::LockAcquired { .. } => "LockAcquired",
            Self::LockRenewed { .. } => "LockRenewed",
            Self::LockReleased { .. } => "LockReleased",
            Self::LockExpired { .. } => "LockExpired",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
