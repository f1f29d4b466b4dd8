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
    /// No rights at all (what a new API key starts from).
    pub fn nothing() -> Self {
        Self {
            can_read_chats: ChatScope::None,
            can_write_to_chats: ChatScope::None,
            can_use_tags: false,
            can_manage_templates: false,
            can_view_analytics: false,
            can_export_data: false,
            can_manage_agents: false,
        }
    }

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

impl Role {
    /// Admin above supervisor above agent.
    pub fn rank(self) -> u8 {
        match self {
            Self::Admin => 2,
            Self::Supervisor => 1,
            Self::Agent => 0,
        }
    }
}

impl ChatScope {
    /// All above group above assigned above none.
    pub fn rank(self) -> u8 {
        match self {
            Self::All => 3,
            Self::Group => 2,
            Self::Assigned => 1,
            Self::None => 0,
        }
    }
}

/// Permissions to change: a field left `None` keeps its current value. The aggregate merges
/// it with the agent's current permissions, so concurrent changes of different fields all hold.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PermissionsPatch {
    /// See [`Permissions::can_read_chats`].
    pub can_read_chats: Option<ChatScope>,
    /// See [`Permissions::can_write_to_chats`].
    pub can_write_to_chats: Option<ChatScope>,
    /// See [`Permissions::can_use_tags`].
    pub can_use_tags: Option<bool>,
    /// See [`Permissions::can_manage_templates`].
    pub can_manage_templates: Option<bool>,
    /// See [`Permissions::can_view_analytics`].
    pub can_view_analytics: Option<bool>,
    /// See [`Permissions::can_export_data`].
    pub can_export_data: Option<bool>,
    /// See [`Permissions::can_manage_agents`].
    pub can_manage_agents: Option<bool>,
}

impl PermissionsPatch {
    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// `base` with this patch applied.
    pub fn over(self, base: Permissions) -> Permissions {
        Permissions {
            can_read_chats: self.can_read_chats.unwrap_or(base.can_read_chats),
            can_write_to_chats: self.can_write_to_chats.unwrap_or(base.can_write_to_chats),
            can_use_tags: self.can_use_tags.unwrap_or(base.can_use_tags),
            can_manage_templates: self
                .can_manage_templates
                .unwrap_or(base.can_manage_templates),
            can_view_analytics: self.can_view_analytics.unwrap_or(base.can_view_analytics),
            can_export_data: self.can_export_data.unwrap_or(base.can_export_data),
            can_manage_agents: self.can_manage_agents.unwrap_or(base.can_manage_agents),
        }
    }
}

impl Permissions {
    /// The flags, by name, for rules that treat them alike.
    fn flags(&self) -> [(&'static str, bool); 5] {
        [
            ("can_use_tags", self.can_use_tags),
            ("can_manage_templates", self.can_manage_templates),
            ("can_view_analytics", self.can_view_analytics),
            ("can_export_data", self.can_export_data),
            ("can_manage_agents", self.can_manage_agents),
        ]
    }

    /// The first right in `self` that `before` did not have and `holder` does not hold: what
    /// `holder` would be granting without holding it.
    pub fn ungranted(
        &self,
        before: Option<&Permissions>,
        holder: &Permissions,
    ) -> Option<&'static str> {
        let widened = |new: ChatScope, old: Option<ChatScope>, own: ChatScope| {
            old.is_none_or(|old| new.rank() > old.rank()) && new.rank() > own.rank()
        };
        if widened(
            self.can_read_chats,
            before.map(|b| b.can_read_chats),
            holder.can_read_chats,
        ) {
            return Some("can_read_chats");
        }
        if widened(
            self.can_write_to_chats,
            before.map(|b| b.can_write_to_chats),
            holder.can_write_to_chats,
        ) {
            return Some("can_write_to_chats");
        }
        let old = before.map(Permissions::flags);
        self.flags()
            .iter()
            .zip(holder.flags())
            .enumerate()
            .find(|(i, ((_, new), (_, held)))| *new && !held && old.is_none_or(|old| !old[*i].1))
            .map(|(_, ((name, _), _))| *name)
    }

    /// Reading the whole event stream shows every conversation: export needs read scope `all`.
    pub fn consistent(&self) -> Result<(), &'static str> {
        if self.can_export_data && self.can_read_chats != ChatScope::All {
            return Err("can_export_data needs can_read_chats: all (the event stream shows every conversation)");
        }
        Ok(())
    }
}
