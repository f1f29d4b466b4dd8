//! Applies the domain's upcaster registry ([`switchboard_domain::upcasting`]) to events as they
//! are read, so every reader of the log — aggregates (through cqrs-es and our own loaders), the
//! global reader behind projections, realtime and export — sees current shapes only.

use std::sync::LazyLock;

use cqrs_es::persist::{EventUpcaster, SerializedEvent};
use serde_json::Value;

static UPCASTERS: LazyLock<Vec<Box<dyn EventUpcaster>>> =
    LazyLock::new(switchboard_domain::upcasting::upcasters);

/// A stored event brought to the current shape: every upcaster that applies runs in turn.
pub fn upcast_serialized(mut event: SerializedEvent) -> SerializedEvent {
    for upcaster in UPCASTERS.iter() {
        if upcaster.can_upcast(&event.event_type, &event.event_version) {
            event = upcaster.upcast(event);
        }
    }
    event
}

/// [`upcast_serialized`] for readers that keep type, version and payload apart.
pub fn upcast(event_type: &str, event_version: &mut String, payload: &mut Value) {
    if !UPCASTERS
        .iter()
        .any(|u| u.can_upcast(event_type, event_version))
    {
        return;
    }
    let upcast = upcast_serialized(SerializedEvent {
        aggregate_id: String::new(),
        sequence: 0,
        aggregate_type: String::new(),
        event_type: event_type.to_owned(),
        event_version: std::mem::take(event_version),
        payload: std::mem::take(payload),
        metadata: Value::Null,
    });
    *event_version = upcast.event_version;
    *payload = upcast.payload;
}

/// The schema version snapshots of `aggregate_type` are written with and read at.
pub fn snapshot_schema(aggregate_type: &str) -> i64 {
    switchboard_domain::upcasting::snapshot_schema(aggregate_type)
}
