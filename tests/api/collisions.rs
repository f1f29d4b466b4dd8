//! Two agents answering one customer: a reply is a conversation event, decided with its append,
//! so a stale `expected_version` or a lock taken a moment earlier refuses it, even in a race.

use futures::future::join_all;
use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::locks::{agent, conversation_with, lock};
use crate::on_both_backends;

async fn reply(
    app: &TestApp,
    token: &str,
    conversation: &str,
    client_id: &str,
    expected_version: Option<u64>,
) -> reqwest::Response {
    let mut body = json!({"client_id": client_id, "type": "text", "body": "On it!"});
    if let Some(version) = expected_version {
        body["expected_version"] = json!(version);
    }
    app.send_as(
        token,
        Method::POST,
        &format!("/api/conversations/{conversation}/messages"),
        Some(body),
    )
    .await
}

async fn version_of(app: &TestApp, conversation: &str) -> u64 {
    app.get_json(&format!("/api/conversations/{conversation}"))
        .await["version"]
        .as_u64()
        .expect("version")
}

async fn fifty_agents_replying_with_one_version_have_exactly_one_winner(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let conversation = conversation_with(&app, "4930000100").await;
    let names: Vec<String> = (0..50).map(|i| format!("replier{i}")).collect();
    let agents = join_all(names.iter().map(|name| agent(&app, name, "agent"))).await;
    let seen = version_of(&app, &conversation).await;
    let replies = agents.iter().enumerate().map(|(i, (_, token))| {
        let client_id = format!("race-{i}");
        let conversation = conversation.clone();
        let app = &app;
        async move { reply(app, token, &conversation, &client_id, Some(seen)).await }
    });
    let mut accepted = 0;
    for response in join_all(replies).await {
        let status = response.status().as_u16();
        let body: Value = response.json().await.expect("JSON");
        match status {
            202 => accepted += 1,
            409 => assert_eq!(body["error"]["code"], "conversation_changed", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(
        accepted, 1,
        "exactly one reply with version {seen} gets through"
    );
    app.settle().await;
    assert_eq!(
        version_of(&app, &conversation).await,
        seen + 1,
        "the reply moved the conversation's version"
    );
    let outbound = app
        .messages(&conversation)
        .await
        .into_iter()
        .filter(|m| m["direction"] == "outbound")
        .count();
    assert_eq!(outbound, 1, "one message stored");
    // The same client id again is the same message, not a collision.
    let (_, token) = &agents[0];
    let again = reply(&app, token, &conversation, "race-0", Some(seen)).await;
    assert!(matches!(again.status().as_u16(), 202 | 409));
}

async fn a_reply_under_another_agents_lock_is_refused_even_in_a_race(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, alice) = agent(&app, "alice", "agent").await;
    let (_, bob) = agent(&app, "bob", "agent").await;
    let conversation = conversation_with(&app, "4930000200").await;
    assert_eq!(lock(&app, &alice, &conversation, None).await.status(), 200);
    let refused = reply(&app, &bob, &conversation, "under-lock", None).await;
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "conversation_locked", "{body}");
    // The holder may reply.
    assert_eq!(
        reply(&app, &alice, &conversation, "holder", None)
            .await
            .status(),
        202
    );

    // Lock and reply fired together, both on the version their agent saw: never both.
    for round in 0..20 {
        let conversation = conversation_with(&app, &format!("49300003{round:02}")).await;
        let seen = version_of(&app, &conversation).await;
        let body = json!({"expected_version": seen});
        let client_id = format!("r{round}");
        let (locked, replied) = tokio::join!(
            lock(&app, &alice, &conversation, Some(body)),
            reply(&app, &bob, &conversation, &client_id, Some(seen)),
        );
        let (locked, replied) = (locked.status().as_u16(), replied.status().as_u16());
        assert!(
            !(locked == 200 && replied == 202),
            "round {round}: the lock and the reply both succeeded"
        );
        assert!(locked == 200 || replied == 202, "round {round}: one wins");
        assert!(matches!(locked, 200 | 409) && matches!(replied, 202 | 409));
    }
}

async fn a_reply_may_only_quote_or_react_to_messages_of_its_conversation(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mine = conversation_with(&app, "4930000400").await;
    conversation_with(&app, "4930000401").await;
    let token = app.admin_token.clone();
    let send = |body: Value| {
        let app = &app;
        let token = token.clone();
        let mine = mine.clone();
        async move {
            app.send_as(
                &token,
                Method::POST,
                &format!("/api/conversations/{mine}/messages"),
                Some(body),
            )
            .await
        }
    };
    for body in [
        json!({"client_id": "q1", "type": "text", "body": "hi", "reply_to": "wamid.lock4930000401"}),
        json!({"client_id": "q2", "type": "text", "body": "hi", "reply_to": "wamid.nowhere"}),
        json!({"client_id": "q3", "type": "reaction", "message_id": "wamid.lock4930000401", "emoji": "👍"}),
    ] {
        let response = send(body.clone()).await;
        assert_eq!(response.status(), 422, "{body}");
        let error: Value = response.json().await.expect("JSON");
        assert_eq!(error["error"]["code"], "unknown_message", "{error}");
    }
    for body in [
        json!({"client_id": "q4", "type": "text", "body": "hi", "reply_to": "wamid.lock4930000400"}),
        json!({"client_id": "q5", "type": "reaction", "message_id": "wamid.lock4930000400", "emoji": "👍"}),
    ] {
        assert_eq!(send(body.clone()).await.status(), 202, "{body}");
    }
}

on_both_backends!(
    fifty_agents_replying_with_one_version_have_exactly_one_winner,
    a_reply_under_another_agents_lock_is_refused_even_in_a_race,
    a_reply_may_only_quote_or_react_to_messages_of_its_conversation,
);
