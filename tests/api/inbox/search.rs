//! Search: accents and case folded away, the exact phrase first, never out of scope.

use reqwest::Method;
use serde_json::{json, Value};

use super::{customers_write, ids_by_customer, urlencode, NUMBERS};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

const PASSWORD: &str = "a long enough password";

async fn search(app: &TestApp, token: &str, q: &str) -> Vec<Value> {
    let response = app
        .get_as(token, &format!("/api/search?q={}", urlencode(q)))
        .await;
    assert_eq!(response.status(), 200, "{q}");
    let page: Value = response.json().await.expect("JSON");
    page["items"].as_array().cloned().expect("items")
}

fn customers(rows: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned()))
        .collect()
}

async fn search_folds_accents_ranks_the_phrase_first_and_keeps_to_scope(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    customers_write(
        &app,
        NUMBERS[0],
        &customers(&[
            (
                "4930000001",
                "Zoë Müller",
                "Quiero la cancelación de mi pedido, por favor",
            ),
            (
                "4930000002",
                "Ana",
                "pedido pedido pedido: el reembolso, el reembolso, reembolso",
            ),
            ("4930000003", "Luis", "hablemos del reembolso pedido ayer"),
            ("4930000004", "Eva", "nada que ver <b>aquí</b>"),
        ]),
        1_780_000_000,
    )
    .await;
    app.settle().await;
    let ids = ids_by_customer(&app).await;
    let admin = app.admin_token.clone();

    // A word without its accent finds it, with a highlighted snippet and its conversation.
    let hits = search(&app, &admin, "CANCELACION").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["kind"], "message");
    assert_eq!(hits[0]["conversation"]["id"], ids["4930000001"]);
    assert!(
        hits[0]["snippet"]
            .as_str()
            .expect("snippet")
            .contains("<mark>cancelación</mark>"),
        "{}",
        hits[0]["snippet"]
    );
    // Customer names too, accents folded both ways.
    let hits = search(&app, &admin, "zoe muller").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["kind"], "customer");
    // The exact phrase first, even against a document repeating both words.
    let hits = search(&app, &admin, "reembolso pedido").await;
    assert_eq!(hits.len(), 2, "{hits:?}");
    assert_eq!(hits[0]["conversation"]["id"], ids["4930000003"], "{hits:?}");
    assert_eq!(hits[1]["conversation"]["id"], ids["4930000002"]);
    // What the customer wrote is escaped in the snippet.
    let hits = search(&app, &admin, "aqui").await;
    assert_eq!(
        hits[0]["snippet"],
        "nada que ver &lt;b&gt;<mark>aquí</mark>&lt;/b&gt;"
    );
    // A number finds its customer however it is written.
    let hits = search(&app, &admin, "+49 300 000 04").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["conversation"]["id"], ids["4930000004"]);
    // Words that are not there find nothing; a query without words is refused.
    assert!(search(&app, &admin, "inexistente").await.is_empty());
    let response = app.get_as(&admin, "/api/search?q=").await;
    assert_eq!(response.status(), 400);

    // An agent reading only what is assigned to them never sees another conversation.
    let bo = app
        .create_agent(json!({"email": "bo@example.com", "name": "Bo", "role": "agent",
            "password": PASSWORD, "permissions": {"can_read_chats": "assigned", "can_write_to_chats": "assigned"}}))
        .await;
    let token = app.login("bo@example.com", PASSWORD).await;
    assert!(search(&app, &token, "pedido").await.is_empty());
    let assign = json!({"agent_id": bo});
    let path = format!("/api/conversations/{}/assignment", ids["4930000003"]);
    assert_eq!(
        app.send_as(&admin, Method::PUT, &path, Some(assign))
            .await
            .status(),
        200
    );
    app.settle().await;
    let hits = search(&app, &token, "pedido").await;
    assert_eq!(hits.len(), 1, "{hits:?}");
    assert_eq!(hits[0]["conversation"]["id"], ids["4930000003"]);
    // The list's `q` and its counts follow the same scope.
    let page: Value = app
        .get_as(&token, "/api/conversations?q=pedido")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(page["items"].as_array().expect("items").len(), 1);
    let counts: Value = app
        .get_as(&token, "/api/conversations/counts?q=pedido")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(counts["all"], 1);
    let counts: Value = app
        .get_as(&admin, "/api/conversations/counts?q=pedido")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(counts["all"], 3);
}

on_both_backends!(search_folds_accents_ranks_the_phrase_first_and_keeps_to_scope);
