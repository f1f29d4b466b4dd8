//! Metrics, readiness and request ids.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use switchboard_store::DatabaseConfig;
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{fixture, Backend, TestApp};
use crate::on_both_backends;

/// The value of a sample in Prometheus text (`name{labels} value`), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| {
            line.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
        .unwrap_or(0.0)
}

async fn scrape(app: &TestApp) -> String {
    let response = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    response.text().await.expect("text")
}

async fn counters_move_after_a_webhook_and_a_rejected_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let before = scrape(&app).await;
    let body = fixture("meta/inbound_text.json");
    assert_eq!(app.post_webhook(&body).await.status(), 200);
    assert_eq!(
        app.post_webhook_with_signature(&body, Some("sha256=00"))
            .await
            .status(),
        401
    );
    app.settle().await;
    let after = scrape(&app).await;
    for series in [
        "switchboard_webhooks_received_total",
        r#"switchboard_webhooks_rejected_total{reason="invalid_signature"}"#,
        r#"switchboard_http_requests_total{method="POST",route="/webhooks/whatsapp",status="200"}"#,
        r#"switchboard_http_requests_total{method="POST",route="/webhooks/whatsapp",status="401"}"#,
        "switchboard_messages_received_total",
        "switchboard_webhook_processing_attempts_total",
    ] {
        assert!(
            sample(&after, series) >= sample(&before, series) + 1.0,
            "{series} moved:\n{after}"
        );
    }
    for gauge in [
        "switchboard_webhooks_awaiting_processing",
        "switchboard_webhooks_dead_lettered",
        "switchboard_projection_lag_events",
        "switchboard_active_conversations",
    ] {
        assert!(
            after.lines().any(|l| l.starts_with(gauge)),
            "{gauge} exported"
        );
    }
    assert!(after.contains("switchboard_http_request_duration_seconds_bucket"));
    // Meta's timestamps have whole seconds: the inbound delay has buckets of seconds to an hour.
    assert!(after.contains(r#"switchboard_inbound_delay_seconds_bucket{le="3600"}"#));
    // One prefix for every series, so none collides with another exporter's.
    let unprefixed: Vec<&str> = after
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter(|l| !l.starts_with("switchboard_"))
        .collect();
    assert!(
        unprefixed.is_empty(),
        "series without the prefix: {unprefixed:?}"
    );
    // The same under /api, for agents who may see analytics.
    assert_eq!(app.get("/api/metrics/prometheus").await.status(), 200);
    assert_eq!(
        app.client
            .get(app.url("/api/metrics/prometheus"))
            .send()
            .await
            .expect("sent")
            .status(),
        401
    );
}

async fn readiness_reports_a_broken_schema(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ready = |app: &TestApp| {
        let request = app.client.get(app.url("/api/health/ready"));
        async move { request.send().await.expect("sent") }
    };
    assert_eq!(ready(&app).await.status(), 200);
    app.execute_sql("alter table _sqlx_migrations rename to _sqlx_migrations_away")
        .await;
    let down = ready(&app).await;
    assert_eq!(down.status(), 503);
    assert_eq!(
        down.json::<Value>().await.expect("JSON")["status"],
        "not_ready"
    );
    app.execute_sql("alter table _sqlx_migrations_away rename to _sqlx_migrations")
        .await;
    assert_eq!(ready(&app).await.status(), 200);
    let detailed = app.get_json("/api/health/detailed").await;
    assert_eq!(detailed["status"], "ok");
    assert_eq!(detailed["components"]["database"]["status"], "ok");
    assert!(detailed["components"]["workers"]
        .as_array()
        .is_some_and(|w| w.len() == 3));
    assert!(detailed["uptime_seconds"].is_u64());
}

/// A TCP proxy in front of PostgreSQL that the test can cut, like a network partition.
struct Proxy {
    port: u16,
    up: Arc<AtomicBool>,
    cut: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let up = Arc::new(AtomicBool::new(true));
        let (cut, cuts) = tokio::sync::watch::channel(0u64);
        let accepting = Arc::clone(&up);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if !accepting.load(Ordering::SeqCst) {
                    continue;
                }
                let target = target.clone();
                let mut cuts = cuts.clone();
                cuts.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cuts.changed() => {}
                    }
                });
            }
        });
        Self { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.send_modify(|n| *n += 1);
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_is_503_while_postgresql_is_unreachable() {
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let url = crate::helpers::postgres_url().expect("url");
    let options: sqlx::postgres::PgConnectOptions = url.parse().expect("url parses");
    let proxy = Proxy::start(format!("{}:{}", options.get_host(), options.get_port())).await;
    let port = proxy.port;
    let app = TestApp::spawn_with(Backend::Postgres, move |s| {
        if let DatabaseConfig::Postgres { options, .. } = &mut s.database {
            **options = options.as_ref().clone().host("127.0.0.1").port(port);
        }
    })
    .await;
    let ready = || app.client.get(app.url("/api/health/ready")).send();
    assert_eq!(ready().await.expect("sent").status(), 200);
    proxy.down();
    let down = ready().await.expect("sent");
    assert_eq!(down.status(), 503);
    assert_eq!(
        down.json::<Value>().await.expect("JSON")["reason"],
        "database unreachable"
    );
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let response = ready().await.expect("sent");
        if response.status() == 200 {
            break;
        }
        let body = response.text().await.unwrap_or_default();
        assert!(
            Instant::now() < deadline,
            "ready again once the database is back: {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn the_request_id_reaches_the_events_it_caused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // A webhook delivery: its request id is on the events of the message it carried.
    let body = fixture("meta/inbound_text.json");
    let response = app
        .client
        .post(app.url("/webhooks/whatsapp"))
        .header("x-request-id", "delivery-7f3a")
        .header(
            "x-hub-signature-256",
            switchboard::whatsapp::signature::sign(crate::helpers::APP_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(response.headers()["x-request-id"], "delivery-7f3a");
    app.settle().await;
    let log = app.log();
    let message = log
        .aggregate_events(
            "Message",
            "wamid.HBgLMTU1NTAwMDIyMjIVAgASGBQ2NEZBQ0EyRENCQjg1NUJFREM4QwA=",
        )
        .await
        .expect("events");
    assert_eq!(message[0].metadata["request_id"], "delivery-7f3a");
    assert_eq!(message[0].metadata["correlation_id"], "delivery-7f3a");
    assert_eq!(message[0].metadata["actor"], "meta");

    // An agent's command: the id given, or one generated and returned.
    let conversation = app.conversation_of("15550002222").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let response = app
        .client
        .post(app.url(&format!("/api/conversations/{conversation}/lock")))
        .bearer_auth(&app.admin_token)
        .header("x-request-id", "agent-req-42")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let generated = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            &format!("/api/conversations/{conversation}/lock"),
            None,
        )
        .await;
    let generated_id = generated.headers()["x-request-id"]
        .to_str()
        .expect("id")
        .to_owned();
    assert!(!generated_id.is_empty());
    let events = log
        .aggregate_events("Conversation", &conversation)
        .await
        .expect("events");
    let acquired = events
        .iter()
        .find(|e| e.event_type == "LockAcquired")
        .expect("acquired");
    assert_eq!(
        acquired.metadata["request_id"], "agent-req-42",
        "{:?}",
        acquired.metadata
    );
    assert!(acquired.metadata["actor"]
        .as_str()
        .is_some_and(|a| a.starts_with("agent:")));
    let released = events
        .iter()
        .find(|e| e.event_type == "LockReleased")
        .expect("released");
    assert_eq!(released.metadata["request_id"], generated_id.as_str());
}

on_both_backends!(
    counters_move_after_a_webhook_and_a_rejected_one,
    readiness_reports_a_broken_schema,
    the_request_id_reaches_the_events_it_caused,
);
