//! How the log stays readable as event shapes evolve: one registry of upcasters (event type +
//! stored version → current shape) that every reader of the log applies before decoding
//! (aggregates, the global reader, projections, realtime, export), and the schema version of
//! each aggregate's snapshots.
//!
//! Rules: an event's shape never changes under the same version. A change bumps the version
//! its `event_version()` returns and adds an upcaster here from the previous version; events
//! already stored keep their version and are upcast on every read. A change to an aggregate's
//! own fields bumps its [`snapshot_schema`], so older snapshots are ignored (rebuilt from
//! events) instead of half-read.

use cqrs_es::persist::{EventUpcaster, SemanticVersionEventUpcaster};
use serde_json::Value;

/// Every upcaster, oldest first. A stored event goes through each one that applies to its
/// type and (older) version, in turn.
pub fn upcasters() -> Vec<Box<dyn EventUpcaster>> {
    vec![Box::new(SemanticVersionEventUpcaster::new(
        "MessageOutboundRequested",
        "2.0",
        Box::new(outbound_requested_v2),
    ))]
}

/// `MessageOutboundRequested` 1.0 → 2.0: who asked is `by`, as in every other event an agent
/// causes (1.0 called it `requested_by`).
fn outbound_requested_v2(mut payload: Value) -> Value {
    if let Some(fields) = payload
        .get_mut("OutboundRequested")
        .and_then(Value::as_object_mut)
    {
        if let Some(by) = fields.remove("requested_by") {
            fields.entry("by").or_insert(by);
        }
    }
    payload
}

/// The schema version of an aggregate type's snapshots: bump it when the aggregate's own
/// fields change meaning or shape. Snapshots of another version are ignored.
pub fn snapshot_schema(aggregate_type: &str) -> i64 {
    match aggregate_type {
        // 2: they remember only their recent report ids (older snapshots hold them all).
        "Template" | "BusinessAccount" => 2,
        // 2: they keep the clocks SLAs are measured on (older snapshots lack them).
        // 3: they know since when a customer has waited for the bot.
        "Conversation" => 3,
        // 2: they know whether they are a bot's.
        "ApiKey" => 2,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use cqrs_es::persist::SerializedEvent;
    use serde_json::json;

    use super::*;

    fn upcast(event_type: &str, version: &str, payload: Value) -> SerializedEvent {
        let mut event = SerializedEvent {
            aggregate_id: "m".into(),
            sequence: 1,
            aggregate_type: "Message".into(),
            event_type: event_type.into(),
            event_version: version.into(),
            payload,
            metadata: json!({}),
        };
        for upcaster in upcasters() {
            if upcaster.can_upcast(&event.event_type, &event.event_version) {
                event = upcaster.upcast(event);
            }
        }
        event
    }

    #[test]
    fn an_old_outbound_request_names_its_agent_by() {
        let event = upcast(
            "MessageOutboundRequested",
            "1.0",
            json!({"OutboundRequested": {"requested_by": "a", "priority": "high"}}),
        );
        assert_eq!(event.event_version, "2.0.0");
        assert_eq!(
            event.payload,
            json!({"OutboundRequested": {"by": "a", "priority": "high"}})
        );
    }

    #[test]
    fn a_current_event_is_left_alone() {
        let payload = json!({"OutboundRequested": {"by": "a"}});
        let event = upcast("MessageOutboundRequested", "2.0", payload.clone());
        assert_eq!(event.payload, payload);
    }
}
