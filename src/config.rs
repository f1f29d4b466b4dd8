//! Settings: data, read once at startup (from flags and environment variables) and never again.
//! Tests build them directly.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use switchboard_store::{DatabaseConfig, StoreError};

use crate::telemetry::LogFormat;

/// Everything the server needs to know.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Address to listen on (`host:port`; port 0 picks a free one).
    pub listen: String,
    /// Where the data lives.
    pub database: DatabaseConfig,
    /// Meta-facing settings.
    pub whatsapp: WhatsAppSettings,
    /// Background workers.
    pub workers: WorkerSettings,
}

/// What Meta's webhooks need.
#[derive(Debug, Clone, Default)]
pub struct WhatsAppSettings {
    /// App secrets that may sign webhooks (one per subscribed Meta app).
    pub app_secrets: Vec<SecretString>,
    /// The token Meta echoes in the verification handshake.
    pub verify_token: Option<SecretString>,
    /// Largest webhook body accepted (Meta's are at most 3 MB).
    pub max_body_bytes: usize,
}

/// Background work switches and pacing.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Turn stored webhooks into events. Off only in tests that simulate a crash.
    pub process_webhooks: bool,
    /// Keep read models up to date.
    pub run_projections: bool,
    /// How long a claimed webhook stays invisible to other workers.
    pub webhook_claim: Duration,
    /// How many stored webhooks one worker claims at a time.
    pub webhook_batch: u32,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            process_webhooks: true,
            run_projections: true,
            webhook_claim: Duration::from_secs(60),
            webhook_batch: 64,
        }
    }
}

/// `switchboard serve` flags; each falls back to the environment variable named.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "SWITCHBOARD_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// PostgreSQL URL; without it, an embedded SQLite file in the data directory is used.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Directory of the embedded database (and other local state).
    #[arg(long, env = "SWITCHBOARD_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Meta app secret(s) that sign webhooks, comma-separated. Prefer the environment variable.
    #[arg(
        long,
        env = "WHATSAPP_APP_SECRET",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub app_secret: Vec<String>,
    /// Token for Meta's webhook verification handshake. Prefer the environment variable.
    #[arg(long, env = "WHATSAPP_VERIFY_TOKEN", hide_env_values = true)]
    pub verify_token: Option<String>,
    /// Log format.
    #[arg(long, env = "SWITCHBOARD_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Meta sends at most 3 MB; 4 MiB leaves headroom.
pub const DEFAULT_MAX_WEBHOOK_BYTES: usize = 4 * 1024 * 1024;

impl ServeArgs {
    /// The settings these flags describe.
    ///
    /// # Errors
    /// When `DATABASE_URL` does not parse.
    pub fn settings(&self) -> Result<Settings, StoreError> {
        let database = match &self.database_url {
            Some(url) if !url.is_empty() => DatabaseConfig::postgres_url(url)?,
            _ => DatabaseConfig::sqlite_in(&self.data_dir),
        };
        Ok(Settings {
            listen: self.listen.clone(),
            database,
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
            },
            workers: WorkerSettings::default(),
        })
    }
}
