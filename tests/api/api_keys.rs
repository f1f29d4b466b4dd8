//! API keys: an integration's credential acts within the rights it was given (never more than
//! its creator holds), shows in the log as itself, stops at once when revoked or expired, and
//! its secret is shown once: not in lists, not in the log.

use reqwest::Method;
use serde_json::{json, Value};
use switchboard_store::with_pool;

use crate::helpers::{fixture, Backend, TestApp};
use crate::on_both_backends;

async fn create(app: &TestApp, body: Value) -> reqwest::Response {
    app.send_as(&app.admin_token, Method::POST, "/api/api-keys", Some(body))
        .await
}

async fn keys_act_within_their_rights_and_stop_when_revoked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
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

    // A reading key: it reads, and does nothing else.
    let created = create(
        &app,
        json!({"name": "CRM sync", "permissions": {"can_read_chats": "all"}}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let reader: Value = created.json().await.expect("key");
    let secret = reader["secret"].as_str().expect("secret").to_owned();
    assert!(secret.starts_with("sbk_"));
    let listed = app.get_as(&secret, "/api/conversations").await;
    assert_eq!(listed.status(), 200);
    let tagged = app
        .send_as(
            &secret,
            Method::POST,
            &format!("/api/conversations/{conversation}/tags"),
            Some(json!({"tag": "vip"})),
        )
        .await;
    assert_eq!(tagged.status(), 403, "no write scope");
    assert_eq!(
        app.get_as(&secret, "/api/analytics/overview")
            .await
            .status(),
        403
    );
    assert_eq!(
        app.get_as(&secret, "/api/api-keys").await.status(),
        403,
        "keys are no admins"
    );

    // A writing key: what it does is in the log under its own id.
    let writer: Value = create(
        &app,
        json!({"name": "Helpdesk", "permissions":
        {"can_read_chats": "all", "can_write_to_chats": "all"}}),
    )
    .await
    .json()
    .await
    .expect("key");
    let writer_secret = writer["secret"].as_str().expect("secret");
    let sent = app
        .send_as(
            writer_secret,
            Method::POST,
            &format!("/api/conversations/{conversation}/messages"),
            Some(json!({"client_id": "from-helpdesk", "type": "text", "body": "Ticket 42 opened"})),
        )
        .await;
    assert_eq!(sent.status(), 202, "{:?}", sent.text().await);
    let actor: String = with_pool!(&app.database, pool => sqlx::query_scalar(
        "select cast(metadata as text) from events where event_type = 'MessageOutboundRequested'")
        .fetch_one(pool).await.expect("event"));
    assert!(
        actor.contains(writer["id"].as_str().expect("id")),
        "{actor}"
    );

    // The secret is shown once: not in the list, not in the log.
    app.settle().await;
    let keys = app.get_json("/api/api-keys").await.to_string();
    let hidden = &secret[secret.len() - 32..];
    assert!(!keys.contains(hidden), "the list shows the secret");
    assert!(keys.contains(reader["prefix"].as_str().expect("prefix")));
    let log: Vec<String> = with_pool!(&app.database, pool => sqlx::query_scalar(
        "select cast(payload as text) from events").fetch_all(pool).await.expect("log"));
    assert!(
        log.iter().all(|p| !p.contains(hidden)),
        "the log holds the secret"
    );

    // A wrong secret for a real key, or garbage: 401.
    let forged = format!(
        "{}{}",
        &secret[..secret.len() - 1],
        if secret.ends_with('0') { '1' } else { '0' }
    );
    assert_eq!(
        app.get_as(&forged, "/api/conversations").await.status(),
        401
    );
    assert_eq!(
        app.get_as("sbk_nonsense", "/api/conversations")
            .await
            .status(),
        401
    );

    // Revoked: refused from the next request on.
    let path = format!("/api/api-keys/{}", reader["id"].as_str().expect("id"));
    assert_eq!(
        app.send_as(&app.admin_token, Method::DELETE, &path, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.get_as(&secret, "/api/conversations").await.status(),
        401
    );

    // Expired: refused after its time.
    let brief: Value = create(
        &app,
        json!({"name": "Trial", "expires_at": "2026-05-28T21:26:40Z",
        "permissions": {"can_read_chats": "all"}}),
    )
    .await
    .json()
    .await
    .expect("key");
    let brief_secret = brief["secret"].as_str().expect("secret");
    assert_eq!(
        app.get_as(brief_secret, "/api/conversations")
            .await
            .status(),
        200
    );
    app.clock.advance_seconds(3601);
    assert_eq!(
        app.get_as(brief_secret, "/api/conversations")
            .await
            .status(),
        401
    );
}

async fn only_admins_create_keys_and_never_beyond_their_rights(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_agent(
        json!({"email": "sup@example.com", "name": "Sup", "role": "supervisor",
        "password": "a long enough password"}),
    )
    .await;
    let supervisor = app.login("sup@example.com", "a long enough password").await;
    let attempt = app
        .send_as(
            &supervisor,
            Method::POST,
            "/api/api-keys",
            Some(json!({"name": "Mine", "permissions": {"can_read_chats": "all"}})),
        )
        .await;
    assert_eq!(attempt.status(), 403);
    for (body, status) in [
        (json!({"name": "", "permissions": {}}), 422),
        (
            json!({"name": "Past", "expires_at": "2020-01-01T00:00:00Z"}),
            422,
        ),
        (
            json!({"name": "Export", "permissions": {"can_export_data": true}}),
            422,
        ),
        (json!({"name": "Odd", "scopes": ["all"]}), 422),
    ] {
        assert_eq!(create(&app, body.clone()).await.status(), status, "{body}");
    }
    assert_eq!(
        app.send_as(
            &app.admin_token,
            Method::DELETE,
            "/api/api-keys/00000000-0000-4000-8000-000000000000",
            None
        )
        .await
        .status(),
        404
    );
}

on_both_backends!(
    keys_act_within_their_rights_and_stop_when_revoked,
    only_admins_create_keys_and_never_beyond_their_rights
);
