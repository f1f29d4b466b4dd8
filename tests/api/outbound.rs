//! An agent's reply end to end, over real HTTP: server and Cloud API simulator both running.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use switchboard::simulator::{Simulator, SimulatorSettings};

use crate::helpers::{fixture, Backend, TestApp, APP_SECRET};
use crate::on_both_backends;

async fn a_reply_goes_queued_sent_delivered_read(backend: Backend) {
    let simulator = Simulator::start(
        "127.0.0.1:0",
        SimulatorSettings {
            access_token: "simulator-token".to_owned(),
            app_secret: APP_SECRET.to_owned(),
            webhook_url: None,
            status_delay: Duration::from_millis(30),
        },
    )
    .await
    .expect("simulator");
    let graph_url = simulator.url();
    let app = TestApp::spawn_with(backend, move |s| {
        s.outbound.send = true;
        s.outbound.graph.base_url = graph_url;
        s.outbound.graph.access_token = Some("simulator-token".into());
    })
    .await;
    simulator.set_webhook_url(app.url("/webhooks/whatsapp"));
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_text.json"))
            .await
            .status(),
        200
    );
    app.settle().await;
    let conversation = app.conversation_of("15550002222").await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let accepted: Value = app
        .send_as(&app.admin_token, Method::POST, &format!("/api/conversations/{conversation}/messages"),
            Some(json!({"client_id": "reply-1", "type": "text", "body": "It does come in blue.",
                        "reply_to": "wamid.HBgLMTU1NTAwMDIyMjIVAgASGBQ2NEZBQ0EyRENCQjg1NUJFREM4QwA="})))
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(accepted["status"], "queued");
    let id = accepted["id"].as_str().expect("id").to_owned();

    let deadline = Instant::now() + Duration::from_secs(20);
    let message = loop {
        app.settle().await;
        let message = app.get_json(&format!("/api/messages/{id}")).await;
        if message["status"] == "read" {
            break message;
        }
        assert!(Instant::now() < deadline, "never read: {message}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(message["wamid"]
        .as_str()
        .is_some_and(|w| w.starts_with("wamid.SIM")));
    for status in ["sent", "delivered", "read"] {
        assert!(
            message["statuses"][status].is_string(),
            "{status} has its time"
        );
    }
    let received = simulator.received();
    assert_eq!(received.len(), 1, "sent once");
    let body = &received[0];
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["to"], "15550002222");
    assert_eq!(body["type"], "text");
    assert_eq!(body["text"]["body"], "It does come in blue.");
    assert_eq!(
        body["context"]["message_id"],
        "wamid.HBgLMTU1NTAwMDIyMjIVAgASGBQ2NEZBQ0EyRENCQjg1NUJFREM4QwA="
    );
    assert_eq!(body["biz_opaque_callback_data"], id.as_str());
}

on_both_backends!(a_reply_goes_queued_sent_delivered_read);
