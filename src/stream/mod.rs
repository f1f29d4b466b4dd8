//! The event log on NATS JetStream, for analytics consumers and other services: every event
//! published once, in log order, with the database staying the source of truth.
//!
//! - [`publisher`] tails the log with the gapless reader and publishes each event to
//!   `<subject prefix>.<aggregate type>.<event type>`, the `/api/events` envelope as body.
//! - [`lease`] keeps one publisher at a time across instances and stores the last position
//!   JetStream acknowledged (worker state, table `stream_publishers`).
//!
//! **Once and in order.** Each message carries `Nats-Msg-Id` = its position (JetStream drops a
//! republished id within its duplicate window) and `Nats-Expected-Last-Msg-Id` = the position
//! published before it, so JetStream refuses a message that would follow anything but its
//! predecessor: a publisher that lost its place (a crash, a lost lease, a failed publish in a
//! pipelined batch) can neither skip an event nor publish one twice or out of order. On every
//! (re)start the publisher resumes after the stream's own last message, else after the stored
//! position.

mod forget;
pub mod lease;
pub mod publisher;
pub mod redact;

use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use serde::Serialize;

/// How the log is published to NATS JetStream (off without a URL).
#[derive(Debug, Clone)]
pub struct StreamSettings {
    /// The NATS server (`nats://host:4222`); `None`: no publishing.
    pub url: Option<String>,
    /// The JetStream stream (created if missing).
    pub stream: String,
    /// Subjects are `<prefix>.<aggregate type>.<event type>`.
    pub subject_prefix: String,
    /// Leave message contents, names and notes out of the stream.
    pub redact_content: bool,
    /// How long the stream keeps messages (zero: for ever) when it is created.
    pub max_age: Duration,
    /// Replicas of the stream when it is created.
    pub replicas: usize,
    /// How long a publisher's lease lasts without renewal: another instance takes over after.
    pub lease: Duration,
    /// Events per published batch.
    pub batch: u32,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            url: None,
            stream: "SWITCHBOARD_EVENTS".to_owned(),
            subject_prefix: "switchboard.events".to_owned(),
            redact_content: false,
            max_age: Duration::ZERO,
            replicas: 1,
            lease: Duration::from_secs(10),
            batch: 1000,
        }
    }
}

/// `switchboard serve` flags for the JetStream publisher.
#[derive(Debug, Clone, clap::Args)]
pub struct StreamArgs {
    /// Publish the event log to this NATS server's JetStream (`nats://127.0.0.1:4222`).
    #[arg(long, env = "SWITCHBOARD_NATS_URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream, created if missing.
    #[arg(
        long,
        env = "SWITCHBOARD_NATS_STREAM",
        default_value = "SWITCHBOARD_EVENTS"
    )]
    pub nats_stream: String,
    /// Subjects are `<prefix>.<aggregate type>.<event type>`; the stream takes `<prefix>.>`.
    #[arg(
        long,
        env = "SWITCHBOARD_NATS_SUBJECT_PREFIX",
        default_value = "switchboard.events"
    )]
    pub nats_subject_prefix: String,
    /// Leave message contents, names and notes out of the stream.
    #[arg(long, env = "SWITCHBOARD_NATS_REDACT_CONTENT", default_value_t = false)]
    pub nats_redact_content: bool,
    /// Days a created stream keeps messages (0: for ever).
    #[arg(long, env = "SWITCHBOARD_NATS_MAX_AGE_DAYS", default_value_t = 0)]
    pub nats_max_age_days: u64,
    /// Replicas of a created stream.
    #[arg(long, env = "SWITCHBOARD_NATS_REPLICAS", default_value_t = 1)]
    pub nats_replicas: usize,
    /// Seconds a publisher's lease lasts; another instance takes over after.
    #[arg(long, env = "SWITCHBOARD_NATS_LEASE_SECONDS", default_value_t = 10)]
    pub nats_lease_seconds: u64,
}

impl StreamArgs {
    /// The settings these flags describe.
    pub fn settings(&self) -> StreamSettings {
        StreamSettings {
            url: self.nats_url.clone().filter(|u| !u.trim().is_empty()),
            stream: self.nats_stream.clone(),
            subject_prefix: self.nats_subject_prefix.clone(),
            redact_content: self.nats_redact_content,
            max_age: Duration::from_secs(self.nats_max_age_days.saturating_mul(86_400)),
            replicas: self.nats_replicas.max(1),
            lease: Duration::from_secs(self.nats_lease_seconds.max(1)),
            ..StreamSettings::default()
        }
    }
}

/// What this instance's publisher knows, for `/api/health/detailed` and metrics.
#[derive(Debug, Default)]
pub struct StreamStatus {
    enabled: AtomicBool,
    leader: AtomicBool,
    connected: AtomicBool,
    published_position: AtomicI64,
    lag: AtomicI64,
    last_error: Mutex<Option<String>>,
}

/// The publisher's state as health shows it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StreamHealth {
    /// A NATS URL is configured.
    pub enabled: bool,
    /// This instance holds the lease and publishes.
    pub leader: bool,
    /// Connected to NATS.
    pub connected: bool,
    /// The last position JetStream acknowledged (as this instance last saw it).
    pub published_position: i64,
    /// Events in the log not yet published (as this instance last counted).
    pub lag_events: i64,
    /// The last publishing error, if the last attempt failed.
    pub last_error: Option<String>,
}

impl StreamStatus {
    /// A status for a publisher that runs (or not).
    pub fn new(enabled: bool) -> Self {
        let status = Self::default();
        status.enabled.store(enabled, Ordering::Relaxed);
        status
    }

    pub(crate) fn set_leader(&self, leader: bool) {
        self.leader.store(leader, Ordering::Relaxed);
        metrics::gauge!(crate::metrics::STREAM_LEADER).set(if leader { 1.0 } else { 0.0 });
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Relaxed);
    }

    pub(crate) fn published(&self, position: i64, lag: i64) {
        self.published_position.store(position, Ordering::Relaxed);
        self.set_lag(lag);
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = None;
    }

    pub(crate) fn set_lag(&self, lag: i64) {
        self.lag.store(lag, Ordering::Relaxed);
        metrics::gauge!(crate::metrics::STREAM_LAG).set(lag as f64);
    }

    pub(crate) fn failed(&self, error: String) {
        metrics::counter!(crate::metrics::STREAM_PUBLISH_ERRORS).increment(1);
        *self
            .last_error
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error);
    }

    /// The state as health shows it.
    pub fn health(&self) -> StreamHealth {
        StreamHealth {
            enabled: self.enabled.load(Ordering::Relaxed),
            leader: self.leader.load(Ordering::Relaxed),
            connected: self.connected.load(Ordering::Relaxed),
            published_position: self.published_position.load(Ordering::Relaxed),
            lag_events: self.lag.load(Ordering::Relaxed),
            last_error: self
                .last_error
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
        }
    }
}
