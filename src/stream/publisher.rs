//! The JetStream publisher: while it holds the lease, reads the log after the last position
//! JetStream acknowledged and publishes each event, a batch at a time (publishes pipelined,
//! acknowledgements awaited in order), storing the new position once a batch is acknowledged.
//! NATS down or slow: the log grows, nothing is lost; the publisher retries with backoff and
//! reports the lag, and catches up when NATS is back.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, stream};
use async_nats::HeaderMap;
use switchboard_store::{EventRepository, LogCursor, RecordedEvent, StoreError};
use tokio::sync::watch;

use super::{forget, lease, redact, StreamSettings, StreamStatus};
use crate::clock::wall_millis;
use crate::realtime::{conversation_of, EnvelopeOf};
use crate::telemetry::error_chain;

/// Why publishing stopped for now (retried with backoff).
#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error("the event log failed")]
    Store(#[from] StoreError),
    #[error("NATS: {0}")]
    Nats(String),
    #[error("storing the position failed: {0}")]
    Saving(String),
}

fn nats(error: impl std::fmt::Display) -> PublishError {
    PublishError::Nats(error.to_string())
}

/// How often the position is stored while publishing.
const SAVE_EVERY: Duration = Duration::from_millis(250);
/// The longest wait between two attempts while NATS fails.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// The publisher worker.
pub struct Publisher {
    log: EventRepository,
    settings: StreamSettings,
    status: Arc<StreamStatus>,
    /// This instance, as the lease knows it.
    holder: String,
    /// When the lag was last counted (a count over the unpublished part of the log: done at
    /// most twice a second, not per batch, or it would cost more than publishing).
    counted: std::sync::Mutex<Option<Instant>>,
}

/// A connected session: where it stands and what JetStream last holds.
struct Session {
    context: jetstream::Context,
    cursor: LogCursor,
    /// The id of the stream's last message: the expected predecessor of the next one.
    last_id: Option<String>,
    /// The position last stored, and when (the lease was renewed then too).
    saved: LogCursor,
    saved_at: Instant,
    /// A save under way beside publishing, with the position it stores.
    saving: Option<(LogCursor, tokio::task::JoinHandle<Result<bool, StoreError>>)>,
}

impl Publisher {
    /// A publisher for `settings` (whose URL must be set).
    pub fn new(log: EventRepository, settings: StreamSettings, status: Arc<StreamStatus>) -> Self {
        Self {
            log,
            settings,
            status,
            holder: uuid::Uuid::new_v4().to_string(),
            counted: std::sync::Mutex::new(None),
        }
    }

    fn lease_ms(&self) -> i64 {
        i64::try_from(self.settings.lease.as_millis()).unwrap_or(i64::MAX)
    }

    /// Publishes until `shutdown`, then gives the lease up.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let Some(url) = self.settings.url.clone() else {
            return;
        };
        let mut appended = self.log.appended();
        let mut session: Option<Session> = None;
        let mut backoff = Duration::from_millis(100);
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self.step(&url, &mut session).await {
                Ok(true) => {
                    backoff = Duration::from_millis(100);
                    continue;
                }
                Ok(false) => self.settings.lease / 3,
                Err(error) => {
                    let message = error_chain(&error);
                    tracing::warn!(error = %message, "publishing to NATS failed; retrying");
                    self.status.failed(message);
                    self.status.set_connected(false);
                    session = None;
                    self.report_lag().await;
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    backoff
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = appended.changed() => {}
                _ = shutdown.changed() => {}
            }
        }
        self.status.set_leader(false);
        // A save under way lands before the lease is given up (it names this holder).
        if let Some((_, task)) = session.and_then(|s| s.saving) {
            let _ = task.await;
        }
        if let Err(error) =
            lease::release(self.log.database(), &self.settings.stream, &self.holder).await
        {
            tracing::warn!(error = %error_chain(&error), "stream lease not released");
        }
    }

    /// One step: `true` when it published something (go on at once), `false` when there was
    /// nothing to do or another instance publishes.
    async fn step(&self, url: &str, session: &mut Option<Session>) -> Result<bool, PublishError> {
        // Renewed by every save; asked again only when a third of the lease has passed.
        let holding = session
            .as_ref()
            .is_some_and(|s| s.saved_at.elapsed() < self.settings.lease / 3);
        if !holding {
            let db = self.log.database();
            let now = wall_millis();
            if !lease::acquire(
                db,
                &self.settings.stream,
                &self.holder,
                now,
                self.lease_ms(),
            )
            .await?
            {
                self.status.set_leader(false);
                *session = None;
                self.report_lag().await;
                return Ok(false);
            }
            self.status.set_leader(true);
            if let Some(current) = session.as_mut() {
                current.saved_at = Instant::now();
            }
        }
        if session.is_none() {
            *session = Some(self.connect(url).await?);
        }
        let Some(current) = session.as_mut() else {
            return Ok(false);
        };
        if !self.saved(current).await? {
            // Another instance took over meanwhile: it resumes after the stream's last message.
            *session = None;
            return Ok(false);
        }
        let batch = self
            .log
            .read_all(current.cursor, self.settings.batch)
            .await?;
        if batch.is_empty() {
            self.status.published(current.cursor.position, 0);
            if current.saved != current.cursor {
                self.save(current);
            }
            return Ok(false);
        }
        self.publish(current, &batch).await?;
        // The stream itself says where to resume; the stored position is its fallback, so it
        // is written a few times a second, not after every batch.
        if current.saved_at.elapsed() >= SAVE_EVERY {
            self.save(current);
        }
        let due = {
            let mut counted = self
                .counted
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let due = counted.is_none_or(|at| at.elapsed() >= Duration::from_millis(500));
            if due {
                *counted = Some(Instant::now());
            }
            due
        };
        if due {
            let head = self.log.head().await?;
            let lag = self.log.unread_before(current.cursor, head).await?;
            self.status.published(current.cursor.position, lag);
        }
        Ok(true)
    }

    /// Starts storing the session's position (and renewing the lease) beside publishing, unless
    /// a save is under way. On SQLite a write waits for the one writer (the webhook processor's
    /// and the projections' transactions); publishing does not wait with it (it did: p99 from
    /// commit to consumer went from 131–383 ms to under 100).
    fn save(&self, current: &mut Session) {
        if current.saving.is_some() {
            return;
        }
        let (db, stream, holder) = (
            self.log.database().clone(),
            self.settings.stream.clone(),
            self.holder.clone(),
        );
        let (cursor, lease_ms) = (current.cursor, self.lease_ms());
        current.saved_at = Instant::now();
        let task = tokio::spawn(async move {
            lease::save(&db, &stream, &holder, cursor, wall_millis(), lease_ms).await
        });
        current.saving = Some((cursor, task));
    }

    /// The outcome of a save that has finished (`true` while none has): `false` when the lease
    /// was lost.
    async fn saved(&self, current: &mut Session) -> Result<bool, PublishError> {
        let Some((cursor, task)) = current.saving.take_if(|(_, task)| task.is_finished()) else {
            return Ok(true);
        };
        let held = task
            .await
            .map_err(|e| PublishError::Saving(e.to_string()))??;
        current.saved = cursor;
        Ok(held)
    }

    /// Connects, makes sure the stream exists, and finds where to resume: after the stream's
    /// own last message when it names a position of the log, else after the stored position.
    async fn connect(&self, url: &str) -> Result<Session, PublishError> {
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(url)
            .await
            .map_err(nats)?;
        self.status.set_connected(true);
        let context = jetstream::new(client);
        let mut created = context
            .get_or_create_stream(stream::Config {
                name: self.settings.stream.clone(),
                subjects: vec![format!("{}.>", self.settings.subject_prefix)],
                max_age: self.settings.max_age,
                num_replicas: self.settings.replicas,
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(nats)?;
        let state = created.info().await.map_err(nats)?.state.clone();
        let last_id = if state.messages > 0 {
            created
                .get_raw_message(state.last_sequence)
                .await
                .ok()
                .and_then(|m| {
                    m.headers
                        .get(async_nats::header::NATS_MESSAGE_ID)
                        .map(|v| v.as_str().to_owned())
                })
        } else {
            None
        };
        let stored = lease::cursor(self.log.database(), &self.settings.stream).await?;
        let from_stream = match last_id.as_deref().and_then(|id| id.parse::<i64>().ok()) {
            Some(position) => self.log.cursor_after(position).await.ok(),
            None => None,
        };
        Ok(Session {
            context,
            cursor: from_stream.unwrap_or(stored).max(stored),
            last_id,
            saved: stored,
            saved_at: Instant::now(),
            saving: None,
        })
    }

    /// Publishes `batch` in order; on success the session stands after its last event.
    async fn publish(
        &self,
        session: &mut Session,
        batch: &[RecordedEvent],
    ) -> Result<(), PublishError> {
        let mut pending = Vec::with_capacity(batch.len());
        let mut previous = session.last_id.clone();
        for event in batch {
            let id = event.position.to_string();
            let headers = self.headers(event, &id, previous.as_deref());
            let subject = format!(
                "{}.{}.{}",
                self.settings.subject_prefix, event.aggregate_type, event.event_type
            );
            let envelope = EnvelopeOf(event);
            let payload = if self.settings.redact_content {
                serde_json::to_value(envelope)
                    .map(redact::redact)
                    .and_then(|body| serde_json::to_vec(&body))
            } else {
                serde_json::to_vec(&envelope)
            }
            .map_err(|e| PublishError::Nats(e.to_string()))?;
            let ack = session
                .context
                .publish_with_headers(subject, headers, payload.into())
                .await
                .map_err(nats)?;
            pending.push((event.cursor, id.clone(), ack));
            previous = Some(id);
        }
        let mut erasures = Vec::new();
        for ((cursor, id, ack), event) in pending.into_iter().zip(batch) {
            let acknowledged = ack.await.map_err(nats)?;
            session.cursor = cursor;
            session.last_id = Some(id);
            if event.event_type == "ConversationCustomerErased" {
                erasures.push((event.aggregate_id.as_str(), acknowledged.sequence));
            }
        }
        for (conversation, erased_at) in erasures {
            let stream = &self.settings.stream;
            match forget::forget_conversation(&session.context, stream, conversation, erased_at)
                .await
            {
                Ok(deleted) => {
                    tracing::info!(%conversation, deleted, "an erased customer's messages deleted from the stream")
                }
                Err(error) => {
                    tracing::error!(%conversation, %error, "an erased customer's messages were not deleted from the stream")
                }
            }
        }
        metrics::counter!(crate::metrics::STREAM_PUBLISHED).increment(batch.len() as u64);
        Ok(())
    }

    fn headers(&self, event: &RecordedEvent, id: &str, previous: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id);
        if let Some(previous) = previous {
            headers.insert(async_nats::header::NATS_EXPECTED_LAST_MESSAGE_ID, previous);
        }
        headers.insert("Switchboard-Position", id);
        headers.insert("Switchboard-Aggregate-Type", event.aggregate_type.as_str());
        headers.insert("Switchboard-Aggregate-Id", event.aggregate_id.as_str());
        if let Some(conversation) = conversation_of(event) {
            headers.insert("Switchboard-Conversation-Id", conversation);
        }
        if let Some(request) = event.metadata.get("request_id").and_then(|v| v.as_str()) {
            headers.insert("Switchboard-Request-Id", request);
        }
        headers
    }

    /// Counts the events after the stored position (what any instance's health can tell).
    async fn report_lag(&self) {
        let counted = async {
            let cursor = lease::cursor(self.log.database(), &self.settings.stream).await?;
            let head = self.log.head().await?;
            self.log.unread_before(cursor, head).await
        }
        .await;
        match counted {
            Ok(lag) => self.status.set_lag(lag),
            Err(error) => tracing::warn!(error = %error_chain(&error), "stream lag not counted"),
        }
    }
}
