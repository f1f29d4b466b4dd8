//! What can be asked of a message.

use crate::message::{MessageContent, MessageContext, OutboundContent, Referral, StatusReport};
use crate::{AgentId, ConversationId, Customer, MetaError, PhoneNumberId, Timestamp};

/// A request to a [`Message`](super::Message) aggregate.
#[derive(Debug, Clone, PartialEq)]
pub enum MessageCommand {
    /// Record a message the customer sent (from a webhook). A repeat is a no-op.
    ReceiveInbound {
        /// The conversation it belongs to.
        conversation_id: ConversationId,
        /// The business number it was sent to.
        phone_number_id: PhoneNumberId,
        /// The sender.
        customer: Customer,
        /// The sender's profile name, if given.
        profile_name: Option<String>,
        /// Meta's timestamp of the message.
        sent_at: Timestamp,
        /// What it says.
        content: MessageContent,
        /// Reply / forward context.
        context: Option<MessageContext>,
        /// The ad that brought the customer.
        referral: Option<Referral>,
        /// Errors Meta attached (e.g. 131051 for unsupported types).
        errors: Vec<MetaError>,
    },
    /// Record a message the business sent from the WhatsApp Business app (an echo).
    RecordEcho {
        /// The conversation it belongs to.
        conversation_id: ConversationId,
        /// The business number it was sent from.
        phone_number_id: PhoneNumberId,
        /// The recipient.
        customer: Customer,
        /// Meta's timestamp.
        sent_at: Timestamp,
        /// What it says.
        content: MessageContent,
    },
    /// Apply a delivery status report. Statuses only move forward; repeats are no-ops.
    RecordStatus {
        /// The conversation of the recipient.
        conversation_id: ConversationId,
        /// The business number the message was sent from.
        phone_number_id: PhoneNumberId,
        /// The report.
        report: StatusReport,
    },
    /// Record an agent's request to send (before any network call). A repeat of the same
    /// client id lands on the same message and is a no-op.
    RequestOutbound {
        /// The conversation.
        conversation_id: ConversationId,
        /// The business number to send from.
        phone_number_id: PhoneNumberId,
        /// The recipient.
        customer: Customer,
        /// The client's id for this send (idempotency).
        client_id: String,
        /// What to send (validated).
        content: OutboundContent,
        /// The message replied to (quoted), if any.
        reply_to: Option<String>,
        /// `high`, `normal` or `low`.
        priority: String,
        /// Who asked.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// Record Meta's answer to a send: accepted with its wamid, or refused for good.
    RecordSendOutcome {
        /// Meta's message id, when accepted.
        wamid: Option<String>,
        /// Meta's error, when refused.
        error: Option<MetaError>,
        /// Which attempt this was (1 = the first).
        attempt: u32,
        /// When.
        at: Timestamp,
    },
    /// Record a failed send attempt that will be retried.
    RecordSendAttemptFailed {
        /// Why (Meta's error, or a network failure as code 0).
        error: MetaError,
        /// Which attempt failed.
        attempt: u32,
        /// When the next attempt is due.
        retry_at: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// Give up after the last attempt: the message waits in the dead-letter queue.
    DeadLetter {
        /// The last error.
        error: MetaError,
        /// Attempts made.
        attempts: u32,
        /// When.
        at: Timestamp,
    },
    /// Drop a dead-lettered message for good (an operator's purge).
    PurgeDeadLetter {
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
    /// Record what became of the file of an inbound media message: kept in our storage, or
    /// unavailable (and why). Recorded once; later reports are no-ops.
    RecordMedia {
        /// The outcome.
        outcome: MediaOutcome,
        /// When.
        at: Timestamp,
    },
    /// Record that the message's kept file was deleted (the retention period ended, the
    /// customer was erased); a file not yet fetched is given up (recorded unavailable), so
    /// that a fetch in flight keeps nothing.
    ForgetMedia {
        /// Why (`retention`).
        reason: String,
        /// When.
        at: Timestamp,
    },
    /// Queue a dead-lettered message again (an operator's retry).
    Requeue {
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
}

/// What became of a message's file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaOutcome {
    /// Fetched, checked and kept.
    Stored {
        /// SHA-256 of the bytes, lower-case hex (also the storage key).
        sha256: String,
        /// Bytes.
        size: u64,
        /// Media type Meta gave.
        mime_type: String,
    },
    /// Not kept.
    Unavailable {
        /// Why (`too_large`, `checksum_mismatch`, `expired`, `fetch_failed: …`).
        reason: String,
    },
}
