//! What can be asked of a conversation.

use crate::{Actor, AgentId, Customer, GroupId, PhoneNumberId, Timestamp, WaMessageId};

/// A request to a [`Conversation`](super::Conversation).
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationCommand {
    /// Note that the customer wrote: starts the conversation if new, updates what we know of the
    /// customer, and (for a message newer than any before) restarts the service window.
    RecordCustomerMessage {
        /// The business number written to.
        phone_number_id: PhoneNumberId,
        /// The customer.
        customer: Customer,
        /// The customer's profile name, if given.
        profile_name: Option<String>,
        /// The message.
        wamid: WaMessageId,
        /// Meta's timestamp of the message.
        sent_at: Timestamp,
        /// Whether this kind of message opens the customer-service window.
        opens_window: bool,
    },
    /// Make sure the conversation exists (a status or an echo can be its first sign of life).
    Touch {
        /// The business number.
        phone_number_id: PhoneNumberId,
        /// The customer.
        customer: Customer,
        /// When it was seen.
        at: Timestamp,
    },
    /// Assign the conversation to an agent and/or a group.
    Assign {
        /// Who assigns.
        actor: Actor,
        /// The agent, if any.
        agent: Option<AgentId>,
        /// The group, if any.
        group: Option<GroupId>,
        /// Why, for the record.
        reason: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// Remove the assignment.
    Unassign {
        /// Who.
        actor: Actor,
        /// When.
        at: Timestamp,
    },
}
