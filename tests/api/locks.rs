//! Conversation locks over HTTP: atomic under contention, TTL from events with a controlled
//! clock, the read model equal to a replay, and the writes a lock blocks.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};
use switchboard_domain::conversation::Conversation;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery";

/// Posts a text message from `wa_id` and returns its conversation id.
pub(crate) async fn conversation_with(app: &TestApp, wa_id: &str) -> String {
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": wa_id, "profile": {"name": wa_id}}],
        "messages": [{"from": wa_id, "id": format!("wamid.lock{wa_id}"), "timestamp": "1780000000",
                      "type": "text", "text": {"body": "hello"}}]}}]}]});
    assert_eq!(
        app.post_webhook(body.to_string().as_bytes()).await.status(),
        200
    );
    app.settle().await;
    app.conversation_of(wa_id).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Creates an agent who may write to every conversation and returns (id, token).
pub(crate) async fn agent(app: &TestApp, name: &str, role: &str) -> (String, String) {
    let email = format!("{name}@example.com");
    let id = app
        .create_agent(
            json!({"email": email, "name": name, "role": role, "password": PASSWORD,
            "permissions": {"can_read_chats": "all", "can_write_to_chats": "all"}}),
        )
        .await;
    (id, app.login(&email, PASSWORD).await)
}

pub(crate) async fn lock(
    app: &TestApp,
    token: &str,
    conversation: &str,
    body: Option<Value>,
) -> reqwest::Response {
    app.send_as(
        token,
        Method::POST,
        &format!("/api/conversations/{conversation}/lock"),
        body,
    )
    .await
}

async fn fifty_agents_racing_for_one_lock_have_exactly_one_winner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let names: Vec<String> = (0..50).map(|i| format!("racer{i}")).collect();
    let agents = join_all(names.iter().map(|name| agent(&app, name, "agent"))).await;
    for round in 0..20 {
        let conversation = conversation_with(&app, &format!("4930000000{round:02}")).await;
        let attempts = agents
            .iter()
            .map(|(_, token)| lock(&app, token, &conversation, None));
        let responses = join_all(attempts).await;
        let mut winners = Vec::new();
        let mut holders = Vec::new();
        for response in responses {
            let status = response.status().as_u16();
            let body: Value = response.json().await.expect("JSON");
            match status {
                200 => winners.push(body["agent_id"].as_str().expect("holder").to_owned()),
                409 => {
                    assert_eq!(
                        body["error"]["code"], "conversation_locked",
                        "round {round}: {body}"
                    );
                    holders.push(body["locked_by"].as_str().expect("locked_by").to_owned());
                }
                other => panic!("round {round}: unexpected {other}: {body}"),
            }
        }
        assert_eq!(winners.len(), 1, "round {round}: exactly one winner");
        assert_eq!(holders.len(), 49, "round {round}: 49 refused");
        assert!(
            holders.iter().all(|h| *h == winners[0]),
            "round {round}: every 409 names the winner"
        );
    }
}

async fn a_lock_lapses_at_its_ttl_renewal_extends_it_and_the_lapse_is_logged(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = conversation_with(&app, "4930000099").await;
    let (alice, alice_token) = agent(&app, "alice", "agent").await;
    let (bob, bob_token) = agent(&app, "bob", "agent").await;

    let taken = lock(
        &app,
        &alice_token,
        &conversation,
        Some(json!({"ttl_seconds": 60})),
    )
    .await;
    assert_eq!(taken.status(), 200);
    let taken: Value = taken.json().await.expect("JSON");
    assert_eq!(taken["agent_id"], alice.as_str());
    assert_eq!(taken["acquired_at"], "2026-05-28T20:26:40.000Z");
    assert_eq!(taken["expires_at"], "2026-05-28T20:27:40.000Z");
    assert_eq!(
        lock(&app, &bob_token, &conversation, None).await.status(),
        409
    );

    // Renewal at +30 s extends to +90 s.
    app.clock.advance_seconds(30);
    let renewed: Value = lock(
        &app,
        &alice_token,
        &conversation,
        Some(json!({"ttl_seconds": 60})),
    )
    .await
    .json()
    .await
    .expect("JSON");
    assert_eq!(renewed["expires_at"], "2026-05-28T20:28:10.000Z");
    app.clock.advance_seconds(40); // +70 s: past the first expiry, before the renewed one.
    assert_eq!(
        lock(&app, &bob_token, &conversation, None).await.status(),
        409
    );

    // +90 s: free, even before the expiry worker writes it down…
    app.clock.advance_seconds(20);
    let status: Value = app
        .get_as(
            &bob_token,
            &format!("/api/conversations/{conversation}/lock-status"),
        )
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(status["locked"], false);
    // …and the worker records LockExpired in the log.
    let log = app.log();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let events = log
            .aggregate_events("Conversation", &conversation)
            .await
            .expect("events");
        if events.iter().any(|e| e.event_type == "LockExpired") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "LockExpired written by the worker"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let bob_token = app.login("bob@example.com", PASSWORD).await;
    let taken: Value = lock(&app, &bob_token, &conversation, None)
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(taken["agent_id"], bob.as_str());
    assert_eq!(
        taken["expires_at"], "2026-05-28T20:33:10.000Z",
        "the default TTL is 5 minutes"
    );
}

async fn the_lock_in_the_read_model_equals_a_replay_of_the_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = conversation_with(&app, "4930000098").await;
    let (_, alice_token) = agent(&app, "alice", "agent").await;
    let (_, carla_token) = agent(&app, "carla", "supervisor").await;
    assert_eq!(
        lock(
            &app,
            &alice_token,
            &conversation,
            Some(json!({"ttl_seconds": 120}))
        )
        .await
        .status(),
        200
    );
    let forced = app
        .send_as(
            &carla_token,
            Method::DELETE,
            &format!("/api/conversations/{conversation}/lock"),
            Some(json!({"force": true, "reason": "Alice went home"})),
        )
        .await;
    assert_eq!(forced.status(), 200);
    assert_eq!(
        lock(
            &app,
            &carla_token,
            &conversation,
            Some(json!({"ttl_seconds": 600}))
        )
        .await
        .status(),
        200
    );
    app.settle().await;

    let view = app
        .get_json(&format!("/api/conversations/{conversation}"))
        .await;
    let (replayed, version) = app
        .log()
        .load_aggregate::<Conversation>(&conversation)
        .await
        .expect("replay");
    let lock = replayed.recorded_lock().expect("locked after replay");
    assert_eq!(view["lock"]["agent_id"], lock.agent.to_string().as_str());
    assert_eq!(
        view["lock"]["acquired_at"],
        lock.acquired_at.to_string().as_str()
    );
    assert_eq!(
        view["lock"]["expires_at"],
        lock.expires_at.to_string().as_str()
    );
    assert_eq!(view["version"], version);
    let events = app
        .log()
        .aggregate_events("Conversation", &conversation)
        .await
        .expect("events");
    let released = events
        .iter()
        .find(|e| e.event_type == "LockReleased")
        .expect("released");
    assert_eq!(released.payload["LockReleased"]["forced"], true);
    assert_eq!(
        released.payload["LockReleased"]["reason"],
        "Alice went home"
    );
}

async fn a_lock_blocks_other_writers_and_a_stale_version_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = conversation_with(&app, "4930000097").await;
    let (alice, alice_token) = agent(&app, "alice", "agent").await;
    let (_, bob_token) = agent(&app, "bob", "agent").await;
    assert_eq!(
        lock(&app, &alice_token, &conversation, None).await.status(),
        200
    );

    let status_path = format!("/api/conversations/{conversation}/status");
    let blocked = app
        .send_as(
            &bob_token,
            Method::PUT,
            &status_path,
            Some(json!({"status": "resolved"})),
        )
        .await;
    assert_eq!(blocked.status(), 409);
    let blocked: Value = blocked.json().await.expect("JSON");
    assert_eq!(blocked["error"]["code"], "conversation_locked");
    assert_eq!(blocked["locked_by"], alice.as_str());
    assert!(blocked["expires_at"].is_string());
    let assign = app
        .send_as(
            &bob_token,
            Method::PUT,
            &format!("/api/conversations/{conversation}/assignment"),
            Some(json!({"agent_id": alice})),
        )
        .await;
    assert_eq!(assign.status(), 409);
    let release = app
        .send_as(
            &bob_token,
            Method::DELETE,
            &format!("/api/conversations/{conversation}/lock"),
            None,
        )
        .await;
    assert_eq!(release.status(), 409, "only the holder releases");
    let force = app
        .send_as(
            &bob_token,
            Method::DELETE,
            &format!("/api/conversations/{conversation}/lock"),
            Some(json!({"force": true, "reason": "mine now"})),
        )
        .await;
    assert_eq!(force.status(), 403, "an agent may not force it");

    // The holder writes, with the version she saw; a stale version is refused with the current one.
    app.settle().await;
    let seen = app
        .get_json(&format!("/api/conversations/{conversation}"))
        .await["version"]
        .as_u64()
        .expect("version");
    let tagged = app
        .send_as(
            &alice_token,
            Method::POST,
            &format!("/api/conversations/{conversation}/tags"),
            Some(json!({"tag": "VIP", "expected_version": seen})),
        )
        .await;
    assert_eq!(tagged.status(), 200);
    assert_eq!(
        tagged.json::<Value>().await.expect("JSON")["version"],
        seen + 1
    );
    let stale = app
        .send_as(
            &alice_token,
            Method::PUT,
            &status_path,
            Some(json!({"status": "resolved", "expected_version": seen})),
        )
        .await;
    assert_eq!(stale.status(), 409);
    let stale: Value = stale.json().await.expect("JSON");
    assert_eq!(stale["error"]["code"], "conversation_changed");
    assert_eq!(stale["current_version"], seen + 1);
}

async fn ownership_status_and_tags_show_in_the_inbox(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = conversation_with(&app, "4930000096").await;
    let (alice, alice_token) = agent(&app, "alice", "agent").await;
    let base = format!("/api/conversations/{conversation}");
    assert_eq!(
        app.send_as(
            &alice_token,
            Method::POST,
            &format!("{base}/takeover"),
            Some(json!({"reason": "VIP"}))
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        app.send_as(
            &alice_token,
            Method::POST,
            &format!("{base}/tags"),
            Some(json!({"tag": " Billing "}))
        )
        .await
        .status(),
        200
    );
    let snooze = app
        .send_as(
            &alice_token,
            Method::PUT,
            &format!("{base}/status"),
            Some(json!({"status": "snoozed", "snoozed_until": "2026-05-28T21:26:40Z"})),
        )
        .await;
    assert_eq!(snooze.status(), 200);
    app.settle().await;
    let view = app.get_json(&base).await;
    assert_eq!(view["owner_agent_id"], alice.as_str());
    assert_eq!(view["owned_by_bot"], false);
    assert_eq!(view["tags"], json!(["billing"]));
    assert_eq!(view["status"], "snoozed");
    assert_eq!(view["snoozed_until"], "2026-05-28T21:26:40.000Z");

    // The snooze ends at its time (expiry worker); handing back gives it to the bot.
    app.clock.advance_seconds(3600);
    let alice_token = app.login("alice@example.com", PASSWORD).await;
    let view_now = || async {
        let response = app.get_as(&alice_token, &base).await;
        assert_eq!(response.status(), 200);
        response.json::<Value>().await.expect("JSON")
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while view_now().await["status"] != "open" {
        assert!(std::time::Instant::now() < deadline, "woken up");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(
        app.send_as(
            &alice_token,
            Method::POST,
            &format!("{base}/handback"),
            None
        )
        .await
        .status(),
        200
    );
    app.settle().await;
    let view = view_now().await;
    assert_eq!(view["status"], "pending");
    assert_eq!(view["owned_by_bot"], true);
    let bad = app
        .send_as(
            &alice_token,
            Method::PUT,
            &format!("{base}/status"),
            Some(json!({"status": "snoozed"})),
        )
        .await;
    assert_eq!(bad.status(), 422);
}

async fn locks_respect_scope_and_working_hours(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = conversation_with(&app, "4930000095").await;
    app.create_agent(
        json!({"email": "nina@example.com", "name": "Nina", "role": "agent", "password": PASSWORD,
        "permissions": {"can_read_chats": "assigned", "can_write_to_chats": "assigned"}}),
    )
    .await;
    app.create_agent(json!({"email": "otto@example.com", "name": "Otto", "role": "supervisor", "password": PASSWORD,
        "working_hours": {"days": ["sat"], "start": "09:00", "end": "10:00", "timezone": "Asia/Tokyo"}}))
        .await;
    let nina = app.login("nina@example.com", PASSWORD).await;
    let otto = app.login("otto@example.com", PASSWORD).await;
    assert_eq!(
        lock(&app, &nina, &conversation, None).await.status(),
        404,
        "out of scope"
    );
    let off_duty = lock(&app, &otto, &conversation, None).await;
    assert_eq!(off_duty.status(), 403, "outside working hours");
    let too_long = lock(
        &app,
        &app.admin_token,
        &conversation,
        Some(json!({"ttl_seconds": 999_999})),
    )
    .await;
    assert_eq!(too_long.status(), 422);
}

async fn a_long_conversation_loads_from_its_snapshot_exactly_as_from_its_events(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = conversation_with(&app, "4930000094").await;
    let (_, alice_token) = agent(&app, "alice", "agent").await;
    for _ in 0..60 {
        let renewed = lock(
            &app,
            &alice_token,
            &conversation,
            Some(json!({"ttl_seconds": 60})),
        )
        .await;
        assert_eq!(renewed.status(), 200);
        app.clock.advance_seconds(1);
    }
    let log = app.log();
    let snapshots: i64 = switchboard_store::with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from snapshots where aggregate_type = 'Conversation'").fetch_one(pool).await.expect("count"));
    assert_eq!(snapshots, 1, "a long stream is snapshotted");
    let (from_snapshot, version) = log
        .load_aggregate::<Conversation>(&conversation)
        .await
        .expect("load");
    let mut replayed = Conversation::default();
    for event in log
        .aggregate_events("Conversation", &conversation)
        .await
        .expect("events")
    {
        cqrs_es::Aggregate::apply(
            &mut replayed,
            serde_json::from_value(event.payload).expect("event"),
        );
    }
    assert_eq!(from_snapshot, replayed);
    assert_eq!(i64::try_from(replayed.version()).expect("version"), version);
}

on_both_backends!(
    a_long_conversation_loads_from_its_snapshot_exactly_as_from_its_events,
    fifty_agents_racing_for_one_lock_have_exactly_one_winner,
    a_lock_lapses_at_its_ttl_renewal_extends_it_and_the_lapse_is_logged,
    the_lock_in_the_read_model_equals_a_replay_of_the_events,
    a_lock_blocks_other_writers_and_a_stale_version_is_refused,
    ownership_status_and_tags_show_in_the_inbox,
    locks_respect_scope_and_working_hours,
);
