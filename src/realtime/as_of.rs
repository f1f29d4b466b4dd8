//! The log as it stood at one cursor: a conversation's assignment and an agent's rights,
//! rebuilt from their own events (two cheap per-aggregate queries) rather than read from a
//! read model, which may be ahead of or behind the point a socket has reached.
//!
//! "At a cursor" means: folding, in log order, the events at or before it. Log order is the
//! gapless reader's `(transaction id, position)` order, the order in which sockets receive
//! events, so what is rebuilt here is exactly what a socket that followed the log from the
//! start would know at that point.

use std::collections::HashMap;

use cqrs_es::Aggregate;
use switchboard_domain::agent::{Agent, AgentEvent};
use switchboard_domain::AgentId;
use switchboard_projections::DecodedEvent;
use switchboard_store::{EventRepository, LogCursor, RecordedEvent};

use super::audience::{Assignment, Reader};
use super::RealtimeError;

/// The assignment of each of `ids` at `cursor`. A conversation with no event at or before
/// `cursor` (not started yet, or unknown) is absent from the answer.
///
/// # Errors
/// When the log cannot be read.
pub async fn assignments_at(
    log: &EventRepository,
    ids: &[&str],
    cursor: LogCursor,
) -> Result<HashMap<String, Assignment>, RealtimeError> {
    let mut events = log.events_of("Conversation", ids).await?;
    events.retain(|event| event.cursor <= cursor);
    events.sort_by_key(|event| event.cursor);
    let mut found: HashMap<String, Assignment> = HashMap::with_capacity(ids.len());
    for event in &events {
        let assignment = found.entry(event.aggregate_id.clone()).or_default();
        if let Some(set) = Assignment::set_by(event) {
            *assignment = set;
        }
    }
    Ok(found)
}

/// One agent's record at a cursor, moved forward by their own account events as a socket's
/// stream passes them.
#[derive(Debug, Clone)]
pub struct Rights {
    agent_id: AgentId,
    agent: Agent,
    reader: Reader,
}

impl Rights {
    /// The agent's record at `cursor`: their account events at or before it.
    ///
    /// # Errors
    /// When the log cannot be read or one of the events does not decode.
    pub async fn at(
        log: &EventRepository,
        agent_id: AgentId,
        cursor: LogCursor,
    ) -> Result<Self, RealtimeError> {
        let mut events = log.aggregate_events("Agent", &agent_id.to_string()).await?;
        events.retain(|event| event.cursor <= cursor);
        events.sort_by_key(|event| event.cursor);
        let mut agent = Agent::default();
        for event in &events {
            if let Some(decoded) = account_event(event)? {
                agent.apply(decoded);
            }
        }
        Ok(Self {
            reader: Reader::of(agent_id, &agent),
            agent_id,
            agent,
        })
    }

    /// What the agent may receive at this point.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }

    /// Whether the agent is registered and active at this point.
    pub fn is_active(&self) -> bool {
        self.agent.is_active()
    }

    /// Applies the next event of the agent's account; `true` when what they may read changed.
    pub fn apply(&mut self, event: AgentEvent) -> bool {
        self.agent.apply(event);
        let reader = Reader::of(self.agent_id, &self.agent);
        let changed = reader != self.reader;
        self.reader = reader;
        changed
    }
}

/// The decoded event when `event` is an agent account's.
///
/// # Errors
/// When its payload does not match its type.
pub fn account_event(event: &RecordedEvent) -> Result<Option<AgentEvent>, RealtimeError> {
    if event.aggregate_type != Agent::TYPE {
        return Ok(None);
    }
    Ok(match DecodedEvent::decode(event)? {
        DecodedEvent::Agent(decoded) => Some(decoded),
        _ => None,
    })
}
