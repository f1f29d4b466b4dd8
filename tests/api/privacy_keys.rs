//! Issue #26: contents past their retention period erased from the log and every read model
//! (a whole hour at a time, by destroying that hour's key), and the master key rotated while
//! the server runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use switchboard::clock::Clock;
use switchboard::privacy::retention::ContentRetention;
use switchboard_store::vault::MasterKeys;

use crate::helpers::{Backend, TestApp, TEST_MASTER_KEY};
use crate::on_both_backends;

const NUMBER: &str = "120000000000001";
const CUSTOMER: &str = "34600111222";

/// A webhook with one text from the customer, sent at `sent_at` (Unix seconds).
fn text(wamid: &str, body: &str, sent_at: i64) -> Vec<u8> {
    json!({"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [{"field": "messages", "value": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "15550000001", "phone_number_id": NUMBER},
        "contacts": [{"wa_id": CUSTOMER, "profile": {"name": "Lucía"}}],
        "messages": [{"from": CUSTOMER, "id": wamid, "timestamp": sent_at.to_string(),
            "type": "text", "text": {"body": body}}]}}]}]})
    .to_string()
    .into_bytes()
}

/// How many events of the log hold `needle` anywhere in their stored row.
async fn stored_events_holding(app: &TestApp, needle: &str) -> i64 {
    let pattern = format!("%{needle}%");
    switchboard_store::with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from events where cast(payload as text) like $1")
        .bind(pattern).fetch_one(pool).await.expect("count"))
}

async fn timeline(app: &TestApp, conversation: &str) -> Vec<Value> {
    let page = app
        .get_json(&format!(
            "/api/conversations/{conversation}/messages?limit=500"
        ))
        .await;
    page["items"].as_array().expect("items").clone()
}

fn content_of<'a>(messages: &'a [Value], id: &str) -> &'a Value {
    &messages
        .iter()
        .find(|m| m["wamid"] == id || m["id"] == id)
        .unwrap_or_else(|| panic!("{id} in {messages:?}"))["content"]
}

async fn contents_older_than_the_retention_are_erased_and_newer_ones_kept(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.workers.content_retention = ContentRetention {
            default: Some(Duration::from_secs(86_400)),
            ..Default::default()
        };
        s.workers.content_retention_interval = Duration::from_millis(50);
    })
    .await;
    let now = app.clock.now().unix_millis() / 1_000;
    // Two hours old, and a note written now: both kept for a day.
    let old = text("wamid.OLD", "my old address is Calle Mayor 5", now - 7_200);
    assert_eq!(app.post_webhook(&old).await.status(), 200);
    app.settle().await;
    let conversation = app.conversations().await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let note = app
        .send_as(
            &app.admin_token,
            Method::POST,
            &format!("/api/conversations/{conversation}/notes"),
            Some(json!({"text": "called her about Calle Mayor"})),
        )
        .await;
    assert_eq!(note.status(), 201);
    app.settle().await;
    // The day of the old message and the note (the new one comes the next day).
    let period = "from=2026-05-20T00:00:00Z&to=2026-05-29T00:00:00Z";
    let volume_before = app
        .get_json(&format!("/api/analytics/volume?{period}"))
        .await;
    let overview_before = app
        .get_json(&format!("/api/analytics/overview?{period}"))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        content_of(&timeline(&app, &conversation).await, "wamid.OLD")["body"],
        "my old address is Calle Mayor 5",
        "erased before its time"
    );

    // A day and three hours later, a new message arrives: the old one and the note are past
    // the day, the new one is not.
    app.clock.advance_seconds(86_400 + 3 * 3_600);
    let now = app.clock.now().unix_millis() / 1_000;
    let new = text("wamid.NEW", "my new address is Gran Vía 1", now - 60);
    assert_eq!(app.post_webhook(&new).await.status(), 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    let messages = loop {
        app.settle().await;
        let messages = timeline(&app, &conversation).await;
        if content_of(&messages, "wamid.OLD")["body"] == "[erased]" {
            break messages;
        }
        assert!(Instant::now() < deadline, "not erased: {messages:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let note = messages
        .iter()
        .find(|m| m["type"] == "note")
        .expect("the note");
    assert_eq!(note["content"], json!({"body": "[erased]"}), "{note}");
    assert_eq!(
        content_of(&messages, "wamid.NEW")["body"],
        "my new address is Gran Vía 1"
    );
    assert_eq!(messages.len(), 3, "every message still counted");
    // Gone from the log itself and from search; the new one stays.
    assert_eq!(stored_events_holding(&app, "Calle Mayor").await, 0);
    let found = app.get_json("/api/search?q=Mayor").await;
    assert!(!found.to_string().contains("Mayor"), "{found}");
    let found = app.get_json("/api/search?q=Gran").await;
    assert!(found.to_string().contains(&conversation), "{found}");
    // Who the customer is, and the counts and analytics, are unchanged.
    let detail = app
        .get_json(&format!("/api/conversations/{conversation}"))
        .await;
    assert_eq!(detail["customer"]["wa_id"], CUSTOMER, "{detail}");
    let volume_after = app
        .get_json(&format!("/api/analytics/volume?{period}"))
        .await;
    let overview_after = app
        .get_json(&format!("/api/analytics/overview?{period}"))
        .await;
    assert_eq!(volume_after, volume_before);
    assert_eq!(
        overview_after["conversations"],
        overview_before["conversations"]
    );
    // Recorded as an event; a rebuild gives the same and verifies.
    let expired: i64 = switchboard_store::with_pool!(&app.database, pool => sqlx::query_scalar(
        "select count(*) from events where event_type = 'ConversationContentExpired'")
        .fetch_one(pool).await.expect("count"));
    assert!(expired >= 1);
    let log = app.log();
    switchboard::replay::rebuild(&log, &[])
        .await
        .expect("rebuild");
    assert_eq!(timeline(&app, &conversation).await, messages);
    let verification = switchboard::replay::verify::verify(&log)
        .await
        .expect("verify");
    assert!(verification.ok(), "{verification:?}");
}

const NEW_MASTER_KEY: &str = "rotated-master-key-9876543210-9876543210-fedcba";

fn keys(current: &str, previous: &[&str]) -> Arc<MasterKeys> {
    let previous: Vec<String> = previous.iter().map(|k| (*k).to_owned()).collect();
    Arc::new(MasterKeys::new(current, &previous).expect("master keys"))
}

async fn the_master_key_is_rotated_while_serving_and_the_old_one_is_then_not_needed(
    backend: Backend,
) {
    // Step one of a rotation (README): every instance learns the new key as a previous one.
    let app = TestApp::spawn_with(backend, |s| {
        s.master_keys = keys(TEST_MASTER_KEY, &[NEW_MASTER_KEY]);
    })
    .await;
    for i in 0..3 {
        let sent = text(
            &format!("wamid.R{i}"),
            &format!("rotation text {i}"),
            1_780_000_000 + i,
        );
        assert_eq!(app.post_webhook(&sent).await.status(), 200);
    }
    app.settle().await;
    let conversation = app.conversations().await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let before = timeline(&app, &conversation).await;
    assert_eq!(before.len(), 3);

    // Step two: an instance starts with the new master key and the old one as previous: it
    // serves at once, and wraps every data key again in the background.
    let rotating = app
        .another_instance(|s| s.master_keys = keys(NEW_MASTER_KEY, &[TEST_MASTER_KEY]))
        .await;
    let new_id = keys(NEW_MASTER_KEY, &[]).current_id().to_owned();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        assert_eq!(timeline(&rotating, &conversation).await, before);
        let health = rotating.get_json("/api/health/detailed").await;
        assert_eq!(health["master_key"]["current_id"], new_id.as_str());
        let left = health["master_key"]["keys_on_previous_master_keys"].as_i64();
        if left == Some(0) {
            break;
        }
        assert!(Instant::now() < deadline, "{left:?} keys not re-wrapped");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // It goes on taking messages meanwhile.
    let sent = text("wamid.R9", "rotation text 9", 1_780_000_009);
    assert_eq!(rotating.post_webhook(&sent).await.status(), 200);
    rotating.settle().await;

    // Without the old master key everything reads, and rebuilds, the same.
    let only_new = app
        .another_instance(|s| s.master_keys = keys(NEW_MASTER_KEY, &[]))
        .await;
    let after = timeline(&only_new, &conversation).await;
    assert_eq!(after.len(), 4);
    assert_eq!(after[..3], before[..]);
    let log = only_new.log();
    switchboard::replay::rebuild(&log, &[])
        .await
        .expect("rebuild");
    assert_eq!(timeline(&only_new, &conversation).await, after);
    assert!(switchboard::replay::verify::verify(&log)
        .await
        .expect("verify")
        .ok());
    // The old master key alone no longer opens anything.
    let old_only =
        switchboard_store::EventRepository::new(app.database.clone(), keys(TEST_MASTER_KEY, &[]));
    assert!(old_only
        .read_all(switchboard_store::LogCursor::START, 100)
        .await
        .is_err());
}

/// An event of a customer's message, as an install before sealing wrote it.
fn inbound(customer: &str, n: i64, body: &str) -> switchboard_store::NewEvent {
    use cqrs_es::DomainEvent;
    use switchboard_domain::message::{MessageContent, MessageEvent};
    use switchboard_domain::{ConversationId, Customer, PhoneNumberId, Timestamp};
    let phone = PhoneNumberId::new(NUMBER);
    let customer = Customer::new(Some(customer.to_owned()), None).expect("customer");
    let event = MessageEvent::InboundReceived {
        conversation_id: ConversationId::for_customer(&phone, &customer),
        phone_number_id: phone,
        customer,
        profile_name: Some("Old Name".to_owned()),
        sent_at: Timestamp::from_unix_seconds(1_780_000_000 + n).expect("time"),
        content: MessageContent::Text {
            body: body.to_owned(),
        },
        context: None,
        referral: None,
        errors: vec![],
    };
    switchboard_store::NewEvent {
        aggregate_type: "Message",
        aggregate_id: format!("wamid.old.{n}"),
        sequence: 1,
        event_type: event.event_type(),
        event_version: event.event_version(),
        payload: serde_json::to_value(&event).expect("JSON"),
        metadata: json!({}),
    }
}

/// An install upgraded from before the log was sealed: its events are sealed at start, and a
/// customer it had erased then (read models only) loses what the log still held.
async fn events_written_before_sealing_are_sealed_and_earlier_erasures_take_hold(backend: Backend) {
    use switchboard_domain::conversation::ConversationEvent;
    let fresh = crate::helpers::FreshDatabase::new(backend).await;
    let keys = crate::helpers::test_master_keys();
    let (database, _, _) = switchboard::startup::connect_store(&fresh.config, &keys)
        .await
        .expect("store");
    let in_clear = MasterKeys::new(TEST_MASTER_KEY, &[]).expect("key");
    let old = switchboard_store::EventRepository::new(
        database.clone(),
        Arc::new(in_clear.in_clear_for_benchmarks()),
    );
    let kept = inbound("34600000001", 1, "kept words of Ana");
    let gone = inbound("34600000002", 2, "gone words of Bea");
    let conversation = gone.payload["InboundReceived"]["conversation_id"]
        .as_str()
        .expect("conversation")
        .to_owned();
    let erasure = ConversationEvent::CustomerErased {
        reason: "GDPR-1".to_owned(),
        by: switchboard_domain::AgentId::parse("00000000-0000-0000-0000-000000000001").expect("id"),
        at: switchboard_domain::Timestamp::from_unix_seconds(1_780_000_100).expect("time"),
    };
    let erased = switchboard_store::NewEvent {
        aggregate_type: "Conversation",
        aggregate_id: conversation,
        sequence: 1,
        event_type: cqrs_es::DomainEvent::event_type(&erasure),
        event_version: "1.0".to_owned(),
        payload: serde_json::to_value(&erasure).expect("JSON"),
        metadata: json!({}),
    };
    old.append(&[kept, gone, erased], &[], &[])
        .await
        .expect("append");

    let log = switchboard_store::EventRepository::new(database.clone(), keys);
    let sealed = switchboard_store::vault::seal_existing(&log)
        .await
        .expect("sealed");
    assert_eq!(sealed, 2);
    assert_eq!(
        switchboard_store::vault::seal_existing(&log)
            .await
            .expect("again"),
        0
    );
    let stored: Vec<String> = switchboard_store::with_pool!(&database, pool => sqlx::query_scalar(
        "select cast(payload as text) from events").fetch_all(pool).await.expect("rows"));
    for secret in [
        "kept words",
        "gone words",
        "34600000001",
        "34600000002",
        "Old Name",
    ] {
        assert!(
            !stored.iter().any(|row| row.contains(secret)),
            "{secret} in clear"
        );
    }
    let read = log
        .read_all(switchboard_store::LogCursor::START, 10)
        .await
        .expect("read");
    let text = |i: usize| read[i].payload["InboundReceived"]["content"]["body"].clone();
    assert_eq!(text(0), "kept words of Ana");
    assert_eq!(text(1), "[erased]");
    assert_eq!(
        read[1].payload["InboundReceived"]["customer"]["wa_id"],
        "[erased]"
    );
}

/// Two writers (two instances: caches of their own) appending a new customer's first message
/// at the same moment both generate its keys; one writer's keys are stored, the other's append
/// is sealed again with them: every message reads back.
async fn writers_creating_the_same_keys_at_once_both_seal_with_the_stored_ones(backend: Backend) {
    let fresh = crate::helpers::FreshDatabase::new(backend).await;
    let keys = crate::helpers::test_master_keys();
    let (database, _, _) = switchboard::startup::connect_store(&fresh.config, &keys)
        .await
        .expect("store");
    let one = switchboard_store::EventRepository::new(database.clone(), keys.clone());
    let two = switchboard_store::EventRepository::new(database.clone(), keys);
    for round in 0..12i64 {
        let customer = format!("3460000{round:04}");
        let first = [inbound(
            &customer,
            round * 2,
            &format!("first words {round}"),
        )];
        let second = [inbound(
            &customer,
            round * 2 + 1,
            &format!("second words {round}"),
        )];
        let (a, b) = tokio::join!(one.append(&first, &[], &[]), two.append(&second, &[], &[]));
        a.expect("first append");
        b.expect("second append");
    }
    let read = one
        .read_all(switchboard_store::LogCursor::START, 100)
        .await
        .expect("read");
    let mut texts: Vec<String> = read
        .iter()
        .map(|e| {
            e.payload["InboundReceived"]["content"]["body"]
                .as_str()
                .unwrap_or("")
                .to_owned()
        })
        .collect();
    texts.sort();
    let mut expected: Vec<String> = (0..12)
        .flat_map(|r| [format!("first words {r}"), format!("second words {r}")])
        .collect();
    expected.sort();
    assert_eq!(texts, expected, "every message opens");
    let stored: i64 = switchboard_store::with_pool!(&database, pool => sqlx::query_scalar(
        "select count(*) from customer_keys").fetch_one(pool).await.expect("count"));
    assert_eq!(
        stored,
        12 * 2,
        "one identity and one content key per customer"
    );
}

on_both_backends!(
    writers_creating_the_same_keys_at_once_both_seal_with_the_stored_ones,
    events_written_before_sealing_are_sealed_and_earlier_erasures_take_hold,
    contents_older_than_the_retention_are_erased_and_newer_ones_kept,
    the_master_key_is_rotated_while_serving_and_the_old_one_is_then_not_needed,
);
