//! Roles and permissions (the get.chat model): which conversations an agent may read and
//! write, and which features they may use.

use serde::{Deserialize, Serialize};

/// A role: each comes with default permissions, which an admin may then adjust per agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Runs the inbox: everything, including managing agents.
    Admin,
    /// Leads a team: every conversation, templates, analytics; may force-release locks.
    Supervisor,
    /// Answers customers: conversations assigned to them or their groups.
    Agent,
}

/// Which conversations a permission covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChatScope {
    /// Every conversation.
    All,
    /// Conversations assigned to the agent or to one of the agent's groups.
    Group,
    /// Conversations assigned to the agent.
    Assigned,
    /// None.
    None,
}

impl ChatScope {
    /// Whether a conversation with this assignment is covered, for an agent in `agent_groups`.
    pub fn covers(
        self,
        agent: crate::AgentId,
        agent_groups: &[crate::GroupId],
        assigned_agent: Option<crate::AgentId>,
        assigned_group: Option<crate::GroupId>,
    ) -> bool {
        let mine = assigned_agent == Some(agent);
        match self {
            Self::All => true,
            Self::Group => mine || assigned_group.is_some_and(|g| agent_groups.contains(&g)),
            Self::Assigned => mine,
            Self::None => false,
        }
    }
}

/// What an agent may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Permissions {
    /// Which conversations the agent may see.
    pub can_read_chats: ChatScope,
    /// Which conversations the agent may write to (send, assign, change status, lock).
    pub can_write_to_chats: ChatScope,
    /// Add and remove tags.
    pub can_use_tags: bool,
    /// Manage message templates.
    pub can_manage_templates: bool,
    /// See analytics.
    pub can_view_analytics: bool,
    /// Read the event stream and exports.
    pub can_export_data: bool,
    /// Create, change and deactivate agents and groups.
    pub can_manage_agents: bool,
}

impl Permissions {
    /// The defaults of a role.
    pub fn for_role(role: Role) -> Self {
        match role {
            Role::Admin => Self {
                can_read_chats: ChatScope::All,
                can_write_to_chats: ChatScope::All,
                can_use_tags: true,
                can_manage_templates: true,
                can_view_analytics: true,
                can_export_data: true,
                can_manage_agents: true,
            },
            Role::Supervisor => Self {
                can_read_chats: ChatScope::All,
                can_write_to_chats: ChatScope::All,
                can_use_tags: true,
                can_manage_templates: true,
                can_view_analytics: true,
                can_export_data: false,
                can_manage_agents: false,
            },
            Role::Agent => Self {
                can_read_chats: ChatScope::Group,
                can_write_to_chats: ChatScope::Group,
                can_use_tags: true,
                can_manage_templates: false,
                can_view_analytics: false,
                can_export_data: false,
                can_manage_agents: false,
            },
        }
    }
}
