//! Starting the real server in-process for a benchmark.

use std::sync::Arc;

use switchboard::clock::SystemClock;
use switchboard::config::{
    AuthSettings, ConversationSettings, Settings, WhatsAppSettings, WorkerSettings,
    DEFAULT_MAX_WEBHOOK_BYTES,
};
use switchboard::startup::Application;
use switchboard_store::{Database, DatabaseConfig};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The app secret benchmark webhooks are signed with.
pub const SECRET: &str = "bench-app-secret";

/// The database a benchmark uses: a fresh schema of the `DATABASE_URL` database (dropped at
/// the end), or SQLite in a temporary directory.
pub struct BenchDatabase {
    /// Its configuration.
    pub config: DatabaseConfig,
    schema: Option<(String, String)>,
    _dir: tempfile::TempDir,
}

impl BenchDatabase {
    /// Picks (and prepares) the database.
    pub async fn pick() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let Some(url) = std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) else {
            return Ok(Self {
                config: DatabaseConfig::sqlite_in(dir.path()),
                schema: None,
                _dir: dir,
            });
        };
        let schema = format!("bench_{}", uuid_like());
        let admin = sqlx::PgPool::connect(&url).await?;
        sqlx::query(&format!("create schema {schema}"))
            .execute(&admin)
            .await?;
        admin.close().await;
        let options: sqlx::postgres::PgConnectOptions = url.parse()?;
        let options = options.options([("search_path", schema.as_str())]);
        Ok(Self {
            config: DatabaseConfig::Postgres {
                options: Box::new(options),
                max_connections: 16,
            },
            schema: Some((url, schema)),
            _dir: dir,
        })
    }

    /// Drops the benchmark's schema (PostgreSQL).
    pub async fn clean_up(self) -> anyhow::Result<()> {
        if let Some((url, schema)) = self.schema {
            let admin = sqlx::PgPool::connect(&url).await?;
            sqlx::query(&format!("drop schema {schema} cascade"))
                .execute(&admin)
                .await?;
            admin.close().await;
        }
        Ok(())
    }
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{}_{}", std::process::id(), nanos % 1_000_000_000)
}

/// A server running in this process.
pub struct RunningServer {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    /// Its database.
    pub database: Database,
    stop: oneshot::Sender<()>,
    handle: JoinHandle<std::io::Result<()>>,
}

/// The benchmarks' master key (wraps customers' data keys).
pub fn bench_master_keys() -> std::sync::Arc<switchboard_store::vault::MasterKeys> {
    std::sync::Arc::new(master_keys())
}

/// [`bench_master_keys`], but a store using them writes personal data in clear: the same
/// run's baseline for the cost of sealing.
pub fn bench_master_keys_in_clear() -> std::sync::Arc<switchboard_store::vault::MasterKeys> {
    std::sync::Arc::new(master_keys().in_clear_for_benchmarks())
}

fn master_keys() -> switchboard_store::vault::MasterKeys {
    let keys =
        switchboard_store::vault::MasterKeys::new("bench-master-key-0123456789-0123456789", &[]);
    keys.expect("a long enough key")
}

/// Benchmark settings: generous login limits, one app secret.
pub fn settings(database: DatabaseConfig) -> Settings {
    Settings {
        listen: "127.0.0.1:0".to_owned(),
        database,
        master_keys: bench_master_keys(),
        whatsapp: WhatsAppSettings {
            app_secrets: vec![SECRET.into()],
            verify_token: None,
            max_body_bytes: DEFAULT_MAX_WEBHOOK_BYTES,
            extra_fields: vec![],
            business_accounts: vec![],
        },
        workers: WorkerSettings::default(),
        auth: AuthSettings {
            login_attempts_per_ip: 1_000_000,
            login_attempts_per_account: 1_000_000,
            ..AuthSettings::with_secret("bench-jwt-secret-bench-jwt-secret-0123456789".into())
        },
        conversations: ConversationSettings::default(),
        outbound: switchboard::config::OutboundSettings::default(),
        realtime: switchboard::config::RealtimeSettings::default(),
        outgoing: switchboard::outgoing::OutgoingSettings::default(),
        stream: switchboard::stream::StreamSettings::default(),
        // Load from one address at full speed: the benchmarks measure the server, not its
        // rate limits.
        edge: switchboard::edge::EdgeSettings {
            api_per_credential: switchboard::edge::Rate::OFF,
            api_per_address: switchboard::edge::Rate::OFF,
            webhooks_per_address: switchboard::edge::Rate::OFF,
            sockets_per_agent: 0,
            ..switchboard::edge::EdgeSettings::default()
        },
        media: switchboard::media::MediaSettings::in_dir(
            std::env::temp_dir().join(format!("switchboard-bench-media-{}", std::process::id())),
        ),
    }
}

impl RunningServer {
    /// Builds and starts the server.
    pub async fn start(settings: Settings) -> anyhow::Result<Self> {
        let app = Application::build(settings, Arc::new(SystemClock)).await?;
        let base = format!("http://127.0.0.1:{}", app.port());
        let database = app.database().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(app.run_until_stopped(async {
            let _ = stopped.await;
        }));
        Ok(Self {
            base,
            database,
            stop,
            handle,
        })
    }

    /// Stops it and waits for the workers.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        self.handle.await??;
        Ok(())
    }
}
