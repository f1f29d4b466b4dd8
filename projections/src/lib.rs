#![warn(missing_docs)]
//! Read models, built from the event log.
//!
//! A projection is one function from an event (with its log position) to SQL statements. The
//! [`runner`] applies a batch of them and advances the checkpoints in the same transaction, so a
//! crash never applies an event twice or skips one, and the same code runs live and in a rebuild.
//! A batch's statements are folded into multi-row statements where the SQL shows that cannot
//! change the result (`switchboard_store::coalesce`), and one batch is written while the next
//! is read and built.
//!
//! - [`conversations`] — the inbox list and conversation detail.
//! - [`search`] — full-text search over messages, customers and notes.
//! - [`messages`] — the messages of a conversation, with content and delivery statuses.
//! - [`templates`] — message templates as Meta last reported them.
//! - [`agents`] — agents and their group memberships.
//! - [`groups`] — the groups.
//! - [`assignment`] — auto-assignment policies and who last got a conversation.
//! - [`quick_replies`] — saved answers and who may use them.
//! - [`account_notifications`] — account-level notifications from Meta.
//! - [`analytics`] — queries over those read models: per agent and day, volumes, templates.
//! - [`api_keys`] — integrations' credentials as admins list them (never their secrets).
//! - [`webhook_endpoints`] — where outgoing webhooks go and what they receive.
//! - [`media`] — the files messages carry, fetched or not.
//! - [`response_times`] — how long customers wait for answers and conversations take to resolve.
//! - [`sla`] — SLA policies in force and the outcomes recorded against them.

pub mod account_notifications;
pub mod agents;
pub mod analytics;
pub mod api_keys;
pub mod applied;
pub mod assignment;
pub mod conversations;
mod decode;
pub mod error;
pub mod groups;
pub mod media;
pub mod messages;
pub mod page;
pub mod projection;
pub mod quick_replies;
pub mod rebuild;
pub mod response_times;
pub mod runner;
pub mod scope;
pub mod search;
pub mod sla;
pub mod stopped;
pub mod templates;
pub mod webhook_endpoints;
pub mod wire;

pub use decode::DecodedEvent;
pub use error::ProjectionError;
pub use projection::{all_projections, by_names, Projection};
pub use rebuild::Rebuild;
pub use runner::ProjectionRunner;
pub use scope::ReadScope;
pub use stopped::{Stopped, StoppedProjections};
