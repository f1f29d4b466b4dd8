//! Who may receive a log event on a socket: conversation and message events follow the read
//! scope; account events go to the agent concerned and to those who manage agents.
//!
//! Both sides of the decision are functions of the log up to the event: the [`Audience`]
//! carries the conversation's assignment before and after it, and the [`Reader`] is the
//! receiving agent's rights at the same point of the log. Live delivery and catch-up compute
//! them the same way, so a replay gives exactly what live delivery gave.

use serde_json::Value;
use switchboard_domain::agent::{Agent, ChatScope};
use switchboard_domain::{AgentId, GroupId};
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
    /// The assignment a `ConversationAssigned`, `ConversationAutoAssigned` (which names the
    /// group it keeps) or `ConversationUnassigned` event sets, if the event is one of those.
    pub fn set_by(event: &RecordedEvent) -> Option<Self> {
        let variant = match event.event_type.as_str() {
            "ConversationAssigned" => "Assigned",
            "ConversationAutoAssigned" => "AutoAssigned",
            "ConversationHandedOff" => "HandedOff",
            "ConversationUnassigned" => return Some(Self::default()),
            _ => return None,
        };
        let data = event.payload.get(variant);
        let field = |name| data.and_then(|d| d.get(name)).and_then(Value::as_str);
        Some(Self {
            agent: field("agent").and_then(AgentId::parse),
            group: field("group").and_then(GroupId::parse),
        })
    }
}

/// The agents a `ConversationNoteAdded` event mentions.
pub fn mentioned_by(event: &RecordedEvent) -> Vec<AgentId> {
    if event.event_type != "ConversationNoteAdded" {
        return vec![];
    }
    event
        .payload
        .pointer("/NoteAdded/mentions")
        .and_then(Value::as_array)
        .map_or_else(Vec::new, |ids| {
            ids.iter()
                .filter_map(|id| id.as_str().and_then(AgentId::parse))
                .collect()
        })
}

/// What the fan-out indexes sockets by, and looks events up by: a socket may receive an event
/// exactly when the socket's agent, with their rights at that event ([`Reader::keys`]), and
/// the event ([`Audience::keys`]) share a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// Every conversation (read scope `all`).
    AllConversations,
    /// The conversations assigned to this group.
    Group(GroupId),
    /// The conversations assigned to this agent.
    AssignedTo(AgentId),
    /// This agent's account events.
    Account(AgentId),
    /// Events for those who manage agents.
    Managers,
}

/// Who may receive one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// A conversation or message event: whoever may read the conversation as assigned after
    /// the event, or before it (so an agent sees a conversation being taken away).
    Conversation {
        /// The conversation.
        id: String,
        /// The assignment after the event.
        after: Assignment,
        /// The assignment before it.
        before: Assignment,
        /// Agents a private note mentions (among its readers, they also get a `mention`).
        mentioned: Vec<AgentId>,
    },
    /// An event of an agent account: that agent, and those who manage agents.
    Agent(AgentId),
    /// Everything else (groups, business accounts, templates): those who manage agents.
    Managers,
}

impl Audience {
    /// Whether `reader` may receive the event.
    pub fn admits(&self, reader: &Reader) -> bool {
        match self {
            Self::Conversation { after, before, .. } => {
                reader.may_read(*after) || (before != after && reader.may_read(*before))
            }
            Self::Agent(agent) => *agent == reader.agent_id || reader.manages_agents,
            Self::Managers => reader.manages_agents,
        }
    }

    /// The keys under which the readers it admits are indexed: a reader is admitted exactly
    /// when one of [`Reader::keys`] is among these.
    pub fn keys(&self) -> Vec<Key> {
        match self {
            Self::Conversation { after, before, .. } => {
                let mut keys = vec![Key::AllConversations];
                let sides = if before == after {
                    &[*after][..]
                } else {
                    &[*after, *before][..]
                };
                for side in sides {
                    keys.extend(side.agent.map(Key::AssignedTo));
                    keys.extend(side.group.map(Key::Group));
                }
                keys
            }
            Self::Agent(agent) => vec![Key::Account(*agent), Key::Managers],
            Self::Managers => vec![Key::Managers],
        }
    }
}

/// What decides which events an agent receives: read scope, groups, and whether they manage
/// agents. Working hours do not matter here (outside them an agent still reads).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    agent_id: AgentId,
    read: ChatScope,
    groups: Vec<GroupId>,
    manages_agents: bool,
}

impl Reader {
    /// The rights of `agent` as its record stands; an agent not (yet) registered, or
    /// deactivated, reads nothing but their own account's events.
    pub fn of(agent_id: AgentId, agent: &Agent) -> Self {
        match agent.permissions().filter(|_| agent.is_active()) {
            Some(permissions) => Self {
                agent_id,
                read: permissions.can_read_chats,
                groups: agent.groups().to_vec(),
                manages_agents: permissions.can_manage_agents,
            },
            None => Self {
                agent_id,
                read: ChatScope::None,
                groups: Vec::new(),
                manages_agents: false,
            },
        }
    }

    /// The keys to index their sockets under (see [`Key`]); their account's key always.
    pub fn keys(&self) -> Vec<Key> {
        let mut keys = vec![Key::Account(self.agent_id)];
        match self.read {
            ChatScope::All => keys.push(Key::AllConversations),
            ChatScope::Group => {
                keys.push(Key::AssignedTo(self.agent_id));
                keys.extend(self.groups.iter().copied().map(Key::Group));
            }
            ChatScope::Assigned => keys.push(Key::AssignedTo(self.agent_id)),
            ChatScope::None => {}
        }
        if self.manages_agents {
            keys.push(Key::Managers);
        }
        keys
    }

    /// Whether they may read a conversation with this assignment.
    pub fn may_read(&self, assignment: Assignment) -> bool {
        self.read.covers(
            self.agent_id,
            &self.groups,
            assignment.agent,
            assignment.group,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(read: ChatScope, groups: &[GroupId], manages_agents: bool) -> Reader {
        Reader {
            agent_id: AgentId::parse("00000000-0000-4000-8000-000000000001").expect("id"),
            read,
            groups: groups.to_vec(),
            manages_agents,
        }
    }

    fn group(n: u8) -> GroupId {
        GroupId::parse(&format!("00000000-0000-4000-8000-0000000001{n:02}")).expect("group")
    }

    fn to_group(n: u8) -> Assignment {
        Assignment {
            agent: None,
            group: Some(group(n)),
        }
    }

    fn conversation(before: Assignment, after: Assignment) -> Audience {
        Audience::Conversation {
            id: "c".to_owned(),
            after,
            before,
            mentioned: vec![],
        }
    }

    #[test]
    fn an_agent_losing_a_conversation_receives_the_event_that_takes_it_away() {
        let member = reader(ChatScope::Group, &[group(1)], false);
        assert!(conversation(to_group(1), Assignment::default()).admits(&member));
        assert!(conversation(Assignment::default(), to_group(1)).admits(&member));
        // Afterwards, its events no longer reach them.
        assert!(!conversation(Assignment::default(), Assignment::default()).admits(&member));
        assert!(!conversation(to_group(2), to_group(2)).admits(&member));
    }

    /// The index is exact: a reader shares a key with an event if and only if the event
    /// admits them, for every read scope, groups, role and assignment before and after.
    #[test]
    fn a_reader_shares_a_key_with_exactly_the_events_it_may_receive() {
        let me = AgentId::parse("00000000-0000-4000-8000-000000000001").expect("id");
        let other = AgentId::parse("00000000-0000-4000-8000-000000000002").expect("id");
        let scopes = [
            ChatScope::All,
            ChatScope::Group,
            ChatScope::Assigned,
            ChatScope::None,
        ];
        let memberships: [&[GroupId]; 4] = [&[], &[group(1)], &[group(2)], &[group(1), group(2)]];
        let mut assignments = Vec::new();
        for agent in [None, Some(me), Some(other)] {
            for group in [None, Some(group(1)), Some(group(2)), Some(group(3))] {
                assignments.push(Assignment { agent, group });
            }
        }
        let mut audiences = vec![
            Audience::Agent(me),
            Audience::Agent(other),
            Audience::Managers,
        ];
        for before in &assignments {
            for after in &assignments {
                audiences.push(conversation(*before, *after));
            }
        }
        for read in scopes {
            for groups in memberships {
                for manages_agents in [false, true] {
                    let reader = reader(read, groups, manages_agents);
                    let keys = reader.keys();
                    for audience in &audiences {
                        let shared = audience.keys().iter().any(|key| keys.contains(key));
                        assert_eq!(
                            shared,
                            audience.admits(&reader),
                            "{reader:?} and {audience:?}: keys {keys:?} and {:?}",
                            audience.keys()
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn account_events_reach_the_agent_concerned_and_managers_only() {
        let agent = reader(ChatScope::All, &[], false);
        let manager = reader(ChatScope::None, &[], true);
        let other = AgentId::parse("00000000-0000-4000-8000-000000000002").expect("id");
        assert!(Audience::Agent(agent.agent_id).admits(&agent));
        assert!(!Audience::Agent(other).admits(&agent));
        assert!(Audience::Agent(other).admits(&manager));
        assert!(!Audience::Managers.admits(&agent));
        assert!(Audience::Managers.admits(&manager));
    }
}
