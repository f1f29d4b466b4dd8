//! Which parts of a serialized event are a customer's personal data, the key each part is
//! sealed under, what an event reads once that key is destroyed, and which events destroy keys
//! (crypto-shredding: the log is never rewritten; erasing data is destroying its key).
//!
//! Pure rules on serialized events, like [`crate::upcasting`]: the store seals and opens, this
//! says what and with which key. A customer's data in one conversation (one customer on one
//! business number) has two kinds of keys:
//! - the **identity** key: who they are (number, user id, profile name), destroyed by an
//!   erasure request;
//! - one **content** key per hour of what was said (texts, media references, captions,
//!   locations, contact cards, notes), destroyed by an erasure request or, hour by hour, by
//!   the retention period.

use chrono::DateTime;
use serde_json::{Map, Value};

/// What every reader sees in place of erased text.
pub const ERASED: &str = "[erased]";

/// Seconds per content key: contents are erased by retention a whole hour at a time.
pub const CONTENT_KEY_SECONDS: i64 = 3_600;

/// Which key of a conversation seals a part of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum KeyScope {
    /// Who the customer is.
    Identity,
    /// What was said in one hour (Unix seconds / [`CONTENT_KEY_SECONDS`]).
    Content(i64),
}

impl KeyScope {
    /// The scope as stored: -1 for the identity, else the hour.
    pub fn as_i64(self) -> i64 {
        match self {
            Self::Identity => -1,
            Self::Content(hour) => hour,
        }
    }
}

/// The personal parts of one event: fields of its variant object, grouped by key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Personal {
    /// The conversation whose keys seal them.
    pub conversation: String,
    /// The event's variant (the payload's single key).
    pub variant: String,
    /// Field names per key, in a stable order.
    pub parts: Vec<(KeyScope, Vec<&'static str>)>,
}

/// Which keys an event destroys as it is appended (in the same transaction).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Destroys {
    /// Every key of the conversation (an erasure request).
    All {
        /// The conversation.
        conversation: String,
    },
    /// The content keys of hours before `hour` (retention).
    ContentBefore {
        /// The conversation.
        conversation: String,
        /// The first hour kept.
        hour: i64,
    },
}

/// The personal parts of an event of `aggregate_type`, if it has any.
pub fn personal(aggregate_type: &str, aggregate_id: &str, payload: &Value) -> Option<Personal> {
    let (variant, body) = variant(payload)?;
    // Sealed under the identity key when the time does not read (never for events this code
    // wrote): never stored in clear.
    let hour = |field: &str| {
        let at = body.get(field).and_then(Value::as_str);
        let seconds = at.and_then(|at| DateTime::parse_from_rfc3339(at).ok());
        let scope =
            seconds.map(|s| KeyScope::Content(s.timestamp().div_euclid(CONTENT_KEY_SECONDS)));
        Some(scope.unwrap_or(KeyScope::Identity))
    };
    let conversation_field = || Some(body.get("conversation_id")?.as_str()?.to_owned());
    let (conversation, parts) = match (aggregate_type, variant) {
        ("Conversation", "Started" | "CustomerIdentified") => (
            aggregate_id.to_owned(),
            vec![(KeyScope::Identity, vec!["customer"])],
        ),
        ("Conversation", "CustomerProfileNamed") => (
            aggregate_id.to_owned(),
            vec![(KeyScope::Identity, vec!["name"])],
        ),
        ("Conversation", "NoteAdded") => {
            (aggregate_id.to_owned(), vec![(hour("at")?, vec!["text"])])
        }
        ("Message", "InboundReceived") => (
            conversation_field()?,
            vec![
                (KeyScope::Identity, vec!["customer", "profile_name"]),
                (hour("sent_at")?, vec!["content", "context", "referral"]),
            ],
        ),
        ("Message", "EchoRecorded") => (
            conversation_field()?,
            vec![
                (KeyScope::Identity, vec!["customer"]),
                (hour("sent_at")?, vec!["content"]),
            ],
        ),
        ("Message", "OutboundRequested") => (
            conversation_field()?,
            vec![
                (KeyScope::Identity, vec!["customer"]),
                (hour("at")?, vec!["content"]),
            ],
        ),
        _ => return None,
    };
    let parts = parts
        .into_iter()
        .map(|(scope, fields)| {
            let present = fields.into_iter().filter(|f| body.contains_key(*f));
            (scope, present.collect::<Vec<_>>())
        })
        .filter(|(_, fields)| !fields.is_empty())
        .collect::<Vec<_>>();
    (!parts.is_empty()).then(|| Personal {
        conversation,
        variant: variant.to_owned(),
        parts,
    })
}

/// The keys an event of `aggregate_type` destroys, if any.
pub fn destroys(aggregate_type: &str, aggregate_id: &str, payload: &Value) -> Option<Destroys> {
    let (variant, body) = variant(payload)?;
    let conversation = aggregate_id.to_owned();
    match (aggregate_type, variant) {
        ("Conversation", "CustomerErased") => Some(Destroys::All { conversation }),
        ("Conversation", "ContentExpired") => {
            let before = body.get("before")?.as_str()?;
            let seconds = DateTime::parse_from_rfc3339(before).ok()?.timestamp();
            Some(Destroys::ContentBefore {
                conversation,
                hour: seconds.div_euclid(CONTENT_KEY_SECONDS),
            })
        }
        _ => None,
    }
}

/// The conversation whose identity key seals a snapshot of this aggregate (its state holds
/// the customer), if any.
pub fn snapshot_conversation(
    aggregate_type: &str,
    aggregate_id: &str,
    state: &Value,
) -> Option<String> {
    match aggregate_type {
        "Conversation" => Some(aggregate_id.to_owned()),
        "Message" => Some(state.get("conversation_id")?.as_str()?.to_owned()),
        _ => None,
    }
}

/// A personal value with its content gone and its shape kept, so that the event still reads
/// as the same kind of thing (a text, an image, a location) and is counted the same: strings
/// become [`ERASED`], coordinates 0, and only fields that say what kind of thing it is or which
/// other message it refers to are kept.
pub fn erased(value: &Value) -> Value {
    match value {
        Value::String(_) => Value::String(ERASED.to_owned()),
        Value::Array(items) => Value::Array(items.iter().map(erased).collect()),
        Value::Object(fields) => {
            // Which template was sent says nothing about the customer (analytics count by it).
            let template = fields.get("type").and_then(Value::as_str) == Some("template");
            Value::Object(
                fields
                    .iter()
                    .map(|(key, value)| {
                        let kept = match key.as_str() {
                            "latitude" | "longitude" => Value::from(0),
                            "name" | "language" if template => value.clone(),
                            key if KEPT.contains(&key) => value.clone(),
                            _ => erased(value),
                        };
                        (key.clone(), kept)
                    })
                    .collect::<Map<_, _>>(),
            )
        }
        Value::Null | Value::Bool(_) | Value::Number(_) => value.clone(),
    }
}

/// Fields kept by [`erased`]: the kind of thing and references to other messages, none of
/// which says anything about the customer.
const KEPT: &[&str] = &[
    "type",
    "kind",
    "subtype",
    "meta_type",
    "mime_type",
    "voice",
    "animated",
    "message_id",
    "original_message_id",
    "forwarded",
    "frequently_forwarded",
];

/// The payload's variant name and object (`{"Variant": {...}}`).
fn variant(payload: &Value) -> Option<(&str, &Map<String, Value>)> {
    let object = payload.as_object()?;
    let (name, body) = object.iter().find(|(key, _)| !key.starts_with('$'))?;
    Some((name.as_str(), body.as_object()?))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn an_inbound_message_seals_who_under_the_identity_key_and_what_under_its_hour() {
        let payload = json!({"InboundReceived": {
            "conversation_id": "c1", "phone_number_id": "p", "customer": {"wa_id": "34600"},
            "profile_name": "Ana", "sent_at": "1970-01-01T02:00:05Z",
            "content": {"type": "text", "body": "hola"}}});
        let plan = personal("Message", "m1", &payload).unwrap();
        assert_eq!(plan.conversation, "c1");
        assert_eq!(
            plan.parts,
            vec![
                (KeyScope::Identity, vec!["customer", "profile_name"]),
                (KeyScope::Content(2), vec!["content"]),
            ]
        );
        assert_eq!(
            personal(
                "Message",
                "m1",
                &json!({"StatusAdvanced": {"conversation_id": "c1"}})
            ),
            None
        );
    }

    #[test]
    fn erased_values_keep_their_kind_and_lose_their_content() {
        let location = json!({"type": "location", "latitude": 40.4, "longitude": -3.7,
            "name": "Casa", "voice": true, "original_message_id": "wamid.1"});
        assert_eq!(
            erased(&location),
            json!({"type": "location", "latitude": 0, "longitude": 0, "name": ERASED,
                "voice": true, "original_message_id": "wamid.1"})
        );
        assert_eq!(
            erased(&json!({"wa_id": "34600", "user_id": "US.1"})),
            json!({"wa_id": ERASED, "user_id": ERASED})
        );
    }

    #[test]
    fn an_erasure_destroys_every_key_and_an_expiry_the_hours_before_it() {
        let erase =
            json!({"CustomerErased": {"reason": "r", "by": "a", "at": "2026-01-01T00:00:00Z"}});
        assert_eq!(
            destroys("Conversation", "c1", &erase),
            Some(Destroys::All {
                conversation: "c1".into()
            })
        );
        let expire = json!({"ContentExpired": {"before": "1970-01-01T03:00:00Z", "at": "x"}});
        assert_eq!(
            destroys("Conversation", "c1", &expire),
            Some(Destroys::ContentBefore {
                conversation: "c1".into(),
                hour: 3
            })
        );
    }
}
