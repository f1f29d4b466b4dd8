//! Who is acting, with which rights, at the moment of a command.

use serde::{Deserialize, Serialize};

use crate::agent::{Permissions, Role};
use crate::{AgentId, GroupId};

/// An agent at work: their rights as they stood when the command was given.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// Who.
    pub agent_id: AgentId,
    /// Their role.
    pub role: Role,
    /// Their groups.
    pub groups: Vec<GroupId>,
    /// Their permissions.
    pub permissions: Permissions,
    /// Whether it is within their working hours (outside them: read-only).
    pub on_duty: bool,
    /// A bot's API key: it may write only to conversations that are with the bot.
    #[serde(default)]
    pub bot: bool,
}

impl Actor {
    /// Whether they may read a conversation with this assignment.
    pub fn may_read(&self, agent: Option<AgentId>, group: Option<GroupId>) -> bool {
        self.permissions
            .can_read_chats
            .covers(self.agent_id, &self.groups, agent, group)
    }

    /// Whether they may write to a conversation with this assignment (and are on duty).
    pub fn may_write(&self, agent: Option<AgentId>, group: Option<GroupId>) -> bool {
        self.on_duty
            && self
                .permissions
                .can_write_to_chats
                .covers(self.agent_id, &self.groups, agent, group)
    }
}
