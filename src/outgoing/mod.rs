//! Outgoing webhooks: the event log delivered to integrations' endpoints, signed by the
//! Standard Webhooks specification (<https://www.standardwebhooks.com>).
//!
//! - [`address`] keeps deliveries away from private networks (SSRF), at registration and at
//!   every connection.
//! - [`signing`] holds endpoint secrets (`whsec_…`) and signs deliveries.
//! - [`state`] is the deliverer's worker state: cursors, attempts, the delivery log, dead
//!   letters (none of it a read model; a rebuild leaves it alone).
//! - [`facts`] tells, for an event, what its conversation was at that point of the log (number,
//!   group, with the bot or not), so filters decide the same live and on replay.
//! - [`deliver`] is the worker.

pub mod address;
pub mod deliver;
pub mod facts;
pub mod signing;
pub mod state;

use std::time::Duration;

/// How outgoing webhooks are delivered, and how long the bot may take.
#[derive(Debug, Clone)]
pub struct OutgoingSettings {
    /// Allow endpoints on loopback and private networks (tests, a bot beside the server).
    pub allow_private: bool,
    /// The waits between attempts at one event; once they are spent, it is dead-lettered.
    pub retry_schedule: Vec<Duration>,
    /// An endpoint failing without a success for this long is disabled.
    pub disable_after: Duration,
    /// The longest one delivery may take.
    pub timeout: Duration,
    /// How often the deliverer looks for work when no event wakes it.
    pub poll_interval: Duration,
    /// How long the bot may leave a customer unanswered before the conversation is handed to
    /// the humans.
    pub bot_reply_timeout: Duration,
    /// How long delivery attempts stay in the delivery log.
    pub delivery_log_retention: Duration,
}

impl Default for OutgoingSettings {
    fn default() -> Self {
        Self {
            allow_private: false,
            retry_schedule: default_schedule(),
            disable_after: Duration::from_secs(5 * 86_400),
            timeout: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            bot_reply_timeout: Duration::from_secs(60),
            delivery_log_retention: Duration::from_secs(7 * 86_400),
        }
    }
}

/// 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: about 28 hours of retries.
fn default_schedule() -> Vec<Duration> {
    [5, 300, 1_800, 7_200, 18_000, 36_000, 36_000]
        .into_iter()
        .map(Duration::from_secs)
        .collect()
}

/// `switchboard serve` flags for integrations.
#[derive(Debug, Clone, clap::Args)]
pub struct OutgoingArgs {
    /// Allow outgoing webhook endpoints on loopback and private addresses (refused by default,
    /// against server-side request forgery).
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOK_ALLOW_PRIVATE",
        default_value_t = false
    )]
    pub webhook_allow_private: bool,
    /// Waits between delivery attempts of one event, comma-separated (`5s,5m,30m,2h`); after
    /// the last, the event is dead-lettered for that endpoint.
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,10h"
    )]
    pub webhook_retry_schedule: String,
    /// An endpoint that has failed for this long without a success is disabled (`5d`, `12h`).
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_DISABLE_AFTER", default_value = "5d")]
    pub webhook_disable_after: String,
    /// The longest one delivery may take, in seconds.
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOK_TIMEOUT_SECONDS",
        default_value_t = 10
    )]
    pub webhook_timeout_seconds: u64,
    /// Seconds the bot may leave a customer unanswered before the conversation is handed off.
    #[arg(
        long,
        env = "SWITCHBOARD_BOT_REPLY_TIMEOUT_SECONDS",
        default_value_t = 60
    )]
    pub bot_reply_timeout_seconds: u64,
}

/// A setting that does not parse.
#[derive(Debug, thiserror::Error)]
#[error("{name}: {message}")]
pub struct BadSetting {
    name: &'static str,
    message: String,
}

impl OutgoingArgs {
    /// The settings these flags describe.
    ///
    /// # Errors
    /// A schedule or duration that does not parse.
    pub fn settings(&self) -> Result<OutgoingSettings, BadSetting> {
        let duration = |name: &'static str, text: &str| {
            humantime::parse_duration(text.trim()).map_err(|e| BadSetting {
                name,
                message: e.to_string(),
            })
        };
        let retry_schedule = self
            .webhook_retry_schedule
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|s| duration("SWITCHBOARD_WEBHOOK_RETRY_SCHEDULE", s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(OutgoingSettings {
            allow_private: self.webhook_allow_private,
            retry_schedule,
            disable_after: duration(
                "SWITCHBOARD_WEBHOOK_DISABLE_AFTER",
                &self.webhook_disable_after,
            )?,
            timeout: Duration::from_secs(self.webhook_timeout_seconds.max(1)),
            bot_reply_timeout: Duration::from_secs(self.bot_reply_timeout_seconds.max(1)),
            ..OutgoingSettings::default()
        })
    }
}
