//! The rules an agent command can break.

/// Why an agent command was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgentError {
    /// An agent with this email exists already.
    #[error("an agent with this email already exists")]
    AlreadyRegistered,
    /// There is no such agent.
    #[error("no such agent")]
    NotRegistered,
    /// A name is 1 to 100 characters without control characters.
    #[error("a name is 1 to 100 characters without control characters")]
    InvalidName,
    /// Too many groups.
    #[error("an agent belongs to at most {max} groups")]
    TooManyGroups {
        /// The limit.
        max: usize,
    },
    /// The agent is already deactivated (or already active).
    #[error("the agent is already {0}")]
    AlreadyInState(&'static str),
    /// The acting agent does not hold what they would grant (or may not manage this agent).
    #[error("{0}")]
    NotPermitted(String),
    /// Nobody changes their own role, permissions, groups or working hours.
    #[error("you cannot change your own {0}")]
    OwnRights(&'static str),
    /// Nobody deactivates themselves.
    #[error("you cannot deactivate yourself")]
    CannotDeactivateSelf,
    /// The last active admin stays an active admin.
    #[error("the last active admin cannot be demoted or deactivated")]
    LastAdmin,
    /// The permissions contradict each other.
    #[error("{0}")]
    InconsistentPermissions(&'static str),
    /// The agent changed since the version the caller saw.
    #[error("the agent changed since version {expected}; it is now at {current}")]
    Changed {
        /// What the caller saw.
        expected: u64,
        /// What it is now.
        current: u64,
    },
}

impl AgentError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyRegistered => "agent_exists",
            Self::NotRegistered => "agent_not_found",
            Self::InvalidName => "invalid_name",
            Self::TooManyGroups { .. } => "too_many_groups",
            Self::AlreadyInState(_) => "agent_state_unchanged",
            Self::NotPermitted(_) => "forbidden",
            Self::OwnRights(_) => "own_rights",
            Self::CannotDeactivateSelf => "cannot_deactivate_self",
            Self::LastAdmin => "last_admin",
            Self::InconsistentPermissions(_) => "invalid_permissions",
            Self::Changed { .. } => "agent_changed",
        }
    }
}
