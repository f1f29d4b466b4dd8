//! Agents with no connected socket go `offline`.
//!
//! Each instance reports, for each agent with sockets on it, how many it holds
//! (`agent_connections`, worker state: not a read model, no rebuild touches it), refreshed
//! every `grace / 4`, and a last `0` with the time the last socket left. Any instance then sets
//! `offline` (an `AgentAvailabilityChanged` with reason `disconnected`) for an agent who is
//! `online` or `busy`, has no socket reported fresh by any instance, and has been neither
//! connected nor changed availability for the grace period. The command names the agent
//! version it judged, so an agent setting themselves online meanwhile wins.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::agent::{AgentCommand, Availability};
use switchboard_domain::Timestamp;
use switchboard_store::{with_pool, Database};
use tokio::sync::watch;

use crate::auth::accounts::actor_metadata;
use crate::clock::Clock;
use crate::cqrs::Frameworks;

const REPORT: &str = "
insert into agent_connections (instance_id, agent_id, sockets, seen_at) values ($1, $2, $3, $4)
on conflict (instance_id, agent_id) do update set sockets = excluded.sockets, seen_at = excluded.seen_at";

/// Agents to take offline: `$1` the end of the grace period, `$2` the oldest fresh report.
const ABSENT: &str = "
select a.id, a.version from agents a
where a.active = 1 and a.availability <> 'offline' and coalesce(a.availability_since, 0) < $1
  and not exists (select 1 from agent_connections c
                  where c.agent_id = a.id and c.sockets > 0 and c.seen_at >= $2)
  and coalesce((select max(c.seen_at) from agent_connections c where c.agent_id = a.id), 0) < $1
limit 500";

/// Tracks this instance's sockets per agent and takes absent agents offline.
pub struct Presence {
    database: Database,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    grace: Duration,
    instance: String,
}

impl Presence {
    /// A worker with a grace period of `grace`.
    pub fn new(
        database: Database,
        frameworks: Frameworks,
        clock: Arc<dyn Clock>,
        grace: Duration,
    ) -> Self {
        Self {
            database,
            frameworks,
            clock,
            grace,
            instance: uuid::Uuid::new_v4().to_string(),
        }
    }

    fn interval(&self) -> Duration {
        (self.grace / 4).clamp(Duration::from_millis(100), Duration::from_secs(15))
    }

    /// Reports `sockets` (agent id → sockets on this instance); agents reported before and
    /// absent now get a last `0`. Returns the agents now connected.
    async fn report(
        &self,
        now: Timestamp,
        sockets: &HashMap<String, usize>,
        before: &HashSet<String>,
    ) -> Result<HashSet<String>, switchboard_store::StoreError> {
        let now = now.unix_millis();
        let gone = before.iter().filter(|a| !sockets.contains_key(*a));
        let rows = sockets
            .iter()
            .map(|(agent, n)| (agent, i64::try_from(*n).unwrap_or(i64::MAX)))
            .chain(gone.map(|agent| (agent, 0)));
        for (agent, count) in rows {
            with_pool!(&self.database, pool => {
                sqlx::query(REPORT)
                    .bind(&self.instance).bind(agent).bind(count).bind(now)
                    .execute(pool).await?;
            });
        }
        Ok(sockets.keys().cloned().collect())
    }

    /// Forgets reports older than the grace period and a day (stopped instances' rows).
    async fn forget_old(&self, now: Timestamp) -> Result<(), switchboard_store::StoreError> {
        let day = Duration::from_secs(86_400) + self.grace;
        let before = now.unix_millis() - i64::try_from(day.as_millis()).unwrap_or(0);
        with_pool!(&self.database, pool => {
            sqlx::query("delete from agent_connections where seen_at < $1")
                .bind(before).execute(pool).await?;
        });
        Ok(())
    }

    /// Takes every absent agent offline; returns how many.
    async fn take_absent_offline(
        &self,
        now: Timestamp,
    ) -> Result<usize, switchboard_store::StoreError> {
        let grace = i64::try_from(self.grace.as_millis()).unwrap_or(i64::MAX);
        let fresh = i64::try_from(self.interval().as_millis() * 3).unwrap_or(i64::MAX);
        let absent: Vec<(String, i64)> = with_pool!(&self.database, pool => sqlx::query_as(ABSENT)
            .bind(now.unix_millis() - grace).bind(now.unix_millis() - fresh)
            .fetch_all(pool).await?);
        let mut taken = 0;
        for (agent, version) in absent {
            let command = AgentCommand::SetAvailability {
                availability: Availability::Offline,
                reason: Some("disconnected".to_owned()),
                expected_version: u64::try_from(version).ok(),
                by: None,
                at: now,
            };
            let metadata = actor_metadata(None, now);
            match crate::cqrs::execute(&self.frameworks.agents, &agent, command, &metadata).await {
                Ok(()) => taken += 1,
                Err(error) => tracing::debug!(%agent, %error, "not taken offline"),
            }
        }
        Ok(taken)
    }

    /// Runs until `shutdown` fires; `sockets` tells this instance's sockets per agent.
    pub async fn run(
        self,
        sockets: impl Fn() -> HashMap<String, usize> + Send,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let mut reported = HashSet::new();
        loop {
            // One instant per pass: the sweep judges the reports by the time they were made
            // at, so a clock that moves mid-pass cannot make a connected agent look absent.
            let now = self.clock.now();
            match self.report(now, &sockets(), &reported).await {
                Ok(now) => reported = now,
                Err(error) => tracing::warn!(%error, "reporting connected agents failed"),
            }
            if let Err(error) = self.forget_old(now).await {
                tracing::warn!(%error, "forgetting old connection reports failed");
            }
            if let Err(error) = self.take_absent_offline(now).await {
                tracing::warn!(%error, "taking absent agents offline failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval()) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
