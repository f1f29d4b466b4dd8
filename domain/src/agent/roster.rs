//! The admin roster: the one stream every change that adds or removes an active admin also
//! appends to. "At least one active admin remains" spans agents, so no single agent's stream
//! can decide it; appending to this stream in the same transaction makes any two such changes
//! conflict (optimistic concurrency), so the loser is decided again against the winner's
//! result: two admins demoting each other at once cannot leave the inbox without one.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

use crate::{AgentId, Timestamp};

/// The roster's one stream id.
pub const ADMIN_ROSTER_ID: &str = "admins";

/// Requests to the [`AdminRoster`].
#[derive(Debug, Clone, PartialEq)]
pub enum AdminRosterCommand {
    /// Note that `agent` became or stopped being an active admin.
    Record {
        /// The agent.
        agent: AgentId,
        /// Whether they are an active admin now.
        admin: bool,
        /// When.
        at: Timestamp,
    },
}

/// Events of the [`AdminRoster`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum AdminRosterEvent {
    /// An agent became or stopped being an active admin.
    Changed {
        /// The agent.
        agent: AgentId,
        /// Whether they are an active admin now.
        admin: bool,
        /// When.
        at: Timestamp,
    },
}

impl DomainEvent for AdminRosterEvent {
    fn event_type(&self) -> String {
        "AdminRosterChanged".to_owned()
    }

    fn event_version(&self) -> String {
        "1.0".to_owned()
    }
}

/// Roster commands cannot fail; the type exists because cqrs-es asks for one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("admin roster error")]
pub struct AdminRosterError;

/// The admin roster (its stream's version is what matters).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AdminRoster;

impl Aggregate for AdminRoster {
    const TYPE: &'static str = "AdminRoster";
    type Command = AdminRosterCommand;
    type Event = AdminRosterEvent;
    type Error = AdminRosterError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        let AdminRosterCommand::Record { agent, admin, at } = command;
        sink.write(AdminRosterEvent::Changed { agent, admin, at }, self)
            .await;
        Ok(())
    }

    fn apply(&mut self, _event: Self::Event) {}
}
