//! The fetcher: downloads the files customers send while Meta still has them (its download
//! URLs live minutes, its media ids seven days), checks them and keeps them.
//!
//! Files to fetch are the `pending` rows of the `media_files` read model; each outcome is an
//! event on the message (`MessageMediaStored`, or `MessageMediaUnavailable` with the reason),
//! which the message records once however many fetchers race. Claims, attempts and backoff
//! are worker state (`media_fetches`), timed by the wall clock. Each attempt asks Meta for a
//! fresh URL; a URL that expired during the attempt is asked for again once.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use cqrs_es::AggregateError;
use sha2::{Digest, Sha256};
use switchboard_domain::message::{MediaOutcome, MessageCommand, MessageError};
use switchboard_projections::applied::wait_until_caught_up;
use switchboard_projections::{ProjectionError, StoppedProjections};
use switchboard_store::{with_pool, Database, EventRepository, SqlValue, Statement, StoreError};
use tokio::sync::watch;

use super::{MediaSettings, MediaStore};
use crate::auth::accounts::actor_metadata;
use crate::clock::wall_millis as wall_ms;
use crate::clock::Clock;
use crate::cqrs::Frameworks;
use crate::whatsapp::graph::{DownloadError, GraphClient, GraphError};

/// How long a claim hides a file from other fetchers.
const CLAIM_MS: i64 = 120_000;
/// Files claimed per pass.
const BATCH: i64 = 8;

const DUE: &str = "select m.id, m.meta_media_id, m.expected_sha256 from media_files m
    left join media_fetches f on f.media_id = m.id
    where m.status = 'pending' and m.meta_media_id is not null
      and (f.media_id is null or (f.available_at <= $1 and (f.claimed_until is null or f.claimed_until < $1)))
    order by m.received_at limit $2";
/// Claims a file still pending (a list read before its outcome was projected claims nothing).
const CLAIM: &str = "insert into media_fetches (media_id, attempts, available_at, claimed_until)
    select $1, 1, 0, $2 where exists
      (select 1 from media_files where id = $1 and status = 'pending')
    on conflict (media_id) do update set attempts = media_fetches.attempts + 1, claimed_until = $2
    where media_fetches.available_at <= $3
      and (media_fetches.claimed_until is null or media_fetches.claimed_until < $3)
    returning attempts";
const RETRY: &str = "update media_fetches set claimed_until = null, available_at = $1,
    last_error = $2 where media_id = $3";
/// Recorded: not to be claimed again, even before the read model shows the outcome.
const DONE: &str = "update media_fetches set claimed_until = null, available_at = $1
    where media_id = $2";
/// How long [`MediaFetcher::discard`] waits for the read models.
const CATCH_UP: Duration = Duration::from_secs(5);
/// Messages keeping the file of a checksum.
const KEPT: &str = "select count(*) from media_files where sha256 = $1 and status = 'stored'";
/// Rows of files the read model shows settled: no longer needed.
const FORGET: &str = "delete from media_fetches where media_id in
    (select id from media_files where status <> 'pending')";
/// `available_at` of a recorded file.
const NEVER: i64 = i64::MAX / 2;

/// What one attempt came to.
enum Attempt {
    Kept(MediaOutcome),
    /// Worth another try (Meta or the network failed), with the reason.
    Retry(String),
}

/// The media fetcher.
pub struct MediaFetcher {
    database: Database,
    log: EventRepository,
    stopped: StoppedProjections,
    frameworks: Frameworks,
    graph: GraphClient,
    store: MediaStore,
    clock: Arc<dyn Clock>,
    settings: MediaSettings,
}

impl MediaFetcher {
    /// A fetcher downloading through `graph` into `store`.
    pub fn new(
        log: EventRepository,
        stopped: StoppedProjections,
        frameworks: Frameworks,
        graph: GraphClient,
        store: MediaStore,
        clock: Arc<dyn Clock>,
        settings: MediaSettings,
    ) -> Self {
        Self {
            database: log.database().clone(),
            log,
            stopped,
            frameworks,
            graph,
            store,
            clock,
            settings,
        }
    }

    /// One pass over the files due; returns how many it claimed.
    ///
    /// # Errors
    /// Database failures.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = wall_ms();
        let due: Vec<(String, String, Option<String>)> = with_pool!(&self.database, pool =>
            sqlx::query_as(DUE).bind(now).bind(BATCH).fetch_all(pool).await?);
        if !due.is_empty() {
            // Only when there is work: an idle fetcher writes nothing.
            self.database
                .execute_atomically(&[Statement::new(FORGET, vec![])])
                .await?;
        }
        let mut claimed = 0;
        for (id, meta_id, expected) in due {
            // The time of this claim: earlier fetches of the pass took theirs.
            let now = wall_ms();
            let attempts: Option<i64> = with_pool!(&self.database, pool => sqlx::query_scalar(CLAIM)
                .bind(&id).bind(now + CLAIM_MS).bind(now).fetch_optional(pool).await?);
            let Some(attempts) = attempts else {
                continue;
            };
            claimed += 1;
            let attempt = self.fetch(&meta_id, expected.as_deref()).await;
            self.settle(&id, attempts, attempt).await?;
        }
        Ok(claimed)
    }

    async fn settle(&self, id: &str, attempts: i64, attempt: Attempt) -> Result<(), StoreError> {
        let outcome = match attempt {
            Attempt::Kept(outcome) => outcome,
            Attempt::Retry(reason) if attempts < i64::from(self.settings.max_attempts) => {
                tracing::warn!(media_id = %id, %reason, attempts, "media fetch failed; will retry");
                let delay = self.settings.retry_delay.as_millis() as i64;
                let backoff = delay.saturating_mul(1 << (attempts - 1).clamp(0, 16));
                return self
                    .database
                    .execute_atomically(&[Statement::new(
                        RETRY,
                        vec![
                            (wall_ms() + backoff).into(),
                            SqlValue::from(reason),
                            id.into(),
                        ],
                    )])
                    .await;
            }
            Attempt::Retry(reason) => MediaOutcome::Unavailable {
                reason: format!("fetch_failed: {reason} (after {attempts} attempts)"),
            },
        };
        let now = self.clock.now();
        let fetched = match &outcome {
            MediaOutcome::Stored { sha256, .. } => Some(sha256.clone()),
            MediaOutcome::Unavailable { .. } => None,
        };
        let command = MessageCommand::RecordMedia { outcome, at: now };
        let metadata = actor_metadata(None, now);
        match crate::cqrs::execute(&self.frameworks.messages, id, command, &metadata).await {
            Ok(()) => {}
            // Given up while it was being fetched (its customer erased): keep nothing.
            Err(AggregateError::UserError(MessageError::MediaNotKept)) => {
                if let Some(sha256) = fetched {
                    self.discard(&sha256).await?;
                }
            }
            Err(error) => {
                tracing::error!(media_id = %id, %error, "media outcome not recorded; will retry");
                return Ok(());
            }
        }
        self.database
            .execute_atomically(&[Statement::new(DONE, vec![NEVER.into(), id.into()])])
            .await
    }

    /// Deletes a fetched file no message is to keep, unless another message keeps the same
    /// bytes: asked of the read models once they have applied what was committed so far (a
    /// message of the erased customer with the same bytes deleted a moment ago must not count
    /// as keeping them, one of another customer stored a moment ago must). At their bound, the
    /// file is kept: a copy too many is safer than a file another message lost.
    async fn discard(&self, sha256: &str) -> Result<(), StoreError> {
        let caught_up = match wait_until_caught_up(&self.log, &self.stopped, CATCH_UP).await {
            Ok(caught_up) => caught_up,
            Err(ProjectionError::Store(error)) => return Err(error),
            Err(error) => {
                tracing::warn!(%error, "read models unreadable");
                false
            }
        };
        if !caught_up {
            tracing::warn!(%sha256, "read models behind; a file fetched for an erased message is kept");
            return Ok(());
        }
        let held: i64 = with_pool!(&self.database, pool => sqlx::query_scalar(KEPT)
            .bind(sha256).fetch_one(pool).await?);
        if held == 0 {
            if let Err(error) = self.store.delete(sha256).await {
                tracing::warn!(%sha256, %error, "a file fetched for an erased message was not deleted");
            }
        }
        Ok(())
    }

    /// Asks Meta where the file is, downloads, checks and keeps it.
    async fn fetch(&self, meta_id: &str, expected: Option<&str>) -> Attempt {
        let unavailable = |reason: String| Attempt::Kept(MediaOutcome::Unavailable { reason });
        let mut refreshed = false;
        loop {
            let location = match self.graph.media_location(meta_id).await {
                Ok(location) => location,
                // Only "no such object" is final; throttling, an expired token or a
                // transient code is tried again.
                Err(GraphError::Refused { status, error, .. })
                    if !crate::whatsapp::graph::is_retryable(status, error.code) =>
                {
                    return unavailable(format!(
                        "gone_at_meta: {} ({})",
                        error.message.unwrap_or_default(),
                        error.code
                    ));
                }
                Err(error) => return Attempt::Retry(error.to_string()),
            };
            if location
                .file_size
                .is_some_and(|n| n > self.settings.max_bytes)
            {
                return unavailable(self.too_large());
            }
            let bytes = match self
                .graph
                .download(&location.url, self.settings.max_bytes)
                .await
            {
                Ok(bytes) => bytes,
                // The URL expired meanwhile: one fresh URL per attempt.
                Err(DownloadError::Status(401 | 403 | 404)) if !refreshed => {
                    refreshed = true;
                    continue;
                }
                Err(DownloadError::TooLarge) => return unavailable(self.too_large()),
                Err(error) => return Attempt::Retry(error.to_string()),
            };
            let digest = Sha256::digest(&bytes);
            let hex = hex::encode(digest);
            let said = location.sha256.as_deref().or(expected);
            if let Some(said) = said.filter(|s| !matches_digest(s, &hex, &digest)) {
                return unavailable(format!(
                    "checksum_mismatch: Meta gave {said}, the file hashes to {hex}"
                ));
            }
            if let Some(size) = location.file_size.filter(|n| *n != bytes.len() as u64) {
                return unavailable(format!(
                    "size_mismatch: Meta gave {size} bytes, the file has {}",
                    bytes.len()
                ));
            }
            let size = bytes.len() as u64;
            if let Err(error) = self.store.put(&hex, Bytes::from(bytes)).await {
                return Attempt::Retry(format!("storage: {error}"));
            }
            return Attempt::Kept(MediaOutcome::Stored {
                sha256: hex,
                size,
                mime_type: location
                    .mime_type
                    .unwrap_or_else(|| "application/octet-stream".to_owned()),
            });
        }
    }

    fn too_large(&self) -> String {
        format!(
            "too_large: over the limit of {} bytes",
            self.settings.max_bytes
        )
    }

    /// Runs until `shutdown` fires.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        loop {
            let busy = match self.run_once().await {
                Ok(claimed) => claimed > 0,
                Err(error) => {
                    tracing::error!(%error, "media fetch pass failed");
                    false
                }
            };
            let pause = if busy {
                Duration::ZERO
            } else {
                self.settings.fetch_interval
            };
            tokio::select! {
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// Whether Meta's checksum (hex or base64: samples show both) is this digest.
fn matches_digest(said: &str, hex: &str, digest: &[u8]) -> bool {
    let said = said.trim();
    said.eq_ignore_ascii_case(hex)
        || said == base64::engine::general_purpose::STANDARD.encode(digest)
        || said == base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(digest)
        || said == base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    #[test]
    fn checksums_in_hex_or_base64_match() {
        let digest = Sha256::digest(b"photo");
        let hex = hex::encode(digest);
        assert!(super::matches_digest(&hex.to_uppercase(), &hex, &digest));
        let b64 = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, digest);
        assert!(super::matches_digest(&b64, &hex, &digest));
        assert!(!super::matches_digest("deadbeef", &hex, &digest));
    }
}
