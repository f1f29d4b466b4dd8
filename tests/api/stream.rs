//! The event log on NATS JetStream (a real `nats-server -js`): every event published once and in
//! log order, the envelope equal to `/api/events`; through publisher crashes (kill -9), a NATS
//! outage and a takeover by another server process.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, consumer};
use futures::StreamExt;
use serde_json::Value;
use switchboard::stream::StreamSettings;

use crate::helpers::{Backend, TestApp, JWT_SECRET};
use crate::integrations::texts;
use crate::on_both_backends;
use crate::receiver::free_port;

/// The machine's NATS server with JetStream (`.ci/run` starts one where none runs).
const NATS_URL: &str = "nats://127.0.0.1:4222";

/// A stream and subject prefix of this test's own, so tests share the server side by side.
fn own_stream(url: &str) -> StreamSettings {
    let id = uuid::Uuid::new_v4().simple().to_string();
    StreamSettings {
        url: Some(url.to_owned()),
        stream: format!("T_{id}"),
        subject_prefix: format!("t{id}.events"),
        lease: Duration::from_secs(2),
        ..StreamSettings::default()
    }
}

/// `customers` customers write `each` messages (two events a message, plus the first ones).
async fn customers_write(app: &TestApp, from: usize, customers: usize, each: usize) {
    for customer in from..from + customers {
        let body = texts("120000000000001", &format!("4930500{customer:04}"), 0, each);
        assert_eq!(app.post_webhook(&body).await.status(), 200);
    }
}

/// Every event of the log in log order (what `/api/events` pages give).
async fn log(app: &TestApp) -> Vec<Value> {
    let mut all = Vec::new();
    let mut after = 0;
    loop {
        let page = app
            .get_json(&format!("/api/events?after={after}&limit=1000"))
            .await;
        let items = page["items"].as_array().expect("items").clone();
        if items.is_empty() {
            return all;
        }
        after = page["next_after"].as_i64().expect("next");
        all.extend(items);
    }
}

/// Reads the whole stream in order with an ordered consumer, until it holds `count` messages
/// (and a moment more, so that a duplicate past them would show). Answers `(id, payload)`.
async fn read_stream(url: &str, stream: &str, count: usize) -> Vec<(String, Value)> {
    let client = async_nats::connect(url).await.expect("NATS");
    let context = jetstream::new(client);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let mut found = Vec::new();
        if let Ok(stream) = context.get_stream(stream).await {
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig::default())
                .await
                .expect("consumer");
            let mut messages = consumer.messages().await.expect("messages");
            while let Ok(Some(Ok(message))) =
                tokio::time::timeout(Duration::from_millis(500), messages.next()).await
            {
                let id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(async_nats::header::NATS_MESSAGE_ID))
                    .map(|v| v.as_str().to_owned())
                    .unwrap_or_else(|| panic!("Nats-Msg-Id: {:?}", message.headers));
                let payload: Value = serde_json::from_slice(&message.payload).expect("JSON");
                found.push((id, payload));
            }
        }
        if found.len() >= count {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "the stream holds {} of {count} events",
            found.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The stream is the log: every position once, in log order, each body the envelope.
fn assert_stream_is_the_log(stream: &[(String, Value)], log: &[Value]) {
    let ids: Vec<String> = stream.iter().map(|(id, _)| id.clone()).collect();
    let positions: Vec<String> = log
        .iter()
        .map(|e| e["position"].as_i64().expect("position").to_string())
        .collect();
    assert_eq!(ids.len(), positions.len(), "every event once");
    assert_eq!(ids, positions, "in log order, no gap, no duplicate");
    for ((_, payload), event) in stream.iter().zip(log) {
        assert_eq!(payload, event, "the envelope of /api/events");
    }
}

async fn wait_until_published(app: &TestApp) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        app.settle().await;
        let health = app.get_json("/api/health/detailed").await;
        if health["stream"]["lag_events"] == 0 && health["stream"]["leader"] == true {
            return;
        }
        assert!(Instant::now() < deadline, "never caught up: {health}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn ten_thousand_events_arrive_once_in_order(backend: Backend) {
    let settings = own_stream(NATS_URL);
    let stream = settings.stream.clone();
    let app = TestApp::spawn_with(backend, move |s| s.stream = settings).await;
    customers_write(&app, 0, 50, 100).await;
    app.settle().await;
    wait_until_published(&app).await;
    let log = log(&app).await;
    assert!(log.len() >= 10_000, "{} events", log.len());
    let published = read_stream(NATS_URL, &stream, log.len()).await;
    assert_stream_is_the_log(&published, &log);
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(
        metrics.contains("switchboard_stream_lag_events"),
        "lag exported"
    );
}

/// A NATS server of the test's own, which it can stop and start again (same port, same store).
struct OwnNats {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl OwnNats {
    fn start() -> Self {
        let mut nats = Self {
            child: None,
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
        };
        nats.resume();
        nats
    }

    fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    fn resume(&mut self) {
        let child = Command::new("nats-server")
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server runs (Debian package nats-server)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnNats {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn a_nats_outage_loses_nothing_and_shows_the_lag(backend: Backend) {
    let mut nats = OwnNats::start();
    let settings = StreamSettings {
        redact_content: true,
        ..own_stream(&nats.url())
    };
    let stream = settings.stream.clone();
    let app = TestApp::spawn_with(backend, move |s| s.stream = settings).await;
    customers_write(&app, 0, 5, 20).await;
    wait_until_published(&app).await;

    // NATS down for 20 s while customers go on writing.
    nats.stop();
    let down = Instant::now();
    let mut lag_seen = false;
    let mut batch = 5;
    while down.elapsed() < Duration::from_secs(20) {
        customers_write(&app, batch, 1, 10).await;
        batch += 1;
        let health = app.get_json("/api/health/detailed").await;
        if health["stream"]["lag_events"].as_i64() > Some(0)
            && health["stream"]["last_error"].is_string()
        {
            lag_seen = true;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        lag_seen,
        "the lag and the error are reported while NATS is down"
    );
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("switchboard_stream_publish_errors_total"));
    nats.resume();
    wait_until_published(&app).await;
    let log = log(&app).await;
    let published = read_stream(&nats.url(), &stream, log.len()).await;
    let ids: Vec<i64> = published
        .iter()
        .map(|(id, _)| id.parse().expect("position"))
        .collect();
    let positions: Vec<i64> = log
        .iter()
        .map(|e| e["position"].as_i64().expect("position"))
        .collect();
    assert_eq!(ids, positions, "nothing lost, nothing twice, in order");
    // Redacted: the facts without what the customers wrote.
    let message = published
        .iter()
        .find(|(_, p)| p["type"] == "MessageInboundReceived")
        .expect("a message");
    assert_eq!(
        message.1["data"]["InboundReceived"]["content"],
        "[redacted]"
    );
    assert!(message.1["data"]["InboundReceived"]["conversation_id"].is_string());
}

/// A child process, killed (as by `kill -9`) when dropped, so a failing test leaves none.
struct Process(Child);

impl Process {
    fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `switchboard serve` as a process of its own on the test's database, publishing to `stream`.
fn publisher_process(app: &TestApp, stream: &StreamSettings) -> (Process, String) {
    let port = free_port();
    let child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(app.database_args())
        .env_remove("DATABASE_URL")
        .env("SWITCHBOARD_JWT_SECRET", JWT_SECRET)
        .env("SWITCHBOARD_NATS_URL", stream.url.as_deref().expect("url"))
        .env("SWITCHBOARD_NATS_STREAM", &stream.stream)
        .env("SWITCHBOARD_NATS_SUBJECT_PREFIX", &stream.subject_prefix)
        .env("SWITCHBOARD_NATS_LEASE_SECONDS", "2")
        .env(
            "SWITCHBOARD_MEDIA_DIR",
            std::env::temp_dir().join("switchboard-stream-test-media"),
        )
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("switchboard runs");
    (Process(child), format!("http://127.0.0.1:{port}"))
}

/// Whether the process at `address` holds the lease (once it answers), from its metrics (its
/// clock is the real one, the test app's tokens are not).
async fn leads(app: &TestApp, address: &str) -> Option<bool> {
    let metrics = app
        .client
        .get(format!("{address}/metrics"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    metrics
        .lines()
        .find_map(|l| l.strip_prefix("switchboard_stream_leader "))
        .map(|value| value.trim() == "1")
}

/// Agents tag and untag conversations, `rounds` times each: events written by the API at once
/// (nothing left half-done in the database when a server process dies, as a claimed webhook
/// would be until its claim lapses).
async fn agents_tag(app: &TestApp, conversations: &[String], round: usize) {
    for conversation in conversations {
        let tag = format!("r{round}");
        let path = format!("/api/conversations/{conversation}/tags");
        let added = app
            .send_as(
                &app.admin_token,
                reqwest::Method::POST,
                &path,
                Some(serde_json::json!({ "tag": tag })),
            )
            .await;
        assert!(added.status().is_success(), "{}", added.status());
        let removed = app
            .send_as(
                &app.admin_token,
                reqwest::Method::DELETE,
                &format!("{path}/{tag}"),
                None,
            )
            .await;
        assert!(removed.status().is_success(), "{}", removed.status());
    }
}

/// Several server processes share one database: PostgreSQL (SQLite serves one instance).
async fn killed_publishers_leave_no_gap_and_no_duplicate(backend: Backend) {
    let stream = own_stream(NATS_URL);
    let app = TestApp::spawn(backend).await;
    customers_write(&app, 0, 30, 5).await;
    app.settle().await;
    let conversations: Vec<String> = app
        .conversations()
        .await
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect();
    // Kill -9 at five different moments of a busy log, a new process each time.
    for round in 0..5 {
        let (mut child, _) = publisher_process(&app, &stream);
        agents_tag(&app, &conversations, round).await;
        let pause = 300 + (uuid::Uuid::new_v4().as_u128() % 1200) as u64;
        tokio::time::sleep(Duration::from_millis(pause)).await;
        child.kill();
    }
    // Two processes: one publishes; killed, the other takes over within the lease.
    let mut processes = [
        publisher_process(&app, &stream),
        publisher_process(&app, &stream),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let leader = loop {
        match (
            leads(&app, &processes[0].1).await,
            leads(&app, &processes[1].1).await,
        ) {
            (Some(true), Some(false)) => break 0,
            (Some(false), Some(true)) => break 1,
            _ => {}
        }
        assert!(Instant::now() < deadline, "no single leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    processes[leader].0.kill();
    let other = processes[1 - leader].1.clone();
    let killed_at = Instant::now();
    agents_tag(&app, &conversations, 5).await;
    while leads(&app, &other).await != Some(true) {
        assert!(
            killed_at.elapsed() < Duration::from_secs(10),
            "the other process did not take over within the lease (2 s) and a few passes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.settle().await;
    let log = log(&app).await;
    let published = read_stream(NATS_URL, &stream.stream, log.len()).await;
    assert_stream_is_the_log(&published, &log);
}

/// Issue #26: JetStream keeps what was published, so an erasure deletes the customer's earlier
/// messages from the stream; the erasure and the other customers stay.
async fn an_erased_customer_leaves_the_stream(backend: Backend) {
    let settings = own_stream(NATS_URL);
    let stream = settings.stream.clone();
    let app = TestApp::spawn_with(backend, move |s| s.stream = settings).await;
    customers_write(&app, 0, 2, 3).await;
    wait_until_published(&app).await;
    let erased_customer = "49305000000";
    let before = read_stream(NATS_URL, &stream, 0).await;
    assert!(before
        .iter()
        .any(|(_, e)| e.to_string().contains(erased_customer)));
    let erased = app
        .send_as(
            &app.admin_token,
            reqwest::Method::DELETE,
            &format!("/api/customers/{erased_customer}"),
            Some(serde_json::json!({"reason": "GDPR-99"})),
        )
        .await;
    assert_eq!(erased.status(), 200);
    wait_until_published(&app).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let now = read_stream(NATS_URL, &stream, 0).await;
        let text: Vec<String> = now.iter().map(|(_, e)| e.to_string()).collect();
        let left = text
            .iter()
            .filter(|e| e.contains(erased_customer) || e.contains("from 49305000000"))
            .count();
        if left == 0 {
            assert!(text
                .iter()
                .any(|e| e.contains("ConversationCustomerErased")));
            assert!(
                text.iter().any(|e| e.contains("from 49305000001")),
                "the other stays"
            );
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{left} messages of the erased customer left"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

on_both_backends!(
    ten_thousand_events_arrive_once_in_order,
    a_nats_outage_loses_nothing_and_shows_the_lag,
    an_erased_customer_leaves_the_stream
);

mod postgres_processes {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn killed_publishers_leave_no_gap_and_no_duplicate() {
        if crate::helpers::postgres_url().is_some() {
            super::killed_publishers_leave_no_gap_and_no_duplicate(
                crate::helpers::Backend::Postgres,
            )
            .await;
        }
    }
}
