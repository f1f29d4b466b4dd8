//! Outgoing webhooks, end to end: endpoints receive exactly the events their filters want,
//! signed (checked by the `standardwebhooks` package), in order per conversation, through an
//! outage; replays, disabling, dead letters; URLs on private addresses refused without a
//! connection.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::receiver::{free_port, Receiver};

/// `count` text messages from `wa_id` to the business number `number`, the `first`-th on.
pub fn texts(number: &str, wa_id: &str, first: usize, count: usize) -> Vec<u8> {
    let messages: Vec<Value> = (first..first + count)
        .map(|i| {
            json!({"from": wa_id, "id": format!("wamid.out-{number}-{wa_id}-{i}"),
            "timestamp": (1_780_000_000 + i).to_string(), "type": "text",
            "text": {"body": format!("message {i} from {wa_id}")}})
        })
        .collect();
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000001", "phone_number_id": number},
        "contacts": [{"wa_id": wa_id, "profile": {"name": format!("Customer {wa_id}")}}],
        "messages": messages}}]}]})
    .to_string()
    .into_bytes()
}

const NUMBER_A: &str = "120000000000001";
const NUMBER_B: &str = "120000000000002";

/// Registers an endpoint; answers its id and secret.
pub async fn register(app: &TestApp, body: Value) -> (String, String) {
    let response = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/webhook-endpoints",
            Some(body),
        )
        .await;
    let status = response.status();
    let created: Value = response.json().await.expect("JSON");
    assert_eq!(status, 201, "{created}");
    (
        created["id"].as_str().expect("id").to_owned(),
        created["secret"].as_str().expect("secret").to_owned(),
    )
}

/// Every event of the log, by position.
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

/// The business number of each conversation, from the log.
fn numbers(events: &[Value]) -> HashMap<String, String> {
    events
        .iter()
        .filter(|e| e["type"] == "ConversationStarted")
        .map(|e| {
            (
                e["aggregate_id"].as_str().expect("id").to_owned(),
                e["data"]["Started"]["phone_number_id"]
                    .as_str()
                    .expect("number")
                    .to_owned(),
            )
        })
        .collect()
}

fn verified_ids(received: &[Value], path: &str) -> Vec<i64> {
    received
        .iter()
        .filter(|r| r["path"] == path)
        .map(|r| {
            assert_eq!(r["verified"], true, "signature verifies: {r}");
            r["id"]
                .as_str()
                .expect("id")
                .parse::<i64>()
                .expect("position")
        })
        .collect()
}

/// Each conversation's events arrived in log order.
fn in_order_per_conversation(received: &[Value], path: &str) {
    let mut last: HashMap<String, i64> = HashMap::new();
    for r in received.iter().filter(|r| r["path"] == path) {
        let conversation = r["payload"]["conversation_id"]
            .as_str()
            .unwrap_or("")
            .to_owned();
        let position = r["payload"]["position"].as_i64().expect("position");
        if let Some(before) = last.insert(conversation, position) {
            assert!(before < position, "{before} then {position} on {path}");
        }
    }
}

async fn endpoints_receive_exactly_their_events_signed_in_order_through_an_outage(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |s| {
        s.outgoing.retry_schedule = [1, 2, 4, 8, 8, 8, 8, 8, 8]
            .into_iter()
            .map(Duration::from_secs)
            .collect();
    })
    .await;
    let port = free_port();
    let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    // Two endpoints, one receiver: A wants customers' messages on number A, B conversation
    // events on number B.
    let (a, _) = register(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/a"), "secret": secret,
        "event_types": ["MessageInbound*"], "filters": {"phone_number_ids": [NUMBER_A]}}),
    )
    .await;
    register(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/b"), "secret": secret,
        "event_types": ["Conversation*"], "phone_number_ids": [NUMBER_B]}),
    )
    .await;
    let mut receiver = Receiver::start(port, secret);
    for customer in 0..10 {
        for number in [NUMBER_A, NUMBER_B] {
            let wa_id = format!("4930200{customer:03}");
            let body = texts(number, &wa_id, 0, 25);
            assert_eq!(app.post_webhook(&body).await.status(), 200);
        }
    }
    app.settle().await;
    let events = log(&app).await;
    assert!(events.len() >= 1000, "{} events", events.len());
    let numbers = numbers(&events);
    let number_of = |e: &Value| {
        e["conversation_id"]
            .as_str()
            .and_then(|c| numbers.get(c))
            .cloned()
            .unwrap_or_default()
    };
    let expected_a: Vec<i64> = events
        .iter()
        .filter(|e| e["type"] == "MessageInboundReceived" && number_of(e) == NUMBER_A)
        .map(|e| e["position"].as_i64().expect("position"))
        .collect();
    let expected_b: Vec<i64> = events
        .iter()
        .filter(|e| {
            e["type"]
                .as_str()
                .expect("type")
                .starts_with("Conversation")
                && number_of(e) == NUMBER_B
        })
        .map(|e| e["position"].as_i64().expect("position"))
        .collect();
    assert_eq!(expected_a.len(), 250);
    let received = receiver
        .wait_for("every event", |r| {
            r.iter().filter(|x| x["path"] == "/a").count() >= expected_a.len()
                && r.iter().filter(|x| x["path"] == "/b").count() >= expected_b.len()
        })
        .await;
    let mut got_a = verified_ids(&received, "/a");
    let mut got_b = verified_ids(&received, "/b");
    got_a.sort_unstable();
    got_b.sort_unstable();
    assert_eq!(got_a, expected_a, "A: exactly its events, once each");
    assert_eq!(got_b, expected_b, "B: exactly its events, once each");
    in_order_per_conversation(&received, "/a");
    in_order_per_conversation(&received, "/b");
    // The body is the /api/events envelope.
    let by_position: HashMap<i64, &Value> = events
        .iter()
        .map(|e| (e["position"].as_i64().expect("position"), e))
        .collect();
    for r in &received {
        let position = r["payload"]["position"].as_i64().expect("position");
        assert_eq!(&r["payload"], by_position[&position], "envelope");
    }

    // The receiver is down for 30 seconds while customers write; then back.
    receiver.stop();
    let before = receiver.received().len();
    for customer in 0..3 {
        let body = texts(NUMBER_A, &format!("4930200{customer:03}"), 100, 5);
        assert_eq!(app.post_webhook(&body).await.status(), 200);
    }
    app.settle().await;
    let failed_at = Instant::now();
    let failures = loop {
        let attempts: Vec<Value> = app
            .get_json(&format!("/api/webhook-endpoints/{a}/deliveries?limit=1000"))
            .await
            .as_array()
            .expect("attempts")
            .clone();
        let failures: Vec<Value> = attempts
            .into_iter()
            .filter(|x| x["error"].is_string())
            .collect();
        if failures.len() >= 2 {
            break failures;
        }
        assert!(
            failed_at.elapsed() < Duration::from_secs(20),
            "no retries recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(failures
        .iter()
        .all(|f| f["status"].is_null() && f["latency_ms"].is_i64()));
    assert!(
        failures.iter().any(|f| f["attempt"].as_i64() >= Some(2)),
        "retried"
    );
    // The outage itself: what is being tested is that 30 seconds of refused connections lose
    // nothing, so this waits them out.
    tokio::time::sleep(Duration::from_secs(30).saturating_sub(failed_at.elapsed())).await;
    assert_eq!(receiver.received().len(), before, "nothing while down");
    receiver.resume();
    let received = receiver
        .wait_for("the events of the outage", |r| {
            r.iter().filter(|x| x["path"] == "/a").count() >= expected_a.len() + 15
        })
        .await;
    let got = verified_ids(&received, "/a");
    let unique: HashSet<i64> = got.iter().copied().collect();
    assert_eq!(unique.len(), got.len(), "no webhook-id twice after success");
    assert_eq!(got.len(), expected_a.len() + 15);
    in_order_per_conversation(&received, "/a");
    let attempts = app
        .get_json(&format!("/api/webhook-endpoints/{a}/deliveries?limit=1000"))
        .await;
    let delivered_late = attempts
        .as_array()
        .expect("attempts")
        .iter()
        .any(|x| x["status"] == 200 && x["attempt"].as_i64() > Some(1));
    assert!(delivered_late, "a retry succeeded: {attempts}");
}

async fn replays_redeliver_a_range_and_disabled_endpoints_get_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.outgoing.retry_schedule = vec![Duration::from_millis(50); 2];
        s.outgoing.disable_after = Duration::from_secs(2);
    })
    .await;
    let port = free_port();
    let (id, secret) = register(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/all"), "event_types": ["*"]}),
    )
    .await;
    assert!(secret.starts_with("whsec_"));
    let receiver = Receiver::start(port, &secret);
    assert_eq!(
        app.post_webhook(&texts(NUMBER_A, "4930300001", 0, 5))
            .await
            .status(),
        200
    );
    app.settle().await;
    let events = log(&app).await;
    let registered = events
        .iter()
        .find(|e| e["type"] == "WebhookEndpointRegistered" && e["aggregate_id"] == id.as_str())
        .expect("registered")["position"]
        .as_i64()
        .expect("position");
    let expected: Vec<i64> = events
        .iter()
        .filter_map(|e| e["position"].as_i64())
        .filter(|p| *p > registered)
        .collect();
    let first = receiver
        .wait_for("the first events", |r| r.len() >= expected.len())
        .await;
    let ids = verified_ids(&first, "/all");
    assert_eq!(
        ids, expected,
        "every event after the registration, in order"
    );
    // Replay a range in the middle.
    let (from, to) = (ids[1], ids[3]);
    let replay = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/webhook-endpoints/{id}/replay"),
            Some(json!({"from_position": from, "to_position": to})),
        )
        .await;
    assert_eq!(replay.status(), 202);
    let expected_again: Vec<i64> = ids
        .iter()
        .copied()
        .filter(|p| (from..=to).contains(p))
        .collect();
    let received = receiver
        .wait_for("the replay", |r| {
            r.len() >= ids.len() + expected_again.len()
        })
        .await;
    let again: Vec<i64> = verified_ids(&received, "/all")[ids.len()..].to_vec();
    assert_eq!(again, expected_again, "exactly the range, in order");

    // Disabled: nothing until re-enabled, then what it missed.
    let path = format!("/api/webhook-endpoints/{id}");
    let patch = |enabled: bool| {
        app.send_as(
            &app.admin_token,
            Method::PATCH,
            &path,
            Some(json!({"enabled": enabled})),
        )
    };
    let disabled: Value = patch(false).await.json().await.expect("JSON");
    assert_eq!(disabled["enabled"], false);
    let seen = receiver.received().len();
    assert_eq!(
        app.post_webhook(&texts(NUMBER_A, "4930300001", 10, 3))
            .await
            .status(),
        200
    );
    app.settle().await;
    // The deliverer passes every 20 ms and after every append: 1 s is fifty chances to send.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        receiver.received().len(),
        seen,
        "a disabled endpoint gets nothing"
    );
    assert_eq!(patch(true).await.status(), 200);
    receiver
        .wait_for("what it missed", |r| r.len() > seen)
        .await;

    // An endpoint that never answers: dead letters, then disabled by the deliverer.
    let (dead, _) = register(
        &app,
        json!({"url": format!("http://127.0.0.1:{}/gone", free_port()), "event_types": ["Message*"]}),
    )
    .await;
    assert_eq!(
        app.post_webhook(&texts(NUMBER_A, "4930300002", 0, 1))
            .await
            .status(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let (letters, endpoint) = loop {
        let letters = app
            .get_json(&format!("/api/webhook-endpoints/{dead}/dead-letters"))
            .await;
        let endpoint = app
            .get_json(&format!("/api/webhook-endpoints/{dead}"))
            .await;
        if endpoint["enabled"] == false && !letters.as_array().expect("list").is_empty() {
            break (letters, endpoint);
        }
        assert!(
            Instant::now() < deadline,
            "never disabled: {endpoint} {letters}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(endpoint["disabled_reason"], "failing");
    assert_eq!(letters[0]["attempts"], 3, "first try and two retries");
    let events = log(&app).await;
    assert!(events.iter().any(|e| e["type"] == "WebhookEndpointDisabled"
        && e["aggregate_id"] == dead.as_str()
        && e["data"]["Disabled"]["reason"] == "failing"));
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    assert!(metrics.contains("switchboard_outgoing_webhook_endpoints_disabled_total"));
    // A dead letter can be retried (here into the same wall) or purged.
    let position = letters[0]["position"].as_i64().expect("position");
    let retried = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/webhook-endpoints/{dead}/dead-letters/{position}/retry"),
            None,
        )
        .await;
    assert_eq!(retried.status(), 202);
    let purged = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            &format!("/api/webhook-endpoints/{dead}/dead-letters"),
            None,
        )
        .await;
    assert_eq!(purged.status(), 204);
}

async fn private_addresses_are_refused_without_a_connection(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.outgoing.allow_private = false).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        "http://10.0.0.7/hook".to_owned(),
        "http://192.168.1.20/hook".to_owned(),
        "http://172.20.0.1/hook".to_owned(),
        "http://169.254.169.254/latest/meta-data".to_owned(),
        "http://2130706433/".to_owned(),
    ] {
        let response = app
            .send_as(
                &app.admin_token,
                Method::POST,
                "/api/webhook-endpoints",
                Some(json!({"url": url})),
            )
            .await;
        assert_eq!(response.status(), 422, "{url}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "invalid_url", "{url}: {body}");
    }
    for url in ["ftp://example.com/x", "not a url", "file:///etc/passwd"] {
        let response = app
            .send_as(
                &app.admin_token,
                Method::POST,
                "/api/webhook-endpoints",
                Some(json!({"url": url})),
            )
            .await;
        assert_eq!(response.status(), 422, "{url}");
    }
    let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
    assert!(accepted.is_err(), "no connection was made");
    assert!(app
        .get_json("/api/webhook-endpoints")
        .await
        .as_array()
        .expect("list")
        .is_empty());
    // Only admins manage endpoints.
    let agent_token = {
        app.create_agent(
            json!({"email": "ana@example.com", "name": "Ana", "role": "agent",
            "password": "correct horse battery"}),
        )
        .await;
        app.login("ana@example.com", "correct horse battery").await
    };
    assert_eq!(
        app.get_as(&agent_token, "/api/webhook-endpoints")
            .await
            .status(),
        403
    );
    // Allowed when the server allows private addresses.
    let app = app.restart(|s| s.outgoing.allow_private = true).await;
    let (id, _) = register(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/hook"), "event_types": ["Nothing"]}),
    )
    .await;
    assert_eq!(
        app.send_as(
            &app.admin_token,
            Method::DELETE,
            &format!("/api/webhook-endpoints/{id}"),
            None
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        app.get(&format!("/api/webhook-endpoints/{id}"))
            .await
            .status(),
        404
    );
}

on_both_backends!(
    endpoints_receive_exactly_their_events_signed_in_order_through_an_outage,
    replays_redeliver_a_range_and_disabled_endpoints_get_nothing,
    private_addresses_are_refused_without_a_connection
);
