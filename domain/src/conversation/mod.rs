//! A conversation: one customer on one business phone number, for as long as they talk.
//!
//! It knows who the customer is and when the 24-hour customer-service window closes: the
//! window opens (and restarts) with each customer message newer than the last one seen,
//! judged by Meta's timestamp, never by arrival time.

mod aggregate;
mod commands;
mod errors;
mod events;

pub use aggregate::{Conversation, SERVICE_WINDOW_SECONDS};
pub use commands::ConversationCommand;
pub use errors::ConversationError;
pub use events::ConversationEvent;
