//! Auto-assignment: each pool's policy, when each agent last got a conversation, and the
//! queries the assigner decides from (the waiting conversations, the available agents).

use serde::Serialize;
use switchboard_domain::assignment::AssignmentPolicyEvent;
use switchboard_domain::conversation::ConversationEvent;
use switchboard_store::{with_pool, Database, RecordedEvent, Statement};

use crate::page::rfc3339;
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds `assignment_policies` and `agent_assignments`.
pub struct AssignmentProjection;

const POLICY: &str = "
insert into assignment_policies (pool, mode, capacity, updated_at) values ($1, $2, $3, $4)
on conflict (pool) do update set mode = excluded.mode, capacity = excluded.capacity,
    updated_at = excluded.updated_at";
const ASSIGNED: &str = "
insert into agent_assignments (agent_id, last_assigned_at, last_position, assigned_total)
values ($1, $2, $3, 1)
on conflict (agent_id) do update set last_assigned_at = excluded.last_assigned_at,
    last_position = excluded.last_position,
    assigned_total = agent_assignments.assigned_total + 1";

impl Projection for AssignmentProjection {
    fn name(&self) -> &'static str {
        "assignment"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["assignment_policies", "agent_assignments"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["AssignmentPolicy", "Conversation"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        match decoded {
            DecodedEvent::AssignmentPolicy(AssignmentPolicyEvent::Set {
                mode,
                capacity,
                at,
                ..
            }) => out.push(Statement::new(
                POLICY,
                vec![
                    event.aggregate_id.as_str().into(),
                    mode.name().into(),
                    i64::from(*capacity).into(),
                    at.unix_millis().into(),
                ],
            )),
            DecodedEvent::Conversation(ConversationEvent::AutoAssigned { agent, at, .. }) => out
                .push(Statement::new(
                    ASSIGNED,
                    vec![
                        agent.to_string().into(),
                        at.unix_millis().into(),
                        event.position.into(),
                    ],
                )),
            _ => {}
        }
    }
}

/// One pool's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct PolicyView {
    /// A group id, or `default` for conversations in no group.
    pub pool: String,
    /// `manual`, `round_robin` or `least_busy`.
    pub mode: String,
    /// Open conversations per agent.
    pub capacity: i64,
    /// When set.
    pub updated_at: String,
}

/// Every pool's policy (pools without one are manual).
///
/// # Errors
/// Database failures.
pub async fn policies(db: &Database) -> Result<Vec<PolicyView>, ProjectionError> {
    let sql = "select pool, mode, capacity, updated_at from assignment_policies order by pool";
    let rows: Vec<(String, String, i64, i64)> =
        with_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|(pool, mode, capacity, at)| PolicyView {
            pool,
            mode,
            capacity,
            updated_at: rfc3339(at),
        })
        .collect())
}

/// A conversation waiting for an agent: `(id, group id, waiting since)`.
pub type Waiting = (String, Option<String>, i64);

/// Open conversations that no agent has and no human owns, in pools whose policy is not
/// manual, the customer waiting longest first (then the oldest conversation), at most `limit`
/// after `after` (the last one of the previous page).
///
/// # Errors
/// Database failures.
pub async fn waiting(
    db: &Database,
    after: Option<&Waiting>,
    limit: u32,
) -> Result<Vec<Waiting>, ProjectionError> {
    let sql = "select id, assigned_group_id, coalesce(waiting_since, started_at) as queued
        from conversations c
        where status = 'open' and assigned_agent_id is null and owner_agent_id is null
          and coalesce((select mode from assignment_policies p where p.pool = c.assigned_group_id),
                       (select mode from assignment_policies p where p.pool = 'default'),
                       'manual') <> 'manual'
          and (coalesce(waiting_since, started_at) > $1
               or (coalesce(waiting_since, started_at) = $1 and id > $2))
        order by coalesce(waiting_since, started_at), id limit $3";
    let (key, id) = after.map_or((i64::MIN, ""), |(id, _, key)| (*key, id.as_str()));
    Ok(with_pool!(db, pool => sqlx::query_as(sql)
        .bind(key).bind(id).bind(i64::from(limit)).fetch_all(pool).await?))
}

/// An agent who may be given conversations now, as far as the read models tell.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Candidate {
    /// Agent id.
    pub id: String,
    /// Group ids (JSON array).
    pub group_ids: String,
    /// Working hours (JSON), if any.
    pub working_hours: Option<String>,
    /// Permissions (JSON).
    pub permissions: String,
    /// Open (not resolved) conversations assigned to them.
    pub load: i64,
    /// Log position of their last auto-assignment (0: never).
    pub last_position: i64,
}

/// Active agents who are `online`, with their load.
///
/// # Errors
/// Database failures.
pub async fn candidates(db: &Database) -> Result<Vec<Candidate>, ProjectionError> {
    let sql = "select a.id, a.group_ids, a.working_hours, a.permissions,
            (select count(*) from conversations c
              where c.assigned_agent_id = a.id and c.status <> 'resolved') as load,
            coalesce(s.last_position, 0) as last_position
        from agents a left join agent_assignments s on s.agent_id = a.id
        where a.active = 1 and a.availability = 'online'
        order by a.id";
    Ok(with_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await?))
}
