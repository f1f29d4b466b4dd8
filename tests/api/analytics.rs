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

/// The scripted day both tests measure; returns Ana's and Bruno's conversations.
async fn scripted_day(app: &TestApp) -> (String, String) {
    let mut script = Script { app, now: 0 };
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
    (ana, bruno)
}

async fn response_times_equal_the_hand_computed_ones(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    scripted_day(&app).await;

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
    let log = app.log();
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

/// The day's script happens 20:26:40–20:43:20 UTC (22:26:40–22:43:20 in Madrid). A policy
/// whose business hours run 22:28–22:35 Madrid time counts only seconds 80 to 500 of it.
async fn business_hours_agents_volumes_and_csv(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (ana, _bruno) = scripted_day(&app).await;
    let policy: Value = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/sla-policies",
            Some(
                json!({"name": "Evening desk", "first_response_seconds": 3600,
                "business_hours": {"days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                    "start": "22:28", "end": "22:35", "timezone": "Europe/Madrid"}}),
            ),
        )
        .await
        .json()
        .await
        .expect("policy");
    app.settle().await;
    let period = "from=2026-05-28T00:00:00Z&to=2026-05-30T00:00:00Z";
    let policy_id = policy["id"].as_str().expect("id");

    // In business hours: Ana waited 80→120 (40 s) and 300→360 (60 s); Bruno 400→500 of his
    // 400→700 wait (100 s), and his resolution 400→800 counts 100 s.
    let times = app
        .get_json(&format!(
            "/api/analytics/overview?{period}&sla_policy={policy_id}"
        ))
        .await["times"]
        .clone();
    assert_eq!(
        times["first_response"],
        json!({"count": 2, "average_seconds": 70.0, "median_seconds": 70.0, "p90_seconds": 100.0})
    );
    assert_eq!(
        times["next_response"],
        json!({"count": 1, "average_seconds": 60.0, "median_seconds": 60.0, "p90_seconds": 60.0})
    );
    assert_eq!(
        times["resolution"],
        json!({"count": 1, "average_seconds": 100.0, "median_seconds": 100.0, "p90_seconds": 100.0})
    );

    // Per agent and day: the admin sent 4 replies in 2 conversations, 3 of which answered a
    // waiting customer (120, 60 and 300 s; in business hours 40, 60 and 100 s).
    let agents_listed = app.get_json("/api/agents").await;
    let admin_id = agents_listed
        .as_array()
        .or_else(|| agents_listed["items"].as_array())
        .expect("agents")
        .iter()
        .find(|a| a["email"] == app.admin.0.as_str())
        .expect("the admin")["id"]
        .clone();
    let agents = app
        .get_json(&format!("/api/analytics/agents?{period}"))
        .await;
    let rows = agents["rows"].as_array().expect("rows");
    assert_eq!(rows.len(), 1, "{agents}");
    let row = &rows[0];
    assert_eq!(row["day"], "2026-05-28");
    assert_eq!(row["agent_id"], admin_id);
    assert_eq!(row["conversations_handled"], 2);
    assert_eq!(row["replies"], 4);
    assert_eq!(row["responses"], 3);
    assert_eq!(row["median_response_seconds"], 120.0);
    assert_eq!(row["p90_response_seconds"], 300.0);
    let in_hours = app
        .get_json(&format!(
            "/api/analytics/agents?{period}&sla_policy={policy_id}"
        ))
        .await;
    assert_eq!(in_hours["rows"][0]["median_response_seconds"], 60.0);
    assert_eq!(in_hours["rows"][0]["p90_response_seconds"], 100.0);
    // Days are the time zone's: in Tokyo it all happened on the 29th.
    let tokyo = app
        .get_json(&format!("/api/analytics/agents?{period}&tz=Asia/Tokyo"))
        .await;
    assert_eq!(tokyo["rows"][0]["day"], "2026-05-29");

    // Volumes per hour in Madrid: five customer messages and four replies, not yet sent.
    let volume = app
        .get_json(&format!(
            "/api/analytics/volume?{period}&bucket=hour&tz=Europe/Madrid"
        ))
        .await;
    assert_eq!(
        volume["rows"],
        json!([{"start": "2026-05-28T22:00:00+02:00", "phone_number_id": "120000000000001",
            "inbound": 5, "outbound": 4, "pending": 4, "sent": 0, "delivered": 0, "read": 0,
            "failed": 0, "failed_by_code": {}}])
    );

    // Filters: another number, agent or group selects nothing.
    for filter in [
        "phone_number_id=999",
        "agent=00000000-0000-4000-8000-000000000000",
        "group=00000000-0000-4000-8000-000000000000",
    ] {
        let none = app
            .get_json(&format!("/api/analytics/overview?{period}&{filter}"))
            .await;
        assert_eq!(none["times"]["first_response"]["count"], 0, "{filter}");
        let none = app
            .get_json(&format!("/api/analytics/agents?{period}&{filter}"))
            .await;
        assert_eq!(none["rows"], json!([]), "{filter}");
    }
    let ana_only = app
        .get_json(&format!(
            "/api/analytics/overview?{period}&phone_number_id=120000000000001"
        ))
        .await;
    assert_eq!(ana_only["times"]["first_response"]["count"], 2);
    let _ = ana;

    // CSV equals JSON, asked either way; an empty report still has its header.
    for report in ["agents", "volume", "templates", "sla"] {
        let path = format!("/api/analytics/{report}?{period}&bucket=hour");
        let path = if report == "volume" {
            path
        } else {
            path.replace("&bucket=hour", "")
        };
        let json = app.get_json(&path).await;
        let by_param = app.get(&format!("{path}&format=csv")).await;
        assert_eq!(by_param.status(), 200);
        assert!(by_param.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/csv"));
        let by_param = by_param.text().await.expect("csv");
        let by_header = app
            .client
            .get(app.url(&path))
            .bearer_auth(&app.admin_token)
            .header("accept", "text/csv")
            .send()
            .await
            .expect("csv")
            .text()
            .await
            .expect("csv");
        assert_eq!(by_param, by_header, "{report}");
        assert_csv_equals_json(&by_param, &json["rows"], report);
    }
    let overview_csv = app
        .get(&format!("/api/analytics/overview?{period}&format=csv"))
        .await
        .text()
        .await
        .expect("csv");
    assert!(overview_csv.starts_with("measure,count,average_seconds,median_seconds,p90_seconds\n"));
    assert!(
        overview_csv.contains("\nfirst_response,2,210.0,210.0,300.0\n"),
        "{overview_csv}"
    );
    // Rebuilt from the log, every report is the same.
    let reports = ["overview", "agents", "volume", "templates", "sla"]
        .map(|r| format!("/api/analytics/{r}?{period}&tz=Europe/Madrid"));
    let mut before = Vec::new();
    for path in &reports {
        before.push(app.get_json(path).await);
    }
    let log = app.log();
    switchboard::replay::rebuild(&log, &[])
        .await
        .expect("rebuild");
    for (path, was) in reports.iter().zip(before) {
        assert_eq!(app.get_json(path).await, was, "{path} after a rebuild");
    }
    assert_eq!(
        app.get(&format!("/api/analytics/volume?{period}&bucket=week"))
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get(&format!("/api/analytics/agents?{period}&tz=Mars/Olympus"))
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get(&format!("/api/analytics/agents?{period}&format=xml"))
            .await
            .status(),
        400
    );
}

/// Every CSV line is the JSON row of the same index, column for column (maps as `k=v;…`).
fn assert_csv_equals_json(csv_text: &str, rows: &Value, report: &str) {
    let rows = rows.as_array().expect("rows");
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(str::to_owned)
        .collect();
    assert!(!header.is_empty(), "{report}: a header");
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.expect("record")).collect();
    assert_eq!(records.len(), rows.len(), "{report}: {csv_text}");
    for (record, row) in records.iter().zip(rows) {
        for (column, cell) in header.iter().zip(record.iter()) {
            let expected = match &row[column] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                Value::Object(map) => map
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(";"),
                Value::Number(n) if n.is_f64() => format!("{:?}", n.as_f64().expect("f64")),
                other => other.to_string(),
            };
            assert_eq!(cell, expected, "{report}.{column}");
        }
    }
}

on_both_backends!(
    response_times_equal_the_hand_computed_ones,
    business_hours_agents_volumes_and_csv
);
