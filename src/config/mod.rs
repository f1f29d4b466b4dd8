//! Settings: data, read once at startup (from flags and environment variables) and never again.
//! Tests build them directly.

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use switchboard_store::vault::MasterKeys;
use switchboard_store::{DatabaseConfig, StoreError};

mod args;

pub use args::{load_or_create_secret, DatabaseArgs, ServeArgs, DEFAULT_MAX_WEBHOOK_BYTES};

/// Everything the server needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// Where the data lives.
    pub database: DatabaseConfig,
    /// Wrap customers' data keys (see `switchboard_store::vault`).
    pub master_keys: Arc<MasterKeys>,
    /// Meta-facing settings.
    pub whatsapp: WhatsAppSettings,
    /// Background workers.
    pub workers: WorkerSettings,
    /// Agent authentication.
    pub auth: AuthSettings,
    /// Conversation locks.
    pub conversations: ConversationSettings,
    /// Sending agents' messages.
    pub outbound: OutboundSettings,
    /// Agents' live sockets.
    pub realtime: RealtimeSettings,
    /// Files customers send.
    pub media: crate::media::MediaSettings,
    /// Outgoing webhooks and the bot.
    pub outgoing: crate::outgoing::OutgoingSettings,
    /// The event log on NATS JetStream.
    pub stream: crate::stream::StreamSettings,
    /// Rate limits, CORS, timeouts, shutdown.
    pub edge: crate::edge::EdgeSettings,
}

/// Agents' live sockets (Socket.IO).
#[derive(Debug, Clone)]
pub struct RealtimeSettings {
    /// How often the server pings a socket.
    pub ping_interval: Duration,
    /// How long a socket may leave a ping unanswered before it is dropped.
    pub ping_timeout: Duration,
    /// How long before its token expires a socket is sent `session:expiring`.
    pub expiry_warning: Duration,
    /// How often token expiry is checked.
    pub sweep_interval: Duration,
    /// Packets queued per socket before the server gives up on a slow client (it reconnects
    /// with its last position and misses nothing).
    pub max_buffered_packets: usize,
    /// How long one `GET /api/events/stream` response lasts before the server ends it; clients
    /// reconnect with `Last-Event-ID` (EventSource does so by itself) and miss nothing. Keeps
    /// long-lived streams spread over instances.
    pub event_stream_max: Duration,
}

impl Default for RealtimeSettings {
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(5),
            ping_timeout: Duration::from_secs(10),
            expiry_warning: Duration::from_secs(60),
            sweep_interval: Duration::from_secs(1),
            max_buffered_packets: 1024,
            event_stream_max: Duration::from_secs(300),
        }
    }
}

/// Sending agents' messages through the Graph API.
#[derive(Debug, Clone)]
pub struct OutboundSettings {
    /// Where and how to reach Meta (or the simulator).
    pub graph: crate::whatsapp::graph::GraphSettings,
    /// Run the sender (on when an access token is configured).
    pub send: bool,
    /// The least time between two messages to one customer from one number (Meta's pair
    /// limit, about one message per 6 s): bursts wait their turn instead of drawing 131056.
    pub pair_interval: Duration,
    /// Messages per second per business number (Meta's default throughput is 80).
    pub messages_per_second: u32,
    /// How long a claimed message stays invisible to other senders. A sender that dies after
    /// claiming holds the message this long; one that outlives it while waiting on Meta may
    /// see another sender claim the message too (only if Meta took longer than this).
    pub visibility: Duration,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            graph: crate::whatsapp::graph::GraphSettings::default(),
            send: false,
            pair_interval: Duration::from_secs(6),
            messages_per_second: 80,
            visibility: Duration::from_secs(60),
        }
    }
}

/// Conversation lock settings.
#[derive(Debug, Clone)]
pub struct ConversationSettings {
    /// Lock lifetime when the request names none.
    pub default_lock_ttl: Duration,
    /// The longest lock a request may ask for.
    pub max_lock_ttl: Duration,
    /// How often the expiry worker records lapsed locks and wakes snoozed conversations.
    pub expiry_interval: Duration,
    /// How often the auto-assigner looks for waiting conversations.
    pub assign_interval: Duration,
    /// How often the SLA worker records met and breached thresholds.
    pub sla_interval: Duration,
    /// How long an agent with no connected socket stays `online`/`busy` before going `offline`.
    pub availability_grace: Duration,
}

impl Default for ConversationSettings {
    fn default() -> Self {
        Self {
            default_lock_ttl: Duration::from_secs(300),
            max_lock_ttl: Duration::from_secs(3600),
            expiry_interval: Duration::from_secs(1),
            assign_interval: Duration::from_millis(300),
            sla_interval: Duration::from_secs(5),
            availability_grace: Duration::from_secs(120),
        }
    }
}

/// Agent authentication settings.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Signs access tokens. Never built in: from `SWITCHBOARD_JWT_SECRET`, or generated once
    /// into the data directory for the embedded database.
    pub jwt_secret: SecretString,
    /// Lifetime of an access token.
    pub access_token_ttl: Duration,
    /// Lifetime of a login (its refresh tokens).
    pub refresh_token_ttl: Duration,
    /// How long a just-rotated refresh token still works (two tabs refreshing at once).
    pub refresh_grace: Duration,
    /// Login attempts allowed per client address per minute.
    pub login_attempts_per_ip: u32,
    /// Failures an account takes before addresses that failed on it are slowed (growing
    /// delays; never a lockout of a clean address, see `auth::rate_limit`).
    pub login_attempts_per_account: u32,
    /// Login password checks that may wait for a hashing lane; beyond them a login is answered
    /// 503 with `Retry-After` at once.
    pub login_queue: usize,
    /// Email of the admin created on the first start of an empty install.
    pub first_admin_email: String,
    /// How long a logout, revocation or rights change made on another instance may go on
    /// being honoured here at most (the bound of `auth::cache`); zero: no cache, every request
    /// reads its session and agent.
    pub cache_staleness: Duration,
}

impl AuthSettings {
    /// Defaults around a given secret.
    pub fn with_secret(jwt_secret: SecretString) -> Self {
        Self {
            jwt_secret,
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 60 * 60),
            refresh_grace: Duration::from_secs(5),
            login_attempts_per_ip: 30,
            login_attempts_per_account: 10,
            login_queue: 32,
            first_admin_email: "admin@switchboard.local".to_owned(),
            cache_staleness: Duration::from_secs(1),
        }
    }
}

/// Why the configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `DATABASE_URL` does not parse.
    #[error("invalid DATABASE_URL")]
    Database(#[from] StoreError),
    /// Several instances share PostgreSQL, so they need one configured secret.
    #[error("SWITCHBOARD_JWT_SECRET must be set when DATABASE_URL is (instances must share it)")]
    JwtSecretRequired,
    /// A guessable secret.
    #[error("SWITCHBOARD_JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")]
    JwtSecretTooShort,
    /// Several instances share PostgreSQL, so they need one configured master key.
    #[error("SWITCHBOARD_MASTER_KEY must be set when DATABASE_URL is (instances must share it)")]
    MasterKeyRequired,
    /// A master key is too short.
    #[error("invalid master key")]
    MasterKey(#[source] StoreError),
    /// A per-number retention is not `phone_number_id=days`.
    #[error(
        "SWITCHBOARD_CONTENT_RETENTION_BY_NUMBER: `{0}` is not phone_number_id=days (days > 0)"
    )]
    ContentRetention(String),
    /// A generated secret file holds too little.
    #[error("the secret file {0} is shorter than {MIN_SECRET_BYTES} bytes")]
    SecretFileTooShort(String),
    /// The generated secret could not be read or written.
    #[error("cannot read or create the secret file {path}")]
    SecretFile {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// An outgoing-webhook setting does not parse.
    #[error(transparent)]
    Outgoing(#[from] crate::outgoing::BadSetting),
    /// A trusted proxy does not parse.
    #[error(transparent)]
    Edge(#[from] crate::edge::BadProxy),
}

/// The shortest JWT secret accepted (HS256 wants at least 256 bits).
pub const MIN_SECRET_BYTES: usize = 32;

/// What Meta's webhooks need.
#[derive(Debug, Clone, Default)]
pub struct WhatsAppSettings {
    /// App secrets that may sign webhooks (one per subscribed Meta app).
    pub app_secrets: Vec<SecretString>,
    /// The token Meta echoes in the verification handshake.
    pub verify_token: Option<SecretString>,
    /// Largest webhook body accepted (Meta's are at most 3 MB).
    pub max_body_bytes: usize,
    /// Webhook fields beyond those this version knows, to record as account notifications
    /// (a switch for new Meta fields without a release; dead-lettered ones can then be retried).
    pub extra_fields: Vec<String>,
    /// The WhatsApp Business Accounts whose template catalogues are synced and managed (the
    /// first is where new templates go unless a request names another).
    pub business_accounts: Vec<String>,
}

/// Background work switches and pacing.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Turn stored webhooks into events. Off only in tests that simulate a crash.
    pub process_webhooks: bool,
    /// Keep read models up to date.
    pub run_projections: bool,
    /// Record lapsed locks, wake snoozed conversations, and record SLA outcomes.
    pub expire_locks: bool,
    /// Assign waiting conversations by the pools' policies, and take agents without sockets
    /// offline.
    pub auto_assign: bool,
    /// How long a claimed webhook stays invisible to other workers.
    pub webhook_claim: Duration,
    /// How many stored webhooks one worker claims at a time.
    pub webhook_batch: u32,
    /// How failed webhook processing is retried before it is dead-lettered.
    pub webhook_retry: RetryPolicy,
    /// How long processed webhooks' raw bodies are kept (`None`: for ever).
    pub raw_webhook_retention: Option<Duration>,
    /// How long what customers and agents said is kept, by number.
    pub content_retention: crate::privacy::retention::ContentRetention,
    /// How often the content retention looks for contents past their period.
    pub content_retention_interval: Duration,
}

/// Exponential backoff with jitter.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub max_attempts: u32,
    /// Delay before the second attempt.
    pub first_delay: Duration,
    /// Each further delay is the previous one times this.
    pub factor: f64,
    /// Random spread of each delay, as a fraction (0.2: ±20 %), so retries do not synchronize.
    pub jitter: f64,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 3,
            first_delay: Duration::from_secs(1),
            factor: 2.0,
            jitter: 0.2,
        }
    }
}

impl RetryPolicy {
    /// The delay after failed attempt number `attempt` (1 = the first), with jitter drawn
    /// from `random` (a number in 0..1).
    pub fn delay_after(&self, attempt: u32, random: f64) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let base = self.first_delay.as_secs_f64() * self.factor.powi(exponent);
        let spread = 1.0 + self.jitter * (2.0 * random.clamp(0.0, 1.0) - 1.0);
        Duration::from_secs_f64((base * spread).clamp(0.0, 86_400.0))
    }
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            process_webhooks: true,
            run_projections: true,
            expire_locks: true,
            auto_assign: true,
            webhook_claim: Duration::from_secs(60),
            webhook_batch: 256,
            webhook_retry: RetryPolicy::default(),
            raw_webhook_retention: Some(Duration::from_secs(7 * 86_400)),
            content_retention: crate::privacy::retention::ContentRetention::default(),
            content_retention_interval: Duration::from_secs(30),
        }
    }
}
