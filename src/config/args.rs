//! Flags and environment variables, read once at start and turned into [`Settings`]; the
//! secrets generated into the data directory when none is configured.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretString;
use switchboard_store::vault::MasterKeys;
use switchboard_store::{DatabaseConfig, StoreError};

use super::{
    AuthSettings, ConfigError, ConversationSettings, OutboundSettings, RealtimeSettings,
    RetryPolicy, Settings, WhatsAppSettings, WorkerSettings, MIN_SECRET_BYTES,
};
use crate::telemetry::LogFormat;

/// Reads `dir/file` (`jwt-secret`, `master-key`), creating it (random, owner-only) on first
/// use.
///
/// # Errors
/// When the file cannot be read or created.
pub fn load_or_create_secret(
    dir: &std::path::Path,
    file: &str,
) -> Result<SecretString, ConfigError> {
    use rand::RngCore;
    use std::io::Write;
    let path = dir.join(file);
    let error = |source| ConfigError::SecretFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(&path) {
        Ok(text) if text.trim().len() >= MIN_SECRET_BYTES => {
            return Ok(SecretString::from(text.trim().to_owned()))
        }
        Ok(_) => return Err(ConfigError::SecretFileTooShort(path.display().to_string())),
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(error(e)),
        Err(_) => {}
    }
    std::fs::create_dir_all(dir).map_err(error)?;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&path).map_err(error)?;
    file.write_all(secret.as_bytes()).map_err(error)?;
    Ok(SecretString::from(secret))
}

/// Where the data lives: shared by every command that touches the store.
#[derive(Debug, Clone, clap::Args)]
pub struct DatabaseArgs {
    /// PostgreSQL URL; without it, an embedded SQLite file in the data directory is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded database (and other local state).
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Wraps customers' data keys (at least 32 bytes). Without it SQLite generates one into
    /// `<data dir>/master-key`; PostgreSQL requires it. Prefer the environment variable.
    #[arg(long, env = "SWITCHBOARD_MASTER_KEY", hide_env_values = true)]
    pub master_key: Option<String>,
    /// Master keys rotated out, comma-separated: still accepted until every data key they
    /// wrapped was wrapped again by the current one (done at start).
    #[arg(
        long,
        env = "SWITCHBOARD_PREVIOUS_MASTER_KEYS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub previous_master_keys: Vec<String>,
}

impl DatabaseArgs {
    /// The database these flags select.
    ///
    /// # Errors
    /// When `DATABASE_URL` does not parse.
    pub fn config(&self) -> Result<DatabaseConfig, StoreError> {
        match &self.database_url {
            Some(url) if !url.is_empty() => DatabaseConfig::postgres_url(url),
            _ => Ok(DatabaseConfig::sqlite_in(&self.data_dir)),
        }
    }

    /// The master keys these flags give (generated once for SQLite when none is given).
    ///
    /// # Errors
    /// When none is given for PostgreSQL, one is too short, or the generated one cannot be had.
    pub fn master_keys(&self) -> Result<Arc<MasterKeys>, ConfigError> {
        use secrecy::ExposeSecret;
        let given = self
            .master_key
            .as_deref()
            .map(str::trim)
            .filter(|k| !k.is_empty());
        let current = match given {
            Some(key) => key.to_owned(),
            None if self.uses_postgres() => return Err(ConfigError::MasterKeyRequired),
            None => load_or_create_secret(&self.data_dir, "master-key")?
                .expose_secret()
                .to_owned(),
        };
        let keys = MasterKeys::new(&current, &self.previous_master_keys)
            .map_err(ConfigError::MasterKey)?;
        Ok(Arc::new(keys))
    }

    fn uses_postgres(&self) -> bool {
        self.database_url.as_deref().is_some_and(|u| !u.is_empty())
    }
}

/// `switchboard serve` flags; each falls back to the environment variable named.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// The database.
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// Outgoing webhooks and the bot.
    #[command(flatten)]
    pub outgoing: crate::outgoing::OutgoingArgs,
    /// The event log on NATS JetStream.
    #[command(flatten)]
    pub stream: crate::stream::StreamArgs,
    /// Rate limits, CORS, timeouts, shutdown.
    #[command(flatten)]
    pub edge: crate::edge::EdgeArgs,
    /// Meta app secret(s) that sign webhooks, comma-separated. Prefer the environment variable.
    #[arg(
        long,
        env = "WHATSAPP_APP_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub app_secret: Vec<String>,
    /// Extra webhook fields to accept as account notifications, comma-separated.
    #[arg(long, env = "SWITCHBOARD_EXTRA_WEBHOOK_FIELDS", value_delimiter = ',')]
    pub extra_webhook_fields: Vec<String>,
    /// WhatsApp Business Account ids whose templates are synced and managed, comma-separated.
    #[arg(long, env = "WHATSAPP_BUSINESS_ACCOUNT_ID", value_delimiter = ',')]
    pub business_account_id: Vec<String>,
    /// Attempts to process a stored webhook before it is dead-lettered.
    #[arg(long, env = "SWITCHBOARD_WEBHOOK_MAX_ATTEMPTS", default_value_t = 3)]
    pub webhook_max_attempts: u32,
    /// Delay before the second attempt, in milliseconds (doubling after each).
    #[arg(
        long,
        env = "SWITCHBOARD_WEBHOOK_RETRY_DELAY_MS",
        default_value_t = 1000
    )]
    pub webhook_retry_delay_ms: u64,
    /// Hours a processed webhook's raw body is kept (for `switchboard-replay reprocess`)
    /// before it is deleted: it holds the customer's personal data, which the event log keeps
    /// anyway (0: for ever).
    #[arg(
        long,
        env = "SWITCHBOARD_RAW_WEBHOOK_RETENTION_HOURS",
        default_value_t = 168
    )]
    pub raw_webhook_retention_hours: u64,
    /// Days message and note contents are kept (0: for ever); then they read `[erased]`.
    #[arg(long, env = "SWITCHBOARD_CONTENT_RETENTION_DAYS", default_value_t = 0)]
    pub content_retention_days: u64,
    /// Per business number: `phone_number_id=days`, comma-separated (overrides the default).
    #[arg(
        long,
        env = "SWITCHBOARD_CONTENT_RETENTION_BY_NUMBER",
        value_delimiter = ','
    )]
    pub content_retention_by_number: Vec<String>,
    /// Seconds between the content retention's passes (it also runs at start).
    #[arg(
        long,
        env = "SWITCHBOARD_CONTENT_RETENTION_INTERVAL_SECONDS",
        default_value_t = 30
    )]
    pub content_retention_interval_seconds: u64,
    /// Token for Meta's webhook verification handshake. Prefer the environment variable.
    #[arg(long, env = "WHATSAPP_VERIFY_TOKEN", hide_env_values = true)]
    pub verify_token: Option<String>,
    /// Log format.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Secret that signs access tokens (at least 32 bytes). Prefer the environment variable.
    #[arg(long, env = "SWITCHBOARD_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// Access token lifetime in seconds.
    #[arg(long, env = "SWITCHBOARD_ACCESS_TOKEN_TTL", default_value_t = 900)]
    pub access_token_ttl: u64,
    /// Login (refresh token) lifetime in seconds.
    #[arg(long, env = "SWITCHBOARD_REFRESH_TOKEN_TTL", default_value_t = 30 * 24 * 3600)]
    pub refresh_token_ttl: u64,
    /// Longest time, in milliseconds, a logout, revocation or rights change made on another
    /// instance may go on being honoured by this one (0: no cache; every request reads them).
    #[arg(long, env = "SWITCHBOARD_AUTH_CACHE_MS", default_value_t = 1000)]
    pub auth_cache_ms: u64,
    /// Email of the admin created on the first start of an empty install.
    #[arg(
        long,
        env = "SWITCHBOARD_ADMIN_EMAIL",
        default_value = "admin@switchboard.local"
    )]
    pub admin_email: String,
    /// Run a Cloud API simulator in this process and send to it: the whole loop without a
    /// Meta account.
    #[arg(long)]
    pub sandbox: bool,
    /// Access token for the Graph API (a system-user token). Prefer the environment variable.
    #[arg(long, env = "WHATSAPP_ACCESS_TOKEN", hide_env_values = true)]
    pub access_token: Option<String>,
    /// Graph API base URL (the simulator's, for tests and demos).
    #[arg(
        long,
        env = "WHATSAPP_GRAPH_URL",
        default_value = "https://graph.facebook.com"
    )]
    pub graph_url: String,
    /// Least milliseconds between two messages to one customer (Meta's pair limit).
    #[arg(long, env = "SWITCHBOARD_PAIR_INTERVAL_MS", default_value_t = 6000)]
    pub pair_interval_ms: u64,
    /// Messages per second per business number (Meta's throughput; 80 by default).
    #[arg(long, env = "SWITCHBOARD_MESSAGES_PER_SECOND", default_value_t = 80)]
    pub messages_per_second: u32,
    /// How long a claimed send stays invisible to other senders, in milliseconds.
    #[arg(long, env = "SWITCHBOARD_SEND_VISIBILITY_MS", default_value_t = 60_000)]
    pub send_visibility_ms: u64,
    /// Graph API version.
    #[arg(long, env = "WHATSAPP_API_VERSION", default_value = "v24.0")]
    pub api_version: String,
    /// Conversation lock lifetime when a request names none, in seconds.
    #[arg(long, env = "SWITCHBOARD_LOCK_TTL", default_value_t = 300)]
    pub lock_ttl: u64,
    /// The longest conversation lock a request may ask for, in seconds.
    #[arg(long, env = "SWITCHBOARD_MAX_LOCK_TTL", default_value_t = 3600)]
    pub max_lock_ttl: u64,
    /// Socket.IO ping interval in milliseconds.
    #[arg(
        long,
        env = "SWITCHBOARD_SOCKET_PING_INTERVAL_MS",
        default_value_t = 5000
    )]
    pub socket_ping_interval_ms: u64,
    /// Socket.IO ping timeout in milliseconds.
    #[arg(
        long,
        env = "SWITCHBOARD_SOCKET_PING_TIMEOUT_MS",
        default_value_t = 10000
    )]
    pub socket_ping_timeout_ms: u64,
    /// Seconds an agent with no connected socket stays online or busy before going offline.
    #[arg(
        long,
        env = "SWITCHBOARD_AVAILABILITY_GRACE_SECONDS",
        default_value_t = 120
    )]
    pub availability_grace_seconds: u64,
    /// Milliseconds between auto-assignment passes.
    #[arg(long, env = "SWITCHBOARD_ASSIGN_INTERVAL_MS", default_value_t = 300)]
    pub assign_interval_ms: u64,
    /// Milliseconds between SLA passes (met and breached thresholds are recorded then).
    #[arg(long, env = "SWITCHBOARD_SLA_INTERVAL_MS", default_value_t = 5000)]
    pub sla_interval_ms: u64,
    /// Seconds one event-stream response lasts before the client reconnects (Last-Event-ID).
    #[arg(
        long,
        env = "SWITCHBOARD_EVENT_STREAM_MAX_SECONDS",
        default_value_t = 300
    )]
    pub event_stream_max_seconds: u64,
    /// Directory customers' files are kept in (default: `media` in the data directory).
    #[arg(long, env = "SWITCHBOARD_MEDIA_DIR")]
    pub media_dir: Option<PathBuf>,
    /// Keep media in an S3-compatible bucket (`s3://bucket/prefix`) instead of the directory;
    /// credentials and region from the usual `AWS_…` variables.
    #[arg(long, env = "SWITCHBOARD_MEDIA_STORE")]
    pub media_store: Option<String>,
    /// The S3-compatible service's address when it is not AWS (`http://…` allowed).
    #[arg(long, env = "SWITCHBOARD_MEDIA_S3_ENDPOINT")]
    pub media_s3_endpoint: Option<String>,
    /// Days files are kept before they are deleted (0: for ever).
    #[arg(long, env = "SWITCHBOARD_MEDIA_RETENTION_DAYS", default_value_t = 0)]
    pub media_retention_days: u64,
    /// The largest file fetched from Meta, bytes (larger ones are recorded as unavailable).
    #[arg(long, env = "SWITCHBOARD_MEDIA_MAX_BYTES", default_value_t = 100 * 1024 * 1024)]
    pub media_max_bytes: u64,
}

/// Meta sends at most 3 MB; 4 MiB leaves headroom.
pub const DEFAULT_MAX_WEBHOOK_BYTES: usize = 4 * 1024 * 1024;

impl ServeArgs {
    /// The settings these flags describe.
    ///
    /// # Errors
    /// When `DATABASE_URL` does not parse or no JWT secret can be had.
    pub fn settings(&self) -> Result<Settings, ConfigError> {
        let database = self.database.config()?;
        Ok(Settings {
            listen: self.listen.clone(),
            database,
            master_keys: self.database.master_keys()?,
            whatsapp: WhatsAppSettings {
                app_secrets: self
                    .app_secret
                    .iter()
                    .map(|s| s.trim())
                    .filter(|s| !s.is_empty())
                    .map(|s| SecretString::from(s.to_owned()))
                    .collect(),
                verify_token: self
                    .verify_token
                    .as_deref()
                    .filter(|t| !t.is_empty())
                    .map(|t| SecretString::from(t.to_owned())),
                max_body_bytes: DEFAULT_MAX_WEBHOOK_BYTES,
                extra_fields: self
                    .extra_webhook_fields
                    .iter()
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty())
                    .collect(),
                business_accounts: self
                    .business_account_id
                    .iter()
                    .map(|f| f.trim().to_owned())
                    .filter(|f| !f.is_empty())
                    .collect(),
            },
            workers: WorkerSettings {
                webhook_retry: RetryPolicy {
                    max_attempts: self.webhook_max_attempts.max(1),
                    first_delay: Duration::from_millis(self.webhook_retry_delay_ms),
                    ..RetryPolicy::default()
                },
                raw_webhook_retention: (self.raw_webhook_retention_hours > 0).then(|| {
                    Duration::from_secs(self.raw_webhook_retention_hours.saturating_mul(3_600))
                }),
                content_retention: self.content_retention()?,
                content_retention_interval: Duration::from_secs(
                    self.content_retention_interval_seconds.max(1),
                ),
                ..WorkerSettings::default()
            },
            auth: AuthSettings {
                access_token_ttl: Duration::from_secs(self.access_token_ttl.max(1)),
                refresh_token_ttl: Duration::from_secs(self.refresh_token_ttl.max(60)),
                first_admin_email: self.admin_email.clone(),
                cache_staleness: Duration::from_millis(self.auth_cache_ms),
                ..AuthSettings::with_secret(self.jwt_secret()?)
            },
            outbound: OutboundSettings {
                send: self.access_token.as_deref().is_some_and(|t| !t.is_empty()),
                graph: crate::whatsapp::graph::GraphSettings {
                    base_url: self.graph_url.clone(),
                    api_version: self.api_version.clone(),
                    access_token: self
                        .access_token
                        .as_deref()
                        .filter(|t| !t.is_empty())
                        .map(|t| SecretString::from(t.to_owned())),
                    ..Default::default()
                },
                pair_interval: Duration::from_millis(self.pair_interval_ms),
                messages_per_second: self.messages_per_second,
                visibility: Duration::from_millis(self.send_visibility_ms.max(1)),
            },
            conversations: ConversationSettings {
                default_lock_ttl: Duration::from_secs(
                    self.lock_ttl.clamp(1, self.max_lock_ttl.max(1)),
                ),
                max_lock_ttl: Duration::from_secs(self.max_lock_ttl.max(1)),
                assign_interval: Duration::from_millis(self.assign_interval_ms.max(10)),
                sla_interval: Duration::from_millis(self.sla_interval_ms.max(10)),
                availability_grace: Duration::from_secs(self.availability_grace_seconds.max(1)),
                ..ConversationSettings::default()
            },
            realtime: RealtimeSettings {
                ping_interval: Duration::from_millis(self.socket_ping_interval_ms.max(100)),
                ping_timeout: Duration::from_millis(self.socket_ping_timeout_ms.max(100)),
                event_stream_max: Duration::from_secs(self.event_stream_max_seconds.max(1)),
                ..RealtimeSettings::default()
            },
            media: crate::media::MediaSettings {
                max_bytes: self.media_max_bytes.max(1),
                retention: (self.media_retention_days > 0)
                    .then(|| Duration::from_secs(self.media_retention_days.saturating_mul(86_400))),
                s3: self
                    .media_store
                    .clone()
                    .filter(|s| !s.is_empty())
                    .map(|url| crate::media::S3Settings {
                        url,
                        allow_http: self
                            .media_s3_endpoint
                            .as_deref()
                            .is_some_and(|e| e.starts_with("http://")),
                        endpoint: self.media_s3_endpoint.clone(),
                        ..crate::media::S3Settings::default()
                    }),
                ..crate::media::MediaSettings::in_dir(
                    self.media_dir
                        .clone()
                        .unwrap_or_else(|| self.database.data_dir.join("media")),
                )
            },
            outgoing: self.outgoing.settings()?,
            stream: self.stream.settings(),
            edge: self.edge.settings()?,
        })
    }

    fn content_retention(
        &self,
    ) -> Result<crate::privacy::retention::ContentRetention, ConfigError> {
        let days = |d: u64| Duration::from_secs(d.saturating_mul(86_400));
        let mut by_number = std::collections::HashMap::new();
        for entry in self.content_retention_by_number.iter().map(|e| e.trim()) {
            if entry.is_empty() {
                continue;
            }
            let parsed = entry
                .split_once('=')
                .and_then(|(number, d)| Some((number.trim(), d.trim().parse::<u64>().ok()?)))
                .filter(|(number, d)| !number.is_empty() && *d > 0);
            let Some((number, d)) = parsed else {
                return Err(ConfigError::ContentRetention(entry.to_owned()));
            };
            by_number.insert(number.to_owned(), days(d));
        }
        Ok(crate::privacy::retention::ContentRetention {
            default: (self.content_retention_days > 0).then(|| days(self.content_retention_days)),
            by_number,
        })
    }

    fn jwt_secret(&self) -> Result<SecretString, ConfigError> {
        match self
            .jwt_secret
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(secret) if secret.len() < MIN_SECRET_BYTES => Err(ConfigError::JwtSecretTooShort),
            Some(secret) => Ok(SecretString::from(secret.to_owned())),
            None if self.database.uses_postgres() => Err(ConfigError::JwtSecretRequired),
            None => load_or_create_secret(&self.database.data_dir, "jwt-secret"),
        }
    }
}
