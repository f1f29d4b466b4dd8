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
use super::envelope::{conversation_of, EnvelopeOf};
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
    /// A stamper standing just after `cursor`, remembering about `capacity` conversations
    /// (past it, memory is cleared before a batch; one batch's conversations are always kept).
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
        events: &[Arc<RecordedEvent>],
    ) -> Result<Vec<Delivery>, RealtimeError> {
        debug_assert!(events.first().is_none_or(|e| e.cursor > self.cursor));
        self.learn(log, events).await?;
        let start = self.cursor;
        let result = self.walk(events);
        if result.is_err() {
            // Half moved: forget what was learnt; it is rebuilt from the log when needed.
            self.cursor = start;
            self.known.clear();
        }
        result
    }

    fn walk(&mut self, events: &[Arc<RecordedEvent>]) -> Result<Vec<Delivery>, RealtimeError> {
        let mut deliveries = Vec::with_capacity(events.len());
        for event in events.iter().map(|e| &**e) {
            let audience = match conversation_of(event) {
                Some(conversation) => {
                    let before = self.known.get(conversation).copied().unwrap_or_default();
                    let set = Assignment::set_by(event);
                    if let Some(set) = set {
                        self.known.insert(conversation.to_owned(), set);
                    }
                    Audience::Conversation {
                        id: conversation.to_owned(),
                        after: set.unwrap_or(before),
                        before,
                        mentioned: super::audience::mentioned_by(event),
                    }
                }
                None if event.aggregate_type == "Agent" => {
                    AgentId::parse(&event.aggregate_id).map_or(Audience::Managers, Audience::Agent)
                }
                None => Audience::Managers,
            };
            let account = account_event(event)?;
            let cursor = event.cursor;
            let json = serde_json::value::to_raw_value(&EnvelopeOf(event))?;
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
    /// not in memory. Past the capacity, memory is cleared first (so every conversation of
    /// the batch is then rebuilt).
    async fn learn(
        &mut self,
        log: &EventRepository,
        events: &[Arc<RecordedEvent>],
    ) -> Result<(), RealtimeError> {
        let mut wanted: Vec<&str> = events.iter().filter_map(|e| conversation_of(e)).collect();
        wanted.sort_unstable();
        wanted.dedup();
        let unknown = wanted
            .iter()
            .filter(|id| !self.known.contains_key(**id))
            .count();
        if unknown == 0 {
            return Ok(());
        }
        if self.known.len() + unknown > self.capacity {
            self.known.clear();
        }
        let missing: Vec<&str> = wanted
            .into_iter()
            .filter(|id| !self.known.contains_key(*id))
            .collect();
        let found = as_of::assignments_at(log, &missing, self.cursor).await?;
        // A conversation with no event yet starts unassigned.
        for id in missing {
            let assignment = found.get(id).copied().unwrap_or_default();
            self.known.insert(id.to_owned(), assignment);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};
    use switchboard_domain::GroupId;
    use switchboard_store::{Database, DatabaseConfig, NewEvent};

    use super::*;

    const GINA: &str = "00000000-0000-4000-8000-000000000001";
    const SALES: &str = "00000000-0000-4000-8000-000000000101";

    fn event(
        aggregate: &'static str,
        id: &str,
        sequence: i64,
        kind: &str,
        data: Value,
    ) -> NewEvent {
        NewEvent {
            aggregate_type: aggregate,
            aggregate_id: id.to_owned(),
            sequence,
            event_type: kind.to_owned(),
            event_version: "1.0".to_owned(),
            payload: data,
            metadata: json!({}),
        }
    }

    fn assigned(id: &str, sequence: i64, agent: Option<&str>, group: Option<&str>) -> NewEvent {
        let data = json!({ "Assigned": { "agent": agent, "group": group, "by": GINA,
            "at": "2026-05-28T20:26:40Z" } });
        event("Conversation", id, sequence, "ConversationAssigned", data)
    }

    fn unassigned(id: &str, sequence: i64) -> NewEvent {
        let data = json!({ "Unassigned": { "by": GINA, "at": "2026-05-28T20:26:40Z" } });
        event("Conversation", id, sequence, "ConversationUnassigned", data)
    }

    fn note(id: &str, sequence: i64) -> NewEvent {
        let data = json!({ "CustomerProfileNamed": { "name": format!("n{sequence}") } });
        event(
            "Conversation",
            id,
            sequence,
            "ConversationCustomerProfileNamed",
            data,
        )
    }

    async fn stamped_from(
        log: &EventRepository,
        from: LogCursor,
        capacity: usize,
        per_read: u32,
    ) -> Vec<(i64, Audience)> {
        let mut stamper = Stamper::at(from, capacity);
        let mut cursor = from;
        let mut out = Vec::new();
        loop {
            let events: Vec<_> = log
                .read_all(cursor, per_read)
                .await
                .expect("read")
                .into_iter()
                .map(Arc::new)
                .collect();
            let Some(last) = events.last().map(|e| e.cursor) else {
                return out;
            };
            let deliveries = stamper.stamp(log, &events).await.expect("stamped");
            out.extend(
                deliveries
                    .into_iter()
                    .map(|d| (d.cursor.position, d.audience)),
            );
            cursor = last;
        }
    }

    /// Stamping from any cursor, with any memory, gives the audiences stamping from the start
    /// gave: each is a function of the log up to the event.
    #[tokio::test]
    async fn the_audience_of_an_event_does_not_depend_on_where_stamping_started() {
        let dir = tempfile::tempdir().expect("temp dir");
        let database = Database::connect(&DatabaseConfig::sqlite_in(dir.path()))
            .await
            .expect("database");
        database.migrate().await.expect("migrated");
        let keys = switchboard_store::vault::MasterKeys::new(&"k".repeat(32), &[]).expect("key");
        let log = EventRepository::new(database, std::sync::Arc::new(keys));
        let (a, b, c) = ("conversation-a", "conversation-b", "conversation-c");
        let appends = [
            vec![note(a, 1), note(b, 1)],
            vec![assigned(a, 2, None, Some(SALES)), note(a, 3)],
            vec![assigned(b, 2, Some(GINA), None), note(c, 1)],
            vec![unassigned(a, 4), note(b, 3), note(a, 5)],
            vec![assigned(b, 4, None, Some(SALES)), note(c, 2), note(a, 6)],
            vec![assigned(c, 3, Some(GINA), None), note(b, 5), note(a, 7)],
        ];
        for events in appends {
            log.append(&events, &[], &[]).await.expect("appended");
        }

        let all = stamped_from(&log, LogCursor::START, 1_000, 500).await;
        assert_eq!(all.len(), 15);
        let sales = Assignment {
            agent: None,
            group: GroupId::parse(SALES),
        };
        // The unassignment of A carries what it took away.
        assert!(all.iter().any(|(_, audience)| matches!(audience,
            Audience::Conversation { id, before, after, .. } if id == a && *before == sales
                && *after == Assignment::default())));
        for (start, _) in &all {
            let from = log.cursor_after(*start).await.expect("cursor");
            let expected: Vec<_> = all.iter().filter(|(p, _)| p > start).cloned().collect();
            for (capacity, per_read) in [(1_000, 500), (1, 500), (1, 1), (2, 2), (2, 3)] {
                let replayed = stamped_from(&log, from, capacity, per_read).await;
                assert_eq!(
                    replayed, expected,
                    "from {start}, remembering {capacity}, reading {per_read} at a time"
                );
            }
        }
    }
}
