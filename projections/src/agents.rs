//! Agents as admins see them, and which groups each belongs to (used by read scopes).

use serde::Serialize;
use serde_json::Value;
use switchboard_domain::agent::AgentEvent;
use switchboard_store::{with_pool, Database, RecordedEvent, SqlValue, Statement};

use crate::page::rfc3339;
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds the `agents` and `agent_groups` tables.
pub struct AgentsProjection;

const REGISTERED: &str = "
insert into agents (id, email, name, role, group_ids, permissions, working_hours, active, created_at, updated_at, version)
values ($1, $2, $3, $4, $5, $6, $7, 1, $8, $8, $9)";
const RENAMED: &str = "update agents set name = $1, updated_at = $2, version = $3 where id = $4";
const ROLE: &str = "update agents set role = $1, updated_at = $2, version = $3 where id = $4";
const GROUPS: &str =
    "update agents set group_ids = $1, updated_at = $2, version = $3 where id = $4";
const PERMISSIONS: &str =
    "update agents set permissions = $1, updated_at = $2, version = $3 where id = $4";
const HOURS: &str =
    "update agents set working_hours = $1, updated_at = $2, version = $3 where id = $4";
const ACTIVE: &str = "update agents set active = $1, updated_at = $2, version = $3 where id = $4";
const ACTIVE_OFFLINE: &str = "update agents set active = 0, availability = 'offline',
    availability_since = $1, updated_at = $1, version = $2 where id = $3";
const AVAILABILITY: &str = "update agents set availability = $1, availability_since = $2,
    updated_at = $2, version = $3 where id = $4";
const TOUCHED: &str = "update agents set updated_at = $1, version = $2 where id = $3";
const CLEAR_GROUPS: &str = "delete from agent_groups where agent_id = $1";
const ADD_GROUP: &str =
    "insert into agent_groups (agent_id, group_id) values ($1, $2) on conflict do nothing";

fn json<T: Serialize>(value: &T) -> SqlValue {
    SqlValue::Text(serde_json::to_string(value).ok())
}

fn memberships(agent: &str, groups: &[switchboard_domain::GroupId], out: &mut Vec<Statement>) {
    out.push(Statement::new(CLEAR_GROUPS, vec![agent.into()]));
    for group in groups {
        out.push(Statement::new(
            ADD_GROUP,
            vec![agent.into(), group.to_string().into()],
        ));
    }
}

impl Projection for AgentsProjection {
    fn name(&self) -> &'static str {
        "agents"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["agents", "agent_groups"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["Agent"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let DecodedEvent::Agent(agent_event) = decoded else {
            return;
        };
        let id = event.aggregate_id.as_str();
        let version = SqlValue::from(event.sequence);
        let update = |sql, value: SqlValue, at: &switchboard_domain::Timestamp| {
            Statement::new(
                sql,
                vec![value, at.unix_millis().into(), version.clone(), id.into()],
            )
        };
        match agent_event {
            AgentEvent::Registered {
                email,
                name,
                role,
                groups,
                permissions,
                working_hours,
                at,
                ..
            } => {
                out.push(Statement::new(
                    REGISTERED,
                    vec![
                        id.into(),
                        email.as_str().into(),
                        name.as_str().into(),
                        json(role),
                        json(groups),
                        json(permissions),
                        working_hours.as_ref().map_or(SqlValue::Text(None), json),
                        at.unix_millis().into(),
                        version.clone(),
                    ],
                ));
                memberships(id, groups, out);
            }
            AgentEvent::Renamed { name, at, .. } => {
                out.push(update(RENAMED, name.as_str().into(), at))
            }
            AgentEvent::RoleChanged { role, at, .. } => out.push(update(ROLE, json(role), at)),
            AgentEvent::GroupsChanged { groups, at, .. } => {
                out.push(update(GROUPS, json(groups), at));
                memberships(id, groups, out);
            }
            AgentEvent::PermissionsChanged {
                permissions, at, ..
            } => {
                out.push(update(PERMISSIONS, json(permissions), at));
            }
            AgentEvent::WorkingHoursChanged {
                working_hours, at, ..
            } => out.push(update(
                HOURS,
                working_hours.as_ref().map_or(SqlValue::Text(None), json),
                at,
            )),
            AgentEvent::Deactivated { at, .. } => out.push(Statement::new(
                ACTIVE_OFFLINE,
                vec![at.unix_millis().into(), version, id.into()],
            )),
            AgentEvent::AvailabilityChanged {
                availability, at, ..
            } => out.push(update(AVAILABILITY, availability.name().into(), at)),
            AgentEvent::Reactivated { at, .. } => out.push(update(ACTIVE, 1.into(), at)),
            AgentEvent::PasswordChanged { at, .. }
            | AgentEvent::CustomerDataExported { at, .. } => out.push(Statement::new(
                TOUCHED,
                vec![at.unix_millis().into(), version, id.into()],
            )),
        }
    }
}

/// An agent as admins see it (never with credentials).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct AgentView {
    /// Agent id.
    pub id: String,
    /// Login email.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `admin`, `supervisor` or `agent`.
    pub role: Value,
    /// Group ids.
    pub groups: Value,
    /// Permissions.
    pub permissions: Value,
    /// Working hours, if any.
    pub working_hours: Option<Value>,
    /// Whether the agent may work.
    pub active: bool,
    /// `online`, `busy` or `offline`.
    #[schema(value_type = crate::wire::AvailabilityDoc)]
    pub availability: String,
    /// Since when.
    pub availability_since: Option<String>,
    /// When registered.
    pub created_at: String,
    /// When last changed.
    pub updated_at: String,
    /// The agent aggregate's version.
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct AgentRow {
    id: String,
    email: String,
    name: String,
    role: String,
    group_ids: String,
    permissions: String,
    working_hours: Option<String>,
    active: i64,
    availability: String,
    availability_since: Option<i64>,
    created_at: i64,
    updated_at: i64,
    version: i64,
}

fn parse(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or(Value::Null)
}

impl From<AgentRow> for AgentView {
    fn from(row: AgentRow) -> Self {
        Self {
            id: row.id,
            email: row.email,
            name: row.name,
            role: parse(&row.role),
            groups: parse(&row.group_ids),
            permissions: parse(&row.permissions),
            working_hours: row.working_hours.as_deref().map(parse),
            active: row.active != 0,
            availability: row.availability,
            availability_since: crate::page::rfc3339_opt(row.availability_since),
            created_at: rfc3339(row.created_at),
            updated_at: rfc3339(row.updated_at),
            version: row.version,
        }
    }
}

macro_rules! agent_columns {
    () => {
        "id, email, name, role, group_ids, permissions, working_hours, active, availability,
         availability_since, created_at, updated_at, version"
    };
}

/// Every agent, by name.
///
/// # Errors
/// Database failures.
pub async fn list(db: &Database) -> Result<Vec<AgentView>, ProjectionError> {
    const SQL: &str = concat!(
        "select ",
        agent_columns!(),
        " from agents order by name, id limit 10000"
    );
    let rows: Vec<AgentRow> = with_pool!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
    Ok(rows.into_iter().map(AgentView::from).collect())
}

/// One agent, or `None`.
///
/// # Errors
/// Database failures.
pub async fn get(db: &Database, id: &str) -> Result<Option<AgentView>, ProjectionError> {
    const SQL: &str = concat!("select ", agent_columns!(), " from agents where id = $1");
    let row: Option<AgentRow> =
        with_pool!(db, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?);
    Ok(row.map(AgentView::from))
}

/// How many agents exist (to know whether a first admin must be created).
///
/// # Errors
/// Database failures.
pub async fn count(db: &Database) -> Result<i64, ProjectionError> {
    Ok(
        with_pool!(db, pool => sqlx::query_scalar("select count(*) from agents").fetch_one(pool).await?),
    )
}

/// The ids of the agents listed with `role` (active or not).
///
/// # Errors
/// Database failures.
pub async fn ids_with_role(
    db: &Database,
    role: switchboard_domain::agent::Role,
) -> Result<Vec<String>, ProjectionError> {
    let sql = "select id from agents where role = $1";
    let role = serde_json::to_string(&role).unwrap_or_default();
    Ok(with_pool!(db, pool => sqlx::query_scalar(sql).bind(&role).fetch_all(pool).await?))
}
