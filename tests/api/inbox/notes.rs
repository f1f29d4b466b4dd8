//! Private notes: never sent, in the timeline, on sockets, and to the mentioned agent.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::Backend;
use crate::locks::agent;
use crate::on_both_backends;
use crate::socket_client::SocketClient;

async fn a_note_stays_in_the_team_and_reaches_the_mentioned_agent(backend: Backend) {
    let (simulator, app, conversation) = crate::outbound::wired_sending(backend, true).await;
    let (ana, ana_token) = agent(&app, "ana", "agent").await;
    // Bo reads every conversation but writes none; Cy reads only his own, so he may not be
    // mentioned here.
    let bo = app
        .create_agent(
            json!({"email": "bo@example.com", "name": "Bo", "role": "agent",
            "password": "a long enough password",
            "permissions": {"can_read_chats": "all", "can_write_to_chats": "none"}}),
        )
        .await;
    let cy = app
        .create_agent(
            json!({"email": "cy@example.com", "name": "Cy", "role": "agent",
            "password": "a long enough password",
            "permissions": {"can_read_chats": "assigned", "can_write_to_chats": "assigned"}}),
        )
        .await;
    let bo_token = app.login("bo@example.com", "a long enough password").await;
    let mut bo_socket = SocketClient::connect(&app.address, json!({"token": bo_token}))
        .await
        .expect("bo connects");
    let mut ana_socket = SocketClient::connect(&app.address, json!({"token": ana_token}))
        .await
        .expect("ana connects");

    let path = format!("/api/conversations/{conversation}/notes");
    let body = json!({"text": "Customer is a VIP, offer the refund", "mentions": [bo]});
    let response = app
        .send_as(&ana_token, Method::POST, &path, Some(body))
        .await;
    assert_eq!(response.status(), 201);
    let note: Value = response.json().await.expect("JSON");
    let note_id = note["id"].as_str().expect("id").to_owned();

    let mention = bo_socket.expect("mention", Duration::from_secs(10)).await;
    assert_eq!(mention["type"], "ConversationNoteAdded", "{mention}");
    assert_eq!(mention["conversation_id"], conversation);
    let seen = ana_socket.expect("event", Duration::from_secs(10)).await;
    assert_eq!(seen["type"], "ConversationNoteAdded", "{seen}");

    app.settle().await;
    let timeline = app.messages(&conversation).await;
    let shown = timeline
        .iter()
        .find(|m| m["id"] == format!("note:{note_id}"))
        .expect("the note is in the timeline");
    assert_eq!(shown["direction"], "note");
    assert_eq!(
        shown["content"]["text"],
        "Customer is a VIP, offer the refund"
    );
    assert_eq!(shown["requested_by"], ana);
    // Never sent: a reply sent after it reaches the simulator, the note never does.
    crate::outbound::send_text(&app, &conversation, "after-the-note").await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while simulator.received().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reply was not sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = simulator.received();
    assert_eq!(received.len(), 1, "{received:?}");
    assert!(!received[0].to_string().contains("VIP"), "{received:?}");
    // Notes follow the write scope; an empty note, an unknown agent and one who may not read
    // the conversation are refused.
    let response = app
        .send_as(&bo_token, Method::POST, &path, Some(json!({"text": "hi"})))
        .await;
    assert_eq!(response.status(), 403);
    for bad in [
        json!({"text": "  "}),
        json!({"text": "x", "mentions": ["00000000-0000-4000-8000-000000000009"]}),
        json!({"text": "x", "mentions": [cy]}),
    ] {
        let response = app
            .send_as(&ana_token, Method::POST, &path, Some(bad.clone()))
            .await;
        assert_eq!(response.status(), 422, "{bad}");
    }
    bo_socket.close().await;
    ana_socket.close().await;
}

on_both_backends!(a_note_stays_in_the_team_and_reaches_the_mentioned_agent);
