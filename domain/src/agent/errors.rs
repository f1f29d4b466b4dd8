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
    /// A name must say something.
    #[error("name must not be empty")]
    EmptyName,
    /// The agent is already deactivated (or already active).
    #[error("the agent is already {0}")]
    AlreadyInState(&'static str),
}

impl AgentError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::AlreadyRegistered => "agent_exists",
            Self::NotRegistered => "agent_not_found",
            Self::EmptyName => "invalid_name",
            Self::AlreadyInState(_) => "agent_state_unchanged",
        }
    }
}
