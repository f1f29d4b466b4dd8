//! Auto-assignment policies: for each group (and a default for the account), how new and
//! reopened conversations reach agents.
//!
//! One [`AssignmentPolicy`] aggregate per pool: the id is a group id, or [`DEFAULT_POOL`] for
//! conversations in no group. The decisions themselves are the conversation's
//! (`ConversationAutoAssigned`, refused unless it is still waiting).

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::agent::Role;
use crate::{Actor, AgentId, Timestamp};

/// The pool of conversations in no group.
pub const DEFAULT_POOL: &str = "default";
/// The most open conversations a policy may give one agent.
pub const MAX_CAPACITY: u32 = 1_000;

/// How conversations are handed out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentMode {
    /// A supervisor assigns them.
    #[default]
    Manual,
    /// To the available agent who least recently got one.
    RoundRobin,
    /// To the available agent with the fewest open conversations.
    LeastBusy,
}

impl AssignmentMode {
    /// The name used in the API, the events and the read models.
    pub fn name(self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::RoundRobin => "round_robin",
            Self::LeastBusy => "least_busy",
        }
    }
}

/// Requests to an [`AssignmentPolicy`].
#[derive(Debug, Clone, PartialEq)]
pub enum AssignmentPolicyCommand {
    /// Set the policy (admins and supervisors).
    Set {
        /// The mode.
        mode: AssignmentMode,
        /// The most open conversations one agent is given (1..=[`MAX_CAPACITY`]).
        capacity: u32,
        /// Who.
        by: Actor,
        /// When.
        at: Timestamp,
    },
}

/// Events of an [`AssignmentPolicy`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AssignmentPolicyEvent {
    /// The policy was set.
    Set {
        /// The mode.
        mode: AssignmentMode,
        /// Open conversations per agent.
        capacity: u32,
        /// Who.
        by: AgentId,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for AssignmentPolicyEvent {
    fn event_type(&self) -> String {
        "AssignmentPolicySet".to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Why a policy change was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AssignmentPolicyError {
    /// Only admins and supervisors set policies.
    #[error("only admins and supervisors set assignment policies")]
    NotPermitted,
    /// Capacity out of range.
    #[error("capacity must be between 1 and {MAX_CAPACITY}")]
    InvalidCapacity,
}

impl AssignmentPolicyError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::NotPermitted => "forbidden",
            Self::InvalidCapacity => "invalid_capacity",
        }
    }
}

/// The policy of one pool.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssignmentPolicy {
    mode: AssignmentMode,
    capacity: u32,
}

impl Aggregate for AssignmentPolicy {
    const TYPE: &'static str = "AssignmentPolicy";
    type Command = AssignmentPolicyCommand;
    type Event = AssignmentPolicyEvent;
    type Error = AssignmentPolicyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let AssignmentPolicyCommand::Set {
            mode,
            capacity,
            by,
            at,
        } = command;
        if !matches!(by.role, Role::Admin | Role::Supervisor) {
            return Err(AssignmentPolicyError::NotPermitted);
        }
        if !(1..=MAX_CAPACITY).contains(&capacity) {
            return Err(AssignmentPolicyError::InvalidCapacity);
        }
        if (mode, capacity) == (self.mode, self.capacity) {
            return Ok(());
        }
        let event = AssignmentPolicyEvent::Set {
            mode,
            capacity,
            by: by.agent_id,
            at,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        let AssignmentPolicyEvent::Set { mode, capacity, .. } = event;
        self.mode = mode;
        self.capacity = capacity;
    }
}
