//! The bot-reply watch: a customer is never left with nobody. A conversation with the bot whose
//! customer has waited longer than the bot's reply timeout is handed to the humans
//! (`ConversationHandedOff`, reason `bot_timeout`); while every bot endpoint is disabled or
//! failing, at once (`bot_unreachable`). With no bot endpoint registered at all, the timeout
//! applies: nobody answers within it.
//!
//! The read model only nominates conversations (with the bot, a customer waiting); the
//! conversation aggregate decides at the append, from its own record of since when the
//! customer has waited for the bot, so a bot reply racing the watch wins or loses cleanly and
//! several instances hand a conversation off once.

use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::conversation::ConversationCommand;
use switchboard_projections::webhook_endpoints;
use switchboard_projections::ProjectionError;
use switchboard_store::{with_pool, Database};
use tokio::sync::watch;

use crate::auth::accounts::actor_metadata;
use crate::clock::Clock;
use crate::cqrs::Frameworks;
use crate::outgoing::{state, OutgoingSettings};
use crate::telemetry::error_chain;

/// Conversations with the bot whose customer has waited since before `$1` (all waiting ones
/// when `$1` is the far future), oldest wait first.
const CANDIDATES: &str = "select id, last_customer_message_at from conversations
    where status = 'pending' and owner_agent_id is null and waiting_since is not null
      and waiting_since <= $1
    order by waiting_since, id limit 500";

/// The bot-reply watch.
pub struct BotWatch {
    /// Conversations the aggregate declined, not asked again until their customer writes
    /// (the key) or, when the wait is not due yet, until it is (Unix ms); bounded.
    declined: std::sync::Mutex<std::collections::HashMap<String, (Option<i64>, i64)>>,
    database: Database,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    settings: OutgoingSettings,
}

impl BotWatch {
    /// A watch looking every poll interval of the outgoing settings.
    pub fn new(
        database: Database,
        frameworks: Frameworks,
        clock: Arc<dyn Clock>,
        settings: OutgoingSettings,
    ) -> Self {
        Self {
            declined: std::sync::Mutex::default(),
            database,
            frameworks,
            clock,
            settings,
        }
    }

    /// Whether no bot can answer now: there are bot endpoints, and every one is disabled or
    /// failing.
    async fn bot_unreachable(&self) -> Result<bool, ProjectionError> {
        let bots: Vec<_> = webhook_endpoints::list(&self.database)
            .await?
            .into_iter()
            .filter(|e| e.bot)
            .collect();
        if bots.is_empty() {
            return Ok(false);
        }
        let failing = state::failing(&self.database).await?;
        Ok(bots
            .iter()
            .all(|bot| !bot.enabled || failing.iter().any(|(id, _)| *id == bot.id)))
    }

    /// One pass; answers how many conversations were handed off.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn run_once(&self) -> Result<usize, ProjectionError> {
        let now = self.clock.now();
        let timeout = i64::try_from(self.settings.bot_reply_timeout.as_secs()).unwrap_or(i64::MAX);
        let unreachable = self.bot_unreachable().await?;
        let before = if unreachable {
            i64::MAX
        } else {
            now.unix_millis()
                .saturating_sub(timeout.saturating_mul(1000))
        };
        let rows: Vec<(String, Option<i64>)> = with_pool!(&self.database, pool =>
            sqlx::query_as(CANDIDATES).bind(before).fetch_all(pool).await?);
        let metadata = actor_metadata(None, now);
        let mut handed = 0;
        for (id, wrote_at) in rows {
            // While the bot is unreachable a wait is due at once: skip only those not waiting.
            let at = if unreachable {
                i64::MAX - 1
            } else {
                now.unix_millis()
            };
            if self.still_declined(&id, wrote_at, at) {
                continue;
            }
            let command = ConversationCommand::HandOffUnanswered {
                timeout_seconds: timeout,
                bot_unreachable: unreachable,
                at: now,
            };
            match self
                .frameworks
                .conversations
                .execute(&id, command, &metadata)
                .await
            {
                Ok(conversation) if !conversation.with_bot() => {
                    handed += 1;
                    let reason = if unreachable {
                        "bot_unreachable"
                    } else {
                        "bot_timeout"
                    };
                    metrics::counter!(crate::metrics::BOT_HANDOFFS, "reason" => reason)
                        .increment(1);
                }
                Ok(conversation) => {
                    let due = conversation
                        .awaiting_bot_since()
                        .map_or(i64::MAX, |since| since.plus_seconds(timeout).unix_millis());
                    self.decline(id, wrote_at, due);
                }
                Err(error) => tracing::warn!(conversation = %id, %error, "hand-off failed"),
            }
        }
        Ok(handed)
    }

    fn still_declined(&self, id: &str, wrote_at: Option<i64>, now: i64) -> bool {
        let declined = self
            .declined
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        declined
            .get(id)
            .is_some_and(|(key, until)| *key == wrote_at && now < *until)
    }

    fn decline(&self, id: String, wrote_at: Option<i64>, until: i64) {
        let mut declined = self
            .declined
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if declined.len() >= 100_000 {
            declined.clear();
        }
        declined.insert(id, (wrote_at, until));
    }

    /// Runs passes until `shutdown`.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let interval = self.settings.poll_interval.min(Duration::from_secs(1));
        loop {
            if let Err(error) = self.run_once().await {
                tracing::error!(error = %error_chain(&error), "bot-reply pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}
