//! The fan-out: one tailer per instance reads the log in order (woken by local appends and by
//! PostgreSQL notifications from other instances), works out once who may see each event
//! ([`Stamper`]), serializes it once, and hands the batch to the sockets of this instance it
//! concerns ([`Index`]: the others are not woken). No broker: the log is the bus.

use std::sync::Arc;
use std::time::Duration;

use socketioxide::socket::Sid;
use switchboard_domain::AgentId;
use switchboard_store::{EventRepository, LogCursor};
use tokio::sync::watch;

use super::index::{Index, Subscription};
use super::stamp::Stamper;

/// Events read per query.
pub const BATCH: u32 = 500;
/// Conversation assignments the live stamper remembers; past this it forgets them and
/// rebuilds each from the log when it meets it again.
const ASSIGNMENTS_KEPT: usize = 100_000;

/// The tailer and the index of sockets it feeds.
pub struct Fanout {
    log: EventRepository,
    index: Arc<Index>,
}

impl Fanout {
    /// A fan-out over `log`, not yet running.
    pub fn new(log: EventRepository) -> Arc<Self> {
        Arc::new(Self {
            log,
            index: Arc::new(Index::default()),
        })
    }

    /// The log.
    pub fn log(&self) -> &EventRepository {
        &self.log
    }

    /// The sockets by what they may see.
    pub fn index(&self) -> &Index {
        &self.index
    }

    /// Registers a socket: the batches that concern it from now on are queued for it.
    pub fn subscribe(&self, sid: Sid, agent: AgentId) -> Subscription {
        self.index.subscribe(sid, agent)
    }

    /// How far the tailer has read: a socket connecting without a position starts here.
    pub fn head(&self) -> LogCursor {
        self.index.head()
    }

    /// Tails the log until `shutdown` fires, starting at its current end.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut appended = self.log.appended();
        let mut cursor = loop {
            match self.log.frontier().await {
                Ok(cursor) => break cursor,
                Err(error) => tracing::warn!(%error, "realtime: cannot find the end of the log"),
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                _ = shutdown.changed() => return,
            }
        };
        self.index.start_at(cursor);
        let mut stamper = Stamper::at(cursor, ASSIGNMENTS_KEPT);
        loop {
            // The projection runner reads the same events: read once for both.
            let failed = match self.log.read_recent(cursor, BATCH).await {
                Ok(events) if !events.is_empty() => {
                    let last = events.last().map_or(cursor, |e| e.cursor);
                    match stamper.stamp(&self.log, &events).await {
                        Ok(batch) => {
                            cursor = last;
                            let events = batch.len();
                            let woken = self.index.dispatch(&batch.into(), cursor);
                            tracing::trace!(events, woken, "realtime: batch handed out");
                            continue;
                        }
                        Err(error) => Some(error.to_string()),
                    }
                }
                Ok(_) => None,
                Err(error) => Some(error.to_string()),
            };
            if let Some(error) = &failed {
                tracing::warn!(%error, "realtime: reading the log failed; retrying");
            }
            tokio::select! {
                _ = appended.changed(), if failed.is_none() => {}
                // Other instances' events arrive through notifications; this is the fallback.
                _ = tokio::time::sleep(Duration::from_millis(if failed.is_some() { 1000 } else { 500 })) => {}
                _ = shutdown.changed() => return,
            }
        }
    }
}
