//! Commands on several aggregates decided together and appended in one transaction, with the
//! worker-state statements that go with them.
//!
//! cqrs-es commits one aggregate per transaction. Some facts span two: an agent's reply is a
//! conversation event (lock, scope, window and version decided with the append) *and* the
//! message's request to be sent (with its outbox row); demoting an admin is an agent event and
//! a change of the admin roster. Both streams' sequences are checked by the same insert, so a
//! concurrent writer to either makes the whole transaction write nothing
//! ([`AppendError::Conflict`]); the caller reloads and decides again ([`retrying`]).

use std::collections::HashMap;
use std::future::Future;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError, DomainEvent};
use serde_json::Value;
use switchboard_store::{
    AppendError, EventRepository, Loaded, NewEvent, Snapshot, Statement, StoreError,
};

/// How many times a transaction is redone when another writer got to one of its aggregates
/// first (each time decided against the fresh state).
pub const CONFLICT_RETRIES: usize = 8;

/// Events, snapshots and statements to append together.
pub struct Transaction {
    log: EventRepository,
    metadata: Value,
    events: Vec<NewEvent>,
    snapshots: Vec<Snapshot>,
    statements: Vec<Statement>,
}

impl Transaction {
    /// An empty transaction on `log`; its events carry `metadata`.
    pub fn new(log: &EventRepository, metadata: &HashMap<String, String>) -> Self {
        Self {
            log: log.clone(),
            metadata: serde_json::to_value(metadata).unwrap_or(Value::Null),
            events: Vec::new(),
            snapshots: Vec::new(),
            statements: Vec::new(),
        }
    }

    /// Loads one aggregate (from its snapshot and the events after it).
    ///
    /// # Errors
    /// Storage failures and unreadable events.
    pub async fn load<A: Aggregate>(&self, id: &str) -> Result<Loaded<A>, StoreError> {
        let mut loaded = self.log.load_with_snapshots::<A>(&[id]).await?;
        Ok(loaded.remove(id).unwrap_or_else(|| Loaded {
            aggregate: A::default(),
            sequence: 0,
            snapshot_sequence: 0,
        }))
    }

    /// Decides `command` on `loaded` and keeps the events for the append (they are applied to
    /// `loaded` at once, so a later command of this transaction sees them).
    ///
    /// # Errors
    /// The aggregate's refusal ([`AggregateError::UserError`]).
    pub async fn decide<A>(
        &mut self,
        id: &str,
        loaded: &mut Loaded<A>,
        command: A::Command,
    ) -> Result<Vec<A::Event>, AggregateError<A::Error>>
    where
        A: Aggregate<Services = ()>,
    {
        let sink = EventSink::default();
        loaded
            .aggregate
            .handle(command, &(), &sink)
            .await
            .map_err(AggregateError::UserError)?;
        let events = sink.collect().await;
        for event in &events {
            loaded.sequence += 1;
            self.events.push(NewEvent {
                aggregate_type: A::TYPE,
                aggregate_id: id.to_owned(),
                sequence: loaded.sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(event)
                    .map_err(|e| AggregateError::UnexpectedError(Box::new(e)))?,
                metadata: self.metadata.clone(),
            });
        }
        if !events.is_empty() {
            // The append keeps the latest of one aggregate's snapshots.
            self.snapshots.extend(loaded.take_snapshot_if_due(id));
        }
        Ok(events)
    }

    /// Adds a statement (worker state) to run in the same transaction.
    pub fn also(&mut self, statement: Statement) {
        self.statements.push(statement);
    }

    /// Appends everything in one transaction.
    ///
    /// # Errors
    /// [`AppendError::Conflict`] when another writer appended to one of the streams first.
    pub async fn commit(self) -> Result<(), AppendError> {
        if self.events.is_empty() && self.statements.is_empty() {
            return Ok(());
        }
        self.log
            .append(&self.events, &self.snapshots, &self.statements)
            .await
    }
}

/// What one try of a transaction came to.
pub enum Attempt<T> {
    /// Committed (or nothing to do): the answer.
    Done(T),
    /// Another writer got there first: decide again against the fresh state.
    Conflict,
}

impl<T> Attempt<T> {
    /// Commits `transaction` and answers `answer`, or [`Attempt::Conflict`].
    ///
    /// # Errors
    /// Storage failures.
    pub async fn commit(transaction: Transaction, answer: T) -> Result<Self, StoreError> {
        match transaction.commit().await {
            Ok(()) => Ok(Self::Done(answer)),
            Err(AppendError::Conflict) => Ok(Self::Conflict),
            Err(AppendError::Store(error)) => Err(error),
        }
    }
}

/// Runs `attempt` until it commits, at most [`CONFLICT_RETRIES`] + 1 times.
///
/// # Errors
/// The attempt's own error; [`AggregateError::AggregateConflict`] when every try lost a race.
pub async fn retrying<T, E, F, Fut>(mut attempt: F) -> Result<T, E>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Attempt<T>, E>>,
    E: From<ConflictsExhausted>,
{
    for _ in 0..=CONFLICT_RETRIES {
        if let Attempt::Done(answer) = attempt().await? {
            return Ok(answer);
        }
    }
    Err(ConflictsExhausted.into())
}

/// Every try of a transaction lost a race with another writer.
#[derive(Debug, thiserror::Error)]
#[error("the aggregate kept changing concurrently")]
pub struct ConflictsExhausted;

impl<E: std::error::Error> From<ConflictsExhausted> for AggregateError<E> {
    fn from(_: ConflictsExhausted) -> Self {
        AggregateError::AggregateConflict
    }
}
