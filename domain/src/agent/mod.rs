//! An agent: someone who answers customers (or administers the inbox).
//!
//! Their lifecycle — registration, role, groups, permissions, working hours, deactivation —
//! is recorded as events, so auditors can replay who was given which rights and when.
//! Passwords are not: only the fact that one changed. Credentials live outside the event log,
//! which is exported and read by analytics consumers.

mod aggregate;
mod availability;
mod commands;
mod email;
mod errors;
mod events;
mod grants;
mod permissions;
mod roster;
pub(crate) mod working_hours;

pub use aggregate::Agent;
pub use availability::Availability;
pub use commands::{AgentCommand, AgentUpdate};
pub use email::Email;
pub use errors::AgentError;
pub use events::AgentEvent;
pub use grants::{MAX_GROUPS, MAX_NAME_CHARS};
pub use permissions::{ChatScope, Permissions, PermissionsPatch, Role};
pub use roster::{
    AdminRoster, AdminRosterCommand, AdminRosterError, AdminRosterEvent, ADMIN_ROSTER_ID,
};
pub use working_hours::{WorkingHours, WorkingHoursError, WorkingHoursSpec};
