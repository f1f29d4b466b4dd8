//! The scoped fan-out (each batch is handed only to the sockets it concerns) under traffic:
//! while customer messages stream in, an agent's groups change and a conversation is
//! assigned to another agent; what each live socket received equals what a socket replaying
//! the whole log afterwards receives (the log's own answer), and a socket that may read
//! nothing receives none of it.

use serde_json::{json, Value};

use super::replay::{assign, group, group_agent, message, record_until, summary, update_agent};
use super::{agent, post, socket, text_from, QUIET};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::socket_client::SocketClient;

const CUSTOMER: &str = "15550801";
/// Messages posted between two changes.
const BURST: usize = 8;

/// A socket from the start of the log that has reached its agent's registration, so that
/// what follows reaches it live.
async fn live_socket(app: &TestApp, agent: &str, token: &str) -> (SocketClient, Vec<Value>) {
    let mut client = socket(app, json!({"token": token, "last_position": 0})).await;
    let mut record = Vec::new();
    record_until(&mut client, &mut record, "the registration", |e| {
        e["type"] == "AgentRegistered" && e["aggregate_id"] == agent
    })
    .await;
    (client, record)
}

/// Posts the next `BURST` messages without waiting for them to be processed.
async fn burst(app: &TestApp, next: &mut usize) {
    for _ in 0..BURST {
        *next += 1;
        post(app, &text_from(CUSTOMER, &format!("wamid.scoped.{next}"))).await;
    }
}

/// What a socket replaying the log from its start receives, up to `head`.
async fn replayed_until(app: &TestApp, token: &str, head: i64) -> Vec<Value> {
    let mut replay = socket(app, json!({"token": token, "last_position": 0})).await;
    let mut replayed = Vec::new();
    record_until(&mut replay, &mut replayed, "the head", |e| {
        e["position"] == head
    })
    .await;
    replay.close().await;
    replayed
}

async fn live_sockets_get_what_the_log_says_while_rights_change_under_traffic(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sales = group(&app, "Sales").await;
    let (gina, gina_token) = group_agent(&app, "gina", &[]).await;
    let (hank, hank_token) = agent(&app, "hank", "assigned").await;
    let (_, idle_token) = agent(&app, "ivan", "none").await;
    let (mut gina_socket, mut gina_record) = live_socket(&app, &gina, &gina_token).await;
    let (mut hank_socket, mut hank_record) = live_socket(&app, &hank, &hank_token).await;
    let mut idle = socket(&app, json!({ "token": idle_token })).await;

    let mut next = 0;
    post(&app, &text_from(CUSTOMER, "wamid.scoped.0")).await;
    let conversation = super::envelope_conversation(&app, CUSTOMER).await;
    assign(&app, &conversation, json!({ "group_id": sales })).await;
    // Each change lands among messages still being processed.
    burst(&app, &mut next).await;
    update_agent(&app, &gina, json!({ "groups": [sales] })).await;
    burst(&app, &mut next).await;
    update_agent(&app, &gina, json!({ "groups": [] })).await;
    burst(&app, &mut next).await;
    assign(&app, &conversation, json!({ "agent_id": hank })).await;
    burst(&app, &mut next).await;
    // Processed before the conversation leaves Hank, so that he has messages to receive (the
    // other changes still land among messages in flight).
    app.settle().await;
    update_agent(&app, &gina, json!({ "groups": [sales] })).await;
    assign(&app, &conversation, json!({ "group_id": sales })).await;
    burst(&app, &mut next).await;
    let last = format!("wamid.scoped.{next}");

    // Gina is back in the group the conversation is assigned to: the last message reaches her.
    record_until(
        &mut gina_socket,
        &mut gina_record,
        "the last message",
        message(&last),
    )
    .await;
    // Hank lost it to the group: his last event of it is the assignment that took it away.
    app.settle().await;
    let taken_away = app.get_json("/api/events?after=0&limit=1000").await["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|e| e["type"] == "ConversationAssigned")
        .filter_map(|e| e["position"].as_i64())
        .max()
        .expect("assignments");
    record_until(&mut hank_socket, &mut hank_record, "losing it", |e| {
        e["position"] == taken_away
    })
    .await;

    for (who, token, record) in [
        ("gina", &gina_token, &gina_record),
        ("hank", &hank_token, &hank_record),
    ] {
        let head = summary(record).last().expect("recorded").0;
        let replayed = replayed_until(&app, token, head).await;
        assert_eq!(
            summary(record),
            summary(&replayed),
            "{who}: live delivery differs from the log's answer"
        );
        assert!(
            record.iter().any(|e| e["type"] == "MessageInboundReceived"),
            "{who} saw some of the messages: {:#?}",
            summary(record)
        );
    }
    let leaked = idle.envelopes_until_quiet(QUIET).await;
    assert!(
        leaked
            .iter()
            .all(|e| e["conversation_id"] != conversation.as_str()),
        "a socket that may read nothing got: {:#?}",
        summary(&leaked)
    );
}

on_both_backends!(live_sockets_get_what_the_log_says_while_rights_change_under_traffic);
