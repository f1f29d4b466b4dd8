//! The agent aggregate.

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use serde::{Deserialize, Serialize};

use crate::agent::grants::{self, Grant};
use crate::agent::{
    AgentCommand, AgentError, AgentEvent, AgentUpdate, Availability, Email, Permissions, Role,
    WorkingHours,
};
use crate::{Actor, AgentId, GroupId, Timestamp};

/// An agent's record.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Agent {
    registered: Option<Registered>,
    /// Events applied so far.
    #[serde(default)]
    version: u64,
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
    #[serde(default)]
    availability: Availability,
    /// The password was chosen by someone else and its owner has not changed it since.
    #[serde(default)]
    password_change_required: bool,
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

    /// Whether the agent's password was chosen by someone else (a generated first password,
    /// one set or reset by an admin) and they must change it.
    pub fn password_change_required(&self) -> bool {
        self.registered
            .as_ref()
            .is_some_and(|r| r.password_change_required)
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
            bot: false,
            on_duty: r.working_hours.as_ref().is_none_or(|h| h.contains(at)),
        })
    }

    /// Whether the agent takes new conversations (a deactivated agent is offline).
    pub fn availability(&self) -> Availability {
        self.registered
            .as_ref()
            .filter(|r| r.active)
            .map_or(Availability::Offline, |r| r.availability)
    }

    /// The version: how many events the agent has (clients send it back as `expected_version`).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Whether the agent is an active admin.
    pub fn is_active_admin(&self) -> bool {
        self.registered
            .as_ref()
            .is_some_and(|r| r.active && r.role == Role::Admin)
    }

    fn decide(&self, command: AgentCommand) -> Result<Vec<AgentEvent>, AgentError> {
        if let AgentCommand::Register {
            email,
            name,
            role,
            groups,
            permissions,
            working_hours,
            one_time_password,
            by,
            at,
        } = command
        {
            if self.registered.is_some() {
                return Err(AgentError::AlreadyRegistered);
            }
            let name = grants::name(&name)?;
            grants::groups(&groups)?;
            let permissions = permissions.unwrap_or_else(|| Permissions::for_role(role));
            permissions
                .consistent()
                .map_err(AgentError::InconsistentPermissions)?;
            if let Some(by) = &by {
                let grant = Grant {
                    before_role: None,
                    role,
                    before_permissions: None,
                    permissions: &permissions,
                    before_groups: &[],
                    groups: &groups,
                };
                grants::authorize(by, &grant)?;
            }
            return Ok(vec![AgentEvent::Registered {
                email,
                name,
                role,
                groups,
                permissions,
                working_hours,
                one_time_password,
                by: by.map(|a| a.agent_id),
                at,
            }]);
        }
        let current = self.registered.as_ref().ok_or(AgentError::NotRegistered)?;
        let me = AgentId::for_email(&current.email);
        match command {
            AgentCommand::Register { .. } => Err(AgentError::AlreadyRegistered),
            AgentCommand::Update {
                update,
                expected_version,
                other_admins,
                by,
                at,
            } => {
                if let Some(expected) = expected_version.filter(|v| *v != self.version) {
                    return Err(AgentError::Changed {
                        expected,
                        current: self.version,
                    });
                }
                self.decide_update(current, me, update, other_admins, by.as_ref(), at)
            }
            AgentCommand::RecordPasswordChange { by, at } => {
                if let Some(by) = by.as_ref().filter(|a| a.agent_id != me) {
                    if !by.permissions.can_manage_agents {
                        return Err(AgentError::NotPermitted(
                            "resetting a password needs the can_manage_agents permission".into(),
                        ));
                    }
                    grants::manages(by, Some(current.role))?;
                }
                Ok(vec![AgentEvent::PasswordChanged {
                    by: by.map(|a| a.agent_id),
                    at,
                }])
            }
            AgentCommand::Deactivate {
                by,
                reason,
                other_admins,
                at,
            } => {
                if let Some(by) = &by {
                    if by.agent_id == me {
                        return Err(AgentError::CannotDeactivateSelf);
                    }
                    grants::manages(by, Some(current.role))?;
                }
                if !current.active {
                    return Err(AgentError::AlreadyInState("deactivated"));
                }
                if current.role == Role::Admin && other_admins == 0 {
                    return Err(AgentError::LastAdmin);
                }
                Ok(vec![AgentEvent::Deactivated {
                    reason,
                    by: by.map(|a| a.agent_id),
                    at,
                }])
            }
            AgentCommand::SetAvailability {
                availability,
                reason,
                expected_version,
                by,
                at,
            } => {
                if let Some(by) = by.as_ref().filter(|a| a.agent_id != me) {
                    if !by.permissions.can_manage_agents {
                        return Err(AgentError::NotPermitted(
                            "setting another agent's availability needs can_manage_agents".into(),
                        ));
                    }
                    grants::manages(by, Some(current.role))?;
                }
                if let Some(expected) = expected_version.filter(|v| *v != self.version) {
                    return Err(AgentError::Changed {
                        expected,
                        current: self.version,
                    });
                }
                if !current.active {
                    return Err(AgentError::AlreadyInState("deactivated"));
                }
                if current.availability == availability {
                    return Ok(vec![]);
                }
                Ok(vec![AgentEvent::AvailabilityChanged {
                    availability,
                    reason,
                    by: by.map(|a| a.agent_id),
                    at,
                }])
            }
            AgentCommand::RecordCustomerExport { conversations, at } => {
                if !current.active {
                    return Err(AgentError::AlreadyInState("deactivated"));
                }
                if !current.permissions.can_export_data {
                    return Err(AgentError::NotPermitted(
                        "exporting a customer's data needs the can_export_data permission".into(),
                    ));
                }
                Ok(vec![AgentEvent::CustomerDataExported { conversations, at }])
            }
            AgentCommand::Reactivate { by, at } => {
                if let Some(by) = &by {
                    grants::manages(by, Some(current.role))?;
                }
                if current.active {
                    return Err(AgentError::AlreadyInState("active"));
                }
                Ok(vec![AgentEvent::Reactivated {
                    by: by.map(|a| a.agent_id),
                    at,
                }])
            }
        }
    }

    /// An update, merged with the agent as they are: only what changes is recorded.
    fn decide_update(
        &self,
        current: &Registered,
        me: AgentId,
        update: AgentUpdate,
        other_admins: usize,
        by: Option<&Actor>,
        at: Timestamp,
    ) -> Result<Vec<AgentEvent>, AgentError> {
        let role = update.role.unwrap_or(current.role);
        let permissions = update.permissions.over(current.permissions);
        let groups = update.groups.unwrap_or_else(|| current.groups.clone());
        let working_hours = update
            .working_hours
            .unwrap_or_else(|| current.working_hours.clone());
        grants::groups(&groups)?;
        if permissions != current.permissions {
            permissions
                .consistent()
                .map_err(AgentError::InconsistentPermissions)?;
        }
        if let Some(by) = by {
            if by.agent_id == me {
                let own = [
                    (role != current.role, "role"),
                    (permissions != current.permissions, "permissions"),
                    (groups != current.groups, "groups"),
                    (working_hours != current.working_hours, "working hours"),
                ];
                if let Some((_, right)) = own.iter().find(|(changed, _)| *changed) {
                    return Err(AgentError::OwnRights(right));
                }
            } else {
                let grant = Grant {
                    before_role: Some(current.role),
                    role,
                    before_permissions: Some(&current.permissions),
                    permissions: &permissions,
                    before_groups: &current.groups,
                    groups: &groups,
                };
                grants::authorize(by, &grant)?;
            }
        }
        if current.active && current.role == Role::Admin && role != Role::Admin && other_admins == 0
        {
            return Err(AgentError::LastAdmin);
        }
        let by = by.map(|a| a.agent_id);
        let mut events = Vec::new();
        if let Some(name) = update.name.as_deref().map(grants::name).transpose()? {
            if name != current.name {
                events.push(AgentEvent::Renamed { name, by, at });
            }
        }
        if role != current.role {
            events.push(AgentEvent::RoleChanged { role, by, at });
        }
        if groups != current.groups {
            events.push(AgentEvent::GroupsChanged { groups, by, at });
        }
        if permissions != current.permissions {
            events.push(AgentEvent::PermissionsChanged {
                permissions,
                by,
                at,
            });
        }
        if working_hours != current.working_hours {
            events.push(AgentEvent::WorkingHoursChanged {
                working_hours,
                by,
                at,
            });
        }
        Ok(events)
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
        self.version += 1;
        if let AgentEvent::Registered {
            email,
            name,
            role,
            groups,
            permissions,
            working_hours,
            one_time_password,
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
                availability: Availability::Offline,
                password_change_required: one_time_password,
            });
            return;
        }
        let Some(r) = self.registered.as_mut() else {
            return;
        };
        match event {
            AgentEvent::Registered { .. } => {}
            // Set by its owner: theirs; by someone else: to be changed; by no one (the
            // registration's own first password, the command line): as it was.
            AgentEvent::PasswordChanged { by: Some(by), .. } => {
                r.password_change_required = by != AgentId::for_email(&r.email);
            }
            AgentEvent::PasswordChanged { by: None, .. } => {}
            AgentEvent::Renamed { name, .. } => r.name = name,
            AgentEvent::RoleChanged { role, .. } => r.role = role,
            AgentEvent::GroupsChanged { groups, .. } => r.groups = groups,
            AgentEvent::PermissionsChanged { permissions, .. } => r.permissions = permissions,
            AgentEvent::WorkingHoursChanged { working_hours, .. } => {
                r.working_hours = working_hours
            }
            AgentEvent::Deactivated { .. } => {
                r.active = false;
                r.availability = Availability::Offline;
            }
            AgentEvent::AvailabilityChanged { availability, .. } => r.availability = availability,
            AgentEvent::Reactivated { .. } => r.active = true,
            AgentEvent::CustomerDataExported { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::test::TestFramework;

    use super::*;
    use crate::agent::PermissionsPatch;

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
            one_time_password: false,
            by: None,
            at: t(),
        }
    }

    #[test]
    fn a_password_chosen_by_someone_else_must_be_changed_by_its_owner() {
        let ada = AgentId::for_email(&Email::parse("ada@example.com").expect("email"));
        let admin = AgentId::for_email(&Email::parse("root@example.com").expect("email"));
        let changed = |by| AgentEvent::PasswordChanged { by, at: t() };
        let mut agent = Agent::default();
        let mut first = registered();
        if let AgentEvent::Registered {
            one_time_password, ..
        } = &mut first
        {
            *one_time_password = true;
        }
        agent.apply(first);
        agent.apply(changed(None)); // the registration's own first password
        assert!(agent.password_change_required());
        agent.apply(changed(Some(ada)));
        assert!(!agent.password_change_required());
        agent.apply(changed(Some(admin)));
        assert!(agent.password_change_required());
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
                one_time_password: false,
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
                expected_version: None,
                other_admins: 0,
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

    fn actor(role: Role, permissions: Permissions) -> Actor {
        Actor {
            agent_id: AgentId::for_email(&Email::parse("boss@example.com").expect("email")),
            role,
            groups: vec![],
            permissions,
            on_duty: true,
            bot: false,
        }
    }

    fn manager() -> Actor {
        actor(
            Role::Agent,
            Permissions {
                can_manage_agents: true,
                ..Permissions::for_role(Role::Agent)
            },
        )
    }

    fn update(update: AgentUpdate, other_admins: usize, by: Option<Actor>) -> AgentCommand {
        AgentCommand::Update {
            update,
            expected_version: None,
            other_admins,
            by,
            at: t(),
        }
    }

    fn admin_registered() -> AgentEvent {
        let AgentEvent::Registered {
            email,
            name,
            by,
            at,
            ..
        } = registered()
        else {
            unreachable!()
        };
        AgentEvent::Registered {
            email,
            name,
            role: Role::Admin,
            groups: vec![],
            permissions: Permissions::for_role(Role::Admin),
            working_hours: None,
            one_time_password: false,
            by,
            at,
        }
    }

    #[test]
    fn a_manager_cannot_grant_a_role_or_permission_they_do_not_hold() {
        let promote = AgentUpdate {
            role: Some(Role::Supervisor),
            ..Default::default()
        };
        let result =
            AgentTest::with(())
                .given(vec![registered()])
                .when(update(promote, 1, Some(manager())));
        assert!(matches!(
            result.inspect_result(),
            Err(AgentError::NotPermitted(_))
        ));
        let templates = AgentUpdate {
            permissions: PermissionsPatch {
                can_manage_templates: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        let result = AgentTest::with(()).given(vec![registered()]).when(update(
            templates,
            1,
            Some(manager()),
        ));
        assert!(matches!(
            result.inspect_result(),
            Err(AgentError::NotPermitted(_))
        ));
    }

    #[test]
    fn only_admins_manage_admins_and_the_last_admin_stays() {
        let rename = AgentUpdate {
            name: Some("Root".into()),
            ..Default::default()
        };
        let result = AgentTest::with(())
            .given(vec![admin_registered()])
            .when(update(rename, 1, Some(manager())));
        assert!(matches!(
            result.inspect_result(),
            Err(AgentError::NotPermitted(_))
        ));
        let demote = AgentUpdate {
            role: Some(Role::Agent),
            ..Default::default()
        };
        let admin = actor(Role::Admin, Permissions::for_role(Role::Admin));
        AgentTest::with(())
            .given(vec![admin_registered()])
            .when(update(demote.clone(), 0, Some(admin.clone())))
            .then_expect_error(AgentError::LastAdmin);
        AgentTest::with(())
            .given(vec![admin_registered()])
            .when(update(demote, 1, Some(admin)))
            .then_expect_events(vec![AgentEvent::RoleChanged {
                role: Role::Agent,
                by: Some(AgentId::for_email(
                    &Email::parse("boss@example.com").expect("email"),
                )),
                at: t(),
            }]);
    }

    #[test]
    fn export_needs_read_scope_all() {
        let export = AgentUpdate {
            permissions: PermissionsPatch {
                can_export_data: Some(true),
                ..Default::default()
            },
            ..Default::default()
        };
        let result = AgentTest::with(())
            .given(vec![registered()])
            .when(update(export, 1, None));
        assert!(matches!(
            result.inspect_result(),
            Err(AgentError::InconsistentPermissions(_))
        ));
    }
}
