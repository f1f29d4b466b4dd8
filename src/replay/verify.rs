//! Checks the log and the read models: sequences contiguous per aggregate, every event
//! readable, and every read model equal to a fresh replay of the log.

use serde::Serialize;
use switchboard_projections::rebuild::{TableDifference, VERIFY_SUFFIX};
use switchboard_projections::{all_projections, DecodedEvent, Rebuild};
use switchboard_store::{with_pool, EventRepository, LogCursor};

use crate::replay::ReplayError;

/// What `verify` found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct Verification {
    /// Events read.
    pub events: u64,
    /// Aggregates whose sequences have gaps or do not start at 1.
    pub broken_sequences: Vec<String>,
    /// Events that do not deserialize (position and error).
    pub unreadable: Vec<String>,
    /// Read-model tables that differ from a fresh replay.
    pub differences: Vec<TableDifference>,
}

impl Verification {
    /// Whether everything checked out.
    pub fn ok(&self) -> bool {
        self.broken_sequences.is_empty()
            && self.unreadable.is_empty()
            && self.differences.is_empty()
    }
}

/// Runs every check.
///
/// # Errors
/// Database failures (a finding is not an error: it is in the report).
pub async fn verify(log: &EventRepository) -> Result<Verification, ReplayError> {
    let mut report = Verification::default();
    let broken: Vec<(String, String)> = with_pool!(log.database(), pool => sqlx::query_as(
        "select aggregate_type, aggregate_id from events group by aggregate_type, aggregate_id
         having min(sequence) <> 1 or max(sequence) <> count(*)")
        .fetch_all(pool).await.map_err(switchboard_store::StoreError::from)?);
    report.broken_sequences = broken
        .into_iter()
        .map(|(t, id)| format!("{t} {id}"))
        .collect();

    let mut cursor = LogCursor::START;
    loop {
        let page = log.read_all(cursor, 5_000).await?;
        let Some(last) = page.last().map(|e| e.cursor) else {
            break;
        };
        for event in &page {
            if let Err(error) = DecodedEvent::decode(event) {
                report
                    .unreadable
                    .push(format!("{}: {error}", event.position));
            }
        }
        report.events += page.len() as u64;
        cursor = last;
    }

    // Replay into shadow tables up to where the live read models are, then compare. The live
    // runner may move on meanwhile: then replay further and compare again.
    let replay = Rebuild::new(log.clone(), all_projections(), VERIFY_SUFFIX);
    replay.discard().await?;
    replay.prepare().await?;
    for _ in 0..10 {
        let live = replay.live_checkpoint().await?;
        replay.catch_up(live).await?;
        let differences = replay.differences().await?;
        if replay.live_checkpoint().await? == live {
            report.differences = differences;
            break;
        }
    }
    replay.discard().await?;
    Ok(report)
}
