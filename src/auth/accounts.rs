//! Creating agents and setting passwords: the one path used by the API, the command line and
//! the first start.

use secrecy::SecretString;
use switchboard_domain::agent::{
    Agent, AgentCommand, AgentError, Email, Permissions, Role, WorkingHours,
};
use switchboard_domain::{AgentId, GroupId, Timestamp};
use switchboard_store::{with_pool, Database, EventRepository, Statement, StoreError};

use crate::auth::passwords::{self, PasswordError};
use crate::cqrs::{execute, Frameworks};

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
    by: Option<AgentId>,
    at: Timestamp,
) -> Result<AgentId, AccountError> {
    let hash = passwords::hash(agent.password).await?;
    let id = AgentId::for_email(&agent.email);
    let command = AgentCommand::Register {
        email: agent.email,
        name: agent.name,
        role: agent.role,
        groups: agent.groups,
        permissions: agent.permissions,
        working_hours: agent.working_hours,
        by,
        at,
    };
    let metadata = actor_metadata(by, at);
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
    by: Option<AgentId>,
    at: Timestamp,
) -> Result<(), AccountError> {
    let hash = passwords::hash(password).await?;
    store_password_hash(frameworks, database, id, hash, by, at).await
}

async fn store_password_hash(
    frameworks: &Frameworks,
    database: &Database,
    id: AgentId,
    hash: String,
    by: Option<AgentId>,
    at: Timestamp,
) -> Result<(), AccountError> {
    database
        .execute_atomically(&[Statement::new(
            "insert into credentials (agent_id, password_hash, updated_at) values ($1, $2, $3)
             on conflict (agent_id) do update set password_hash = excluded.password_hash, updated_at = excluded.updated_at",
            vec![id.to_string().into(), hash.into(), at.unix_millis().into()],
        )])
        .await?;
    let metadata = actor_metadata(by, at);
    execute(
        &frameworks.agents,
        &id.to_string(),
        AgentCommand::RecordPasswordChange { by, at },
        &metadata,
    )
    .await
    .map_err(command_error)
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
