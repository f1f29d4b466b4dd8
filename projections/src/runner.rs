//! Applies projections to the log: the same loop live (tailing) and in a rebuild (from zero).

use std::collections::HashMap;
use std::time::Duration;

use switchboard_store::{error_chain, with_pool, EventRepository, LogCursor, SqlValue, Statement};
use tokio::sync::watch;

use crate::{DecodedEvent, Projection, ProjectionError};

/// Takes a checkpoint that did not exist yet (changes nothing if another runner did first).
const CREATE_CHECKPOINT: &str = "
insert into projection_checkpoints (name, transaction_id, position) values ($1, $2, $3)
on conflict (name) do nothing";

/// Moves a checkpoint, only from where this runner read it.
const ADVANCE_CHECKPOINT: &str = "
update projection_checkpoints set transaction_id = $1, position = $2
 where name = $3 and transaction_id = $4 and position = $5";

/// Tails the event log and keeps every read model up to date.
///
/// Each batch of events and the projections' checkpoints are written in one transaction, and
/// the checkpoints only move from where this runner read them: when several server instances
/// run a runner on one database, a batch is applied by exactly one of them.
pub struct ProjectionRunner {
    log: EventRepository,
    projections: Vec<Box<dyn Projection>>,
    batch_size: u32,
    /// Where the statements go: the live tables, or shadow copies named `<table><suffix>`
    /// (with checkpoints named `<projection><suffix>`).
    suffix: &'static str,
    /// Stop after this cursor (verification compares up to a fixed point).
    until: Option<LogCursor>,
    /// How often to look for events appended by other processes (PostgreSQL) or held back by a
    /// transaction still in flight.
    poll_interval: Duration,
}

impl ProjectionRunner {
    /// A runner for `projections` over `log`.
    pub fn new(log: EventRepository, projections: Vec<Box<dyn Projection>>) -> Self {
        Self {
            log,
            projections,
            batch_size: 500,
            poll_interval: Duration::from_millis(200),
            suffix: "",
            until: None,
        }
    }

    /// Writes into shadow tables `<table><suffix>` with checkpoints `<projection><suffix>`
    /// instead of the live ones: the same projection code, for rebuilds and verification.
    pub fn into_shadow(mut self, suffix: &'static str) -> Self {
        self.suffix = suffix;
        self
    }

    /// Stops catching up after `cursor`.
    pub fn until(mut self, cursor: Option<LogCursor>) -> Self {
        self.until = cursor;
        self
    }

    fn checkpoint_name(&self, projection: &dyn Projection) -> String {
        format!("{}{}", projection.name(), self.suffix)
    }

    /// Sets the number of events applied per transaction.
    pub fn with_batch_size(mut self, batch_size: u32) -> Self {
        self.batch_size = batch_size.max(1);
        self
    }

    async fn checkpoints(&self) -> Result<HashMap<String, LogCursor>, ProjectionError> {
        let sql = "select name, transaction_id, position from projection_checkpoints";
        let rows: Vec<(String, i64, i64)> =
            with_pool!(self.log.database(), pool => sqlx::query_as(sql).fetch_all(pool).await?);
        Ok(rows
            .into_iter()
            .map(|(name, transaction_id, position)| {
                let cursor = LogCursor {
                    transaction_id: u64::try_from(transaction_id).unwrap_or(0),
                    position,
                };
                (name, cursor)
            })
            .collect())
    }

    /// Applies every event not yet applied; returns how many events were read.
    ///
    /// # Errors
    /// When the database fails or an event does not decode (the runner stops there, so the
    /// checkpoint never passes an event it did not apply).
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let mut total = 0;
        'reload: loop {
            let mut checkpoints = self.checkpoints().await?;
            let names: Vec<String> = self
                .projections
                .iter()
                .map(|p| self.checkpoint_name(p.as_ref()))
                .collect();
            let retarget: Vec<(&str, String)> = if self.suffix.is_empty() {
                Vec::new()
            } else {
                self.projections
                    .iter()
                    .flat_map(|p| {
                        p.tables()
                            .iter()
                            .map(|t| (*t, format!("{t}{}", self.suffix)))
                    })
                    .collect()
            };
            let mut from = names
                .iter()
                .map(|name| checkpoints.get(name).copied().unwrap_or(LogCursor::START))
                .min()
                .unwrap_or(LogCursor::START);
            loop {
                let mut events = self.log.read_all(from, self.batch_size).await?;
                if let Some(until) = self.until {
                    events.retain(|e| e.cursor <= until);
                }
                let Some(last) = events.last().map(|e| e.cursor) else {
                    return Ok(total);
                };
                let mut statements = Vec::with_capacity(events.len() * 2);
                let mut received = 0u64;
                for event in &events {
                    let decoded = DecodedEvent::decode(event)?;
                    if event.event_type == "MessageInboundReceived" {
                        received += 1;
                    }
                    for (projection, name) in self.projections.iter().zip(&names) {
                        let applied = checkpoints.get(name).copied();
                        if applied.is_none_or(|cursor| event.cursor > cursor) {
                            projection.apply(event, &decoded, &mut statements);
                        }
                    }
                }
                if !retarget.is_empty() {
                    statements = statements.iter().map(|s| s.retarget(&retarget)).collect();
                }
                let guards: Vec<Statement> = names
                    .iter()
                    .map(|name| checkpoint_guard(name, checkpoints.get(name).copied(), last))
                    .collect();
                if !self
                    .log
                    .database()
                    .execute_guarded(&guards, &statements)
                    .await?
                {
                    // Another instance applied this batch first: start again from its checkpoints.
                    continue 'reload;
                }
                for name in &names {
                    checkpoints.insert(name.clone(), last);
                }
                // Counted here, where each event is applied exactly once across instances.
                if self.suffix.is_empty() {
                    metrics::counter!("messages_received_total").increment(received);
                }
                total += events.len() as u64;
                from = last;
            }
        }
    }

    /// Runs until `shutdown` fires: catches up, then waits for new events.
    ///
    /// Failures are logged and retried after a pause; they never stop the loop, and the lag
    /// they cause is visible in the read models' checkpoints.
    /// `heartbeat` is called on every turn of the loop (health checks watch it).
    pub async fn run(self, mut shutdown: watch::Receiver<bool>, heartbeat: impl Fn() + Send) {
        let mut appended = self.log.appended();
        let mut backoff = self.poll_interval;
        loop {
            heartbeat();
            match self.catch_up().await {
                Ok(_) => backoff = self.poll_interval,
                Err(error) => {
                    tracing::error!(error = %error_chain(&error), "projection batch failed; retrying");
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                }
            }
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(backoff) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

fn cursor_args(cursor: LogCursor) -> [SqlValue; 2] {
    [
        i64::try_from(cursor.transaction_id)
            .unwrap_or(i64::MAX)
            .into(),
        cursor.position.into(),
    ]
}

/// The compare-and-set that moves a projection's checkpoint from `read` to `to`.
fn checkpoint_guard(name: &str, read: Option<LogCursor>, to: LogCursor) -> Statement {
    let [to_tx, to_position] = cursor_args(to);
    match read {
        None => Statement::new(CREATE_CHECKPOINT, vec![name.into(), to_tx, to_position]),
        Some(read) => {
            let [read_tx, read_position] = cursor_args(read);
            Statement::new(
                ADVANCE_CHECKPOINT,
                vec![to_tx, to_position, name.into(), read_tx, read_position],
            )
        }
    }
}
