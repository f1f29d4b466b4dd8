//! The SLA worker: records which thresholds conversations met or breached
//! (`ConversationSlaMet` / `ConversationSlaBreached`).
//!
//! Each pass picks, from the read models, the conversations that may have something to record
//! (a superset: waiting or unresolved past the smallest threshold of any policy, or answered or
//! resolved within the last day without an outcome yet) and sends each an
//! [`ConversationCommand::EvaluateSla`] with every policy in force. The conversation decides
//! from its own history which policy covers it and what is due, and records each outcome once:
//! several instances may run passes at once, the loser of a race finds the outcome recorded.
//! Stretches answered more than a day before a pass (a worker stopped that long) are not
//! looked at again.

use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::conversation::ConversationCommand;
use switchboard_domain::sla::{SlaPolicyRef, SlaTarget};
use switchboard_projections::{sla, ProjectionError};
use switchboard_store::{with_pool, Database};
use tokio::sync::watch;

use crate::auth::accounts::actor_metadata;
use crate::clock::Clock;
use crate::cqrs::Frameworks;
use crate::telemetry::error_chain;

/// How far back answered and resolved stretches are looked for.
const LOOK_BACK_MS: i64 = 24 * 3_600_000;
/// Conversations per page of a pass.
const PAGE: i64 = 500;
/// A threshold no policy sets: no candidate by that rule.
const NEVER: i64 = i64::MAX / 4;

/// Conversations that may have an outcome to record, after `$5` (keyset), by id.
/// `$1` now, `$2` smallest response threshold, `$3` smallest resolution threshold, `$4` now
/// minus the look-back.
const CANDIDATES: &str = "select w.conversation_id from response_waits w
  where w.conversation_id > $5 and (
       (w.waiting_since is not null and w.waiting_since <= $1 - $2
        and not exists (select 1 from sla_outcomes o where o.conversation_id = w.conversation_id
                        and o.since = w.waiting_since and o.target <> 'resolution'))
    or exists (select 1 from responses r where r.conversation_id = w.conversation_id
               and r.responded_at >= $4
               and not exists (select 1 from sla_outcomes o where o.conversation_id = r.conversation_id
                               and o.since = r.responded_at - r.waited_ms and o.target <> 'resolution'))
    or ((w.resolved_at is null and w.started_at <= $1 - $3 or w.resolved_at >= $4)
        and not exists (select 1 from sla_outcomes o
             where o.conversation_id = w.conversation_id and o.target = 'resolution'
               and o.since >= coalesce(w.reopened_at, w.started_at))))
  order by w.conversation_id limit $6";

/// The SLA worker.
pub struct SlaWatch {
    database: Database,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    interval: Duration,
}

impl SlaWatch {
    /// A worker making a pass every `interval`.
    pub fn new(
        database: Database,
        frameworks: Frameworks,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Self {
        Self {
            database,
            frameworks,
            clock,
            interval,
        }
    }

    /// One pass; returns how many conversations it asked.
    ///
    /// # Errors
    /// When the read models cannot be queried.
    pub async fn run_once(&self) -> Result<usize, ProjectionError> {
        let policies = sla::policy_refs(&self.database).await?;
        if policies.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let smallest = |targets: &[SlaTarget]| {
            policies
                .iter()
                .flat_map(|p| targets.iter().filter_map(|t| p.terms.threshold(*t)))
                .min()
                .map_or(NEVER, |s| i64::from(s) * 1000)
        };
        let response = smallest(&[SlaTarget::FirstResponse, SlaTarget::NextResponse]);
        let resolution = smallest(&[SlaTarget::Resolution]);
        let metadata = actor_metadata(None, now);
        let (mut after, mut asked) = (String::new(), 0);
        loop {
            let page: Vec<String> = with_pool!(&self.database, pool => sqlx::query_scalar(CANDIDATES)
                .bind(now.unix_millis()).bind(response).bind(resolution)
                .bind(now.unix_millis() - LOOK_BACK_MS).bind(&after).bind(PAGE)
                .fetch_all(pool).await?);
            for id in &page {
                self.evaluate(id, &policies, now, &metadata).await;
            }
            asked += page.len();
            match page.last() {
                Some(last) if page.len() as i64 == PAGE => after.clone_from(last),
                _ => return Ok(asked),
            }
        }
    }

    async fn evaluate(
        &self,
        id: &str,
        policies: &[SlaPolicyRef],
        now: switchboard_domain::Timestamp,
        metadata: &std::collections::HashMap<String, String>,
    ) {
        let command = ConversationCommand::EvaluateSla {
            policies: policies.to_vec(),
            at: now,
        };
        if let Err(error) = self
            .frameworks
            .conversations
            .execute(id, command, metadata)
            .await
        {
            tracing::warn!(conversation_id = %id, %error, "SLA evaluation failed");
        }
    }

    /// Runs until `shutdown` fires.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.run_once().await {
                tracing::error!(error = %error_chain(&error), "SLA pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}
