//! Whether an agent takes new conversations now.

use serde::{Deserialize, Serialize};

/// An agent's availability: set by the agent (or a manager), and set to `offline` when the
/// agent has had no connected socket on any instance for a grace period.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Availability {
    /// Working and taking new conversations.
    Online,
    /// Working, but not taking new conversations.
    Busy,
    /// Away.
    #[default]
    Offline,
}

impl Availability {
    /// The name used in the API and the read models.
    pub fn name(self) -> &'static str {
        match self {
            Self::Online => "online",
            Self::Busy => "busy",
            Self::Offline => "offline",
        }
    }
}
