//! What became true of an agent. Event type names are frozen once shipped.

use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};

use crate::agent::{Availability, Email, Permissions, Role, WorkingHours};
use crate::{AgentId, ConversationId, GroupId, Timestamp};

/// An event of an [`Agent`](super::Agent). Each says who did it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AgentEvent {
    /// The agent was registered.
    Registered {
        /// Login email.
        email: Email,
        /// Display name.
        name: String,
        /// Role.
        role: Role,
        /// Groups.
        groups: Vec<GroupId>,
        /// Permissions.
        permissions: Permissions,
        /// Working hours.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        working_hours: Option<WorkingHours>,
        /// Whether the password was chosen for them and must be changed.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        one_time_password: bool,
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// The display name changed.
    Renamed {
        /// New name.
        name: String,
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// The role changed.
    RoleChanged {
        /// New role.
        role: Role,
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// Group membership changed.
    GroupsChanged {
        /// New groups.
        groups: Vec<GroupId>,
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// Permissions changed.
    PermissionsChanged {
        /// New permissions.
        permissions: Permissions,
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// Working hours changed (`None`: always on duty).
    WorkingHoursChanged {
        /// New hours.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        working_hours: Option<WorkingHours>,
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// The password was set or changed.
    PasswordChanged {
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// The agent was deactivated.
    Deactivated {
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// The agent was reactivated.
    Reactivated {
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
    /// The agent exported everything held about one customer (an access request).
    CustomerDataExported {
        /// The customer's conversations.
        conversations: Vec<ConversationId>,
        /// When.
        at: Timestamp,
    },
    /// The agent's availability changed.
    AvailabilityChanged {
        /// Now.
        availability: Availability,
        /// Why (`disconnected`: no socket for the grace period).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Who (`None`: the server).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for AgentEvent {
    fn event_type(&self) -> String {
        match self {
            Self::Registered { .. } => "AgentRegistered",
            Self::Renamed { .. } => "AgentRenamed",
            Self::RoleChanged { .. } => "AgentRoleChanged",
            Self::GroupsChanged { .. } => "AgentGroupsChanged",
            Self::PermissionsChanged { .. } => "AgentPermissionsChanged",
            Self::WorkingHoursChanged { .. } => "AgentWorkingHoursChanged",
            Self::PasswordChanged { .. } => "AgentPasswordChanged",
            Self::Deactivated { .. } => "AgentDeactivated",
            Self::Reactivated { .. } => "AgentReactivated",
            Self::AvailabilityChanged { .. } => "AgentAvailabilityChanged",
            Self::CustomerDataExported { .. } => "AgentCustomerDataExported",
        }
        .to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}
