//! `min_position`: a list loaded after a socket event includes that event, though the read
//! models follow the log a moment behind (the console reloads its inbox on socket events; it
//! showed the time before the event when a projection lagged, and nothing reloaded it again).

use std::time::{Duration, Instant};

use serde_json::Value;
use switchboard_projections::{all_projections, ProjectionRunner};

use super::{customers_write, NUMBERS};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// Waits until the webhook worker has turned every stored webhook into events (the read
/// models stand still: this app runs no projections); returns the log's head.
async fn events_written(app: &TestApp, before: i64) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let head = app.log().head().await.expect("head");
        if head > before {
            return head;
        }
        assert!(Instant::now() < deadline, "the webhook never became events");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn wa_ids(app: &TestApp, path: &str) -> Vec<String> {
    let response = app.get(path).await;
    assert_eq!(response.status(), 200, "{path}");
    let page: Value = response.json().await.expect("JSON");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|c| {
            c["customer"]["wa_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

async fn a_list_waits_for_the_read_models_to_reach_a_position(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.workers.run_projections = false).await;
    let projections = || ProjectionRunner::new(app.log(), all_projections());
    projections().catch_up().await.expect("catch up");
    let before = app.log().head().await.expect("head");
    let customer = (
        "34600111222".to_owned(),
        "Lag".to_owned(),
        "hello".to_owned(),
    );
    customers_write(&app, NUMBERS[0], &[customer], 1_780_000_000).await;
    let position = events_written(&app, before).await;

    // The read models have not applied it: a plain read does not show it.
    assert!(wa_ids(&app, "/api/conversations").await.is_empty());

    // A read after the position waits for them (and answers once they have applied it).
    let path = format!("/api/conversations?min_position={position}");
    let waiting = tokio::spawn({
        let (client, url, token) = (app.client.clone(), app.url(&path), app.admin_token.clone());
        async move {
            let response = client
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("GET");
            assert_eq!(response.status(), 200);
            response.json::<Value>().await.expect("JSON")
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !waiting.is_finished(),
        "answered before the read models had the event"
    );
    projections().catch_up().await.expect("catch up");
    let page = tokio::time::timeout(Duration::from_secs(5), waiting)
        .await
        .expect("answered once the read models had the event")
        .expect("request");
    assert_eq!(
        page["items"][0]["customer"]["wa_id"], "34600111222",
        "{page}"
    );

    // Counts, a conversation and its messages take it too.
    let id = page["items"][0]["id"].as_str().expect("id").to_owned();
    for path in [
        format!("/api/conversations/counts?min_position={position}"),
        format!("/api/conversations/{id}?min_position={position}"),
        format!("/api/conversations/{id}/messages?min_position={position}"),
    ] {
        assert_eq!(app.get(&path).await.status(), 200, "{path}");
    }

    // Read models that do not get there in time: the answer comes after the bound, as they
    // stand (a stalled projection must not hang every reader).
    let before = app.log().head().await.expect("head");
    let later = (
        "34600111333".to_owned(),
        "Later".to_owned(),
        "hi".to_owned(),
    );
    customers_write(&app, NUMBERS[0], &[later], 1_780_000_100).await;
    let position = events_written(&app, before).await;
    let started = Instant::now();
    let shown = wa_ids(&app, &format!("/api/conversations?min_position={position}")).await;
    let waited = started.elapsed();
    assert_eq!(shown, ["34600111222"]);
    assert!(waited >= Duration::from_millis(1_900), "waited {waited:?}");
    assert!(waited < Duration::from_secs(10), "waited {waited:?}");

    // A position that is no event's, or no position at all: 400.
    for bad in ["-1", "abc", &(position + 1_000_000).to_string()] {
        let response = app
            .get(&format!("/api/conversations?min_position={bad}"))
            .await;
        assert_eq!(response.status(), 400, "{bad}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
    }
}

on_both_backends!(a_list_waits_for_the_read_models_to_reach_a_position);
