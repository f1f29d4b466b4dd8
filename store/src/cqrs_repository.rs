//! cqrs-es's `PersistedEventRepository` over either backend (postgres-es or sqlite-es), with
//! NUL escaping and upcasting on the way out and the wake-up signal for in-process tailers.

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use serde_json::Value;

use crate::event_log::{EventRepository, Repository};

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = match self.inner.as_ref() {
            Repository::Postgres(repo) => repo.get_events::<A>(aggregate_id).await,
            Repository::Sqlite(repo) => repo.get_events::<A>(aggregate_id).await,
        }?;
        self.opened(events)
            .await
            .map_err(|e| PersistenceError::UnknownError(Box::new(e)))
    }

    async fn get_last_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
        last_sequence: usize,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = match self.inner.as_ref() {
            Repository::Postgres(repo) => {
                repo.get_last_events::<A>(aggregate_id, last_sequence).await
            }
            Repository::Sqlite(repo) => {
                repo.get_last_events::<A>(aggregate_id, last_sequence).await
            }
        }?;
        self.opened(events)
            .await
            .map_err(|e| PersistenceError::UnknownError(Box::new(e)))
    }

    async fn get_snapshot<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Option<SerializedSnapshot>, PersistenceError> {
        match self.inner.as_ref() {
            Repository::Postgres(repo) => repo.get_snapshot::<A>(aggregate_id).await,
            Repository::Sqlite(repo) => repo.get_snapshot::<A>(aggregate_id).await,
        }
    }

    async fn persist<A: Aggregate>(
        &self,
        events: &[SerializedEvent],
        snapshot_update: Option<(String, Value, usize)>,
    ) -> Result<(), PersistenceError> {
        let listed: Vec<_> = events
            .iter()
            .map(|e| (A::TYPE, e.aggregate_id.as_str(), &e.payload))
            .collect();
        let sealed = self
            .vault
            .sealed(&self.database, &listed)
            .await
            .map_err(|e| PersistenceError::UnknownError(Box::new(e)))?;
        let events: Vec<SerializedEvent> = events
            .iter()
            .zip(sealed)
            .map(|(event, payload)| SerializedEvent {
                aggregate_id: event.aggregate_id.clone(),
                sequence: event.sequence,
                aggregate_type: event.aggregate_type.clone(),
                event_type: event.event_type.clone(),
                event_version: event.event_version.clone(),
                payload: payload.into_owned(),
                metadata: event.metadata.clone(),
            })
            .collect();
        let result = match self.inner.as_ref() {
            Repository::Postgres(repo) => repo.persist::<A>(&events, snapshot_update).await,
            Repository::Sqlite(repo) => repo.persist::<A>(&events, snapshot_update).await,
        };
        if result.is_ok() && !events.is_empty() {
            self.appended
                .send_modify(|count| *count = count.wrapping_add(1));
        }
        result
    }

    async fn stream_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<ReplayStream, PersistenceError> {
        crate::nul::replay(self.get_events::<A>(aggregate_id).await?).await
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self.inner.as_ref() {
            Repository::Postgres(repo) => repo.stream_all_events::<A>().await,
            Repository::Sqlite(repo) => repo.stream_all_events::<A>().await,
        }
    }
}
