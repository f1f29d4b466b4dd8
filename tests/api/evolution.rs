//! The log stays readable as event shapes evolve: a stored event of an older version is read as
//! the current shape by every reader, snapshots of another schema are ignored, and an event no
//! reader can decode stops only the read models that need it, visibly, until a fix.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use switchboard::replay::export;
use switchboard_store::{with_pool, Database, LogCursor};

use crate::helpers::{fixture, Backend, FreshDatabase, TestApp};
use crate::locks::conversation_with;
use crate::on_both_backends;
use crate::replay::{export_all, rows};

async fn insert_event(database: &Database, event: &Value) {
    let sql = "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
               values ($1, $2, $3, $4, $5, $6, $7)";
    with_pool!(database, pool => sqlx::query(sql)
        .bind(event["aggregate_type"].as_str())
        .bind(event["aggregate_id"].as_str())
        .bind(event["sequence"].as_i64())
        .bind(event["event_type"].as_str())
        .bind(event["event_version"].as_str())
        .bind(sqlx::types::Json(&event["payload"]))
        .bind(sqlx::types::Json(json!({})))
        .execute(pool).await.expect("insert event").rows_affected());
}

pub(crate) async fn admin_id(app: &TestApp) -> String {
    // The first admin is registered at start; its read model row may lag a moment.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let agents = app.get_json("/api/agents").await;
        let found = agents
            .as_array()
            .and_then(|a| a.iter().find(|a| a["email"] == app.admin.0.as_str()))
            .and_then(|a| a["id"].as_str())
            .map(str::to_owned);
        if let Some(id) = found {
            return id;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the admin never listed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The v1 fixture, for this conversation and agent.
fn legacy_event(conversation: &str, agent: &str) -> Value {
    let text = String::from_utf8(fixture("events/message_outbound_requested_v1.json"))
        .expect("UTF-8")
        .replace("{{conversation_id}}", conversation)
        .replace("{{agent_id}}", agent);
    serde_json::from_str(&text).expect("fixture")
}

async fn an_event_of_an_older_shape_reads_as_the_current_one_everywhere(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = conversation_with(&app, "4930000500").await;
    let agent = admin_id(&app).await;
    insert_event(&app.database, &legacy_event(&conversation, &agent)).await;
    app.settle().await;

    // The global reader (behind projections, realtime and export).
    let log = app.log();
    let read = log.read_all(LogCursor::START, 1000).await.expect("read");
    let legacy = read
        .iter()
        .find(|e| e.aggregate_id == "out.legacy-1")
        .expect("read");
    assert_eq!(legacy.event_version, "2.0.0");
    assert_eq!(legacy.payload["OutboundRequested"]["by"], agent.as_str());
    assert!(legacy.payload["OutboundRequested"]
        .get("requested_by")
        .is_none());

    // The projections.
    let message = app.get_json("/api/messages/out.legacy-1").await;
    assert_eq!(message["status"], "queued", "{message}");
    assert_eq!(message["requested_by"], agent.as_str(), "{message}");

    // The aggregate, through cqrs-es and our own loader: a command on it is decided, not a 500.
    let (aggregate, sequence) = log
        .load_aggregate::<switchboard_domain::message::Message>("out.legacy-1")
        .await
        .expect("load");
    assert!(aggregate.may_be_sent());
    assert_eq!(sequence, 1);
    let retry = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/dead-letters/out.legacy-1/retry",
            None,
        )
        .await;
    assert_eq!(
        retry.status(),
        404,
        "not a dead letter, decided by the loaded aggregate"
    );

    // Export and import.
    let (written, exported) = export_all(&log).await;
    let text = String::from_utf8(exported.clone()).expect("UTF-8");
    let line = text
        .lines()
        .find(|l| l.contains("out.legacy-1"))
        .expect("exported");
    assert!(
        line.contains("\"by\"") && !line.contains("requested_by"),
        "{line}"
    );
    let fresh = FreshDatabase::new(backend).await;
    let (_, target, _) =
        switchboard::startup::connect_store(&fresh.config, &crate::helpers::test_master_keys())
            .await
            .expect("target");
    assert_eq!(
        export::import(&target, exported.as_slice())
            .await
            .expect("import"),
        written
    );
    switchboard::replay::rebuild(&target, &[])
        .await
        .expect("rebuild");
    assert_eq!(rows(target.database()).await, rows(&app.database).await);
    target.database().close().await;
}

async fn a_snapshot_of_another_schema_is_ignored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = conversation_with(&app, "4930000600").await;
    let version = app
        .get_json(&format!("/api/conversations/{conversation}"))
        .await["version"]
        .as_u64()
        .expect("version");
    // A snapshot written by another release: a different shape, claiming a later version.
    let sql = "insert into snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload, schema_version)
               values ('Conversation', $1, $2, 0, $3, 0)";
    let payload = json!({"version": 99});
    with_pool!(&app.database, pool => sqlx::query(sql)
        .bind(&conversation)
        .bind(i64::try_from(version).expect("version"))
        .bind(sqlx::types::Json(&payload))
        .execute(pool).await.expect("snapshot").rows_affected());
    let reply = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/conversations/{conversation}/messages"),
            Some(json!({"client_id": "s-1", "type": "text", "body": "hi", "expected_version": version})),
        )
        .await;
    assert_eq!(
        reply.status(),
        202,
        "the state comes from the events, not the stale snapshot"
    );
}

async fn metrics_text(app: &TestApp) -> String {
    app.get("/metrics").await.text().await.expect("metrics")
}

async fn an_undecodable_event_stops_only_the_read_models_that_need_it(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    conversation_with(&app, "4930000700").await;
    assert_eq!(app.get("/api/health/ready").await.status(), 200);
    let poison = json!({"aggregate_type": "Message", "aggregate_id": "poison.1", "sequence": 1,
        "event_type": "MessageOutboundTeleported", "event_version": "9.0",
        "payload": {"OutboundTeleported": {"to": "mars"}}});
    insert_event(&app.database, &poison).await;

    // Reported: readiness, the detailed health, the metric.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if app.get("/api/health/ready").await.status() == 503 {
            break;
        }
        assert!(Instant::now() < deadline, "never reported");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let detailed = app.get("/api/health/detailed").await;
    assert_eq!(detailed.status(), 503);
    let detailed: Value = detailed.json().await.expect("JSON");
    let stopped: Vec<&str> = detailed["projections"]["stopped"]
        .as_array()
        .expect("stopped")
        .iter()
        .filter_map(|s| s["projection"].as_str())
        .collect();
    assert_eq!(
        stopped,
        ["conversations", "media", "messages", "search"],
        "{detailed}"
    );
    assert_eq!(
        detailed["projections"]["stopped"][0]["event_type"],
        "MessageOutboundTeleported"
    );
    assert!(metrics_text(&app)
        .await
        .contains("switchboard_projection_stopped_at_position{projection=\"messages\"}"));

    // The others keep up: a new group shows at once; the new message waits.
    let group = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/groups",
            Some(json!({"name": "Night shift"})),
        )
        .await;
    assert_eq!(group.status(), 201);
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "metadata": {"phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": "4930000701", "profile": {"name": "Late"}}],
        "messages": [{"from": "4930000701", "id": "wamid.after-poison", "timestamp": "1780000100",
                      "type": "text", "text": {"body": "still there?"}}]}}]}]});
    assert_eq!(
        app.post_webhook(body.to_string().as_bytes()).await.status(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let groups = app.get_json("/api/groups").await;
        if groups
            .as_array()
            .is_some_and(|g| g.iter().any(|g| g["name"] == "Night shift"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the groups read model stalled too"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.get("/api/messages/wamid.after-poison").await.status(),
        404
    );

    // The fix (here: the event rewritten to a shape this release reads, as an upcaster would).
    let fix = "update events set event_type = 'MessageOutboundRequeued', event_version = '1.0',
               payload = $1 where aggregate_id = 'poison.1'";
    let admin = admin_id(&app).await;
    let fixed = json!({"OutboundRequeued": {"by": admin, "at": "2026-05-28T20:26:40Z"}});
    with_pool!(&app.database, pool => sqlx::query(fix).bind(sqlx::types::Json(&fixed))
        .execute(pool).await.expect("fix").rows_affected());
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if app.get("/api/messages/wamid.after-poison").await.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never caught up after the fix");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.settle().await;
    assert_eq!(app.get("/api/health/ready").await.status(), 200);
    assert_eq!(
        app.get_json("/api/health/detailed").await["projections"]["stopped"],
        json!([])
    );
}

on_both_backends!(
    an_event_of_an_older_shape_reads_as_the_current_one_everywhere,
    a_snapshot_of_another_schema_is_ignored,
    an_undecodable_event_stops_only_the_read_models_that_need_it,
);
