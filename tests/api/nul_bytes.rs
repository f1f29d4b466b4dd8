//! U+0000 (NUL) in requests (issue #15, finding 3): a customer's message holding one reaches
//! the inbox as sent, on both backends; our own identifiers and names refuse it with 422; a
//! path id holding one names nothing (404).

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{fixture, Backend, TestApp};
use crate::on_both_backends;

const TEXT: &str = "before\u{0}after \u{FDD0}0 kept";

/// The text fixture with a NUL (and the store's own escape character) in its body.
fn webhook_with_nul() -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&fixture("meta/inbound_text.json")).expect("JSON");
    body["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] = json!(TEXT);
    let bytes = serde_json::to_vec(&body).expect("JSON");
    assert!(String::from_utf8_lossy(&bytes).contains("\\u0000"));
    bytes
}

async fn error_code(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.expect("JSON error");
    (
        status,
        body["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
    )
}

async fn a_customer_message_with_nul_reaches_the_inbox_as_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.post_webhook(&webhook_with_nul()).await.status(), 200);
    app.settle().await;

    let dead: Value = app.get_json("/api/webhooks/dead-letters").await;
    assert_eq!(dead["items"], json!([]), "not dead-lettered");
    let conversation = app.conversation_of("15550002222").await;
    let id = conversation["id"].as_str().expect("id").to_owned();
    let messages = app.messages(&id).await;
    assert_eq!(messages[0]["content"]["body"], TEXT, "the content, exactly");
    assert_eq!(
        conversation["last_message"]["preview"], "before\u{2400}after \u{FDD0}0 kept",
        "the preview shows the NUL as a symbol"
    );
    let log: Value = app.get_json("/api/events?after=0&limit=100").await;
    let received = log["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|e| e["data"].to_string().contains("before"))
        .expect("the message's event");
    assert!(received["data"]
        .to_string()
        .contains("before\\u0000after \u{FDD0}0 kept"));

    // A reply may carry one too (it is the customer's to receive as written).
    let reply = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/conversations/{id}/messages"),
            Some(json!({"client_id": "nul-1", "type": "text", "body": "you wrote \u{0}"})),
        )
        .await;
    assert_eq!(reply.status(), 202);
    app.settle().await;
    let messages = app.messages(&id).await;
    let sent = messages
        .iter()
        .find(|m| m["direction"] == "outbound")
        .expect("reply");
    assert_eq!(sent["content"]["body"], "you wrote \u{0}");
}

async fn a_meta_identifier_with_nul_is_unreadable_alike_on_both_backends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut body: Value = serde_json::from_slice(&fixture("meta/inbound_text.json")).expect("JSON");
    body["entry"][0]["changes"][0]["value"]["messages"][0]["id"] = json!("wamid.\u{0}");
    let body = serde_json::to_vec(&body).expect("JSON");
    assert_eq!(app.post_webhook(&body).await.status(), 200);
    app.settle().await;
    let dead: Value = app.get_json("/api/webhooks/dead-letters").await;
    let items = dead["items"].as_array().expect("items");
    assert_eq!(items.len(), 1, "{dead}");
    assert_eq!(
        items[0]["attempts"], 1,
        "refused at once, not retried: {dead}"
    );
    assert!(
        items[0].to_string().contains("message without id"),
        "{dead}"
    );
}

async fn our_own_identifiers_and_names_refuse_nul(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_text.json"))
            .await
            .status(),
        200
    );
    app.settle().await;
    let id = app.conversation_of("15550002222").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let agent = |email: &str, name: &str| json!({"email": email, "name": name, "role": "agent", "password": "correct horse battery"});
    for (case, method, path, body, code) in [
        (
            "agent name",
            Method::POST,
            "/api/agents".to_owned(),
            agent("a@example.com", "A\u{0}"),
            "invalid_input",
        ),
        (
            "email",
            Method::POST,
            "/api/agents".to_owned(),
            agent("a\u{0}@example.com", "A"),
            "invalid_input",
        ),
        (
            "group name",
            Method::POST,
            "/api/groups".to_owned(),
            json!({"name": "G\u{0}"}),
            "invalid_input",
        ),
        (
            "client id",
            Method::POST,
            format!("/api/conversations/{id}/messages"),
            json!({"client_id": "c\u{0}", "type": "text", "body": "hi"}),
            "invalid_client_id",
        ),
        (
            "status reason",
            Method::PUT,
            format!("/api/conversations/{id}/status"),
            json!({"status": "resolved", "reason": "done\u{0}"}),
            "invalid_input",
        ),
        (
            "tag",
            Method::POST,
            format!("/api/conversations/{id}/tags"),
            json!({"tag": "vip\u{0}"}),
            "invalid_input",
        ),
        (
            "template name",
            Method::POST,
            format!("/api/conversations/{id}/messages"),
            json!({"client_id": "t-1", "type": "template", "name": "hello\u{0}", "language": "en_US"}),
            "invalid_message",
        ),
        (
            "reply_to",
            Method::POST,
            format!("/api/conversations/{id}/messages"),
            json!({"client_id": "r-1", "type": "text", "body": "hi", "reply_to": "wamid.\u{0}"}),
            "invalid_message",
        ),
        (
            "button id",
            Method::POST,
            format!("/api/conversations/{id}/messages"),
            json!({"client_id": "b-1", "type": "buttons", "body": "hi", "buttons": [{"id": "a\u{0}", "title": "A"}]}),
            "invalid_message",
        ),
        (
            "login email",
            Method::POST,
            "/api/auth/login".to_owned(),
            json!({"email": "a\u{0}@example.com", "password": "correct horse battery"}),
            "invalid_input",
        ),
    ] {
        let response = app
            .send_as(&app.admin_token, method, &path, Some(body))
            .await;
        assert_eq!(error_code(response).await, (422, code.to_owned()), "{case}");
    }
    let named: Value = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/agents",
            Some(agent("a@example.com", "A\u{0}")),
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert!(
        named["error"]["message"]
            .as_str()
            .expect("message")
            .starts_with("name "),
        "{named}"
    );
    // The same requests without the NUL still work: nothing half-made was left behind.
    let created = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/agents",
            Some(agent("a@example.com", "A")),
        )
        .await;
    assert_eq!(created.status(), 201);
}

async fn path_ids_holding_nul_name_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in [
        "/api/conversations/abc%00def",
        "/api/conversations/abc%00/messages",
        "/api/messages/wamid.%00",
        "/api/agents/x%00y",
        "/api/webhooks/dead-letters/1%00",
        "/api/conversations/abc/tags/vip%00",
        "/api/conversations/%0a/lock-status",
    ] {
        let get = app.get(path).await;
        assert_eq!(
            error_code(get).await,
            (404, "not_found".to_owned()),
            "GET {path}"
        );
        let delete = app
            .send_as(&app.admin_token, Method::DELETE, path, None)
            .await;
        assert_eq!(delete.status(), 404, "DELETE {path}");
    }
    let cursor = app.get("/api/conversations?cursor=1_a%00b").await;
    assert_eq!(error_code(cursor).await, (400, "bad_request".to_owned()));
}

on_both_backends!(
    a_customer_message_with_nul_reaches_the_inbox_as_sent,
    a_meta_identifier_with_nul_is_unreadable_alike_on_both_backends,
    our_own_identifiers_and_names_refuse_nul,
    path_ids_holding_nul_name_nothing,
);
