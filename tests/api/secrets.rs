//! Secrets stay secret (issue #25): a server process is run through logins, a password change,
//! a wrong guess, refreshes, an API key, Meta's handshake, a signed webhook and a send that
//! fails at the Graph API, logging at `debug`; then everything it wrote — its log, its metrics,
//! every table of its database (every byte of the SQLite files) — is searched for each secret.

use std::io::Read;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use switchboard_store::Database;

use crate::helpers::{Backend, FreshDatabase};
use crate::on_both_backends;
use crate::receiver::free_port;

const JWT_SECRET: &str = "jwt-secret-that-must-not-leak-0123456789abcdef";
const APP_SECRET: &str = "app-secret-that-must-not-leak-42";
const GRAPH_TOKEN: &str = "EAAGgraph-token-that-must-not-leak-77";
const VERIFY_TOKEN: &str = "verify-token-that-must-not-leak-13";
const NEW_PASSWORD: &str = "new password that must not leak 55";
const GUESS: &str = "a guessed password that must not leak 66";

/// Everything a table holds, as text (PostgreSQL), or every byte of the database files.
async fn everything_stored(fresh: &FreshDatabase) -> Vec<u8> {
    if fresh.schema.is_none() {
        let dir = &fresh.cli_args[1];
        let mut all = Vec::new();
        for entry in std::fs::read_dir(dir).expect("data dir") {
            let path = entry.expect("entry").path();
            if path.is_file() {
                all.extend(std::fs::read(&path).expect("read"));
            }
        }
        return all;
    }
    let database = Database::connect(&fresh.config).await.expect("connect");
    let Database::Postgres(pool) = &database else {
        unreachable!("PostgreSQL")
    };
    let tables: Vec<String> = sqlx::query_scalar(
        "select table_name::text from information_schema.tables where table_schema = current_schema()",
    )
    .fetch_all(pool)
    .await
    .expect("tables");
    assert!(tables.len() > 20, "{tables:?}");
    let mut all = Vec::new();
    for table in tables {
        let rows: Vec<String> =
            sqlx::query_scalar(&format!("select row_to_json(t)::text from \"{table}\" t"))
                .fetch_all(pool)
                .await
                .expect("rows");
        for row in rows {
            all.extend(row.into_bytes());
        }
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

async fn call(
    client: &reqwest::Client,
    method: reqwest::Method,
    url: String,
    token: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = client.request(method, url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.expect("request sent")
}

async fn no_secret_is_logged_stored_or_exported(backend: Backend) {
    let fresh = FreshDatabase::new(backend).await;
    let log_dir = tempfile::tempdir().expect("log dir");
    let log_path = log_dir.path().join("server.log");
    let log = std::fs::File::create(&log_path).expect("log file");
    let port = free_port();
    let graph_port = free_port(); // nothing listens: every Graph call fails
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(&fresh.cli_args)
        .env_remove("DATABASE_URL")
        .env("SWITCHBOARD_JWT_SECRET", JWT_SECRET)
        .env("WHATSAPP_APP_SECRET", APP_SECRET)
        .env("WHATSAPP_ACCESS_TOKEN", GRAPH_TOKEN)
        .env("WHATSAPP_VERIFY_TOKEN", VERIFY_TOKEN)
        .env("WHATSAPP_BUSINESS_ACCOUNT_ID", "102290129340398")
        .env(
            "WHATSAPP_GRAPH_URL",
            format!("http://127.0.0.1:{graph_port}"),
        )
        .env("SWITCHBOARD_MEDIA_DIR", log_dir.path().join("media"))
        .env("RUST_LOG", "debug")
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("switchboard runs");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while client
        .get(format!("{base}/api/health"))
        .send()
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "the server never answered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The one-time password, printed once on the terminal.
    let mut printed = String::new();
    std::fs::File::open(&log_path)
        .expect("log")
        .read_to_string(&mut printed)
        .expect("read");
    let one_time = printed
        .lines()
        .find_map(|l| l.trim().strip_prefix("one-time password: "))
        .expect("the one-time password is printed")
        .to_owned();
    let login = |password: String| {
        let (client, base) = (client.clone(), base.clone());
        async move {
            call(
                &client,
                reqwest::Method::POST,
                format!("{base}/api/auth/login"),
                None,
                Some(json!({"email": "admin@switchboard.local", "password": password})),
            )
            .await
        }
    };
    let first: Value = login(one_time.clone()).await.json().await.expect("pair");
    let access = first["access_token"].as_str().expect("access").to_owned();
    let changed = call(
        &client,
        reqwest::Method::PUT,
        format!("{base}/api/auth/password"),
        Some(&access),
        Some(json!({"current_password": one_time, "new_password": NEW_PASSWORD})),
    )
    .await;
    assert_eq!(changed.status(), 204);
    assert_eq!(login(GUESS.to_owned()).await.status(), 401);
    let pair: Value = login(NEW_PASSWORD.to_owned())
        .await
        .json()
        .await
        .expect("pair");
    let refresh = pair["refresh_token"].as_str().expect("refresh").to_owned();
    let refreshed: Value = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/auth/refresh"),
        None,
        Some(json!({"refresh_token": refresh})),
    )
    .await
    .json()
    .await
    .expect("refreshed");
    let access = refreshed["access_token"]
        .as_str()
        .expect("access")
        .to_owned();
    let key: Value = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/api-keys"),
        Some(&access),
        Some(json!({"name": "reporting"})),
    )
    .await
    .json()
    .await
    .expect("key");
    let api_key = key["secret"].as_str().expect("secret").to_owned();
    assert_eq!(
        call(
            &client,
            reqwest::Method::GET,
            format!("{base}/api/conversations"),
            Some(&api_key),
            None
        )
        .await
        .status(),
        200
    );
    // Meta's handshake, a signed webhook, a reply that cannot reach the Graph API.
    let handshake = client
        .get(format!("{base}/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"))
        .send().await.expect("handshake");
    assert_eq!(handshake.status(), 200);
    // Written now (the process runs on the real clock), so the reply window is open.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs();
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000001", "phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": "15550003001", "profile": {"name": "Customer"}}],
        "messages": [{"from": "15550003001", "id": "wamid.secrets-1", "timestamp": now.to_string(),
                      "type": "text", "text": {"body": "hello"}}]}}]}]})
    .to_string()
    .into_bytes();
    // Signed with this process's own app secret (not the tests' usual one).
    let signed = client
        .post(format!("{base}/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            switchboard::whatsapp::signature::sign(APP_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .expect("webhook");
    assert_eq!(signed.status(), 200);
    let conversation = loop {
        let list: Value = call(
            &client,
            reqwest::Method::GET,
            format!("{base}/api/conversations"),
            Some(&access),
            None,
        )
        .await
        .json()
        .await
        .expect("list");
        if let Some(id) = list["items"][0]["id"].as_str().or(list[0]["id"].as_str()) {
            break id.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "the conversation never appeared: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let sent = call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/conversations/{conversation}/messages"),
        Some(&access),
        Some(json!({"type": "text", "body": "hello", "client_id": "secrets-1"})),
    )
    .await;
    let status = sent.status();
    assert!(
        status.is_success(),
        "{status} {}",
        sent.text().await.unwrap_or_default()
    );
    // Let the sender and the template sync fail at the Graph API and log it.
    let graph = format!("127.0.0.1:{graph_port}");
    let failed = Instant::now() + Duration::from_secs(20);
    while std::fs::read_to_string(&log_path)
        .unwrap_or_default()
        .matches(&graph)
        .count()
        < 2
    {
        assert!(Instant::now() < failed, "no Graph API failure was logged");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(call(
        &client,
        reqwest::Method::POST,
        format!("{base}/api/auth/logout"),
        Some(&access),
        None
    )
    .await
    .status()
    .is_success());
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();

    let written = std::fs::read_to_string(&log_path).expect("log");
    // The one-time password appears once: on its own line of the banner, not in the log.
    let logged: String = written
        .lines()
        .filter(|l| !l.trim().starts_with("one-time password: "))
        .collect::<Vec<_>>()
        .join("\n");
    let stored = everything_stored(&fresh).await;
    assert!(
        contains(&stored, "admin@switchboard.local"),
        "the scan reads the database"
    );
    for (what, secret) in [
        ("JWT secret", JWT_SECRET),
        ("app secret", APP_SECRET),
        ("Graph token", GRAPH_TOKEN),
        ("verify token", VERIFY_TOKEN),
        ("one-time password", one_time.as_str()),
        ("password", NEW_PASSWORD),
        ("guessed password", GUESS),
        ("refresh token", refresh.as_str()),
        ("access token", access.as_str()),
        ("API key", api_key.as_str()),
    ] {
        assert!(
            !contains(logged.as_bytes(), secret),
            "the {what} is in the log"
        );
        assert!(
            !contains(metrics.as_bytes(), secret),
            "the {what} is in the metrics"
        );
        assert!(!contains(&stored, secret), "the {what} is in the database");
    }
    assert!(
        logged.lines().count() > 50,
        "the log was written at debug level"
    );
}

on_both_backends!(no_secret_is_logged_stored_or_exported);
