//! The closed sets of strings the read models answer with, described as enums for the API
//! description (the views keep plain strings, as the tables do): a generated client gets a
//! union type instead of `string`.

#![allow(dead_code)] // documentation only: never built, described

use utoipa::ToSchema;

/// Where a conversation stands.
#[derive(ToSchema)]
#[schema(as = ConversationStatus, rename_all = "snake_case")]
pub enum ConversationStatusDoc {
    /// Waiting for, or with, an agent.
    Open,
    /// With the bot.
    Pending,
    /// Set aside until a time.
    Snoozed,
    /// Done.
    Resolved,
}

/// Which way a message went (`note`: an internal note, never sent).
#[derive(ToSchema)]
#[schema(as = MessageDirection, rename_all = "snake_case")]
pub enum DirectionDoc {
    /// From the customer.
    Inbound,
    /// To the customer.
    Outbound,
    /// Between agents.
    Note,
}

/// Whether an agent takes new conversations.
#[derive(ToSchema)]
#[schema(as = Availability, rename_all = "snake_case")]
pub enum AvailabilityDoc {
    /// Working and taking new conversations.
    Online,
    /// Working, not taking new ones.
    Busy,
    /// Away.
    Offline,
}

/// Who may use a quick reply.
#[derive(ToSchema)]
#[schema(as = QuickReplyVisibility, rename_all = "snake_case")]
pub enum VisibilityDoc {
    /// Its author.
    Personal,
    /// A group's members.
    Group,
    /// Every agent.
    Everyone,
}
