//! The sender's outbox is worker state written with the message's events: a reply goes out once
//! even when the projections stall past the visibility timeout, and retries, dead letters and
//! purges come through a rebuild of every read model unchanged.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::Value;
use switchboard::clock::Clock;
use switchboard::replay::{self, verify};
use switchboard::simulator::{Fault, Simulator};
use switchboard_store::with_pool;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::outbound::{event_types, retry_dead_letter, send_text, wait_for_status, wired_sending};

async fn outbox_rows(app: &TestApp) -> Vec<(String, i32, i64, Option<String>)> {
    let sql =
        "select message_id, attempts, dead, last_error from outbound_queue order by message_id";
    with_pool!(&app.database, pool => sqlx::query_as(sql).fetch_all(pool).await.expect("outbox"))
}

async fn wait_until_received(app: &TestApp, simulator: &Simulator, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while simulator.received().len() < count {
        assert!(
            Instant::now() < deadline,
            "only {} sent",
            simulator.received().len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = app;
}

async fn a_reply_goes_out_once_while_the_projections_are_stopped(backend: Backend) {
    let (simulator, app, conversation) = wired_sending(backend, false).await;
    let app = app
        .restart(|s| {
            s.outbound.send = true;
            s.workers.run_projections = false;
        })
        .await;
    simulator.set_webhook_url(app.url("/webhooks/whatsapp"));
    let id = send_text(&app, &conversation, "while-stalled").await;
    wait_until_received(&app, &simulator, 1).await;
    // Meta's acceptance is recorded with the outbox change, not by a projection.
    let deadline = Instant::now() + Duration::from_secs(20);
    while !outbox_rows(&app).await.is_empty() {
        assert!(Instant::now() < deadline, "the outbox row stays");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The visibility timeout lapses many times over while the read models stand still.
    for _ in 0..5 {
        app.clock.advance_seconds(61);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(simulator.received().len(), 1, "sent exactly once");
    let shown = app.get(&format!("/api/messages/{id}")).await;
    if shown.status() == 200 {
        let shown: Value = shown.json().await.expect("JSON");
        assert_ne!(
            shown["status"], "read",
            "the read models stood still: {shown}"
        );
    }

    let app = app.restart(|s| s.workers.run_projections = true).await;
    simulator.set_webhook_url(app.url("/webhooks/whatsapp"));
    wait_for_status(&app, &id, "read").await;
    assert_eq!(simulator.received().len(), 1, "still once");
    let types = event_types(&app, &id).await;
    assert_eq!(
        types
            .iter()
            .filter(|t| *t == "MessageOutboundAccepted")
            .count(),
        1,
        "{types:?}"
    );
}

fn unavailable() -> Fault {
    Fault {
        status: 503,
        code: 2,
        ..Fault::default()
    }
}

/// Everything a rebuild must leave as it was: the outbox, the dead letters, the statuses.
async fn sending_state(app: &TestApp, ids: &[&str]) -> Value {
    let rows = outbox_rows(app).await;
    let mut statuses = Vec::new();
    for id in ids {
        let message = app.get_json(&format!("/api/messages/{id}")).await;
        statuses.push(serde_json::json!([
            id,
            message["status"],
            message["status_errors"]
        ]));
    }
    serde_json::json!({
        "outbox": format!("{rows:?}"),
        "dead_letters": app.get_json("/api/dead-letters").await,
        "statuses": statuses,
    })
}

async fn retries_dead_letters_and_purges_survive_a_rebuild(backend: Backend) {
    let (simulator, app, conversation) = wired_sending(backend, true).await;
    simulator.fail_next(unavailable(), 2);
    let retried = send_text(&app, &conversation, "retried").await;
    wait_for_status(&app, &retried, "read").await;

    simulator.fail_next(unavailable(), 3);
    let revived = send_text(&app, &conversation, "revived").await;
    wait_for_status(&app, &revived, "dead_lettered").await;
    assert_eq!(retry_dead_letter(&app, &revived).await.status(), 202);
    wait_for_status(&app, &revived, "read").await;

    simulator.fail_next(unavailable(), 3);
    let purged = send_text(&app, &conversation, "purged").await;
    wait_for_status(&app, &purged, "dead_lettered").await;
    app.clock.advance_seconds(3600);
    let cutoff = app.clock.now().to_string();
    app.clock.advance_seconds(3600);

    simulator.fail_next(unavailable(), 3);
    let dead = send_text(&app, &conversation, "still-dead").await;
    wait_for_status(&app, &dead, "dead_lettered").await;

    let purge = app
        .send_as(
            &app.admin_token,
            Method::DELETE,
            &format!(
                "/api/dead-letters?older_than={}",
                cutoff.replace('+', "%2B")
            ),
            None,
        )
        .await;
    assert_eq!(purge.status(), 200);
    assert_eq!(purge.json::<Value>().await.expect("JSON")["deleted"], 1);
    let purge_events = event_types(&app, &purged).await;
    assert!(
        purge_events.iter().any(|t| t == "MessageDeadLetterPurged"),
        "{purge_events:?}"
    );
    app.settle().await;

    let ids = [
        retried.as_str(),
        revived.as_str(),
        purged.as_str(),
        dead.as_str(),
    ];
    let before = sending_state(&app, &ids).await;
    assert_eq!(
        before["statuses"][2][1], "failed",
        "a purged dead letter failed for good"
    );
    assert_eq!(
        before["dead_letters"]["items"].as_array().map(Vec::len),
        Some(1)
    );
    assert_eq!(before["dead_letters"]["items"][0]["id"], dead.as_str());

    let log = app.log();
    replay::rebuild(&log, &[]).await.expect("rebuild");
    assert!(
        verify::verify(&log).await.expect("verify").ok(),
        "verify is clean"
    );
    assert_eq!(
        sending_state(&app, &ids).await,
        before,
        "identical after the rebuild"
    );
    assert_eq!(
        simulator.received().len(),
        2,
        "two messages delivered, once each"
    );
}

on_both_backends!(
    a_reply_goes_out_once_while_the_projections_are_stopped,
    retries_dead_letters_and_purges_survive_a_rebuild,
);
