//! Meta's webhooks over HTTP: every fixture shows exactly its content; duplicates, forgeries,
//! oversize and unparseable bodies, and a crash between storing and processing.

use serde_json::{json, Value};

use crate::helpers::{fixture, Backend, TestApp, SECOND_APP_SECRET, VERIFY_TOKEN};
use crate::on_both_backends;

const SHEENA: &str = "15550002222";
const MARCO: &str = "15550003333";

/// Posts a fixture, expects 200, waits for processing, returns the customer's messages.
async fn deliver(app: &TestApp, name: &str, wa_id: &str) -> Vec<Value> {
    let response = app.post_webhook(&fixture(&format!("meta/{name}"))).await;
    assert_eq!(response.status(), 200, "{name} acknowledged");
    app.settle().await;
    let conversation = app.conversation_of(wa_id).await;
    app.messages(conversation["id"].as_str().expect("id")).await
}

/// Asserts the only message of a fixture: its type, content and context.
async fn assert_single_inbound(
    backend: Backend,
    name: &str,
    wa_id: &str,
    wamid_suffix: &str,
    sent_at: &str,
    content: Value,
    context: Value,
) {
    let app = TestApp::spawn(backend).await;
    let messages = deliver(&app, name, wa_id).await;
    assert_eq!(messages.len(), 1, "{name}: one message");
    let message = &messages[0];
    assert!(
        message["id"]
            .as_str()
            .is_some_and(|id| id.ends_with(wamid_suffix)),
        "{name}: wamid"
    );
    assert_eq!(message["direction"], "inbound", "{name}: direction");
    assert_eq!(message["type"], content["type"], "{name}: type");
    assert_eq!(message["content"], content, "{name}: content");
    assert_eq!(message["context"], context, "{name}: context");
    assert_eq!(message["sent_at"], sent_at, "{name}: Meta's timestamp");
    let conversation = app.conversation_of(wa_id).await;
    assert_eq!(conversation["phone_number_id"], "120000000000001");
    assert_eq!(conversation["unread_count"], 1, "{name}: unread");
    assert_eq!(
        conversation["last_message"]["id"], message["id"],
        "{name}: preview is this message"
    );
}

async fn inbound_text_shows_its_body(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_text.json",
        SHEENA,
        "NEZBQ0EyRENCQjg1NUJFREM4QwA=",
        "2026-05-28T20:26:40.000Z",
        json!({"type": "text", "body": "Hi! Does the jacket come in blue? Gr\u{f6}\u{df}e M please \u{1F642}"}),
        Value::Null,
    )
    .await;
    let app = TestApp::spawn(backend).await;
    deliver(&app, "inbound_text.json", SHEENA).await;
    let conversation = app.conversation_of(SHEENA).await;
    assert_eq!(conversation["customer"]["profile_name"], "Sheena Nelson");
    assert_eq!(
        conversation["service_window_closes_at"],
        "2026-05-29T20:26:40.000Z"
    );
    assert_eq!(
        conversation["last_message"]["preview"],
        "Hi! Does the jacket come in blue? Gr\u{f6}\u{df}e M please \u{1F642}"
    );
}

async fn inbound_reply_keeps_its_context(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_text_reply_context.json",
        SHEENA,
        "MjU5NEIyRgA=",
        "2026-05-28T20:28:40.000Z",
        json!({"type": "text", "body": "Yes, that one."}),
        json!({"from": "15550001111", "id": "wamid.HBgLMTU1NTAwMDIyMjIVAgARGBJFODlGMjQzQUVFQjY0MjA4QkMA"}),
    )
    .await;
}

async fn inbound_forward_is_marked(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_forwarded.json",
        MARCO,
        "RUI4N0Q5QwA=",
        "2026-05-28T20:28:50.000Z",
        json!({"type": "text", "body": "Check this deal!!! limited offer"}),
        json!({"forwarded": true, "frequently_forwarded": true}),
    )
    .await;
}

async fn inbound_image_keeps_media_and_caption(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_image.json",
        SHEENA,
        "RDk5RTY4NkNGRDg0NENDNwA=",
        "2026-05-28T20:30:00.000Z",
        json!({
            "type": "image",
            "id": "1001234567890123",
            "caption": "This is the damaged box",
            "mime_type": "image/jpeg",
            "sha256": "173VRfCdinPCuZAzfIIR1wigTM2XSGJ2heT8ecwDgDk=",
            "url": "https://lookaside.fbsbx.com/whatsapp_business/attachments/?mid=1001234567890123&ext=1780000500&hash=ATsFAKEhashVALUE"
        }),
        Value::Null,
    )
    .await;
}

async fn inbound_voice_note_is_a_voice_note(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_audio_voice.json",
        MARCO,
        "OTkyM0IxMgA=",
        "2026-05-28T20:30:10.000Z",
        json!({
            "type": "audio",
            "id": "1001234567890124",
            "mime_type": "audio/ogg; codecs=opus",
            "sha256": "vS9VjZ6KjUNaFdQn3dRlGEuCWiY+Fwi9ioFRh4mEl5A=",
            "voice": true
        }),
        Value::Null,
    )
    .await;
}

async fn inbound_document_keeps_filename(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_document.json",
        SHEENA,
        "NjVCNTcwNUJDMURBNTJFNAA=",
        "2026-05-28T20:30:20.000Z",
        json!({
            "type": "document",
            "id": "1001234567890125",
            "caption": "Invoice for order 4521",
            "filename": "invoice-4521.pdf",
            "mime_type": "application/pdf",
            "sha256": "xj69y+AMBrfZMUMFa+K7N9ftx3xQdsHdOxyZMfNt24o="
        }),
        Value::Null,
    )
    .await;
}

async fn inbound_sticker_is_animated(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_sticker.json",
        MARCO,
        "NDQ0Qzk2QjgxMzc4RUNFNgA=",
        "2026-05-28T20:30:30.000Z",
        json!({
            "type": "sticker",
            "id": "1001234567890126",
            "mime_type": "image/webp",
            "sha256": "AEPEf7fyZLxA10x9T6ajm6zIsYzZvBh03JJAfLl2K3s=",
            "animated": true
        }),
        Value::Null,
    )
    .await;
}

async fn inbound_location_keeps_the_place(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_location.json",
        SHEENA,
        "Q0VBQzg2MzdCODAxNENDNAA=",
        "2026-05-28T20:30:40.000Z",
        json!({
            "type": "location",
            "latitude": 37.44216251868683,
            "longitude": -122.16153582049394,
            "name": "Philz Coffee",
            "address": "101 Forest Ave, Palo Alto, CA 94301",
            "url": "https://www.philzcoffee.com"
        }),
        Value::Null,
    )
    .await;
}

async fn inbound_button_reply_keeps_the_choice(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_interactive_button_reply.json",
        MARCO,
        "NTY1NkQwNjc1RDI1MjFDNgA=",
        "2026-05-28T20:31:40.000Z",
        json!({"type": "interactive", "kind": "button_reply", "id": "arrived_yes", "title": "Yes"}),
        json!({"from": "15550001111", "id": "wamid.HBgLMTU1NTAwMDMzMzMVAgARGBJCM0MyNTBCMEI0QzU0NEREODcA"}),
    )
    .await;
}

async fn inbound_list_reply_keeps_the_row(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_interactive_list_reply.json",
        MARCO,
        "MjM1QzE3RTRENjFDNkYxRAA=",
        "2026-05-28T20:31:50.000Z",
        json!({
            "type": "interactive",
            "kind": "list_reply",
            "id": "ship_express",
            "title": "Express",
            "description": "1-2 business days"
        }),
        json!({"from": "15550001111", "id": "wamid.HBgLMTU1NTAwMDMzMzMVAgARGBJCM0MyNTBCMEI0QzU0NEREODcA"}),
    )
    .await;
}

async fn template_quick_reply_keeps_its_payload(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_button_quick_reply.json",
        SHEENA,
        "NUEyMTM4NjY4RUFGNEEzMQA=",
        "2026-05-28T20:33:20.000Z",
        json!({"type": "button", "text": "Stop updates", "payload": "STOP_UPDATES"}),
        json!({"from": "15550001111", "id": "wamid.HBgLMTU1NTAwMDIyMjIVAgARGBI0MzMwQkY4NkY2QjU3ODVDNTYA"}),
    )
    .await;
}

async fn reaction_added_and_removed(backend: Backend) {
    assert_single_inbound(
        backend,
        "inbound_reaction.json",
        SHEENA,
        "NUJBMTA4MAA=",
        "2026-05-28T20:35:00.000Z",
        json!({"type": "reaction", "message_id": "wamid.HBgLMTU1NTAwMDIyMjIVAgARGBJFODlGMjQzQUVFQjY0MjA4QkMA", "emoji": "\u{1F44D}"}),
        Value::Null,
    )
    .await;
    assert_single_inbound(
        backend,
        "inbound_reaction_removed.json",
        SHEENA,
        "RTEzRTI4RTVBNzVBQUYwRQA=",
        "2026-05-28T20:36:00.000Z",
        json!({"type": "reaction", "message_id": "wamid.HBgLMTU1NTAwMDIyMjIVAgARGBJFODlGMjQzQUVFQjY0MjA4QkMA"}),
        Value::Null,
    )
    .await;
    // A reaction is customer activity but does not open the service window.
    let app = TestApp::spawn(backend).await;
    deliver(&app, "inbound_reaction.json", SHEENA).await;
    let conversation = app.conversation_of(SHEENA).await;
    assert_eq!(conversation["service_window_closes_at"], Value::Null);
    assert_eq!(conversation["last_message"]["preview"], "Reacted \u{1F44D}");
}

async fn unsupported_type_is_kept_with_its_error(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let messages = deliver(&app, "unsupported_type.json", MARCO).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["type"], "unsupported");
    assert_eq!(
        messages[0]["content"],
        json!({"type": "unsupported", "subtype": "poll"})
    );
    assert_eq!(
        messages[0]["errors"],
        json!([{
            "code": 131051,
            "title": "Message type unknown",
            "message": "Message type unknown",
            "details": "Message type is currently not supported."
        }])
    );
    let failed = app.get_json("/api/webhooks/dead-letters").await;
    assert_eq!(
        failed["items"],
        json!([]),
        "an unsupported message is not a processing failure"
    );
}

async fn statuses_move_forward_with_the_time_of_each(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Read arrives before delivered and sent: it is applied; the late ones are kept as times only.
    for name in [
        "status_read.json",
        "status_sent.json",
        "status_delivered.json",
    ] {
        let response = app.post_webhook(&fixture(&format!("meta/{name}"))).await;
        assert_eq!(response.status(), 200, "{name}");
        app.settle().await;
    }
    let conversation = app.conversation_of(SHEENA).await;
    let messages = app.messages(conversation["id"].as_str().expect("id")).await;
    assert_eq!(messages.len(), 1);
    let message = &messages[0];
    assert_eq!(
        message["id"],
        "wamid.HBgLMTU1NTAwMDIyMjIVAgARGBI0MzMwQkY4NkY2QjU3ODVDNTYA"
    );
    assert_eq!(message["direction"], "outbound");
    assert_eq!(
        message["type"],
        Value::Null,
        "a status for a message we never saw is kept"
    );
    assert_eq!(message["status"], "read");
    assert_eq!(message["status_at"], "2026-05-28T20:45:00.000Z");
    assert_eq!(
        message["statuses"],
        json!({
            "sent": "2026-05-28T20:43:20.000Z",
            "delivered": "2026-05-28T20:43:23.000Z",
            "read": "2026-05-28T20:45:00.000Z",
            "played": null,
            "failed": null
        })
    );
    assert_eq!(message["ignored_statuses"], 2);
    assert_eq!(message["pricing"]["category"], "utility");
}

async fn status_sent_alone_shows_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let messages = deliver(&app, "status_sent.json", SHEENA).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["status"], "sent");
    assert_eq!(messages[0]["statuses"]["sent"], "2026-05-28T20:43:20.000Z");
    assert_eq!(
        messages[0]["pricing"],
        json!({"billable": true, "pricing_model": "PMP", "type": "regular", "category": "utility"})
    );
}

async fn status_delivered_alone_shows_delivered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let messages = deliver(&app, "status_delivered.json", SHEENA).await;
    assert_eq!(messages[0]["status"], "delivered");
    assert_eq!(
        messages[0]["statuses"]["delivered"],
        "2026-05-28T20:43:23.000Z"
    );
}

async fn status_read_alone_shows_read(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let messages = deliver(&app, "status_read.json", SHEENA).await;
    assert_eq!(messages[0]["status"], "read");
    assert_eq!(messages[0]["statuses"]["read"], "2026-05-28T20:45:00.000Z");
}

async fn failed_status_keeps_metas_error_and_sticks(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let messages = deliver(&app, "status_failed_131047.json", "15550004444").await;
    assert_eq!(messages.len(), 1);
    assert_eq!(messages[0]["status"], "failed");
    assert_eq!(
        messages[0]["statuses"]["failed"],
        "2026-05-28T20:46:40.000Z"
    );
    assert_eq!(messages[0]["status_errors"][0]["code"], 131047);
    assert_eq!(
        messages[0]["status_errors"][0]["title"],
        "Re-engagement message"
    );
    // A late "delivered" for the same message does not resurrect it.
    let late = String::from_utf8(fixture("meta/status_failed_131047.json"))
        .expect("utf-8")
        .replace("\"failed\"", "\"delivered\"")
        .replace("1780001200", "1780001300");
    assert_eq!(app.post_webhook(late.as_bytes()).await.status(), 200);
    app.settle().await;
    let conversation = app.conversation_of("15550004444").await;
    let messages = app.messages(conversation["id"].as_str().expect("id")).await;
    assert_eq!(messages[0]["status"], "failed");
    assert_eq!(messages[0]["ignored_statuses"], 1);
}

async fn template_status_update_is_recorded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app
        .post_webhook(&fixture("meta/template_status_update.json"))
        .await;
    assert_eq!(response.status(), 200);
    app.settle().await;
    let templates = app.get_json("/api/templates").await;
    assert_eq!(
        templates,
        json!([{
            "id": "1510000000000001",
            "waba_id": "110000000000001",
            "name": "order_shipped",
            "language": "en_US",
            "status": "APPROVED",
            "category": "UTILITY",
            "quality": null,
            "reason": "NONE",
            "parameter_format": null,
            "components": null,
            "variables": [],
            "submitted_by": null,
            "updated_by": null,
            "updated_at": "2026-05-28T21:33:20.000Z"
        }])
    );
}

async fn duplicate_fixtures_give_one_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.post_webhook(&fixture("meta/duplicate_delivery_a.json"))
            .await
            .status(),
        200
    );
    app.settle().await;
    let events_after_first = app.event_count().await;
    assert_eq!(
        app.post_webhook(&fixture("meta/duplicate_delivery_b.json"))
            .await
            .status(),
        200
    );
    app.settle().await;
    assert_eq!(
        app.event_count().await,
        events_after_first,
        "the duplicate produced no event"
    );
    let conversation = app.conversation_of(MARCO).await;
    assert_eq!(conversation["unread_count"], 1);
    let messages = app.messages(conversation["id"].as_str().expect("id")).await;
    assert_eq!(messages.len(), 1);
    assert_eq!(
        messages[0]["content"]["body"],
        "Order #4521 still not here \u{1F615}"
    );
}

async fn concurrent_identical_deliveries_give_one_message(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let events_before = app.event_count().await;
    let body = fixture("meta/inbound_text.json");
    let deliveries = (0..8).map(|_| app.post_webhook(&body));
    for response in futures::future::join_all(deliveries).await {
        assert_eq!(response.status(), 200);
    }
    app.settle().await;
    let conversation = app.conversation_of(SHEENA).await;
    assert_eq!(conversation["unread_count"], 1);
    assert_eq!(
        app.messages(conversation["id"].as_str().expect("id"))
            .await
            .len(),
        1
    );
    // Conversation started + profile named + customer message + message received.
    assert_eq!(app.event_count().await - events_before, 4);
}

async fn a_batch_with_several_entries_and_changes_is_read_whole(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let text = |wamid: &str, from: &str, body: &str| json!({"from": from, "id": wamid, "timestamp": "1780000000", "type": "text", "text": {"body": body}});
    let change = |messages: Vec<Value>, statuses: Vec<Value>| {
        json!({"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550001111", "phone_number_id": "120000000000001"},
            "messages": messages, "statuses": statuses}})
    };
    let status = json!({"id": "wamid.out1", "status": "delivered", "timestamp": "1780000001", "recipient_id": SHEENA});
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "110000000000001", "changes": [
            change(vec![text("wamid.a", SHEENA, "one"), text("wamid.b", MARCO, "two")], vec![status]),
            change(vec![text("wamid.c", SHEENA, "three")], vec![])]},
        {"id": "110000000000001", "changes": [change(vec![text("wamid.d", MARCO, "four")], vec![])]}
    ]});
    assert_eq!(
        app.post_webhook(body.to_string().as_bytes()).await.status(),
        200
    );
    app.settle().await;
    let sheena = app.conversation_of(SHEENA).await;
    let marco = app.conversation_of(MARCO).await;
    assert_eq!(
        app.messages(sheena["id"].as_str().expect("id")).await.len(),
        3,
        "2 inbound + 1 status"
    );
    assert_eq!(
        app.messages(marco["id"].as_str().expect("id")).await.len(),
        2
    );
}

async fn crash_between_store_and_processing_loses_nothing(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.workers.process_webhooks = false).await;
    assert_eq!(
        app.post_webhook(&fixture("meta/inbound_text.json"))
            .await
            .status(),
        200
    );
    // Stored durably, not processed.
    let stored: i64 = switchboard_store::with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from raw_webhooks where status = 'pending'").fetch_one(pool).await.expect("count"));
    assert_eq!(stored, 1);
    assert!(app.conversations().await.is_empty());
    let app = app.restart(|s| s.workers.process_webhooks = true).await;
    app.settle().await;
    let conversation = app.conversation_of(SHEENA).await;
    assert_eq!(
        app.messages(conversation["id"].as_str().expect("id"))
            .await
            .len(),
        1
    );
}

async fn a_bad_or_missing_signature_is_refused_and_nothing_is_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = fixture("meta/inbound_text.json");
    let cases = [
        ("missing", None, "missing_signature"),
        (
            "wrong secret",
            Some(switchboard::whatsapp::signature::sign("nope", &body)),
            "invalid_signature",
        ),
        (
            "not hex",
            Some("sha256=xyz".to_owned()),
            "invalid_signature",
        ),
        (
            "sha1 only",
            Some("sha1=0123".to_owned()),
            "invalid_signature",
        ),
    ];
    for (case, signature, code) in cases {
        let response = app
            .post_webhook_with_signature(&body, signature.as_deref())
            .await;
        assert_eq!(response.status(), 401, "{case}");
        let error: Value = response.json().await.expect("JSON error");
        assert_eq!(error["error"]["code"], code, "{case}");
        assert!(
            error["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{case}"
        );
    }
    // A body signed for another subscribed app is accepted.
    let other = switchboard::whatsapp::signature::sign(SECOND_APP_SECRET, &body);
    assert_eq!(
        app.post_webhook_with_signature(&body, Some(&other))
            .await
            .status(),
        200
    );
    let stored: i64 = switchboard_store::with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from raw_webhooks").fetch_one(pool).await.expect("count"));
    assert_eq!(stored, 1, "only the validly signed body was stored");
}

async fn an_oversize_body_is_refused_with_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let body = vec![b' '; 4 * 1024 * 1024 + 1];
    let response = app.post_webhook(&body).await;
    assert_eq!(response.status(), 413);
    let error: Value = response.json().await.expect("JSON error");
    assert_eq!(error["error"]["code"], "payload_too_large");
}

async fn a_signed_unparseable_body_is_stored_acknowledged_and_shown_as_failed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases: [&[u8]; 3] = [
        b"{not json",
        br#"{"object":"page","entry":[]}"#,
        br#"{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"mystery_field","value":{}}]}]}"#,
    ];
    for body in cases {
        assert_eq!(app.post_webhook(body).await.status(), 200);
    }
    app.settle().await;
    let failed = app.get_json("/api/webhooks/dead-letters").await;
    let failed = failed["items"].as_array().expect("list");
    assert_eq!(failed.len(), 3);
    let mut details = Vec::new();
    for item in failed {
        details.push(
            app.get_json(&format!("/api/webhooks/dead-letters/{}", item["id"]))
                .await,
        );
    }
    let bodies: Vec<&str> = details.iter().filter_map(|f| f["body"].as_str()).collect();
    for body in cases {
        assert!(
            bodies.contains(&std::str::from_utf8(body).expect("utf-8")),
            "raw body kept"
        );
    }
    assert!(failed
        .iter()
        .all(|f| f["error"].as_str().is_some_and(|e| !e.is_empty())));
    assert!(failed.iter().any(|f| f["error"]
        .as_str()
        .is_some_and(|e| e.contains("mystery_field"))));
}

async fn the_verification_handshake_echoes_the_challenge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let ok = app
        .get(&format!(
            "/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=1158201444"
        ))
        .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.expect("body"), "1158201444");
    for query in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=test-verify-token&hub.challenge=1",
        "hub.mode=subscribe&hub.verify_token=test-verify-token",
    ] {
        let refused = app.get(&format!("/webhooks/whatsapp?{query}")).await;
        assert_eq!(refused.status(), 403, "{query}");
    }
}

async fn unknown_routes_and_bad_cursors_get_json_errors(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let missing = app.get("/api/nothing-here").await;
    assert_eq!(missing.status(), 404);
    let error: Value = missing.json().await.expect("JSON");
    assert_eq!(error["error"]["code"], "not_found");
    let bad = app.get("/api/conversations?cursor=garbage").await;
    assert_eq!(bad.status(), 400);
    assert_eq!(
        bad.json::<Value>().await.expect("JSON")["error"]["code"],
        "invalid_cursor"
    );
    let bad_limit = app.get("/api/conversations?limit=-3").await;
    assert_eq!(bad_limit.status(), 400);
    let unknown = app
        .get("/api/conversations/00000000-0000-0000-0000-000000000000")
        .await;
    assert_eq!(unknown.status(), 404);
}

async fn conversations_page_newest_activity_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for customer in 0..5 {
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": "120000000000001"},
            "contacts": [{"wa_id": format!("4915000000{customer}"), "profile": {"name": format!("C{customer}")}}],
            "messages": [{"from": format!("4915000000{customer}"), "id": format!("wamid.page{customer}"),
                          "timestamp": (1_780_000_000 + customer * 10).to_string(), "type": "text", "text": {"body": "hi"}}]}}]}]});
        assert_eq!(
            app.post_webhook(body.to_string().as_bytes()).await.status(),
            200
        );
    }
    app.settle().await;
    let first = app.get_json("/api/conversations?limit=2").await;
    let second = app
        .get_json(&format!(
            "/api/conversations?limit=2&cursor={}",
            first["next_cursor"].as_str().expect("cursor")
        ))
        .await;
    let third = app
        .get_json(&format!(
            "/api/conversations?limit=2&cursor={}",
            second["next_cursor"].as_str().expect("cursor")
        ))
        .await;
    let names: Vec<&str> = [&first, &second, &third]
        .iter()
        .flat_map(|p| p["items"].as_array().into_iter().flatten())
        .filter_map(|c| c["customer"]["profile_name"].as_str())
        .collect();
    assert_eq!(names, ["C4", "C3", "C2", "C1", "C0"]);
    assert_eq!(third["next_cursor"], Value::Null);
}

async fn two_instances_share_a_backlog_and_apply_each_message_once(backend: Backend) {
    let receiver = TestApp::spawn_with(backend, |s| s.workers.process_webhooks = false).await;
    for i in 0..40 {
        let wa_id = if i % 2 == 0 { SHEENA } else { MARCO };
        let body = json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
            "metadata": {"phone_number_id": "120000000000001"},
            "contacts": [{"wa_id": wa_id, "profile": {"name": "N"}}],
            "messages": [{"from": wa_id, "id": format!("wamid.backlog{i}"),
                          "timestamp": (1_780_000_000 + i).to_string(), "type": "text", "text": {"body": format!("m{i}")}}]}}]}]});
        assert_eq!(
            receiver
                .post_webhook(body.to_string().as_bytes())
                .await
                .status(),
            200
        );
    }
    let small_batches = |s: &mut switchboard::config::Settings| {
        s.workers.process_webhooks = true;
        s.workers.webhook_batch = 3;
    };
    let first = receiver.another_instance(small_batches).await;
    let second = receiver.another_instance(small_batches).await;
    first.settle().await;
    second.settle().await;
    for wa_id in [SHEENA, MARCO] {
        let conversation = receiver.conversation_of(wa_id).await;
        assert_eq!(
            conversation["unread_count"], 20,
            "{wa_id}: every message counted once"
        );
        let messages = receiver
            .messages(conversation["id"].as_str().expect("id"))
            .await;
        assert_eq!(messages.len(), 20, "{wa_id}: every message once");
        let newest = if wa_id == SHEENA { "m38" } else { "m39" };
        assert_eq!(conversation["last_message"]["preview"], newest);
    }
    assert_eq!(
        receiver.get_json("/api/webhooks/dead-letters").await["items"],
        json!([])
    );
}

on_both_backends!(
    two_instances_share_a_backlog_and_apply_each_message_once,
    inbound_text_shows_its_body,
    inbound_reply_keeps_its_context,
    inbound_forward_is_marked,
    inbound_image_keeps_media_and_caption,
    inbound_voice_note_is_a_voice_note,
    inbound_document_keeps_filename,
    inbound_sticker_is_animated,
    inbound_location_keeps_the_place,
    inbound_button_reply_keeps_the_choice,
    inbound_list_reply_keeps_the_row,
    template_quick_reply_keeps_its_payload,
    reaction_added_and_removed,
    unsupported_type_is_kept_with_its_error,
    statuses_move_forward_with_the_time_of_each,
    status_sent_alone_shows_sent,
    status_delivered_alone_shows_delivered,
    status_read_alone_shows_read,
    failed_status_keeps_metas_error_and_sticks,
    template_status_update_is_recorded,
    duplicate_fixtures_give_one_message,
    concurrent_identical_deliveries_give_one_message,
    a_batch_with_several_entries_and_changes_is_read_whole,
    crash_between_store_and_processing_loses_nothing,
    a_bad_or_missing_signature_is_refused_and_nothing_is_stored,
    an_oversize_body_is_refused_with_413,
    a_signed_unparseable_body_is_stored_acknowledged_and_shown_as_failed,
    the_verification_handshake_echoes_the_challenge,
    unknown_routes_and_bad_cursors_get_json_errors,
    conversations_page_newest_activity_first,
);
