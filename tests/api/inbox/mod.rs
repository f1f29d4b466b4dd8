//! Issue #17: inbox views and counts, search, availability and auto-assignment, private notes.

mod assignment;
mod notes;
mod read_after;
mod search;
mod views;

use std::collections::HashMap;

use serde_json::{json, Value};

use crate::helpers::TestApp;

/// The business numbers conversations arrive on.
pub(crate) const NUMBERS: [&str; 2] = ["120000000000001", "120000000000002"];

/// Posts webhooks bringing one text message from each of `customers` (`(wa_id, name, text)`),
/// on the business number `number`, 100 per webhook, at `timestamp` (Unix seconds).
pub(crate) async fn customers_write(
    app: &TestApp,
    number: &str,
    customers: &[(String, String, String)],
    timestamp: i64,
) {
    for chunk in customers.chunks(100) {
        let contacts: Vec<Value> = chunk
            .iter()
            .map(|(wa_id, name, _)| json!({"wa_id": wa_id, "profile": {"name": name}}))
            .collect();
        let messages: Vec<Value> = chunk
            .iter()
            .map(|(wa_id, _, text)| {
                json!({"from": wa_id, "id": format!("wamid.{wa_id}.{timestamp}"),
                       "timestamp": timestamp.to_string(), "type": "text", "text": {"body": text}})
            })
            .collect();
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{
            "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000000", "phone_number_id": number},
            "contacts": contacts, "messages": messages}}]}]});
        let response = app.post_webhook(body.to_string().as_bytes()).await;
        assert_eq!(response.status(), 200);
    }
}

/// Every item of a list, following `next_cursor` (`path` has a query already or not).
pub(crate) async fn all_pages(app: &TestApp, token: &str, path: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    let join = if path.contains('?') { '&' } else { '?' };
    for _ in 0..10_000 {
        let mut url = format!("{path}{join}limit={limit}");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={}", urlencode(c)));
        }
        let response = app.get_as(token, &url).await;
        assert_eq!(response.status(), 200, "{url}");
        let page: Value = response.json().await.expect("JSON");
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return items,
        }
    }
    panic!("{path} never ended");
}

pub(crate) fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Conversation ids by customer wa_id, as the admin sees them.
pub(crate) async fn ids_by_customer(app: &TestApp) -> HashMap<String, String> {
    all_pages(app, &app.admin_token, "/api/conversations", 200)
        .await
        .into_iter()
        .map(|c| {
            (
                c["customer"]["wa_id"].as_str().expect("wa_id").to_owned(),
                c["id"].as_str().expect("id").to_owned(),
            )
        })
        .collect()
}
