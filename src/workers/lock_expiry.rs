//! Records lapsed locks (`LockExpired`) and wakes snoozed conversations whose time has come.
//!
//! Locks are free at their expiry whether or not this worker has run (the aggregate decides
//! from `now`); the worker only makes the lapse visible in the log and on dashboards. Several
//! instances may run it at once: the commands are no-ops when there is nothing to record, and
//! concurrent attempts are settled by the aggregate's version.

use std::sync::Arc;
use std::time::Duration;

use switchboard_domain::conversation::ConversationCommand;
use switchboard_projections::conversations;
use switchboard_store::Database;
use tokio::sync::watch;

use crate::auth::accounts::actor_metadata;
use crate::clock::Clock;
use crate::cqrs::Frameworks;
use crate::telemetry::error_chain;
use crate::workers::health::{Worker, WorkerHealth};

/// The expiry worker.
pub struct LockExpiry {
    database: Database,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    interval: Duration,
}

impl LockExpiry {
    /// A worker looking every `interval`.
    pub fn new(
        database: Database,
        frameworks: Frameworks,
        clock: Arc<dyn Clock>,
        interval: Duration,
    ) -> Self {
        Self {
            database,
            frameworks,
            clock,
            interval,
        }
    }

    /// One pass: every conversation due now; returns how many were looked at.
    ///
    /// # Errors
    /// When the read model cannot be queried.
    pub async fn run_once(&self) -> Result<usize, switchboard_projections::ProjectionError> {
        let now = self.clock.now();
        let due = conversations::due(&self.database, now.unix_millis(), 500).await?;
        let metadata = actor_metadata(None, now);
        for id in &due {
            for command in [
                ConversationCommand::ExpireLock { at: now },
                ConversationCommand::WakeUp { at: now },
            ] {
                let executed = self
                    .frameworks
                    .conversations
                    .execute(id, command, &metadata)
                    .await;
                if let Err(error) = executed {
                    tracing::warn!(conversation_id = %id, %error, "expiry command failed");
                }
            }
        }
        Ok(due.len())
    }

    /// Runs until `shutdown` fires.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, health: Arc<WorkerHealth>) {
        loop {
            health.beat(Worker::LockExpiry);
            if let Err(error) = self.run_once().await {
                tracing::error!(error = %error_chain(&error), "lock expiry pass failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(self.interval) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}
