//! Runs stored raw webhooks through the current parser again (after a parser fix). Idempotent:
//! what already produced events produces none, so running it twice changes nothing.

use std::sync::Arc;

use switchboard_store::{with_pool, EventRepository, StoreError};

use crate::clock::Clock;
use crate::config::WorkerSettings;
use crate::cqrs::Frameworks;
use crate::replay::ReplayError;
use crate::webhooks::processor::WebhookProcessor;

/// Which stored webhooks to run again.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only those received at or after this time (Unix milliseconds).
    pub since_ms: Option<i64>,
    /// Only dead-lettered ones.
    pub failed_only: bool,
}

/// Queues the selected webhooks again and processes them here; returns how many were queued.
///
/// # Errors
/// Database failures.
pub async fn reprocess(
    log: &EventRepository,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    selection: &Selection,
    extra_fields: Vec<String>,
) -> Result<u64, ReplayError> {
    let sql = "update raw_webhooks set status = 'pending', attempts = 0, claimed_until = null,
               claim_token = null, dead_lettered_at = null
               where status <> 'pending' and received_at >= $1 and ($2 = 0 or status = 'failed')";
    let queued = with_pool!(log.database(), pool => sqlx::query(sql)
        .bind(selection.since_ms.unwrap_or(i64::MIN))
        .bind(i64::from(selection.failed_only))
        .execute(pool).await.map_err(StoreError::from)?.rows_affected());
    let processor = WebhookProcessor::new(
        log.clone(),
        frameworks,
        clock,
        WorkerSettings::default(),
        extra_fields,
    );
    processor.drain().await?;
    Ok(queued)
}
