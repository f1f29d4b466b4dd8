//! Analytics from a scripted stretch of a day, on the test's clock: first response, next
//! response and resolution times equal the hand-computed ones, and a rebuild gives the same.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{fixture_epoch, Backend, TestApp};
use crate::on_both_backends;

/// A customer's text with Meta's timestamp `at` (Unix seconds).
pub fn customer_text(wa_id: &str, wamid: &str, at: i64) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550001111", "phone_number_id": "120000000000001"},
        "contacts": [{"wa_id": wa_id, "profile": {"name": wa_id}}],
        "messages": [{"from": wa_id, "id": wamid, "timestamp": at.to_string(),
                      "type": "text", "text": {"body": "hello"}}]}}]}]})
    .to_string()
    .into_bytes()
}

/// The script's clock: seconds after the test epoch.
pub struct Script<'a> {
    pub app: &'a TestApp,
    pub now: i64,
}

impl Script<'_> {
    pub fn at(&mut self, second: i64) -> i64 {
        self.app.clock.advance_seconds(second - self.now);
        self.now = second;
        fixture_epoch().unix_millis() / 1000 + second
    }

    pub async fn customer_writes(&mut self, second: i64, wa_id: &str, wamid: &str) -> String {
        let at = self.at(second);
        let posted = self
            .app
            .post_webhook(&customer_text(wa_id, wamid, at))
            .await;
        assert_eq!(posted.status(), 200);
        self.app.settle().await;
        self.app.conversation_of(wa_id).await["id"]
            .as_str()
            .expect("id")
            .to_owned()
    }

    pub async fn agent_replies(&mut self, second: i64, conversation: &str) {
        self.at(second);
        let sent = self
            .app
            .send_as(
                &self.app.admin_token,
                Method::POST,
                &format!("/api/conversations/{conversation}/messages"),
                Some(json!({"client_id": format!("reply-{second}"), "type": "text", "body": "on it"})),
            )
            .await;
        assert_eq!(sent.status(), 202, "{:?}", sent.text().await);
        self.app.settle().await;
    }

    pub async fn resolve(&mut self, second: i64, conversation: &str) {
        self.at(second);
        let resolved = self
            .app
            .send_as(
                &self.app.admin_token,
                Method::PUT,
                &format!("/api/conversations/{conversation}/status"),
                Some(json!({"status": "resolved"})),
            )
            .await;
        assert_eq!(resolved.status(), 200, "{:?}", resolved.text().await);
        self.app.settle().await;
    }
}

async fn overview(app: &TestApp) -> Value {
    let from = fixture_epoch().to_string();
    app.get_json(&format!(
        "/api/analytics/overview?from={from}&to=2026-05-29T20:00:00Z"
    ))
    .await
}

async fn response_times_equal_the_hand_computed_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut script = Script { app: &app, now: 0 };
    // Ana writes at 0 and is answered at 120 (first response 120 s); writes again at 300 and
    // 310, answered at 360 (next response 60 s: from her first message since the reply);
    // resolved at 900, then she writes at 1000 (reopened: no longer resolved).
    let ana = script.customer_writes(0, "15550000001", "wamid.A1").await;
    script.agent_replies(120, &ana).await;
    script.customer_writes(300, "15550000001", "wamid.A2").await;
    script.customer_writes(310, "15550000001", "wamid.A3").await;
    script.agent_replies(360, &ana).await;
    // A second reply with nobody waiting answers no one.
    script.agent_replies(370, &ana).await;
    // Bruno writes at 400, answered at 700 (first response 300 s), resolved at 800 (400 s).
    let bruno = script.customer_writes(400, "15550000002", "wamid.B1").await;
    script.agent_replies(700, &bruno).await;
    script.resolve(800, &bruno).await;
    script.resolve(900, &ana).await;
    script
        .customer_writes(1000, "15550000001", "wamid.A4")
        .await;

    let times = overview(&app).await["times"].clone();
    assert_eq!(times["conversations_started"], 2);
    assert_eq!(
        times["first_response"],
        json!({"count": 2, "average_seconds": 210.0, "median_seconds": 210.0, "p90_seconds": 300.0})
    );
    assert_eq!(
        times["next_response"],
        json!({"count": 1, "average_seconds": 60.0, "median_seconds": 60.0, "p90_seconds": 60.0})
    );
    assert_eq!(
        times["resolution"],
        json!({"count": 1, "average_seconds": 400.0, "median_seconds": 400.0, "p90_seconds": 400.0})
    );
    assert_eq!(times["reopened"], 1);

    // Replayed from the log, the analytics read models are the same, and verify agrees.
    let log = switchboard_store::EventRepository::new(app.database.clone());
    switchboard::replay::rebuild(&log, &[])
        .await
        .expect("rebuild");
    assert_eq!(overview(&app).await["times"], times, "rebuilt = live");
    let verified = switchboard::replay::verify::verify(&log)
        .await
        .expect("verify");
    assert!(verified.ok(), "verify after the rebuild");

    // A period before all this has none of it; a bad period is a 400; agents without the
    // permission get 403.
    let before = app
        .get_json("/api/analytics/overview?from=2020-01-01T00:00:00Z&to=2020-01-02T00:00:00Z")
        .await;
    assert_eq!(before["times"]["first_response"]["count"], 0);
    assert_eq!(
        before["times"]["first_response"]["median_seconds"],
        Value::Null
    );
    let backwards = app
        .get("/api/analytics/overview?from=2026-06-01T00:00:00Z&to=2026-05-01T00:00:00Z")
        .await;
    assert_eq!(backwards.status(), 400);
    assert_eq!(
        app.get("/api/analytics/overview?from=yesterday")
            .await
            .status(),
        400
    );
    app.create_agent(
        json!({"email": "plain@example.com", "name": "Plain", "role": "agent",
        "password": "a long enough password"}),
    )
    .await;
    let plain = app
        .login("plain@example.com", "a long enough password")
        .await;
    assert_eq!(
        app.get_as(&plain, "/api/analytics/overview").await.status(),
        403
    );
}

on_both_backends!(response_times_equal_the_hand_computed_ones);
