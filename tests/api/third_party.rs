//! Real webhook samples from three other projects' test suites (tests/fixtures/third-party):
//! every one is acknowledged, processed without failure, and visible through the API.

use std::path::PathBuf;

use serde_json::Value;

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

pub(crate) fn samples() -> Vec<(String, Vec<u8>)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/third-party");
    let mut samples = Vec::new();
    for project in [
        "pywa",
        "whatsapp-business-java-api",
        "netflie-whatsapp-cloud-api",
    ] {
        let mut files: Vec<_> = std::fs::read_dir(root.join(project))
            .expect("samples folder")
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect();
        files.sort();
        for file in files {
            let name = format!(
                "{project}/{}",
                file.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            );
            samples.push((name, std::fs::read(&file).expect("sample")));
        }
    }
    samples
}

/// What a sample should make visible: its message ids and notification fields.
fn expected(body: &[u8]) -> (Vec<String>, Vec<String>, Vec<String>) {
    let root: Value = serde_json::from_slice(body).expect("sample is JSON");
    let (mut messages, mut notifications, mut templates) = (Vec::new(), Vec::new(), Vec::new());
    for entry in root["entry"].as_array().into_iter().flatten() {
        for change in entry["changes"].as_array().into_iter().flatten() {
            let field = change["field"].as_str().unwrap_or_default();
            let value = &change["value"];
            match field {
                "messages" => {
                    for key in ["messages", "statuses"] {
                        for item in value[key].as_array().into_iter().flatten() {
                            messages.push(item["id"].as_str().unwrap_or_default().to_owned());
                        }
                    }
                    if value["errors"].is_array() {
                        notifications.push("messages.errors".to_owned());
                    }
                }
                "smb_message_echoes" => {
                    for item in value["message_echoes"].as_array().into_iter().flatten() {
                        messages.push(item["id"].as_str().unwrap_or_default().to_owned());
                    }
                }
                f if f.starts_with("message_template") || f == "template_category_update" => {
                    match &value["message_template_id"] {
                        Value::Null => notifications.push(field.to_owned()),
                        id => templates.push(id.to_string().trim_matches('"').to_owned()),
                    }
                }
                _ => notifications.push(field.to_owned()),
            }
        }
    }
    (messages, notifications, templates)
}

async fn every_third_party_sample_is_accepted_and_shown(backend: Backend) {
    let samples = samples();
    assert!(samples.len() >= 80, "all samples found ({})", samples.len());
    for (name, body) in samples {
        let app = TestApp::spawn(backend).await;
        let response = app.post_webhook(&body).await;
        assert_eq!(response.status(), 200, "{name}: acknowledged");
        app.settle().await;
        let failed = app.get_json("/api/webhooks/dead-letters").await["items"].clone();
        assert_eq!(
            failed,
            Value::Array(vec![]),
            "{name}: processed without failure"
        );

        let (messages, notifications, templates) = expected(&body);
        for id in &messages {
            let response = app.get(&format!("/api/messages/{}", urlencode(id))).await;
            assert_eq!(response.status(), 200, "{name}: message {id} visible");
            let message: Value = response.json().await.expect("JSON");
            let conversation = app
                .get(&format!(
                    "/api/conversations/{}",
                    message["conversation_id"].as_str().unwrap_or_default()
                ))
                .await;
            assert_eq!(
                conversation.status(),
                200,
                "{name}: conversation of {id} visible"
            );
        }
        let shown = app.get_json("/api/account/notifications?limit=200").await;
        let fields: Vec<&str> = shown["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|n| n["field"].as_str())
            .collect();
        for field in &notifications {
            assert!(
                fields.contains(&field.as_str()),
                "{name}: notification {field} shown in {fields:?}"
            );
        }
        let template_list = app.get_json("/api/templates").await;
        let ids: Vec<&str> = template_list
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["id"].as_str())
            .collect();
        for id in &templates {
            assert!(ids.contains(&id.as_str()), "{name}: template {id} shown");
        }
        assert!(
            !messages.is_empty() || !notifications.is_empty() || !templates.is_empty(),
            "{name}: the sample shows something"
        );
    }
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

on_both_backends!(every_third_party_sample_is_accepted_and_shown);
