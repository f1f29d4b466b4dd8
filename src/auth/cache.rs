//! What every authenticated request needs to know besides its token — is the login (session
//! family) still live, and what may the agent do — kept in memory per instance, so that a
//! request reads neither the `session_families` row nor the agent's stream.
//!
//! **What it guarantees.**
//! - *On this instance, at once.* A logout, a revocation (reused refresh token, password
//!   change, password reset, deactivation found at refresh) and every change of an agent's
//!   rights made through this instance drop the entry as soon as the change is committed,
//!   before the request that made it is answered: the next request reads the database.
//!   A read that began before such a change can never put the old state back (each table has
//!   an epoch that every invalidation moves on, and a read started in an older epoch is not
//!   kept).
//! - *Made elsewhere (another instance, the command line), within the bound.* An entry is
//!   used only while it was proven current less than `max_staleness` ago
//!   (`SWITCHBOARD_AUTH_CACHE_MS`, 1 s by default). A checker re-proves every entry in a few
//!   queries four times per bound: sessions revoked or expired, and agents whose stream has
//!   moved on, are dropped. An entry the checker could not re-prove in time (the database is
//!   slow or down) is not used: the request reads the database, as without a cache. So a
//!   change committed elsewhere stops being honoured here at most `max_staleness` after its
//!   commit, whatever the checker does.
//! - The bound covers deciding whether a request may start; a request already past
//!   authentication finishes with the rights it started with (as before). Commands that need
//!   the acting agent's rights *now* (changes to agents) read them fresh.
//!
//! **Why a checker, not the log's tailers.** The realtime fan-out sees every agent event, but
//! only once the gapless reader lets it pass (an event writer still running holds back what
//! committed after it), and sessions are not in the log at all. Re-proving entries against the
//! tables themselves costs two small queries per quarter-bound and gives a bound that holds
//! whatever any tailer does.
//!
//! `max_staleness` zero turns the cache off. Both tables are bounded ([`KEPT`] entries, least
//! recently used go first) and entries unused for [`IDLE`] are dropped by the checker.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hashlink::LruCache;
use switchboard_domain::agent::Agent;
use switchboard_store::{with_pool, Database, EventRepository, StoreError};
use tokio::sync::watch;

use crate::auth::sessions;
use crate::clock::Clock;

/// Entries per table (sessions, agents).
pub const KEPT: usize = 10_000;
/// Entries not used for this long are dropped rather than checked again.
pub const IDLE: Duration = Duration::from_secs(10 * 60);
/// Ids per checking query.
const CHECK_CHUNK: usize = 500;

/// The per-instance cache of live logins and agents' rights (see the module documentation).
pub struct AuthCache {
    max_staleness: Duration,
    sessions: Mutex<Table<SessionEntry>>,
    agents: Mutex<Table<AgentEntry>>,
}

/// A bounded map and the epoch its invalidations move on.
struct Table<E> {
    entries: LruCache<String, E>,
    epoch: u64,
}

/// A login that was live.
struct SessionEntry {
    agent_id: String,
    expires_at_ms: i64,
    confirmed: Instant,
    used: Instant,
}

/// An agent's aggregate at a sequence of their stream.
struct AgentEntry {
    agent: Agent,
    sequence: i64,
    confirmed: Instant,
    used: Instant,
}

fn lock<E>(table: &Mutex<Table<E>>) -> MutexGuard<'_, Table<E>> {
    // std mutex: held for map operations only, never across an await.
    table.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<E> Table<E> {
    fn new() -> Self {
        Self {
            entries: LruCache::new(KEPT),
            epoch: 0,
        }
    }

    /// Drops the entries `drop` selects and moves the epoch on.
    fn invalidate(&mut self, drop: impl Fn(&str, &E) -> bool) {
        let keys: Vec<String> = self
            .entries
            .iter()
            .filter(|(key, entry)| drop(key, entry))
            .map(|(key, _)| key.clone())
            .collect();
        for key in keys {
            self.entries.remove(&key);
        }
        self.epoch += 1;
    }

    /// Keeps `entry` unless an invalidation happened since `epoch` (the read behind it may
    /// predate the change).
    fn keep(&mut self, epoch: u64, key: &str, entry: E) {
        if self.epoch == epoch {
            self.entries.insert(key.to_owned(), entry);
        }
    }
}

impl AuthCache {
    /// A cache whose entries are trusted for at most `max_staleness` after they were last
    /// proven current (zero: no cache).
    pub fn new(max_staleness: Duration) -> Self {
        Self {
            max_staleness,
            sessions: Mutex::new(Table::new()),
            agents: Mutex::new(Table::new()),
        }
    }

    fn fresh(&self, confirmed: Instant) -> bool {
        confirmed.elapsed() < self.max_staleness
    }

    fn enabled(&self) -> bool {
        !self.max_staleness.is_zero()
    }

    /// Whether the login `family` is live at `now_ms` (neither revoked nor expired): from
    /// memory when proven within the bound, else from the database (one query).
    ///
    /// # Errors
    /// Database failures.
    pub async fn session_is_live(
        &self,
        database: &Database,
        family: &str,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        {
            let mut sessions = lock(&self.sessions);
            if let Some(entry) = sessions.entries.get_mut(family) {
                if self.fresh(entry.confirmed) {
                    entry.used = Instant::now();
                    return Ok(entry.expires_at_ms > now_ms);
                }
            }
        }
        let epoch = lock(&self.sessions).epoch;
        let sent = Instant::now();
        let Some((agent_id, expires_at_ms)) = sessions::live(database, family, now_ms).await?
        else {
            return Ok(false);
        };
        let entry = SessionEntry {
            agent_id,
            expires_at_ms,
            confirmed: sent,
            used: sent,
        };
        if self.enabled() {
            lock(&self.sessions).keep(epoch, family, entry);
        }
        Ok(true)
    }

    /// The agent `id` as their stream stands (within the bound): from memory, else loaded.
    ///
    /// # Errors
    /// Storage failures and unreadable events.
    pub async fn agent(&self, log: &EventRepository, id: &str) -> Result<Agent, StoreError> {
        {
            let mut agents = lock(&self.agents);
            if let Some(entry) = agents.entries.get_mut(id) {
                if self.fresh(entry.confirmed) {
                    entry.used = Instant::now();
                    return Ok(entry.agent.clone());
                }
            }
        }
        self.load_agent(log, id).await
    }

    /// The agent `id` as their stream stands now, read from the log (and kept for the requests
    /// to come): for logins and refreshes, which decide on it.
    ///
    /// # Errors
    /// Storage failures and unreadable events.
    pub async fn load_agent(&self, log: &EventRepository, id: &str) -> Result<Agent, StoreError> {
        let epoch = lock(&self.agents).epoch;
        let sent = Instant::now();
        let (agent, sequence) = log.load_aggregate::<Agent>(id).await?;
        let entry = AgentEntry {
            agent: agent.clone(),
            sequence,
            confirmed: sent,
            used: sent,
        };
        if self.enabled() {
            lock(&self.agents).keep(epoch, id, entry);
        }
        Ok(agent)
    }

    /// Starts a login: `start` writes it (a live family of `agent_id` expiring at
    /// `expires_at_ms`), then it is kept, so that the login's first request reads nothing.
    ///
    /// # Errors
    /// `start`'s.
    pub async fn session_started<E>(
        &self,
        family: &str,
        agent_id: &str,
        expires_at_ms: i64,
        start: impl std::future::Future<Output = Result<(), E>>,
    ) -> Result<(), E> {
        // The epoch first: an invalidation of the agent's logins committed after the insert
        // (a password change racing the login) must win.
        let epoch = lock(&self.sessions).epoch;
        let sent = Instant::now();
        start.await?;
        if self.enabled() {
            let entry = SessionEntry {
                agent_id: agent_id.to_owned(),
                expires_at_ms,
                confirmed: sent,
                used: sent,
            };
            lock(&self.sessions).keep(epoch, family, entry);
        }
        Ok(())
    }

    /// The login `family` ended here (committed): forget it.
    pub fn session_ended(&self, family: &str) {
        lock(&self.sessions).invalidate(|key, _| key == family);
    }

    /// Every login of `agent_id` but `keep` ended here (committed): forget them.
    pub fn sessions_of_agent_ended(&self, agent_id: &str, keep: Option<&str>) {
        lock(&self.sessions)
            .invalidate(|key, entry| entry.agent_id == agent_id && Some(key) != keep);
    }

    /// The agent `agent_id` changed here (committed or possibly committed): forget them.
    pub fn agent_changed(&self, agent_id: &str) {
        lock(&self.agents).invalidate(|key, _| key == agent_id);
    }

    /// Re-proves every entry until `shutdown` fires, four times per bound.
    pub async fn keep_checked(
        self: Arc<Self>,
        log: EventRepository,
        clock: Arc<dyn Clock>,
        mut shutdown: watch::Receiver<bool>,
    ) {
        if !self.enabled() {
            return;
        }
        let interval = (self.max_staleness / 4).max(Duration::from_millis(10));
        loop {
            if let Err(error) = self.check(&log, clock.now().unix_millis()).await {
                tracing::warn!(%error, "checking cached logins and rights failed; retrying");
            }
            tokio::select! {
                () = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// One pass: drops what ended or moved on, marks the rest proven now, forgets idle entries.
    ///
    /// # Errors
    /// Database failures (what was not re-proven is left to age past the bound).
    pub async fn check(&self, log: &EventRepository, now_ms: i64) -> Result<(), StoreError> {
        let sent = Instant::now();
        let families = Self::in_use(&self.sessions, sent);
        let ended: HashSet<String> = sessions::ended(log.database(), &families, now_ms)
            .await?
            .into_iter()
            .collect();
        {
            let mut sessions = lock(&self.sessions);
            for family in &families {
                if ended.contains(family) {
                    sessions.entries.remove(family);
                } else if let Some(entry) = sessions.entries.peek_mut(family) {
                    entry.confirmed = entry.confirmed.max(sent);
                }
            }
        }
        let ids = Self::in_use(&self.agents, sent);
        let sequences = latest_agent_sequences(log.database(), &ids).await?;
        let mut agents = lock(&self.agents);
        for (id, sequence) in ids.iter().zip(sequences) {
            let Some(entry) = agents.entries.peek_mut(id) else {
                continue;
            };
            if entry.sequence == sequence {
                entry.confirmed = entry.confirmed.max(sent);
            } else if entry.sequence < sequence {
                // Moved on since it was read. (One read after this pass began may be newer.)
                agents.entries.remove(id);
            }
        }
        Ok(())
    }

    /// The keys of `table` used within [`IDLE`]; the others are dropped.
    fn in_use<E: Used>(table: &Mutex<Table<E>>, now: Instant) -> Vec<String> {
        let mut table = lock(table);
        let idle: Vec<String> = table
            .entries
            .iter()
            .filter(|(_, entry)| now.saturating_duration_since(entry.used()) > IDLE)
            .map(|(key, _)| key.clone())
            .collect();
        for key in &idle {
            table.entries.remove(key);
        }
        table.entries.iter().map(|(key, _)| key.clone()).collect()
    }
}

trait Used {
    fn used(&self) -> Instant;
}

impl Used for SessionEntry {
    fn used(&self) -> Instant {
        self.used
    }
}

impl Used for AgentEntry {
    fn used(&self) -> Instant {
        self.used
    }
}

/// The sequence of the last event of each agent in `ids` (0 for one without events), in the
/// order of `ids`, one query per [`CHECK_CHUNK`].
async fn latest_agent_sequences(
    database: &Database,
    ids: &[String],
) -> Result<Vec<i64>, StoreError> {
    use cqrs_es::Aggregate;
    let mut sequences = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(CHECK_CHUNK) {
        let rows: Vec<(String, i64)> = with_pool!(database, pool => {
            let mut query = sqlx::QueryBuilder::new(
                "select aggregate_id, max(sequence) from events where aggregate_type = ",
            );
            query.push_bind(Agent::TYPE).push(" and aggregate_id in (");
            let mut list = query.separated(", ");
            for id in chunk {
                list.push_bind(id.as_str());
            }
            query.push(") group by aggregate_id");
            query.build_query_as().fetch_all(pool).await?
        });
        let latest: std::collections::HashMap<String, i64> = rows.into_iter().collect();
        sequences.extend(chunk.iter().map(|id| latest.get(id).copied().unwrap_or(0)));
    }
    Ok(sequences)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(agent: &str) -> SessionEntry {
        let now = Instant::now();
        SessionEntry {
            agent_id: agent.to_owned(),
            expires_at_ms: i64::MAX,
            confirmed: now,
            used: now,
        }
    }

    #[test]
    fn a_read_that_began_before_an_invalidation_is_not_kept() {
        let mut table = Table::new();
        let epoch = table.epoch;
        table.invalidate(|key, _: &SessionEntry| key == "f1");
        table.keep(epoch, "f1", entry("a"));
        assert!(table.entries.is_empty(), "the stale read is dropped");
        table.keep(table.epoch, "f1", entry("a"));
        assert_eq!(table.entries.len(), 1, "a read begun after it is kept");
    }

    #[test]
    fn ending_an_agents_logins_spares_the_one_kept_and_other_agents() {
        let cache = AuthCache::new(Duration::from_secs(1));
        {
            let mut sessions = lock(&cache.sessions);
            for (family, agent) in [("f1", "a"), ("f2", "a"), ("f3", "b")] {
                let epoch = sessions.epoch;
                sessions.keep(epoch, family, entry(agent));
            }
        }
        cache.sessions_of_agent_ended("a", Some("f2"));
        let sessions = lock(&cache.sessions);
        let mut left: Vec<&str> = sessions.entries.iter().map(|(k, _)| k.as_str()).collect();
        left.sort_unstable();
        assert_eq!(left, ["f2", "f3"]);
    }

    #[test]
    fn an_entry_is_trusted_only_within_the_bound() {
        let cache = AuthCache::new(Duration::from_millis(50));
        assert!(cache.fresh(Instant::now()));
        let old = Instant::now()
            .checked_sub(Duration::from_millis(60))
            .expect("the clock has run that long");
        assert!(!cache.fresh(old));
        assert!(
            !AuthCache::new(Duration::ZERO).fresh(Instant::now()),
            "zero: off"
        );
    }
}
