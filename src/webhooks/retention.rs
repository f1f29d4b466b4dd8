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

const DUE: &str = "select id from raw_webhooks where status = 'processed' and processed_at < $1
    order by processed_at, id limit $2";

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
            let ids: Vec<i64> = with_pool!(&self.database, pool => sqlx::query_scalar(DUE)
                .bind(before).bind(BATCH).fetch_all(pool).await?);
            let batch = delete(&self.database, &ids).await?;
            deleted += batch;
            if ids.len() < BATCH.unsigned_abs() as usize {
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

/// Deletes the webhooks `ids` that are still processed (not sent back to pending by a
/// reprocess meanwhile), with their attempts; returns how many.
async fn delete(database: &Database, ids: &[i64]) -> Result<u64, StoreError> {
    if ids.is_empty() {
        return Ok(0);
    }
    // Integers from our own query, as an `in` list: the same text on both backends.
    let list = ids
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    let webhooks =
        format!("delete from raw_webhooks where status = 'processed' and id in ({list})");
    let attempts = format!(
        "delete from webhook_attempts where webhook_id in ({list})
          and webhook_id not in (select id from raw_webhooks)"
    );
    Ok(with_pool!(database, pool => {
        let mut tx = pool.begin().await?;
        let gone = sqlx::query(&webhooks).execute(&mut *tx).await?.rows_affected();
        sqlx::query(&attempts).execute(&mut *tx).await?;
        tx.commit().await?;
        gone
    }))
}

/// Deletes the processed and dead-lettered webhooks whose body names `customer` (an erasure
/// request), with their attempts; returns how many. Pending ones are left to be processed.
///
/// # Errors
/// Database failures.
pub async fn forget_customer(database: &Database, customer: &str) -> Result<u64, StoreError> {
    let (attempts, webhooks) = match database {
        Database::Postgres(_) => (
            "delete from webhook_attempts where webhook_id in (select id from raw_webhooks
              where status <> 'pending' and position($1::bytea in body) > 0)",
            "delete from raw_webhooks where status <> 'pending' and position($1::bytea in body) > 0",
        ),
        Database::Sqlite(_) => (
            "delete from webhook_attempts where webhook_id in (select id from raw_webhooks
              where status <> 'pending' and instr(body, $1) > 0)",
            "delete from raw_webhooks where status <> 'pending' and instr(body, $1) > 0",
        ),
    };
    let needle = customer.as_bytes().to_vec();
    Ok(with_pool!(database, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(attempts).bind(&needle).execute(&mut *tx).await?;
        let gone = sqlx::query(webhooks).bind(&needle).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        gone
    }))
}
