//! Applies projections to the log: the same loop live (tailing) and in a rebuild (from zero).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard_domain::message::MessageEvent;
use switchboard_store::{
    error_chain, with_pool, EventRepository, LogCursor, RecordedEvent, SqlValue, Statement,
};
use tokio::sync::watch;

use crate::{DecodedEvent, Projection, ProjectionError, Stopped, StoppedProjections};

/// Histogram: from Meta's timestamp of a customer message to its event in the log (seconds;
/// Meta's timestamps have whole seconds).
pub const INBOUND_DELAY: &str = "switchboard_inbound_delay_seconds";

/// How often projections stopped by an event they cannot decode are tried again.
const RETRY_STOPPED: Duration = Duration::from_secs(2);

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
    /// Projections stopped by an event they cannot decode (live runs only).
    stopped: StoppedProjections,
    /// When stopped projections are next tried again.
    retry_stopped_at: Mutex<Instant>,
    /// Told after each batch how many events it read (progress bars).
    progress: Option<Progress>,
}

/// A callback told after each batch how many events it read.
pub type Progress = std::sync::Arc<dyn Fn(u64) + Send + Sync>;

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
            stopped: StoppedProjections::default(),
            retry_stopped_at: Mutex::new(Instant::now()),
            progress: None,
        }
    }

    /// Tells `progress` after each batch how many events it read.
    pub fn with_progress(mut self, progress: Option<Progress>) -> Self {
        self.progress = progress;
        self
    }

    /// Reports stopped projections to `stopped` (health checks read it).
    pub fn reporting_to(mut self, stopped: StoppedProjections) -> Self {
        self.stopped = stopped;
        self
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
        checkpoints(self.log.database()).await
    }

    /// Applies every event not yet applied; returns how many events were read.
    ///
    /// Live, an event a projection cannot decode stops that projection (and every other that
    /// reads its aggregate type) just before it, visibly ([`StoppedProjections`]); the others go
    /// on. Stopped projections are tried again every few seconds, so a fix (a new upcaster,
    /// new code) lets them catch up from where they stopped. In a rebuild or a verification
    /// such an event is an error: a read model built without it would be wrong.
    ///
    /// # Errors
    /// When the database fails, or (rebuild, verification) an event does not decode.
    pub async fn catch_up(&self) -> Result<u64, ProjectionError> {
        let isolate = self.suffix.is_empty() && self.until.is_none();
        let mut retry_stopped = self.time_to_retry_stopped();
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
        let mut retargeted = Retargeted::default();
        let mut total = 0;
        'reload: loop {
            let mut checkpoints = self.checkpoints().await?;
            let mut active: Vec<bool> = names
                .iter()
                .map(|name| retry_stopped || !self.stopped.contains(name))
                .collect();
            let stopped_at: Vec<Option<i64>> = names
                .iter()
                .map(|name| self.stopped.position(name))
                .collect();
            // Stopped projections tried again read the database: what stopped them may have
            // been fixed there, and the events shared with the fan-out are as first read.
            let shared_reads =
                isolate && !(retry_stopped && names.iter().any(|n| self.stopped.contains(n)));
            retry_stopped = false;
            // One batch is written while the next is read and built: the log does not depend
            // on the read models, and a batch's checkpoints are where it will leave them if it
            // commits (if it does not, the next one's guards fail with it). Serially, a rebuild
            // spent a third of its time with the database and the runner each waiting for the
            // other.
            let mut in_flight: Option<InFlight> = None;
            loop {
                let from = names
                    .iter()
                    .zip(&active)
                    .filter(|(_, active)| **active)
                    .map(|(name, _)| checkpoints.get(name).copied().unwrap_or(LogCursor::START))
                    .min();
                let mut events = match from {
                    // Live, the socket fan-out reads the same events: read once for both.
                    Some(from) if shared_reads => {
                        self.log.read_recent(from, self.batch_size).await?
                    }
                    Some(from) => self
                        .log
                        .read_all(from, self.batch_size)
                        .await?
                        .into_iter()
                        .map(std::sync::Arc::new)
                        .collect(),
                    None => Vec::new(),
                };
                if let Some(until) = self.until {
                    events.retain(|e| e.cursor <= until);
                }
                if events.is_empty() {
                    if !self.finish(in_flight.take(), &names, &mut total).await? {
                        continue 'reload;
                    }
                    return Ok(total);
                }
                let mut batch = Batch::new(&names, &checkpoints);
                let mut inbound_delays = Vec::new();
                for event in &events {
                    let decoded = match DecodedEvent::decode(event) {
                        Ok(decoded) => Ok(decoded),
                        Err(error) if isolate => Err(error),
                        Err(error) => return Err(error),
                    };
                    if let Ok(DecodedEvent::Message(MessageEvent::InboundReceived {
                        sent_at,
                        ..
                    })) = &decoded
                    {
                        let delay_ms = event.recorded_at_ms - sent_at.unix_millis();
                        inbound_delays.push(delay_ms.max(0) as f64 / 1000.0);
                    }
                    for (i, projection) in self.projections.iter().enumerate() {
                        if active[i] {
                            batch.apply(i, projection.as_ref(), event, &decoded, stopped_at[i]);
                        }
                    }
                }
                let mut statements = batch.statements;
                if !retarget.is_empty() {
                    statements = statements
                        .into_iter()
                        .map(|s| retargeted.rewrite(s, &retarget))
                        .collect();
                }
                // Folded into multi-row statements where that cannot change the result.
                let statements = switchboard_store::coalesce::coalesce(statements);
                let mut guards = Vec::new();
                for (i, name) in names.iter().enumerate() {
                    if !active[i] {
                        continue;
                    }
                    if let Some(target) = batch.targets[i] {
                        guards.push(checkpoint_guard(
                            name,
                            checkpoints.get(name).copied(),
                            target,
                        ));
                        checkpoints.insert(name.clone(), target);
                    }
                    active[i] = batch.halted[i].is_none();
                }
                let previous = in_flight.take();
                if !self.finish(previous, &names, &mut total).await? {
                    continue 'reload;
                }
                let database = self.log.database().clone();
                in_flight = Some(InFlight {
                    write: tokio::spawn(async move {
                        database.execute_guarded(&guards, &statements).await
                    }),
                    halted: batch.halted,
                    passed: batch.passed,
                    events: events.len() as u64,
                    received: events
                        .iter()
                        .filter(|e| e.event_type == "MessageInboundReceived")
                        .count() as u64,
                    inbound_delays,
                });
            }
        }
    }

    /// Waits for the batch in flight, if any, and records what it did once it committed;
    /// `false` when another instance applied it first (start again from its checkpoints).
    async fn finish(
        &self,
        in_flight: Option<InFlight>,
        names: &[String],
        total: &mut u64,
    ) -> Result<bool, ProjectionError> {
        let Some(batch) = in_flight else {
            return Ok(true);
        };
        if !batch.write.await?? {
            return Ok(false);
        }
        for ((name, halted), passed) in names.iter().zip(batch.halted).zip(batch.passed) {
            if let Some(stopped) = halted {
                self.stopped.stop(stopped);
            } else if passed {
                self.stopped.resume(name);
            }
        }
        // Counted here, where each event is applied exactly once across instances.
        if self.suffix.is_empty() {
            metrics::counter!("switchboard_messages_received_total").increment(batch.received);
            let delay = metrics::histogram!(INBOUND_DELAY);
            batch.inbound_delays.iter().for_each(|d| delay.record(*d));
        }
        *total += batch.events;
        if let Some(progress) = &self.progress {
            progress(batch.events);
        }
        Ok(true)
    }

    /// Whether stopped projections are due another try (every [`RETRY_STOPPED`]).
    fn time_to_retry_stopped(&self) -> bool {
        let mut next = self
            .retry_stopped_at
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        if now < *next {
            return false;
        }
        *next = now + RETRY_STOPPED;
        true
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

/// A batch being written, and what to record once it commits.
struct InFlight {
    write: tokio::task::JoinHandle<Result<bool, switchboard_store::StoreError>>,
    halted: Vec<Option<Stopped>>,
    passed: Vec<bool>,
    events: u64,
    received: u64,
    inbound_delays: Vec<f64>,
}

/// One batch's work per projection: the statements, how far each projection got, and which
/// stopped at an event they cannot decode.
struct Batch {
    statements: Vec<Statement>,
    /// The cursor each projection's checkpoint moves to (`None`: it has none and applied none).
    targets: Vec<Option<LogCursor>>,
    /// Projections that met an event they cannot decode, and where.
    halted: Vec<Option<Stopped>>,
    /// Projections that applied the event they had stopped at before.
    passed: Vec<bool>,
}

impl Batch {
    fn new(names: &[String], checkpoints: &HashMap<String, LogCursor>) -> Self {
        Self {
            statements: Vec::new(),
            targets: names.iter().map(|n| checkpoints.get(n).copied()).collect(),
            halted: vec![None; names.len()],
            passed: vec![false; names.len()],
        }
    }

    /// Applies `event` to projection `i`, unless it has it already or stopped in this batch.
    fn apply(
        &mut self,
        i: usize,
        projection: &dyn Projection,
        event: &RecordedEvent,
        decoded: &Result<DecodedEvent, ProjectionError>,
        stopped_at: Option<i64>,
    ) {
        if self.halted[i].is_some() || self.targets[i].is_some_and(|c| event.cursor <= c) {
            return;
        }
        match decoded {
            Ok(decoded) => {
                projection.apply(event, decoded, &mut self.statements);
                self.passed[i] |= stopped_at == Some(event.position);
            }
            Err(error) if projection.reads().contains(&event.aggregate_type.as_str()) => {
                self.halted[i] = Some(Stopped {
                    projection: projection.name().to_owned(),
                    position: event.position,
                    event_type: event.event_type.clone(),
                    error: error_chain(error),
                });
                return;
            }
            // Not an event this projection reads: it passes by.
            Err(_) => self.passed[i] |= stopped_at == Some(event.position),
        }
        self.targets[i] = Some(event.cursor);
    }
}

/// Where each read model stands: the cursor of the last event it applied, by name.
///
/// # Errors
/// When the database fails.
pub async fn checkpoints(
    database: &switchboard_store::Database,
) -> Result<HashMap<String, LogCursor>, ProjectionError> {
    let sql = "select name, transaction_id, position from projection_checkpoints";
    let rows: Vec<(String, i64, i64)> =
        with_pool!(database, pool => sqlx::query_as(sql).fetch_all(pool).await?);
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

/// Statements rewritten for shadow tables, by their SQL text: each distinct statement is
/// rewritten once per catch-up, not once per event.
#[derive(Default)]
struct Retargeted(HashMap<std::borrow::Cow<'static, str>, String>);

impl Retargeted {
    fn rewrite(&mut self, statement: Statement, tables: &[(&str, String)]) -> Statement {
        let sql = self
            .0
            .entry(statement.sql.clone())
            .or_insert_with(|| statement.retarget(tables).sql.into_owned());
        Statement::owned(sql.clone(), statement.args)
    }
}
