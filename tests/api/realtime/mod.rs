//! Socket.IO for agents, tested with the official socket.io-client: permission-filtered
//! delivery, gap-free resume from the log, in-band token refresh and expiry, and two server
//! processes sharing one PostgreSQL. Replay and presence across changes of assignment and
//! rights: [`replay`]; the scoped fan-out under traffic: [`scoped`].

mod replay;
mod scoped;

use std::collections::BTreeSet;
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::socket_client::{Seen, SocketClient};

const PASSWORD: &str = "correct horse battery";
const QUIET: Duration = Duration::from_millis(1500);
const WITHIN: Duration = Duration::from_secs(15);

/// A text message webhook from `wa_id` with message id `wamid`.
fn text_from(wa_id: &str, wamid: &str) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": wa_id, "profile": {"name": wa_id}}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": "1780000000",
                      "type": "text", "text": {"body": format!("hello from {wa_id}")}}]}}]}]})
    .to_string()
    .into_bytes()
}

async fn post(app: &TestApp, body: &[u8]) {
    assert_eq!(app.post_webhook(body).await.status(), 200);
}

/// Creates an agent with the given read scope; returns (id, access token).
async fn agent(app: &TestApp, name: &str, read: &str) -> (String, String) {
    let email = format!("{name}@example.com");
    let id = app
        .create_agent(
            json!({"email": email, "name": name, "role": "agent", "password": PASSWORD,
            "permissions": {"can_read_chats": read, "can_write_to_chats": read}}),
        )
        .await;
    (id, app.login(&email, PASSWORD).await)
}

async fn socket(app: &TestApp, auth: Value) -> SocketClient {
    SocketClient::connect(&app.address, auth)
        .await
        .unwrap_or_else(|refusal| panic!("socket refused: {refusal}"))
}

/// Waits for the envelope of the inbound message `wamid`.
async fn expect_message(client: &mut SocketClient, wamid: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let envelope = client.expect("event", WITHIN).await;
        if envelope["type"] == "MessageInboundReceived" && envelope["aggregate_id"] == wamid {
            return envelope;
        }
        assert!(tokio::time::Instant::now() < deadline, "no message {wamid}");
    }
}

async fn a_webhook_reaches_the_sockets_allowed_to_see_it_and_no_other(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, all_token) = agent(&app, "alice", "all").await;
    let (bob, assigned_token) = agent(&app, "bob", "assigned").await;
    let mut alice = socket(&app, json!({"token": all_token})).await;
    let mut bob_socket = socket(&app, json!({"token": assigned_token})).await;

    post(&app, &text_from("15550101", "wamid.rt.1")).await;
    let envelope = expect_message(&mut alice, "wamid.rt.1").await;
    let conversation = envelope["conversation_id"]
        .as_str()
        .expect("conversation id")
        .to_owned();
    assert!(envelope["position"].as_i64().expect("position") > 0);
    assert!(envelope["at"].is_string());
    let leaked = bob_socket.envelopes_until_quiet(QUIET).await;
    assert!(
        leaked
            .iter()
            .all(|e| e["conversation_id"] != conversation.as_str()),
        "an agent who may see only their own conversations got: {leaked:?}"
    );

    // Assigned to Bob, the conversation becomes his to see: the assignment, then its messages.
    app.settle().await;
    let assigned = app
        .send_as(
            &app.admin_token,
            Method::PUT,
            &format!("/api/conversations/{conversation}/assignment"),
            Some(json!({"agent_id": bob})),
        )
        .await;
    assert_eq!(
        assigned.status(),
        200,
        "{}",
        assigned.text().await.unwrap_or_default()
    );
    let event = bob_socket.expect("event", WITHIN).await;
    assert_eq!(event["type"], "ConversationAssigned");
    assert_eq!(event["conversation_id"], conversation.as_str());
    post(&app, &text_from("15550101", "wamid.rt.2")).await;
    expect_message(&mut bob_socket, "wamid.rt.2").await;

    // Another customer's conversation stays hidden from Bob, not from Alice.
    post(&app, &text_from("15550202", "wamid.rt.3")).await;
    expect_message(&mut alice, "wamid.rt.3").await;
    let leaked = bob_socket.envelopes_until_quiet(QUIET).await;
    assert!(
        leaked.iter().all(|e| e["aggregate_id"] != "wamid.rt.3"),
        "{leaked:?}"
    );

    // Joining a conversation is checked against the read scope; viewers are announced.
    let joined = bob_socket
        .emit_with_ack(
            "conversation:join",
            json!({"conversation_id": conversation}),
        )
        .await;
    assert_eq!(joined["ok"], true, "{joined}");
    assert_eq!(joined["viewers"], json!([bob]));
    let refused = bob_socket
        .emit_with_ack(
            "conversation:join",
            json!({"conversation_id": envelope_conversation(&app, "15550202").await}),
        )
        .await;
    assert_eq!(refused["ok"], false);
    assert_eq!(refused["error"]["code"], "forbidden");
    let joined = alice
        .emit_with_ack(
            "conversation:join",
            json!({"conversation_id": conversation}),
        )
        .await;
    assert_eq!(joined["ok"], true);
    assert_eq!(joined["viewers"].as_array().map(Vec::len), Some(2));
    // Bob is told that Alice is looking at the same conversation.
    loop {
        let presence = bob_socket.expect("presence", WITHIN).await;
        assert_eq!(presence["type"], "ConversationViewers");
        assert_eq!(presence["conversation_id"], conversation.as_str());
        if presence["data"]["viewers"].as_array().map(Vec::len) == Some(2) {
            break;
        }
    }
    // Bob leaves: Alice is told she is alone.
    let left = bob_socket
        .emit_with_ack(
            "conversation:leave",
            json!({"conversation_id": conversation}),
        )
        .await;
    assert_eq!(left["ok"], true);
    loop {
        let presence = alice.expect("presence", WITHIN).await;
        if presence["data"]["viewers"].as_array().map(Vec::len) == Some(1) {
            assert_ne!(presence["data"]["viewers"][0], bob.as_str());
            break;
        }
    }
    let malformed = alice
        .emit_with_ack("conversation:join", json!({"nope": 1}))
        .await;
    assert_eq!(malformed["error"]["code"], "invalid_input");
}

async fn envelope_conversation(app: &TestApp, wa_id: &str) -> String {
    app.settle().await;
    app.conversation_of(wa_id).await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

async fn a_bad_handshake_is_refused_with_its_reason(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let refused = SocketClient::connect(&app.address, json!({"token": "not-a-jwt"}))
        .await
        .err()
        .expect("refused");
    assert!(refused.starts_with("invalid_token:"), "{refused}");
    let refused = SocketClient::connect(&app.address, json!({}))
        .await
        .err()
        .expect("refused");
    assert!(refused.starts_with("invalid_handshake:"), "{refused}");
    let refused = SocketClient::connect(
        &app.address,
        json!({"token": app.admin_token, "last_position": 987_654_321}),
    )
    .await
    .err()
    .expect("refused");
    assert!(refused.starts_with("unknown_position:"), "{refused}");
    let refused = SocketClient::connect(
        &app.address,
        json!({"token": app.admin_token, "last_position": -1}),
    )
    .await
    .err()
    .expect("a negative position is refused");
    assert!(
        refused.starts_with("invalid_handshake:") && refused.contains("last_position"),
        "{refused}"
    );
    // Past its expiry, the token is refused at connect.
    app.clock.advance_seconds(11 * 86_400);
    let refused = SocketClient::connect(&app.address, json!({"token": app.admin_token}))
        .await
        .err()
        .expect("refused");
    assert!(refused.starts_with("token_expired:"), "{refused}");
}

fn positions(envelopes: &[Value]) -> Vec<i64> {
    envelopes
        .iter()
        .map(|e| e["position"].as_i64().expect("position"))
        .collect()
}

async fn a_reconnecting_socket_gets_every_missed_event_once_in_order(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut first = socket(&app, json!({"token": app.admin_token})).await;
    post(&app, &text_from("15550301", "wamid.resume.1")).await;
    let mut seen = vec![];
    expect_message_in(&mut first, &mut seen, "wamid.resume.1").await;
    seen.extend(first.envelopes_until_quiet(QUIET).await);
    app.settle().await;
    let all = app.get_json("/api/events?after=0&limit=1000").await["items"]
        .as_array()
        .expect("items")
        .clone();
    let last_seen = positions(&seen).last().copied().expect("events seen");
    assert_eq!(
        Some(last_seen),
        positions(&all).last().copied(),
        "the admin's socket saw the log up to its end"
    );
    seen.clear();
    first.close().await;

    // Missed while away: two customers' messages and a status.
    post(&app, &text_from("15550301", "wamid.resume.2")).await;
    post(&app, &text_from("15550302", "wamid.resume.3")).await;
    app.settle().await;

    let mut second = socket(
        &app,
        json!({"token": app.admin_token, "last_position": last_seen}),
    )
    .await;
    // And one more while reconnected: the live stream carries on where the log left off.
    post(&app, &text_from("15550303", "wamid.resume.4")).await;
    expect_message_in(&mut second, &mut seen, "wamid.resume.4").await;
    seen.extend(second.envelopes_until_quiet(QUIET).await);
    app.settle().await;

    let expected: Vec<i64> = positions(
        app.get_json(&format!("/api/events?after={last_seen}&limit=1000"))
            .await["items"]
            .as_array()
            .expect("items"),
    );
    assert!(
        expected.len() >= 6,
        "the missed webhooks made events: {expected:?}"
    );
    assert_eq!(
        positions(&seen),
        expected,
        "every missed event once, in log order"
    );
}

/// Collects envelopes into `seen` until the message `wamid` arrives.
async fn expect_message_in(client: &mut SocketClient, seen: &mut Vec<Value>, wamid: &str) {
    loop {
        let envelope = client.expect("event", WITHIN).await;
        let found = envelope["aggregate_id"] == wamid;
        seen.push(envelope);
        if found {
            return;
        }
    }
}

async fn auth_refresh_keeps_the_socket_and_an_expired_one_is_disconnected(backend: Backend) {
    let app = TestApp::spawn_with(backend, |settings| {
        settings.auth.access_token_ttl = Duration::from_secs(900);
    })
    .await;
    let (_, token) = agent(&app, "carol", "all").await;
    let mut client = socket(&app, json!({"token": token})).await;

    app.clock.advance_seconds(850);
    let warning = client.expect("session:expiring", WITHIN).await;
    assert!(
        warning["seconds_left"].as_i64().expect("seconds") <= 60,
        "{warning}"
    );
    let garbage = client
        .emit_with_ack("auth:refresh", json!({"token": "garbage"}))
        .await;
    assert_eq!(garbage["ok"], false);
    assert_eq!(garbage["error"]["code"], "invalid_token");
    let fresh = app.login("carol@example.com", PASSWORD).await;
    let refreshed = client
        .emit_with_ack("auth:refresh", json!({"token": fresh}))
        .await;
    assert_eq!(refreshed["ok"], true, "{refreshed}");

    // Past the first token's expiry the socket lives on, and still receives events.
    app.clock.advance_seconds(100);
    post(&app, &text_from("15550401", "wamid.refresh.1")).await;
    expect_message(&mut client, "wamid.refresh.1").await;

    // Without another refresh, it is warned, then closed with a reason.
    app.clock.advance_seconds(750);
    client.expect("session:expiring", WITHIN).await;
    app.clock.advance_seconds(60);
    let expired = client.expect("session:expired", WITHIN).await;
    assert_eq!(expired["code"], "token_expired");
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        match client.next(WITHIN).await {
            Some(Seen::Disconnected(reason)) => {
                assert_eq!(reason, "io server disconnect");
                break;
            }
            Some(_) => {}
            None => panic!("not disconnected"),
        }
        assert!(tokio::time::Instant::now() < deadline);
    }
}

async fn a_socket_is_closed_when_its_login_ends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, token) = agent(&app, "dave", "all").await;
    let mut client = socket(&app, json!({"token": token})).await;
    let response = app
        .send_as(&token, Method::POST, "/api/auth/logout", None)
        .await;
    assert_eq!(response.status(), 204);
    let ended = client.expect("session:expired", WITHIN).await;
    assert_eq!(ended["code"], "session_revoked");
    match client.next(WITHIN).await {
        Some(Seen::Disconnected(reason)) => assert_eq!(reason, "io server disconnect"),
        other => panic!("not disconnected: {other:?}"),
    }
}

async fn rights_changed_while_connected_apply_to_the_open_socket(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (erin, token) = agent(&app, "erin", "assigned").await;
    let mut client = socket(&app, json!({"token": token})).await;
    post(&app, &text_from("15550601", "wamid.rights.1")).await;
    app.settle().await;
    let hidden = client.envelopes_until_quiet(QUIET).await;
    assert!(
        hidden.iter().all(|e| e["aggregate_id"] != "wamid.rights.1"),
        "{hidden:?}"
    );

    // Widened: the next customer message reaches the open socket.
    let widened = app
        .send_as(
            &app.admin_token,
            Method::PATCH,
            &format!("/api/agents/{erin}"),
            Some(json!({"permissions": {"can_read_chats": "all"}})),
        )
        .await;
    assert_eq!(widened.status(), 200);
    post(&app, &text_from("15550602", "wamid.rights.2")).await;
    expect_message(&mut client, "wamid.rights.2").await;

    // Deactivated: the socket is closed with the reason.
    let deactivated = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/agents/{erin}/deactivate"),
            None,
        )
        .await;
    assert_eq!(deactivated.status(), 204);
    let closed = client.expect("session:expired", WITHIN).await;
    assert!(
        ["agent_deactivated", "session_revoked"]
            .contains(&closed["code"].as_str().unwrap_or_default()),
        "{closed}"
    );
}

/// `/api/health/detailed` counts the sockets connected to the instance.
async fn health_counts_the_connected_sockets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    async fn connected(app: &TestApp) -> Value {
        app.get_json("/api/health/detailed").await["sockets"]["connected"].clone()
    }
    assert_eq!(connected(&app).await, 0);
    let (_, token) = agent(&app, "sockets", "all").await;
    let first = socket(&app, json!({"token": token})).await;
    let second = socket(&app, json!({"token": token})).await;
    assert_eq!(connected(&app).await, 2);
    first.close().await;
    let deadline = std::time::Instant::now() + WITHIN;
    while connected(&app).await != 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "a closed socket is no longer counted"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.close().await;
}

on_both_backends!(
    health_counts_the_connected_sockets,
    rights_changed_while_connected_apply_to_the_open_socket,
    a_socket_is_closed_when_its_login_ends,
    a_webhook_reaches_the_sockets_allowed_to_see_it_and_no_other,
    a_bad_handshake_is_refused_with_its_reason,
    a_reconnecting_socket_gets_every_missed_event_once_in_order,
    auth_refresh_keeps_the_socket_and_an_expired_one_is_disconnected,
);

/// A `switchboard serve` process on `database`, killed when dropped.
struct ServeProcess {
    address: String,
    _child: tokio::process::Child,
}

impl ServeProcess {
    async fn start(database: &[String]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(database)
            .env_remove("DATABASE_URL")
            .env("WHATSAPP_APP_SECRET", crate::helpers::APP_SECRET)
            .env("SWITCHBOARD_JWT_SECRET", crate::helpers::JWT_SECRET)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("switchboard serve runs");
        let address = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let ready = client
                .get(format!("{address}/api/health/ready"))
                .send()
                .await;
            if ready.is_ok_and(|r| r.status() == 200) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "serve did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self {
            address,
            _child: child,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_posted_to_one_serve_process_reaches_a_socket_on_another() {
    if crate::helpers::postgres_url().is_none() {
        return;
    }
    let fresh = crate::helpers::FreshDatabase::new(Backend::Postgres).await;
    let created = tokio::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .args([
            "agent",
            "create",
            "--email",
            "ops@example.com",
            "--name",
            "Ops",
            "--role",
            "admin",
            "--password-stdin",
        ])
        .args(&fresh.cli_args)
        .env_remove("DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("switchboard runs");
    let mut created = created;
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = created.stdin.take().expect("stdin");
        stdin
            .write_all(format!("{PASSWORD}\n").as_bytes())
            .await
            .expect("password");
    }
    assert!(created.wait().await.expect("exits").success());

    let first = ServeProcess::start(&fresh.cli_args).await;
    let second = ServeProcess::start(&fresh.cli_args).await;
    let client = reqwest::Client::new();
    let token = crate::helpers::login(&client, &second.address, "ops@example.com", PASSWORD).await;
    let mut on_second = SocketClient::connect(&second.address, json!({"token": token}))
        .await
        .expect("socket on the second process");
    let mut on_first = SocketClient::connect(&first.address, json!({"token": token}))
        .await
        .expect("socket on the first process");

    for n in 1..=3 {
        let body = text_from("15550501", &format!("wamid.two.{n}"));
        let response = client
            .post(format!("{}/webhooks/whatsapp", first.address))
            .header("content-type", "application/json")
            .header(
                "x-hub-signature-256",
                switchboard::whatsapp::signature::sign(crate::helpers::APP_SECRET, &body),
            )
            .body(body)
            .send()
            .await
            .expect("webhook sent");
        assert_eq!(response.status(), 200);
    }
    // Either process may have processed any of them, in any order: each socket sees all three.
    for client in [&mut on_second, &mut on_first] {
        let mut missing: BTreeSet<String> = (1..=3).map(|n| format!("wamid.two.{n}")).collect();
        while !missing.is_empty() {
            let envelope = client.expect("event", WITHIN).await;
            if envelope["type"] == "MessageInboundReceived" {
                missing.remove(envelope["aggregate_id"].as_str().unwrap_or_default());
            }
        }
    }
}
