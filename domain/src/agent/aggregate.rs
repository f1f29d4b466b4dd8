//! The agent aggregate.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::agent::{AgentCommand, AgentError, AgentEvent, Email, Permissions, Role, WorkingHours};
use crate::{Actor, AgentId, GroupId, Timestamp};

/// An agent's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    registered: Option<Registered>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Registered {
    email: Email,
    name: String,
    role: Role,
    groups: Vec<GroupId>,
    permissions: Permissions,
    working_hours: Option<WorkingHours>,
    active: bool,
}

impl Agent {
    /// Whether the agent exists and is active.
    pub fn is_active(&self) -> bool {
        self.registered.as_ref().is_some_and(|r| r.active)
    }

    /// Whether the agent exists.
    pub fn is_registered(&self) -> bool {
        self.registered.is_some()
    }

    /// The email, once registered.
    pub fn email(&self) -> Option<&Email> {
        self.registered.as_ref().map(|r| &r.email)
    }

    /// The display name, once registered.
    pub fn name(&self) -> Option<&str> {
        self.registered.as_ref().map(|r| r.name.as_str())
    }

    /// The groups, once registered.
    pub fn groups(&self) -> &[GroupId] {
        self.registered
            .as_ref()
            .map_or(&[], |r| r.groups.as_slice())
    }

    /// The permissions, once registered.
    pub fn permissions(&self) -> Option<Permissions> {
        self.registered.as_ref().map(|r| r.permissions)
    }

    /// The working hours, if any.
    pub fn working_hours(&self) -> Option<&WorkingHours> {
        self.registered
            .as_ref()
            .and_then(|r| r.working_hours.as_ref())
    }

    /// The role, once registered.
    pub fn role(&self) -> Option<Role> {
        self.registered.as_ref().map(|r| r.role)
    }

    /// The agent acting at `at`: rights as they stand now, and whether they are on duty.
    /// `None` unless registered and active.
    pub fn actor(&self, id: AgentId, at: Timestamp) -> Option<Actor> {
        let r = self.registered.as_ref().filter(|r| r.active)?;
        Some(Actor {
            agent_id: id,
            role: r.role,
            groups: r.groups.clone(),
            permissions: r.permissions,
            on_duty: r.working_hours.as_ref().is_none_or(|h| h.contains(at)),
        })
    }

    fn decide(&self, command: AgentCommand) -> Result<Vec<AgentEvent>, AgentError> {
        if let AgentCommand::Register {
            email,
            name,
            role,
            groups,
            permissions,
            working_hours,
            by,
            at,
        } = command
        {
            if self.registered.is_some() {
                return Err(AgentError::AlreadyRegistered);
            }
            let name = name.trim().to_owned();
            if name.is_empty() {
                return Err(AgentError::EmptyName);
            }
            return Ok(vec![AgentEvent::Registered {
                email,
                name,
                role,
                groups,
                permissions: permissions.unwrap_or_else(|| Permissions::for_role(role)),
                working_hours,
                by,
                at,
            }]);
        }
        let current = self.registered.as_ref().ok_or(AgentError::NotRegistered)?;
        match command {
            AgentCommand::Register { .. } => Err(AgentError::AlreadyRegistered),
            AgentCommand::Update { update, by, at } => {
                let mut events = Vec::new();
                if let Some(name) = update.name.map(|n| n.trim().to_owned()) {
                    if name.is_empty() {
                        return Err(AgentError::EmptyName);
                    }
                    if name != current.name {
                        events.push(AgentEvent::Renamed { name, by, at });
                    }
                }
                if let Some(role) = update.role.filter(|r| *r != current.role) {
                    events.push(AgentEvent::RoleChanged { role, by, at });
                }
                if let Some(groups) = update.groups.filter(|g| *g != current.groups) {
                    events.push(AgentEvent::GroupsChanged { groups, by, at });
                }
                if let Some(permissions) = update.permissions.filter(|p| *p != current.permissions)
                {
                    events.push(AgentEvent::PermissionsChanged {
                        permissions,
                        by,
                        at,
                    });
                }
                if let Some(working_hours) =
                    update.working_hours.filter(|h| *h != current.working_hours)
                {
                    events.push(AgentEvent::WorkingHoursChanged {
                        working_hours,
                        by,
                        at,
                    });
                }
                Ok(events)
            }
            AgentCommand::RecordPasswordChange { by, at } => {
                Ok(vec![AgentEvent::PasswordChanged { by, at }])
            }
            AgentCommand::Deactivate { by, reason, at } => {
                if !current.active {
                    return Err(AgentError::AlreadyInState("deactivated"));
                }
                Ok(vec![AgentEvent::Deactivated { reason, by, at }])
            }
            AgentCommand::Reactivate { by, at } => {
                if current.active {
                    return Err(AgentError::AlreadyInState("active"));
                }
                Ok(vec![AgentEvent::Reactivated { by, at }])
            }
        }
    }
}

impl Aggregate for Agent {
    const TYPE: &'static str = "Agent";
    type Command = AgentCommand;
    type Event = AgentEvent;
    type Error = AgentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        for event in self.decide(command)? {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        if let AgentEvent::Registered {
            email,
            name,
            role,
            groups,
            permissions,
            working_hours,
            ..
        } = event
        {
            self.registered = Some(Registered {
                email,
                name,
                role,
                groups,
                permissions,
                working_hours,
                active: true,
            });
            return;
        }
        let Some(r) = self.registered.as_mut() else {
            return;
        };
        match event {
            AgentEvent::Registered { .. } | AgentEvent::PasswordChanged { .. } => {}
            AgentEvent::Renamed { name, .. } => r.name = name,
            AgentEvent::RoleChanged { role, .. } => r.role = role,
            AgentEvent::GroupsChanged { groups, .. } => r.groups = groups,
            AgentEvent::PermissionsChanged { permissions, .. } => r.permissions = permissions,
            AgentEvent::WorkingHoursChanged { working_hours, .. } => {
                r.working_hours = working_hours
            }
            AgentEvent::Deactivated { .. } => r.active = false,
            AgentEvent::Reactivated { .. } => r.active = true,
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;

    type AgentTest = TestFramework<Agent>;

    fn t() -> Timestamp {
        Timestamp::from_unix_seconds(1_780_000_000).expect("valid")
    }
    fn registered() -> AgentEvent {
        AgentEvent::Registered {
            email: Email::parse("ada@example.com").expect("email"),
            name: "Ada".into(),
            role: Role::Agent,
            groups: vec![],
            permissions: Permissions::for_role(Role::Agent),
            working_hours: None,
            by: None,
            at: t(),
        }
    }

    #[test]
    fn registering_twice_is_refused() {
        AgentTest::with(())
            .given(vec![registered()])
            .when(AgentCommand::Register {
                email: Email::parse("ada@example.com").expect("email"),
                name: "Ada".into(),
                role: Role::Agent,
                groups: vec![],
                permissions: None,
                working_hours: None,
                by: None,
                at: t(),
            })
            .then_expect_error(AgentError::AlreadyRegistered);
    }

    #[test]
    fn an_update_records_only_what_changed() {
        AgentTest::with(())
            .given(vec![registered()])
            .when(AgentCommand::Update {
                update: crate::agent::AgentUpdate {
                    name: Some("Ada".into()),
                    role: Some(Role::Supervisor),
                    ..Default::default()
                },
                by: None,
                at: t(),
            })
            .then_expect_events(vec![AgentEvent::RoleChanged {
                role: Role::Supervisor,
                by: None,
                at: t(),
            }]);
    }

    #[test]
    fn a_deactivated_agent_is_no_actor() {
        let mut agent = Agent::default();
        agent.apply(registered());
        let id = AgentId::for_email(&Email::parse("ada@example.com").expect("email"));
        assert!(agent.actor(id, t()).is_some());
        agent.apply(AgentEvent::Deactivated {
            reason: None,
            by: None,
            at: t(),
        });
        assert!(agent.actor(id, t()).is_none());
    }
}
