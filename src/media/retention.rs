//! Retention: files kept longer than the configured period are deleted, each deletion an event
//! on its message or upload (`MessageMediaDeleted`, `UploadDeleted`); the messages keep their
//! content and the read model says the file is gone (`deleted`).
//!
//! A file kept once for several messages is deleted from storage when none of them still
//! holds it. One window remains: a message whose copy of the file was fetched in the moment
//! between that check and the deletion finds it gone (served as unavailable).

use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::message::MessageCommand;
use switchboard_domain::upload::UploadCommand;
use switchboard_store::{with_pool, Database, EventRepository, StoreError};
use tokio::sync::watch;

use super::MediaStore;
use crate::auth::accounts::actor_metadata;
use crate::clock::Clock;
use crate::cqrs::Frameworks;

/// Files looked at per pass.
const BATCH: i64 = 200;

const EXPIRED: &str = "select id, uploaded_by is not null, sha256 from media_files
    where status = 'stored' and received_at < $1 order by received_at limit $2";
const STILL_HELD: &str = "select count(*) from media_files
    where sha256 = $1 and status = 'stored' and received_at >= $2";

/// The retention worker.
pub struct Retention {
    database: Database,
    frameworks: Frameworks,
    store: MediaStore,
    clock: Arc<dyn Clock>,
    keep: Duration,
}

impl Retention {
    /// Deletes files older than `keep` from `store`.
    pub fn new(
        database: Database,
        frameworks: Frameworks,
        store: MediaStore,
        clock: Arc<dyn Clock>,
        keep: Duration,
    ) -> Self {
        Self {
            database,
            frameworks,
            store,
            clock,
            keep,
        }
    }

    /// One pass; returns how many files it deleted.
    ///
    /// # Errors
    /// Database failures.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let before = now.unix_millis() - i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX);
        let expired: Vec<(String, bool, Option<String>)> = with_pool!(&self.database, pool =>
            sqlx::query_as(EXPIRED).bind(before).bind(BATCH).fetch_all(pool).await?);
        let metadata = actor_metadata(None, now);
        let mut deleted = 0;
        for (id, upload, sha256) in expired {
            let reason = "retention".to_owned();
            let recorded = if upload {
                let command = UploadCommand::Forget { reason, at: now };
                crate::cqrs::execute(&self.frameworks.uploads, &id, command, &metadata)
                    .await
                    .map_err(|e| e.to_string())
            } else {
                let command = MessageCommand::ForgetMedia { reason, at: now };
                crate::cqrs::execute(&self.frameworks.messages, &id, command, &metadata)
                    .await
                    .map_err(|e| e.to_string())
            };
            if let Err(error) = recorded {
                tracing::warn!(media_id = %id, %error, "retention not recorded");
                continue;
            }
            deleted += 1;
            let Some(sha256) = sha256 else { continue };
            let held: i64 = with_pool!(&self.database, pool => sqlx::query_scalar(STILL_HELD)
                .bind(&sha256).bind(before).fetch_one(pool).await?);
            if held == 0 {
                if let Err(error) = self.store.delete(&sha256).await {
                    tracing::warn!(%sha256, %error, "file not deleted; the next pass retries");
                }
            }
        }
        Ok(deleted)
    }

    /// Runs until `shutdown` fires, a pass a minute.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.run_once().await {
                tracing::error!(%error, "retention pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

const OF_CONVERSATION: &str = "select id, sha256 from media_files
    where conversation_id = $1 and status in ('stored', 'pending')";
const HELD_ELSEWHERE: &str = "select count(*) from media_files
    where sha256 = $1 and status = 'stored' and (conversation_id is null or conversation_id <> $2)";

/// An erasure request's files: every stored file of `conversation` is recorded deleted on its
/// message (`MessageMediaDeleted`, reason `erased`) and removed from storage, unless a message
/// of another conversation holds the same bytes; every file not yet fetched is given up
/// (`MessageMediaUnavailable`, reason `erased`: a fetch in flight then keeps nothing, see
/// [`crate::media::fetch`]). Returns how many.
///
/// # Errors
/// Database failures; a record that fails or a file storage cannot delete is logged and left.
pub async fn forget_conversation(
    log: &EventRepository,
    frameworks: &Frameworks,
    store: &MediaStore,
    conversation: &str,
    now: switchboard_domain::Timestamp,
) -> Result<usize, StoreError> {
    let database = log.database();
    let files: Vec<(String, Option<String>)> = with_pool!(database, pool =>
        sqlx::query_as(OF_CONVERSATION).bind(conversation).fetch_all(pool).await?);
    let metadata = actor_metadata(None, now);
    for (id, sha256) in &files {
        let command = MessageCommand::ForgetMedia {
            reason: "erased".to_owned(),
            at: now,
        };
        let recorded = crate::cqrs::execute(&frameworks.messages, id, command, &metadata).await;
        if let Err(error) = recorded {
            tracing::warn!(media_id = %id, %error, "an erased customer's file was not recorded deleted");
            continue;
        }
        // A row still pending may be a file stored a moment ago: the log knows.
        let sha256 = match sha256 {
            Some(sha256) => Some(sha256.clone()),
            None => stored_checksum(log, id).await?,
        };
        let Some(sha256) = sha256 else { continue };
        let held: i64 = with_pool!(database, pool => sqlx::query_scalar(HELD_ELSEWHERE)
            .bind(&sha256).bind(conversation).fetch_one(pool).await?);
        if held == 0 {
            if let Err(error) = store.delete(&sha256).await {
                tracing::warn!(%sha256, %error, "an erased customer's file was not deleted");
            }
        }
    }
    Ok(files.len())
}

/// The checksum of the file message `id` recorded as stored, if it did (`MessageMediaStored`
/// carries no personal data: it stays readable after an erasure).
async fn stored_checksum(log: &EventRepository, id: &str) -> Result<Option<String>, StoreError> {
    let events = log.events_of("Message", &[id]).await?;
    Ok(events
        .iter()
        .rev()
        .filter(|event| event.event_type == "MessageMediaStored")
        .find_map(|event| {
            let sha256 = event.payload.get("MediaStored")?.get("sha256")?.as_str()?;
            Some(sha256.to_owned())
        }))
}
