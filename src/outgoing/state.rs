//! The deliverer's worker state, in tables of its own (none is a read model: a rebuild leaves
//! them alone, and nothing here needs to be reproduced from the log):
//! - `webhook_endpoint_secrets`: each endpoint's signing secret (kept out of the log, which is
//!   exported and streamed);
//! - `webhook_tracks`: where each endpoint's live delivery stands (`kind = 'live'`, one per
//!   endpoint) and the replays asked of it (`'replay'`, bounded by `until_position`), with the
//!   retry state of the event at their head;
//! - `webhook_deliveries`: every attempt (the delivery log), pruned by age;
//! - `webhook_dead_letters`: events an endpoint never accepted.

use serde::Serialize;
use switchboard_store::{with_pool, Database, LogCursor, StoreError};

/// A track: a cursor over the log for one endpoint.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Track {
    /// Track id (`live:<endpoint>` for the live one).
    pub id: String,
    /// Whose.
    pub endpoint_id: String,
    /// `live` or `replay`.
    pub kind: String,
    /// Transaction id of the last event done (PostgreSQL; 0 on SQLite and for replays).
    pub after_tx: i64,
    /// Position of the last event done.
    pub after_position: i64,
    /// Replays stop after this position.
    pub until_position: Option<i64>,
    /// Failed attempts at the event at the head.
    pub attempts: i64,
    /// Not before this time (Unix ms).
    pub next_attempt_at: i64,
    /// Since when the endpoint has failed without a success (Unix ms).
    pub failing_since: Option<i64>,
}

impl Track {
    /// The cursor just after the last event done.
    pub fn cursor(&self) -> LogCursor {
        LogCursor {
            transaction_id: u64::try_from(self.after_tx).unwrap_or(0),
            position: self.after_position,
        }
    }
}

/// The live track's id for an endpoint.
pub fn live_id(endpoint_id: &str) -> String {
    format!("live:{endpoint_id}")
}

/// Stores an endpoint's secret (replacing any).
///
/// # Errors
/// Database failures.
pub async fn save_secret(
    db: &Database,
    endpoint_id: &str,
    secret: &str,
    at: i64,
) -> Result<(), StoreError> {
    const SQL: &str = "insert into webhook_endpoint_secrets (endpoint_id, secret, created_at)
        values ($1, $2, $3) on conflict (endpoint_id) do update
        set secret = excluded.secret, created_at = excluded.created_at";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(endpoint_id).bind(secret).bind(at).execute(pool).await?;
    });
    Ok(())
}

/// An endpoint's secret.
///
/// # Errors
/// Database failures.
pub async fn secret(db: &Database, endpoint_id: &str) -> Result<Option<String>, StoreError> {
    const SQL: &str = "select secret from webhook_endpoint_secrets where endpoint_id = $1";
    Ok(
        with_pool!(db, pool => sqlx::query_scalar(SQL).bind(endpoint_id)
        .fetch_optional(pool).await?),
    )
}

/// Creates the live track of an endpoint, starting after `cursor`, unless it exists.
///
/// # Errors
/// Database failures.
pub async fn ensure_live(
    db: &Database,
    endpoint_id: &str,
    cursor: LogCursor,
    now: i64,
) -> Result<(), StoreError> {
    const SQL: &str = "insert into webhook_tracks
        (id, endpoint_id, kind, after_tx, after_position, created_at)
        values ($1, $2, 'live', $3, $4, $5) on conflict (id) do nothing";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(live_id(endpoint_id)).bind(endpoint_id)
            .bind(i64::try_from(cursor.transaction_id).unwrap_or(i64::MAX))
            .bind(cursor.position).bind(now).execute(pool).await?;
    });
    Ok(())
}

/// Adds a replay of positions `from..=until` to an endpoint (`kind`: `replay`, or `retry` of
/// a dead letter).
///
/// # Errors
/// Database failures.
pub async fn add_replay(
    db: &Database,
    endpoint_id: &str,
    kind: &str,
    from: i64,
    until: i64,
    now: i64,
) -> Result<String, StoreError> {
    const SQL: &str = "insert into webhook_tracks
        (id, endpoint_id, kind, after_tx, after_position, until_position, created_at)
        values ($1, $2, 'replay', 0, $3, $4, $5)";
    let id = format!("{kind}:{}", uuid::Uuid::new_v4());
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(&id).bind(endpoint_id).bind(from - 1).bind(until).bind(now)
            .execute(pool).await?;
    });
    Ok(id)
}

/// The tracks of an endpoint, live first, then replays oldest first.
///
/// # Errors
/// Database failures.
pub async fn tracks(db: &Database, endpoint_id: &str) -> Result<Vec<Track>, StoreError> {
    const SQL: &str = "select id, endpoint_id, kind, after_tx, after_position, until_position,
        attempts, next_attempt_at, failing_since from webhook_tracks where endpoint_id = $1
        order by case when kind = 'live' then 0 else 1 end, created_at, id";
    Ok(with_pool!(db, pool => sqlx::query_as(SQL).bind(endpoint_id).fetch_all(pool).await?))
}

/// Saves a track's cursor and retry state.
///
/// # Errors
/// Database failures.
pub async fn save(db: &Database, track: &Track) -> Result<(), StoreError> {
    const SQL: &str = "update webhook_tracks set after_tx = $1, after_position = $2,
        attempts = $3, next_attempt_at = $4, failing_since = $5 where id = $6";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(track.after_tx).bind(track.after_position).bind(track.attempts)
            .bind(track.next_attempt_at).bind(track.failing_since).bind(&track.id)
            .execute(pool).await?;
    });
    Ok(())
}

/// Removes a finished replay.
///
/// # Errors
/// Database failures.
pub async fn remove(db: &Database, track_id: &str) -> Result<(), StoreError> {
    with_pool!(db, pool => {
        sqlx::query("delete from webhook_tracks where id = $1").bind(track_id)
            .execute(pool).await?;
    });
    Ok(())
}

/// Clears the failure state of an endpoint's tracks (it was re-enabled): the next attempt is
/// due at once and the failing period starts over.
///
/// # Errors
/// Database failures.
pub async fn clear_failures(db: &Database, endpoint_id: &str) -> Result<(), StoreError> {
    const SQL: &str = "update webhook_tracks set attempts = 0, next_attempt_at = 0,
        failing_since = null where endpoint_id = $1";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(endpoint_id).execute(pool).await?;
    });
    Ok(())
}

/// Since when each endpoint has been failing, for those that are.
///
/// # Errors
/// Database failures.
pub async fn failing(db: &Database) -> Result<Vec<(String, i64)>, StoreError> {
    const SQL: &str = "select endpoint_id, min(failing_since) from webhook_tracks
        where failing_since is not null group by endpoint_id";
    Ok(with_pool!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await?))
}

/// One attempt, as the delivery log shows it.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    /// The event's position (the `webhook-id`).
    pub position: i64,
    /// DeliveryAttempt number at this event (from 1).
    pub attempt: i64,
    /// `live`, `replay` or `retry` (of a dead letter).
    pub kind: String,
    /// The endpoint's HTTP status, if it answered.
    pub status: Option<i64>,
    /// What went wrong (a timeout, a refused connection, a non-2xx answer).
    pub error: Option<String>,
    /// How long the attempt took, in milliseconds.
    pub latency_ms: i64,
    /// The first 256 characters of the endpoint's answer.
    pub response_excerpt: Option<String>,
    /// When.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String)]
    pub at: i64,
}

fn rfc3339<S: serde::Serializer>(millis: &i64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&switchboard_projections::page::rfc3339(*millis))
}

/// Records an attempt.
///
/// # Errors
/// Database failures.
pub async fn log_attempt(
    db: &Database,
    endpoint_id: &str,
    attempt: &DeliveryAttempt,
) -> Result<(), StoreError> {
    const SQL: &str = "insert into webhook_deliveries
        (endpoint_id, position, attempt, kind, status, error, latency_ms, response_excerpt, at)
        values ($1, $2, $3, $4, $5, $6, $7, $8, $9)";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(endpoint_id).bind(attempt.position).bind(attempt.attempt)
            .bind(&attempt.kind).bind(attempt.status).bind(&attempt.error)
            .bind(attempt.latency_ms).bind(&attempt.response_excerpt).bind(attempt.at)
            .execute(pool).await?;
    });
    Ok(())
}

/// The newest attempts of an endpoint (optionally at one position), newest first.
///
/// # Errors
/// Database failures.
pub async fn attempts(
    db: &Database,
    endpoint_id: &str,
    position: Option<i64>,
    limit: u32,
) -> Result<Vec<DeliveryAttempt>, StoreError> {
    const SQL: &str = "select position, attempt, kind, status, error, latency_ms,
        response_excerpt, at from webhook_deliveries
        where endpoint_id = $1 and ($2 is null or position = $2) order by id desc limit $3";
    const POSTGRES: &str = "select position, attempt, kind, status, error, latency_ms,
        response_excerpt, at from webhook_deliveries
        where endpoint_id = $1 and ($2::bigint is null or position = $2) order by id desc limit $3";
    Ok(match db {
        Database::Postgres(pool) => {
            sqlx::query_as(POSTGRES)
                .bind(endpoint_id)
                .bind(position)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }
        Database::Sqlite(pool) => {
            sqlx::query_as(SQL)
                .bind(endpoint_id)
                .bind(position)
                .bind(i64::from(limit))
                .fetch_all(pool)
                .await?
        }
    })
}

/// Forgets attempts older than `before` (Unix ms).
///
/// # Errors
/// Database failures.
pub async fn prune_attempts(db: &Database, before: i64) -> Result<(), StoreError> {
    with_pool!(db, pool => {
        sqlx::query("delete from webhook_deliveries where at < $1").bind(before)
            .execute(pool).await?;
    });
    Ok(())
}

/// An event an endpoint never accepted.
#[derive(Debug, Clone, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct EndpointDeadLetter {
    /// The event's position.
    pub position: i64,
    /// Attempts made.
    pub attempts: i64,
    /// The last failure.
    pub last_error: String,
    /// When it was given up on.
    #[serde(serialize_with = "rfc3339")]
    #[schema(value_type = String)]
    pub dead_at: i64,
}

/// Records a dead letter.
///
/// # Errors
/// Database failures.
pub async fn bury(
    db: &Database,
    endpoint_id: &str,
    dead: &EndpointDeadLetter,
) -> Result<(), StoreError> {
    const SQL: &str = "insert into webhook_dead_letters
        (endpoint_id, position, attempts, last_error, dead_at) values ($1, $2, $3, $4, $5)
        on conflict (endpoint_id, position) do update set attempts = excluded.attempts,
        last_error = excluded.last_error, dead_at = excluded.dead_at";
    with_pool!(db, pool => {
        sqlx::query(SQL).bind(endpoint_id).bind(dead.position).bind(dead.attempts)
            .bind(&dead.last_error).bind(dead.dead_at).execute(pool).await?;
    });
    Ok(())
}

/// An endpoint's dead letters, oldest event first.
///
/// # Errors
/// Database failures.
pub async fn dead_letters(
    db: &Database,
    endpoint_id: &str,
) -> Result<Vec<EndpointDeadLetter>, StoreError> {
    const SQL: &str = "select position, attempts, last_error, dead_at from webhook_dead_letters
        where endpoint_id = $1 order by position limit 1000";
    Ok(with_pool!(db, pool => sqlx::query_as(SQL).bind(endpoint_id).fetch_all(pool).await?))
}

/// Removes dead letters: one position, or all of them. Answers how many.
///
/// # Errors
/// Database failures.
pub async fn remove_dead_letters(
    db: &Database,
    endpoint_id: &str,
    position: Option<i64>,
) -> Result<u64, StoreError> {
    const ONE: &str = "delete from webhook_dead_letters where endpoint_id = $1 and position = $2";
    const ALL: &str = "delete from webhook_dead_letters where endpoint_id = $1";
    Ok(with_pool!(db, pool => match position {
        Some(p) => sqlx::query(ONE).bind(endpoint_id).bind(p).execute(pool).await?,
        None => sqlx::query(ALL).bind(endpoint_id).execute(pool).await?,
    }
    .rows_affected()))
}

/// The first position recorded at or after `at` (Unix ms), if any.
///
/// # Errors
/// Database failures.
pub async fn first_position_since(db: &Database, at: i64) -> Result<Option<i64>, StoreError> {
    Ok(match db {
        Database::Postgres(pool) => sqlx::query_scalar(
            "select min(position) from events where recorded_at >= to_timestamp($1::double precision / 1000)",
        )
        .bind(at)
        .fetch_one(pool)
        .await?,
        Database::Sqlite(pool) => sqlx::query_scalar(
            "select min(position) from events
             where (julianday(recorded_at) - 2440587.5) * 86400000.0 >= $1",
        )
        .bind(at)
        .fetch_one(pool)
        .await?,
    })
}
