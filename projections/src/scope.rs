//! Read scopes applied inside queries: a list never contains, and a count never reveals, a
//! conversation the caller may not see.

use switchboard_domain::agent::ChatScope;
use switchboard_domain::Actor;

/// Which conversations a query may return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadScope {
    /// Every conversation.
    All,
    /// Those assigned to the agent.
    Assigned(String),
    /// Those assigned to the agent or to one of the agent's groups.
    Group(String),
    /// None.
    Nothing,
}

impl ReadScope {
    /// The read scope of an acting agent.
    pub fn of(actor: &Actor) -> Self {
        let me = actor.agent_id.to_string();
        match actor.permissions.can_read_chats {
            ChatScope::All => Self::All,
            ChatScope::Assigned => Self::Assigned(me),
            ChatScope::Group => Self::Group(me),
            ChatScope::None => Self::Nothing,
        }
    }

    /// The `$1` (mode) and `$2` (agent id) arguments of [`SCOPE_FILTER`].
    pub(crate) fn args(&self) -> (&'static str, &str) {
        match self {
            Self::All => ("all", ""),
            Self::Assigned(me) => ("assigned", me),
            Self::Group(me) => ("group", me),
            Self::Nothing => ("none", ""),
        }
    }
}

impl ReadScope {
    /// The scope condition on `conversations` for this scope alone, with the same `$1` and `$2`
    /// as [`scope_filter`]: for queries whose text is built per request, where a condition the
    /// planner sees (instead of one decided by `$1` at run time) lets it use the indexes.
    pub(crate) fn condition(&self) -> &'static str {
        match self {
            Self::All => "($1 = 'all' and $2 = '')",
            Self::Assigned(_) => "($1 = 'assigned' and assigned_agent_id = $2)",
            Self::Group(_) => {
                "($1 = 'group' and (assigned_agent_id = $2
                  or assigned_group_id in (select group_id from agent_groups where agent_id = $2)))"
            }
            Self::Nothing => "($1 = 'none' and $2 = '' and 1 = 0)",
        }
    }

    /// [`Self::condition`] with the mode as `$first` and the agent id as `$first + 1`.
    pub(crate) fn condition_from(&self, first: usize) -> String {
        self.condition()
            .replace("$2", &format!("${}", first + 1))
            .replace("$1", &format!("${first}"))
    }
}

/// The scope condition on `conversations`, with `$1` the mode and `$2` the agent id.
macro_rules! scope_filter {
    () => {
        "($1 = 'all'
          or ($1 in ('assigned', 'group') and assigned_agent_id = $2)
          or ($1 = 'group' and assigned_group_id in (select group_id from agent_groups where agent_id = $2)))"
    };
}
pub(crate) use scope_filter;
