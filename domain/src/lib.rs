#![warn(missing_docs)]
//! Switchboard's domain: the business rules of a shared WhatsApp inbox, as event-sourced
//! aggregates. Nothing here does I/O; time arrives on commands, so every rule is testable
//! with fixed instants.
//!
//! - [`message`] — one WhatsApp message (inbound or outbound), keyed by its id; its content and
//!   its delivery status, which only moves forward.
//! - [`conversation`] — one customer on one business phone number; the customer's identity and
//!   the 24-hour customer-service window.
//! - [`agent`] — the people who answer: role, groups, permissions, working hours.
//! - [`group`] — teams conversations can be assigned to.
//! - [`actor`] — who is acting, with what rights, at the moment of a command.
//! - [`template`] — a message template's lifecycle as Meta reports it.
//! - [`business_account`] — account-level notifications from Meta (quality, reviews, calls, ...).
//! - [`recent`] — a bounded memory of recent report ids, for deduplication.
//! - [`upcasting`] — older event shapes turned into current ones, for every reader of the log.

pub mod actor;
pub mod agent;
pub mod api_key;
pub mod assignment;
pub mod business_account;
pub mod conversation;
pub mod customer;
pub mod group;
pub mod ids;
pub mod message;
pub mod meta_error;
pub mod privacy;
pub mod quick_reply;
pub mod recent;
pub mod sla;
pub mod template;
pub mod time;
pub mod upcasting;
pub mod upload;
pub mod webhook_endpoint;

pub use actor::Actor;
pub use customer::Customer;
pub use ids::{AgentId, ConversationId, GroupId, PhoneNumberId, WaMessageId};
pub use meta_error::MetaError;
pub use recent::{RecentIds, RECENT_REPORTS};
pub use time::Timestamp;
