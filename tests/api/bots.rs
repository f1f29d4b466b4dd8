//! The bot, end to end: a customer writing to a conversation with the bot reaches the bot's
//! endpoint; the bot answers through the API with its key (and only there) and the simulator
//! receives the reply; the bot hands off; a bot that does not answer, or whose endpoint fails,
//! gets the customer handed to the humans.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::integrations::{register, texts};
use crate::on_both_backends;
use crate::outbound::wired_sending_with;
use crate::receiver::{free_port, Receiver};

const NUMBER: &str = "120000000000001";

async fn post(app: &TestApp, token: &str, path: &str, body: Value) -> reqwest::Response {
    app.send_as(token, Method::POST, path, Some(body)).await
}

async fn status_of(app: &TestApp, conversation: &str) -> Value {
    app.get_json(&format!("/api/conversations/{conversation}"))
        .await
}

/// Waits until the conversation has left the bot; answers the hand-off event.
async fn handed_off(app: &TestApp, conversation: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        app.settle().await;
        let events = app.get_json("/api/events?after=0&limit=1000").await;
        if let Some(event) = events["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|e| e["type"] == "ConversationHandedOff" && e["aggregate_id"] == conversation)
        {
            return event.clone();
        }
        assert!(Instant::now() < deadline, "never handed off");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn a_bot_answers_hands_off_and_never_strands_a_customer(backend: Backend) {
    let (simulator, app, conversation) = wired_sending_with(backend, true, |s| {
        s.outgoing.bot_reply_timeout = Duration::from_secs(60);
    })
    .await;
    let port = free_port();
    let (_, secret) = register(
        &app,
        json!({"url": format!("http://127.0.0.1:{port}/bot"), "bot": true,
        "event_types": ["MessageInboundReceived"]}),
    )
    .await;
    let mut bot = Receiver::start(port, &secret);
    let created: Value = post(
        &app,
        &app.admin_token,
        "/api/api-keys",
        json!({"name": "Shop bot", "bot": true}),
    )
    .await
    .json()
    .await
    .expect("key");
    let key = created["secret"].as_str().expect("secret").to_owned();
    let path = |p: &str| format!("/api/conversations/{conversation}{p}");

    // Not with the bot: the key may read it but not answer.
    let refused = post(
        &app,
        &key,
        &path("/messages"),
        json!({"client_id": "bot-1", "type": "text", "body": "Hi, I am the bot"}),
    )
    .await;
    assert_eq!(refused.status(), 409);
    let body: Value = refused.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "not_with_bot");

    // Handed back to the bot; the customer writes; the bot's endpoint receives it.
    let back = post(&app, &app.admin_token, &path("/handback"), json!({})).await;
    assert_eq!(back.status(), 200);
    assert_eq!(
        app.post_webhook(&texts(NUMBER, "15550002222", 10, 1))
            .await
            .status(),
        200
    );
    let received = bot
        .wait_for("the customer's message", |r| !r.is_empty())
        .await;
    assert_eq!(
        received.len(),
        1,
        "only what came while with the bot: {received:?}"
    );
    assert_eq!(received[0]["verified"], true);
    assert_eq!(
        received[0]["payload"]["conversation_id"],
        conversation.as_str()
    );
    assert_eq!(received[0]["payload"]["type"], "MessageInboundReceived");

    // The bot answers with its key; Meta (the simulator) receives the reply.
    let sent = post(
        &app,
        &key,
        &path("/messages"),
        json!({"client_id": "bot-2", "type": "text", "body": "Blue is in stock!"}),
    )
    .await;
    assert_eq!(sent.status(), 202, "{:?}", sent.text().await);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !simulator
        .received()
        .iter()
        .any(|m| m["text"]["body"] == "Blue is in stock!")
    {
        assert!(Instant::now() < deadline, "the reply never reached Meta");
        app.settle().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The bot hands off: open, nobody's, waiting for assignment (no policy here: unassigned).
    let handoff = post(
        &app,
        &key,
        &path("/handoff"),
        json!({"reason": "customer asked for a human"}),
    )
    .await;
    assert_eq!(handoff.status(), 200);
    let event = handed_off(&app, &conversation).await;
    assert_eq!(
        event["data"]["HandedOff"]["reason"],
        "customer asked for a human"
    );
    assert_eq!(
        event["metadata"]["actor_id"]
            .as_str()
            .or(event["data"]["HandedOff"]["by"].as_str()),
        created["id"].as_str(),
        "the key is the actor"
    );
    let view = status_of(&app, &conversation).await;
    assert_eq!(view["status"], "open");
    assert_eq!(view["assigned_agent_id"], Value::Null);
    let again = post(&app, &key, &path("/handoff"), json!({"reason": "again"})).await;
    assert_eq!(again.status(), 409, "no longer with the bot");

    // A bot that never answers: after the timeout, handed off with that reason.
    assert_eq!(
        post(&app, &app.admin_token, &path("/handback"), json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_webhook(&texts(NUMBER, "15550002222", 20, 1))
            .await
            .status(),
        200
    );
    bot.wait_for("the second message", |r| r.len() == 2).await;
    app.settle().await;
    assert_eq!(status_of(&app, &conversation).await["status"], "pending");
    // The customer wrote at 20 s past the clock's start; the bot had until 80 s.
    app.clock.advance_seconds(79);
    // The watch passes every 20 ms: 300 ms gives it a dozen chances to hand off too early.
    tokio::time::sleep(Duration::from_millis(300)).await;
    app.settle().await;
    assert_eq!(
        status_of(&app, &conversation).await["status"],
        "pending",
        "not before"
    );
    app.clock.advance_seconds(2);
    let deadline = Instant::now() + Duration::from_secs(20);
    let event = loop {
        let events = app.get_json("/api/events?after=0&limit=1000").await;
        let found: Vec<Value> = events["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["type"] == "ConversationHandedOff")
            .cloned()
            .collect();
        if found.len() == 2 {
            break found[1].clone();
        }
        assert!(Instant::now() < deadline, "no hand-off after the timeout");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(event["data"]["HandedOff"]["reason"], "bot_timeout");
    app.settle().await;
    assert_eq!(status_of(&app, &conversation).await["status"], "open");

    // The bot's endpoint fails: a customer waiting for it is handed off at once.
    bot.stop();
    assert_eq!(
        post(&app, &app.admin_token, &path("/handback"), json!({}))
            .await
            .status(),
        200
    );
    assert_eq!(
        app.post_webhook(&texts(NUMBER, "15550002222", 30, 1))
            .await
            .status(),
        200
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let events = app.get_json("/api/events?after=0&limit=1000").await;
        let reasons: Vec<Value> = events["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| e["type"] == "ConversationHandedOff")
            .map(|e| e["data"]["HandedOff"]["reason"].clone())
            .collect();
        if reasons.len() == 3 {
            assert_eq!(reasons[2], "bot_unreachable");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not handed off while the bot fails"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let keys = app.get_json("/api/api-keys").await;
    assert_eq!(keys[0]["bot"], true);
    assert!(keys[0]["last_used_at"].is_string(), "last used: {keys}");
}

on_both_backends!(a_bot_answers_hands_off_and_never_strands_a_customer);
