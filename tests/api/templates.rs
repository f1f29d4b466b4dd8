//! The template catalogue end to end, server and Cloud API simulator running: sync across
//! pages, status webhooks, management at Meta with review, parameter checks before anything
//! is queued, the window rule, and `can_manage_templates` on every management route.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use switchboard::simulator::{Review, Simulator};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;
use crate::outbound::{wired_sending, WABA_ID};

const PASSWORD: &str = "a long enough password";

async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let response = app.send_as(token, method, path, body).await;
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Polls `GET path` until `done` holds (10 s at most).
async fn until(app: &TestApp, path: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, body) = call(app, &app.admin_token, Method::GET, path, None).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{path} never got there: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn seeded(i: usize) -> Value {
    let status = match i % 5 {
        0 => "PENDING",
        1 => "REJECTED",
        _ => "APPROVED",
    };
    json!({
        "name": format!("t_{i:03}"),
        "language": if i.is_multiple_of(2) { "es" } else { "en_US" },
        "status": status,
        "category": if i.is_multiple_of(3) { "MARKETING" } else { "UTILITY" },
        "quality_score": {"score": "GREEN"},
        "components": [{"type": "BODY", "text": "Hola {{1}}", "example": {"body_text": [["Ana"]]}}],
    })
}

fn names(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("list")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn sync_pages_through_the_catalogue_and_webhooks_keep_it_current(backend: Backend) {
    let (simulator, app, _) = wired_sending(backend, true).await;
    simulator.add_templates(WABA_ID, (0..250).map(seeded).collect());
    let admin = app.admin_token.clone();
    let (status, report) = call(&app, &admin, Method::POST, "/api/templates/sync", None).await;
    assert_eq!(
        (status, report["listed"].as_u64()),
        (200, Some(250)),
        "{report}"
    );
    app.settle().await;
    let (_, all) = call(&app, &admin, Method::GET, "/api/templates", None).await;
    assert_eq!(names(&all).len(), 250);

    let expected: Vec<String> = (0..250)
        .filter(|i| i % 2 == 0 && i % 5 >= 2)
        .map(|i| format!("t_{i:03}"))
        .collect();
    let path = "/api/templates?status=APPROVED&language=es";
    let (_, approved_es) = call(&app, &admin, Method::GET, path, None).await;
    assert_eq!(names(&approved_es), expected);
    let (_, marketing) = call(
        &app,
        &admin,
        Method::GET,
        "/api/templates?category=marketing&q=t_00",
        None,
    )
    .await;
    assert_eq!(names(&marketing), ["t_000", "t_003", "t_006", "t_009"]);
    let one = &approved_es[0];
    assert_eq!(one["quality"], "GREEN");
    assert_eq!(one["variables"][0]["example"], "Ana", "{one}");
    assert_eq!(one["components"][0]["text"], "Hola {{1}}");

    // A second sync changes nothing; a template gone from Meta leaves the catalogue.
    let (_, again) = call(&app, &admin, Method::POST, "/api/templates/sync", None).await;
    assert_eq!(
        (again["changed"].as_u64(), again["removed"].as_u64()),
        (Some(0), Some(0))
    );
    let gone = one["id"].as_str().expect("id").to_owned();
    let deleted = reqwest::Client::new()
        .delete(format!(
            "{}/v24.0/{WABA_ID}/message_templates",
            simulator.url()
        ))
        .query(&[
            ("name", one["name"].as_str().expect("name")),
            ("hsm_id", &gone),
        ])
        .bearer_auth("simulator-token")
        .send()
        .await
        .expect("delete at the simulator");
    assert_eq!(deleted.status(), 200);
    let (_, after) = call(&app, &admin, Method::POST, "/api/templates/sync", None).await;
    assert_eq!(after["removed"].as_u64(), Some(1), "{after}");
    until(
        &app,
        &format!("/api/templates?q={}", one["name"].as_str().expect("name")),
        |l| l.as_array().is_some_and(Vec::is_empty),
    )
    .await;

    // Meta rejects one by webhook: the API shows the status and the reason.
    let target = &approved_es[1];
    let id: u64 = target["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("numeric id");
    let webhook = json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "time": 1_780_004_000,
        "changes": [{"field": "message_template_status_update", "value": {
            "event": "REJECTED", "message_template_id": id, "message_template_name": target["name"],
            "message_template_language": "es", "reason": "INCORRECT_CATEGORY"}}]}]});
    assert_eq!(
        app.post_webhook(webhook.to_string().as_bytes())
            .await
            .status(),
        200
    );
    let shown = until(&app, &format!("/api/templates/{id}"), |t| {
        t["status"] == "REJECTED"
    })
    .await;
    assert_eq!(shown["reason"], "INCORRECT_CATEGORY");
    let (_, approved_now) = call(&app, &admin, Method::GET, path, None).await;
    assert_eq!(names(&approved_now).len(), expected.len() - 2);

    // Quality, category and components reports change what the catalogue shows.
    let target = &approved_es[2];
    let id: u64 = target["id"]
        .as_str()
        .expect("id")
        .parse()
        .expect("numeric id");
    let report = |field: &str, mut value: Value| {
        value["message_template_id"] = json!(id);
        value["message_template_name"] = target["name"].clone();
        value["message_template_language"] = json!("es");
        json!({"object": "whatsapp_business_account", "entry": [{"id": WABA_ID, "time": 1_780_005_000,
            "changes": [{"field": field, "value": value}]}]})
        .to_string()
    };
    for webhook in [
        report(
            "message_template_quality_update",
            json!({"previous_quality_score": "GREEN", "new_quality_score": "YELLOW"}),
        ),
        report(
            "template_category_update",
            json!({"previous_category": "UTILITY", "new_category": "MARKETING"}),
        ),
        report(
            "message_template_components_update",
            json!({"message_template_title": "Pedido",
            "message_template_element": "Hola {{1}}, su pedido {{2}}", "message_template_footer": "Gracias",
            "message_template_buttons": [{"message_template_button_type": "URL", "message_template_button_text": "Ver",
                                          "message_template_button_url": "https://example.com/p/{{1}}"}]}),
        ),
    ] {
        assert_eq!(app.post_webhook(webhook.as_bytes()).await.status(), 200);
    }
    let shown = until(&app, &format!("/api/templates/{id}"), |t| {
        t["quality"] == "YELLOW"
            && t["category"] == "MARKETING"
            && t["components"][1]["text"] == "Hola {{1}}, su pedido {{2}}"
    })
    .await;
    let variables: Vec<(&str, &str)> = shown["variables"]
        .as_array()
        .expect("variables")
        .iter()
        .map(|v| {
            (
                v["component"].as_str().expect("component"),
                v["kind"].as_str().expect("kind"),
            )
        })
        .collect();
    assert_eq!(
        variables,
        [
            ("body", "text"),
            ("body", "text"),
            ("button[0]", "url_suffix")
        ]
    );
}

const ORDER_BODY: &str = "Hi {{1}}, order {{2}} has shipped.";

fn order_template(name: &str) -> Value {
    json!({"name": name, "language": "en_US", "category": "UTILITY", "components": [
        {"type": "BODY", "text": ORDER_BODY, "example": {"body_text": [["Sheena", "#4521"]]}},
        {"type": "FOOTER", "text": "Thanks"}]})
}

async fn submit(app: &TestApp, template: Value) -> String {
    let (status, created) = call(
        app,
        &app.admin_token,
        Method::POST,
        "/api/templates",
        Some(template),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["status"], "PENDING");
    created["id"].as_str().expect("id").to_owned()
}

async fn outbound_count(app: &TestApp, conversation: &str) -> usize {
    app.messages(conversation)
        .await
        .iter()
        .filter(|m| m["direction"] == "outbound")
        .count()
}

async fn sent_to_simulator(simulator: &Simulator, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let received = simulator.received();
        if received.len() >= count {
            return received;
        }
        assert!(
            Instant::now() < deadline,
            "the simulator received {}",
            received.len()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn a_template_is_submitted_reviewed_and_sent_with_checked_parameters(backend: Backend) {
    let (simulator, app, conversation) = wired_sending(backend, true).await;
    let admin = app.admin_token.clone();
    simulator.set_template_review(Review {
        decision: "approve".into(),
        reason: None,
        delay_ms: 100,
    });
    let id = submit(&app, order_template("order_shipped")).await;
    let approved = until(&app, &format!("/api/templates/{id}"), |t| {
        t["status"] == "APPROVED"
    })
    .await;
    assert_eq!(approved["submitted_by"], approved["updated_by"]);

    let send_path = format!("/api/templates/{id}/send");
    let good = json!({"client_id": "t1", "conversation_id": conversation, "parameters": {"1": "Ana", "2": "#42"}});
    let (status, accepted) = call(&app, &admin, Method::POST, &send_path, Some(good)).await;
    assert_eq!(status, 202, "{accepted}");
    let received = sent_to_simulator(&simulator, 1).await;
    assert_eq!(
        received[0]["template"],
        json!({"name": "order_shipped", "language": {"code": "en_US"}, "components": [
            {"type": "body", "parameters": [{"type": "text", "text": "Ana"}, {"type": "text", "text": "#42"}]}]})
    );
    app.settle().await;
    let message = app
        .messages(&conversation)
        .await
        .into_iter()
        .find(|m| m["id"] == accepted["id"])
        .expect("stored");
    assert_eq!(
        message["content"]["rendered"], "Hi Ana, order #42 has shipped.\nThanks",
        "{message}"
    );

    // Missing or extra variables: 422 naming them, nothing queued.
    let before = outbound_count(&app, &conversation).await;
    for (parameters, named) in [
        (json!({"1": "Ana"}), "{{2}}"),
        (json!({"1": "Ana", "2": "#1", "3": "x"}), "3"),
    ] {
        let body = json!({"client_id": format!("bad-{named}"), "conversation_id": conversation, "parameters": parameters});
        let (status, error) = call(&app, &admin, Method::POST, &send_path, Some(body)).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (422, Some("invalid_template_parameters"))
        );
        assert!(
            error["error"]["message"]
                .as_str()
                .expect("message")
                .contains(named),
            "{error}"
        );
    }
    let raw = json!({"client_id": "raw", "type": "template", "name": "order_shipped", "language": "en_US",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}]});
    let messages_path = format!("/api/conversations/{conversation}/messages");
    let (status, error) = call(&app, &admin, Method::POST, &messages_path, Some(raw)).await;
    assert_eq!(status, 422, "{error}");
    assert!(error["error"]["message"]
        .as_str()
        .expect("message")
        .contains("body {{2}}: missing"));

    // Not approved, or not in that language: 422 template_not_approved.
    simulator.set_template_review(Review {
        decision: "reject".into(),
        reason: Some("PROMOTIONAL".into()),
        delay_ms: 50,
    });
    let rejected = submit(&app, order_template("order_promo")).await;
    let shown = until(&app, &format!("/api/templates/{rejected}"), |t| {
        t["status"] == "REJECTED"
    })
    .await;
    assert_eq!(shown["reason"], "PROMOTIONAL");
    let body = json!({"client_id": "r", "conversation_id": conversation, "parameters": {"1": "a", "2": "b"}});
    let (status, error) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/templates/{rejected}/send"),
        Some(body),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("template_not_approved"))
    );
    let other_language = json!({"client_id": "fr", "type": "template", "name": "order_shipped", "language": "fr",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]});
    let (status, error) = call(
        &app,
        &admin,
        Method::POST,
        &messages_path,
        Some(other_language),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("template_not_approved"))
    );
    app.settle().await;
    assert_eq!(
        outbound_count(&app, &conversation).await,
        before,
        "nothing queued"
    );
    assert_eq!(simulator.received().len(), 1);

    // Meta's own validation comes back as 422 with Meta's code; a duplicate likewise.
    let bad_name = json!({"name": "Not Valid", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "x"}]});
    let (status, error) = call(&app, &admin, Method::POST, "/api/templates", Some(bad_name)).await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("meta_rejected")),
        "{error}"
    );
    assert_eq!(error["error"]["meta"]["code"], 100);
    let (status, _) = call(
        &app,
        &admin,
        Method::POST,
        "/api/templates",
        Some(order_template("order_shipped")),
    )
    .await;
    assert_eq!(status, 422);

    // Edit (back to review, then approved again) and delete.
    simulator.set_template_review(Review {
        decision: "approve".into(),
        reason: None,
        delay_ms: 100,
    });
    let edit = json!({"components": [{"type": "BODY", "text": "Hello {{1}}, order {{2}} is on its way."}]});
    let (status, edited) = call(
        &app,
        &admin,
        Method::PUT,
        &format!("/api/templates/{id}"),
        Some(edit),
    )
    .await;
    assert_eq!(
        (status, edited["status"].as_str()),
        (200, Some("PENDING")),
        "{edited}"
    );
    until(&app, &format!("/api/templates/{id}"), |t| {
        t["status"] == "APPROVED"
            && t["components"][0]["text"] == "Hello {{1}}, order {{2}} is on its way."
    })
    .await;
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/templates/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    until(&app, "/api/templates?q=order_shipped", |l| {
        l.as_array().is_some_and(Vec::is_empty)
    })
    .await;
    assert!(!simulator.templates().iter().any(|t| t["id"] == id.as_str()));
    // The message sent with it keeps its text.
    let kept = app
        .messages(&conversation)
        .await
        .into_iter()
        .find(|m| m["id"] == accepted["id"])
        .expect("kept");
    assert_eq!(
        kept["content"]["rendered"],
        "Hi Ana, order #42 has shipped.\nThanks"
    );
}

async fn a_template_reaches_a_closed_window_where_a_quick_reply_cannot(backend: Backend) {
    let (simulator, app, conversation) = wired_sending(backend, true).await;
    let admin = app.admin_token.clone();
    simulator.set_template_review(Review {
        decision: "approve".into(),
        reason: None,
        delay_ms: 20,
    });
    let id = submit(&app, order_template("window_check")).await;
    until(&app, &format!("/api/templates/{id}"), |t| {
        t["status"] == "APPROVED"
    })
    .await;
    let (status, saved) = call(
        &app,
        &admin,
        Method::POST,
        "/api/quick-replies",
        Some(json!({"shortcode": "/late", "title": "Late", "text": "Still there?"})),
    )
    .await;
    assert_eq!(status, 201);
    app.clock.advance_seconds(3 * 24 * 3600);

    let quick = json!({"client_id": "q", "quick_reply_id": saved["id"]});
    let (status, error) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/conversations/{conversation}/messages"),
        Some(quick),
    )
    .await;
    assert_eq!(
        (status, error["error"]["code"].as_str()),
        (422, Some("window_closed"))
    );
    let template =
        json!({"client_id": "t", "to": "+1 555 000 2222", "parameters": {"1": "Ana", "2": "#7"}});
    let (status, accepted) = call(
        &app,
        &admin,
        Method::POST,
        &format!("/api/templates/{id}/send"),
        Some(template),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let received = sent_to_simulator(&simulator, 1).await;
    assert_eq!(received[0]["to"], "15550002222");
    assert_eq!(received[0]["template"]["name"], "window_check");
}

async fn managing_templates_needs_the_permission(backend: Backend) {
    let (simulator, app, conversation) = wired_sending(backend, true).await;
    simulator.set_template_review(Review {
        decision: "approve".into(),
        reason: None,
        delay_ms: 20,
    });
    let id = submit(&app, order_template("for_everyone")).await;
    until(&app, &format!("/api/templates/{id}"), |t| {
        t["status"] == "APPROVED"
    })
    .await;
    app.create_agent(json!({"email": "plain@example.com", "name": "Plain", "role": "agent", "password": PASSWORD,
        "permissions": {"can_read_chats": "all", "can_write_to_chats": "all", "can_manage_templates": false}})).await;
    let token = app.login("plain@example.com", PASSWORD).await;
    let catalogue = simulator.templates();

    let path = format!("/api/templates/{id}");
    for (method, path, body) in [
        (
            Method::POST,
            "/api/templates".to_owned(),
            Some(order_template("sneaky")),
        ),
        (
            Method::PUT,
            path.clone(),
            Some(json!({"category": "MARKETING"})),
        ),
        (Method::DELETE, path.clone(), None),
        (Method::POST, "/api/templates/sync".to_owned(), None),
    ] {
        let (status, error) = call(&app, &token, method.clone(), &path, body).await;
        assert_eq!(
            (status, error["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{method} {path}"
        );
    }
    assert_eq!(simulator.templates(), catalogue, "nothing reached Meta");

    // Listing, reading and sending need no more than reading and writing chats.
    let (status, list) = call(&app, &token, Method::GET, "/api/templates", None).await;
    assert_eq!(
        (status, names(&list)),
        (200, vec!["for_everyone".to_owned()])
    );
    assert_eq!(call(&app, &token, Method::GET, &path, None).await.0, 200);
    let send = json!({"client_id": "p", "conversation_id": conversation, "parameters": {"1": "a", "2": "b"}});
    assert_eq!(
        call(
            &app,
            &token,
            Method::POST,
            &format!("{path}/send"),
            Some(send)
        )
        .await
        .0,
        202
    );
    let (status, _) = call(&app, &token, Method::GET, "/api/templates?bogus=1", None).await;
    assert_eq!(status, 400);
}

on_both_backends!(
    sync_pages_through_the_catalogue_and_webhooks_keep_it_current,
    a_template_is_submitted_reviewed_and_sent_with_checked_parameters,
    a_template_reaches_a_closed_window_where_a_quick_reply_cannot,
    managing_templates_needs_the_permission,
);
