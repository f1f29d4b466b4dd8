//! What the global reader returns: events as recorded, and where a reader stands.

use serde_json::Value;

/// Where a reader is in the global log: just after the event at `position`.
///
/// `transaction_id` is the writing transaction of that event on PostgreSQL (0 on SQLite and at
/// the start). Clients only ever see positions; [`EventRepository::cursor_after`](crate::EventRepository::cursor_after) turns a
/// position back into a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LogCursor {
    /// The writing transaction of the last event read (PostgreSQL).
    pub transaction_id: u64,
    /// The position of the last event read.
    pub position: i64,
}

impl LogCursor {
    /// Before the first event.
    pub const START: Self = Self {
        transaction_id: 0,
        position: 0,
    };
}

/// An event as the global log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Unique, assigned at insert.
    pub position: i64,
    /// The cursor just after this event.
    pub cursor: LogCursor,
    /// Aggregate type (`Conversation`, `Message`, …).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Sequence within the aggregate, from 1.
    pub sequence: i64,
    /// Frozen event type name.
    pub event_type: String,
    /// Payload version.
    pub event_version: String,
    /// The serialized event.
    pub payload: Value,
    /// Request id, actor, causation and correlation ids, recorded-at time.
    pub metadata: Value,
    /// When the database recorded it (Unix milliseconds).
    pub recorded_at_ms: i64,
}
