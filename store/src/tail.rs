//! The latest stretch of the log, read once for every live reader of a process.
//!
//! The projection runner and the socket fan-out both tail the log, woken by the same appends:
//! each read every new event from the database, decoded its JSON and opened its sealed fields
//! (13 % and 9 % of the process under load). The first of them to ask for new events now reads
//! them, and the other is given the same events ([`EventRepository::read_recent`](crate::EventRepository::read_recent)).
//!
//! A reader finding the window ends where the log ended when another reader last looked (no
//! append announced since that read began, a moment ago) is answered from it alone.
//!
//! What is kept is a window `(start, end]` of the log holding every event in it, as the gapless
//! reader returned them: below its high-water mark no event can commit later, so a window that
//! ends at an event it read can only grow at its end. Opened content is kept a few seconds
//! ([`KEPT_FOR`]), and not at all past an erasure: the window is emptied when this process
//! destroys keys and when an erasure event passes through it. So a reader is given content a
//! read from the database would show erased only within the bound the vault's key cache
//! already sets for erasures by other instances
//! ([`vault::CACHE_TTL`](crate::vault::CACHE_TTL)), plus [`KEPT_FOR`].

use std::collections::VecDeque;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use switchboard_domain::privacy;

use crate::recorded::{LogCursor, RecordedEvent};
use crate::StoreError;

/// Events kept at most (a few batches of every live reader).
const KEPT: usize = 4_096;

/// How long an event is kept: the live readers are a batch or two apart.
const KEPT_FOR: Duration = Duration::from_secs(5);

/// How long a read that found the end of the log answers for it, when no append was announced
/// since it began: short, so that the readers' polling still finds commits nobody announced
/// (another instance's lost notification, a transaction the high-water mark held back).
const FRESH: Duration = Duration::from_millis(50);

/// The window and who is extending it.
#[derive(Default)]
pub(crate) struct Tail {
    window: Mutex<Window>,
    /// Held while the window is extended from the database: a reader that wants the same new
    /// events waits for them rather than reading them again.
    extending: tokio::sync::Mutex<()>,
}

/// Every event after `start` up to and including `end`.
#[derive(Default)]
struct Window {
    start: LogCursor,
    end: LogCursor,
    events: VecDeque<(Instant, Arc<RecordedEvent>)>,
    /// The vault's generation when these were opened.
    generation: u64,
    /// When the last read reached the end of the log: the appends announced before it began
    /// (the `appended` counter) and when it began.
    at_end: Option<(u64, Instant)>,
}

impl Window {
    fn reset(&mut self, at: LogCursor, generation: u64) {
        self.start = at;
        self.end = at;
        self.events.clear();
        self.generation = generation;
        self.at_end = None;
    }

    /// Drops what is too old, or was opened before keys were destroyed.
    fn expire(&mut self, generation: u64) {
        if self.generation != generation {
            self.reset(self.end, generation);
        }
        while let Some((at, event)) = self.events.front() {
            if self.events.len() <= KEPT && at.elapsed() < KEPT_FOR {
                break;
            }
            self.start = event.cursor;
            self.events.pop_front();
        }
    }

    fn covers(&self, after: LogCursor) -> bool {
        self.start <= after && after <= self.end
    }

    /// Up to `limit` events after `after`, which the window covers.
    fn after(&self, after: LogCursor, limit: usize) -> Vec<Arc<RecordedEvent>> {
        let first = self.events.partition_point(|(_, e)| e.cursor <= after);
        self.events
            .range(first..)
            .take(limit)
            .map(|(_, e)| Arc::clone(e))
            .collect()
    }

    /// The events after `after` (which the window covers) when it holds `limit` of them, or all
    /// there are: it reached the end of the log a moment ago and no append was announced since
    /// (`announced` is the count now). Otherwise the part it holds.
    fn answer(
        &self,
        after: LogCursor,
        limit: usize,
        announced: u64,
    ) -> Result<Vec<Arc<RecordedEvent>>, Vec<Arc<RecordedEvent>>> {
        let events = self.after(after, limit);
        let at_end = self
            .at_end
            .is_some_and(|(before, began)| before == announced && began.elapsed() < FRESH);
        if events.len() == limit || at_end {
            Ok(events)
        } else {
            Err(events)
        }
    }

    /// Appends events read from the database just after `end`; past an erasure, keeps only
    /// what follows it.
    fn extend(&mut self, events: &[Arc<RecordedEvent>]) {
        let now = Instant::now();
        for event in events {
            if privacy::destroys(&event.aggregate_type, &event.aggregate_id, &event.payload)
                .is_some()
            {
                self.reset(event.cursor, self.generation);
                continue;
            }
            self.events.push_back((now, Arc::clone(event)));
            self.end = event.cursor;
        }
    }
}

impl Tail {
    fn window(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Empties the window (keys were destroyed).
    pub(crate) fn forget(&self) {
        let mut window = self.window();
        let end = window.end;
        let generation = window.generation;
        window.reset(end, generation.wrapping_add(1));
    }
}

impl Tail {
    /// Up to `limit` events after `after`, as `read_all` (the gapless reader) returns them,
    /// from the window where it holds them (see the module). `generation` is the vault's (it
    /// moves on when keys are destroyed), `announced` the count of appends announced so far.
    ///
    /// # Errors
    /// When `read_all` fails.
    pub(crate) async fn read<F, Fut>(
        &self,
        after: LogCursor,
        limit: u32,
        generation: &(dyn Fn() -> u64 + Sync),
        announced: &(dyn Fn() -> u64 + Sync),
        read_all: F,
    ) -> Result<Vec<Arc<RecordedEvent>>, StoreError>
    where
        F: FnOnce(LogCursor, u32) -> Fut,
        Fut: Future<Output = Result<Vec<RecordedEvent>, StoreError>>,
    {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        if limit == 0 {
            return Ok(Vec::new());
        }
        let covered = {
            let mut window = self.window();
            window.expire(generation());
            if window.covers(after) {
                match window.answer(after, limit, announced()) {
                    Ok(events) => return Ok(events),
                    Err(_) => true,
                }
            } else {
                false
            }
        };
        // Only readers continuing the window wait for one another.
        let _extending = match covered {
            true => Some(self.extending.lock().await),
            false => None,
        };
        let (mut events, read_from, kept) = {
            let mut window = self.window();
            window.expire(generation());
            match covered && window.covers(after) {
                // Another reader may have read them while this one waited.
                true => match window.answer(after, limit, announced()) {
                    Ok(events) => return Ok(events),
                    Err(events) => (events, window.end, window.generation),
                },
                false => (Vec::new(), after, window.generation),
            }
        };
        let wanted = limit - events.len();
        let before = announced();
        let began = Instant::now();
        let read: Vec<Arc<RecordedEvent>> =
            read_all(read_from, u32::try_from(wanted).unwrap_or(u32::MAX))
                .await?
                .into_iter()
                .map(Arc::new)
                .collect();
        let mut window = self.window();
        if window.generation == kept && generation() == kept {
            if read_from > window.end {
                // Ahead of the window (or the first read): a new one starts here.
                window.reset(read_from, kept);
            }
            if window.end == read_from {
                window.extend(&read);
                window.at_end = (read.len() < wanted).then_some((before, began));
                window.expire(kept);
            }
        }
        events.extend(read);
        Ok(events)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::vault::MasterKeys;
    use crate::{Database, DatabaseConfig, EventRepository, NewEvent};

    async fn log_in(dir: &std::path::Path) -> EventRepository {
        let database = Database::connect(&DatabaseConfig::sqlite_in(dir))
            .await
            .expect("database");
        database.migrate().await.expect("migrated");
        let keys = MasterKeys::new(&"k".repeat(32), &[]).expect("key");
        EventRepository::new(database, Arc::new(keys))
    }

    fn named(conversation: &str, sequence: i64) -> NewEvent {
        NewEvent {
            aggregate_type: "Conversation",
            aggregate_id: conversation.to_owned(),
            sequence,
            event_type: "ConversationCustomerProfileNamed".to_owned(),
            event_version: "1.0".to_owned(),
            payload: json!({ "CustomerProfileNamed": { "name": format!("Ada {sequence}") } }),
            metadata: json!({}),
        }
    }

    fn positions(events: &[Arc<RecordedEvent>]) -> Vec<i64> {
        events.iter().map(|e| e.position).collect()
    }

    /// Readers at any position, reading any number at a time, while events are appended, get
    /// exactly what the database gives: the window is an optimisation, not a new semantics.
    #[tokio::test]
    async fn live_readers_get_exactly_what_the_log_holds() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = log_in(dir.path()).await;
        let mut dice: u64 = 0x2545_f491_4f6c_dd1d;
        let mut roll = |n: u64| {
            dice ^= dice << 13;
            dice ^= dice >> 7;
            dice ^= dice << 17;
            dice % n
        };
        let mut sequences = [0_i64; 5];
        let mut readers = [LogCursor::START; 4];
        let mut read = 0;
        for _ in 0..600 {
            if roll(3) == 0 {
                let events: Vec<NewEvent> = (0..=roll(6))
                    .map(|_| {
                        let c = roll(5) as usize;
                        sequences[c] += 1;
                        named(&format!("c{c}"), sequences[c])
                    })
                    .collect();
                log.append(&events, &[], &[]).await.expect("appended");
            }
            let r = roll(4) as usize;
            if roll(40) == 0 {
                // A reader starting over, far behind the window.
                readers[r] = LogCursor::START;
            }
            let limit = 1 + roll(8) as u32;
            let recent = log.read_recent(readers[r], limit).await.expect("recent");
            let stored = log.read_all(readers[r], limit).await.expect("stored");
            assert_eq!(
                positions(&recent),
                stored.iter().map(|e| e.position).collect::<Vec<_>>()
            );
            for (recent, stored) in recent.iter().zip(&stored) {
                assert_eq!(**recent, *stored);
            }
            read += recent.len();
            if let Some(last) = recent.last() {
                readers[r] = last.cursor;
            }
        }
        assert!(read > 500, "the readers read {read} events");
    }

    /// The second reader of new events is given the first one's, not a read of its own.
    #[tokio::test]
    async fn the_second_reader_of_new_events_shares_the_first_ones_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = log_in(dir.path()).await;
        log.append(&[named("c", 1), named("c", 2)], &[], &[])
            .await
            .expect("appended");
        let first = log.read_recent(LogCursor::START, 10).await.expect("first");
        let second = log.read_recent(LogCursor::START, 10).await.expect("second");
        assert_eq!(positions(&first).len(), 2);
        assert!(first.iter().zip(&second).all(|(a, b)| Arc::ptr_eq(a, b)));
        // Past the moment it answers for, the end of the log is looked at again.
        log.append(&[named("c", 3)], &[], &[])
            .await
            .expect("appended");
        let third = log.read_recent(first[1].cursor, 10).await.expect("third");
        assert_eq!(third.len(), 1);
    }

    /// Content opened before an erasure is not handed out after it: not after this process
    /// erased, nor after an erasure by another instance passed through the window.
    #[tokio::test]
    async fn no_reader_is_given_from_the_window_what_was_opened_before_an_erasure() {
        let dir = tempfile::tempdir().expect("temp dir");
        let here = log_in(dir.path()).await;
        let elsewhere = log_in(dir.path()).await;
        here.append(&[named("c", 1), named("d", 1)], &[], &[])
            .await
            .expect("appended");
        let before = here.read_recent(LogCursor::START, 10).await.expect("read");
        let erased = NewEvent {
            event_type: "ConversationCustomerErased".to_owned(),
            payload: json!({ "CustomerErased": { "by": "admin", "reason": "asked" } }),
            ..named("c", 2)
        };
        elsewhere.append(&[erased], &[], &[]).await.expect("erased");
        // As PostgreSQL's notification of another instance's append does.
        here.notify_appended();
        let after = here.read_recent(before[1].cursor, 10).await.expect("read");
        assert_eq!(after.len(), 1);
        let again = here.read_recent(LogCursor::START, 10).await.expect("read");
        assert_eq!(
            positions(&again),
            [before[0].position, before[1].position, after[0].position]
        );
        assert!(
            !Arc::ptr_eq(&again[0], &before[0]),
            "read again from the database"
        );

        here.append(&[named("d", 2)], &[], &[])
            .await
            .expect("appended");
        let shared = here.read_recent(LogCursor::START, 10).await.expect("read");
        here.tail.forget();
        let fresh = here.read_recent(LogCursor::START, 10).await.expect("read");
        assert_eq!(positions(&shared), positions(&fresh));
        assert!(
            !Arc::ptr_eq(&shared[0], &fresh[0]),
            "forgotten with the keys"
        );
    }
}
