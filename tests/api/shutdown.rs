//! A sender stopped mid-batch gives its claims back (issue #25): a server process sending one
//! message a second is sent SIGTERM with most of its claimed batch unsent; those messages are
//! free at once for another sender, not after the claim's visibility timeout.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// A customer's message, so that the conversation's window is open.
fn customer_writes(wa_id: &str) -> Vec<u8> {
    crate::integrations::texts("120000000000001", wa_id, 0, 1)
}

async fn a_stopped_sender_releases_the_claims_it_did_not_send(backend: Backend) {
    let simulator = crate::outbound::simulator().await;
    // This instance queues; the process below sends.
    let app = TestApp::spawn_with(backend, |s| s.outbound.send = false).await;
    let mut conversations = Vec::new();
    for i in 0..10 {
        let wa_id = format!("155500060{i:02}");
        assert_eq!(
            app.post_webhook(&customer_writes(&wa_id)).await.status(),
            200
        );
        app.settle().await;
        conversations.push(
            app.conversation_of(&wa_id).await["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    for (i, conversation) in conversations.iter().enumerate() {
        let queued = app
            .send_as(
                &app.admin_token,
                Method::POST,
                &format!("/api/conversations/{conversation}/messages"),
                Some(json!({"client_id": format!("batch-{i}"), "type": "text", "body": "On its way"})),
            )
            .await;
        assert_eq!(queued.status(), 202);
    }
    app.settle().await;
    let port = crate::receiver::free_port();
    let graph = simulator.url();
    let mut child = app.serve_process(
        port,
        &[
            ("WHATSAPP_ACCESS_TOKEN", "simulator-token"),
            ("WHATSAPP_GRAPH_URL", graph.as_str()),
            ("SWITCHBOARD_MESSAGES_PER_SECOND", "1"),
            ("SWITCHBOARD_SHUTDOWN_SECONDS", "5"),
        ],
    );
    app.wait_for_server(&format!("http://127.0.0.1:{port}"))
        .await;
    // One message a second: stop it once two went out, with most of its batch claimed.
    let deadline = Instant::now() + Duration::from_secs(30);
    while simulator.received().len() < 2 {
        assert!(Instant::now() < deadline, "the process never sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(killed.success());
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
    let rows: Vec<(String, Option<i64>)> = switchboard_store::with_pool!(&app.database, pool => {
        sqlx::query_as("select message_id, claimed_until from outbound_queue")
            .fetch_all(pool).await.expect("queue")
    });
    let claimed = rows.iter().filter(|(_, until)| until.is_some()).count();
    assert!(
        rows.len() >= 5,
        "most of the batch is still to send: {rows:?}"
    );
    // Only a send cut off in flight may keep its claim (Meta may have taken it).
    assert!(claimed <= 1, "claims kept by a stopped sender: {rows:?}");
}

on_both_backends!(a_stopped_sender_releases_the_claims_it_did_not_send);
