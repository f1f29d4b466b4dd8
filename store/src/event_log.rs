//! The event log: cqrs-es persistence on either backend, and a global reader that never skips.
//!
//! Every event gets a global `position` (and a `recorded_at`) beside the postgres-es columns.
//! On PostgreSQL a position is taken at insert but becomes visible at commit, so positions can
//! become visible out of order. The reader therefore also stores each event's writing
//! transaction id (`xid8`) and only returns events whose transaction is below the high-water
//! mark, the oldest *event writer* still running (see [`crate::high_water`]): those can no
//! longer change, and transactions that write no events do not hold the log back. It walks them in
//! `(transaction_id, position)` order, so an event whose transaction commits late is still
//! delivered, after the ones that committed before it. On SQLite writers are serialized, so
//! position order is commit order.

use std::collections::HashMap;
use std::sync::Arc;

use cqrs_es::persist::{
    PersistedEventRepository, PersistenceError, ReplayStream, SerializedEvent, SerializedSnapshot,
};
use cqrs_es::Aggregate;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::Row;
use tokio::sync::watch;

use crate::nul::{self, Escaping};
use crate::sql::bind_all;
use crate::upcast::upcast_serialized;
use crate::{with_pool, Database, Statement, StoreError};

/// Where a reader is in the global log: just after the event at `position`.
///
/// `transaction_id` is the writing transaction of that event on PostgreSQL (0 on SQLite and at
/// the start). Clients only ever see positions; [`EventRepository::cursor_after`] turns a
/// position back into a cursor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct LogCursor {
    /// The writing transaction of the last event read (PostgreSQL).
    pub transaction_id: u64,
    /// The position of the last event read.
    pub position: i64,
}

impl LogCursor {
    /// Before the first event.
    pub const START: Self = Self {
        transaction_id: 0,
        position: 0,
    };
}

/// An event as the global log holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedEvent {
    /// Unique, assigned at insert.
    pub position: i64,
    /// The cursor just after this event.
    pub cursor: LogCursor,
    /// Aggregate type (`Conversation`, `Message`, …).
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Sequence within the aggregate, from 1.
    pub sequence: i64,
    /// Frozen event type name.
    pub event_type: String,
    /// Payload version.
    pub event_version: String,
    /// The serialized event.
    pub payload: Value,
    /// Request id, actor, causation and correlation ids, recorded-at time.
    pub metadata: Value,
    /// When the database recorded it (Unix milliseconds).
    pub recorded_at_ms: i64,
}

enum Repository {
    Postgres(Escaping<PostgresEventRepository>),
    Sqlite(Escaping<SqliteEventRepository>),
}

/// The cqrs-es event repository for either backend, plus the global reader.
///
/// A thin wrapper over postgres-es and sqlite-es: they do the per-aggregate work (optimistic
/// concurrency through the `(aggregate_type, aggregate_id, sequence)` primary key); this adds
/// the wake-up signal for in-process tailers and the global reader.
#[derive(Clone)]
pub struct EventRepository {
    inner: Arc<Repository>,
    database: Database,
    appended: Arc<watch::Sender<u64>>,
}

impl EventRepository {
    /// A repository over `database` (already migrated).
    pub fn new(database: Database) -> Self {
        let inner = match &database {
            Database::Postgres(pool) => {
                Repository::Postgres(Escaping(PostgresEventRepository::new(pool.clone())))
            }
            Database::Sqlite(pool) => {
                Repository::Sqlite(Escaping(SqliteEventRepository::new(pool.clone())))
            }
        };
        Self {
            inner: Arc::new(inner),
            database,
            appended: Arc::new(watch::Sender::new(0)),
        }
    }

    /// The database behind the log.
    pub fn database(&self) -> &Database {
        &self.database
    }

    /// Wakes this process's tailers (called when another instance announces new events).
    pub fn notify_appended(&self) {
        self.appended
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// Changes after every append from this process, so that in-process tailers wake at once
    /// instead of polling hard. (Appends from other processes arrive through
    /// [`Self::notify_appended`], or are found by polling.)
    pub fn appended(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Up to `limit` events after `after`, in log order, never skipping one that commits late.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn read_all(
        &self,
        after: LogCursor,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        const POSTGRES: &str = "
select position, transaction_id::text::bigint as transaction_id, aggregate_type, aggregate_id,
       sequence, event_type, event_version, payload, metadata,
       (extract(epoch from recorded_at) * 1000)::bigint as recorded_at_ms
  from events
 where (transaction_id, position) > ($1::text::xid8, $2)
   and transaction_id < $4::text::xid8
 order by transaction_id, position
 limit $3";
        const SQLITE: &str = "
select position, 0 as transaction_id, aggregate_type, aggregate_id,
       sequence, event_type, event_version, payload, metadata,
       cast(round((julianday(recorded_at) - 2440587.5) * 86400000.0) as integer) as recorded_at_ms
  from events
 where position > $1
 order by position
 limit $2";
        let limit = i64::from(limit);
        match &self.database {
            Database::Postgres(pool) => {
                let mark = crate::high_water::mark(pool).await?;
                let rows = sqlx::query(POSTGRES)
                    .bind(after.transaction_id.to_string())
                    .bind(after.position)
                    .bind(limit)
                    .bind(mark.to_string())
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(decode_row).collect()
            }
            Database::Sqlite(pool) => {
                let rows = sqlx::query(SQLITE)
                    .bind(after.position)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                rows.iter().map(decode_row).collect()
            }
        }
    }

    /// The cursor just after the event at `position` (0 is the start).
    ///
    /// # Errors
    /// [`StoreError::UnknownPosition`] when no event has that position (negative ones neither).
    pub async fn cursor_after(&self, position: i64) -> Result<LogCursor, StoreError> {
        if position <= 0 {
            return (position == 0)
                .then_some(LogCursor::START)
                .ok_or(StoreError::UnknownPosition(position));
        }
        match &self.database {
            Database::Sqlite(pool) => {
                let found: i64 =
                    sqlx::query_scalar("select count(*) from events where position = $1")
                        .bind(position)
                        .fetch_one(pool)
                        .await?;
                if found == 0 {
                    return Err(StoreError::UnknownPosition(position));
                }
                Ok(LogCursor {
                    transaction_id: 0,
                    position,
                })
            }
            Database::Postgres(pool) => {
                let found: Option<i64> = sqlx::query_scalar(
                    "select transaction_id::text::bigint from events where position = $1",
                )
                .bind(position)
                .fetch_optional(pool)
                .await?;
                let transaction_id = found.ok_or(StoreError::UnknownPosition(position))?;
                Ok(LogCursor {
                    transaction_id: u64::try_from(transaction_id).unwrap_or(0),
                    position,
                })
            }
        }
    }

    /// Where a gapless reader stands once it has read everything it may read now: every
    /// event after this cursor is either not yet committed or not yet readable (behind a
    /// transaction still in flight), so a tailer starting here misses nothing to come.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn frontier(&self) -> Result<LogCursor, StoreError> {
        let found: Option<(i64, i64)> = match &self.database {
            Database::Postgres(pool) => {
                let mark = crate::high_water::mark(pool).await?;
                sqlx::query_as(
                    "select transaction_id::text::bigint, position from events
                  where transaction_id < $1::text::xid8
                  order by transaction_id desc, position desc limit 1",
                )
                .bind(mark.to_string())
                .fetch_optional(pool)
                .await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as("select 0, position from events order by position desc limit 1")
                    .fetch_optional(pool)
                    .await?
            }
        };
        Ok(
            found.map_or(LogCursor::START, |(transaction_id, position)| LogCursor {
                transaction_id: u64::try_from(transaction_id).unwrap_or(0),
                position,
            }),
        )
    }

    /// The highest position committed so far (0 for an empty log).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn head(&self) -> Result<i64, StoreError> {
        let sql = "select coalesce(max(position), 0) from events";
        Ok(with_pool!(&self.database, pool => sqlx::query_scalar(sql).fetch_one(pool).await?))
    }

    /// How many events at or below `head` lie after `cursor` in log order: what a reader at
    /// `cursor` has yet to see of the log as it stood at `head`. The gapless reader may hold
    /// them back for a moment behind transactions still in flight.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn unread_before(&self, cursor: LogCursor, head: i64) -> Result<i64, StoreError> {
        Ok(match &self.database {
            Database::Postgres(pool) => sqlx::query_scalar(
                "select count(*) from events where position <= $1 and (transaction_id, position) > ($2::text::xid8, $3)",
            )
            .bind(head)
            .bind(cursor.transaction_id.to_string())
            .bind(cursor.position)
            .fetch_one(pool)
            .await?,
            Database::Sqlite(pool) => sqlx::query_scalar("select count(*) from events where position <= $1 and position > $2")
                .bind(head)
                .bind(cursor.position)
                .fetch_one(pool)
                .await?,
        })
    }

    /// How many events are in the log (committed and visible).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn count(&self) -> Result<i64, StoreError> {
        let sql = "select count(*) from events";
        Ok(with_pool!(&self.database, pool => sqlx::query_scalar(sql).fetch_one(pool).await?))
    }

    /// Every event of one aggregate, in sequence order, with global positions.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn aggregate_events(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        self.events_of(aggregate_type, &[aggregate_id]).await
    }

    /// Every event of these aggregates of one type, in global position order (one query per
    /// thousand ids).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn events_of(
        &self,
        aggregate_type: &str,
        ids: &[&str],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let columns = match self.database {
            Database::Postgres(_) => "position, transaction_id::text::bigint as transaction_id, aggregate_type, aggregate_id,
                sequence, event_type, event_version, payload, metadata,
                (extract(epoch from recorded_at) * 1000)::bigint as recorded_at_ms",
            Database::Sqlite(_) => "position, 0 as transaction_id, aggregate_type, aggregate_id,
                sequence, event_type, event_version, payload, metadata,
                cast(round((julianday(recorded_at) - 2440587.5) * 86400000.0) as integer) as recorded_at_ms",
        };
        let mut events = Vec::new();
        for chunk in ids.chunks(ROWS_PER_STATEMENT) {
            with_pool!(&self.database, pool => {
                let mut query = sqlx::QueryBuilder::new(format!("select {columns} from events where aggregate_type = "));
                query.push_bind(aggregate_type).push(" and aggregate_id in (");
                let mut list = query.separated(", ");
                for id in chunk {
                    list.push_bind(*id);
                }
                query.push(") order by position");
                for row in &query.build().fetch_all(pool).await? {
                    events.push(decode_row(row)?);
                }
            });
        }
        events.sort_by_key(|e| e.position);
        Ok(events)
    }
}

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
    /// The snapshot to write, if enough events were added since the last one.
    pub fn snapshot_if_due(&self, aggregate_id: &str) -> Option<Snapshot> {
        if self.sequence - self.snapshot_sequence < SNAPSHOT_EVERY {
            return None;
        }
        let payload = serde_json::to_value(&self.aggregate).ok()?;
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
const ROWS_PER_STATEMENT: usize = 1_000;

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
        Ok(loaded)
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
            for (id, sequence, sqlx::types::Json(payload)) in snapshots {
                match serde_json::from_value::<A>(nul::decoded(payload)) {
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
        const UPSERT_SNAPSHOT: &str = "
insert into snapshots (aggregate_type, aggregate_id, last_sequence, current_snapshot, payload, schema_version)
values ($1, $2, $3, 0, $4, $5)
on conflict (aggregate_type, aggregate_id) do update set
    last_sequence = excluded.last_sequence, payload = excluded.payload,
    schema_version = excluded.schema_version
where snapshots.last_sequence < excluded.last_sequence
   or snapshots.schema_version <> excluded.schema_version";
        macro_rules! insert_events {
            ($executor:expr, $events:expr) => {{
                let mut insert = sqlx::QueryBuilder::new(
                    "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata) ",
                );
                insert.push_values($events, |mut row, event| {
                    row.push_bind(event.aggregate_type)
                        .push_bind(event.aggregate_id.as_str())
                        .push_bind(event.sequence)
                        .push_bind(event.event_type.as_str())
                        .push_bind(event.event_version.as_str())
                        .push_bind(sqlx::types::Json(nul::encode(&event.payload)))
                        .push_bind(sqlx::types::Json(nul::encode(&event.metadata)));
                });
                insert.build().execute($executor).await?;
            }};
        }
        let one_statement = !events.is_empty()
            && events.len() <= ROWS_PER_STATEMENT
            && snapshots.is_empty()
            && also.is_empty();
        let result: Result<(), sqlx::Error> = with_pool!(&self.database, pool => async {
            if one_statement {
                insert_events!(pool, events);
                return Ok(());
            }
            let mut tx = pool.begin().await?;
            for chunk in events.chunks(ROWS_PER_STATEMENT) {
                insert_events!(&mut *tx, chunk);
            }
            for snapshot in snapshots {
                sqlx::query(UPSERT_SNAPSHOT)
                    .bind(snapshot.aggregate_type)
                    .bind(snapshot.aggregate_id.as_str())
                    .bind(snapshot.last_sequence)
                    .bind(sqlx::types::Json(nul::encode(&snapshot.payload)))
                    .bind(crate::upcast::snapshot_schema(snapshot.aggregate_type))
                    .execute(&mut *tx)
                    .await?;
            }
            for statement in also {
                bind_all!(sqlx::query(&statement.sql), statement.args.iter().cloned())
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await
        }.await);
        match result {
            Ok(()) => {
                if !events.is_empty() {
                    self.appended
                        .send_modify(|count| *count = count.wrapping_add(1));
                }
                Ok(())
            }
            Err(sqlx::Error::Database(error)) if error.is_unique_violation() => {
                Err(AppendError::Conflict)
            }
            Err(error) => Err(AppendError::Store(error.into())),
        }
    }
}

/// A row of `(aggregate_id, sequence, event_type, event_version, payload)`, upcast.
pub(crate) fn stream_event<R>(row: &R) -> Result<StreamEvent, StoreError>
where
    R: Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> sqlx::types::Json<Value>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let sqlx::types::Json(payload) = row.try_get("payload")?;
    let mut payload = nul::decoded(payload);
    let event_type: String = row.try_get("event_type")?;
    let mut event_version: String = row.try_get("event_version")?;
    crate::upcast::upcast(&event_type, &mut event_version, &mut payload);
    Ok(StreamEvent {
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type,
        event_version,
        payload,
    })
}

fn decode_row<R>(row: &R) -> Result<RecordedEvent, StoreError>
where
    R: Row,
    for<'r> &'r str: sqlx::ColumnIndex<R>,
    for<'r> i64: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> String: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    for<'r> sqlx::types::Json<Value>: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let position: i64 = row.try_get("position")?;
    let transaction_id: i64 = row.try_get("transaction_id")?;
    let sqlx::types::Json(payload) = row.try_get("payload")?;
    let sqlx::types::Json(metadata) = row.try_get("metadata")?;
    let (mut payload, metadata) = (nul::decoded(payload), nul::decoded(metadata));
    let event_type: String = row.try_get("event_type")?;
    let mut event_version: String = row.try_get("event_version")?;
    crate::upcast::upcast(&event_type, &mut event_version, &mut payload);
    Ok(RecordedEvent {
        position,
        cursor: LogCursor {
            transaction_id: u64::try_from(transaction_id).unwrap_or(0),
            position,
        },
        aggregate_type: row.try_get("aggregate_type")?,
        aggregate_id: row.try_get("aggregate_id")?,
        sequence: row.try_get("sequence")?,
        event_type,
        event_version,
        payload,
        metadata,
        recorded_at_ms: row.try_get("recorded_at_ms")?,
    })
}

impl PersistedEventRepository for EventRepository {
    async fn get_events<A: Aggregate>(
        &self,
        aggregate_id: &str,
    ) -> Result<Vec<SerializedEvent>, PersistenceError> {
        let events = match self.inner.as_ref() {
            Repository::Postgres(repo) => repo.get_events::<A>(aggregate_id).await,
            Repository::Sqlite(repo) => repo.get_events::<A>(aggregate_id).await,
        }?;
        Ok(events.into_iter().map(upcast_serialized).collect())
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
        Ok(events.into_iter().map(upcast_serialized).collect())
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
        let result = match self.inner.as_ref() {
            Repository::Postgres(repo) => repo.persist::<A>(events, snapshot_update).await,
            Repository::Sqlite(repo) => repo.persist::<A>(events, snapshot_update).await,
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
        match self.inner.as_ref() {
            Repository::Postgres(repo) => repo.stream_events::<A>(aggregate_id).await,
            Repository::Sqlite(repo) => repo.stream_events::<A>(aggregate_id).await,
        }
    }

    async fn stream_all_events<A: Aggregate>(&self) -> Result<ReplayStream, PersistenceError> {
        match self.inner.as_ref() {
            Repository::Postgres(repo) => repo.stream_all_events::<A>().await,
            Repository::Sqlite(repo) => repo.stream_all_events::<A>().await,
        }
    }
}
