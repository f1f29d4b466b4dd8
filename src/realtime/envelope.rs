//! One log event as clients see it, on sockets and in the analytics stream alike.

use serde::Serialize;
use serde_json::Value;
use switchboard_store::RecordedEvent;

/// One event as consumers see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Envelope {
    /// Global position: pass it back (`last_position`, `after`, `Last-Event-ID`) to resume.
    pub position: i64,
    /// Event type (`MessageInboundReceived`, `LockAcquired`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// The conversation it concerns, when it concerns one.
    pub conversation_id: Option<String>,
    /// The event.
    pub data: Value,
    /// Who caused it and through which request.
    pub metadata: Value,
    /// When it was recorded.
    pub at: String,
}

/// The conversation a recorded event concerns: the aggregate itself, or the
/// `conversation_id` a message event carries.
pub fn conversation_of(event: &RecordedEvent) -> Option<&str> {
    match event.aggregate_type.as_str() {
        "Conversation" => Some(event.aggregate_id.as_str()),
        "Message" => event
            .payload
            .as_object()
            .and_then(|o| o.values().next())
            .and_then(|v| v.get("conversation_id"))
            .and_then(Value::as_str),
        _ => None,
    }
}

/// An [`Envelope`] serialized straight from the recorded event it is made of, without copying
/// its payload: the fan-out, the stream and outgoing webhooks serialize every event once.
pub struct EnvelopeOf<'a>(pub &'a RecordedEvent);

/// [`Envelope`]'s fields, borrowed (a test checks that both serialize alike).
#[derive(Serialize)]
struct Borrowed<'a> {
    position: i64,
    #[serde(rename = "type")]
    kind: &'a str,
    aggregate_type: &'a str,
    aggregate_id: &'a str,
    conversation_id: Option<&'a str>,
    data: &'a Value,
    metadata: &'a Value,
    at: String,
}

impl Serialize for EnvelopeOf<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let event = self.0;
        Borrowed {
            position: event.position,
            kind: &event.event_type,
            aggregate_type: &event.aggregate_type,
            aggregate_id: &event.aggregate_id,
            conversation_id: conversation_of(event),
            data: &event.payload,
            metadata: &event.metadata,
            at: recorded_at(event),
        }
        .serialize(serializer)
    }
}

fn recorded_at(event: &RecordedEvent) -> String {
    switchboard_domain::Timestamp::from_unix_millis(event.recorded_at_ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

impl From<RecordedEvent> for Envelope {
    fn from(event: RecordedEvent) -> Self {
        let conversation_id = conversation_of(&event).map(str::to_owned);
        Self {
            at: recorded_at(&event),
            position: event.position,
            kind: event.event_type,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            conversation_id,
            data: event.payload,
            metadata: event.metadata,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use switchboard_store::LogCursor;

    use super::*;

    #[test]
    fn an_envelope_serializes_alike_borrowed_and_owned() {
        let event = RecordedEvent {
            position: 42,
            cursor: LogCursor {
                transaction_id: 7,
                position: 42,
            },
            aggregate_type: "Message".to_owned(),
            aggregate_id: "wamid.1".to_owned(),
            sequence: 1,
            event_type: "MessageInboundReceived".to_owned(),
            event_version: "1.0".to_owned(),
            payload: json!({"InboundReceived": {"conversation_id": "c-1", "text": "¿hola?\u{0}"}}),
            metadata: json!({"actor": "meta"}),
            recorded_at_ms: 1_780_000_000_123,
        };
        let borrowed = serde_json::to_string(&EnvelopeOf(&event)).expect("borrowed");
        let owned = serde_json::to_string(&Envelope::from(event)).expect("owned");
        assert_eq!(borrowed, owned);
        assert!(owned.contains(r#""conversation_id":"c-1""#), "{owned}");
    }
}
