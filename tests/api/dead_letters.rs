//! Inbound processing failures: transient ones heal by retrying with backoff; permanent ones
//! wait, visible, in the dead-letter queue until an operator fixes the cause and retries.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use switchboard_store::with_pool;

use crate::helpers::{fixture, Backend, TestApp};
use crate::on_both_backends;

async fn scalar(app: &TestApp, sql: &str) -> i64 {
    with_pool!(&app.database, pool => sqlx::query_scalar(sql).fetch_one(pool).await.expect("query"))
}

async fn wait_for(app: &TestApp, sql: &str, expected: i64) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while scalar(app, sql).await != expected {
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {sql} = {expected}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_webhook_processed_while_the_database_is_down_is_processed_after_a_retry_once(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    // The database "goes away": the event log cannot be read or written, connections drop.
    app.execute_sql("alter table events rename to events_offline")
        .await;
    app.kill_database_connections().await;
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_text.json"))
            .await
            .status(),
        200
    );
    wait_for(
        &app,
        "select count(*) from webhook_attempts where retryable = 1",
        1,
    )
    .await;
    assert_eq!(
        scalar(
            &app,
            "select count(*) from raw_webhooks where status = 'pending'"
        )
        .await,
        1
    );

    // It comes back; the retry is due one second (± jitter) later.
    app.execute_sql("alter table events_offline rename to events")
        .await;
    app.clock.advance_seconds(2);
    app.settle().await;
    assert_eq!(
        scalar(
            &app,
            "select count(*) from raw_webhooks where status = 'processed'"
        )
        .await,
        1
    );
    assert_eq!(
        scalar(
            &app,
            "select cast(max(attempts) as bigint) from raw_webhooks"
        )
        .await,
        2,
        "processed on the second attempt"
    );
    let conversation = app.conversation_of("15550002222").await;
    assert_eq!(conversation["unread_count"], 1);
    let messages = app.messages(conversation["id"].as_str().expect("id")).await;
    assert_eq!(messages.len(), 1, "processed once");
    assert_eq!(
        scalar(
            &app,
            "select count(*) from events where aggregate_type = 'Message'"
        )
        .await,
        1
    );
}

async fn persistent_failure_is_dead_lettered_after_the_last_attempt(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.execute_sql("alter table events rename to events_offline")
        .await;
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_image.json"))
            .await
            .status(),
        200
    );
    for attempts in 1..=3 {
        wait_for(&app, "select count(*) from webhook_attempts", attempts).await;
        app.clock.advance_seconds(10);
    }
    wait_for(
        &app,
        "select count(*) from raw_webhooks where status = 'failed'",
        1,
    )
    .await;
    app.execute_sql("alter table events_offline rename to events")
        .await;
    let list = app.get_json("/api/webhooks/dead-letters").await;
    let item = &list["items"][0];
    assert_eq!(item["attempts"], 3);
    assert!(item["error"]
        .as_str()
        .is_some_and(|e| e.starts_with("gave up after 3 attempts")));
    let detail = app
        .get_json(&format!("/api/webhooks/dead-letters/{}", item["id"]))
        .await;
    let history = detail["attempt_history"].as_array().expect("history");
    assert_eq!(history.len(), 3);
    assert!(history.iter().all(|a| a["retryable"] == true));

    // Retrying now that the database is back processes it once.
    let retried = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/webhooks/dead-letters/{}/retry", item["id"]),
            None,
        )
        .await;
    assert_eq!(retried.status(), 202);
    app.settle().await;
    assert_eq!(
        app.get_json("/api/webhooks/dead-letters").await["items"],
        json!([])
    );
    let conversation = app.conversation_of("15550002222").await;
    assert_eq!(
        app.messages(conversation["id"].as_str().expect("id"))
            .await
            .len(),
        1
    );
}

async fn an_unreadable_body_is_dead_lettered_at_once_and_processed_once_after_the_fix(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "110000000000001", "time": 1780000000,
        "changes": [{"field": "brand_new_field", "value": {"event": "SOMETHING_NEW", "detail": 42}}]}]})
    .to_string();
    assert_eq!(app.post_webhook(body.as_bytes()).await.status(), 200);
    app.settle().await;
    let list = app.get_json("/api/webhooks/dead-letters").await;
    let item = list["items"][0].clone();
    assert_eq!(
        item["attempts"], 1,
        "no retries for what retrying cannot fix"
    );
    assert!(item["error"]
        .as_str()
        .is_some_and(|e| e.contains("brand_new_field")));
    let detail = app
        .get_json(&format!("/api/webhooks/dead-letters/{}", item["id"]))
        .await;
    assert_eq!(detail["body"], body.as_str(), "raw body kept exactly");
    assert_eq!(detail["attempt_history"][0]["retryable"], false);

    // Retried without a fix: dead-lettered again, the history grows.
    let path = format!("/api/webhooks/dead-letters/{}/retry", item["id"]);
    assert_eq!(
        app.send_as(&app.admin_token, Method::POST, &path, None)
            .await
            .status(),
        202
    );
    app.settle().await;
    let detail = app
        .get_json(&format!("/api/webhooks/dead-letters/{}", item["id"]))
        .await;
    assert_eq!(detail["attempt_history"].as_array().map(Vec::len), Some(2));

    // The fix: the operator switches the new field on and retries.
    let app = app
        .restart(|s| s.whatsapp.extra_fields = vec!["brand_new_field".to_owned()])
        .await;
    assert_eq!(
        app.send_as(&app.admin_token, Method::POST, &path, None)
            .await
            .status(),
        202
    );
    app.settle().await;
    assert_eq!(
        app.get_json("/api/webhooks/dead-letters").await["items"],
        json!([])
    );
    let count_shown = |notifications: &Value| {
        notifications["items"].as_array().map_or(0, |items| {
            items
                .iter()
                .filter(|n| n["field"] == "brand_new_field")
                .count()
        })
    };
    assert_eq!(
        count_shown(&app.get_json("/api/account/notifications").await),
        1
    );
    // A retry of what is no longer dead, and the same delivery again, change nothing.
    assert_eq!(
        app.send_as(&app.admin_token, Method::POST, &path, None)
            .await
            .status(),
        404
    );
    assert_eq!(app.post_webhook(body.as_bytes()).await.status(), 200);
    app.settle().await;
    assert_eq!(
        count_shown(&app.get_json("/api/account/notifications").await),
        1
    );
}

async fn purge_removes_only_older_dead_letters(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.post_webhook(b"{\"old\": true").await.status(), 200);
    app.settle().await;
    app.clock.advance_seconds(2 * 86_400);
    assert_eq!(app.post_webhook(b"{\"new\": true").await.status(), 200);
    app.settle().await;
    assert_eq!(
        app.get_json("/api/webhooks/dead-letters").await["items"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let cutoff = "2026-05-29T20:26:40Z"; // a day after the first, a day before the second
    let purged = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            &format!("/api/webhooks/dead-letters?older_than={cutoff}"),
            None,
        )
        .await;
    assert_eq!(purged.status(), 200);
    assert_eq!(purged.json::<Value>().await.expect("JSON")["deleted"], 1);
    let left = app.get_json("/api/webhooks/dead-letters").await;
    let left = left["items"].as_array().expect("items");
    assert_eq!(left.len(), 1);
    let detail = app
        .get_json(&format!("/api/webhooks/dead-letters/{}", left[0]["id"]))
        .await;
    assert_eq!(detail["body"], "{\"new\": true");
    let missing = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            "/api/webhooks/dead-letters",
            None,
        )
        .await;
    assert_eq!(missing.status(), 400, "older_than is required");
}

on_both_backends!(
    a_webhook_processed_while_the_database_is_down_is_processed_after_a_retry_once,
    persistent_failure_is_dead_lettered_after_the_last_attempt,
    an_unreadable_body_is_dead_lettered_at_once_and_processed_once_after_the_fix,
    purge_removes_only_older_dead_letters,
);
