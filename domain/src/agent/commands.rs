//! What can be asked of an agent record.

use crate::agent::{Availability, Email, Permissions, PermissionsPatch, Role, WorkingHours};
use crate::{Actor, ConversationId, GroupId, Timestamp};

/// Changes to an agent; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New role (permissions are not reset: set them explicitly if wanted).
    pub role: Option<Role>,
    /// New groups.
    pub groups: Option<Vec<GroupId>>,
    /// Permissions to change (merged with the current ones).
    pub permissions: PermissionsPatch,
    /// New working hours; `Some(None)` removes them (always on duty).
    pub working_hours: Option<Option<WorkingHours>>,
}

/// A request to an [`Agent`](super::Agent). `by` is the acting agent with their rights as they
/// stand (`None`: the command line or first start, which may do anything): nobody grants a
/// role, permission or group they do not hold, and only admins manage admins.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentCommand {
    /// Register a new agent.
    Register {
        /// Login email (the agent id derives from it).
        email: Email,
        /// Display name.
        name: String,
        /// Role.
        role: Role,
        /// Groups.
        groups: Vec<GroupId>,
        /// Permissions; the role's defaults when `None`.
        permissions: Option<Permissions>,
        /// Working hours; always on duty when `None`.
        working_hours: Option<WorkingHours>,
        /// Whether the password was chosen for them (the first admin's generated one, one set
        /// by an admin): they must change it after signing in.
        one_time_password: bool,
        /// Who registers them.
        by: Option<Actor>,
        /// When.
        at: Timestamp,
    },
    /// Change name, role, groups, permissions or working hours.
    Update {
        /// The changes.
        update: AgentUpdate,
        /// The version of the agent the caller saw, if they said (409 if it moved on).
        expected_version: Option<u64>,
        /// How many other agents are active admins (the last one may not be demoted).
        other_admins: usize,
        /// Who.
        by: Option<Actor>,
        /// When.
        at: Timestamp,
    },
    /// Record that the password was set (the hash itself is kept outside the log).
    RecordPasswordChange {
        /// Who.
        by: Option<Actor>,
        /// When.
        at: Timestamp,
    },
    /// Stop the agent from working: tokens stop working at once.
    Deactivate {
        /// Who.
        by: Option<Actor>,
        /// Why.
        reason: Option<String>,
        /// How many other agents are active admins (the last one may not be deactivated).
        other_admins: usize,
        /// When.
        at: Timestamp,
    },
    /// Let a deactivated agent work again.
    Reactivate {
        /// Who.
        by: Option<Actor>,
        /// When.
        at: Timestamp,
    },
    /// Record that the agent exported everything held about one customer (a data-protection
    /// access request); refused unless the agent holds `can_export_data` as their record
    /// stands, so the check and the record are one decision.
    RecordCustomerExport {
        /// The customer's conversations that were exported (ids, not the customer's number,
        /// so that the log holds no personal data for it).
        conversations: Vec<ConversationId>,
        /// When.
        at: Timestamp,
    },
    /// Set the agent's availability (themselves, a manager, or the server when they left).
    SetAvailability {
        /// The new availability.
        availability: Availability,
        /// Why.
        reason: Option<String>,
        /// Only if the agent is still at this version (the server's check that they left).
        expected_version: Option<u64>,
        /// Who (`None`: the server).
        by: Option<Actor>,
        /// When.
        at: Timestamp,
    },
}
