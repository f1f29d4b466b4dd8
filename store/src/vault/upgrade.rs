//! Sealing the events an install wrote before its log was sealed (a one-off pass at start,
//! resumable): each personal part is sealed as it would be today, except what an erasure or a
//! retention period recorded later in the log had already taken away, which is left in its
//! erased form with no key at all. Snapshots of such installs are dropped once (they are
//! derived, and rebuilt sealed). The pass rewrites those rows in place: the one time the log
//! is rewritten, so that erasure holds for what came before it.

use std::collections::HashMap;

use serde_json::Value;
use switchboard_domain::privacy::{self, Destroys, KeyScope};

use crate::event_log::EventRepository;
use crate::{nul, with_pool, StoreError};

/// Events looked at per transaction.
const BATCH: i64 = 1_000;

/// The progress row's name.
const NAME: &str = "seal_existing";

/// The progress of a pass that is over.
const DONE: i64 = i64::MAX;

/// What later events of a conversation took away: everything before a position (an erasure),
/// and content of hours before an hour, before a position (retention).
#[derive(Default)]
struct Taken {
    erased_before: i64,
    expired: Vec<(i64, i64)>,
}

impl Taken {
    fn covers(&self, position: i64, scope: KeyScope) -> bool {
        position < self.erased_before
            || matches!(scope, KeyScope::Content(hour)
                if self.expired.iter().any(|(at, before)| position < *at && hour < *before))
    }
}

/// Seals every event written in clear before `until` (the log's head at start); returns how
/// many it rewrote. Safe to run again: it resumes where it stopped, and sealed events are left.
///
/// # Errors
/// Database failures.
pub async fn seal_existing(log: &EventRepository) -> Result<u64, StoreError> {
    let database = log.database();
    let done: Option<i64> = with_pool!(database, pool => sqlx::query_scalar(
        "select position from vault_progress where name = $1").bind(NAME).fetch_optional(pool).await?);
    let until = log.head().await?;
    let mut after = match done {
        Some(DONE) => return Ok(0),
        Some(position) => position,
        None => {
            with_pool!(database, pool => sqlx::query(
                "delete from snapshots where aggregate_type in ('Conversation', 'Message')")
                .execute(pool).await.map(|_| ())?);
            0
        }
    };
    let taken = taken(log).await?;
    let mut rewritten = 0;
    while after < until {
        let rows: Vec<(i64, String, String, sqlx::types::Json<Value>)> = with_pool!(database, pool =>
            sqlx::query_as("select position, aggregate_type, aggregate_id, payload from events
                where position > $1 and position <= $2 order by position limit $3")
                .bind(after).bind(until).bind(BATCH).fetch_all(pool).await?);
        let Some(last) = rows.last().map(|r| r.0) else {
            break;
        };
        let mut updates = Vec::new();
        for (position, kind, id, sqlx::types::Json(stored)) in rows {
            let payload = nul::decoded(stored);
            if payload.get("$sealed").is_some() {
                continue;
            }
            let Some(personal) = privacy::personal(&kind, &id, &payload) else {
                continue;
            };
            let kind: &str = &kind;
            let listed = [(kind, id.as_str(), &payload)];
            let sealed = log.vault.sealed(database, &listed).await?;
            let mut sealed = sealed
                .into_iter()
                .next()
                .map(|p| p.into_owned())
                .unwrap_or_default();
            let gone = taken.get(&personal.conversation);
            if let (Some(gone), Some(Value::Array(envelopes))) = (gone, sealed.get_mut("$sealed")) {
                let mut index = 0;
                envelopes.retain(|_| {
                    let keep = !gone.covers(position, personal.parts[index].0);
                    index += 1;
                    keep
                });
            }
            updates.push((position, sealed));
        }
        with_pool!(database, pool => {
            let mut tx = pool.begin().await?;
            for (position, payload) in &updates {
                sqlx::query("update events set payload = $1 where position = $2")
                    .bind(sqlx::types::Json(nul::encode(payload)))
                    .bind(*position)
                    .execute(&mut *tx)
                    .await?;
            }
            sqlx::query("insert into vault_progress (name, position) values ($1, $2)
                on conflict (name) do update set position = excluded.position")
                .bind(NAME).bind(last).execute(&mut *tx).await?;
            tx.commit().await?;
        });
        rewritten += updates.len() as u64;
        after = last;
    }
    // Everything since was sealed as it was appended.
    with_pool!(database, pool => sqlx::query("insert into vault_progress (name, position) values ($1, $2)
        on conflict (name) do update set position = excluded.position")
        .bind(NAME).bind(DONE).execute(pool).await.map(|_| ())?);
    Ok(rewritten)
}

/// What the erasures and expiries in the log took away, by conversation.
async fn taken(log: &EventRepository) -> Result<HashMap<String, Taken>, StoreError> {
    let rows: Vec<(i64, String, sqlx::types::Json<Value>)> = with_pool!(log.database(), pool =>
        sqlx::query_as("select position, aggregate_id, payload from events where event_type in
            ('ConversationCustomerErased', 'ConversationContentExpired')").fetch_all(pool).await?);
    let mut taken: HashMap<String, Taken> = HashMap::new();
    for (position, id, sqlx::types::Json(payload)) in rows {
        let payload = nul::decoded(payload);
        match privacy::destroys("Conversation", &id, &payload) {
            Some(Destroys::All { conversation }) => {
                let entry = taken.entry(conversation).or_default();
                entry.erased_before = entry.erased_before.max(position);
            }
            Some(Destroys::ContentBefore { conversation, hour }) => {
                taken
                    .entry(conversation)
                    .or_default()
                    .expired
                    .push((position, hour));
            }
            None => {}
        }
    }
    Ok(taken)
}
