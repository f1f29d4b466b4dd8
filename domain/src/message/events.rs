//! What became true of a message. Event type names are frozen once shipped.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::message::{
    DeliveryStatus, MessageContent, MessageContext, OutboundContent, Referral, StatusReport,
};
use crate::{AgentId, ConversationId, Customer, MetaError, PhoneNumberId, Timestamp};

/// An event of a [`Message`](super::Message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum MessageEvent {
    /// The customer sent a message.
    InboundReceived {
        /// Its conversation.
        conversation_id: ConversationId,
        /// The business number.
        phone_number_id: PhoneNumberId,
        /// The sender.
        customer: Customer,
        /// The sender's profile name, if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        profile_name: Option<String>,
        /// Meta's timestamp.
        sent_at: Timestamp,
        /// The content.
        content: MessageContent,
        /// Reply / forward context.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<MessageContext>,
        /// Ad referral.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        referral: Option<Referral>,
        /// Errors Meta attached.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        errors: Vec<MetaError>,
    },
    /// The business sent a message from the WhatsApp Business app; Meta echoed it to us.
    EchoRecorded {
        /// Its conversation.
        conversation_id: ConversationId,
        /// The business number.
        phone_number_id: PhoneNumberId,
        /// The recipient.
        customer: Customer,
        /// Meta's timestamp.
        sent_at: Timestamp,
        /// The content.
        content: MessageContent,
    },
    /// A status report moved the message forward (or, for `failed`, stopped it).
    StatusAdvanced {
        /// The recipient's conversation.
        conversation_id: ConversationId,
        /// The business number.
        phone_number_id: PhoneNumberId,
        /// The report that was applied.
        report: StatusReport,
    },
    /// An agent asked to send a message; stored before any network call.
    OutboundRequested {
        /// Its conversation.
        conversation_id: ConversationId,
        /// The business number to send from.
        phone_number_id: PhoneNumberId,
        /// The recipient.
        customer: Customer,
        /// The client's id for this send.
        client_id: String,
        /// What to send.
        content: OutboundContent,
        /// The message replied to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to: Option<String>,
        /// `high`, `normal` or `low`.
        priority: String,
        /// Who asked (version 1.0 called it `requested_by`; see `upcasting`).
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// Meta accepted an agent's message and gave it a wamid (statuses follow by webhook).
    OutboundAccepted {
        /// Meta's message id.
        wamid: String,
        /// Which attempt succeeded.
        attempt: u32,
        /// When.
        at: Timestamp,
    },
    /// A send attempt failed in a way worth retrying; the next is due at `retry_at`.
    OutboundAttemptFailed {
        /// Why.
        error: MetaError,
        /// Which attempt failed.
        attempt: u32,
        /// When the next attempt is due.
        retry_at: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// Every attempt failed: the message waits in the dead-letter queue.
    OutboundDeadLettered {
        /// The last error.
        error: MetaError,
        /// Attempts made.
        attempts: u32,
        /// When.
        at: Timestamp,
    },
    /// An operator queued a dead-lettered message again.
    OutboundRequeued {
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// An operator dropped a dead-lettered message: it will not be sent.
    DeadLetterPurged {
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// Meta refused an agent's message for good; the error says why.
    OutboundFailed {
        /// Meta's error.
        error: MetaError,
        /// Which attempt failed.
        attempt: u32,
        /// When.
        at: Timestamp,
    },
    /// The file of an inbound media message was fetched, checked and kept.
    MediaStored {
        /// SHA-256 of the bytes, lower-case hex (the storage key).
        sha256: String,
        /// Bytes.
        size: u64,
        /// Media type.
        mime_type: String,
        /// When.
        at: Timestamp,
    },
    /// The file of an inbound media message could not be kept.
    MediaUnavailable {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// The kept file was deleted (the retention period ended); the message keeps its content.
    MediaDeleted {
        /// Why.
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// A status report came late or after a failure and was recorded without being applied.
    StatusIgnored {
        /// The report.
        report: StatusReport,
        /// The status the message had when it arrived.
        current: DeliveryStatus,
    },
}

impl MessageEvent {
    /// The conversation this event belongs to, when it says.
    pub fn conversation_id(&self) -> Option<ConversationId> {
        match self {
            Self::InboundReceived {
                conversation_id, ..
            }
            | Self::EchoRecorded {
                conversation_id, ..
            }
            | Self::StatusAdvanced {
                conversation_id, ..
            }
            | Self::OutboundRequested {
                conversation_id, ..
            } => Some(*conversation_id),
            Self::StatusIgnored { .. }
            | Self::MediaStored { .. }
            | Self::MediaUnavailable { .. }
            | Self::MediaDeleted { .. }
            | Self::OutboundAccepted { .. }
            | Self::OutboundFailed { .. }
            | Self::OutboundAttemptFailed { .. }
            | Self::OutboundDeadLettered { .. }
            | Self::OutboundRequeued { .. }
            | Self::DeadLetterPurged { .. } => None,
        }
    }
}

impl DomainEvent for MessageEvent {
    fn event_type(&self) -> String {
        match self {
            Self::InboundReceived { .. } => "MessageInboundReceived",
            Self::EchoRecorded { .. } => "MessageEchoRecorded",
            Self::StatusAdvanced { .. } => "MessageStatusAdvanced",
            Self::StatusIgnored { .. } => "MessageStatusIgnored",
            Self::OutboundRequested { .. } => "MessageOutboundRequested",
            Self::OutboundAccepted { .. } => "MessageOutboundAccepted",
            Self::OutboundFailed { .. } => "MessageOutboundFailed",
            Self::OutboundAttemptFailed { .. } => "MessageOutboundAttemptFailed",
            Self::OutboundDeadLettered { .. } => "MessageOutboundDeadLettered",
            Self::OutboundRequeued { .. } => "MessageOutboundRequeued",
            Self::DeadLetterPurged { .. } => "MessageDeadLetterPurged",
            Self::MediaStored { .. } => "MessageMediaStored",
            Self::MediaUnavailable { .. } => "MessageMediaUnavailable",
            Self::MediaDeleted { .. } => "MessageMediaDeleted",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        match self {
            Self::OutboundRequested { .. } => "2.0",
            _ => "1.0",
        }
        .to_owned()
    }
}
