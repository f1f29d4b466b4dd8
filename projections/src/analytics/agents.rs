//! Per agent and local day: conversations handled, replies sent, how fast they answered, and
//! how many open conversations each holds now.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::Serialize;
use switchboard_domain::agent::WorkingHours;
use switchboard_store::{with_pool, Database};

use super::{bucket_start, filter_sql, measured, Bucket, Filter, SLOT_MS};
use crate::response_times::Durations;
use crate::ProjectionError;

/// One agent's day.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct AgentDay {
    /// The local day (`2026-05-28`).
    pub day: String,
    /// The agent.
    pub agent_id: String,
    /// Their name.
    pub agent_name: String,
    /// Conversations they sent at least one message in.
    pub conversations_handled: u64,
    /// Messages they sent.
    pub replies: u64,
    /// Replies that answered a waiting customer.
    pub responses: u64,
    /// Median time those customers waited, in seconds.
    pub median_response_seconds: Option<f64>,
    /// 90th percentile of it, in seconds.
    pub p90_response_seconds: Option<f64>,
    /// Open conversations assigned to them now (the same on each of their days).
    pub open_now: u64,
}

#[derive(Default)]
struct Tally {
    conversations: std::collections::BTreeSet<String>,
    replies: u64,
    waits: Vec<i64>,
}

/// Per agent and local day of `zone`, for `[from, to)`; response times within `hours` when
/// given.
///
/// # Errors
/// Database failures.
pub async fn per_day(
    db: &Database,
    (from, to): (i64, i64),
    filter: &Filter,
    zone: Tz,
    hours: Option<&WorkingHours>,
) -> Result<Vec<AgentDay>, ProjectionError> {
    let replies_sql = format!(
        "select m.requested_by, m.conversation_id, m.sort_at / {SLOT_MS}, count(*)
           from messages m join conversations c on c.id = m.conversation_id
          where m.direction = 'outbound' and m.requested_by is not null
            and m.sort_at >= $1 and m.sort_at < $2 {}
          group by m.requested_by, m.conversation_id, m.sort_at / {SLOT_MS} limit 1000000",
        filter_sql(3, "m.requested_by")
    );
    let responses_sql = format!(
        "select r.agent_id, r.responded_at - r.waited_ms, r.responded_at
           from responses r join conversations c on c.id = r.conversation_id
          where r.responded_at >= $1 and r.responded_at < $2 {} limit 1000000",
        filter_sql(3, "r.agent_id")
    );
    const OPEN: &str = "select assigned_agent_id, count(*) from conversations
        where status <> 'resolved' and assigned_agent_id is not null group by assigned_agent_id";
    const NAMES: &str = "select id, name from agents";
    let replies: Vec<(String, String, i64, i64)> = with_pool!(db, pool => sqlx::query_as(&replies_sql)
        .bind(from).bind(to).bind(&filter.group).bind(&filter.agent).bind(&filter.phone_number_id)
        .fetch_all(pool).await?);
    let responses: Vec<(String, i64, i64)> = with_pool!(db, pool => sqlx::query_as(&responses_sql)
        .bind(from).bind(to).bind(&filter.group).bind(&filter.agent).bind(&filter.phone_number_id)
        .fetch_all(pool).await?);
    let open: Vec<(String, i64)> =
        with_pool!(db, pool => sqlx::query_as(OPEN).fetch_all(pool).await?);
    let names: Vec<(String, String)> =
        with_pool!(db, pool => sqlx::query_as(NAMES).fetch_all(pool).await?);
    let day_of = |millis: i64| {
        bucket_start(millis, Bucket::Day, zone).map(|d| d.format("%Y-%m-%d").to_string())
    };
    let mut days: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for (agent, conversation, slot, count) in replies {
        let Some(day) = day_of(slot * SLOT_MS) else {
            continue;
        };
        let tally = days.entry((day, agent)).or_default();
        tally.conversations.insert(conversation);
        tally.replies += u64::try_from(count).unwrap_or(0);
    }
    for (agent, since, answered) in responses {
        let Some(day) = day_of(answered) else {
            continue;
        };
        let tally = days.entry((day, agent)).or_default();
        tally.waits.push(measured(hours, since, answered));
    }
    let open: BTreeMap<String, i64> = open.into_iter().collect();
    let names: BTreeMap<String, String> = names.into_iter().collect();
    Ok(days
        .into_iter()
        .map(|((day, agent_id), tally)| {
            let waits = Durations::of(tally.waits);
            AgentDay {
                day,
                agent_name: names.get(&agent_id).cloned().unwrap_or_default(),
                conversations_handled: tally.conversations.len() as u64,
                replies: tally.replies,
                responses: waits.count,
                median_response_seconds: waits.median_seconds,
                p90_response_seconds: waits.p90_seconds,
                open_now: open
                    .get(&agent_id)
                    .and_then(|n| u64::try_from(*n).ok())
                    .unwrap_or(0),
                agent_id,
            }
        })
        .collect())
}
