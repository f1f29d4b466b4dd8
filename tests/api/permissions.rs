//! Read and write scopes enforced in every query, and working hours.

use reqwest::Method;
use serde_json::{json, Value};
use switchboard_domain::Timestamp;

use crate::helpers::{fixture, Backend, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery";

async fn conversation_ids(app: &TestApp, token: &str) -> Vec<String> {
    let response = app.get_as(token, "/api/conversations").await;
    assert_eq!(response.status(), 200);
    let page: Value = response.json().await.expect("JSON");
    page["items"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect()
}

async fn assign(
    app: &TestApp,
    token: &str,
    conversation: &str,
    body: Value,
) -> reqwest::StatusCode {
    app.send_as(
        token,
        Method::PUT,
        &format!("/api/conversations/{conversation}/assignment"),
        Some(body),
    )
    .await
    .status()
}

async fn scopes_hide_and_protect_conversations_of_others(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token.clone();
    let created = app
        .send_as(
            &admin,
            Method::POST,
            "/api/groups",
            Some(json!({"name": "Billing"})),
        )
        .await;
    assert_eq!(created.status(), 201);
    let billing = created.json::<Value>().await.expect("JSON")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let alice = app
        .create_agent(json!({"email": "alice@example.com", "name": "Alice", "role": "agent", "password": PASSWORD,
            "permissions": {"can_read_chats": "assigned", "can_write_to_chats": "assigned"}}))
        .await;
    app.create_agent(
        json!({"email": "bob@example.com", "name": "Bob", "role": "agent", "password": PASSWORD,
        "permissions": {"can_read_chats": "assigned", "can_write_to_chats": "assigned"}}),
    )
    .await;
    app.create_agent(json!({"email": "carol@example.com", "name": "Carol", "role": "agent", "password": PASSWORD,
        "groups": [billing], "permissions": {"can_read_chats": "group", "can_write_to_chats": "group"}}))
        .await;

    for name in ["inbound_text.json", "inbound_audio_voice.json"] {
        assert_eq!(
            app.post_webhook(&fixture(&format!("meta/{name}")))
                .await
                .status(),
            200
        );
    }
    app.settle().await;
    let sheena = app.conversation_of("15550002222").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let marco = app.conversation_of("15550003333").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        assign(
            &app,
            &admin,
            &sheena,
            json!({"agent_id": alice, "reason": "VIP"})
        )
        .await,
        200
    );
    assert_eq!(
        assign(&app, &admin, &marco, json!({"group_id": billing})).await,
        200
    );
    app.settle().await;

    let alice_token = app.login("alice@example.com", PASSWORD).await;
    let bob_token = app.login("bob@example.com", PASSWORD).await;
    let carol_token = app.login("carol@example.com", PASSWORD).await;

    // Alice sees hers only; Marco's conversation does not exist for her.
    assert_eq!(
        conversation_ids(&app, &alice_token).await,
        vec![sheena.clone()]
    );
    for path in [
        format!("/api/conversations/{marco}"),
        format!("/api/conversations/{marco}/messages"),
        "/api/messages/wamid.HBgLMTU1NTAwMDMzMzMVAgASGBQ1RUVBNUNBMDBFQjU1OTkyM0IxMgA=".to_owned(),
    ] {
        assert_eq!(
            app.get_as(&alice_token, &path).await.status(),
            404,
            "alice: {path}"
        );
    }
    assert_eq!(
        assign(&app, &alice_token, &marco, json!({"agent_id": alice})).await,
        404,
        "alice cannot grab it"
    );
    assert_eq!(
        app.get_as(
            &alice_token,
            &format!("/api/conversations/{sheena}/messages")
        )
        .await
        .status(),
        200
    );

    // Bob has nothing assigned: an empty inbox, and no access by id.
    assert!(conversation_ids(&app, &bob_token).await.is_empty());
    assert_eq!(
        app.get_as(&bob_token, &format!("/api/conversations/{sheena}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        assign(&app, &bob_token, &sheena, json!({"agent_id": alice})).await,
        404
    );

    // Carol sees her group's conversation, and may write to it.
    assert_eq!(
        conversation_ids(&app, &carol_token).await,
        vec![marco.clone()]
    );
    assert_eq!(
        app.get_as(&carol_token, &format!("/api/conversations/{sheena}"))
            .await
            .status(),
        404
    );
    assert_eq!(
        assign(
            &app,
            &carol_token,
            &marco,
            json!({"group_id": billing, "agent_id": null})
        )
        .await,
        200
    );

    // Admin-only and manager-only routes.
    assert_eq!(app.get_as(&alice_token, "/api/agents").await.status(), 403);
    assert_eq!(
        app.get_as(&alice_token, "/api/webhooks/dead-letters")
            .await
            .status(),
        403
    );
    assert_eq!(app.get_as(&admin, "/api/agents").await.status(), 200);
}

async fn writes_are_refused_outside_working_hours_in_the_agents_time_zone(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token.clone();
    app.create_agent(json!({"email": "dave@example.com", "name": "Dave", "role": "supervisor", "password": PASSWORD,
        "working_hours": {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00",
                          "timezone": "America/New_York"}}))
        .await;
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
    let dave_id = app
        .get_json("/api/agents")
        .await
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["email"] == "dave@example.com")
        .expect("dave")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        assign(&app, &admin, &conversation, json!({"agent_id": dave_id})).await,
        200
    );

    // Monday 2026-06-01 12:30 UTC is 08:30 in New York: reading yes, writing no.
    let at = |rfc3339: &str| {
        Timestamp::new(
            chrono::DateTime::parse_from_rfc3339(rfc3339)
                .expect("time")
                .into(),
        )
    };
    app.clock.set(at("2026-06-01T12:30:00Z"));
    let dave = app.login("dave@example.com", PASSWORD).await;
    assert_eq!(
        app.get_as(&dave, &format!("/api/conversations/{conversation}"))
            .await
            .status(),
        200
    );
    let refused = app
        .send_as(
            &dave,
            Method::DELETE,
            &format!("/api/conversations/{conversation}/assignment"),
            None,
        )
        .await;
    assert_eq!(refused.status(), 403);
    assert_eq!(
        refused.json::<Value>().await.expect("JSON")["error"]["code"],
        "outside_working_hours"
    );

    // 13:30 UTC is 09:30 in New York: on duty.
    app.clock.set(at("2026-06-01T13:30:00Z"));
    let dave = app.login("dave@example.com", PASSWORD).await;
    let allowed = app
        .send_as(
            &dave,
            Method::DELETE,
            &format!("/api/conversations/{conversation}/assignment"),
            None,
        )
        .await;
    assert_eq!(allowed.status(), 200);
}

async fn agents_are_managed_through_the_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.admin_token.clone();
    let id = app
        .create_agent(json!({"email": "Frank@Example.com", "name": "Frank", "role": "agent", "password": PASSWORD}))
        .await;
    let duplicate = app
        .send_as(&admin, Method::POST, "/api/agents",
            Some(json!({"email": "frank@example.com", "name": "F", "role": "agent", "password": PASSWORD})))
        .await;
    assert_eq!(duplicate.status(), 409);
    let weak = app
        .send_as(&admin, Method::POST, "/api/agents",
            Some(json!({"email": "g@example.com", "name": "G", "role": "agent", "password": "short"})))
        .await;
    assert_eq!(weak.status(), 422);
    let bad_role = app
        .send_as(&admin, Method::POST, "/api/agents",
            Some(json!({"email": "h@example.com", "name": "H", "role": "emperor", "password": PASSWORD})))
        .await;
    assert_eq!(bad_role.status(), 422);

    let patched = app
        .send_as(
            &admin,
            Method::PATCH,
            &format!("/api/agents/{id}"),
            Some(json!({"role": "supervisor", "permissions": {"can_export_data": true, "can_read_chats": "all"}})),
        )
        .await;
    assert_eq!(patched.status(), 200);
    app.settle().await;
    let frank = app.get_json(&format!("/api/agents/{id}")).await;
    assert_eq!(frank["email"], "frank@example.com");
    assert_eq!(frank["role"], "supervisor");
    assert_eq!(frank["permissions"]["can_export_data"], true);
    assert_eq!(
        frank["permissions"]["can_write_to_chats"], "group",
        "untouched permissions kept"
    );
    assert_eq!(frank["active"], true);

    // Nobody locks themselves out: no self-deactivation, no change to one's own rights.
    let me = app
        .get_json("/api/agents")
        .await
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["email"] == app.admin.0.as_str())
        .expect("the admin")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let response = app
        .send_as(
            &admin,
            Method::POST,
            &format!("/api/agents/{me}/deactivate"),
            None,
        )
        .await;
    assert_eq!(response.status(), 422);
    let response = app
        .send_as(
            &admin,
            Method::PATCH,
            &format!("/api/agents/{me}"),
            Some(json!({"role": "agent"})),
        )
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "own_rights");
    let renamed = app
        .send_as(
            &admin,
            Method::PATCH,
            &format!("/api/agents/{me}"),
            Some(json!({"name": "Root"})),
        )
        .await;
    assert_eq!(renamed.status(), 200, "other changes to oneself are fine");
    assert_eq!(app.get_as(&admin, "/api/agents").await.status(), 200);
}

on_both_backends!(
    scopes_hide_and_protect_conversations_of_others,
    writes_are_refused_outside_working_hours_in_the_agents_time_zone,
    agents_are_managed_through_the_api,
);
