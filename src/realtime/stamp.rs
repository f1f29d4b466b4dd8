//! Log events made ready for sockets: each serialized once, with who may receive it.
//!
//! A [`Stamper`] walks the log in order from some cursor and knows, for the conversations it
//! has met, their assignment at the point it has reached. Its memory is bounded: a
//! conversation it does not know (or has forgotten) is rebuilt from that conversation's own
//! events at the stamper's cursor ([`as_of::assignments_at`]). The fan-out runs one stamper
//! for the live stream; a socket catching up runs its own from its position. Both compute
//! every [`Audience`] from the log up to the event, so they agree.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::value::RawValue;
use switchboard_domain::agent::AgentEvent;
use switchboard_domain::AgentId;
use switchboard_store::{EventRepository, LogCursor, RecordedEvent};

use super::as_of::{self, account_event};
use super::audience::{Assignment, Audience};
use super::envelope::{conversation_of, Envelope};
use super::RealtimeError;

/// One log event ready for sockets.
#[derive(Debug)]
pub struct Delivery {
    /// Where it lies in the log.
    pub cursor: LogCursor,
    /// Who may receive it.
    pub audience: Audience,
    /// The event decoded, when it is an agent account's: the sockets of that agent move their
    /// rights forward with it.
    pub account: Option<AgentEvent>,
    /// The [`Envelope`], serialized once for every socket.
    pub json: Box<RawValue>,
}

/// A batch of deliveries shared by every socket.
pub type Batch = Arc<[Delivery]>;

/// Conversation assignments at one cursor of the log, moved forward event by event.
pub struct Stamper {
    cursor: LogCursor,
    known: HashMap<String, Assignment>,
    capacity: usize,
}

impl Stamper {
    /// A stamper standing just after `cursor`, remembering at most `capacity` conversations.
    pub fn at(cursor: LogCursor, capacity: usize) -> Self {
        Self {
            cursor,
            known: HashMap::new(),
            capacity,
        }
    }

    /// Deliveries for `events`, the events that follow the stamper's cursor in log order.
    ///
    /// # Errors
    /// When the log cannot be read or an event cannot be decoded or serialized; the stamper
    /// then stands where it stood before the call.
    pub async fn stamp(
        &mut self,
        log: &EventRepository,
        events: Vec<RecordedEvent>,
    ) -> Result<Vec<Delivery>, RealtimeError> {
        debug_assert!(events.first().is_none_or(|e| e.cursor > self.cursor));
        self.learn(log, &events).await?;
        let start = self.cursor;
        let result = self.walk(events);
        if result.is_err() {
            // Half moved: forget what was learnt; it is rebuilt from the log when needed.
            self.cursor = start;
            self.known.clear();
        }
        result
    }

    fn walk(&mut self, events: Vec<RecordedEvent>) -> Result<Vec<Delivery>, RealtimeError> {
        let mut deliveries = Vec::with_capacity(events.len());
        for event in events {
            let audience = match conversation_of(&event) {
                Some(conversation) => {
                    let before = self.known.get(conversation).copied().unwrap_or_default();
                    let set = Assignment::set_by(&event);
                    if let Some(set) = set {
                        self.known.insert(conversation.to_owned(), set);
                    }
                    Audience::Conversation {
                        id: conversation.to_owned(),
                        after: set.unwrap_or(before),
                        before,
                    }
                }
                None if event.aggregate_type == "Agent" => {
                    AgentId::parse(&event.aggregate_id).map_or(Audience::Managers, Audience::Agent)
                }
                None => Audience::Managers,
            };
            let account = account_event(&event)?;
            let cursor = event.cursor;
            let json = serde_json::value::to_raw_value(&Envelope::from(event))?;
            self.cursor = cursor;
            deliveries.push(Delivery {
                cursor,
                audience,
                account,
                json,
            });
        }
        Ok(deliveries)
    }

    /// Rebuilds, in one query, the assignments at the cursor of the conversations in `events`
    /// not in memory.
    async fn learn(
        &mut self,
        log: &EventRepository,
        events: &[RecordedEvent],
    ) -> Result<(), RealtimeError> {
        let mut missing: Vec<&str> = events
            .iter()
            .filter_map(conversation_of)
            .filter(|id| !self.known.contains_key(*id))
            .collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        let found = as_of::assignments_at(log, &missing, self.cursor).await?;
        if self.known.len() + missing.len() > self.capacity {
            self.known.clear();
        }
        // A conversation with no event yet starts unassigned.
        for id in missing {
            let assignment = found.get(id).copied().unwrap_or_default();
            self.known.insert(id.to_owned(), assignment);
        }
        Ok(())
    }
}
