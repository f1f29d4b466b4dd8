//! Smaller holes of issue #15, finding 7: one's own password, the shape of a 405, the bearer
//! scheme's case, logging out after the access token expired, and bounds on passwords,
//! templates, snooze times and log positions.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{fixture, Backend, TestApp};
use crate::on_both_backends;
use crate::socket_client::SocketClient;

const PASSWORD: &str = "correct horse battery";

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

async fn pair(app: &TestApp, email: &str, password: &str) -> Value {
    let response = app
        .post_public(
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(response.status(), 200, "login of {email}");
    response.json().await.expect("JSON")
}

fn access(pair: &Value) -> &str {
    pair["access_token"].as_str().expect("access token")
}

async fn an_agent_changes_their_own_password_with_the_current_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.create_agent(
        json!({"email": "gil@example.com", "name": "Gil", "role": "agent", "password": PASSWORD}),
    )
    .await;
    let here = pair(&app, "gil@example.com", PASSWORD).await;
    let elsewhere = pair(&app, "gil@example.com", PASSWORD).await;
    let change = |current: &str, new: &str| {
        app.send_as(
            access(&here),
            Method::PUT,
            "/api/auth/password",
            Some(json!({"current_password": current, "new_password": new})),
        )
    };
    assert_eq!(
        error_code(change("not my password", "a brand new password").await).await,
        (403, "wrong_password".to_owned())
    );
    assert_eq!(
        error_code(change(PASSWORD, "too short").await).await,
        (422, "weak_password".to_owned())
    );
    assert_eq!(
        error_code(change(PASSWORD, &"x".repeat(1025)).await).await,
        (422, "invalid_password".to_owned())
    );
    assert_eq!(change(PASSWORD, "a brand new password").await.status(), 204);

    // This login goes on; the other one ends, as after an admin's reset.
    assert_eq!(
        app.get_as(access(&here), "/api/conversations")
            .await
            .status(),
        200
    );
    let other = app.get_as(access(&elsewhere), "/api/conversations").await;
    assert_eq!(error_code(other).await, (401, "session_revoked".to_owned()));
    let old = app
        .post_public(
            "/api/auth/login",
            json!({"email": "gil@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(old.status(), 401);
    pair(&app, "gil@example.com", "a brand new password").await;
}

async fn a_wrong_method_gets_a_json_405(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .send_as(&app.admin_token, Method::DELETE, "/api/health", None)
        .await;
    assert_eq!(response.status(), 405);
    assert_eq!(
        response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok()),
        Some("GET,HEAD")
    );
    assert_eq!(
        error_code(response).await,
        (405, "method_not_allowed".to_owned())
    );
}

async fn the_bearer_scheme_is_case_insensitive_and_logout_takes_the_refresh_token(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, |s| {
        s.auth.access_token_ttl = std::time::Duration::from_secs(900)
    })
    .await;
    let (email, password) = app.admin.clone();
    let login = pair(&app, &email, &password).await;
    for scheme in ["bearer", "BEARER", "Bearer"] {
        let response = app
            .client
            .get(app.url("/api/conversations"))
            .header("authorization", format!("{scheme} {}", access(&login)))
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 200, "{scheme}");
    }

    // The access token expired: logging out still works with the refresh token.
    app.clock.advance_seconds(16 * 60);
    let expired = app
        .send_as(access(&login), Method::POST, "/api/auth/logout", None)
        .await;
    assert_eq!(error_code(expired).await, (401, "token_expired".to_owned()));
    let logout = app
        .post_public(
            "/api/auth/logout",
            json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_eq!(logout.status(), 204);
    let refresh = app
        .post_public(
            "/api/auth/refresh",
            json!({"refresh_token": login["refresh_token"]}),
        )
        .await;
    assert_eq!(
        error_code(refresh).await,
        (401, "session_revoked".to_owned())
    );
    let unknown = app
        .post_public("/api/auth/logout", json!({"refresh_token": "nope"}))
        .await;
    assert_eq!(
        error_code(unknown).await,
        (401, "invalid_refresh_token".to_owned())
    );
}

async fn passwords_are_bounded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let huge = "x".repeat(1025);
    let login = app
        .post_public(
            "/api/auth/login",
            json!({"email": app.admin.0, "password": huge}),
        )
        .await;
    assert_eq!(
        error_code(login).await,
        (422, "invalid_password".to_owned())
    );
    for (password, code) in [
        ("eleven char", "weak_password"),
        (huge.as_str(), "invalid_password"),
    ] {
        let response = app
            .send_as(&app.admin_token, Method::POST, "/api/agents",
                Some(json!({"email": "hal@example.com", "name": "Hal", "role": "agent", "password": password})))
            .await;
        assert_eq!(
            error_code(response).await,
            (422, code.to_owned()),
            "{}",
            password.len()
        );
    }
    let fits = "é".repeat(512); // 1,024 bytes
    app.create_agent(
        json!({"email": "hal@example.com", "name": "Hal", "role": "agent", "password": fits}),
    )
    .await;
    pair(&app, "hal@example.com", &fits).await;
}

async fn templates_snoozes_and_positions_are_bounded(backend: Backend) {
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
    let body = json!({"type": "body", "parameters": [{"type": "text", "text": "x"}]});
    let template = json!({"client_id": "t-1", "type": "template", "name": "order_update",
        "language": "en_US", "components": vec![body; 10_000]});
    let response = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/conversations/{id}/messages"),
            Some(template),
        )
        .await;
    assert_eq!(
        error_code(response).await,
        (422, "invalid_message".to_owned())
    );

    for until in [
        "+10000-01-01T00:00:00Z",
        "10000-01-01T00:00:00Z",
        "2037-05-28T20:26:40Z",
        "soon",
    ] {
        let response = app
            .send_as(
                &app.admin_token,
                Method::PUT,
                &format!("/api/conversations/{id}/status"),
                Some(json!({"status": "snoozed", "snoozed_until": until})),
            )
            .await;
        assert_eq!(
            error_code(response).await,
            (422, "invalid_snooze".to_owned()),
            "{until}"
        );
    }
    let within = app
        .send_as(
            &app.admin_token,
            Method::PUT,
            &format!("/api/conversations/{id}/status"),
            Some(json!({"status": "snoozed", "snoozed_until": "2035-05-28T20:26:40Z"})),
        )
        .await;
    assert_eq!(within.status(), 200);

    let long = "x".repeat(1001);
    for (path, method, body) in [
        (
            "status",
            Method::PUT,
            json!({"status": "open", "reason": long}),
        ),
        ("takeover", Method::POST, json!({"reason": long})),
    ] {
        let response = app
            .send_as(
                &app.admin_token,
                method,
                &format!("/api/conversations/{id}/{path}"),
                Some(body),
            )
            .await;
        let body: Value = response.json().await.expect("JSON");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("reason must be at most")),
            "{path}: {body}"
        );
    }

    let negative = app.get("/api/events?after=-1").await;
    assert_eq!(error_code(negative).await, (400, "bad_request".to_owned()));
    let refused = SocketClient::connect(
        &app.address,
        json!({"token": app.admin_token, "last_position": -1}),
    )
    .await
    .err()
    .expect("a negative position is refused at connect");
    assert!(refused.starts_with("invalid_handshake:"), "{refused}");
}

on_both_backends!(
    an_agent_changes_their_own_password_with_the_current_one,
    a_wrong_method_gets_a_json_405,
    the_bearer_scheme_is_case_insensitive_and_logout_takes_the_refresh_token,
    passwords_are_bounded,
    templates_snoozes_and_positions_are_bounded,
);
