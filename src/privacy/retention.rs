//! Retention of what customers and agents said: per business number (or by default), contents
//! older than the period are erased a whole hour at a time. Each erasure is an event on the
//! conversation (`ConversationContentExpired`) that destroys the content keys of those hours
//! as it is appended, so the log, every read model, every replay and every later export read
//! `[erased]`; counts, times and statuses stay.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::conversation::ConversationCommand;
use switchboard_domain::privacy::CONTENT_KEY_SECONDS;
use switchboard_domain::Timestamp;
use switchboard_store::{with_pool, Database, StoreError};
use tokio::sync::watch;

use crate::auth::accounts::actor_metadata;
use crate::clock::Clock;
use crate::cqrs::Frameworks;

/// How long contents are kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContentRetention {
    /// For every number without its own period (`None`: for ever).
    pub default: Option<Duration>,
    /// By business number (`phone_number_id`).
    pub by_number: HashMap<String, Duration>,
}

impl ContentRetention {
    /// Whether anything is ever erased.
    pub fn enabled(&self) -> bool {
        self.default.is_some() || !self.by_number.is_empty()
    }

    fn period(&self, number: Option<&str>) -> Option<Duration> {
        number
            .and_then(|n| self.by_number.get(n).copied())
            .or(self.default)
    }
}

/// Conversations looked at per query.
const PAGE: i64 = 500;

/// Conversations holding content keys older than `$1` (an hour), after `$2`, with their number.
const HOLDING: &str =
    "select k.conversation_id, c.phone_number_id, min(k.scope) from customer_keys k
    left join conversations c on c.id = k.conversation_id
    where k.scope >= 0 and k.scope < $1 and k.conversation_id > $2
    group by k.conversation_id, c.phone_number_id order by k.conversation_id limit $3";

/// The content-retention worker.
pub struct ContentRetentionWorker {
    database: Database,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    retention: ContentRetention,
}

impl ContentRetentionWorker {
    /// Erases contents past `retention`.
    pub fn new(
        database: Database,
        frameworks: Frameworks,
        clock: Arc<dyn Clock>,
        retention: ContentRetention,
    ) -> Self {
        Self {
            database,
            frameworks,
            clock,
            retention,
        }
    }

    /// One pass; returns how many conversations had contents erased.
    ///
    /// # Errors
    /// Database failures.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let shortest = self
            .retention
            .by_number
            .values()
            .chain(&self.retention.default)
            .min()
            .copied();
        let Some(shortest) = shortest else {
            return Ok(0);
        };
        let metadata = actor_metadata(None, now);
        let mut after = String::new();
        let mut expired = 0;
        loop {
            let rows: Vec<(String, Option<String>, i64)> = with_pool!(&self.database, pool =>
                sqlx::query_as(HOLDING).bind(first_kept_hour(now, shortest)).bind(&after)
                    .bind(PAGE).fetch_all(pool).await?);
            for (conversation, number, oldest) in &rows {
                let Some(period) = self.retention.period(number.as_deref()) else {
                    continue;
                };
                let hour = first_kept_hour(now, period);
                if *oldest >= hour {
                    continue;
                }
                let Some(before) = Timestamp::from_unix_seconds(hour * CONTENT_KEY_SECONDS) else {
                    continue;
                };
                let command = ConversationCommand::ExpireContent { before, at: now };
                match self
                    .frameworks
                    .conversations
                    .execute(conversation, command, &metadata)
                    .await
                {
                    Ok(_) => expired += 1,
                    Err(error) => {
                        tracing::warn!(%conversation, %error, "contents past retention not erased");
                    }
                }
            }
            match rows.last() {
                Some((last, _, _)) if rows.len() == PAGE.unsigned_abs() as usize => {
                    after.clone_from(last)
                }
                _ => return Ok(expired),
            }
        }
    }

    /// Runs until `shutdown` fires, a pass every `every`.
    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.run_once().await {
                Ok(0) => {}
                Ok(conversations) => {
                    tracing::info!(conversations, "contents past their retention erased");
                    super::release_when_projected(self.database.clone());
                }
                Err(error) => tracing::error!(%error, "content retention pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// The first hour whose contents are kept when `period` is kept: the hour containing
/// `now - period`, so that nothing younger than `period` is erased.
fn first_kept_hour(now: Timestamp, period: Duration) -> i64 {
    let period = i64::try_from(period.as_secs()).unwrap_or(i64::MAX);
    let cutoff = (now.unix_millis() / 1_000).saturating_sub(period);
    cutoff.div_euclid(CONTENT_KEY_SECONDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hour_of_the_cutoff_is_kept_so_nothing_younger_than_the_period_goes() {
        let now = Timestamp::from_unix_seconds(10 * 3_600 + 1_800).expect("valid");
        assert_eq!(first_kept_hour(now, Duration::from_secs(3_600)), 9);
        assert_eq!(first_kept_hour(now, Duration::from_secs(86_400)), -14);
        let retention = ContentRetention {
            default: Some(Duration::from_secs(60)),
            by_number: HashMap::from([("p1".to_owned(), Duration::from_secs(120))]),
        };
        assert_eq!(retention.period(Some("p1")), Some(Duration::from_secs(120)));
        assert_eq!(retention.period(Some("p2")), Some(Duration::from_secs(60)));
        assert_eq!(retention.period(None), Some(Duration::from_secs(60)));
    }
}
