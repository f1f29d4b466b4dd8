//! An agent's reply end to end, over real HTTP: server and Cloud API simulator both running.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use switchboard::simulator::{Fault, Simulator, SimulatorSettings};

use crate::helpers::{fixture, Backend, TestApp, APP_SECRET};
use crate::on_both_backends;

async fn a_reply_goes_queued_sent_delivered_read(backend: Backend) {
    let (simulator, app, conversation) = wired(backend).await;

    let accepted: Value = app
        .send_as(&app.admin_token, Method::POST, &format!("/api/conversations/{conversation}/messages"),
            Some(json!({"client_id": "reply-1", "type": "text", "body": "It does come in blue.",
                        "reply_to": "wamid.HBgLMTU1NTAwMDIyMjIVAgASGBQ2NEZBQ0EyRENCQjg1NUJFREM4QwA="})))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(accepted["status"], "queued");
    let id = accepted["id"].as_str().expect("id").to_owned();

    let deadline = Instant::now() + Duration::from_secs(20);
    let message = loop {
        app.settle().await;
        let message = app.get_json(&format!("/api/messages/{id}")).await;
        if message["status"] == "read" {
            break message;
        }
        assert!(Instant::now() < deadline, "never read: {message}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(message["wamid"]
        .as_str()
        .is_some_and(|w| w.starts_with("wamid.SIM")));
    for status in ["sent", "delivered", "read"] {
        assert!(
            message["statuses"][status].is_string(),
            "{status} has its time"
        );
    }
    let received = simulator.received();
    assert_eq!(received.len(), 1, "sent once");
    let body = &received[0];
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], "15550002222");
    assert_eq!(body["type"], "text");
    assert_eq!(body["text"]["body"], "It does come in blue.");
    assert_eq!(
        body["context"]["message_id"],
        "wamid.HBgLMTU1NTAwMDIyMjIVAgASGBQ2NEZBQ0EyRENCQjg1NUJFREM4QwA="
    );
    assert_eq!(body["biz_opaque_callback_data"], id.as_str());
}

/// The business account of the fixtures (`entry[].id`).
pub(crate) const WABA_ID: &str = "110000000000001";

/// Server and simulator wired to each other, and a conversation with an open window.
async fn wired(backend: Backend) -> (Simulator, TestApp, String) {
    wired_sending(backend, true).await
}

/// As [`wired`]; `send` says whether the sender worker runs.
pub(crate) async fn wired_sending(backend: Backend, send: bool) -> (Simulator, TestApp, String) {
    wired_sending_with(backend, send, |_| {}).await
}

/// [`wired_sending`], with settings of the test's own.
/// Our Cloud API simulator on a free port, token `simulator-token`, statuses after 30 ms.
pub(crate) async fn simulator() -> Simulator {
    Simulator::start(
        "127.0.0.1:0",
        SimulatorSettings {
            access_token: "simulator-token".to_owned(),
            app_secret: APP_SECRET.to_owned(),
            webhook_url: None,
            status_delay: Duration::from_millis(30),
        },
    )
    .await
    .expect("simulator")
}

pub(crate) async fn wired_sending_with(
    backend: Backend,
    send: bool,
    adjust: impl FnOnce(&mut switchboard::config::Settings) + Send + 'static,
) -> (Simulator, TestApp, String) {
    let simulator = simulator().await;
    let graph_url = simulator.url();
    let app = TestApp::spawn_with(backend, move |s| {
        s.outbound.send = send;
        s.outbound.graph.timeout = Duration::from_secs(1);
        s.outbound.graph.base_url = graph_url;
        s.outbound.graph.access_token = Some("simulator-token".into());
        s.whatsapp.business_accounts = vec![WABA_ID.to_owned()];
        adjust(s);
    })
    .await;
    simulator.set_webhook_url(app.url("/webhooks/whatsapp"));
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_text.json"))
            .await
            .status(),
        200
    );
    app.settle().await;
    let conversation = app.conversation_of("15550002222").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    (simulator, app, conversation)
}

pub(crate) async fn send_text(app: &TestApp, conversation: &str, client_id: &str) -> String {
    let accepted: Value = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/conversations/{conversation}/messages"),
            Some(json!({"client_id": client_id, "type": "text", "body": "Hello"})),
        )
        .await
        .json()
        .await
        .expect("JSON");
    accepted["id"].as_str().expect("id").to_owned()
}

/// Waits (moving the clock on, so that retries come due) until the message has `status`.
pub(crate) async fn wait_for_status(app: &TestApp, id: &str, status: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.settle().await;
        let message = app.get_json(&format!("/api/messages/{id}")).await;
        if message["status"] == status {
            return message;
        }
        assert!(Instant::now() < deadline, "never {status}: {message}");
        app.clock.advance_seconds(5);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) async fn retry_dead_letter(app: &TestApp, id: &str) -> reqwest::Response {
    app.send_as(
        &app.admin_token,
        Method::POST,
        &format!("/api/dead-letters/{id}/retry"),
        None,
    )
    .await
}

pub(crate) async fn event_types(app: &TestApp, id: &str) -> Vec<String> {
    app.log()
        .aggregate_events("Message", id)
        .await
        .expect("events")
        .into_iter()
        .map(|e| e.event_type)
        .collect()
}

async fn two_server_errors_then_success_is_sent_once_after_three_attempts(backend: Backend) {
    let (simulator, app, conversation) = wired(backend).await;
    simulator.fail_next(
        Fault {
            status: 500,
            code: 131000,
            ..Fault::default()
        },
        2,
    );
    let id = send_text(&app, &conversation, "flaky").await;
    wait_for_status(&app, &id, "read").await;
    let types = event_types(&app, &id).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "MessageOutboundAttemptFailed")
            .count(),
        2,
        "{types:?}"
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "MessageOutboundAccepted")
            .count(),
        1,
        "{types:?}"
    );
    assert_eq!(simulator.received().len(), 1, "delivered once");
}

async fn outside_the_window_at_meta_fails_at_once_without_retry(backend: Backend) {
    let (simulator, app, conversation) = wired(backend).await;
    simulator.fail_next(
        Fault {
            status: 400,
            code: 131047,
            ..Fault::default()
        },
        1,
    );
    let id = send_text(&app, &conversation, "too-late").await;
    let message = wait_for_status(&app, &id, "failed").await;
    assert_eq!(message["status_errors"][0]["code"], 131047);
    let types = event_types(&app, &id).await;
    assert!(
        !types.iter().any(|t| t == "MessageOutboundAttemptFailed"),
        "no retry: {types:?}"
    );
    assert!(types.iter().any(|t| t == "MessageOutboundFailed"));
    assert!(simulator.received().is_empty());
}

async fn persistent_failures_dead_letter_the_message_and_a_retry_delivers_it(backend: Backend) {
    let (simulator, app, conversation) = wired(backend).await;
    simulator.fail_next(
        Fault {
            status: 503,
            code: 2,
            ..Fault::default()
        },
        3,
    );
    let id = send_text(&app, &conversation, "unlucky").await;
    let message = wait_for_status(&app, &id, "dead_lettered").await;
    assert_eq!(message["status_errors"][0]["code"], 2);
    let types = event_types(&app, &id).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "MessageOutboundAttemptFailed")
            .count(),
        2,
        "{types:?}"
    );
    assert!(types.iter().any(|t| t == "MessageOutboundDeadLettered"));
    let dead = app.get_json("/api/dead-letters").await;
    assert_eq!(dead["items"][0]["id"], id.as_str());
    assert_eq!(dead["items"][0]["attempts"], 3);
    // Send outcomes by Meta's code, and the dead letters, are in the metrics (the recorder is
    // shared by every test of this process: only presence is certain).
    let metrics = app.get("/metrics").await.text().await.expect("metrics");
    for series in [
        r#"switchboard_sends_total{outcome="retried",code="2"}"#,
        r#"switchboard_sends_total{outcome="dead_lettered",code="2"}"#,
        "switchboard_sends_dead_lettered ",
        "switchboard_sends_queued ",
    ] {
        assert!(metrics.contains(series), "{series} in {metrics}");
    }

    assert_eq!(retry_dead_letter(&app, &id).await.status(), 202);
    wait_for_status(&app, &id, "read").await;
    assert_eq!(simulator.received().len(), 1, "delivered once");
    assert_eq!(app.get_json("/api/dead-letters").await["items"], json!([]));
    let again = retry_dead_letter(&app, &id).await;
    assert_eq!(again.status(), 404, "no longer dead");
    let purge = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            "/api/dead-letters?older_than=2030-01-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(purge.status(), 200);
}

async fn marking_read_tells_meta_and_clears_the_unread_count(backend: Backend) {
    let (simulator, app, conversation) = wired(backend).await;
    assert_eq!(app.conversation_of("15550002222").await["unread_count"], 1);
    let read = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/conversations/{conversation}/read"),
            None,
        )
        .await;
    assert_eq!(read.status(), 200);
    let wamid = "wamid.HBgLMTU1NTAwMDIyMjIVAgASGBQ2NEZBQ0EyRENCQjg1NUJFREM4QwA=";
    assert_eq!(
        read.json::<Value>().await.expect("JSON")["read_up_to"],
        wamid
    );
    assert_eq!(simulator.read_receipts(), vec![wamid.to_owned()]);
    app.settle().await;
    assert_eq!(app.conversation_of("15550002222").await["unread_count"], 0);
}

async fn post_message(app: &TestApp, conversation: &str, body: Value) -> reqwest::Response {
    app.send_as(
        &app.admin_token,
        Method::POST,
        &format!("/api/conversations/{conversation}/messages"),
        Some(body),
    )
    .await
}

async fn a_double_submit_reaches_meta_once(backend: Backend) {
    let (simulator, app, conversation) = wired(backend).await;
    let body = json!({"client_id": "twice", "type": "text", "body": "Only once, please"});
    let answers =
        futures::future::join_all((0..5).map(|_| post_message(&app, &conversation, body.clone())))
            .await;
    let mut ids = Vec::new();
    for answer in answers {
        assert_eq!(answer.status(), 202);
        ids.push(answer.json::<Value>().await.expect("JSON")["id"].clone());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one message for one client_id: {ids:?}");
    let id = ids[0].as_str().expect("id").to_owned();
    wait_for_status(&app, &id, "read").await;
    // The agent's weak connection submits once more after the send.
    let again = post_message(&app, &conversation, body).await;
    assert_eq!(
        again.json::<Value>().await.expect("JSON")["id"],
        id.as_str()
    );
    app.settle().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.settle().await;
    assert_eq!(simulator.received().len(), 1, "Meta got it once");
}

async fn after_24_hours_only_a_template_goes_out(backend: Backend) {
    let (simulator, app, conversation) = wired(backend).await;
    app.clock.advance_seconds(24 * 3600 + 60);
    let free_form = post_message(
        &app,
        &conversation,
        json!({"client_id": "late", "type": "text", "body": "Still there?"}),
    )
    .await;
    assert_eq!(free_form.status(), 422);
    assert_eq!(
        free_form.json::<Value>().await.expect("JSON")["error"]["code"],
        "window_closed"
    );
    app.approve_template("order_shipped", "en_US").await;
    let template = post_message(&app, &conversation,
        json!({"client_id": "tpl", "type": "template", "name": "order_shipped", "language": "en_US",
               "components": [{"type": "body", "parameters": [{"type": "text", "text": "Sheena"}]}]}))
        .await;
    assert_eq!(template.status(), 202);
    let id = template.json::<Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    wait_for_status(&app, &id, "read").await;
    let received = simulator.received();
    assert_eq!(received.len(), 1, "only the template went out");
    assert_eq!(received[0]["type"], "template");
    assert_eq!(received[0]["template"]["name"], "order_shipped");
    assert_eq!(received[0]["template"]["language"]["code"], "en_US");
}

async fn a_send_claimed_by_a_worker_that_died_goes_out_after_restart(backend: Backend) {
    let (simulator, app, conversation) = wired_sending(backend, false).await;
    let id = send_text(&app, &conversation, "orphan").await;
    app.settle().await;
    // A worker claimed it and died before Meta answered: the row it leaves behind.
    app.execute_sql(
        "update outbound_queue set attempts = attempts + 1, claimed_until = available_at + 60000",
    )
    .await;
    let app = app.restart(|s| s.outbound.send = true).await;
    simulator.set_webhook_url(app.url("/webhooks/whatsapp"));
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.settle().await;
    assert!(
        simulator.received().is_empty(),
        "the claim is honoured while the dead worker might still be sending"
    );
    assert_eq!(
        app.get_json(&format!("/api/messages/{id}")).await["status"],
        "queued"
    );
    app.clock.advance_seconds(61);
    wait_for_status(&app, &id, "read").await;
    assert_eq!(
        simulator.received().len(),
        1,
        "sent once, after the claim lapsed"
    );
}

/// Waits until the simulator has received `count` sends, then checks that no more follow.
async fn received_exactly(app: &TestApp, simulator: &Simulator, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while simulator.received().len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} sent",
            simulator.received().len()
        );
        app.settle().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(
        simulator.received().len(),
        count,
        "no more before the next slot"
    );
}

async fn a_burst_to_one_customer_is_spaced_by_the_pair_limit(backend: Backend) {
    let (simulator, app, conversation) = wired_sending(backend, false).await;
    for client_id in ["b1", "b2", "b3"] {
        send_text(&app, &conversation, client_id).await;
    }
    app.settle().await;
    let app = app
        .restart(|s| {
            s.outbound.send = true;
            s.outbound.pair_interval = Duration::from_secs(10);
        })
        .await;
    simulator.set_webhook_url(app.url("/webhooks/whatsapp"));
    received_exactly(&app, &simulator, 1).await;
    app.clock.advance_seconds(9);
    received_exactly(&app, &simulator, 1).await;
    app.clock.advance_seconds(1);
    received_exactly(&app, &simulator, 2).await;
    app.clock.advance_seconds(10);
    received_exactly(&app, &simulator, 3).await;
    for id in app
        .messages(&conversation)
        .await
        .iter()
        .filter(|m| m["direction"] == "outbound")
    {
        let types = event_types(&app, id["id"].as_str().expect("id")).await;
        assert!(
            !types.iter().any(|t| t.contains("Failed")),
            "waiting is not a failure: {types:?}"
        );
    }
}

async fn persistent_timeouts_dead_letter_the_message_and_a_retry_delivers_it(backend: Backend) {
    let (simulator, app, conversation) = wired(backend).await;
    let timeout = Fault {
        status: 504,
        code: 2,
        delay_ms: 3_000,
    };
    simulator.fail_next(timeout, 3);
    let id = send_text(&app, &conversation, "slow").await;
    let message = wait_for_status(&app, &id, "dead_lettered").await;
    assert_eq!(message["status_errors"][0]["title"], "unreachable");
    assert!(simulator.received().is_empty(), "Meta never answered");
    assert_eq!(retry_dead_letter(&app, &id).await.status(), 202);
    wait_for_status(&app, &id, "read").await;
    assert_eq!(simulator.received().len(), 1, "delivered once");
}

async fn a_number_sends_no_faster_than_its_throughput(backend: Backend) {
    let (simulator, app, conversation) = wired_sending(backend, false).await;
    for n in 0..6 {
        send_text(&app, &conversation, &format!("fast-{n}")).await;
    }
    app.settle().await;
    let app = app
        .restart(|s| {
            s.outbound.send = true;
            s.outbound.pair_interval = Duration::ZERO;
            s.outbound.messages_per_second = 2;
        })
        .await;
    let started = Instant::now();
    // Two at once (a second's allowance), then one every half second.
    received_exactly(&app, &simulator, 6).await;
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(1_900),
        "paced: {elapsed:?}"
    );
}

on_both_backends!(
    marking_read_tells_meta_and_clears_the_unread_count,
    a_number_sends_no_faster_than_its_throughput,
    persistent_timeouts_dead_letter_the_message_and_a_retry_delivers_it,
    a_burst_to_one_customer_is_spaced_by_the_pair_limit,
    a_send_claimed_by_a_worker_that_died_goes_out_after_restart,
    a_double_submit_reaches_meta_once,
    after_24_hours_only_a_template_goes_out,
    a_reply_goes_queued_sent_delivered_read,
    persistent_failures_dead_letter_the_message_and_a_retry_delivers_it,
    two_server_errors_then_success_is_sent_once_after_three_attempts,
    outside_the_window_at_meta_fails_at_once_without_retry,
);
