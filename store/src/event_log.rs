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

use std::sync::Arc;

use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlite_es::SqliteEventRepository;
use sqlx::Row;
use tokio::sync::watch;

use crate::nul::{self, Escaping};
pub use crate::recorded::{LogCursor, RecordedEvent};
use crate::streams::ROWS_PER_STATEMENT;
use crate::vault::{MasterKeys, Vault};
use crate::{with_pool, Database, StoreError};

pub(crate) enum Repository {
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
    pub(crate) inner: Arc<Repository>,
    pub(crate) database: Database,
    pub(crate) appended: Arc<watch::Sender<u64>>,
    /// Seals customers' personal data on the way in and opens it on the way out.
    pub(crate) vault: Arc<Vault>,
    /// The latest events read, shared by this process's live readers.
    pub(crate) tail: Arc<crate::tail::Tail>,
}

/// The gapless reader's query on PostgreSQL: the events after a cursor (`$1` transaction id,
/// `$2` position) written by transactions below the high-water mark (`$4`), at most `$3`, in log
/// order. The order names the table's columns: the output column `transaction_id` (cast to
/// `bigint` for the client) would shadow them, and ordering by it cannot follow the
/// `(transaction_id, position)` index, so every read sorted the whole unread rest of the log
/// (100× slower on 100,000 unread events; a test checks the plan).
pub const READ_ALL_POSTGRES: &str = "
select position, transaction_id::text::bigint as transaction_id, aggregate_type, aggregate_id,
       sequence, event_type, event_version, payload, metadata,
       (extract(epoch from recorded_at) * 1000)::bigint as recorded_at_ms
  from events
 where (transaction_id, position) > ($1::text::xid8, $2)
   and transaction_id < $4::text::xid8
 order by events.transaction_id, events.position
 limit $3";

impl EventRepository {
    /// A repository over `database` (already migrated), sealing personal data with keys
    /// wrapped by `master`.
    pub fn new(database: Database, master: Arc<MasterKeys>) -> Self {
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
            vault: Arc::new(Vault::new(master)),
            tail: Arc::default(),
        }
    }

    /// The customers' data keys.
    pub fn vault(&self) -> &Vault {
        &self.vault
    }

    /// Event payloads `(aggregate type, aggregate id, payload)` as they are stored, personal
    /// parts sealed: for tools that insert events themselves (import).
    ///
    /// # Errors
    /// When a key cannot be created or read.
    pub async fn sealed<'a>(
        &self,
        events: &[(&str, &str, &'a Value)],
    ) -> Result<Vec<std::borrow::Cow<'a, Value>>, StoreError> {
        self.vault.sealed(&self.database, events).await
    }

    /// Destroys the keys an event destroys as it is appended (an erasure or an expiry), for
    /// tools that insert events themselves; returns whether it destroys any.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn destroy_keys_of(
        &self,
        aggregate_type: &str,
        aggregate_id: &str,
        payload: &Value,
    ) -> Result<bool, StoreError> {
        let Some(destroys) =
            switchboard_domain::privacy::destroys(aggregate_type, aggregate_id, payload)
        else {
            return Ok(false);
        };
        self.database
            .execute_atomically(&crate::vault::destroying(&destroys))
            .await?;
        self.vault.forget();
        self.tail.forget();
        Ok(true)
    }

    /// Events as read: sealed fields opened (or left erased), then upcast (after opening: a
    /// sealed payload is in the shape it was written in).
    pub(crate) async fn opened<E: StoredEvent>(
        &self,
        mut events: Vec<E>,
    ) -> Result<Vec<E>, StoreError> {
        let mut payloads: Vec<_> = events
            .iter_mut()
            .map(|e| {
                let (id, _, _, payload) = e.parts();
                (id, payload)
            })
            .collect();
        self.vault
            .open_events(&self.database, &mut payloads)
            .await?;
        for event in &mut events {
            let (_, event_type, version, payload) = event.parts();
            crate::upcast::upcast(event_type, version, payload);
        }
        Ok(events)
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

    /// Up to `limit` events after `after`, in log order, never skipping one that commits late
    /// (on PostgreSQL, [`READ_ALL_POSTGRES`] below the high-water mark).
    ///
    /// # Errors
    /// When the database fails.
    pub async fn read_all(
        &self,
        after: LogCursor,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
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
                let rows = sqlx::query(READ_ALL_POSTGRES)
                    .bind(after.transaction_id.to_string())
                    .bind(after.position)
                    .bind(limit)
                    .bind(mark.to_string())
                    .fetch_all(pool)
                    .await?;
                let events = rows.iter().map(decode_row).collect::<Result<_, _>>()?;
                self.opened(events).await
            }
            Database::Sqlite(pool) => {
                let rows = sqlx::query(SQLITE)
                    .bind(after.position)
                    .bind(limit)
                    .fetch_all(pool)
                    .await?;
                let events = rows.iter().map(decode_row).collect::<Result<_, _>>()?;
                self.opened(events).await
            }
        }
    }

    /// [`Self::read_all`] for the live readers of this process: events another reader has just
    /// read are not read again ([`crate::tail`]). A reader outside the window reads from the
    /// database, and moves the window only forward.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn read_recent(
        &self,
        after: LogCursor,
        limit: u32,
    ) -> Result<Vec<Arc<RecordedEvent>>, StoreError> {
        let generation = || self.vault.generation();
        let announced = || *self.appended.borrow();
        self.tail
            .read(after, limit, &generation, &announced, |from, n| {
                self.read_all(from, n)
            })
            .await
    }

    /// Up to `limit` events with positions after `after` and at most `until`, in position
    /// order: a range of the past (replays), which the caller knows is settled.
    ///
    /// # Errors
    /// When the database fails.
    pub async fn read_positions(
        &self,
        after: i64,
        until: i64,
        limit: u32,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        const POSTGRES: &str = "
select position, transaction_id::text::bigint as transaction_id, aggregate_type, aggregate_id,
       sequence, event_type, event_version, payload, metadata,
       (extract(epoch from recorded_at) * 1000)::bigint as recorded_at_ms
  from events where position > $1 and position <= $2 order by position limit $3";
        const SQLITE: &str = "
select position, 0 as transaction_id, aggregate_type, aggregate_id,
       sequence, event_type, event_version, payload, metadata,
       cast(round((julianday(recorded_at) - 2440587.5) * 86400000.0) as integer) as recorded_at_ms
  from events where position > $1 and position <= $2 order by position limit $3";
        let sql = match &self.database {
            Database::Postgres(_) => POSTGRES,
            Database::Sqlite(_) => SQLITE,
        };
        let rows = with_pool!(&self.database, pool => sqlx::query(sql)
            .bind(after).bind(until).bind(i64::from(limit)).fetch_all(pool).await?
            .iter().map(decode_row).collect::<Result<Vec<_>, _>>()?);
        self.opened(rows).await
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
        self.opened(events).await
    }
}

/// An event as a reader holds it: its aggregate id, type, version and payload.
pub(crate) trait StoredEvent {
    /// `(aggregate id, event type, event version, payload)`.
    fn parts(&mut self) -> (&str, &str, &mut String, &mut Value);
}

/// The three shapes readers hold events in share these fields.
macro_rules! stored_event {
    ($($event:ty),*) => {$(
        impl StoredEvent for $event {
            fn parts(&mut self) -> (&str, &str, &mut String, &mut Value) {
                let Self { aggregate_id, event_type, event_version, payload, .. } = self;
                (aggregate_id, event_type, event_version, payload)
            }
        }
    )*};
}

stored_event!(
    RecordedEvent,
    crate::streams::StreamEvent,
    cqrs_es::persist::SerializedEvent
);

/// A row as stored (NULs restored), not yet opened nor upcast: see [`EventRepository::opened`].
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
    let (payload, metadata) = (nul::decoded(payload), nul::decoded(metadata));
    let event_type: String = row.try_get("event_type")?;
    let event_version: String = row.try_get("event_version")?;
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
