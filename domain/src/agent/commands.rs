//! What can be asked of an agent record.

use crate::agent::{Email, Permissions, Role, WorkingHours};
use crate::{AgentId, GroupId, Timestamp};

/// Changes to an agent; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AgentUpdate {
    /// New display name.
    pub name: Option<String>,
    /// New role (permissions are not reset: set them explicitly if wanted).
    pub role: Option<Role>,
    /// New groups.
    pub groups: Option<Vec<GroupId>>,
    /// New permissions.
    pub permissions: Option<Permissions>,
    /// New working hours; `Some(None)` removes them (always on duty).
    pub working_hours: Option<Option<WorkingHours>>,
}

/// A request to an [`Agent`](super::Agent).
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
        /// Who registers them (`None`: the command line or first start).
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// Change name, role, groups, permissions or working hours.
    Update {
        /// The changes.
        update: AgentUpdate,
        /// Who.
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// Record that the password was set (the hash itself is kept outside the log).
    RecordPasswordChange {
        /// Who.
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// Stop the agent from working: tokens stop working at once.
    Deactivate {
        /// Who.
        by: Option<AgentId>,
        /// Why.
        reason: Option<String>,
        /// When.
        at: Timestamp,
    },
    /// Let a deactivated agent work again.
    Reactivate {
        /// Who.
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
}
