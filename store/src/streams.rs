//! Aggregates' own streams: loading many at once (from snapshots plus the events after them)
//! and appending the events of several aggregates, with snapshots and worker-state statements,
//! in one transaction under optimistic concurrency.

use std::collections::HashMap;

use cqrs_es::Aggregate;
use serde_json::Value;
use sqlx::Row;

use switchboard_domain::privacy;

use crate::bind_all;
use crate::event_log::EventRepository;
use crate::nul;
use crate::{with_pool, Statement, StoreError};

/// An event to append, already serialized (see [`EventRepository::append`]).
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Aggregate type.
    pub aggregate_type: &'static str,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Sequence within the aggregate: one past the last stored.
    pub sequence: i64,
    /// Frozen event type name.
    pub event_type: String,
    /// Payload version.
    pub event_version: String,
    /// The serialized event.
    pub payload: Value,
    /// Metadata (a JSON object of strings).
    pub metadata: Value,
}

/// Snapshot an aggregate when this many events were added since its last snapshot.
pub const SNAPSHOT_EVERY: i64 = 25;

/// An aggregate rebuilt from the log.
#[derive(Debug, Clone, PartialEq)]
pub struct Loaded<A> {
    /// Its state.
    pub aggregate: A,
    /// The sequence of its last event.
    pub sequence: i64,
    /// The sequence its snapshot was taken at (0: none).
    pub snapshot_sequence: i64,
}

impl<A: Aggregate> Loaded<A> {
    /// The snapshot to write, if enough events were added since the last one; it then counts as
    /// taken (a state held on in memory must not be snapshotted again by every later append:
    /// the webhook processor's was, once it was 25 events past its last snapshot). A state
    /// whose append fails is dropped with it.
    pub fn take_snapshot_if_due(&mut self, aggregate_id: &str) -> Option<Snapshot> {
        if self.sequence - self.snapshot_sequence < SNAPSHOT_EVERY {
            return None;
        }
        let payload = serde_json::to_value(&self.aggregate).ok()?;
        self.snapshot_sequence = self.sequence;
        Some(Snapshot {
            aggregate_type: A::TYPE,
            aggregate_id: aggregate_id.to_owned(),
            last_sequence: self.sequence,
            payload,
        })
    }
}

/// An aggregate's state at a sequence, so that loading it need not replay the whole stream.
/// Derived data: it can be deleted at any time and is rebuilt from the events.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// Aggregate type.
    pub aggregate_type: &'static str,
    /// Aggregate id.
    pub aggregate_id: String,
    /// The sequence of the last event it includes.
    pub last_sequence: i64,
    /// The serialized aggregate.
    pub payload: Value,
}

/// One stored event of a stream, as needed to rebuild an aggregate.
#[derive(Debug, Clone, PartialEq)]
pub struct StreamEvent {
    /// Aggregate id.
    pub aggregate_id: String,
    /// Sequence within the aggregate.
    pub sequence: i64,
    /// Frozen event type name.
    pub event_type: String,
    /// Payload version.
    pub event_version: String,
    /// The serialized event.
    pub payload: Value,
}

/// Why [`EventRepository::append`] wrote nothing.
#[derive(Debug, thiserror::Error)]
pub enum AppendError {
    /// Another writer appended to one of the streams first (optimistic concurrency).
    #[error("an aggregate was changed concurrently")]
    Conflict,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Rows per multi-row statement: well under PostgreSQL's 65,535 bind parameters.
pub(crate) const ROWS_PER_STATEMENT: usize = 1_000;

impl EventRepository {
    /// The events of many aggregates of one type, in one query per thousand ids, ordered by
    /// aggregate and sequence (batch rehydration without N+1 queries).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn load_streams(
        &self,
        aggregate_type: &str,
        aggregate_ids: &[&str],
    ) -> Result<Vec<StreamEvent>, StoreError> {
        let mut loaded = Vec::new();
        for ids in aggregate_ids.chunks(ROWS_PER_STATEMENT) {
            with_pool!(&self.database, pool => {
                let mut query = sqlx::QueryBuilder::new(
                    "select aggregate_id, sequence, event_type, event_version, payload from events where aggregate_type = ",
                );
                query.push_bind(aggregate_type).push(" and aggregate_id in (");
                let mut list = query.separated(", ");
                for id in ids {
                    list.push_bind(*id);
                }
                query.push(") order by aggregate_id, sequence");
                let rows = query.build().fetch_all(pool).await?;
                for row in &rows {
                    loaded.push(stream_event(row)?);
                }
            });
        }
        self.opened(loaded).await
    }

    /// Rebuilds the aggregates `ids` of type `A`: from their latest snapshot plus the events
    /// after it (one query for the snapshots and one for the events, per thousand ids).
    /// Aggregates without events are absent from the map.
    ///
    /// # Errors
    /// When the database fails or an event does not deserialize. A snapshot that no longer
    /// deserializes (the aggregate's shape changed) is ignored: the full stream is replayed.
    pub async fn load_with_snapshots<A: Aggregate>(
        &self,
        ids: &[&str],
    ) -> Result<HashMap<String, Loaded<A>>, StoreError> {
        let mut loaded: HashMap<String, Loaded<A>> = HashMap::with_capacity(ids.len());
        for chunk in ids.chunks(ROWS_PER_STATEMENT / 2) {
            let snapshots: Vec<(String, i64, sqlx::types::Json<Value>)> = with_pool!(&self.database, pool => {
                let mut query = sqlx::QueryBuilder::new(
                    "select aggregate_id, last_sequence, payload from snapshots where aggregate_type = ",
                );
                query.push_bind(A::TYPE).push(" and schema_version = ");
                query.push_bind(crate::upcast::snapshot_schema(A::TYPE));
                query.push(" and aggregate_id in (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(")");
                query.build_query_as().fetch_all(pool).await?
            });
            let sequences: HashMap<String, i64> = snapshots
                .iter()
                .map(|(id, sequence, _)| (id.clone(), *sequence))
                .collect();
            let snapshots = snapshots
                .into_iter()
                .map(|(id, _, sqlx::types::Json(payload))| (id, nul::decoded(payload)))
                .collect();
            for (id, state) in self.vault.open_snapshots(&self.database, snapshots).await? {
                let sequence = sequences[&id];
                // A snapshot whose key was destroyed (its customer erased) is ignored: the
                // events, read with their erased forms, rebuild the aggregate.
                let Some(state) = state else { continue };
                match serde_json::from_value::<A>(state) {
                    Ok(aggregate) => {
                        loaded.insert(
                            id,
                            Loaded {
                                aggregate,
                                sequence,
                                snapshot_sequence: sequence,
                            },
                        );
                    }
                    Err(error) => {
                        tracing::warn!(aggregate_type = A::TYPE, aggregate_id = %id, %error,
                        "snapshot no longer readable; replaying the whole stream")
                    }
                }
            }
            let events: Vec<StreamEvent> = with_pool!(&self.database, pool => {
                // The id list comes first with a CROSS JOIN: SQLite then walks it and probes the
                // primary key, instead of scanning the events table (PostgreSQL plans either way).
                let mut query = sqlx::QueryBuilder::new(
                    "select e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload from \
                     (select column1 as id, column2 as after from (values ",
                );
                let mut rows = query.separated(", ");
                for id in chunk {
                    let after = loaded.get(*id).map_or(0, |l| l.sequence);
                    rows.push("(");
                    rows.push_bind_unseparated(*id);
                    rows.push_unseparated(", ");
                    rows.push_bind_unseparated(after);
                    rows.push_unseparated(")");
                }
                query.push(") as v) as t cross join events e where e.aggregate_type = ");
                query.push_bind(A::TYPE);
                query.push(" and e.aggregate_id = t.id and e.sequence > t.after");
                query.push(" order by e.aggregate_id, e.sequence");
                let rows = query.build().fetch_all(pool).await?;
                let mut events = Vec::with_capacity(rows.len());
                for row in &rows {
                    events.push(stream_event(row)?);
                }
                events
            });
            let events = self.opened(events).await?;
            for event in events {
                let payload: A::Event =
                    serde_json::from_value(event.payload).map_err(|source| {
                        StoreError::Unreadable {
                            aggregate_type: A::TYPE,
                            aggregate_id: event.aggregate_id.clone(),
                            sequence: event.sequence,
                            source,
                        }
                    })?;
                let entry = loaded.entry(event.aggregate_id).or_insert_with(|| Loaded {
                    aggregate: A::default(),
                    sequence: 0,
                    snapshot_sequence: 0,
                });
                entry.aggregate.apply(payload);
                entry.sequence = event.sequence;
            }
        }
        Ok(loaded)
    }

    /// [`Self::load_with_snapshots`], as `(aggregate, last sequence)`.
    ///
    /// # Errors
    /// As [`Self::load_with_snapshots`].
    pub async fn load_aggregates<A: Aggregate>(
        &self,
        ids: &[&str],
    ) -> Result<HashMap<String, (A, i64)>, StoreError> {
        Ok(self
            .load_with_snapshots::<A>(ids)
            .await?
            .into_iter()
            .map(|(id, l)| (id, (l.aggregate, l.sequence)))
            .collect())
    }

    /// Rebuilds one aggregate; a new one (version 0) when it has no events.
    ///
    /// # Errors
    /// As [`Self::load_with_snapshots`].
    pub async fn load_aggregate<A: Aggregate>(&self, id: &str) -> Result<(A, i64), StoreError> {
        Ok(self
            .load_aggregates::<A>(&[id])
            .await?
            .remove(id)
            .unwrap_or_default())
    }

    /// Appends events of any number of aggregates, and runs `also`, in one transaction.
    ///
    /// The `(aggregate_type, aggregate_id, sequence)` key makes this optimistic: if another
    /// writer took one of the sequences first, nothing is written and [`AppendError::Conflict`]
    /// is returned. Events alone that fit one statement are inserted without an explicit
    /// transaction: a single statement is atomic on both backends, and it saves the `BEGIN` and
    /// `COMMIT` round trips (a won lock is this one insert).
    ///
    /// # Errors
    /// [`AppendError::Conflict`] as above; database failures.
    pub async fn append(
        &self,
        events: &[NewEvent],
        snapshots: &[Snapshot],
        also: &[Statement],
    ) -> Result<(), AppendError> {
        const UPSERT_SNAPSHOTS: &str = "
insert into snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload, schema_version) ";
        const ON_CONFLICT: &str = "
on conflict (aggregate_type, aggregate_id) do update set
    last_sequence = excluded.last_sequence, payload = excluded.payload,
    schema_version = excluded.schema_version
where snapshots.last_sequence < excluded.last_sequence
   or snapshots.schema_version <> excluded.schema_version";
        macro_rules! insert_events {
            ($executor:expr, $events:expr, $payloads:expr) => {{
                let mut insert = sqlx::QueryBuilder::new(
                    "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
                );
                insert.push_values($events.iter().zip($payloads), |mut row, (event, payload)| {
                    row.push_bind(event.aggregate_type)
                        .push_bind(event.aggregate_id.as_str())
                        .push_bind(event.sequence)
                        .push_bind(event.event_type.as_str())
                        .push_bind(event.event_version.as_str())
                        .push_bind(sqlx::types::Json(nul::encode(payload)))
                        .push_bind(sqlx::types::Json(nul::encode(&event.metadata)));
                });
                insert.build().execute($executor).await?;
            }};
        }
        let listed: Vec<_> = events
            .iter()
            .map(|e| (e.aggregate_type, e.aggregate_id.as_str(), &e.payload))
            .collect();
        // One snapshot per aggregate (the latest): a multi-row upsert may not touch a row twice.
        let snapshots = &latest_snapshots(snapshots);
        let states: Vec<_> = snapshots
            .iter()
            .map(|s| (s.aggregate_type, s.aggregate_id.as_str(), &s.payload))
            .collect();
        // Erasures destroy their keys in the transaction that records them.
        let destroying: Vec<Statement> = events
            .iter()
            .filter_map(|e| privacy::destroys(e.aggregate_type, &e.aggregate_id, &e.payload))
            .flat_map(|d| crate::vault::destroying(&d))
            .collect();
        // A key generated here loses to one another writer stored for the same scope at the
        // same moment (nothing is written then): sealed again with the winner's.
        let mut attempts = 0;
        let sealed = loop {
            let sealed = self
                .vault
                .sealed_for_append(&self.database, &listed, &states)
                .await?;
            let one_statement = !events.is_empty()
                && events.len() <= ROWS_PER_STATEMENT
                && snapshots.is_empty()
                && also.is_empty()
                && destroying.is_empty()
                && sealed.fresh.is_empty();
            let result: Result<bool, sqlx::Error> = with_pool!(&self.database, pool => async {
                if one_statement {
                    insert_events!(pool, events, &sealed.payloads);
                    return Ok(true);
                }
                let mut tx = pool.begin().await?;
                // Events first: on PostgreSQL they must be what a transaction writes first (the
                // log's high-water mark registers event writers).
                for (chunk, payloads) in events.chunks(ROWS_PER_STATEMENT).zip(sealed.payloads.chunks(ROWS_PER_STATEMENT)) {
                    insert_events!(&mut *tx, chunk, payloads);
                }
                let inserted = crate::vault::insert_fresh!(&mut *tx, &sealed.fresh);
                if inserted < sealed.fresh.len() as u64 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                // One statement per thousand snapshots (a batch of webhooks snapshots many
                // conversations at once): each was a round trip inside the transaction.
                for (chunk, payloads) in snapshots.chunks(ROWS_PER_STATEMENT).zip(sealed.snapshots.chunks(ROWS_PER_STATEMENT)) {
                    let mut upsert = sqlx::QueryBuilder::new(UPSERT_SNAPSHOTS);
                    upsert.push_values(chunk.iter().zip(payloads), |mut row, (snapshot, payload)| {
                        row.push_bind(snapshot.aggregate_type)
                            .push_bind(snapshot.aggregate_id.as_str())
                            .push_bind(snapshot.last_sequence)
                            .push("0")
                            .push_bind(sqlx::types::Json(nul::encode(payload)))
                            .push_bind(crate::upcast::snapshot_schema(snapshot.aggregate_type));
                    });
                    upsert.push(ON_CONFLICT);
                    upsert.build().execute(&mut *tx).await?;
                }
                for statement in also.iter().chain(&destroying) {
                    bind_all!(sqlx::query(&statement.sql), statement.args.iter().cloned())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(true)
            }.await);
            match result {
                Ok(true) => break sealed,
                Ok(false) if attempts < 3 => attempts += 1,
                Ok(false) => {
                    return Err(AppendError::Store(StoreError::Crypto(
                        "data keys kept being created concurrently",
                    )))
                }
                Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                    return Err(AppendError::Conflict)
                }
                Err(error) => return Err(AppendError::Store(error.into())),
            }
        };
        self.vault.stored(sealed.fresh, sealed.generation);
        if !destroying.is_empty() {
            self.vault.forget();
            self.tail.forget();
        }
        if !events.is_empty() {
            self.appended
                .send_modify(|count| *count = count.wrapping_add(1));
        }
        Ok(())
    }
}

/// `snapshots` with one per aggregate, the one of the highest sequence, in their order.
fn latest_snapshots(snapshots: &[Snapshot]) -> Vec<&Snapshot> {
    let mut latest: Vec<&Snapshot> = Vec::with_capacity(snapshots.len());
    let mut at: HashMap<(&str, &str), usize> = HashMap::with_capacity(snapshots.len());
    for snapshot in snapshots {
        let key = (snapshot.aggregate_type, snapshot.aggregate_id.as_str());
        match at.get(&key) {
            Some(&i) if latest[i].last_sequence < snapshot.last_sequence => latest[i] = snapshot,
            Some(_) => {}
            None => {
                at.insert(key, latest.len());
                latest.push(snapshot);
            }
        }
    }
    latest
}

/// A row of `(aggregate_id, sequence, event_type, event_version, payload)` as stored (NULs
/// restored), not yet opened nor upcast.
pub(crate) fn stream_event<R>(row: &R) -> Result<StreamEvent, StoreError>
where
    R: Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> sqlx::types::Json<Value>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let sqlx::types::Json(payload) = row.try_get("payload")?;
    let payload = nul::decoded(payload);
    let event_type: String = row.try_get("event_type")?;
    let event_version: String = row.try_get("event_version")?;
    Ok(StreamEvent {
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type,
        event_version,
        payload,
    })
}
