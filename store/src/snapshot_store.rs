//! A cqrs-es `EventStore` that loads aggregates from a snapshot plus the events after it.
//!
//! Written here because cqrs-es 0.5.0's own snapshot store applies the events after a snapshot
//! twice. Conversations gain an event with every customer message and every lock renewal, so
//! their streams grow without bound; this keeps loading them cheap. Snapshots are derived data,
//! written in the same transaction as the events (every [`SNAPSHOT_EVERY`](crate::SNAPSHOT_EVERY)
//! events), and ignored when they no longer deserialize.

use std::collections::HashMap;
use std::marker::PhantomData;

use cqrs_es::{
    Aggregate, AggregateContext, AggregateError, DomainEvent, EventEnvelope, EventStore,
};

use crate::event_log::{AppendError, Loaded, NewEvent};
use crate::{EventRepository, StoreError};

/// The event store for aggregates whose streams grow long.
pub struct SnapshotStore<A> {
    log: EventRepository,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A> SnapshotStore<A> {
    /// A store over `log`.
    pub fn new(log: EventRepository) -> Self {
        Self {
            log,
            _aggregate: PhantomData,
        }
    }
}

/// A loaded aggregate, as cqrs-es hands it to the command and back to [`EventStore::commit`].
pub struct SnapshotContext<A> {
    aggregate_id: String,
    loaded: Loaded<A>,
}

impl<A: Aggregate> AggregateContext<A> for SnapshotContext<A> {
    fn aggregate(&mut self) -> &mut A {
        &mut self.loaded.aggregate
    }
}

fn storage_error<E: std::error::Error>(error: StoreError) -> AggregateError<E> {
    if error.is_transient() {
        AggregateError::DatabaseConnectionError(Box::new(error))
    } else {
        AggregateError::UnexpectedError(Box::new(error))
    }
}

impl<A> EventStore<A> for SnapshotStore<A>
where
    A: Aggregate,
{
    type AC = SnapshotContext<A>;

    async fn load_events(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let events = self
            .log
            .load_streams(A::TYPE, &[aggregate_id])
            .await
            .map_err(storage_error)?;
        events
            .into_iter()
            .map(|event| {
                let payload = serde_json::from_value(event.payload)
                    .map_err(|e| AggregateError::DeserializationError(Box::new(e)))?;
                Ok(EventEnvelope {
                    aggregate_id: event.aggregate_id,
                    sequence: usize::try_from(event.sequence).unwrap_or(0),
                    payload,
                    metadata: HashMap::new(),
                })
            })
            .collect()
    }

    async fn load_aggregate(
        &self,
        aggregate_id: &str,
    ) -> Result<Self::AC, AggregateError<A::Error>> {
        let loaded = self
            .log
            .load_with_snapshots::<A>(&[aggregate_id])
            .await
            .map_err(storage_error)?
            .remove(aggregate_id)
            .unwrap_or_else(|| Loaded {
                aggregate: A::default(),
                sequence: 0,
                snapshot_sequence: 0,
            });
        Ok(SnapshotContext {
            aggregate_id: aggregate_id.to_owned(),
            loaded,
        })
    }

    async fn commit(
        &self,
        events: Vec<A::Event>,
        context: Self::AC,
        metadata: HashMap<String, String>,
    ) -> Result<Vec<EventEnvelope<A>>, AggregateError<A::Error>> {
        let SnapshotContext {
            aggregate_id,
            mut loaded,
        } = context;
        let metadata_json = serde_json::to_value(&metadata)
            .map_err(|e| AggregateError::UnexpectedError(Box::new(e)))?;
        let mut new_events = Vec::with_capacity(events.len());
        let mut envelopes = Vec::with_capacity(events.len());
        for event in events {
            loaded.sequence += 1;
            new_events.push(NewEvent {
                aggregate_type: A::TYPE,
                aggregate_id: aggregate_id.clone(),
                sequence: loaded.sequence,
                event_type: event.event_type(),
                event_version: event.event_version(),
                payload: serde_json::to_value(&event)
                    .map_err(|e| AggregateError::UnexpectedError(Box::new(e)))?,
                metadata: metadata_json.clone(),
            });
            envelopes.push(EventEnvelope {
                aggregate_id: aggregate_id.clone(),
                sequence: usize::try_from(loaded.sequence).unwrap_or(0),
                payload: event,
                metadata: metadata.clone(),
            });
        }
        // The aggregate already holds the new events (cqrs-es applies them as they are written).
        let snapshots: Vec<_> = loaded.snapshot_if_due(&aggregate_id).into_iter().collect();
        match self.log.append(&new_events, &snapshots, &[]).await {
            Ok(()) => Ok(envelopes),
            Err(AppendError::Conflict) => Err(AggregateError::AggregateConflict),
            Err(AppendError::Store(error)) => Err(storage_error(error)),
        }
    }
}
