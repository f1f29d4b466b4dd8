//! A WhatsApp message: what was said, in which conversation, and how far it got.
//!
//! Inbound messages are keyed by their wamid, so a webhook delivered twice yields one message.
//! Delivery statuses only move forward (sent < delivered < read < played); `failed` is sticky.

mod aggregate;
mod commands;
mod content;
mod errors;
mod events;
mod outbound;
mod status;

pub use aggregate::{Direction, Message};
pub use commands::{MediaOutcome, MessageCommand};
pub use content::{
    Interactive, Media, MessageContent, MessageContext, OrderItem, Referral, ReferredProduct,
};
pub use errors::MessageError;
pub use events::MessageEvent;
pub use outbound::{
    ContentError, ListRow, ListSection, OutboundContent, OutboundMedia, ReplyButton,
};
pub use status::{DeliveryStatus, StatusReport};
