//! Data protection beside the requests of `http::customers`: contents erased when their
//! retention period ends ([`retention`]), data keys re-wrapped after a master-key rotation, and
//! freed pages of the embedded database released after an erasure.

pub mod retention;

use std::time::Duration;

use switchboard_store::{with_pool, Database, EventRepository};

/// How long an erasure waits for the read models to apply it before SQLite's log is
/// checkpointed anyway.
const PROJECTED_WITHIN: Duration = Duration::from_secs(60);

/// After an erasure: once every read model has applied the log up to now (their rows rewritten
/// with `[erased]`), the embedded database's write-ahead log, which still holds the pages as
/// they were, is copied back and truncated (PostgreSQL: nothing to do). Runs in the background.
pub fn release_when_projected(database: Database) {
    let Database::Sqlite(_) = &database else {
        return;
    };
    tokio::spawn(async move {
        let deadline = tokio::time::Instant::now() + PROJECTED_WITHIN;
        let last: Option<i64> = with_pool!(&database, pool =>
            sqlx::query_scalar("select max(position) from events").fetch_one(pool).await.ok().flatten());
        while tokio::time::Instant::now() < deadline {
            let applied: Option<i64> = with_pool!(&database, pool =>
                sqlx::query_scalar("select min(position) from projection_checkpoints")
                    .fetch_one(pool).await.ok().flatten());
            if applied >= last {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        for _ in 0..50 {
            match database.release_freed_pages().await {
                Ok(true) => return,
                Ok(false) => tokio::time::sleep(Duration::from_millis(200)).await,
                Err(error) => {
                    tracing::warn!(%error, "the write-ahead log was not checkpointed after an erasure");
                    return;
                }
            }
        }
        tracing::warn!("readers kept the write-ahead log from being checkpointed after an erasure");
    });
}

/// Re-wraps every data key still wrapped by a rotated-out master key with the current one, in
/// the background; once done (logged), the old master key can be dropped from the
/// configuration.
pub fn rewrap_in_background(log: EventRepository) {
    tokio::spawn(async move {
        match switchboard_store::vault::seal_existing(&log).await {
            Ok(0) => {}
            Ok(sealed) => tracing::info!(
                sealed,
                "events written before the log was sealed are sealed"
            ),
            Err(error) => {
                tracing::error!(%error, "sealing earlier events failed; the next start resumes")
            }
        }
        match switchboard_store::vault::rewrap_all(log.database(), log.vault().master()).await {
            Ok(0) => {}
            Ok(rewrapped) => tracing::info!(
                rewrapped,
                master_key = log.vault().master().current_id(),
                "customer data keys re-wrapped with the current master key; earlier ones are no longer needed"
            ),
            Err(error) => tracing::error!(%error, "re-wrapping customer data keys failed"),
        }
    });
}
