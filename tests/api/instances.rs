//! Two server instances on one database: what an instance keeps in memory (live logins,
//! agents' rights, the conversations it works on) never lets it answer from a state another
//! instance has changed — for logins and rights after at most the documented bound, for
//! conversations not even that.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::locks::{conversation_with, lock};
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery";
/// The auth cache's bound in these tests (`SWITCHBOARD_AUTH_CACHE_MS`).
const BOUND: Duration = Duration::from_millis(400);
/// Scheduling slack on a busy test machine, on top of the bound.
const SLACK: Duration = Duration::from_secs(2);

/// The first instance and a second one on its database, both with [`BOUND`].
async fn two_instances(backend: Backend) -> (TestApp, TestApp) {
    let first = TestApp::spawn_with(backend, |s| s.auth.cache_staleness = BOUND).await;
    let second = first.another_instance(|_| {}).await;
    (first, second)
}

/// An agent who may write everywhere, created through `app`; returns (id, email).
async fn writer(app: &TestApp, name: &str) -> (String, String) {
    let email = format!("{name}@example.com");
    let id = app
        .create_agent(
            json!({"email": email, "name": name, "role": "agent", "password": PASSWORD,
            "permissions": {"can_read_chats": "all", "can_write_to_chats": "all"}}),
        )
        .await;
    (id, email)
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("JSON error");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Polls `app` with `token` until it answers 401 with `code`; returns how long that took.
async fn refused_within(app: &TestApp, token: &str, code: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let response = app.get_as(token, "/api/conversations").await;
        if response.status() == 401 {
            assert_eq!(error_code(response).await, code);
            return started.elapsed();
        }
        assert_eq!(response.status(), 200);
        assert!(
            started.elapsed() < limit,
            "still honoured after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The conversation's version, once the read models caught up.
async fn version(app: &TestApp, conversation: &str) -> u64 {
    app.settle().await;
    app.get_json(&format!("/api/conversations/{conversation}"))
        .await["version"]
        .as_u64()
        .expect("version")
}

async fn a_logout_on_one_instance_ends_the_session_on_the_other_within_the_bound(backend: Backend) {
    let (first, second) = two_instances(backend).await;
    let (_, email) = writer(&first, "ada").await;
    let token = first.login(&email, PASSWORD).await;
    assert_eq!(
        second.get_as(&token, "/api/conversations").await.status(),
        200,
        "the second instance knows the login now"
    );

    let logout = first
        .send_as(&token, Method::POST, "/api/auth/logout", None)
        .await;
    assert_eq!(logout.status(), 204);

    let here = first.get_as(&token, "/api/conversations").await;
    assert_eq!(here.status(), 401, "at once where it was made");
    assert_eq!(error_code(here).await, "session_revoked");
    refused_within(&second, &token, "session_revoked", BOUND + SLACK).await;
}

async fn a_deactivation_on_one_instance_applies_on_the_other_within_the_bound(backend: Backend) {
    let (first, second) = two_instances(backend).await;
    let (id, email) = writer(&first, "bea").await;
    let token = second.login(&email, PASSWORD).await;
    assert_eq!(
        second.get_as(&token, "/api/conversations").await.status(),
        200
    );

    let deactivate = first
        .send_as(
            &first.admin_token,
            Method::POST,
            &format!("/api/agents/{id}/deactivate"),
            Some(json!({"reason": "left"})),
        )
        .await;
    assert_eq!(deactivate.status(), 204);

    let here = first.get_as(&token, "/api/conversations").await;
    assert_eq!(here.status(), 401, "at once where it was made");
    assert_eq!(error_code(here).await, "agent_deactivated");
    refused_within(&second, &token, "agent_deactivated", BOUND + SLACK).await;
}

async fn a_lock_released_on_one_instance_is_free_on_the_other_at_once(backend: Backend) {
    let (first, second) = two_instances(backend).await;
    let (_, xena) = writer(&first, "xena").await;
    let (yuri_id, yuri) = writer(&first, "yuri").await;
    let xena = first.login(&xena, PASSWORD).await;
    let yuri = second.login(&yuri, PASSWORD).await;
    let conversation = conversation_with(&first, "4930000000901").await;

    assert_eq!(lock(&first, &xena, &conversation, None).await.status(), 200);
    let refused = lock(&second, &yuri, &conversation, None).await;
    assert_eq!(
        refused.status(),
        409,
        "the second instance now holds it locked"
    );
    assert_eq!(error_code(refused).await, "conversation_locked");

    let released = first
        .send_as(
            &xena,
            Method::DELETE,
            &format!("/api/conversations/{conversation}/lock"),
            None,
        )
        .await;
    assert_eq!(released.status(), 200);
    let taken = lock(&second, &yuri, &conversation, None).await;
    assert_eq!(taken.status(), 200, "no refusal from a state it held");
    let taken: Value = taken.json().await.expect("JSON");
    assert_eq!(taken["agent_id"], yuri_id.as_str());
}

async fn a_lock_taken_on_one_instance_is_refused_on_the_other_that_saw_it_free(backend: Backend) {
    let (first, second) = two_instances(backend).await;
    let (xena_id, xena) = writer(&first, "xena").await;
    let (_, yuri) = writer(&first, "yuri").await;
    let xena = first.login(&xena, PASSWORD).await;
    let yuri = second.login(&yuri, PASSWORD).await;
    let conversation = conversation_with(&first, "4930000000902").await;
    let path = format!("/api/conversations/{conversation}/lock");
    assert_eq!(
        lock(&second, &yuri, &conversation, None).await.status(),
        200
    );
    let released = second.send_as(&yuri, Method::DELETE, &path, None).await;
    assert_eq!(released.status(), 200, "the second instance holds it free");

    assert_eq!(lock(&first, &xena, &conversation, None).await.status(), 200);
    let refused = lock(&second, &yuri, &conversation, None).await;
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "conversation_locked");
    assert_eq!(body["locked_by"], xena_id.as_str(), "{body}");
    let status = second.get_as(&yuri, &format!("{path}-status")).await;
    let status: Value = status.json().await.expect("JSON");
    assert_eq!(status["agent_id"], xena_id.as_str());
}

async fn a_version_moved_on_elsewhere_is_the_version_checked_here(backend: Backend) {
    let (first, second) = two_instances(backend).await;
    let (_, yuri) = writer(&first, "yuri").await;
    let yuri = second.login(&yuri, PASSWORD).await;
    let conversation = conversation_with(&first, "4930000000903").await;
    let path = format!("/api/conversations/{conversation}/lock");
    assert_eq!(
        lock(&second, &yuri, &conversation, None).await.status(),
        200
    );
    let released = second.send_as(&yuri, Method::DELETE, &path, None).await;
    assert_eq!(released.status(), 200);
    let held = version(&first, &conversation).await;

    // The customer writes again: a webhook processor appends, the second instance's memory of
    // the conversation is now behind.
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": "4930000000903", "profile": {"name": "again"}}],
        "messages": [{"from": "4930000000903", "id": "wamid.again903", "timestamp": "1780000100",
                      "type": "text", "text": {"body": "still there?"}}]}}]}]});
    assert_eq!(
        first
            .post_webhook(body.to_string().as_bytes())
            .await
            .status(),
        200
    );
    let current = version(&first, &conversation).await;
    assert!(current > held);

    let fresh = lock(
        &second,
        &yuri,
        &conversation,
        Some(json!({"expected_version": current})),
    )
    .await;
    assert_eq!(fresh.status(), 200, "the version of the log, not of memory");
    let renewed = lock(
        &second,
        &yuri,
        &conversation,
        Some(json!({"expected_version": current})),
    )
    .await;
    assert_eq!(renewed.status(), 409, "the lock moved the version on");
    assert_eq!(error_code(renewed).await, "conversation_changed");
}

/// The webhook processor decides on the conversations its instance holds in memory; one that
/// another instance wrote to since is stale, the append is refused, and the batch is decided
/// again on what the log holds: nothing lost, nothing applied twice.
async fn a_webhook_processor_holding_a_stale_conversation_decides_again_on_the_log(
    backend: Backend,
) {
    let first = TestApp::spawn(backend).await;
    let second = first
        .another_instance(|s| s.workers.process_webhooks = false)
        .await;
    let (_, yuri) = writer(&first, "yuri").await;
    let yuri = second.login(&yuri, PASSWORD).await;
    // Processed by the first instance, which now holds the conversation.
    let conversation = conversation_with(&first, "4930000000904").await;
    // The second one appends to it (a lock taken and released).
    assert_eq!(
        lock(&second, &yuri, &conversation, None).await.status(),
        200
    );
    let path = format!("/api/conversations/{conversation}/lock");
    let released = second.send_as(&yuri, Method::DELETE, &path, None).await;
    assert_eq!(released.status(), 200);

    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": "4930000000904", "profile": {"name": "again"}}],
        "messages": [{"from": "4930000000904", "id": "wamid.again904", "timestamp": "1780000100",
                      "type": "text", "text": {"body": "still there?"}}]}}]}]});
    let response = first.post_webhook(body.to_string().as_bytes()).await;
    assert_eq!(response.status(), 200);
    first.settle().await;

    let texts: Vec<String> = first
        .messages(&conversation)
        .await
        .iter()
        .map(|m| m["content"]["body"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(texts, ["hello", "still there?"]);
    let events = first
        .log()
        .events_of("Conversation", &[conversation.as_str()])
        .await
        .expect("events");
    let types: Vec<&str> = events.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "ConversationCustomerMessageReceived")
            .count(),
        2,
        "{types:?}"
    );
    assert_eq!(
        types.last(),
        Some(&"ConversationCustomerMessageReceived"),
        "decided after the lock's events: {types:?}"
    );
    let attempts: Vec<(String, i64)> = switchboard_store::with_pool!(&first.database, pool =>
        sqlx::query_as("select status, cast(attempts as bigint) from raw_webhooks order by id")
            .fetch_all(pool).await.expect("webhooks"));
    assert_eq!(
        attempts,
        [("processed".to_owned(), 1), ("processed".to_owned(), 1)],
        "each webhook processed at its first attempt"
    );
}

on_both_backends!(
    a_webhook_processor_holding_a_stale_conversation_decides_again_on_the_log,
    a_logout_on_one_instance_ends_the_session_on_the_other_within_the_bound,
    a_deactivation_on_one_instance_applies_on_the_other_within_the_bound,
    a_lock_released_on_one_instance_is_free_on_the_other_at_once,
    a_lock_taken_on_one_instance_is_refused_on_the_other_that_saw_it_free,
    a_version_moved_on_elsewhere_is_the_version_checked_here,
);
