//! SLA policies and the outcomes the worker records against them: one breach for a customer
//! left waiting past the threshold, one "met" for a customer answered in time, even with two
//! instances (and two more workers) deciding at once; the supervisor's socket sees the breach.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use switchboard_store::with_pool;

use crate::analytics::Script;
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::socket_client::SocketClient;

const PASSWORD: &str = "correct horse battery";

/// How many `event_type` events conversation `id` has in the log.
async fn count(app: &TestApp, event_type: &str, id: &str) -> i64 {
    with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from events where event_type = $1 and aggregate_id = $2")
        .bind(event_type).bind(id).fetch_one(pool).await.expect("count"))
}

async fn until_recorded(app: &TestApp, event_type: &str, id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while count(app, event_type, id).await == 0 {
        assert!(Instant::now() < deadline, "no {event_type} for {id}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create_policy(app: &TestApp, body: Value) -> reqwest::Response {
    app.send_as(
        &app.admin_token,
        Method::POST,
        "/api/sla-policies",
        Some(body),
    )
    .await
}

async fn one_breach_and_one_met_across_two_instances(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let second = app.another_instance(|_| {}).await;
    app.create_agent(
        json!({"email": "sam@example.com", "name": "Sam", "role": "supervisor",
        "password": PASSWORD, "permissions": {"can_read_chats": "all"}}),
    )
    .await;
    let supervisor = app.login("sam@example.com", PASSWORD).await;
    let mut socket = SocketClient::connect(&second.address, json!({"token": supervisor}))
        .await
        .unwrap_or_else(|refusal| panic!("socket refused: {refusal}"));

    let created = create_policy(
        &app,
        json!({"name": "Five minutes", "first_response_seconds": 300}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let policy: Value = created.json().await.expect("policy");
    app.settle().await;

    // Lena writes at 0 and nobody answers; Quim writes at 10 and is answered at 190 (3 min).
    let mut script = Script { app: &app, now: 0 };
    let lena = script.customer_writes(0, "15550000101", "wamid.L1").await;
    let quim = script.customer_writes(10, "15550000102", "wamid.Q1").await;
    // Each open conversation shows when its first response is due.
    let due = app.get_json(&format!("/api/conversations/{lena}")).await["sla"].clone();
    assert_eq!(due["policy_id"], policy["id"]);
    assert_eq!(due["first_response_due_at"], "2026-05-28T20:31:40.000Z");
    assert_eq!(due["next_response_due_at"], Value::Null);
    script.agent_replies(190, &quim).await;
    until_recorded(&app, "ConversationSlaMet", &quim).await;
    assert_eq!(
        count(&app, "ConversationSlaBreached", &lena).await,
        0,
        "not due yet at 190 s"
    );
    script.at(360);
    until_recorded(&app, "ConversationSlaBreached", &lena).await;

    // Two more workers with their own caches race the two instances' own for a while.
    let log = app.log();
    let watch = || {
        switchboard::workers::sla::SlaWatch::new(
            app.database.clone(),
            switchboard::cqrs::framework(&log),
            Arc::new(app.clock.clone()),
            Duration::from_millis(50),
        )
    };
    let (one, two) = (watch(), watch());
    for _ in 0..5 {
        let (a, b) = tokio::join!(one.run_once(), two.run_once());
        a.expect("pass");
        b.expect("pass");
    }
    app.settle().await;
    assert_eq!(count(&app, "ConversationSlaBreached", &lena).await, 1);
    assert_eq!(count(&app, "ConversationSlaMet", &lena).await, 0);
    assert_eq!(count(&app, "ConversationSlaMet", &quim).await, 1);
    assert_eq!(count(&app, "ConversationSlaBreached", &quim).await, 0);

    // The breach on the supervisor's socket (connected to the other instance).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let breach = loop {
        let envelope = socket.expect("event", Duration::from_secs(10)).await;
        if envelope["type"] == "ConversationSlaBreached" {
            break envelope;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no breach on the socket"
        );
    };
    assert_eq!(breach["aggregate_id"], lena.as_str(), "{breach}");
    let recorded = &breach["data"]["SlaBreached"];
    assert_eq!(recorded["policy_id"], policy["id"], "{breach}");
    assert_eq!(recorded["target"], "first_response");

    // The SLA report counts them, by the due time.
    let report = app
        .get_json("/api/analytics/sla?from=2026-05-28T00:00:00Z&to=2026-05-29T00:00:00Z")
        .await;
    assert_eq!(
        report["rows"],
        json!([{"policy_id": policy["id"], "target": "first_response", "met": 1, "breached": 1,
                "compliance": 0.5}])
    );
    // Replayed from the log, the SLA read models are the same, and verify agrees.
    let policies = app.get_json("/api/sla-policies").await;
    switchboard::replay::rebuild(&log, &[])
        .await
        .expect("rebuild");
    let rebuilt = app
        .get_json("/api/analytics/sla?from=2026-05-28T00:00:00Z&to=2026-05-29T00:00:00Z")
        .await;
    assert_eq!(rebuilt["rows"], report["rows"], "rebuilt = live");
    assert_eq!(app.get_json("/api/sla-policies").await, policies);
    let verified = switchboard::replay::verify::verify(&log)
        .await
        .expect("verify");
    assert!(verified.ok(), "verify after the rebuild");
    socket.close().await;
}

async fn policies_are_managed_by_those_who_manage_agents(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let hours = json!({"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00",
                       "end": "17:00", "timezone": "Europe/Madrid"});
    let created = create_policy(
        &app,
        json!({"name": " VIP ", "first_response_seconds": 60,
        "resolution_seconds": 86400, "business_hours": hours,
        "applies_to": {"tag": "VIP", "phone_number_id": "120000000000001"}}),
    )
    .await;
    assert_eq!(created.status(), 201);
    let vip: Value = created.json().await.expect("policy");
    assert_eq!(vip["name"], "VIP");
    assert_eq!(
        vip["applies_to"],
        json!({"tag": "vip", "phone_number_id": "120000000000001"})
    );
    app.settle().await;
    let listed = app.get_json("/api/sla-policies").await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    assert_eq!(listed[0]["business_hours"], hours);
    assert_eq!(listed[0]["first_response_seconds"], 60);

    // Refused: nothing measured, a threshold of 0, hours in no time zone, an unknown group,
    // an unknown field.
    for (body, code) in [
        (json!({"name": "Nothing"}), "invalid_sla_policy"),
        (
            json!({"name": "Zero", "first_response_seconds": 0}),
            "invalid_sla_policy",
        ),
        (
            json!({"name": "", "first_response_seconds": 5}),
            "invalid_sla_policy",
        ),
        (
            json!({"name": "Mars", "first_response_seconds": 5, "business_hours":
            {"days": ["mon"], "start": "09:00", "end": "17:00", "timezone": "Mars/Olympus"}}),
            "",
        ),
        (
            json!({"name": "Ghost", "first_response_seconds": 5,
            "applies_to": {"group_id": "5f0c9d3e-0000-4000-8000-000000000000"}}),
            "unknown_group",
        ),
        (
            json!({"name": "Extra", "first_response_seconds": 5, "priority": 1}),
            "",
        ),
    ] {
        let refused = create_policy(&app, body.clone()).await;
        assert_eq!(refused.status(), 422, "{body}");
        let error: Value = refused.json().await.expect("error");
        if !code.is_empty() {
            assert_eq!(error["error"]["code"], code, "{body}");
        }
    }

    // Changed: a threshold removed, the hours removed, the name changed.
    let path = format!("/api/sla-policies/{}", vip["id"].as_str().expect("id"));
    let changed = app
        .send_as(&app.admin_token, Method::PATCH, &path,
            Some(json!({"name": "VIP customers", "resolution_seconds": null, "business_hours": null})))
        .await;
    assert_eq!(changed.status(), 204);
    app.settle().await;
    let listed = app.get_json("/api/sla-policies").await;
    assert_eq!(listed[0]["name"], "VIP customers");
    assert_eq!(listed[0].get("resolution_seconds"), None);
    assert_eq!(listed[0].get("business_hours"), None);
    let emptied = app
        .send_as(
            &app.admin_token,
            Method::PATCH,
            &path,
            Some(json!({"first_response_seconds": null})),
        )
        .await;
    assert_eq!(emptied.status(), 422, "a policy must measure something");

    // Agents without can_manage_agents may not create, change, delete or list them.
    app.create_agent(
        json!({"email": "ann@example.com", "name": "Ann", "role": "agent",
        "password": PASSWORD}),
    )
    .await;
    let agent = app.login("ann@example.com", PASSWORD).await;
    let attempt = app
        .send_as(
            &agent,
            Method::POST,
            "/api/sla-policies",
            Some(json!({"name": "Mine", "first_response_seconds": 5})),
        )
        .await;
    assert_eq!(attempt.status(), 403);
    assert_eq!(
        app.send_as(&agent, Method::DELETE, &path, None)
            .await
            .status(),
        403
    );
    assert_eq!(app.get_as(&agent, "/api/sla-policies").await.status(), 403);

    // Deleted: gone from the list; a second delete or a change finds nothing.
    assert_eq!(
        app.send_as(&app.admin_token, Method::DELETE, &path, None)
            .await
            .status(),
        204
    );
    assert_eq!(
        app.send_as(&app.admin_token, Method::DELETE, &path, None)
            .await
            .status(),
        404
    );
    app.settle().await;
    assert_eq!(app.get_json("/api/sla-policies").await, json!([]));
}

on_both_backends!(
    one_breach_and_one_met_across_two_instances,
    policies_are_managed_by_those_who_manage_agents
);
