//! Who may give whom which rights: nobody grants a role, permission or group they do not hold,
//! and only admins create, change, reset or deactivate admins.

use crate::agent::{AgentError, ChatScope, Permissions, Role};
use crate::{Actor, GroupId};

/// The longest display name, in characters.
pub const MAX_NAME_CHARS: usize = 100;
/// The most groups an agent belongs to.
pub const MAX_GROUPS: usize = 50;

/// A display name: trimmed, 1 to [`MAX_NAME_CHARS`] characters, no control characters.
pub(super) fn name(name: &str) -> Result<String, AgentError> {
    let name = name.trim();
    if name.is_empty()
        || name.chars().count() > MAX_NAME_CHARS
        || name.chars().any(char::is_control)
    {
        return Err(AgentError::InvalidName);
    }
    Ok(name.to_owned())
}

/// At most [`MAX_GROUPS`] groups.
pub(super) fn groups(groups: &[GroupId]) -> Result<(), AgentError> {
    if groups.len() > MAX_GROUPS {
        return Err(AgentError::TooManyGroups { max: MAX_GROUPS });
    }
    Ok(())
}

/// What an agent would hold after a command, beside what they held before (`None`: new).
pub(super) struct Grant<'a> {
    pub before_role: Option<Role>,
    pub role: Role,
    pub before_permissions: Option<&'a Permissions>,
    pub permissions: &'a Permissions,
    pub before_groups: &'a [GroupId],
    pub groups: &'a [GroupId],
}

fn refused(reason: impl Into<String>) -> AgentError {
    AgentError::NotPermitted(reason.into())
}

/// Checks that `by` may make this change to another agent.
pub(super) fn authorize(by: &Actor, grant: &Grant<'_>) -> Result<(), AgentError> {
    if !by.permissions.can_manage_agents {
        return Err(refused(
            "managing agents needs the can_manage_agents permission",
        ));
    }
    manages(by, grant.before_role)?;
    if grant.role == Role::Admin && by.role != Role::Admin {
        return Err(refused("only admins create or promote admins"));
    }
    if grant.before_role != Some(grant.role) && grant.role.rank() > by.role.rank() {
        return Err(refused("you cannot grant a role above your own"));
    }
    if let Some(right) = grant
        .permissions
        .ungranted(grant.before_permissions, &by.permissions)
    {
        return Err(refused(format!(
            "you cannot grant {right}, which you do not hold"
        )));
    }
    let sees_all = by.permissions.can_read_chats == ChatScope::All;
    let added = grant
        .groups
        .iter()
        .find(|g| !grant.before_groups.contains(g) && !sees_all && !by.groups.contains(g));
    if let Some(group) = added {
        return Err(refused(format!(
            "you cannot add group {group}: you are not in it"
        )));
    }
    Ok(())
}

/// Checks that `by` may manage an agent whose role is `role` (only admins manage admins).
pub(super) fn manages(by: &Actor, role: Option<Role>) -> Result<(), AgentError> {
    if role == Some(Role::Admin) && by.role != Role::Admin {
        return Err(refused("only admins change, reset or deactivate admins"));
    }
    Ok(())
}
