//! The log as NDJSON, one event a line with its global position, and back.

use std::io::{BufRead, Write};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchboard_store::{nul, with_pool, Database, EventRepository, LogCursor};

use crate::replay::ReplayError;

/// One exported event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExportedEvent {
    /// Global position.
    pub position: i64,
    /// Aggregate type.
    pub aggregate_type: String,
    /// Aggregate id.
    pub aggregate_id: String,
    /// Sequence within the aggregate.
    pub sequence: i64,
    /// Event type.
    pub event_type: String,
    /// Payload version.
    pub event_version: String,
    /// The event.
    pub payload: Value,
    /// Its metadata.
    pub metadata: Value,
    /// When the database recorded it (Unix milliseconds).
    pub recorded_at_ms: i64,
}

/// What to export.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only events after this position.
    pub after: Option<i64>,
    /// Only events recorded up to this time (Unix milliseconds).
    pub until_ms: Option<i64>,
    /// Only events of this aggregate type.
    pub aggregate_type: Option<String>,
}

/// Writes the log (in global order) as NDJSON; returns how many events were written.
///
/// # Errors
/// Database or write failures.
pub async fn export(
    log: &EventRepository,
    filter: &ExportFilter,
    out: &mut impl Write,
) -> Result<u64, ReplayError> {
    let mut cursor = match filter.after {
        Some(position) => log.cursor_after(position).await?,
        None => LogCursor::START,
    };
    // Everything committed before the export started, even what the gapless reader still holds
    // back behind transactions in flight; nothing committed after it.
    let head = log.head().await?;
    let mut written = 0;
    loop {
        let mut page = log.read_all(cursor, 5_000).await?;
        page.retain(|e| e.position <= head);
        let Some(last) = page.last().map(|e| e.cursor) else {
            if log.unread_before(cursor, head).await? == 0 {
                return Ok(written);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            continue;
        };
        for event in page {
            if filter
                .until_ms
                .is_some_and(|until| event.recorded_at_ms > until)
                || filter
                    .aggregate_type
                    .as_ref()
                    .is_some_and(|t| *t != event.aggregate_type)
            {
                continue;
            }
            let line = ExportedEvent {
                position: event.position,
                aggregate_type: event.aggregate_type,
                aggregate_id: event.aggregate_id,
                sequence: event.sequence,
                event_type: event.event_type,
                event_version: event.event_version,
                payload: event.payload,
                metadata: event.metadata,
                recorded_at_ms: event.recorded_at_ms,
            };
            serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::other)?;
            out.write_all(b"\n")?;
            written += 1;
        }
        cursor = last;
    }
}

/// Imports an export into an empty store: the same positions, payloads, metadata and record
/// times; returns how many events were imported.
///
/// # Errors
/// [`ReplayError::NotEmpty`] when the store has events; unparseable lines; database failures.
pub async fn import(log: &EventRepository, input: impl BufRead) -> Result<u64, ReplayError> {
    let existing = log.count().await?;
    if existing > 0 {
        return Err(ReplayError::NotEmpty(existing));
    }
    let mut batch = Vec::with_capacity(1_000);
    let mut imported = 0;
    for (index, line) in input.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let event: ExportedEvent =
            serde_json::from_str(&line).map_err(|e| ReplayError::BadExportLine {
                line: index + 1,
                reason: e.to_string(),
            })?;
        let destroys = switchboard_domain::privacy::destroys(
            &event.aggregate_type,
            &event.aggregate_id,
            &event.payload,
        )
        .is_some();
        batch.push(event);
        // An erasure destroys the keys of what came before it, not of what follows.
        if batch.len() == 1_000 || destroys {
            imported += insert(log, &batch).await?;
            if let Some(last) = batch.last().filter(|_| destroys) {
                log.destroy_keys_of(&last.aggregate_type, &last.aggregate_id, &last.payload)
                    .await?;
            }
            batch.clear();
        }
    }
    imported += insert(log, &batch).await?;
    if let Database::Postgres(pool) = log.database() {
        sqlx::query("select setval(pg_get_serial_sequence('events', 'position'), coalesce((select max(position) from events), 1))")
            .execute(pool)
            .await
            .map_err(switchboard_store::StoreError::from)?;
    }
    Ok(imported)
}

/// Inserts `events` as they are, their personal parts sealed with this store's keys.
async fn insert(log: &EventRepository, events: &[ExportedEvent]) -> Result<u64, ReplayError> {
    if events.is_empty() {
        return Ok(0);
    }
    let listed: Vec<_> = events
        .iter()
        .map(|e| {
            (
                e.aggregate_type.as_str(),
                e.aggregate_id.as_str(),
                &e.payload,
            )
        })
        .collect();
    let payloads = log.sealed(&listed).await?;
    let events: Vec<_> = events.iter().zip(&payloads).collect();
    let result: Result<(), sqlx::Error> = match log.database() {
        Database::Postgres(pool) => {
            let mut query = sqlx::QueryBuilder::new(
                "insert into events (position, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at) overriding system value ",
            );
            query.push_values(&events, |mut row, (e, payload)| {
                row.push_bind(e.position)
                    .push_bind(&e.aggregate_type)
                    .push_bind(&e.aggregate_id)
                    .push_bind(e.sequence)
                    .push_bind(&e.event_type)
                    .push_bind(&e.event_version)
                    .push_bind(sqlx::types::Json(nul::encode(payload)))
                    .push_bind(sqlx::types::Json(nul::encode(&e.metadata)))
                    .push("to_timestamp(")
                    .push_bind_unseparated(e.recorded_at_ms as f64 / 1000.0)
                    .push_unseparated(")");
            });
            query.build().execute(pool).await.map(|_| ())
        }
        Database::Sqlite(pool) => {
            let mut query = sqlx::QueryBuilder::new(
                "insert into events (rowid, aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata, recorded_at) ",
            );
            query.push_values(&events, |mut row, (e, payload)| {
                row.push_bind(e.position)
                    .push_bind(&e.aggregate_type)
                    .push_bind(&e.aggregate_id)
                    .push_bind(e.sequence)
                    .push_bind(&e.event_type)
                    .push_bind(&e.event_version)
                    .push_bind(sqlx::types::Json(nul::encode(payload)))
                    .push_bind(sqlx::types::Json(nul::encode(&e.metadata)))
                    .push_bind(
                        switchboard_domain::Timestamp::from_unix_millis(e.recorded_at_ms)
                            .map(|t| t.as_datetime().format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
                            .unwrap_or_default(),
                    );
            });
            query.build().execute(pool).await.map(|_| ())
        }
    };
    result.map_err(switchboard_store::StoreError::from)?;
    Ok(events.len() as u64)
}

/// Counts events (to check an import).
///
/// # Errors
/// Database failures.
pub async fn count(database: &Database) -> Result<i64, ReplayError> {
    Ok(
        with_pool!(database, pool => sqlx::query_scalar("select count(*) from events").fetch_one(pool).await.map_err(switchboard_store::StoreError::from)?),
    )
}
