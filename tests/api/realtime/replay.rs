//! Replay from any earlier position gives exactly what live delivery gave (DESIGN §7), across
//! assignments, unassignments, changes of the agent's groups and read scope; and an agent who
//! loses a conversation leaves its room and its viewer list.

use reqwest::Method;
use serde_json::{json, Value};

use super::{envelope_conversation, post, socket, text_from, PASSWORD, QUIET, WITHIN};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::socket_client::{Seen, SocketClient};

const CUSTOMER: &str = "15550701";

/// Creates a group as the first admin; returns its id.
pub(super) async fn group(app: &TestApp, name: &str) -> String {
    let response = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/groups",
            Some(json!({ "name": name })),
        )
        .await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("JSON");
    created["id"].as_str().expect("id").to_owned()
}

/// Creates an agent with the role's default rights (read scope: group) in `groups`; returns
/// (id, access token).
pub(super) async fn group_agent(app: &TestApp, name: &str, groups: &[&str]) -> (String, String) {
    let email = format!("{name}@example.com");
    let id = app
        .create_agent(json!({"email": email, "name": name, "role": "agent",
            "password": PASSWORD, "groups": groups}))
        .await;
    (id, app.login(&email, PASSWORD).await)
}

/// As the first admin, `method` on `path` with `body`, expecting 200.
pub(super) async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) {
    let response = app
        .send_as(&app.admin_token, method.clone(), path, body)
        .await;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    assert_eq!(status, 200, "{method} {path}: {text}");
}

pub(super) async fn assign(app: &TestApp, conversation: &str, to: Value) {
    let path = format!("/api/conversations/{conversation}/assignment");
    admin(app, Method::PUT, &path, Some(to)).await;
}

async fn unassign(app: &TestApp, conversation: &str) {
    let path = format!("/api/conversations/{conversation}/assignment");
    admin(app, Method::DELETE, &path, None).await;
}

pub(super) async fn update_agent(app: &TestApp, agent: &str, change: Value) {
    admin(
        app,
        Method::PATCH,
        &format!("/api/agents/{agent}"),
        Some(change),
    )
    .await;
}

/// A customer message the agent may not see: processed before the next change.
async fn hidden_message(app: &TestApp, wamid: &str) {
    post(app, &text_from(CUSTOMER, wamid)).await;
    app.settle().await;
}

/// Appends the socket's envelopes to `record` until one matches `until`.
pub(super) async fn record_until(
    client: &mut SocketClient,
    record: &mut Vec<Value>,
    what: &str,
    until: impl Fn(&Value) -> bool,
) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        match client.next(left).await {
            Some(Seen::Event(name, envelope)) if name == "event" => {
                let found = until(&envelope);
                record.push(envelope);
                if found {
                    return;
                }
            }
            Some(Seen::Event(..)) => {}
            Some(Seen::Disconnected(reason)) => panic!("disconnected ({reason}) before {what}"),
            None => panic!(
                "no {what} within {WITHIN:?}; recorded: {:#?}",
                summary(record)
            ),
        }
    }
}

fn of_type(kind: &'static str) -> impl Fn(&Value) -> bool {
    move |envelope| envelope["type"] == kind
}

pub(super) fn message(wamid: &str) -> impl Fn(&Value) -> bool + '_ {
    move |envelope| envelope["aggregate_id"] == wamid
}

/// What is compared: (position, type, aggregate id) of each envelope, in order of arrival.
pub(super) fn summary(envelopes: &[Value]) -> Vec<(i64, String, String)> {
    envelopes
        .iter()
        .map(|e| {
            (
                e["position"].as_i64().expect("position"),
                e["type"].as_str().unwrap_or_default().to_owned(),
                e["aggregate_id"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

async fn a_replay_from_any_earlier_position_gives_what_the_live_socket_got(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sales = group(&app, "Sales").await;
    let support = group(&app, "Support").await;
    let (gina, token) = group_agent(&app, "gina", &[&sales]).await;
    let (hank, _) = group_agent(&app, "hank", &[]).await;

    // The live socket records from the start of the log; what follows its own registration
    // reaches it live.
    let mut live = socket(&app, json!({"token": token, "last_position": 0})).await;
    let mut record = Vec::new();
    record_until(&mut live, &mut record, "her registration", |e| {
        e["type"] == "AgentRegistered" && e["aggregate_id"] == gina.as_str()
    })
    .await;

    // A new customer's conversation is nobody's: hidden from her.
    post(&app, &text_from(CUSTOMER, "wamid.replay.1")).await;
    let conversation = envelope_conversation(&app, CUSTOMER).await;
    // Assigned to her group: the assignment, then its messages.
    assign(&app, &conversation, json!({ "group_id": sales })).await;
    record_until(
        &mut live,
        &mut record,
        "the assignment",
        of_type("ConversationAssigned"),
    )
    .await;
    post(&app, &text_from(CUSTOMER, "wamid.replay.2")).await;
    record_until(
        &mut live,
        &mut record,
        "message 2",
        message("wamid.replay.2"),
    )
    .await;
    // Unassigned: she receives the unassignment that takes it away, then nothing of it.
    unassign(&app, &conversation).await;
    record_until(
        &mut live,
        &mut record,
        "the unassignment",
        of_type("ConversationUnassigned"),
    )
    .await;
    hidden_message(&app, "wamid.replay.3").await;
    // Assigned to another group: hidden.
    assign(&app, &conversation, json!({ "group_id": support })).await;
    hidden_message(&app, "wamid.replay.4").await;
    // She moves to that group: her account's event, then its messages again.
    update_agent(&app, &gina, json!({ "groups": [support] })).await;
    record_until(
        &mut live,
        &mut record,
        "her new groups",
        of_type("AgentGroupsChanged"),
    )
    .await;
    post(&app, &text_from(CUSTOMER, "wamid.replay.5")).await;
    record_until(
        &mut live,
        &mut record,
        "message 5",
        message("wamid.replay.5"),
    )
    .await;
    // Assigned to her in person, then to Hank: she sees both, and loses it.
    assign(&app, &conversation, json!({ "agent_id": gina })).await;
    record_until(
        &mut live,
        &mut record,
        "her assignment",
        of_type("ConversationAssigned"),
    )
    .await;
    assign(&app, &conversation, json!({ "agent_id": hank })).await;
    record_until(
        &mut live,
        &mut record,
        "Hank's",
        of_type("ConversationAssigned"),
    )
    .await;
    hidden_message(&app, "wamid.replay.6").await;
    // Back to her group, then her read scope narrows to her own conversations: lost again.
    assign(&app, &conversation, json!({ "group_id": support })).await;
    record_until(
        &mut live,
        &mut record,
        "back to her group",
        of_type("ConversationAssigned"),
    )
    .await;
    let narrowed = json!({ "permissions": { "can_read_chats": "assigned" } });
    update_agent(&app, &gina, narrowed).await;
    record_until(
        &mut live,
        &mut record,
        "the narrowing",
        of_type("AgentPermissionsChanged"),
    )
    .await;
    hidden_message(&app, "wamid.replay.7").await;
    // Widened to every conversation: the last message reaches her; it is the live head.
    update_agent(
        &app,
        &gina,
        json!({ "permissions": { "can_read_chats": "all" } }),
    )
    .await;
    record_until(
        &mut live,
        &mut record,
        "the widening",
        of_type("AgentPermissionsChanged"),
    )
    .await;
    post(&app, &text_from(CUSTOMER, "wamid.replay.8")).await;
    record_until(
        &mut live,
        &mut record,
        "message 8",
        message("wamid.replay.8"),
    )
    .await;
    live.close().await;

    // Live, she saw what her rights let her see at each point, and nothing else.
    let seen = |wamid: &str| record.iter().any(|e| e["aggregate_id"] == wamid);
    for hidden in [1, 3, 4, 6, 7] {
        assert!(
            !seen(&format!("wamid.replay.{hidden}")),
            "message {hidden} was out of her scope: {:#?}",
            summary(&record)
        );
    }
    let changes: Vec<&str> = record
        .iter()
        .filter(|e| e["conversation_id"] == conversation.as_str())
        .filter_map(|e| e["type"].as_str())
        .filter(|kind| ["ConversationAssigned", "ConversationUnassigned"].contains(kind))
        .collect();
    assert_eq!(
        changes,
        [
            "ConversationAssigned",
            "ConversationUnassigned",
            "ConversationAssigned",
            "ConversationAssigned",
            "ConversationAssigned"
        ],
        "sales, unassigned, (support: hidden), her, Hank, support"
    );

    // From every position she saw (and from the start), a new socket gets exactly the rest.
    let head = summary(&record).last().expect("recorded").0;
    let mut starts = vec![0];
    starts.extend(summary(&record).iter().map(|s| s.0).filter(|p| *p != head));
    for start in starts {
        let rest = match record.iter().position(|e| e["position"] == start) {
            Some(at) => &record[at + 1..],
            None => &record[..],
        };
        let mut replay = socket(&app, json!({"token": token, "last_position": start})).await;
        let mut replayed = Vec::new();
        record_until(&mut replay, &mut replayed, "the live head", |e| {
            e["position"] == head
        })
        .await;
        replay.close().await;
        assert_eq!(
            summary(&replayed),
            summary(rest),
            "replay from position {start} differs from live delivery"
        );
    }
}

/// Waits until `client` is told that the viewers of `conversation` are `count`, with `agent`
/// among them or not.
async fn expect_viewers(
    client: &mut SocketClient,
    conversation: &str,
    count: usize,
    agent: &str,
    present: bool,
) {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let presence = client.expect("presence", left).await;
        let viewers = presence["data"]["viewers"].as_array().cloned();
        let viewers = viewers.unwrap_or_default();
        if presence["conversation_id"] == conversation
            && viewers.len() == count
            && viewers.iter().any(|v| v == agent) == present
        {
            return;
        }
    }
}

/// Joins `conversation`, expecting success.
async fn join(client: &mut SocketClient, conversation: &str) -> Value {
    let joined = client
        .emit_with_ack(
            "conversation:join",
            json!({ "conversation_id": conversation }),
        )
        .await;
    assert_eq!(joined["ok"], true, "{joined}");
    joined
}

/// Joins `conversation` once the socket's stream has reached the change that lets it.
async fn join_when_allowed(client: &mut SocketClient, conversation: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let joined = client
            .emit_with_ack(
                "conversation:join",
                json!({ "conversation_id": conversation }),
            )
            .await;
        if joined["ok"] == true {
            return joined;
        }
        let code = joined["error"]["code"].as_str().unwrap_or_default();
        assert!(["forbidden", "not_found"].contains(&code), "{joined}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "still refused: {joined}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn leave(client: &mut SocketClient, conversation: &str) {
    let left = client
        .emit_with_ack(
            "conversation:leave",
            json!({ "conversation_id": conversation }),
        )
        .await;
    assert_eq!(left["ok"], true, "{left}");
}

async fn refused_to_join(client: &mut SocketClient, conversation: &str) {
    let refused = client
        .emit_with_ack(
            "conversation:join",
            json!({ "conversation_id": conversation }),
        )
        .await;
    assert_eq!(refused["error"]["code"], "forbidden", "{refused}");
}

async fn an_agent_who_loses_a_conversation_leaves_its_room_and_viewer_list(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let sales = group(&app, "Sales").await;
    let (gina, token) = group_agent(&app, "gina", &[&sales]).await;
    let mut watcher = socket(&app, json!({ "token": app.admin_token })).await;
    let mut gina_socket = socket(&app, json!({ "token": token })).await;
    post(&app, &text_from(CUSTOMER, "wamid.presence.1")).await;
    let conversation = envelope_conversation(&app, CUSTOMER).await;
    join(&mut watcher, &conversation).await;

    // Each way of losing the conversation: before each, she may read it and joins.
    let ways: [(&str, Value); 3] = [
        ("unassigned", Value::Null),
        ("moved out of its group", json!({ "groups": [] })),
        (
            "read scope narrowed",
            json!({ "permissions": { "can_read_chats": "assigned" } }),
        ),
    ];
    for (way, change) in ways {
        // She may read it again (her group, group scope; assigned to it) and joins.
        let restored = json!({ "groups": [sales], "permissions": { "can_read_chats": "group" } });
        update_agent(&app, &gina, restored).await;
        assign(&app, &conversation, json!({ "group_id": sales })).await;
        let joined = join_when_allowed(&mut gina_socket, &conversation).await;
        assert_eq!(joined["viewers"].as_array().map(Vec::len), Some(2), "{way}");
        expect_viewers(&mut watcher, &conversation, 2, &gina, true).await;

        if change.is_null() {
            unassign(&app, &conversation).await;
        } else {
            update_agent(&app, &gina, change).await;
        }
        // The others are told she left; she is not in the room; she can no longer join.
        expect_viewers(&mut watcher, &conversation, 1, &gina, false).await;
        leave(&mut watcher, &conversation).await;
        let rejoined = join(&mut watcher, &conversation).await;
        assert_eq!(
            rejoined["viewers"].as_array().map(Vec::len),
            Some(1),
            "{way}"
        );
        refused_to_join(&mut gina_socket, &conversation).await;
    }

    // Out of the room, she is not told who views it any more.
    while gina_socket.next(QUIET).await.is_some() {}
    leave(&mut watcher, &conversation).await;
    join(&mut watcher, &conversation).await;
    while let Some(seen) = gina_socket.next(QUIET).await {
        if let Seen::Event(name, data) = seen {
            assert_ne!(name, "presence", "she still gets the viewers: {data}");
        }
    }
}

on_both_backends!(
    a_replay_from_any_earlier_position_gives_what_the_live_socket_got,
    an_agent_who_loses_a_conversation_leaves_its_room_and_viewer_list,
);
