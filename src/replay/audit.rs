//! "What exactly happened, and when?": every event of a conversation and of its messages, in
//! log order, with who caused it and through which request; and the conversation's state as of
//! any moment, rebuilt by replaying only what had happened by then.

use serde::Serialize;
use serde_json::Value;
use switchboard_domain::conversation::{Conversation, ConversationEvent};
use switchboard_domain::Timestamp;
use switchboard_store::{with_pool, EventRepository, RecordedEvent};

use crate::replay::ReplayError;

/// One event in an audit.
#[derive(Debug, Clone, Serialize)]
pub struct AuditEntry {
    /// Global position.
    pub position: i64,
    /// When it happened, by the application's clock (falls back to the database's).
    pub at: String,
    /// `Conversation` or `Message`.
    pub aggregate_type: String,
    /// Which one.
    pub aggregate_id: String,
    /// Event type.
    pub event_type: String,
    /// Who caused it (`meta`, `agent:<id>`, `system`).
    pub actor: Option<String>,
    /// The request that caused it.
    pub request_id: Option<String>,
    /// The event.
    pub payload: Value,
}

/// The conversation as it stood at a moment.
#[derive(Debug, Clone, Serialize)]
pub struct StateAt {
    /// The moment.
    pub at: String,
    /// Events applied by then.
    pub version: u64,
    /// `open`, `pending`, `snoozed`, `resolved`.
    pub status: String,
    /// The owning agent (absent: the bot).
    pub owner: Option<String>,
    /// Assigned agent.
    pub assigned_agent: Option<String>,
    /// Assigned group.
    pub assigned_group: Option<String>,
    /// Who held the lock then, and until when.
    pub lock_holder: Option<String>,
    /// When that lock lapsed.
    pub lock_expires_at: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// When the service window closed.
    pub window_closes_at: Option<String>,
}

/// An audit of one conversation.
#[derive(Debug, Clone, Serialize)]
pub struct Audit {
    /// The conversation.
    pub conversation_id: String,
    /// Its events and its messages' events, in log order (up to `at` when given).
    pub events: Vec<AuditEntry>,
    /// Its state as of `at`, when asked.
    pub state: Option<StateAt>,
}

fn event_time(event: &RecordedEvent) -> Option<Timestamp> {
    event
        .metadata
        .get("recorded_at")
        .and_then(Value::as_str)
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| Timestamp::new(t.into()))
        .or_else(|| Timestamp::from_unix_millis(event.recorded_at_ms))
}

/// Audits a conversation; with `at`, only what had happened by then, and the state then.
///
/// # Errors
/// [`ReplayError::NoSuchConversation`]; database failures; unreadable events.
pub async fn conversation(
    log: &EventRepository,
    id: &str,
    at: Option<Timestamp>,
) -> Result<Audit, ReplayError> {
    let mut events = log.events_of("Conversation", &[id]).await?;
    if events.is_empty() {
        return Err(ReplayError::NoSuchConversation(id.to_owned()));
    }
    let message_ids: Vec<String> = with_pool!(log.database(), pool => sqlx::query_scalar(
        "select id from messages where conversation_id = $1").bind(id).fetch_all(pool).await
        .map_err(switchboard_store::StoreError::from)?);
    let refs: Vec<&str> = message_ids.iter().map(String::as_str).collect();
    events.extend(log.events_of("Message", &refs).await?);
    events.sort_by_key(|e| e.position);
    let happened = |event: &RecordedEvent| match (at, event_time(event)) {
        (Some(at), Some(time)) => time <= at,
        _ => true,
    };
    let mut state = Conversation::default();
    let mut entries = Vec::with_capacity(events.len());
    for event in events.into_iter().filter(|e| happened(e)) {
        if event.aggregate_type == "Conversation" {
            let decoded: ConversationEvent = serde_json::from_value(event.payload.clone())
                .map_err(|e| switchboard_store::StoreError::Unreadable {
                    aggregate_type: "Conversation",
                    aggregate_id: id.to_owned(),
                    sequence: event.sequence,
                    source: e,
                })?;
            cqrs_es::Aggregate::apply(&mut state, decoded);
        }
        let text = |key: &str| {
            event
                .metadata
                .get(key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        entries.push(AuditEntry {
            position: event.position,
            at: event_time(&event)
                .map(|t| t.to_string())
                .unwrap_or_default(),
            actor: text("actor"),
            request_id: text("request_id"),
            aggregate_type: event.aggregate_type,
            aggregate_id: event.aggregate_id,
            event_type: event.event_type,
            payload: event.payload,
        });
    }
    let state = at.map(|at| {
        let lock = state.lock_at(at);
        let (agent, group) = state.assignment();
        StateAt {
            at: at.to_string(),
            version: state.version(),
            status: state.status().name().to_owned(),
            owner: state.owner().map(|a| a.to_string()),
            assigned_agent: agent.map(|a| a.to_string()),
            assigned_group: group.map(|g| g.to_string()),
            lock_holder: lock.map(|l| l.agent.to_string()),
            lock_expires_at: lock.map(|l| l.expires_at.to_string()),
            tags: state.tags().iter().map(|t| t.as_str().to_owned()).collect(),
            window_closes_at: state.window_closes_at().map(|t| t.to_string()),
        }
    });
    Ok(Audit {
        conversation_id: id.to_owned(),
        events: entries,
        state,
    })
}
