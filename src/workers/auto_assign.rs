//! Auto-assignment: open conversations that no agent has and no human owns go to an available
//! agent, by their pool's policy (the group's, else the account default), within capacity.
//!
//! Every pass takes the oldest waiting conversations first, so when capacity frees (a
//! conversation resolved, an agent coming online) the backlog drains in order. Correctness:
//! - **No double assignment, no lost one**: the conversation aggregate decides
//!   `ConversationAutoAssigned` atomically with the append and refuses a conversation that is no
//!   longer waiting; a conversation not assigned stays in the read model's waiting set.
//! - **Capacity**: a pass decides from read models that include every earlier pass's
//!   assignments (it waits until they have caught up with the log as it stood when the pass
//!   began), and passes never overlap: on PostgreSQL a pass holds a session advisory lock, so of
//!   several instances one decides at a time; SQLite serves one instance.
//!   A supervisor's manual assignment racing a pass is not counted by it: that agent may end
//!   one over capacity (the loads are read models, not one aggregate holding them all).
//! - **Round robin** is a function of the log: the agent whose last auto-assignment lies
//!   furthest back (`agent_assignments`) is next, whichever instance decides.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::agent::{Availability, ChatScope, Permissions, WorkingHours};
use switchboard_domain::assignment::{AssignmentMode, DEFAULT_POOL};
use switchboard_domain::conversation::{ConversationCommand, ConversationError};
use switchboard_domain::{AgentId, GroupId, Timestamp};
use switchboard_projections::assignment::{self, Candidate};
use switchboard_projections::runner::checkpoints;
use switchboard_projections::ProjectionError;
use switchboard_store::{Database, EventRepository, LogCursor};
use tokio::sync::watch;

use crate::auth::accounts::actor_metadata;
use crate::clock::Clock;
use crate::cqrs::Frameworks;
use crate::telemetry::error_chain;

/// The advisory lock key of a pass (PostgreSQL): "switchboard auto-assign".
const PASS_LOCK: i64 = 0x5357_4153_5349_474e;
/// The read models a pass decides from.
const READ_MODELS: [&str; 3] = ["conversations", "assignment", "agents"];
/// How long a pass waits for the read models to catch up before giving up until the next.
const CATCH_UP: Duration = Duration::from_secs(2);

/// The auto-assignment worker.
pub struct AutoAssigner {
    log: EventRepository,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    interval: Duration,
}

/// An agent as a pass sees them.
struct Agent {
    id: AgentId,
    groups: Vec<GroupId>,
    load: i64,
    /// Orders round robin: smaller went longer without an assignment.
    turn: i64,
}

impl AutoAssigner {
    /// A worker making a pass every `interval`.
    pub fn new(
        log: EventRepository,
        frameworks: Frameworks,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Self {
        Self {
            log,
            frameworks,
            clock,
            interval,
        }
    }

    fn database(&self) -> &Database {
        self.log.database()
    }

    /// One pass; returns how many conversations it assigned.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn run_once(&self) -> Result<usize, ProjectionError> {
        match self.database() {
            Database::Postgres(pool) => {
                let mut connection = pool.acquire().await?;
                let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
                    .bind(PASS_LOCK)
                    .fetch_one(&mut *connection)
                    .await?;
                if !locked {
                    return Ok(0);
                }
                let assigned = self.pass().await;
                let unlocked = sqlx::query("select pg_advisory_unlock($1)")
                    .bind(PASS_LOCK)
                    .execute(&mut *connection)
                    .await;
                if unlocked.is_err() {
                    // The lock goes with the connection.
                    connection.detach();
                }
                assigned
            }
            Database::Sqlite(_) => self.pass().await,
        }
    }

    async fn pass(&self) -> Result<usize, ProjectionError> {
        let policies: HashMap<String, (AssignmentMode, i64)> =
            assignment::policies(self.database())
                .await?
                .into_iter()
                .filter_map(|p| Some((p.pool, (mode(&p.mode)?, p.capacity))))
                .collect();
        let most = policies.values().map(|(_, capacity)| *capacity).max();
        if policies
            .values()
            .all(|(mode, _)| *mode == AssignmentMode::Manual)
            || !self.read_models_caught_up().await?
        {
            return Ok(0);
        }
        let now = self.clock.now();
        let mut agents: Vec<Agent> = assignment::candidates(self.database())
            .await?
            .into_iter()
            .filter_map(|c| available(c, now))
            .collect();
        let mut turns = i64::MAX / 2..;
        let mut assigned = 0;
        let mut after = None;
        // Page through the waiting conversations while some agent has room: those no agent can
        // take now (a group without one available) do not hold back the others.
        while agents.iter().any(|a| most.is_some_and(|m| a.load < m)) {
            let page = assignment::waiting(self.database(), after.as_ref(), 200).await?;
            let Some(last) = page.last().cloned() else {
                break;
            };
            for (conversation, group, _) in page {
                let pool = group.clone().unwrap_or_else(|| DEFAULT_POOL.to_owned());
                let Some(&(mode, capacity)) =
                    policies.get(&pool).or_else(|| policies.get(DEFAULT_POOL))
                else {
                    continue;
                };
                let group = group.as_deref().and_then(GroupId::parse);
                let Some(chosen) = choose(&agents, mode, capacity, group) else {
                    continue;
                };
                if !self.still_available(agents[chosen].id).await? {
                    agents.remove(chosen);
                    continue;
                }
                if self
                    .assign(&conversation, &agents[chosen], group, mode, capacity)
                    .await
                {
                    let agent = &mut agents[chosen];
                    agent.load += 1;
                    agent.turn = turns.next().unwrap_or(i64::MAX);
                    assigned += 1;
                }
            }
            after = Some(last);
        }
        Ok(assigned)
    }

    /// Whether the agent is still active and online in the log (the read model may lag behind
    /// a deactivation or an agent going offline).
    async fn still_available(&self, agent: AgentId) -> Result<bool, ProjectionError> {
        let (found, _) = self
            .log
            .load_aggregate::<switchboard_domain::agent::Agent>(&agent.to_string())
            .await?;
        Ok(found.is_active() && found.availability() == Availability::Online)
    }

    /// Appends the decision; `true` when the conversation was assigned.
    async fn assign(
        &self,
        conversation: &str,
        agent: &Agent,
        group: Option<GroupId>,
        mode: AssignmentMode,
        capacity: i64,
    ) -> bool {
        let now = self.clock.now();
        let reason = format!(
            "{} of {capacity} open conversations; {}",
            agent.load,
            if mode == AssignmentMode::RoundRobin {
                "longest without a new one"
            } else {
                "fewest open"
            }
        );
        let command = ConversationCommand::AutoAssign {
            agent: agent.id,
            group,
            policy: mode.name().to_owned(),
            reason,
            at: now,
        };
        let metadata = actor_metadata(None, now);
        match self
            .frameworks
            .conversations
            .execute(conversation, command, &metadata)
            .await
        {
            Ok(_) => true,
            Err(cqrs_es::AggregateError::UserError(ConversationError::NotWaitingForAssignment)) => {
                false
            }
            Err(error) => {
                tracing::warn!(%conversation, %error, "auto-assignment failed");
                false
            }
        }
    }

    /// Whether the read models have applied every event committed before now (waits up to
    /// [`CATCH_UP`]).
    async fn read_models_caught_up(&self) -> Result<bool, ProjectionError> {
        let head = self.log.head().await?;
        let deadline = tokio::time::Instant::now() + CATCH_UP;
        loop {
            let checkpoints = checkpoints(self.database()).await?;
            let mut behind = 0;
            for name in READ_MODELS {
                let cursor = checkpoints.get(name).copied().unwrap_or(LogCursor::START);
                behind += self.log.unread_before(cursor, head).await?;
            }
            if behind == 0 {
                return Ok(true);
            }
            if tokio::time::Instant::now() > deadline {
                tracing::debug!(behind, "read models behind; auto-assignment waits");
                return Ok(false);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs until `shutdown` fires.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.run_once().await {
                tracing::error!(error = %error_chain(&error), "auto-assignment pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}

fn mode(name: &str) -> Option<AssignmentMode> {
    serde_json::from_value(serde_json::Value::String(name.to_owned())).ok()
}

/// The candidate as a pass sees them, if they may take conversations at `now`: on duty, and
/// allowed to write to some conversations.
fn available(candidate: Candidate, now: Timestamp) -> Option<Agent> {
    let permissions: Permissions = serde_json::from_str(&candidate.permissions).ok()?;
    if permissions.can_write_to_chats == ChatScope::None {
        return None;
    }
    if let Some(hours) = candidate.working_hours.as_deref() {
        let hours: WorkingHours = serde_json::from_str(hours).ok()?;
        if !hours.contains(now) {
            return None;
        }
    }
    Some(Agent {
        id: AgentId::parse(&candidate.id)?,
        groups: serde_json::from_str(&candidate.group_ids).unwrap_or_default(),
        load: candidate.load,
        turn: candidate.last_position,
    })
}

/// The agent a conversation of `group` goes to under `mode`, if any has room.
fn choose(
    agents: &[Agent],
    mode: AssignmentMode,
    capacity: i64,
    group: Option<GroupId>,
) -> Option<usize> {
    let eligible = agents
        .iter()
        .enumerate()
        .filter(|(_, a)| a.load < capacity && group.is_none_or(|g| a.groups.contains(&g)));
    match mode {
        AssignmentMode::Manual => None,
        AssignmentMode::RoundRobin => eligible.min_by_key(|(_, a)| (a.turn, a.id)),
        AssignmentMode::LeastBusy => eligible.min_by_key(|(_, a)| (a.load, a.turn, a.id)),
    }
    .map(|(index, _)| index)
}
