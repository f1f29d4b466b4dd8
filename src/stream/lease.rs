//! One publisher at a time, and where it stands: worker state in `stream_publishers` (one row
//! per stream; not a read model, a rebuild leaves it alone). An instance publishes while it
//! holds the row's lease, renewing it with every saved position; an instance that dies stops
//! renewing, and another takes the lease once it has lapsed. Two publishers overlapping for a
//! moment (a paused process waking after its lease lapsed) cannot publish out of order or
//! twice: JetStream checks every message's expected predecessor (see the module above).

use switchboard_store::{with_pool, Database, LogCursor, StoreError};

/// Takes (or keeps) the lease of `stream` for `holder` until `now + lease_ms`; `true` when
/// `holder` has it.
///
/// # Errors
/// Database failures.
pub async fn acquire(
    db: &Database,
    stream: &str,
    holder: &str,
    now: i64,
    lease_ms: i64,
) -> Result<bool, StoreError> {
    const CREATE: &str =
        "insert into stream_publishers (stream, after_tx, after_position, lease_until)
        values ($1, 0, 0, 0) on conflict (stream) do nothing";
    const TAKE: &str = "update stream_publishers set holder = $2, lease_until = $3
        where stream = $1 and (holder = $2 or holder is null or lease_until < $4)";
    let taken = with_pool!(db, pool => {
        sqlx::query(CREATE).bind(stream).execute(pool).await?;
        sqlx::query(TAKE).bind(stream).bind(holder).bind(now + lease_ms).bind(now)
            .execute(pool).await?.rows_affected()
    });
    Ok(taken == 1)
}

/// The stored position: just after the last event JetStream acknowledged.
///
/// # Errors
/// Database failures.
pub async fn cursor(db: &Database, stream: &str) -> Result<LogCursor, StoreError> {
    const SQL: &str = "select after_tx, after_position from stream_publishers where stream = $1";
    let found: Option<(i64, i64)> =
        with_pool!(db, pool => sqlx::query_as(SQL).bind(stream).fetch_optional(pool).await?);
    Ok(found.map_or(LogCursor::START, |(tx, position)| LogCursor {
        transaction_id: u64::try_from(tx).unwrap_or(0),
        position,
    }))
}

/// Stores the position and renews the lease; `false` when `holder` no longer holds it.
///
/// # Errors
/// Database failures.
pub async fn save(
    db: &Database,
    stream: &str,
    holder: &str,
    cursor: LogCursor,
    now: i64,
    lease_ms: i64,
) -> Result<bool, StoreError> {
    const SQL: &str = "update stream_publishers set after_tx = $3, after_position = $4,
        lease_until = $5 where stream = $1 and holder = $2";
    let saved = with_pool!(db, pool => sqlx::query(SQL).bind(stream).bind(holder)
        .bind(i64::try_from(cursor.transaction_id).unwrap_or(i64::MAX))
        .bind(cursor.position).bind(now + lease_ms).execute(pool).await?.rows_affected());
    Ok(saved == 1)
}

/// Gives the lease up (at shutdown), so another instance takes over at once.
///
/// # Errors
/// Database failures.
pub async fn release(db: &Database, stream: &str, holder: &str) -> Result<(), StoreError> {
    const SQL: &str = "update stream_publishers set holder = null, lease_until = 0
        where stream = $1 and holder = $2";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(stream).bind(holder).execute(pool).await?;
    });
    Ok(())
}
