//! The replay tools: verify and rebuild on a live system, audit as of a time, export/import,
//! reprocessing stored webhooks.

use std::sync::Arc;

use reqwest::Method;
use serde_json::json;
use switchboard::replay::{self, audit, export, reprocess, verify};
use switchboard_domain::Timestamp;
use switchboard_store::{with_pool, Database, EventRepository};

use crate::helpers::{fixture, Backend, FreshDatabase, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "correct horse battery";

async fn deliver_fixtures(app: &TestApp) {
    for name in [
        "inbound_text.json",
        "inbound_image.json",
        "inbound_audio_voice.json",
        "status_sent.json",
        "status_read.json",
        "template_status_update.json",
    ] {
        assert_eq!(
            app.post_webhook(&fixture(&format!("meta/{name}")))
                .await
                .status(),
            200
        );
    }
    app.settle().await;
}

async fn verify_finds_a_corrupted_row_and_a_rebuild_repairs_it_while_the_server_serves(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    deliver_fixtures(&app).await;
    let log = app.log();
    let indexes = index_shapes(&app.database).await;
    let clean = verify::verify(&log).await.expect("verify");
    assert!(clean.ok(), "a fresh install verifies: {clean:?}");
    assert!(clean.events > 5);

    app.execute_sql("update conversations set unread_count = 999")
        .await;
    let found = verify::verify(&log).await.expect("verify");
    assert!(!found.ok());
    let difference = found
        .differences
        .iter()
        .find(|d| d.table == "conversations")
        .expect("conversations differ");
    assert!(difference.only_live >= 1 && difference.only_replayed >= 1);

    // Rebuild while requests keep coming: every one of them is answered.
    let requests = async {
        let mut statuses = Vec::new();
        for _ in 0..40 {
            statuses.push(app.get("/api/conversations").await.status().as_u16());
        }
        statuses
    };
    let (statuses, rebuilt) = tokio::join!(requests, replay::rebuild(&log, &[]));
    assert!(rebuilt.expect("rebuild") > 5);
    assert!(
        statuses.iter().all(|s| *s == 200),
        "served throughout: {statuses:?}"
    );
    app.settle().await;
    assert!(verify::verify(&log).await.expect("verify").ok(), "repaired");
    assert_eq!(app.conversation_of("15550002222").await["unread_count"], 2);

    // A rebuild of one projection by name, and a second full one (the shadow names alternate).
    replay::rebuild(&log, &["messages".to_owned()])
        .await
        .expect("rebuild messages");
    replay::rebuild(&log, &[]).await.expect("rebuild again");
    app.settle().await;
    assert!(verify::verify(&log).await.expect("verify").ok());
    // A rebuild builds its readers' indexes after the load: the rebuilt tables have them all.
    assert_eq!(index_shapes(&app.database).await, indexes);
    assert!(matches!(
        replay::rebuild(&log, &["nonsense".to_owned()]).await,
        Err(replay::ReplayError::UnknownProjection(_))
    ));
}

async fn audit_at_a_time_shows_who_held_the_lock_then(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    deliver_fixtures(&app).await;
    let conversation = app.conversation_of("15550002222").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    for name in ["alice", "bob"] {
        app.create_agent(json!({"email": format!("{name}@example.com"), "name": name, "role": "agent",
            "password": PASSWORD, "permissions": {"can_read_chats": "all", "can_write_to_chats": "all"}}))
            .await;
    }
    let alice = app.login("alice@example.com", PASSWORD).await;
    let bob = app.login("bob@example.com", PASSWORD).await;
    let lock_path = format!("/api/conversations/{conversation}/lock");
    let start = switchboard::clock::Clock::now(&app.clock);
    assert_eq!(
        app.send_as(
            &alice,
            Method::POST,
            &lock_path,
            Some(json!({"ttl_seconds": 60}))
        )
        .await
        .status(),
        200
    );
    app.clock.advance_seconds(120);
    assert_eq!(
        app.send_as(
            &bob,
            Method::POST,
            &lock_path,
            Some(json!({"ttl_seconds": 60}))
        )
        .await
        .status(),
        200
    );

    let log = app.log();
    let alice_id = app
        .get_json("/api/agents")
        .await
        .as_array()
        .expect("agents")
        .iter()
        .find(|a| a["email"] == "alice@example.com")
        .expect("alice")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let then = audit::conversation(&log, &conversation, Some(start.plus_seconds(30)))
        .await
        .expect("audit");
    let state = then.state.expect("state");
    assert_eq!(
        state.lock_holder.as_deref(),
        Some(alice_id.as_str()),
        "Alice held it then"
    );
    assert!(
        then.events.iter().all(|e| e.event_type != "LockExpired"),
        "nothing after that moment"
    );
    let acquired = then
        .events
        .iter()
        .find(|e| e.event_type == "LockAcquired")
        .expect("acquired");
    assert_eq!(
        acquired.actor.as_deref(),
        Some(format!("agent:{alice_id}").as_str())
    );

    let later = audit::conversation(&log, &conversation, Some(start.plus_seconds(150)))
        .await
        .expect("audit");
    let state = later.state.expect("state");
    assert_ne!(
        state.lock_holder.as_deref(),
        Some(alice_id.as_str()),
        "Bob held it later"
    );
    assert!(state.lock_holder.is_some());
    let everything = audit::conversation(&log, &conversation, None)
        .await
        .expect("audit");
    assert!(
        everything
            .events
            .iter()
            .any(|e| e.aggregate_type == "Message"),
        "its messages' events too"
    );
    assert!(
        everything
            .events
            .windows(2)
            .all(|w| w[0].position < w[1].position),
        "in log order"
    );
}

/// Exports the whole log. On PostgreSQL the reader stops at the horizon of transactions still in
/// flight anywhere in the cluster (parallel tests), so export until every event is in.
pub(crate) async fn export_all(log: &EventRepository) -> (u64, Vec<u8>) {
    let total = u64::try_from(log.count().await.expect("count")).expect("count");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let mut out = Vec::new();
        let written = export::export(log, &export::ExportFilter::default(), &mut out)
            .await
            .expect("export");
        if written == total {
            return (written, out);
        }
        assert!(
            std::time::Instant::now() < deadline,
            "exported {written} of {total}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Every index of the live tables, as (table, definition without the index's name).
async fn index_shapes(database: &Database) -> Vec<(String, String)> {
    let mut shapes: Vec<(String, String)> = with_pool!(database, pool => sqlx::query_as(
        match database {
            Database::Postgres(_) => "select tablename::text, \
                case when indexdef like 'CREATE UNIQUE%' then 'unique ' else '' end \
                || substr(indexdef, strpos(indexdef, ' USING ')) \
                from pg_indexes where schemaname = current_schema()",
            Database::Sqlite(_) => "select tbl_name, \
                case when sql like 'create unique%' then 'unique ' else '' end \
                || substr(sql, instr(sql, '(')) \
                from sqlite_master where type = 'index' and sql is not null",
        }).fetch_all(pool).await.expect("indexes"));
    shapes.sort();
    assert!(shapes.len() > 10, "{shapes:?}");
    shapes
}

pub(crate) async fn rows(
    database: &Database,
) -> (
    Vec<(String, i64, i64, Option<String>, String)>,
    Vec<(String, String, Option<String>, Option<String>, i64)>,
) {
    let conversations = with_pool!(database, pool => sqlx::query_as(
        "select id, version, unread_count, last_message_id, status from conversations order by id").fetch_all(pool).await.expect("rows"));
    let messages = with_pool!(database, pool => sqlx::query_as(
        "select id, conversation_id, kind, status, version from messages order by id").fetch_all(pool).await.expect("rows"));
    (conversations, messages)
}

async fn export_then_import_gives_an_identical_log_and_identical_read_models(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    deliver_fixtures(&app).await;
    let conversation = app.conversation_of("15550002222").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let lock = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/conversations/{conversation}/lock"),
            None,
        )
        .await;
    assert_eq!(lock.status(), 200);
    app.settle().await;
    let source = app.log();
    let (written, exported) = export_all(&source).await;

    let fresh = FreshDatabase::new(backend).await;
    let (_, target, _) =
        switchboard::startup::connect_store(&fresh.config, &crate::helpers::test_master_keys())
            .await
            .expect("target");
    let imported = export::import(&target, exported.as_slice())
        .await
        .expect("import");
    assert_eq!(imported, written);
    assert!(matches!(
        export::import(&target, exported.as_slice()).await,
        Err(replay::ReplayError::NotEmpty(_))
    ));
    let (_, again) = export_all(&target).await;
    let sorted = |bytes: &[u8]| {
        let mut lines: Vec<serde_json::Value> = bytes
            .split(|b| *b == b'\n')
            .filter(|l| !l.is_empty())
            .map(|l| serde_json::from_slice(l).expect("line"))
            .collect();
        lines.sort_by_key(|l| l["position"].as_i64());
        lines
    };
    assert_eq!(
        sorted(&exported),
        sorted(&again),
        "the same events at the same positions"
    );

    replay::rebuild(&target, &[]).await.expect("rebuild");
    assert_eq!(
        rows(target.database()).await,
        rows(&app.database).await,
        "the same read models"
    );
    target.database().close().await;
}

async fn reprocessing_a_webhook_that_failed_before_a_parser_fix_creates_its_events_once(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "110000000000001", "time": 1780000000,
        "changes": [{"field": "brand_new_field", "value": {"event": "SOMETHING_NEW"}}]}]})
    .to_string();
    assert_eq!(app.post_webhook(body.as_bytes()).await.status(), 200);
    app.settle().await;
    assert_eq!(
        app.get_json("/api/webhooks/dead-letters").await["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    let log = app.log();
    let frameworks = switchboard::cqrs::framework(&log);
    let clock: Arc<dyn switchboard::clock::Clock> = Arc::new(app.clock.clone());
    let fixed = vec!["brand_new_field".to_owned()];
    let selection = reprocess::Selection {
        since_ms: None,
        failed_only: true,
    };
    let queued = reprocess::reprocess(
        &log,
        frameworks.clone(),
        clock.clone(),
        &selection,
        fixed.clone(),
    )
    .await
    .expect("reprocess");
    assert_eq!(queued, 1);
    app.settle().await;
    assert_eq!(
        app.get_json("/api/webhooks/dead-letters").await["items"],
        json!([])
    );
    let events = app.event_count().await;
    // Everything again: nothing new.
    let everything = reprocess::Selection {
        since_ms: Some(Timestamp::from_unix_seconds(0).expect("t").unix_millis()),
        failed_only: false,
    };
    reprocess::reprocess(&log, frameworks, clock, &everything, fixed)
        .await
        .expect("reprocess again");
    app.settle().await;
    assert_eq!(app.event_count().await, events, "idempotent");
    let shown = app.get_json("/api/account/notifications").await;
    let count = shown["items"].as_array().map_or(0, |i| {
        i.iter().filter(|n| n["field"] == "brand_new_field").count()
    });
    assert_eq!(count, 1);
}

on_both_backends!(
    verify_finds_a_corrupted_row_and_a_rebuild_repairs_it_while_the_server_serves,
    audit_at_a_time_shows_who_held_the_lock_then,
    export_then_import_gives_an_identical_log_and_identical_read_models,
    reprocessing_a_webhook_that_failed_before_a_parser_fix_creates_its_events_once,
);
