//! Retention of raw webhooks: a processed webhook's body is kept for a while (so that
//! `switchboard-replay reprocess` can apply it again), then deleted with its attempts. The body
//! holds the customer's personal data, and once processed everything in it is in the event
//! log, so keeping it for ever only multiplies what a data-protection request must find.
//!
//! The inbox is worker state, not a read model: deleting from it records no event. Webhooks
//! still pending and dead letters (`failed`, waiting for an operator) are never deleted here.

use std::sync::Arc;
use std::time::Duration;

use switchboard_store::{with_pool, Database, StoreError};
use tokio::sync::watch;

use crate::clock::Clock;

/// Webhooks deleted per transaction.
const BATCH: i64 = 1_000;

const ATTEMPTS: &str = "delete from webhook_attempts where webhook_id in
    (select id from raw_webhooks where status = 'processed' and processed_at < $1
      order by processed_at limit $2)";
const WEBHOOKS: &str = "delete from raw_webhooks where id in
    (select id from raw_webhooks where status = 'processed' and processed_at < $1
      order by processed_at limit $2)";

/// The raw-webhook retention worker.
pub struct RawWebhookRetention {
    database: Database,
    clock: Arc<dyn Clock>,
    keep: Duration,
}

impl RawWebhookRetention {
    /// Deletes webhooks processed more than `keep` ago.
    pub fn new(database: Database, clock: Arc<dyn Clock>, keep: Duration) -> Self {
        Self {
            database,
            clock,
            keep,
        }
    }

    /// One pass over everything due; returns how many webhooks it deleted.
    ///
    /// # Errors
    /// Database failures.
    pub async fn run_once(&self) -> Result<u64, StoreError> {
        let keep = i64::try_from(self.keep.as_millis()).unwrap_or(i64::MAX);
        let before = self.clock.now().unix_millis().saturating_sub(keep);
        let mut deleted = 0;
        loop {
            let batch = with_pool!(&self.database, pool => {
                let mut tx = pool.begin().await?;
                sqlx::query(ATTEMPTS).bind(before).bind(BATCH).execute(&mut *tx).await?;
                let gone = sqlx::query(WEBHOOKS).bind(before).bind(BATCH)
                    .execute(&mut *tx).await?.rows_affected();
                tx.commit().await?;
                gone
            });
            deleted += batch;
            if batch < BATCH.unsigned_abs() {
                return Ok(deleted);
            }
        }
    }

    /// Runs until `shutdown` fires, a pass every `every`.
    pub async fn run(self, every: Duration, mut shutdown: watch::Receiver<bool>) {
        loop {
            match self.run_once().await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "raw webhooks past retention deleted"),
                Err(error) => tracing::error!(%error, "raw webhook retention pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}
