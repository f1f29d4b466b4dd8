//! Creating agents and setting passwords: the one path used by the API, the command line and
//! the first start.

use secrecy::SecretString;
use switchboard_domain::agent::{
    AdminRoster, AdminRosterCommand, Agent, AgentCommand, AgentError, Email, Permissions, Role,
    WorkingHours, ADMIN_ROSTER_ID,
};
use switchboard_domain::{Actor, AgentId, GroupId, Timestamp};
use switchboard_store::{with_pool, Database, EventRepository, Statement, StoreError};

use crate::auth::cache::AuthCache;
use crate::auth::passwords::{self, PasswordError};
use crate::cqrs::{execute, Frameworks};
use crate::transaction::{retrying, Attempt, Transaction};

/// A new agent.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Login email.
    pub email: Email,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Groups.
    pub groups: Vec<GroupId>,
    /// Permissions (role defaults when `None`).
    pub permissions: Option<Permissions>,
    /// Working hours (always on duty when `None`).
    pub working_hours: Option<WorkingHours>,
    /// Initial password.
    pub password: SecretString,
    /// Whether it was chosen for them (they must change it after signing in).
    pub one_time_password: bool,
}

/// Why an account operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// The domain refused (exists already, …).
    #[error(transparent)]
    Agent(#[from] AgentError),
    /// The password is unacceptable.
    #[error(transparent)]
    Password(#[from] PasswordError),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The command side failed (storage).
    #[error("storing the agent failed: {0}")]
    Command(String),
}

fn command_error(error: cqrs_es::AggregateError<AgentError>) -> AccountError {
    match error {
        cqrs_es::AggregateError::UserError(e) => AccountError::Agent(e),
        other => AccountError::Command(other.to_string()),
    }
}

/// Registers an agent and sets their password. The password is hashed before anything is
/// written, so a refused password leaves no half-made agent.
///
/// # Errors
/// [`AccountError`] saying why.
pub async fn register(
    frameworks: &Frameworks,
    database: &Database,
    agent: NewAgent,
    by: Option<Actor>,
    at: Timestamp,
) -> Result<AgentId, AccountError> {
    let hash = passwords::hash(agent.password).await?;
    let id = AgentId::for_email(&agent.email);
    let by_id = by.as_ref().map(|a| a.agent_id);
    let command = AgentCommand::Register {
        email: agent.email,
        name: agent.name,
        role: agent.role,
        groups: agent.groups,
        permissions: agent.permissions,
        working_hours: agent.working_hours,
        one_time_password: agent.one_time_password,
        by: by.clone(),
        at,
    };
    let metadata = actor_metadata(by_id, at);
    execute(&frameworks.agents, &id.to_string(), command, &metadata)
        .await
        .map_err(command_error)?;
    store_password_hash(frameworks, database, id, hash, by, at).await?;
    Ok(id)
}

/// Sets a new password for an existing agent.
///
/// # Errors
/// [`AccountError`] saying why.
pub async fn set_password(
    frameworks: &Frameworks,
    database: &Database,
    id: AgentId,
    password: SecretString,
    by: Option<Actor>,
    at: Timestamp,
) -> Result<(), AccountError> {
    let hash = passwords::hash(password).await?;
    store_password_hash(frameworks, database, id, hash, by, at).await
}

/// Records the change (the agent aggregate decides whether `by` may make it), then stores the
/// hash: a refused change leaves the old password in place.
async fn store_password_hash(
    frameworks: &Frameworks,
    database: &Database,
    id: AgentId,
    hash: String,
    by: Option<Actor>,
    at: Timestamp,
) -> Result<(), AccountError> {
    let metadata = actor_metadata(by.as_ref().map(|a| a.agent_id), at);
    execute(
        &frameworks.agents,
        &id.to_string(),
        AgentCommand::RecordPasswordChange { by, at },
        &metadata,
    )
    .await
    .map_err(command_error)?;
    database
        .execute_atomically(&[Statement::new(
            "insert into credentials (agent_id, password_hash, updated_at) values ($1, $2, $3)
             on conflict (agent_id) do update set password_hash = excluded.password_hash, updated_at = excluded.updated_at",
            vec![id.to_string().into(), hash.into(), at.unix_millis().into()],
        )])
        .await?;
    Ok(())
}

/// The stored password hash of an agent.
///
/// # Errors
/// Database failures.
pub async fn password_hash(database: &Database, id: AgentId) -> Result<Option<String>, StoreError> {
    let sql = "select password_hash from credentials where agent_id = $1";
    Ok(
        with_pool!(database, pool => sqlx::query_scalar(sql).bind(id.to_string()).fetch_optional(pool).await?),
    )
}

/// Whether any agent has ever been registered.
///
/// # Errors
/// Database failures.
pub async fn any_registered(log: &EventRepository) -> Result<bool, StoreError> {
    use cqrs_es::Aggregate;
    let sql = "select count(*) from events where aggregate_type = $1";
    let count: i64 = with_pool!(log.database(), pool => sqlx::query_scalar(sql).bind(Agent::TYPE).fetch_one(pool).await?);
    Ok(count > 0)
}

/// Event metadata for a command given by `by` (or by the system): who, when, and the request
/// that caused it (also the correlation id of whatever those events cause in turn).
pub fn actor_metadata(
    by: Option<AgentId>,
    at: Timestamp,
) -> std::collections::HashMap<String, String> {
    let mut metadata = std::collections::HashMap::with_capacity(4);
    metadata.insert(
        "actor".to_owned(),
        by.map_or_else(|| "system".to_owned(), |id| format!("agent:{id}")),
    );
    metadata.insert("recorded_at".to_owned(), at.to_string());
    if let Some(request_id) = crate::telemetry::current_request_id().filter(|id| !id.is_empty()) {
        metadata.insert("correlation_id".to_owned(), request_id.clone());
        metadata.insert("request_id".to_owned(), request_id);
    }
    metadata
}

/// What an agent change came to: the agent's version before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// Before the change.
    pub previous_version: u64,
    /// After it.
    pub version: u64,
}

/// Runs a command on agent `id`, decided with fresh state: the acting agent's rights (`by`,
/// reloaded in the transaction) and, when the agent is an active admin, how many *other* active
/// admins there are. When the agent stops being an active admin the admin roster gains an event
/// in the same transaction; the roster is read before anything is counted, so any change of an
/// admin committed after that makes this transaction conflict and be decided again: two admins
/// demoting each other at once cannot both succeed.
///
/// Candidates are the admins the agents read model lists, each checked against its own stream;
/// one promoted a moment ago and not yet listed is not counted, which can only refuse a
/// demotion, never allow the last one to go.
///
/// `cache` forgets the agent once the change is committed, so it applies to this instance's
/// next request.
///
/// # Errors
/// The agent's refusal; storage failures.
pub async fn change_agent(
    log: &EventRepository,
    cache: &AuthCache,
    id: &str,
    by: Option<AgentId>,
    at: Timestamp,
    command: impl Fn(Option<Actor>, usize) -> AgentCommand,
) -> Result<Changed, cqrs_es::AggregateError<AgentError>> {
    let changed = decide_agent_change(log, id, by, at, command).await;
    // Also after a failure: a commit whose answer was lost may have happened all the same.
    cache.agent_changed(id);
    changed
}

async fn decide_agent_change(
    log: &EventRepository,
    id: &str,
    by: Option<AgentId>,
    at: Timestamp,
    command: impl Fn(Option<Actor>, usize) -> AgentCommand,
) -> Result<Changed, cqrs_es::AggregateError<AgentError>> {
    let metadata = actor_metadata(by, at);
    retrying(|| async {
        let mut tx = Transaction::new(log, &metadata);
        let mut roster = tx
            .load::<AdminRoster>(ADMIN_ROSTER_ID)
            .await
            .map_err(storage)?;
        let mut agent = tx.load::<Agent>(id).await.map_err(storage)?;
        let actor = match by {
            Some(by) => Some(fresh_actor(log, by, at).await?),
            None => None,
        };
        let previous_version = agent.aggregate.version();
        let was_admin = agent.aggregate.is_active_admin();
        let others = if was_admin {
            other_active_admins(log, id).await.map_err(storage)?
        } else {
            0
        };
        tx.decide(id, &mut agent, command(actor, others)).await?;
        if was_admin && !agent.aggregate.is_active_admin() {
            let agent_id = AgentId::parse(id).ok_or(cqrs_es::AggregateError::UserError(
                AgentError::NotRegistered,
            ))?;
            let record = AdminRosterCommand::Record {
                agent: agent_id,
                admin: false,
                at,
            };
            tx.decide(ADMIN_ROSTER_ID, &mut roster, record)
                .await
                .map_err(|e| cqrs_es::AggregateError::UnexpectedError(Box::new(e)))?;
        }
        let changed = Changed {
            previous_version,
            version: agent.aggregate.version(),
        };
        Attempt::commit(tx, changed).await.map_err(storage)
    })
    .await
}

/// The acting agent's rights as their stream says now (not as they were when the request
/// started): one demoted a moment ago acts as what they are now.
async fn fresh_actor(
    log: &EventRepository,
    by: AgentId,
    at: Timestamp,
) -> Result<Actor, cqrs_es::AggregateError<AgentError>> {
    let (agent, _) = log
        .load_aggregate::<Agent>(&by.to_string())
        .await
        .map_err(storage)?;
    agent.actor(by, at).ok_or_else(|| {
        cqrs_es::AggregateError::UserError(AgentError::NotPermitted(
            "your account is deactivated".to_owned(),
        ))
    })
}

/// Active admins other than `id`, by their own streams.
async fn other_active_admins(log: &EventRepository, id: &str) -> Result<usize, StoreError> {
    let ids = switchboard_projections::agents::ids_with_role(log.database(), Role::Admin)
        .await
        .map_err(|e| match e {
            switchboard_projections::ProjectionError::Store(e) => e,
            switchboard_projections::ProjectionError::Query(e) => StoreError::Database(e),
            other => StoreError::Database(sqlx::Error::Protocol(other.to_string())),
        })?;
    let refs: Vec<&str> = ids
        .iter()
        .map(String::as_str)
        .filter(|a| *a != id)
        .collect();
    let admins = log.load_aggregates::<Agent>(&refs).await?;
    Ok(admins.values().filter(|(a, _)| a.is_active_admin()).count())
}

fn storage(error: StoreError) -> cqrs_es::AggregateError<AgentError> {
    error.into_aggregate_error()
}
