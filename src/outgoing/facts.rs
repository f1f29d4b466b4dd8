//! What a conversation was at one point of the log: its number, its group, whether it was
//! with the bot. Endpoint filters decide on these, as of the event being delivered, so a
//! delivery and a later replay of it decide alike (a read model would answer for now, not for
//! then). Rebuilt, like the sockets' view in `realtime::as_of`, by folding the conversation's
//! own events with the domain's `Conversation`, moving forward as a batch goes on.

use std::collections::HashMap;

use cqrs_es::Aggregate;
use switchboard_domain::conversation::{Conversation, ConversationEvent};
use switchboard_store::{EventRepository, LogCursor, RecordedEvent, StoreError};

use crate::realtime::conversation_of;

/// The conversations of one batch, each folded up to where the batch has reached.
#[derive(Default)]
pub struct Facts {
    timelines: HashMap<String, Timeline>,
}

#[derive(Default)]
struct Timeline {
    events: Vec<(LogCursor, ConversationEvent)>,
    next: usize,
    state: Conversation,
}

impl Facts {
    /// Loads the conversations `batch` concerns.
    ///
    /// # Errors
    /// When the log cannot be read.
    pub async fn load(log: &EventRepository, batch: &[RecordedEvent]) -> Result<Self, StoreError> {
        let mut ids: Vec<&str> = batch.iter().filter_map(conversation_of).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.is_empty() {
            return Ok(Self::default());
        }
        let mut timelines: HashMap<String, Timeline> = HashMap::with_capacity(ids.len());
        for event in log.events_of("Conversation", &ids).await? {
            // An event that does not decode is left out (the projections report it).
            if let Ok(decoded) = serde_json::from_value::<ConversationEvent>(event.payload) {
                timelines
                    .entry(event.aggregate_id)
                    .or_default()
                    .events
                    .push((event.cursor, decoded));
            }
        }
        for timeline in timelines.values_mut() {
            timeline.events.sort_by_key(|(cursor, _)| *cursor);
        }
        Ok(Self { timelines })
    }

    /// The conversation `id` as of `cursor` (its events at or before it), if it existed then.
    pub fn at(&mut self, id: &str, cursor: LogCursor) -> Option<&Conversation> {
        let timeline = self.timelines.get_mut(id)?;
        if timeline.next > 0 && timeline.events[timeline.next - 1].0 > cursor {
            timeline.next = 0;
            timeline.state = Conversation::default();
        }
        while let Some((at, event)) = timeline.events.get(timeline.next) {
            if *at > cursor {
                break;
            }
            timeline.state.apply(event.clone());
            timeline.next += 1;
        }
        timeline.state.exists().then_some(&timeline.state)
    }
}
