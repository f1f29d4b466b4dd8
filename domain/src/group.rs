//! Groups (teams) that conversations can be assigned to.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{AgentId, Timestamp};

/// Requests to a [`Group`].
#[derive(Debug, Clone, PartialEq)]
pub enum GroupCommand {
    /// Create the group (its id derives from the name, so names are unique).
    Create {
        /// Display name.
        name: String,
        /// Who.
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
}

/// Events of a [`Group`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum GroupEvent {
    /// The group was created.
    Created {
        /// Display name.
        name: String,
        /// Who.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        by: Option<AgentId>,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for GroupEvent {
    fn event_type(&self) -> String {
        "GroupCreated".to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a group command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// A group with this name exists.
    #[error("a group with this name already exists")]
    AlreadyExists,
    /// A name must say something.
    #[error("group name must not be empty")]
    EmptyName,
    /// Too long, or holding control characters.
    #[error(
        "group name must be at most {MAX_GROUP_NAME_CHARS} characters, without control characters"
    )]
    InvalidName,
}

/// The longest group name.
pub const MAX_GROUP_NAME_CHARS: usize = 100;

impl GroupError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyExists => "group_exists",
            Self::EmptyName | Self::InvalidName => "invalid_name",
        }
    }
}

/// A group of agents.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Group {
    name: Option<String>,
}

impl Group {
    /// Whether the group exists.
    pub fn exists(&self) -> bool {
        self.name.is_some()
    }
}

impl Aggregate for Group {
    const TYPE: &'static str = "Group";
    type Command = GroupCommand;
    type Event = GroupEvent;
    type Error = GroupError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let GroupCommand::Create { name, by, at } = command;
        if self.name.is_some() {
            return Err(GroupError::AlreadyExists);
        }
        let name = name.trim().to_owned();
        if name.is_empty() {
            return Err(GroupError::EmptyName);
        }
        if name.chars().count() > MAX_GROUP_NAME_CHARS || name.contains(char::is_control) {
            return Err(GroupError::InvalidName);
        }
        sink.write(GroupEvent::Created { name, by, at }, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let GroupEvent::Created { name, .. } = event;
        self.name = Some(name);
    }
}
