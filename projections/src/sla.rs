//! SLA policies in force (`sla_policies`) and the outcomes recorded against them
//! (`sla_outcomes`: one row per met or breached threshold, keyed by log position).

use serde::Serialize;
use switchboard_domain::conversation::ConversationEvent;
use switchboard_domain::conversation::Tag;
use switchboard_domain::sla::{choose, SlaPolicyEvent, SlaPolicyRef, SlaTarget, SlaTerms};
use switchboard_domain::{GroupId, PhoneNumberId, Timestamp};
use switchboard_store::{with_pool, Database, RecordedEvent, Statement};

use crate::page::rfc3339;
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds `sla_policies` and `sla_outcomes`.
pub struct SlaProjection;

const CREATED: &str = "insert into sla_policies
    (id, name, terms, created_position, created_at, updated_at) values ($1, $2, $3, $4, $5, $5)";
const CHANGED: &str =
    "update sla_policies set name = $1, terms = $2, updated_at = $3 where id = $4";
const DELETED: &str = "delete from sla_policies where id = $1";
const OUTCOME: &str = "insert into sla_outcomes
    (position, conversation_id, policy_id, target, outcome, since, due_at, at)
    values ($1, $2, $3, $4, $5, $6, $7, $8)";

impl Projection for SlaProjection {
    fn name(&self) -> &'static str {
        "sla"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["sla_policies", "sla_outcomes"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["SlaPolicy", "Conversation"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let id = event.aggregate_id.as_str();
        let terms_json = |terms: &SlaTerms| serde_json::to_string(terms).unwrap_or_default();
        match decoded {
            DecodedEvent::SlaPolicy(SlaPolicyEvent::Created { terms, at, .. }) => {
                out.push(Statement::new(
                    CREATED,
                    vec![
                        id.into(),
                        terms.name.as_str().into(),
                        terms_json(terms).into(),
                        event.position.into(),
                        at.unix_millis().into(),
                    ],
                ));
            }
            DecodedEvent::SlaPolicy(SlaPolicyEvent::Changed { terms, at, .. }) => {
                out.push(Statement::new(
                    CHANGED,
                    vec![
                        terms.name.as_str().into(),
                        terms_json(terms).into(),
                        at.unix_millis().into(),
                        id.into(),
                    ],
                ));
            }
            DecodedEvent::SlaPolicy(SlaPolicyEvent::Deleted { .. }) => {
                out.push(Statement::new(DELETED, vec![id.into()]));
            }
            DecodedEvent::Conversation(
                ConversationEvent::SlaMet {
                    policy_id,
                    target,
                    since,
                    due_at,
                    at,
                }
                | ConversationEvent::SlaBreached {
                    policy_id,
                    target,
                    since,
                    due_at,
                    at,
                },
            ) => {
                let outcome = match decoded {
                    DecodedEvent::Conversation(ConversationEvent::SlaMet { .. }) => "met",
                    _ => "breached",
                };
                out.push(Statement::new(
                    OUTCOME,
                    vec![
                        event.position.into(),
                        id.into(),
                        policy_id.as_str().into(),
                        target.as_str().into(),
                        outcome.into(),
                        since.unix_millis().into(),
                        due_at.unix_millis().into(),
                        at.unix_millis().into(),
                    ],
                ));
            }
            _ => {}
        }
    }
}

/// An SLA policy as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SlaPolicyView {
    /// Policy id.
    pub id: String,
    /// The terms: name, thresholds in seconds, business hours, scope (`applies_to`).
    #[schema(value_type = Object)]
    #[serde(flatten)]
    pub terms: SlaTerms,
    /// When created.
    pub created_at: String,
    /// When last changed.
    pub updated_at: String,
}

/// Every policy in force, oldest first.
///
/// # Errors
/// Database failures, or stored terms that no longer decode.
pub async fn policies(db: &Database) -> Result<Vec<SlaPolicyView>, ProjectionError> {
    let sql = "select id, terms, created_at, updated_at from sla_policies
        order by created_position limit 1000";
    let rows: Vec<(String, String, i64, i64)> =
        with_pool!(db, pool => sqlx::query_as(sql).fetch_all(pool).await?);
    rows.into_iter()
        .map(|(id, terms, created_at, updated_at)| {
            Ok(SlaPolicyView {
                id,
                terms: serde_json::from_str(&terms)
                    .map_err(|e| sqlx::Error::Decode(Box::new(e)))?,
                created_at: rfc3339(created_at),
                updated_at: rfc3339(updated_at),
            })
        })
        .collect()
}

/// Every policy in force as conversations see them, oldest first.
///
/// # Errors
/// As [`policies`].
pub async fn policy_refs(db: &Database) -> Result<Vec<SlaPolicyRef>, ProjectionError> {
    Ok(policies(db)
        .await?
        .into_iter()
        .map(|p| SlaPolicyRef {
            id: p.id,
            terms: p.terms,
        })
        .collect())
}

/// Met and breached thresholds of one policy and target in a period.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SlaSummary {
    /// The policy.
    pub policy_id: String,
    /// `first_response`, `next_response` or `resolution`.
    pub target: String,
    /// Kept.
    pub met: u64,
    /// Not kept.
    pub breached: u64,
    /// Share kept, 0 to 1 (absent without cases).
    pub compliance: Option<f64>,
}

/// Outcomes whose due time lies in `[from, to)` (Unix milliseconds), by policy and target.
///
/// # Errors
/// Database failures.
pub async fn summary(
    db: &Database,
    from: i64,
    to: i64,
) -> Result<Vec<SlaSummary>, ProjectionError> {
    let sql = "select policy_id, target,
            cast(sum(case when outcome = 'met' then 1 else 0 end) as bigint),
            cast(sum(case when outcome = 'breached' then 1 else 0 end) as bigint)
        from sla_outcomes where due_at >= $1 and due_at < $2
        group by policy_id, target order by policy_id, target";
    let rows: Vec<(String, String, i64, i64)> = with_pool!(db, pool => sqlx::query_as(sql)
        .bind(from).bind(to).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|(policy_id, target, met, breached)| {
            let total = met + breached;
            SlaSummary {
                policy_id,
                target,
                met: u64::try_from(met).unwrap_or(0),
                breached: u64::try_from(breached).unwrap_or(0),
                compliance: (total > 0).then(|| met as f64 / total as f64),
            }
        })
        .collect())
}

/// When a conversation's running SLA stretches fall due under the policy covering it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct SlaDue {
    /// The covering policy.
    pub policy_id: String,
    /// Its name.
    pub policy_name: String,
    /// The first response, while the customer waits for it.
    pub first_response_due_at: Option<String>,
    /// The next response, while the customer waits for it.
    pub next_response_due_at: Option<String>,
    /// The resolution, while unresolved.
    pub resolution_due_at: Option<String>,
}

/// The due times of the conversation `id` with this group, these tags and this number; `None`
/// when no policy covers it.
///
/// # Errors
/// Database failures.
pub async fn due_times(
    db: &Database,
    id: &str,
    group: Option<&str>,
    tags: &[String],
    phone_number_id: &str,
) -> Result<Option<SlaDue>, ProjectionError> {
    let policies = policy_refs(db).await?;
    let tags: Vec<Tag> = tags.iter().filter_map(|t| Tag::parse(t).ok()).collect();
    let phone = PhoneNumberId::new(phone_number_id);
    let Some(policy) = choose(
        &policies,
        group.and_then(GroupId::parse),
        &tags,
        Some(&phone),
    ) else {
        return Ok(None);
    };
    const CLOCKS: &str = "select coalesce(reopened_at, started_at), waiting_since,
        first_response_at, resolved_at from response_waits where conversation_id = $1";
    // (stretch start, waiting since, first response, resolved)
    type Clocks = (i64, Option<i64>, Option<i64>, Option<i64>);
    let clocks: Option<Clocks> =
        with_pool!(db, pool => sqlx::query_as(CLOCKS).bind(id).fetch_optional(pool).await?);
    let Some((stretch, waiting, first_response, resolved)) = clocks else {
        return Ok(None);
    };
    let due = |target: SlaTarget, since: Option<i64>| {
        let since = Timestamp::from_unix_millis(since?)?;
        policy.terms.due(target, since).map(|t| t.to_string())
    };
    let (first, next) = match first_response {
        None => (waiting, None),
        Some(_) => (None, waiting),
    };
    Ok(Some(SlaDue {
        policy_id: policy.id.clone(),
        policy_name: policy.terms.name.clone(),
        first_response_due_at: due(SlaTarget::FirstResponse, first),
        next_response_due_at: due(SlaTarget::NextResponse, next),
        resolution_due_at: due(SlaTarget::Resolution, resolved.is_none().then_some(stretch)),
    }))
}
