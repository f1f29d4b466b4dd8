//! The fan-out: one tailer per instance reads the log in order (woken by local appends and by
//! PostgreSQL notifications from other instances), works out once who may see each event,
//! serializes it once, and hands the batch to every socket of this instance. No broker: the
//! log is the bus.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::value::RawValue;
use switchboard_domain::AgentId;
use switchboard_store::{EventRepository, LogCursor, RecordedEvent};
use tokio::sync::{broadcast, watch};

use super::audience::{Assignment, Audience};
use super::envelope::{conversation_of, Envelope};
use super::RealtimeError;

/// Events read per query.
const BATCH: u32 = 500;
/// Batches kept for sockets that fall behind; one further behind catches up from the log.
const LIVE_CAPACITY: usize = 256;
/// Conversation assignments remembered; past this the memory is cleared and refilled.
const ASSIGNMENTS_KEPT: usize = 100_000;

/// One log event ready for sockets.
#[derive(Debug)]
pub struct Delivery {
    /// Where it lies in the log.
    pub cursor: LogCursor,
    /// Who may receive it.
    pub audience: Audience,
    /// The [`Envelope`], serialized once for every socket.
    pub json: Box<RawValue>,
}

/// A batch of deliveries shared by every socket.
pub type Batch = Arc<[Delivery]>;

/// The tailer and what it knows of conversation assignments.
pub struct Fanout {
    log: EventRepository,
    assignments: Mutex<HashMap<String, Assignment>>,
    live: broadcast::Sender<Batch>,
    head: watch::Sender<LogCursor>,
}

impl Fanout {
    /// A fan-out over `log`, not yet running.
    pub fn new(log: EventRepository) -> Arc<Self> {
        Arc::new(Self {
            log,
            assignments: Mutex::new(HashMap::new()),
            live: broadcast::channel(LIVE_CAPACITY).0,
            head: watch::Sender::new(LogCursor::START),
        })
    }

    /// The log.
    pub fn log(&self) -> &EventRepository {
        &self.log
    }

    /// Every batch read from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Batch> {
        self.live.subscribe()
    }

    /// How far the tailer has read: a socket connecting without a position starts here.
    pub fn head(&self) -> LogCursor {
        *self.head.borrow()
    }

    /// Tails the log until `shutdown` fires, starting at its current end.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut appended = self.log.appended();
        let mut cursor = loop {
            match self.log.frontier().await {
                Ok(cursor) => break cursor,
                Err(error) => tracing::warn!(%error, "realtime: cannot find the end of the log"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        };
        self.head.send_replace(cursor);
        loop {
            let failed = match self.log.read_all(cursor, BATCH).await {
                Ok(events) if !events.is_empty() => {
                    let last = events.last().map_or(cursor, |e| e.cursor);
                    match self.stamp(events, Stamping::Live).await {
                        Ok(batch) => {
                            cursor = last;
                            self.head.send_replace(cursor);
                            // No receiver (no socket) is fine.
                            let _ = self.live.send(batch.into());
                            continue;
                        }
                        Err(error) => Some(error.to_string()),
                    }
                }
                Ok(_) => None,
                Err(error) => Some(error.to_string()),
            };
            if let Some(error) = &failed {
                tracing::warn!(%error, "realtime: reading the log failed; retrying");
            }
            tokio::select! {
                _ = appended.changed(), if failed.is_none() => {}
                // Other instances' events arrive through notifications; this is the fallback.
                _ = tokio::time::sleep(Duration::from_millis(if failed.is_some() { 1000 } else { 500 })) => {}
                _ = shutdown.changed() => return,
            }
        }
    }

    /// Deliveries for events read from the log by one socket catching up: the assignment
    /// memory is consulted, not moved (the tailer alone moves it, in log order).
    ///
    /// # Errors
    /// When the read model cannot be queried.
    pub async fn history(
        &self,
        events: Vec<RecordedEvent>,
    ) -> Result<Vec<Delivery>, RealtimeError> {
        self.stamp(events, Stamping::History).await
    }

    /// The current assignment of a conversation, `None` when no such conversation exists.
    ///
    /// # Errors
    /// When the read model cannot be queried.
    pub async fn assignment_of(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Assignment>, RealtimeError> {
        let rows = switchboard_projections::conversations::assignments(
            self.log.database(),
            &[conversation_id.to_owned()],
        )
        .await?;
        Ok(rows
            .first()
            .map(|(_, agent, group)| Assignment::parse(agent.as_deref(), group.as_deref())))
    }

    async fn stamp(
        &self,
        events: Vec<RecordedEvent>,
        stamping: Stamping,
    ) -> Result<Vec<Delivery>, RealtimeError> {
        self.remember_assignments(&events).await?;
        let mut deliveries = Vec::with_capacity(events.len());
        for event in events {
            let audience = match conversation_of(&event) {
                Some(conversation) => {
                    let mut assignments = self
                        .assignments
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let current = assignments.get(conversation).copied().unwrap_or_default();
                    let set = Assignment::set_by(&event);
                    if let (Some(set), Stamping::Live) = (set, stamping) {
                        assignments.insert(conversation.to_owned(), set);
                    }
                    Audience::Conversation {
                        after: set.unwrap_or(current),
                        before: current,
                    }
                }
                None if event.aggregate_type == "Agent" => {
                    AgentId::parse(&event.aggregate_id).map_or(Audience::Managers, Audience::Agent)
                }
                None => Audience::Managers,
            };
            let cursor = event.cursor;
            let json = serde_json::value::to_raw_value(&Envelope::from(event))?;
            deliveries.push(Delivery {
                cursor,
                audience,
                json,
            });
        }
        Ok(deliveries)
    }

    /// Loads, in one query, the assignments of the conversations in `events` not yet known.
    async fn remember_assignments(&self, events: &[RecordedEvent]) -> Result<(), RealtimeError> {
        let missing: Vec<String> = {
            let known = self
                .assignments
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let mut missing: Vec<String> = events
                .iter()
                .filter_map(conversation_of)
                .filter(|id| !known.contains_key(*id))
                .map(str::to_owned)
                .collect();
            missing.sort_unstable();
            missing.dedup();
            missing
        };
        if missing.is_empty() {
            return Ok(());
        }
        let rows =
            switchboard_projections::conversations::assignments(self.log.database(), &missing)
                .await?;
        let mut known = self
            .assignments
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if known.len() + missing.len() > ASSIGNMENTS_KEPT {
            known.clear();
        }
        // Conversations the read model does not show yet are new: unassigned.
        for id in missing {
            known.entry(id).or_default();
        }
        for (id, agent, group) in rows {
            known.insert(id, Assignment::parse(agent.as_deref(), group.as_deref()));
        }
        Ok(())
    }
}

/// Whether stamping follows the log live (and moves the assignment memory) or replays history.
#[derive(Debug, Clone, Copy)]
enum Stamping {
    Live,
    History,
}
