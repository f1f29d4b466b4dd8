//! Agent management cannot be turned into privilege escalation: nobody grants a role,
//! permission or group they do not hold, only admins manage admins, one's own groups and
//! working hours are rights like the others, the last active admin stays, and concurrent
//! changes of different fields all hold. Each case replays the request found by probing.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::evolution::admin_id;
use crate::helpers::{Backend, TestApp};
use crate::locks::conversation_with;
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery";

async fn patch(app: &TestApp, token: &str, id: &str, body: Value) -> reqwest::Response {
    app.send_as(
        token,
        Method::PATCH,
        &format!("/api/agents/{id}"),
        Some(body),
    )
    .await
}

async fn expect_error(response: reqwest::Response, status: u16, code: &str) {
    let actual = response.status().as_u16();
    let url = response.url().to_string();
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(actual, status, "{url}: {body}");
    assert_eq!(body["error"]["code"], code, "{body}");
}

async fn group(app: &TestApp, name: &str) -> String {
    let response = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/groups",
            Some(json!({"name": name})),
        )
        .await;
    assert_eq!(response.status(), 201);
    response.json::<Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// An agent-role manager (in `sales`), as the probe had: `can_manage_agents` and nothing more.
async fn narrow_manager(app: &TestApp, sales: &str) -> (String, String) {
    let id = app
        .create_agent(
            json!({"email": "mallory@example.com", "name": "Mallory", "role": "agent",
            "password": PASSWORD, "groups": [sales],
            "permissions": {"can_manage_agents": true},
            "working_hours": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                              "start": "00:00", "end": "23:59", "timezone": "UTC"}}),
        )
        .await;
    (id, app.login("mallory@example.com", PASSWORD).await)
}

async fn an_agent_with_can_manage_agents_cannot_escalate(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sales = group(&app, "Sales").await;
    let billing = group(&app, "Billing").await;
    let (mallory_id, mallory) = narrow_manager(&app, &sales).await;
    let admin = admin_id(&app).await;

    // Creating an admin, or a supervisor (a role above her own).
    for role in ["admin", "supervisor"] {
        let body = json!({"email": format!("{role}2@example.com"), "name": "X", "role": role, "password": PASSWORD});
        let created = app
            .send_as(&mallory, Method::POST, "/api/agents", Some(body))
            .await;
        expect_error(created, 403, "forbidden").await;
    }
    assert_eq!(
        app.post_public(
            "/api/auth/login",
            json!({"email": "admin2@example.com", "password": PASSWORD})
        )
        .await
        .status(),
        401,
        "no admin was made"
    );
    // Granting permissions she does not hold.
    let body = json!({"email": "eve@example.com", "name": "Eve", "role": "agent", "password": PASSWORD,
        "permissions": {"can_manage_templates": true}});
    let created = app
        .send_as(&mallory, Method::POST, "/api/agents", Some(body))
        .await;
    expect_error(created, 403, "forbidden").await;
    let body = json!({"email": "eve@example.com", "name": "Eve", "role": "agent", "password": PASSWORD,
        "permissions": {"can_read_chats": "all"}});
    let created = app
        .send_as(&mallory, Method::POST, "/api/agents", Some(body))
        .await;
    expect_error(created, 403, "forbidden").await;
    // Into a group she is not in.
    let body = json!({"email": "eve@example.com", "name": "Eve", "role": "agent", "password": PASSWORD,
        "groups": [billing]});
    let created = app
        .send_as(&mallory, Method::POST, "/api/agents", Some(body))
        .await;
    expect_error(created, 403, "forbidden").await;
    // Within what she holds: fine.
    let body = json!({"email": "eve@example.com", "name": "Eve", "role": "agent", "password": PASSWORD,
        "groups": [sales]});
    assert_eq!(
        app.send_as(&mallory, Method::POST, "/api/agents", Some(body))
            .await
            .status(),
        201
    );

    // Taking over, deactivating or demoting the admin.
    let takeover = patch(
        &app,
        &mallory,
        &admin,
        json!({"password": "mallory owns this now"}),
    )
    .await;
    expect_error(takeover, 403, "forbidden").await;
    assert_eq!(
        app.post_public(
            "/api/auth/login",
            json!({"email": app.admin.0, "password": app.admin.1})
        )
        .await
        .status(),
        200,
        "the admin's password still works"
    );
    assert_eq!(
        app.get("/api/agents").await.status(),
        200,
        "the admin's session lives"
    );
    let deactivated = app
        .send_as(
            &mallory,
            Method::POST,
            &format!("/api/agents/{admin}/deactivate"),
            None,
        )
        .await;
    expect_error(deactivated, 403, "forbidden").await;
    expect_error(
        patch(&app, &mallory, &admin, json!({"role": "agent"})).await,
        403,
        "forbidden",
    )
    .await;
    expect_error(
        patch(&app, &mallory, &admin, json!({"name": "Pwned"})).await,
        403,
        "forbidden",
    )
    .await;

    // Widening her own access: groups and working hours are rights too.
    let conversation = conversation_with(&app, "4930000800").await;
    let assigned = app
        .send_as(
            &app.admin_token,
            Method::PUT,
            &format!("/api/conversations/{conversation}/assignment"),
            Some(json!({"group_id": billing})),
        )
        .await;
    assert_eq!(assigned.status(), 200);
    app.settle().await;
    let own_groups = patch(
        &app,
        &mallory,
        &mallory_id,
        json!({"groups": [sales, billing]}),
    )
    .await;
    expect_error(own_groups, 422, "own_rights").await;
    assert_eq!(
        app.get_as(&mallory, &format!("/api/conversations/{conversation}"))
            .await
            .status(),
        404,
        "the billing conversation stays out of her sight"
    );
    let own_hours = patch(&app, &mallory, &mallory_id, json!({"working_hours": null})).await;
    expect_error(own_hours, 422, "own_rights").await;
    let own_rights = patch(
        &app,
        &mallory,
        &mallory_id,
        json!({"permissions": {"can_read_chats": "all"}}),
    )
    .await;
    expect_error(own_rights, 422, "own_rights").await;
}

async fn the_last_active_admin_is_never_demoted_or_deactivated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = admin_id(&app).await;
    let second = app
        .create_agent(json!({"email": "root2@example.com", "name": "Root Two", "role": "admin", "password": PASSWORD}))
        .await;
    let second_token = app.login("root2@example.com", PASSWORD).await;
    app.settle().await;
    // Two admins demoting each other at once, again and again: never both.
    for round in 0..10 {
        let (a, b) = tokio::join!(
            patch(
                &app,
                &app.admin_token,
                &second,
                json!({"role": "supervisor"})
            ),
            patch(&app, &second_token, &first, json!({"role": "supervisor"})),
        );
        let (a, b) = (a.status().as_u16(), b.status().as_u16());
        assert!(
            !(a == 200 && b == 200),
            "round {round}: both admins demoted"
        );
        app.settle().await;
        // Whoever is still an admin makes the other one admin again.
        let (token, other) = if a == 200 {
            (&app.admin_token, &second)
        } else {
            (&second_token, &first)
        };
        assert_eq!(
            patch(&app, token, other, json!({"role": "admin"}))
                .await
                .status(),
            200,
            "round {round}"
        );
        app.settle().await;
    }
    // Deactivating one leaves the other as the last: it cannot go.
    let deactivated = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/agents/{second}/deactivate"),
            None,
        )
        .await;
    let status = deactivated.status();
    assert_eq!(
        status,
        204,
        "{}",
        deactivated.text().await.unwrap_or_default()
    );
    app.settle().await;
    let agents = app.get_json("/api/agents").await;
    let admins = agents
        .as_array()
        .expect("agents")
        .iter()
        .filter(|a| a["role"] == "admin" && a["active"] == true)
        .count();
    assert_eq!(admins, 1);
    let reactivated = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/agents/{second}/reactivate"),
            None,
        )
        .await;
    assert_eq!(reactivated.status(), 204);
}

async fn concurrent_changes_of_different_fields_all_hold(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let id = app
        .create_agent(json!({"email": "grace@example.com", "name": "Grace", "role": "agent", "password": PASSWORD}))
        .await;
    for round in 0..10 {
        let name = format!("Grace {round}");
        let tags = round % 2 == 1;
        let analytics = round % 2 == 0;
        let changes = [
            json!({"name": name}),
            json!({"permissions": {"can_use_tags": tags}}),
            json!({"permissions": {"can_view_analytics": analytics}}),
        ];
        let responses = join_all(
            changes
                .iter()
                .map(|body| patch(&app, &app.admin_token, &id, body.clone())),
        )
        .await;
        assert!(responses.iter().all(|r| r.status() == 200), "round {round}");
        app.settle().await;
        let grace = app.get_json(&format!("/api/agents/{id}")).await;
        assert_eq!(grace["name"], name.as_str(), "round {round}: {grace}");
        assert_eq!(
            grace["permissions"]["can_use_tags"], tags,
            "round {round}: {grace}"
        );
        assert_eq!(
            grace["permissions"]["can_view_analytics"], analytics,
            "round {round}: {grace}"
        );
    }
    // A stale version is a conflict, not a silent overwrite.
    let stale = patch(
        &app,
        &app.admin_token,
        &id,
        json!({"name": "Old", "expected_version": 1}),
    )
    .await;
    expect_error(stale, 409, "agent_changed").await;
}

async fn the_event_stream_needs_read_scope_all(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Export without seeing every conversation is refused when granted.
    let body = json!({"email": "ivy@example.com", "name": "Ivy", "role": "agent", "password": PASSWORD,
        "permissions": {"can_read_chats": "none", "can_export_data": true}});
    let created = app
        .send_as(&app.admin_token, Method::POST, "/api/agents", Some(body))
        .await;
    expect_error(created, 422, "invalid_permissions").await;
    let id = app
        .create_agent(
            json!({"email": "ivy@example.com", "name": "Ivy", "role": "agent", "password": PASSWORD,
            "permissions": {"can_read_chats": "none"}}),
        )
        .await;
    let granted = patch(
        &app,
        &app.admin_token,
        &id,
        json!({"permissions": {"can_export_data": true}}),
    )
    .await;
    expect_error(granted, 422, "invalid_permissions").await;
    let ivy = app.login("ivy@example.com", PASSWORD).await;
    conversation_with(&app, "4930000900").await;
    for path in ["/api/events", "/api/events/stream"] {
        assert_eq!(app.get_as(&ivy, path).await.status(), 403, "{path}");
    }
    // With read scope all it is granted, and the stream answers.
    let granted = patch(
        &app,
        &app.admin_token,
        &id,
        json!({"permissions": {"can_export_data": true, "can_read_chats": "all"}}),
    )
    .await;
    assert_eq!(granted.status(), 200);
    assert_eq!(app.get_as(&ivy, "/api/events").await.status(), 200);
}

on_both_backends!(
    an_agent_with_can_manage_agents_cannot_escalate,
    the_last_active_admin_is_never_demoted_or_deactivated,
    concurrent_changes_of_different_fields_all_hold,
    the_event_stream_needs_read_scope_all,
);
