//! Sessions over HTTP: login, refresh rotation with reuse detection, logout, validation, and
//! every way a token is refused.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery";

async fn login_pair(app: &TestApp, email: &str, password: &str) -> Value {
    let response = app
        .post_public(
            "/api/auth/login",
            json!({"email": email, "password": password}),
        )
        .await;
    assert_eq!(response.status(), 200, "login");
    response.json().await.expect("JSON")
}

async fn refresh(app: &TestApp, refresh_token: &Value) -> reqwest::Response {
    app.post_public("/api/auth/refresh", json!({"refresh_token": refresh_token}))
        .await
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = response.json().await.expect("JSON error");
    body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// The app with the production access-token lifetime (15 minutes).
async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        s.auth.access_token_ttl = std::time::Duration::from_secs(900)
    })
    .await
}

async fn login_rotation_reuse_logout_and_validate(backend: Backend) {
    let app = spawn(backend).await;
    let (email, password) = app.admin.clone();
    let first = login_pair(&app, &email, &password).await;
    assert_eq!(first["token_type"], "Bearer");
    assert_eq!(first["expires_in"], 900);
    assert_eq!(first["agent"]["email"], email.as_str());
    assert_eq!(first["agent"]["role"], "admin");
    assert!(first["refresh_expires_in"]
        .as_u64()
        .is_some_and(|s| s > 86_400));

    let valid: Value = app
        .send_as(
            first["access_token"].as_str().expect("token"),
            Method::POST,
            "/api/auth/session/validate",
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(valid["valid"], true);
    assert_eq!(valid["agent"]["email"], email.as_str());
    assert!(valid["expires_at"].is_string());

    // Rotation: a new pair, and the new access token works.
    let response = refresh(&app, &first["refresh_token"]).await;
    assert_eq!(response.status(), 200);
    let second: Value = response.json().await.expect("JSON");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let second_access = second["access_token"].as_str().expect("token").to_owned();
    assert_eq!(
        app.get_as(&second_access, "/api/conversations")
            .await
            .status(),
        200
    );

    // The rotated token presented again, after the grace period: the whole family dies.
    app.clock.advance_seconds(30);
    let reused = refresh(&app, &first["refresh_token"]).await;
    assert_eq!(reused.status(), 401);
    assert_eq!(error_code(reused).await, "refresh_token_reused");
    let newest = refresh(&app, &second["refresh_token"]).await;
    assert_eq!(newest.status(), 401, "the newest refresh token dies too");
    assert_eq!(error_code(newest).await, "session_revoked");
    let access = app.get_as(&second_access, "/api/conversations").await;
    assert_eq!(access.status(), 401, "and so do its access tokens");
    assert_eq!(error_code(access).await, "session_revoked");

    // Logout ends another login the same way.
    let third = login_pair(&app, &email, &password).await;
    let third_access = third["access_token"].as_str().expect("token").to_owned();
    let logout = app
        .send_as(&third_access, Method::POST, "/api/auth/logout", None)
        .await;
    assert_eq!(logout.status(), 204);
    assert_eq!(
        app.get_as(&third_access, "/api/conversations")
            .await
            .status(),
        401
    );
    assert_eq!(refresh(&app, &third["refresh_token"]).await.status(), 401);
    let after: Value = app
        .send_as(
            &third_access,
            Method::POST,
            "/api/auth/session/validate",
            None,
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(after["valid"], false);
    assert_eq!(after["reason"], "session_revoked");
}

async fn two_tabs_refreshing_at_once_both_stay_logged_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (email, password) = app.admin.clone();
    let pair = login_pair(&app, &email, &password).await;
    let (a, b) = tokio::join!(
        refresh(&app, &pair["refresh_token"]),
        refresh(&app, &pair["refresh_token"])
    );
    assert_eq!(a.status(), 200);
    assert_eq!(b.status(), 200);
    let a: Value = a.json().await.expect("JSON");
    let b: Value = b.json().await.expect("JSON");
    for pair in [&a, &b] {
        let access = pair["access_token"].as_str().expect("token");
        assert_eq!(app.get_as(access, "/api/conversations").await.status(), 200);
    }
}

async fn bad_tokens_are_refused_with_a_reason(backend: Backend) {
    let app = spawn(backend).await;
    let agent_id = app
        .create_agent(json!({"email": "eve@example.com", "name": "Eve", "role": "agent", "password": PASSWORD}))
        .await;
    let eve = app.login("eve@example.com", PASSWORD).await;
    assert_eq!(app.get_as(&eve, "/api/conversations").await.status(), 200);

    // Signed with another key, and the same claims with `alg: none`.
    let other_keys =
        switchboard::auth::JwtKeys::new(&"another-secret-another-secret-0123456789".into());
    let (forged, _) = other_keys
        .issue(
            &agent_id,
            "family",
            switchboard::clock::Clock::now(&app.clock),
            900,
        )
        .expect("signed");
    let payload = eve.split('.').nth(1).expect("payload");
    let alg_none = format!("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.{payload}.");
    for (case, token, code) in [
        ("bad signature", forged.as_str(), "invalid_token"),
        ("alg none", alg_none.as_str(), "invalid_token"),
        ("garbage", "not-a-jwt", "invalid_token"),
    ] {
        let response = app.get_as(token, "/api/conversations").await;
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(error_code(response).await, code, "{case}");
    }
    for (case, header) in [
        ("no scheme", eve.clone()),
        ("wrong scheme", format!("Token {eve}")),
        ("empty", "Bearer ".to_owned()),
    ] {
        let response = app
            .client
            .get(app.url("/api/conversations"))
            .header("authorization", header)
            .send()
            .await
            .expect("sent");
        assert_eq!(response.status(), 401, "{case}");
        assert_eq!(error_code(response).await, "invalid_token", "{case}");
    }
    let missing = app
        .client
        .get(app.url("/api/conversations"))
        .send()
        .await
        .expect("sent");
    assert_eq!(missing.status(), 401);
    assert_eq!(error_code(missing).await, "missing_token");
    assert_eq!(
        app.client
            .get(app.url("/api/health"))
            .send()
            .await
            .expect("sent")
            .status(),
        200
    );

    // Expired: 15 minutes later.
    app.clock.advance_seconds(15 * 60);
    let expired = app.get_as(&eve, "/api/conversations").await;
    assert_eq!(expired.status(), 401);
    assert_eq!(error_code(expired).await, "token_expired");

    // Deactivated: a fresh token stops working at once.
    let eve = app.login("eve@example.com", PASSWORD).await;
    let admin = app.login(&app.admin.0, &app.admin.1).await;
    let deactivate = app
        .send_as(
            &admin,
            Method::POST,
            &format!("/api/agents/{agent_id}/deactivate"),
            Some(json!({"reason": "left"})),
        )
        .await;
    assert_eq!(deactivate.status(), 204);
    let refused = app.get_as(&eve, "/api/conversations").await;
    assert_eq!(refused.status(), 401);
    assert_eq!(error_code(refused).await, "agent_deactivated");
    let relogin = app
        .post_public(
            "/api/auth/login",
            json!({"email": "eve@example.com", "password": PASSWORD}),
        )
        .await;
    assert_eq!(relogin.status(), 401);
}

async fn login_failures_look_the_same_and_are_rate_limited(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.auth.login_attempts_per_account = 3).await;
    let wrong_password = app
        .post_public(
            "/api/auth/login",
            json!({"email": app.admin.0, "password": "wrong password!"}),
        )
        .await;
    let no_such_agent = app
        .post_public(
            "/api/auth/login",
            json!({"email": "nobody@example.com", "password": "wrong password!"}),
        )
        .await;
    assert_eq!(wrong_password.status(), 401);
    assert_eq!(no_such_agent.status(), 401);
    let a: Value = wrong_password.json().await.expect("JSON");
    let b: Value = no_such_agent.json().await.expect("JSON");
    assert_eq!(a, b, "same answer whether or not the email exists");

    let mut limited = None;
    for _ in 0..5 {
        let response = app
            .post_public(
                "/api/auth/login",
                json!({"email": app.admin.0, "password": "wrong password!"}),
            )
            .await;
        if response.status() == 429 {
            limited = Some(response);
            break;
        }
    }
    let limited = limited.expect("rate limited after a few attempts");
    let retry_after: u64 = limited
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!(retry_after >= 1);
    assert_eq!(error_code(limited).await, "rate_limited");
}

async fn a_password_change_ends_the_other_sessions(backend: Backend) {
    let app = spawn(backend).await;
    let frank = app
        .create_agent(json!({"email": "frank@example.com", "name": "Frank", "role": "agent", "password": PASSWORD}))
        .await;
    let phone = login_pair(&app, "frank@example.com", PASSWORD).await;
    let laptop = login_pair(&app, "frank@example.com", PASSWORD).await;
    // A password an admin chose is one to change.
    assert_eq!(phone["agent"]["password_change_required"], true);
    let changed = app
        .send_as(
            &app.admin_token,
            Method::PATCH,
            &format!("/api/agents/{frank}"),
            Some(json!({"password": "a brand new password"})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    for session in [&phone, &laptop] {
        let response = app
            .get_as(
                session["access_token"].as_str().expect("token"),
                "/api/conversations",
            )
            .await;
        assert_eq!(response.status(), 401);
        assert_eq!(error_code(response).await, "session_revoked");
        assert_eq!(refresh(&app, &session["refresh_token"]).await.status(), 401);
    }
    let frank_again = login_pair(&app, "frank@example.com", "a brand new password").await;
    assert_eq!(frank_again["agent"]["password_change_required"], true);
    let own = app
        .send_as(
            frank_again["access_token"].as_str().expect("token"),
            Method::PUT,
            "/api/auth/password",
            Some(json!({"current_password": "a brand new password", "new_password": "frank's own password"})),
        )
        .await;
    assert_eq!(own.status(), 204);
    let frank_own = login_pair(&app, "frank@example.com", "frank's own password").await;
    assert_eq!(frank_own["agent"]["password_change_required"], false);

    // Changing one's own password keeps the session it is changed from, and only that one.
    // The first admin's generated password is one-time until then.
    let (email, password) = app.admin.clone();
    let here = login_pair(&app, &email, &password).await;
    assert_eq!(here["agent"]["password_change_required"], true, "{here}");
    let elsewhere = login_pair(&app, &email, &password).await;
    let me = here["agent"]["id"].as_str().expect("id").to_owned();
    let token = here["access_token"].as_str().expect("token");
    let changed = app
        .send_as(
            token,
            Method::PATCH,
            &format!("/api/agents/{me}"),
            Some(json!({"password": "the admin's new password"})),
        )
        .await;
    assert_eq!(changed.status(), 200);
    assert_eq!(app.get_as(token, "/api/conversations").await.status(), 200);
    let response = app
        .get_as(
            elsewhere["access_token"].as_str().expect("token"),
            "/api/conversations",
        )
        .await;
    assert_eq!(response.status(), 401);
    assert_eq!(
        login_pair(&app, &email, "the admin's new password").await["agent"]
            ["password_change_required"],
        false
    );
}

on_both_backends!(
    a_password_change_ends_the_other_sessions,
    login_rotation_reuse_logout_and_validate,
    two_tabs_refreshing_at_once_both_stay_logged_in,
    bad_tokens_are_refused_with_a_reason,
    login_failures_look_the_same_and_are_rate_limited,
);
