//! Who may receive a log event on a socket: conversation and message events follow the read
//! scope; account events go to the agent concerned and to those who manage agents.

use serde_json::Value;
use switchboard_domain::{Actor, AgentId, GroupId};
use switchboard_store::RecordedEvent;

/// Who a conversation is assigned to.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Assignment {
    /// The assigned agent.
    pub agent: Option<AgentId>,
    /// The assigned group.
    pub group: Option<GroupId>,
}

impl Assignment {
    /// From the read model's text columns.
    pub fn parse(agent: Option<&str>, group: Option<&str>) -> Self {
        Self {
            agent: agent.and_then(AgentId::parse),
            group: group.and_then(GroupId::parse),
        }
    }

    /// The assignment a `ConversationAssigned` / `ConversationUnassigned` event sets, if the
    /// event is one of those.
    pub fn set_by(event: &RecordedEvent) -> Option<Self> {
        match event.event_type.as_str() {
            "ConversationAssigned" => {
                let data = event.payload.get("Assigned");
                let field = |name| data.and_then(|d| d.get(name)).and_then(Value::as_str);
                Some(Self::parse(field("agent"), field("group")))
            }
            "ConversationUnassigned" => Some(Self::default()),
            _ => None,
        }
    }
}

/// Who may receive one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// A conversation or message event: whoever may read the conversation as assigned after
    /// the event, or before it (so an agent sees a conversation being taken away).
    Conversation {
        /// The assignment after the event.
        after: Assignment,
        /// The assignment before it.
        before: Assignment,
    },
    /// An event of an agent account: that agent, and those who manage agents.
    Agent(AgentId),
    /// Everything else (groups, business accounts, templates): those who manage agents.
    Managers,
}

impl Audience {
    /// Whether `actor` may receive the event.
    pub fn admits(&self, actor: &Actor) -> bool {
        match self {
            Self::Conversation { after, before } => {
                actor.may_read(after.agent, after.group)
                    || (before != after && actor.may_read(before.agent, before.group))
            }
            Self::Agent(agent) => *agent == actor.agent_id || actor.permissions.can_manage_agents,
            Self::Managers => actor.permissions.can_manage_agents,
        }
    }
}
