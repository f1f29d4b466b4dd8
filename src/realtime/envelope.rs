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

impl From<RecordedEvent> for Envelope {
    fn from(event: RecordedEvent) -> Self {
        let conversation_id = conversation_of(&event).map(str::to_owned);
        Self {
            position: event.position,
            kind: event.event_type,
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            conversation_id,
            data: event.payload,
            metadata: event.metadata,
            at: switchboard_domain::Timestamp::from_unix_millis(event.recorded_at_ms)
                .map(|t| t.to_string())
                .unwrap_or_default(),
        }
    }
}
