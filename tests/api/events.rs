//! The event log for analytics consumers: pages and a resumable server-sent-event stream.

use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};

use crate::helpers::{fixture, Backend, TestApp};
use crate::on_both_backends;

async fn pages_walk_the_log_in_order_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for name in [
        "inbound_text.json",
        "inbound_image.json",
        "status_sent.json",
    ] {
        assert_eq!(
            app.post_webhook(&fixture(&format!("meta/{name}")))
                .await
                .status(),
            200
        );
    }
    app.settle().await;
    let mut after = 0;
    let mut positions = Vec::new();
    loop {
        let page = app
            .get_json(&format!("/api/events?after={after}&limit=3"))
            .await;
        let items = page["items"].as_array().expect("items").clone();
        if items.is_empty() {
            assert_eq!(page["next_after"], Value::Null);
            break;
        }
        positions.extend(
            items
                .iter()
                .map(|e| e["position"].as_i64().expect("position")),
        );
        after = page["next_after"].as_i64().expect("next_after");
    }
    assert_eq!(
        i64::try_from(positions.len()).expect("len"),
        app.event_count().await,
        "every event once"
    );
    let mut unique = positions.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), positions.len());

    let message = app.get_json("/api/events?after=0&limit=1000").await["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["type"] == "MessageInboundReceived")
        .cloned()
        .expect("a message event");
    assert!(message["conversation_id"].is_string());
    assert_eq!(message["metadata"]["actor"], "meta");

    assert_eq!(app.get("/api/events?after=99999999").await.status(), 400);
    app.create_agent(json!({"email": "nox@example.com", "name": "Nox", "role": "agent", "password": "correct horse battery"}))
        .await;
    let agent = app.login("nox@example.com", "correct horse battery").await;
    assert_eq!(app.get_as(&agent, "/api/events").await.status(), 403);
    assert_eq!(app.get_as(&agent, "/api/events/stream").await.status(), 403);
}

/// Reads server-sent events until `count` have arrived: (id, event type).
async fn read_events(response: reqwest::Response, count: usize) -> Vec<(i64, String)> {
    let mut stream = response.bytes_stream();
    let mut text = String::new();
    let mut events = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while events.len() < count {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("events arrive in time")
            .expect("stream open")
            .expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
        while let Some(end) = text.find("\n\n") {
            let block: String = text.drain(..end + 2).collect();
            let field = |name: &str| {
                block.lines().find_map(|l| {
                    l.strip_prefix(&format!("{name}:"))
                        .map(|v| v.trim().to_owned())
                })
            };
            if let (Some(id), Some(kind)) = (field("id"), field("event")) {
                events.push((id.parse().expect("numeric id"), kind));
            }
        }
    }
    events
}

async fn the_stream_resumes_after_last_event_id_and_goes_on_live(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_text.json"))
            .await
            .status(),
        200
    );
    app.settle().await;
    let all = app.get_json("/api/events?after=0&limit=1000").await;
    let positions: Vec<i64> = all["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["position"].as_i64().expect("p"))
        .collect();
    assert!(positions.len() >= 4);
    let resume_after = positions[1];

    let response = app
        .client
        .get(app.url("/api/events/stream"))
        .bearer_auth(&app.admin_token)
        .header("last-event-id", resume_after.to_string())
        .send()
        .await
        .expect("stream");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .expect("type")
        .starts_with("text/event-stream"));
    let reader = tokio::spawn(read_events(response, positions.len() - 2 + 2));
    // Live: a new customer message after the client connected.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_audio_voice.json"))
            .await
            .status(),
        200
    );
    let received = reader.await.expect("reader");
    let ids: Vec<i64> = received.iter().map(|(id, _)| *id).collect();
    assert_eq!(
        &ids[..positions.len() - 2],
        &positions[2..],
        "the missed events first, in order"
    );
    let mut unique = ids.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "no duplicates");
    assert!(
        received
            .iter()
            .any(|(_, kind)| kind == "MessageInboundReceived"),
        "then live ones"
    );
}

/// Every `id` in a finished event-stream body.
fn ids_in(body: &str) -> Vec<i64> {
    body.lines()
        .filter_map(|l| l.strip_prefix("id:"))
        .map(|v| v.trim().parse().expect("numeric id"))
        .collect()
}

async fn a_stream_ends_after_its_time_and_the_client_resumes_without_a_gap(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.realtime.event_stream_max = Duration::from_secs(1);
    })
    .await;
    let app = &app;
    // The whole body arrives: the server ends each response after a second.
    let whole_stream = |last: Option<i64>| {
        let mut request = app
            .client
            .get(app.url("/api/events/stream"))
            .bearer_auth(&app.admin_token);
        if let Some(last) = last {
            request = request.header("last-event-id", last.to_string());
        }
        async move {
            let body = tokio::time::timeout(Duration::from_secs(10), async {
                request
                    .send()
                    .await
                    .expect("stream")
                    .text()
                    .await
                    .expect("body")
            })
            .await
            .expect("the stream ends by itself");
            ids_in(&body)
        }
    };
    let post = |name: &'static str| async move {
        assert_eq!(app.post_webhook(&fixture(name)).await.status(), 200);
        app.settle().await;
    };
    post("meta/inbound_text.json").await;
    let first = whole_stream(None).await;
    assert!(first.len() >= 4, "{first:?}");
    post("meta/inbound_audio_voice.json").await;
    let second = whole_stream(first.last().copied()).await;
    let mut all = first.clone();
    all.extend(second);
    let log: Vec<i64> = app.get_json("/api/events?after=0&limit=1000").await["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["position"].as_i64().expect("position"))
        .collect();
    assert_eq!(
        all, log,
        "two responses together: the whole log, once, in order"
    );
}

on_both_backends!(
    pages_walk_the_log_in_order_once,
    the_stream_resumes_after_last_event_id_and_goes_on_live,
    a_stream_ends_after_its_time_and_the_client_resumes_without_a_gap,
);
