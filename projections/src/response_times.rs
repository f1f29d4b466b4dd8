//! Response times: how long customers wait for an agent's answer, and how long conversations
//! take to resolve (issue #21, first read model of the analytics).
//!
//! Per conversation (`response_waits`): since when the customer has been waiting (their first
//! message since the last agent reply), the first answer, the latest resolution and how often it
//! was reopened. Per agent reply that answered a waiting customer (`responses`, keyed by the
//! reply's log position, so a rebuild writes the same rows): who, when, and how long the
//! customer had waited; the first of a conversation is its first response time. Replies that
//! are not an agent's (none yet: bots come with issue #23) never count.

use serde::Serialize;
use switchboard_domain::agent::WorkingHours;
use switchboard_domain::conversation::{ConversationEvent, ConversationStatus};
use switchboard_store::{with_pool, Database, RecordedEvent, Statement};

use crate::analytics::{filter_sql, measured, Filter};
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds `response_waits` and `responses`.
pub struct ResponseTimesProjection;

const STARTED: &str = "insert into response_waits (conversation_id, started_at) values ($1, $2)
    on conflict (conversation_id) do nothing";
const CUSTOMER_WROTE: &str = "update response_waits
    set waiting_since = coalesce(waiting_since, $1) where conversation_id = $2";
const ANSWERED: &str = "insert into responses
    (position, conversation_id, agent_id, responded_at, waited_ms, is_first)
    select $1, conversation_id, $2, $3, $3 - waiting_since,
           case when first_response_at is null then 1 else 0 end
      from response_waits where conversation_id = $4 and waiting_since is not null";
const ANSWER_SEEN: &str = "update response_waits
    set first_response_at = coalesce(first_response_at, case when waiting_since is null then null else $1 end),
        waiting_since = null
  where conversation_id = $2";
const RESOLVED: &str = "update response_waits set resolved_at = $1 where conversation_id = $2";
const REOPENED: &str = "update response_waits
    set reopens = reopens + 1, resolved_at = null, reopened_at = $1
  where conversation_id = $2 and resolved_at is not null";

impl Projection for ResponseTimesProjection {
    fn name(&self) -> &'static str {
        "response_times"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["response_waits", "responses"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["Conversation"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let DecodedEvent::Conversation(event_of_conversation) = decoded else {
            return;
        };
        let id = event.aggregate_id.as_str();
        match event_of_conversation {
            ConversationEvent::Started { started_at, .. } => out.push(Statement::new(
                STARTED,
                vec![id.into(), started_at.unix_millis().into()],
            )),
            ConversationEvent::CustomerMessageReceived { sent_at, .. } => {
                out.push(Statement::new(
                    CUSTOMER_WROTE,
                    vec![sent_at.unix_millis().into(), id.into()],
                ));
            }
            ConversationEvent::AgentReplied { by, at, .. } => {
                out.push(Statement::new(
                    ANSWERED,
                    vec![
                        event.position.into(),
                        by.to_string().into(),
                        at.unix_millis().into(),
                        id.into(),
                    ],
                ));
                out.push(Statement::new(
                    ANSWER_SEEN,
                    vec![at.unix_millis().into(), id.into()],
                ));
            }
            ConversationEvent::StatusChanged { status, at, .. } => match status {
                ConversationStatus::Resolved => out.push(Statement::new(
                    RESOLVED,
                    vec![at.unix_millis().into(), id.into()],
                )),
                _ => out.push(Statement::new(
                    REOPENED,
                    vec![at.unix_millis().into(), id.into()],
                )),
            },
            _ => {}
        }
    }
}

/// How long something took, over a set of cases.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Durations {
    /// How many.
    pub count: u64,
    /// Mean, in seconds (absent without cases).
    pub average_seconds: Option<f64>,
    /// Median, in seconds.
    pub median_seconds: Option<f64>,
    /// 90th percentile (nearest rank), in seconds.
    pub p90_seconds: Option<f64>,
}

impl Durations {
    /// Of these milliseconds.
    pub fn of(mut millis: Vec<i64>) -> Self {
        millis.sort_unstable();
        let seconds = |ms: i64| ms as f64 / 1000.0;
        let rank = |q: f64| {
            let at = ((q * millis.len() as f64).ceil() as usize).clamp(1, millis.len()) - 1;
            seconds(millis[at])
        };
        let count = millis.len();
        let median = match count {
            0 => None,
            n if n % 2 == 1 => Some(seconds(millis[n / 2])),
            n => Some((seconds(millis[n / 2 - 1]) + seconds(millis[n / 2])) / 2.0),
        };
        Self {
            count: count as u64,
            average_seconds: (count > 0)
                .then(|| millis.iter().map(|m| seconds(*m)).sum::<f64>() / count as f64),
            median_seconds: median,
            p90_seconds: (count > 0).then(|| rank(0.9)),
        }
    }
}

/// The response times of a period.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ResponseOverview {
    /// Conversations started in the period.
    pub conversations_started: u64,
    /// First responses given in the period: from the customer's first message to the first
    /// agent reply.
    pub first_response: Durations,
    /// Every later response given in the period: from the customer's first message since the
    /// previous reply to the next reply.
    pub next_response: Durations,
    /// Conversations resolved in the period (and not reopened since): from their start.
    pub resolution: Durations,
    /// Reopenings of the conversations started in the period.
    pub reopened: u64,
}

/// The response times in `[from, to)` (Unix milliseconds) of the conversations `filter`
/// selects; with `hours`, only time within them counts.
///
/// # Errors
/// Database failures.
pub async fn overview(
    db: &Database,
    (from, to): (i64, i64),
    filter: &Filter,
    hours: Option<&WorkingHours>,
) -> Result<ResponseOverview, ProjectionError> {
    let responses_sql = format!(
        "select r.is_first, r.responded_at - r.waited_ms, r.responded_at
           from responses r join conversations c on c.id = r.conversation_id
          where r.responded_at >= $1 and r.responded_at < $2 {} limit 1000000",
        filter_sql(3, "r.agent_id")
    );
    let started_sql = format!(
        "select count(*), cast(coalesce(sum(w.reopens), 0) as bigint)
           from response_waits w join conversations c on c.id = w.conversation_id
          where w.started_at >= $1 and w.started_at < $2 {}",
        filter_sql(3, "c.assigned_agent_id")
    );
    let resolved_sql = format!(
        "select w.started_at, w.resolved_at
           from response_waits w join conversations c on c.id = w.conversation_id
          where w.resolved_at >= $1 and w.resolved_at < $2 {} limit 1000000",
        filter_sql(3, "c.assigned_agent_id")
    );
    let responses: Vec<(i64, i64, i64)> = with_pool!(db, pool => sqlx::query_as(&responses_sql)
        .bind(from).bind(to).bind(&filter.group).bind(&filter.agent).bind(&filter.phone_number_id)
        .fetch_all(pool).await?);
    let (started, reopened): (i64, i64) = with_pool!(db, pool => sqlx::query_as(&started_sql)
        .bind(from).bind(to).bind(&filter.group).bind(&filter.agent).bind(&filter.phone_number_id)
        .fetch_one(pool).await?);
    let resolved: Vec<(i64, i64)> = with_pool!(db, pool => sqlx::query_as(&resolved_sql)
        .bind(from).bind(to).bind(&filter.group).bind(&filter.agent).bind(&filter.phone_number_id)
        .fetch_all(pool).await?);
    let (mut first, mut next) = (Vec::new(), Vec::new());
    for (is_first, since, answered) in responses {
        let waited = measured(hours, since, answered);
        if is_first == 1 {
            first.push(waited)
        } else {
            next.push(waited)
        }
    }
    Ok(ResponseOverview {
        conversations_started: u64::try_from(started).unwrap_or(0),
        first_response: Durations::of(first),
        next_response: Durations::of(next),
        resolution: Durations::of(
            resolved
                .into_iter()
                .map(|(s, r)| measured(hours, s, r))
                .collect(),
        ),
        reopened: u64::try_from(reopened).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::Durations;

    #[test]
    fn durations_summarise_in_seconds() {
        let d = Durations::of(vec![60_000, 120_000, 30_000, 600_000]);
        assert_eq!(d.count, 4);
        assert_eq!(d.average_seconds, Some(202.5));
        assert_eq!(d.median_seconds, Some(90.0));
        assert_eq!(d.p90_seconds, Some(600.0));
        assert_eq!(Durations::of(vec![]).median_seconds, None);
        assert_eq!(Durations::of(vec![5_000]).p90_seconds, Some(5.0));
    }
}
