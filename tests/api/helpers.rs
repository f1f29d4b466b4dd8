//! Spawning the application and talking to it.

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use secrecy::ExposeSecret;
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use switchboard::clock::ManualClock;
use switchboard::config::{
    AuthSettings, Settings, WhatsAppSettings, WorkerSettings, DEFAULT_MAX_WEBHOOK_BYTES,
};
use switchboard::startup::Application;
use switchboard::whatsapp::signature::sign;
use switchboard_domain::Timestamp;
use switchboard_store::{with_pool, Database, DatabaseConfig, EventRepository};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The app secret test webhooks are signed with.
pub const APP_SECRET: &str = "test-app-secret";
/// A second app subscribed to the same account.
pub const SECOND_APP_SECRET: &str = "second-app-secret";
/// The verify token of the handshake.
pub const VERIFY_TOKEN: &str = "test-verify-token";

/// The secret test access tokens are signed with.
pub const JWT_SECRET: &str = "test-jwt-secret-0123456789-0123456789-abcdef";

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Generates `sqlite::<name>` and `postgres::<name>` tests from `async fn <name>(Backend)`.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::helpers::Backend::Sqlite).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if $crate::helpers::postgres_url().is_some() {
                        super::$name($crate::helpers::Backend::Postgres).await;
                    }
                }
            )*
        }
    };
}

/// `DATABASE_URL`, or `None` (after saying the PostgreSQL test is skipped).
pub fn postgres_url() -> Option<String> {
    match std::env::var("DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        Some(url) => Some(url),
        None => {
            assert!(
                std::env::var_os("SWITCHBOARD_REQUIRE_POSTGRES").is_none(),
                "SWITCHBOARD_REQUIRE_POSTGRES is set but DATABASE_URL is not"
            );
            eprintln!("skipped: DATABASE_URL is not set, PostgreSQL test not run");
            None
        }
    }
}

/// A fresh, empty database of the given backend: a new SQLite file, or a new PostgreSQL schema.
pub struct FreshDatabase {
    pub config: DatabaseConfig,
    /// The PostgreSQL schema (also the application name of the app's connections).
    pub schema: Option<String>,
    /// The same database as `switchboard` command-line flags.
    pub cli_args: Vec<String>,
    _dir: Option<tempfile::TempDir>,
}

impl FreshDatabase {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("temp dir");
                Self {
                    config: DatabaseConfig::sqlite_in(dir.path()),
                    schema: None,
                    cli_args: vec![
                        "--data-dir".to_owned(),
                        dir.path().display().to_string(),
                        "--master-key".to_owned(),
                        TEST_MASTER_KEY.to_owned(),
                    ],
                    _dir: Some(dir),
                }
            }
            Backend::Postgres => {
                let url = postgres_url().expect("DATABASE_URL");
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&url)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query(&format!("create schema {schema}"))
                    .execute(&admin)
                    .await
                    .expect("create schema");
                admin.close().await;
                let options = PgConnectOptions::from_str(&url)
                    .expect("DATABASE_URL parses")
                    .options([("search_path", schema.as_str())])
                    .application_name(&schema);
                let separator = if url.contains('?') { '&' } else { '?' };
                Self {
                    schema: Some(schema.clone()),
                    config: DatabaseConfig::Postgres {
                        options: Box::new(options),
                        max_connections: 8,
                    },
                    cli_args: vec![
                        "--database-url".to_owned(),
                        format!("{url}{separator}options=-c%20search_path%3D{schema}"),
                        "--master-key".to_owned(),
                        TEST_MASTER_KEY.to_owned(),
                    ],
                    _dir: None,
                }
            }
        }
    }
}

/// Posts `body` to a webhook endpoint `url` (any server's), signed with the test app secret.
pub async fn post_signed(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> reqwest::Result<reqwest::Response> {
    client
        .post(url)
        .header("content-type", "application/json")
        .header("x-hub-signature-256", sign(APP_SECRET, &body))
        .body(body)
        .send()
        .await
}

/// A running application and a client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub clock: ManualClock,
    pub database: Database,
    pub settings: Settings,
    /// The first admin's email and password.
    pub admin: (String, String),
    /// An access token of the first admin.
    pub admin_token: String,
    fresh: Option<FreshDatabase>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// The instant test clocks start at (2026-05-28T20:26:40Z, the fixtures' first timestamp).
pub fn fixture_epoch() -> Timestamp {
    Timestamp::from_unix_seconds(1_780_000_000).expect("valid")
}

/// The master key every test app and tool run uses (`--master-key` in [`FreshDatabase`]'s
/// flags).
pub const TEST_MASTER_KEY: &str = "test-master-key-0123456789-0123456789-abcdef";

/// [`TEST_MASTER_KEY`] as the store takes it.
pub fn test_master_keys() -> std::sync::Arc<switchboard_store::vault::MasterKeys> {
    std::sync::Arc::new(
        switchboard_store::vault::MasterKeys::new(TEST_MASTER_KEY, &[]).expect("master key"),
    )
}

pub fn default_settings(database: DatabaseConfig) -> Settings {
    Settings {
        listen: "127.0.0.1:0".to_owned(),
        database,
        master_keys: test_master_keys(),
        whatsapp: WhatsAppSettings {
            app_secrets: vec![APP_SECRET.into(), SECOND_APP_SECRET.into()],
            verify_token: Some(VERIFY_TOKEN.into()),
            max_body_bytes: DEFAULT_MAX_WEBHOOK_BYTES,
            extra_fields: vec![],
            business_accounts: vec![],
        },
        workers: WorkerSettings::default(),
        auth: AuthSettings {
            // Long-lived, so that tests moving the clock keep their tokens; the session tests
            // set the real default back.
            access_token_ttl: std::time::Duration::from_secs(10 * 86_400),
            login_attempts_per_ip: 10_000,
            login_attempts_per_account: 10_000,
            ..AuthSettings::with_secret(JWT_SECRET.into())
        },
        outbound: switchboard::config::OutboundSettings::default(),
        realtime: switchboard::config::RealtimeSettings {
            sweep_interval: std::time::Duration::from_millis(50),
            ..Default::default()
        },
        conversations: switchboard::config::ConversationSettings {
            expiry_interval: std::time::Duration::from_millis(50),
            sla_interval: std::time::Duration::from_millis(50),
            ..Default::default()
        },
        stream: switchboard::stream::StreamSettings::default(),
        // Tests drive the API far faster than people do; tests/api/edge.rs sets the limits
        // it checks.
        edge: switchboard::edge::EdgeSettings {
            api_per_credential: switchboard::edge::Rate::per_second(100_000, 1_000_000),
            api_per_address: switchboard::edge::Rate::per_second(100_000, 1_000_000),
            ..switchboard::edge::EdgeSettings::default()
        },
        outgoing: switchboard::outgoing::OutgoingSettings {
            allow_private: true,
            // Deliveries also wake on every append; the poll is for retries coming due and the
            // bot-reply watch, and polling faster only adds reads to SQLite's one file.
            poll_interval: std::time::Duration::from_millis(200),
            retry_schedule: vec![std::time::Duration::from_millis(200); 3],
            ..Default::default()
        },
        media: switchboard::media::MediaSettings {
            fetch_interval: std::time::Duration::from_millis(20),
            retry_delay: std::time::Duration::from_millis(20),
            ..switchboard::media::MediaSettings::in_dir(
                tempfile::tempdir().expect("media dir").keep(),
            )
        },
    }
}

impl TestApp {
    /// Starts the app on a fresh database of `backend`.
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the app on a fresh database, after `adjust` edits the settings.
    pub async fn spawn_with(backend: Backend, adjust: impl FnOnce(&mut Settings)) -> Self {
        let fresh = FreshDatabase::new(backend).await;
        let mut settings = default_settings(fresh.config.clone());
        adjust(&mut settings);
        let clock = ManualClock::new(fixture_epoch());
        Self::start(settings, clock, Some(fresh)).await
    }

    async fn start(settings: Settings, clock: ManualClock, fresh: Option<FreshDatabase>) -> Self {
        Self::start_with_admin(settings, clock, fresh, None).await
    }

    async fn start_with_admin(
        settings: Settings,
        clock: ManualClock,
        fresh: Option<FreshDatabase>,
        admin: Option<(String, String)>,
    ) -> Self {
        static TRACING: std::sync::Once = std::sync::Once::new();
        TRACING.call_once(|| {
            if std::env::var_os("TEST_LOG").is_some() {
                switchboard::telemetry::init(
                    switchboard::telemetry::LogFormat::Text,
                    "info,sqlx=warn",
                );
            }
        });
        let mut app = Application::build(settings.clone(), Arc::new(clock.clone()))
            .await
            .expect("application builds");
        let admin = app
            .take_first_admin()
            .map(|a| (a.email, a.password.expose_secret().to_owned()))
            .or(admin)
            .expect("a fresh database creates the first admin");
        let address = format!("http://127.0.0.1:{}", app.port());
        let database = app.database().clone();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(async move {
            app.run_until_stopped(async {
                let _ = stopped.await;
            })
            .await
            .expect("server runs");
        });
        let client = reqwest::Client::new();
        let admin_token = login(&client, &address, &admin.0, &admin.1).await;
        Self {
            address,
            client,
            clock,
            database,
            settings,
            admin,
            admin_token,
            fresh,
            stop: Some(stop),
            server: Some(server),
        }
    }

    /// Stops the server and its workers (as a crash would, minus the lost process), then starts
    /// a new one on the same database, after `adjust` edits the settings.
    pub async fn restart(mut self, adjust: impl FnOnce(&mut Settings)) -> Self {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.await.expect("server stops");
        }
        let mut settings = self.settings.clone();
        adjust(&mut settings);
        let admin = Some(self.admin.clone());
        Self::start_with_admin(settings, self.clock.clone(), self.fresh.take(), admin).await
    }

    /// Starts the app on a database prepared by the caller, logging in as `admin`.
    pub async fn spawn_on(fresh: FreshDatabase, admin: (String, String)) -> Self {
        let settings = default_settings(fresh.config.clone());
        Self::start_with_admin(
            settings,
            ManualClock::new(fixture_epoch()),
            Some(fresh),
            Some(admin),
        )
        .await
    }

    /// Starts another server instance on the same database (as a second process would).
    pub async fn another_instance(&self, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = self.settings.clone();
        adjust(&mut settings);
        Self::start_with_admin(settings, self.clock.clone(), None, Some(self.admin.clone())).await
    }

    /// This app's database as `switchboard` command-line flags (for processes of its own).
    pub fn database_args(&self) -> Vec<String> {
        self.fresh
            .as_ref()
            .map(|f| f.cli_args.clone())
            .unwrap_or_default()
    }

    /// `switchboard serve` as a process of its own on this app's database, listening on
    /// `port`, with the test secrets and `env` (on the real clock: this app's tokens are not
    /// valid there).
    pub fn serve_process(&self, port: u16, env: &[(&str, &str)]) -> std::process::Child {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(self.database_args())
            .env_remove("DATABASE_URL")
            .env("SWITCHBOARD_JWT_SECRET", JWT_SECRET)
            .env("WHATSAPP_APP_SECRET", APP_SECRET)
            .env(
                "SWITCHBOARD_MEDIA_DIR",
                std::env::temp_dir().join(format!("switchboard-test-media-{port}")),
            )
            .env("RUST_LOG", "warn")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        for (name, value) in env {
            command.env(name, value);
        }
        command.spawn().expect("switchboard runs")
    }

    /// Waits until a server at `base` answers its health check.
    pub async fn wait_for_server(&self, base: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while self
            .client
            .get(format!("{base}/api/health"))
            .send()
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "the server at {base} never answered"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// Posts `body` signed with the test app secret.
    /// Meta reports the template `name` in `language` approved (a status webhook only: the
    /// catalogue knows no components, so sends are checked for approval only); waits until
    /// the catalogue shows it.
    pub async fn approve_template(&self, name: &str, language: &str) {
        let id =
            1_510_000_000_000_000u64 + u64::from(crc32(format!("{name}/{language}").as_bytes()));
        let webhook = serde_json::json!({"object": "whatsapp_business_account", "entry": [{
            "id": "110000000000001", "time": 1_780_004_000, "changes": [{
                "field": "message_template_status_update",
                "value": {"event": "APPROVED", "message_template_id": id,
                          "message_template_name": name, "message_template_language": language,
                          "reason": "NONE", "message_template_category": "UTILITY"}}]}]});
        let response = self.post_webhook(webhook.to_string().as_bytes()).await;
        assert_eq!(response.status(), 200);
        self.settle().await;
    }

    pub async fn post_webhook(&self, body: &[u8]) -> reqwest::Response {
        self.post_webhook_with_signature(body, Some(&sign(APP_SECRET, body)))
            .await
    }

    pub async fn post_webhook_with_signature(
        &self,
        body: &[u8],
        signature: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .post(self.url("/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .body(body.to_vec());
        if let Some(signature) = signature {
            request = request.header("x-hub-signature-256", signature);
        }
        request.send().await.expect("request sent")
    }

    /// GET as the first admin.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(&self.admin_token, path).await
    }

    /// GET with `token`.
    pub async fn get_as(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// GET as the first admin, expecting 200 and JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        let status = response.status();
        let body: Value = response.json().await.expect("JSON body");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// A request with `token` (`method` `path`, JSON `body`).
    pub async fn send_as(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self
            .client
            .request(method, self.url(path))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.expect("request sent")
    }

    /// POST JSON without a token.
    pub async fn post_public(&self, path: &str, body: Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .json(&body)
            .send()
            .await
            .expect("request sent")
    }

    /// Creates an agent as the first admin and returns its id.
    pub async fn create_agent(&self, body: Value) -> String {
        let response = self
            .send_as(
                &self.admin_token,
                reqwest::Method::POST,
                "/api/agents",
                Some(body),
            )
            .await;
        let status = response.status();
        let created: Value = response.json().await.expect("JSON");
        assert_eq!(status, 201, "agent created: {created}");
        created["id"].as_str().expect("id").to_owned()
    }

    /// Logs in and returns the access token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        login(&self.client, &self.address, email, password).await
    }

    /// Waits until every stored webhook is processed and every read model has caught up with
    /// every committed event (on PostgreSQL, including those the gapless reader still holds back
    /// because an older transaction, perhaps another test's, is in flight).
    pub async fn settle(&self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let pending: i64 = with_pool!(&self.database, pool => sqlx::query_scalar(
                "select count(*) from raw_webhooks where status = 'pending'").fetch_one(pool).await.expect("count"));
            if pending == 0 && self.unprojected_events().await == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the app did not settle within 20 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn unprojected_events(&self) -> i64 {
        let checkpoint: Option<(i64, i64)> = with_pool!(&self.database, pool => sqlx::query_as(
            "select min(transaction_id), min(position) from projection_checkpoints having count(*) > 0")
            .fetch_optional(pool).await.expect("checkpoint"));
        let (transaction_id, position) = checkpoint.unwrap_or((0, 0));
        match &self.database {
            Database::Postgres(pool) => sqlx::query_scalar(
                "select count(*) from events where (transaction_id, position) > ($1::text::xid8, $2)",
            )
            .bind(transaction_id.to_string())
            .bind(position)
            .fetch_one(pool)
            .await
            .expect("count"),
            Database::Sqlite(pool) => sqlx::query_scalar("select count(*) from events where position > $1")
                .bind(position)
                .fetch_one(pool)
                .await
                .expect("count"),
        }
    }

    /// Every conversation in the inbox.
    pub async fn conversations(&self) -> Vec<Value> {
        let page = self.get_json("/api/conversations?limit=200").await;
        page["items"].as_array().cloned().unwrap_or_default()
    }

    /// The conversation of the customer with `wa_id`.
    pub async fn conversation_of(&self, wa_id: &str) -> Value {
        self.conversations()
            .await
            .into_iter()
            .find(|c| c["customer"]["wa_id"] == wa_id)
            .unwrap_or_else(|| panic!("no conversation with {wa_id}"))
    }

    /// Every message of a conversation, in chat order.
    pub async fn messages(&self, conversation_id: &str) -> Vec<Value> {
        let page = self
            .get_json(&format!(
                "/api/conversations/{conversation_id}/messages?limit=500"
            ))
            .await;
        page["items"].as_array().cloned().unwrap_or_default()
    }

    /// Kills every PostgreSQL connection of this app (as a failover or a restart would).
    pub async fn kill_database_connections(&self) {
        let Some(schema) = self.fresh.as_ref().and_then(|f| f.schema.clone()) else {
            return;
        };
        let url = postgres_url().expect("DATABASE_URL");
        let admin = sqlx::PgPool::connect(&url).await.expect("connect");
        sqlx::query(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = $1",
        )
        .bind(&schema)
        .execute(&admin)
        .await
        .expect("terminate");
        admin.close().await;
    }

    /// Runs a statement on the app's database (to break or repair it in failure tests).
    pub async fn execute_sql(&self, sql: &str) {
        with_pool!(&self.database, pool => sqlx::query(sql).execute(pool).await.map(|_| ()).expect("statement runs"));
    }

    /// The app's event log (sealing and opening with the app's master keys).
    pub fn log(&self) -> EventRepository {
        EventRepository::new(self.database.clone(), self.settings.master_keys.clone())
    }

    /// Number of events in the log.
    pub async fn event_count(&self) -> i64 {
        self.log().count().await.expect("count")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// A fixture's bytes, exactly as stored.
pub fn fixture(relative: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// Logs in and returns the access token.
pub async fn login(client: &reqwest::Client, address: &str, email: &str, password: &str) -> String {
    let response = client
        .post(format!("{address}/api/auth/login"))
        .json(&serde_json::json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login sent");
    assert_eq!(response.status(), 200, "login of {email}");
    let body: Value = response.json().await.expect("JSON");
    body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned()
}

/// A small checksum for test ids (no crate needed for a test helper).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for byte in bytes {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = (crc >> 1) ^ (0xedb8_8320 & (crc & 1).wrapping_neg());
        }
    }
    !crc
}

/// `npm ci` in `dir` unless `node_modules/<package>` is there already (once per test run).
pub fn install_node_packages(dir: &std::path::Path, package: &str) {
    static INSTALLED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    let mut installed = INSTALLED
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if installed.iter().any(|d| d == dir) || dir.join("node_modules").join(package).exists() {
        return;
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(dir)
        .status()
        .expect("npm runs (install Node.js and npm for the realtime tests)");
    assert!(status.success(), "npm ci in {} failed", dir.display());
    installed.push(dir.to_owned());
}
