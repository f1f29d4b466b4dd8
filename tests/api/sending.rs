//! Agents' replies: stored before sending, idempotent by client id, within Meta's rules.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{fixture, Backend, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery";
/// The customer's message in `meta/inbound_text.json`.
const CUSTOMER_WAMID: &str = "wamid.HBgLMTU1NTAwMDIyMjIVAgASGBQ2NEZBQ0EyRENCQjg1NUJFREM4QwA=";

async fn open_conversation(app: &TestApp) -> String {
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_text.json"))
            .await
            .status(),
        200
    );
    app.settle().await;
    app.conversation_of("15550002222").await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn send(app: &TestApp, token: &str, conversation: &str, body: Value) -> reqwest::Response {
    app.send_as(
        token,
        Method::POST,
        &format!("/api/conversations/{conversation}/messages"),
        Some(body),
    )
    .await
}

async fn a_reply_is_queued_and_shown(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = open_conversation(&app).await;
    let response = send(&app, &app.admin_token, &conversation,
        json!({"client_id": "c-1", "type": "text", "body": "Yes, in blue too!", "reply_to": CUSTOMER_WAMID, "priority": "high"}))
        .await;
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.expect("JSON");
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["client_id"], "c-1");
    app.settle().await;
    let messages = app.messages(&conversation).await;
    let sent = messages
        .iter()
        .find(|m| m["id"] == accepted["id"])
        .expect("stored");
    assert_eq!(sent["direction"], "outbound");
    assert_eq!(sent["status"], "queued");
    assert_eq!(sent["type"], "text");
    assert_eq!(sent["content"]["body"], "Yes, in blue too!");
    assert_eq!(sent["priority"], "high");
    assert_eq!(sent["context"]["id"], CUSTOMER_WAMID);
    let view = app.conversation_of("15550002222").await;
    assert_eq!(view["last_message"]["preview"], "Yes, in blue too!");
    assert_eq!(view["last_message"]["direction"], "outbound");
}

async fn the_same_client_id_sends_once_even_concurrently(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = open_conversation(&app).await;
    let body = json!({"client_id": "double-click", "type": "text", "body": "Once"});
    let responses =
        join_all((0..6).map(|_| send(&app, &app.admin_token, &conversation, body.clone()))).await;
    let mut ids = Vec::new();
    for response in responses {
        assert_eq!(response.status(), 202);
        ids.push(response.json::<Value>().await.expect("JSON")["id"].clone());
    }
    assert!(
        ids.windows(2).all(|w| w[0] == w[1]),
        "the same answer every time"
    );
    let again = send(&app, &app.admin_token, &conversation, body).await;
    assert_eq!(again.json::<Value>().await.expect("JSON")["id"], ids[0]);
    app.settle().await;
    let outbound = app
        .messages(&conversation)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outbound")
        .count();
    assert_eq!(outbound, 1);
    let events: i64 = switchboard_store::with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from events where event_type = 'MessageOutboundRequested'").fetch_one(pool).await.expect("count"));
    assert_eq!(events, 1);
}

async fn outside_the_window_only_templates_are_accepted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = open_conversation(&app).await;
    app.clock.advance_seconds(24 * 3600);
    let free_form = send(
        &app,
        &app.admin_token,
        &conversation,
        json!({"client_id": "late", "type": "text", "body": "Hello?"}),
    )
    .await;
    assert_eq!(free_form.status(), 422);
    assert_eq!(
        free_form.json::<Value>().await.expect("JSON")["error"]["code"],
        "window_closed"
    );
    app.approve_template("order_shipped", "en_US").await;
    let template = send(&app, &app.admin_token, &conversation,
        json!({"client_id": "tpl", "type": "template", "name": "order_shipped", "language": "en_US",
               "components": [{"type": "body", "parameters": [{"type": "text", "text": "Sheena"}]}]}))
        .await;
    assert_eq!(template.status(), 202);
}

async fn bad_messages_get_a_clear_422(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = open_conversation(&app).await;
    let cases = [
        (
            json!({"client_id": "a", "type": "buttons", "body": "Pick", "buttons": [
            {"id": "1", "title": "A"}, {"id": "2", "title": "B"}, {"id": "3", "title": "C"}, {"id": "4", "title": "D"}]}),
            "buttons",
        ),
        (
            json!({"client_id": "b", "type": "buttons", "body": "Pick", "buttons": [{"id": "1", "title": "This title is far too long"}]}),
            "buttons[0].title",
        ),
        (
            json!({"client_id": "c", "type": "list", "body": "Pick", "button": "Options", "sections": [
            {"title": "A", "rows": (0..11).map(|i| json!({"id": format!("r{i}"), "title": "Row"})).collect::<Vec<_>>()}]}),
            "sections",
        ),
        (
            json!({"client_id": "d", "type": "image", "link": "http://insecure.example.com/a.jpg"}),
            "link",
        ),
        (
            json!({"client_id": "e", "type": "text", "body": ""}),
            "body",
        ),
        (
            json!({"client_id": "f", "type": "template", "name": "Has Spaces", "language": "en"}),
            "name",
        ),
    ];
    for (body, field) in cases {
        let response = send(&app, &app.admin_token, &conversation, body).await;
        assert_eq!(response.status(), 422, "{field}");
        let error: Value = response.json().await.expect("JSON");
        assert_eq!(error["error"]["code"], "invalid_message", "{field}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with(field)),
            "{field}: {error}"
        );
    }
    let unknown = send(
        &app,
        &app.admin_token,
        &conversation,
        json!({"client_id": "g", "type": "hologram"}),
    )
    .await;
    assert_eq!(unknown.status(), 422);
    let missing_id = send(
        &app,
        &app.admin_token,
        &conversation,
        json!({"type": "text", "body": "x"}),
    )
    .await;
    assert_eq!(missing_id.status(), 422);
}

async fn sending_respects_scope_and_locks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = open_conversation(&app).await;
    app.create_agent(
        json!({"email": "ann@example.com", "name": "Ann", "role": "agent", "password": PASSWORD,
        "permissions": {"can_read_chats": "assigned", "can_write_to_chats": "assigned"}}),
    )
    .await;
    let ann = app.login("ann@example.com", PASSWORD).await;
    let body = json!({"client_id": "x", "type": "text", "body": "Hi"});
    assert_eq!(
        send(&app, &ann, &conversation, body.clone()).await.status(),
        404,
        "out of scope"
    );
    app.create_agent(json!({"email": "ben@example.com", "name": "Ben", "role": "supervisor", "password": PASSWORD}))
        .await;
    let ben = app.login("ben@example.com", PASSWORD).await;
    let lock = app
        .send_as(
            &ben,
            Method::POST,
            &format!("/api/conversations/{conversation}/lock"),
            None,
        )
        .await;
    assert_eq!(lock.status(), 200);
    let blocked = send(&app, &app.admin_token, &conversation, body.clone()).await;
    assert_eq!(blocked.status(), 409);
    assert_eq!(
        blocked.json::<Value>().await.expect("JSON")["error"]["code"],
        "conversation_locked"
    );
    assert_eq!(
        send(&app, &ben, &conversation, body).await.status(),
        202,
        "the holder sends"
    );
}

on_both_backends!(
    a_reply_is_queued_and_shown,
    the_same_client_id_sends_once_even_concurrently,
    outside_the_window_only_templates_are_accepted,
    bad_messages_get_a_clear_422,
    sending_respects_scope_and_locks,
);
