//! What can be asked of a conversation.

use crate::conversation::{ConversationStatus, Tag};
use crate::sla::SlaPolicyRef;
use crate::{Actor, AgentId, Customer, GroupId, PhoneNumberId, Timestamp, WaMessageId};

/// Who writes, when, and (optionally) which version of the conversation they last saw.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// The acting agent with their current rights.
    pub actor: Actor,
    /// The version the agent last saw; a newer one means someone else changed it meanwhile.
    pub expected_version: Option<u64>,
    /// When.
    pub at: Timestamp,
}

/// A request to a [`Conversation`](super::Conversation).
#[derive(Debug, Clone, PartialEq)]
pub enum ConversationCommand {
    /// Note that the customer wrote: starts the conversation if new, updates what we know of the
    /// customer, restarts the service window (for a message newer than any before) and reopens
    /// a resolved or snoozed conversation.
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
    /// Assign the conversation to an agent and/or a group (neither: unassign).
    Assign {
        /// Who, when.
        write: Write,
        /// The agent, if any.
        agent: Option<AgentId>,
        /// The group, if any.
        group: Option<GroupId>,
        /// Why, for the record.
        reason: Option<String>,
    },
    /// Remove the assignment.
    Unassign {
        /// Who, when.
        write: Write,
    },
    /// The acting agent takes the conversation over from the bot (or from another agent).
    TakeOver {
        /// Who, when.
        write: Write,
        /// Why.
        reason: Option<String>,
    },
    /// Give the conversation back to the bot (status pending).
    HandBackToBot {
        /// Who, when.
        write: Write,
        /// Why.
        reason: Option<String>,
    },
    /// The bot (or an agent) hands a conversation that is with the bot to the humans: it goes
    /// through assignment as a new conversation would.
    HandOff {
        /// Who, when.
        write: Write,
        /// The group to hand it to (`None`: keep its group, if any).
        group: Option<GroupId>,
        /// Why (`customer_asked_for_a_human`).
        reason: String,
    },
    /// The bot-reply watch: hands off a conversation whose customer has waited for the bot
    /// since `timeout_seconds` before `at`, or at once when `bot_unreachable`.
    HandOffUnanswered {
        /// How long the bot may take to answer.
        timeout_seconds: i64,
        /// The bot's endpoint is disabled, missing or failing.
        bot_unreachable: bool,
        /// Now.
        at: Timestamp,
    },
    /// Change the status (`pending` also hands the conversation back to the bot).
    ChangeStatus {
        /// Who, when.
        write: Write,
        /// The new status.
        status: ConversationStatus,
        /// Why.
        reason: Option<String>,
    },
    /// Add a tag (needs `can_use_tags`).
    AddTag {
        /// Who, when.
        write: Write,
        /// The tag.
        tag: Tag,
    },
    /// Remove a tag (needs `can_use_tags`).
    RemoveTag {
        /// Who, when.
        write: Write,
        /// The tag.
        tag: Tag,
    },
    /// An agent's reply: checked against lock, scope, working hours, the version the agent saw
    /// and (unless it is a template) the 24-hour window, atomically with the message's request.
    Reply {
        /// Who, when, and the version they saw.
        write: Write,
        /// The outbound message's id.
        message_id: String,
        /// Templates may be sent outside the window.
        template: bool,
    },
    /// Take the lock for `ttl_seconds`, or renew it when already held by the same agent.
    AcquireLock {
        /// Who.
        actor: Actor,
        /// The version the agent last saw, if they said (409 when it moved on).
        expected_version: Option<u64>,
        /// How long.
        ttl_seconds: i64,
        /// When.
        at: Timestamp,
    },
    /// Release the lock: the holder may; a supervisor or admin may force it, with a reason.
    ReleaseLock {
        /// Who.
        actor: Actor,
        /// Release someone else's lock.
        force: bool,
        /// Why (required when forcing).
        reason: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// Record that the lock lapsed (the expiry worker); a no-op unless it has.
    ExpireLock {
        /// Now.
        at: Timestamp,
    },
    /// Record which SLA thresholds of the policy covering the conversation were met or
    /// breached by `at` (the SLA worker). The conversation chooses the policy from its own
    /// group, tags and number, and records each outcome once.
    EvaluateSla {
        /// Every policy in force, oldest first.
        policies: Vec<SlaPolicyRef>,
        /// Now.
        at: Timestamp,
    },
    /// Wake a snoozed conversation whose time has come (the expiry worker).
    WakeUp {
        /// Now.
        at: Timestamp,
    },
    /// An agent read the conversation: the customer's messages up to the newest count as read.
    MarkRead {
        /// Who, when.
        write: Write,
    },
    /// A private note for the team (needs write rights; another agent's lock does not stop it).
    AddNote {
        /// Who, when.
        write: Write,
        /// The note's id (chosen by the caller, unique).
        note_id: String,
        /// The text.
        text: String,
        /// Agents to notify.
        mentions: Vec<AgentId>,
    },
    /// Erase what the customer said and who they are from this conversation's read models (a
    /// data-protection erasure request); admins only, with a reason.
    EraseCustomer {
        /// Why (the request's reference), at most 500 characters.
        reason: String,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
    /// The retention period's decision: erase what was said before `before` (rounded down to
    /// the hour; nothing when an earlier expiry already reached as far).
    ExpireContent {
        /// Contents written before this time go.
        before: Timestamp,
        /// When.
        at: Timestamp,
    },
    /// The auto-assignment's decision: give an open conversation that no agent has and no human
    /// owns to `agent` (refused otherwise, so two deciders never both assign it).
    AutoAssign {
        /// The agent.
        agent: AgentId,
        /// The group whose policy decided.
        group: Option<GroupId>,
        /// The policy.
        policy: String,
        /// Why this agent.
        reason: String,
        /// When.
        at: Timestamp,
    },
}
