//! A conversation: one customer on one business phone number, for as long as they talk.
//!
//! It knows who the customer is and when the 24-hour customer-service window closes (the window
//! opens and restarts with each customer message newer than the last one seen, judged by Meta's
//! timestamp). It decides ownership (bot or agent), assignment, status, tags and the short lock
//! an agent holds while answering: two agents never both hold it, because the decision is made
//! from the aggregate's own state and committed against its version.
//!
//! A new customer message reopens a resolved or snoozed conversation (the customer is waiting
//! again); a pending one stays with the bot.

mod aggregate;
mod commands;
mod errors;
mod events;
mod status;

pub use aggregate::{Conversation, MAX_MENTIONS, MAX_NOTE_CHARS, SERVICE_WINDOW_SECONDS};
pub use commands::{ConversationCommand, Write};
pub use errors::ConversationError;
pub use events::ConversationEvent;
pub use status::{ConversationStatus, Lock, Tag, MAX_TAGS};
