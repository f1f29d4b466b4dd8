//! What became true of a conversation. Event type names are frozen once shipped.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

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
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
