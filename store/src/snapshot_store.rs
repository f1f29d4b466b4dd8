//! Commands on aggregates whose streams grow long (conversations), decided against the state
//! this process already holds and made atomic by the append.
//!
//! Loading reads a snapshot plus the events after it (written here because cqrs-es 0.5.0's own
//! snapshot store applies the events after a snapshot twice). Snapshots are derived data,
//! written in the same transaction as the events (every [`SNAPSHOT_EVERY`](crate::SNAPSHOT_EVERY)
//! events), and ignored when they no longer deserialize.
//!
//! Recently used aggregates stay in memory (at most [`KEPT_AGGREGATES`]), each with its
//! sequence and the instant it was last proven current; one instance's writes to one aggregate
//! take turns (a writer lock per aggregate), its refusals do not wait for each other. A command
//! is decided against the state held in memory without reading the log first:
//!
//! - **Events** are appended at the next sequence; the `(aggregate_type, aggregate_id,
//!   sequence)` key makes the append fail if anyone (another instance, another writer of this
//!   one) got there first. A decision is only ever stored against the state it was made on, so
//!   a state that was stale costs a retry, never a wrong write. A won command is one insert.
//! - **A refusal or a no-op** writes nothing, so no append can vouch for it. It is answered
//!   only from a state proven current *after the command began*: by this command's own read,
//!   or by an append or read another command sent after it began. Otherwise the events after
//!   the held sequence are read (one query) and the command decided again. So a refusal
//!   describes a state that was the latest at some instant of the request, exactly as a fresh
//!   load would; the losers of a race on one instance wait for the winner's append and are
//!   answered from it, side by side, with no round trip of their own.

use std::collections::HashMap;
use std::marker::PhantomData;
use std::time::Instant;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError, DomainEvent};

use tokio::sync::watch;

use crate::aggregate_cache::{AggregateCache, Known};
use crate::streams::{stream_event, AppendError, Loaded, NewEvent, StreamEvent};
use crate::{with_pool, EventRepository, StoreError};

/// Aggregates one instance keeps in memory (least recently used go first).
pub const KEPT_AGGREGATES: usize = 10_000;

/// How many times a command is decided again after another writer got to the aggregate first.
pub const CONFLICT_RETRIES: usize = 8;

/// Runs commands on aggregates of type `A`, loading them from snapshots and keeping recently
/// used ones in memory.
pub struct SnapshotStore<A> {
    log: EventRepository,
    cache: AggregateCache<A>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> SnapshotStore<A> {
    /// A store over `log`, keeping up to [`KEPT_AGGREGATES`] aggregates in memory.
    pub fn new(log: EventRepository) -> Self {
        Self {
            log,
            cache: AggregateCache::new(KEPT_AGGREGATES),
            _aggregate: PhantomData,
        }
    }
}

/// Runs `command` on a copy of `aggregate`: the copy with the events applied, and the events
/// (or the refusal).
async fn decide<A: Aggregate<Services = ()> + Clone>(
    aggregate: &A,
    command: A::Command,
) -> (A, Result<Vec<A::Event>, A::Error>) {
    let mut after = aggregate.clone();
    let sink = EventSink::default();
    let decision = after.handle(command, &(), &sink).await;
    let events = sink.collect().await;
    (after, decision.map(|()| events))
}

fn storage_error<E: std::error::Error>(error: StoreError) -> AggregateError<E> {
    error.into_aggregate_error()
}

impl<A> SnapshotStore<A>
where
    A: Aggregate<Services = ()> + Clone,
    A::Command: Clone,
{
    /// Decides `command` on aggregate `id` and appends its events (with `metadata`), retrying
    /// against the newer state when another writer got there first. Returns the aggregate as
    /// the command left it (or found it, when it decided nothing).
    ///
    /// # Errors
    /// The aggregate's refusal ([`AggregateError::UserError`], decided on a state proven
    /// current during this call); [`AggregateError::AggregateConflict`] after
    /// [`CONFLICT_RETRIES`] lost races; storage failures.
    pub async fn execute(
        &self,
        id: &str,
        command: A::Command,
        metadata: &HashMap<String, String>,
    ) -> Result<A, AggregateError<A::Error>> {
        let began = Instant::now();
        let slot = self.cache.slot(id);
        let mut seen = slot.known.subscribe();
        loop {
            let known = seen.borrow_and_update().clone();
            // A state proven current since this command began answers a refusal or a no-op
            // without the writer lock: the losers of a race are answered side by side as soon
            // as the winner publishes.
            if let Some(known) = known.filter(|k| k.confirmed >= began) {
                let (after, decision) = decide(&known.loaded.aggregate, command.clone()).await;
                match decision {
                    Err(refusal) => return Err(AggregateError::UserError(refusal)),
                    Ok(events) if events.is_empty() => return Ok(after),
                    Ok(_) => {}
                }
            }
            tokio::select! {
                _writer = slot.writer.lock() => {
                    return self.execute_as_writer(id, &slot.known, command, metadata, began).await;
                }
                // Cannot fail: the sender lives in `slot`, which this command holds.
                _ = seen.changed() => {}
            }
        }
    }

    /// [`Self::execute`] for the holder of the writer lock, who alone loads, catches up,
    /// appends, and publishes what it learns to `known`.
    async fn execute_as_writer(
        &self,
        id: &str,
        known: &watch::Sender<Option<Known<A>>>,
        command: A::Command,
        metadata: &HashMap<String, String>,
        began: Instant,
    ) -> Result<A, AggregateError<A::Error>> {
        let held = known.borrow().clone();
        let mut current = match held {
            Some(held) => held,
            None => {
                let loaded = self.load_known(id).await.map_err(storage_error)?;
                known.send_replace(Some(loaded.clone()));
                loaded
            }
        };
        let mut conflicts = 0;
        loop {
            let (after, decision) = decide(&current.loaded.aggregate, command.clone()).await;
            match decision {
                Ok(events) if !events.is_empty() => {
                    let sent = Instant::now();
                    let mut next = Loaded {
                        aggregate: after,
                        ..current.loaded.clone()
                    };
                    match self.append(id, &mut next, &events, metadata).await {
                        Ok(()) => {
                            let aggregate = next.aggregate.clone();
                            known.send_replace(Some(Known {
                                loaded: next,
                                confirmed: sent,
                            }));
                            return Ok(aggregate);
                        }
                        Err(AppendError::Conflict) if conflicts < CONFLICT_RETRIES => {
                            conflicts += 1;
                        }
                        Err(AppendError::Conflict) => {
                            return Err(AggregateError::AggregateConflict)
                        }
                        Err(AppendError::Store(error)) => return Err(storage_error(error)),
                    }
                }
                decision if current.confirmed >= began => {
                    return decision.map(|_| after).map_err(AggregateError::UserError);
                }
                _ => {}
            }
            current = self.catch_up(id, current).await.map_err(storage_error)?;
            known.send_replace(Some(current.clone()));
        }
    }

    /// The aggregate as the log stands now (a state held in memory is brought up to date with
    /// one query), and its sequence; a new aggregate (sequence 0) when it has no events.
    ///
    /// # Errors
    /// Storage failures and unreadable events.
    pub async fn current(&self, id: &str) -> Result<(A, i64), StoreError> {
        let slot = self.cache.slot(id);
        let _writer = slot.writer.lock().await;
        let held = slot.known.borrow().clone();
        let known = match held {
            Some(known) => self.catch_up(id, known).await?,
            None => self.load_known(id).await?,
        };
        let answer = (known.loaded.aggregate.clone(), known.loaded.sequence);
        slot.known.send_replace(Some(known));
        Ok(answer)
    }

    /// The states this process holds of those of `ids` it holds, as last loaded or appended
    /// here. Any may be stale (another instance appended since): a decision on one is then
    /// refused by the append (its sequence is taken), and the caller loads afresh.
    pub fn held(&self, ids: &[&str]) -> HashMap<String, Loaded<A>> {
        ids.iter()
            .filter_map(|id| {
                let slot = self.cache.peek(id)?;
                let known = slot.known.borrow();
                let loaded = known.as_ref()?.loaded.clone();
                Some(((*id).to_owned(), loaded))
            })
            .collect()
    }

    /// Takes note of aggregates another writer of this process has just appended to (their
    /// state after the append that ended `sent` instants ago), so that the next command on them
    /// needs no load. A slot whose writer lock is taken, or already holding a newer state, is
    /// left as it is.
    pub fn remember(&self, appended: impl IntoIterator<Item = (String, Loaded<A>)>, sent: Instant) {
        for (id, loaded) in appended {
            let slot = self.cache.slot(&id);
            let Ok(_writer) = slot.writer.try_lock() else {
                continue;
            };
            slot.known.send_if_modified(|held| {
                let newer = held
                    .as_ref()
                    .is_none_or(|known| known.loaded.sequence < loaded.sequence);
                if newer {
                    *held = Some(Known {
                        loaded,
                        confirmed: sent,
                    });
                }
                newer
            });
        }
    }

    /// Loads from the snapshot plus the events after it.
    async fn load_known(&self, id: &str) -> Result<Known<A>, StoreError> {
        let sent = Instant::now();
        let loaded = self
            .log
            .load_with_snapshots::<A>(&[id])
            .await?
            .remove(id)
            .unwrap_or_else(|| Loaded {
                aggregate: A::default(),
                sequence: 0,
                snapshot_sequence: 0,
            });
        Ok(Known {
            loaded,
            confirmed: sent,
        })
    }

    /// Applies the events stored after `known`'s sequence: the latest state, proven current.
    async fn catch_up(&self, id: &str, mut known: Known<A>) -> Result<Known<A>, StoreError> {
        let sent = Instant::now();
        for event in self.events_after(id, known.loaded.sequence).await? {
            let payload: A::Event =
                serde_json::from_value(event.payload).map_err(|source| StoreError::Unreadable {
                    aggregate_type: A::TYPE,
                    aggregate_id: id.to_owned(),
                    sequence: event.sequence,
                    source,
                })?;
            known.loaded.aggregate.apply(payload);
            known.loaded.sequence = event.sequence;
        }
        known.confirmed = sent;
        Ok(known)
    }

    /// The events of `id` after `sequence`, in order (usually none: one index probe).
    async fn events_after(&self, id: &str, sequence: i64) -> Result<Vec<StreamEvent>, StoreError> {
        const SQL: &str =
            "select aggregate_id, sequence, event_type, event_version, payload from events
             where aggregate_type = $1 and aggregate_id = $2 and sequence > $3 order by sequence";
        with_pool!(self.log.database(), pool => {
            let rows = sqlx::query(SQL).bind(A::TYPE).bind(id).bind(sequence).fetch_all(pool).await?;
            let events = rows.iter().map(stream_event).collect::<Result<Vec<_>, _>>()?;
            self.log.opened(events).await
        })
    }

    /// Appends `events` after `next`'s sequence (`next` already holds them applied), with a
    /// snapshot when one is due; `next`'s sequences follow.
    async fn append(
        &self,
        id: &str,
        next: &mut Loaded<A>,
        events: &[A::Event],
        metadata: &HashMap<String, String>,
    ) -> Result<(), AppendError> {
        let json =
            |e: serde_json::Error| AppendError::Store(sqlx::Error::Encode(Box::new(e)).into());
        let metadata = serde_json::to_value(metadata).map_err(json)?;
        let mut new_events = Vec::with_capacity(events.len());
        for event in events {
            next.sequence += 1;
            new_events.push(NewEvent {
                aggregate_type: A::TYPE,
                aggregate_id: id.to_owned(),
                sequence: next.sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(event).map_err(json)?,
                metadata: metadata.clone(),
            });
        }
        let snapshot = next.take_snapshot_if_due(id);
        self.log
            .append(&new_events, snapshot.as_slice(), &[])
            .await?;
        Ok(())
    }
}
