//! Quick replies: shortcode unique per visibility, who sees which, rendering, the window rule,
//! and messages that outlive the quick reply they came from.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "a long enough password";

async fn agent(app: &TestApp, name: &str, groups: Vec<String>) -> (String, String) {
    let email = format!("{name}@example.com");
    let id = app
        .create_agent(json!({"email": email, "name": name, "role": "agent", "password": PASSWORD,
            "groups": groups, "permissions": {"can_read_chats": "all", "can_write_to_chats": "all"}}))
        .await;
    (id, app.login(&email, PASSWORD).await)
}

async fn create(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    let response = app
        .send_as(token, Method::POST, "/api/quick-replies", Some(body))
        .await;
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON"))
}

async fn shortcodes(app: &TestApp, token: &str, query: &str) -> Vec<(String, String)> {
    let list: Value = app
        .get_as(token, &format!("/api/quick-replies{query}"))
        .await
        .json()
        .await
        .expect("JSON");
    list.as_array()
        .expect("list")
        .iter()
        .map(|q| {
            (
                q["shortcode"].as_str().expect("shortcode").to_owned(),
                q["visibility"].as_str().expect("visibility").to_owned(),
            )
        })
        .collect()
}

fn pairs(rows: &[(&str, &str)]) -> Vec<(String, String)> {
    rows.iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

async fn quick_replies_are_scoped_rendered_and_follow_the_window(backend: Backend) {
    let (simulator, app, conversation) = crate::outbound::wired_sending(backend, true).await;
    let group: Value = app
        .send_as(
            &app.admin_token,
            Method::POST,
            "/api/groups",
            Some(json!({"name": "Refunds"})),
        )
        .await
        .json()
        .await
        .expect("JSON");
    let group = group["id"].as_str().expect("id").to_owned();
    let (ana, ana_token) = agent(&app, "ana", vec![group.clone()]).await;
    let (_, bo_token) = agent(&app, "bo", vec![]).await;
    let admin = app.admin_token.clone();

    let text =
        "Hola {{customer.name}}, soy {{agent.name}} ({{conversation.id}}): pedido {{pedido}}";
    let (status, mine) = create(
        &app,
        &ana_token,
        json!({"shortcode": "Hola", "title": "Saludo", "text": text}),
    )
    .await;
    assert_eq!(status, 201, "{mine}");
    assert_eq!(mine["shortcode"], "/hola");
    // Unique per visibility: again for Ana is a conflict; for everyone it is another one.
    let (status, body) = create(
        &app,
        &ana_token,
        json!({"shortcode": "/hola", "title": "x", "text": "y"}),
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("shortcode_taken"))
    );
    let (status, _) = create(
        &app,
        &ana_token,
        json!({"shortcode": "/todos", "title": "x", "text": "y", "visibility": "everyone"}),
    )
    .await;
    assert_eq!(status, 403, "shared ones need can_manage_templates");
    let (status, _) = create(
        &app,
        &admin,
        json!({"shortcode": "/hola", "title": "Hola", "text": "Hola", "visibility": "everyone"}),
    )
    .await;
    assert_eq!(status, 201);
    let (status, _) = create(&app, &admin, json!({"shortcode": "/refund", "title": "Reembolso", "text": "Le devolvemos el dinero", "visibility": "group", "group_id": group})).await;
    assert_eq!(status, 201);
    let (status, _) = create(
        &app,
        &bo_token,
        json!({"shortcode": "/secret", "title": "Mío", "text": "solo Bo"}),
    )
    .await;
    assert_eq!(status, 201);
    app.settle().await;

    // Ana: her own, her group's, everyone's; never Bo's personal one.
    assert_eq!(
        shortcodes(&app, &ana_token, "").await,
        pairs(&[
            ("/hola", "everyone"),
            ("/hola", "personal"),
            ("/refund", "group")
        ])
    );
    assert_eq!(
        shortcodes(&app, &bo_token, "").await,
        pairs(&[("/hola", "everyone"), ("/secret", "personal")])
    );
    assert_eq!(
        shortcodes(&app, &ana_token, "?q=ref").await,
        pairs(&[("/refund", "group")])
    );
    assert_eq!(
        shortcodes(&app, &ana_token, "?q=devolvemos").await,
        pairs(&[("/refund", "group")])
    );

    // Sent with its variables filled; the simulator receives the rendered text.
    let path = format!("/api/conversations/{conversation}/messages");
    let id = mine["id"].as_str().expect("id").to_owned();
    let send = json!({"client_id": "qr-1", "quick_reply_id": id, "variables": {"pedido": "42"}});
    let response = app
        .send_as(&ana_token, Method::POST, &path, Some(send))
        .await;
    assert_eq!(response.status(), 202);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while simulator.received().is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "not sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let customer = app
        .get_json(&format!("/api/conversations/{conversation}"))
        .await["customer"]["profile_name"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    let expected = format!("Hola {customer}, soy ana ({conversation}): pedido 42");
    assert_eq!(simulator.received()[0]["text"]["body"], expected.as_str());
    // Bo may not use Ana's.
    let send = json!({"client_id": "qr-2", "quick_reply_id": id});
    let response = app
        .send_as(&bo_token, Method::POST, &path, Some(send))
        .await;
    assert_eq!(response.status(), 422);

    // Deleting it leaves the message as sent; only its author (or a manager, for shared ones)
    // may delete it.
    let gone = format!("/api/quick-replies/{id}");
    assert_eq!(
        app.send_as(&bo_token, Method::DELETE, &gone, None)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.send_as(&ana_token, Method::DELETE, &gone, None)
            .await
            .status(),
        204
    );
    app.settle().await;
    let sent = app.messages(&conversation).await;
    assert!(
        sent.iter()
            .any(|m| m["content"]["body"] == expected.as_str()),
        "{sent:?}"
    );

    // With media: the text is its caption; a bad link, or media with a caption too long, is
    // refused; PATCH with `media: null` takes it off again.
    let manual = json!({"shortcode": "/manual", "title": "Manual", "text": "El manual, {{customer.name}}",
        "media": {"kind": "document", "link": "https://example.com/manual.pdf", "filename": "manual.pdf"}});
    let (status, with_media) = create(&app, &ana_token, manual).await;
    assert_eq!(status, 201, "{with_media}");
    assert_eq!(with_media["media"]["kind"], "document");
    for bad in [
        json!({"shortcode": "/bad1", "title": "x", "text": "y", "media": {"kind": "image", "link": "ftp://x/y.png"}}),
        json!({"shortcode": "/bad2", "title": "x", "text": "y", "media": {"kind": "image", "id": "1", "link": "https://x/y.png"}}),
        json!({"shortcode": "/bad3", "title": "x", "text": "y".repeat(1025), "media": {"kind": "image", "id": "123"}}),
        json!({"shortcode": "/bad4", "title": "x", "text": "y", "media": {"kind": "image", "id": "1", "filename": "a.png"}}),
    ] {
        let (status, body) = create(&app, &ana_token, bad).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (422, Some("invalid_quick_reply")),
            "{body}"
        );
    }
    let manual_id = with_media["id"].as_str().expect("id").to_owned();
    let send = json!({"client_id": "qr-media", "quick_reply_id": manual_id});
    let response = app
        .send_as(&ana_token, Method::POST, &path, Some(send))
        .await;
    assert_eq!(response.status(), 202);
    // Meta's pair limit spaces two messages to one customer by 6 s (on the app's clock).
    app.clock.advance_seconds(7);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while simulator.received().len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "not sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        simulator.received()[1]["document"],
        json!({"link": "https://example.com/manual.pdf", "filename": "manual.pdf",
               "caption": format!("El manual, {customer}")})
    );
    let unmedia = json!({"media": null});
    let response = app
        .send_as(
            &ana_token,
            Method::PATCH,
            &format!("/api/quick-replies/{manual_id}"),
            Some(unmedia),
        )
        .await;
    assert_eq!(response.status(), 204);
    app.settle().await;
    let listed: Value = app
        .get_as(&ana_token, "/api/quick-replies?q=manual")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(listed[0]["media"], Value::Null, "{listed}");

    // Three days after the customer's last message, a quick reply is free-form text: refused.
    app.clock.advance_seconds(3 * 86_400);
    let everyone: Value = app
        .get_as(&ana_token, "/api/quick-replies?q=hola")
        .await
        .json()
        .await
        .expect("JSON");
    let id = everyone[0]["id"].as_str().expect("id");
    let send = json!({"client_id": "qr-3", "quick_reply_id": id});
    let response = app
        .send_as(&ana_token, Method::POST, &path, Some(send))
        .await;
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.expect("JSON");
    assert_eq!(body["error"]["code"], "window_closed", "{body}");
    let _ = ana;
}

on_both_backends!(quick_replies_are_scoped_rendered_and_follow_the_window);
