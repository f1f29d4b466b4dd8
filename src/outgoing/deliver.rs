//! The deliverer: follows the log for every enabled endpoint and POSTs each event it wants, one
//! at a time and in log order, so the order of a conversation's events holds.
//!
//! - **Cursor per endpoint.** Each endpoint's live track starts after its registration event
//!   and moves past an event once it is delivered, dead-lettered or not wanted; a replay is a
//!   track of its own over a range of positions.
//! - **Retries.** A failed event stays at the head of its track, retried after each wait of the
//!   schedule; once the schedule is spent it is dead-lettered and the track moves on. Events
//!   after it wait meanwhile (per-endpoint order is what keeps per-conversation order).
//! - **At least once.** The cursor is saved after each delivery; a crash between the
//!   endpoint's answer and that save delivers the event again, with the same `webhook-id`.
//! - **One deliverer at a time.** On PostgreSQL a pass holds an advisory lock, so of several
//!   instances one delivers; SQLite serves one instance.
//! - **Disabling.** An endpoint failing without a success for `disable_after` is disabled by
//!   an event (`WebhookEndpointDisabled`, reason `failing`) and a metric.

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchboard_domain::webhook_endpoint::{EndpointSpec, WebhookEndpoint, WebhookEndpointCommand};
use switchboard_projections::webhook_endpoints::{self, EndpointView};
use switchboard_projections::ProjectionError;
use switchboard_store::{Database, EventRepository, RecordedEvent};
use tokio::sync::watch;

use super::facts::Facts;
use super::state::{self, DeliveryAttempt, EndpointDeadLetter, Track};
use super::{address, signing, OutgoingSettings};
use crate::auth::accounts::actor_metadata;
use crate::clock::{wall_millis, Clock};
use crate::cqrs::Frameworks;
use crate::realtime::{conversation_of, EnvelopeOf};
use crate::telemetry::error_chain;

/// The advisory lock key of a pass (PostgreSQL): "switchboard webhooks".
const PASS_LOCK: i64 = 0x5357_5748_4f4f_4b53;
/// Events read from the log at a time.
const BATCH: u32 = 200;
/// Batches one track goes through in a pass before letting the pass end.
const BATCHES_PER_PASS: usize = 10;
/// Endpoints served at once.
const CONCURRENT_ENDPOINTS: usize = 8;
/// How much of an endpoint's answer the delivery log keeps.
const EXCERPT_CHARS: usize = 256;

/// The outgoing-webhook worker.
pub struct Deliverer {
    log: EventRepository,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    settings: OutgoingSettings,
    http: reqwest::Client,
}

impl Deliverer {
    /// A deliverer with its own HTTP client: public addresses only (unless allowed), no
    /// redirects, the configured timeout.
    ///
    /// # Errors
    /// When the HTTP client cannot be built.
    pub fn new(
        log: EventRepository,
        frameworks: Frameworks,
        clock: Arc<dyn Clock>,
        settings: OutgoingSettings,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .dns_resolver(Arc::new(address::PublicOnly {
                allow_private: settings.allow_private,
            }))
            .redirect(reqwest::redirect::Policy::none())
            .timeout(settings.timeout)
            .user_agent(concat!("Switchboard-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        // Exported from the start, so an alert on its increase has a series before the first.
        metrics::counter!(crate::metrics::OUTGOING_DISABLED).increment(0);
        Ok(Self {
            log,
            frameworks,
            clock,
            settings,
            http,
        })
    }

    fn database(&self) -> &Database {
        self.log.database()
    }

    /// Delivers until `shutdown`: after every append, and every poll interval for retries.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut appended = self.log.appended();
        let mut pruned_at = 0;
        loop {
            if let Err(error) = self.run_once().await {
                tracing::error!(error = %error_chain(&error), "outgoing webhook pass failed");
            }
            let now = wall_millis();
            if now - pruned_at > 3_600_000 {
                let keep = i64::try_from(self.settings.delivery_log_retention.as_millis())
                    .unwrap_or(i64::MAX);
                if let Err(error) = state::prune_attempts(self.database(), now - keep).await {
                    tracing::warn!(error = %error_chain(&error), "delivery log not pruned");
                }
                pruned_at = now;
            }
            tokio::select! {
                _ = tokio::time::sleep(self.settings.poll_interval) => {}
                _ = appended.changed() => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    /// One pass over every enabled endpoint.
    ///
    /// # Errors
    /// Storage failures.
    pub async fn run_once(&self) -> Result<(), ProjectionError> {
        match self.database() {
            Database::Postgres(pool) => {
                let mut connection = pool.acquire().await?;
                let locked: bool = sqlx::query_scalar("select pg_try_advisory_lock($1)")
                    .bind(PASS_LOCK)
                    .fetch_one(&mut *connection)
                    .await?;
                if !locked {
                    return Ok(());
                }
                let passed = self.pass().await;
                let unlocked = sqlx::query("select pg_advisory_unlock($1)")
                    .bind(PASS_LOCK)
                    .execute(&mut *connection)
                    .await;
                if unlocked.is_err() {
                    // The lock goes with the connection.
                    connection.detach();
                }
                passed
            }
            Database::Sqlite(_) => self.pass().await,
        }
    }

    async fn pass(&self) -> Result<(), ProjectionError> {
        let endpoints = webhook_endpoints::list(self.database()).await?;
        let results: Vec<_> = futures::stream::iter(
            endpoints
                .into_iter()
                .filter(|e| e.enabled)
                .map(|e| self.serve(e)),
        )
        .buffer_unordered(CONCURRENT_ENDPOINTS)
        .collect()
        .await;
        let failing = state::failing(self.database()).await?.len();
        metrics::gauge!(crate::metrics::OUTGOING_FAILING).set(failing as f64);
        results.into_iter().collect()
    }

    /// Works through one endpoint's tracks, then disables it if it has failed too long.
    async fn serve(&self, endpoint: EndpointView) -> Result<(), ProjectionError> {
        let db = self.database();
        let Some(key) = state::secret(db, &endpoint.id)
            .await?
            .and_then(|s| signing::key_of(&s).ok())
        else {
            tracing::warn!(endpoint = %endpoint.id, "endpoint without a usable secret");
            return Ok(());
        };
        let mut tracks = state::tracks(db, &endpoint.id).await?;
        if !tracks.iter().any(|t| t.kind == "live") {
            let start = self.log.cursor_after(endpoint.registered_position).await?;
            state::ensure_live(db, &endpoint.id, start, wall_millis()).await?;
            tracks = state::tracks(db, &endpoint.id).await?;
        }
        let spec = endpoint.spec();
        let mut failing_since = None;
        for track in tracks {
            let track = self.follow(&spec, &endpoint.id, &key, track).await?;
            if track.kind == "live" {
                failing_since = track.failing_since;
            }
        }
        let limit = i64::try_from(self.settings.disable_after.as_millis()).unwrap_or(i64::MAX);
        if failing_since.is_some_and(|since| wall_millis() - since >= limit) {
            self.disable(&endpoint.id).await;
        }
        Ok(())
    }

    async fn disable(&self, endpoint_id: &str) {
        let now = self.clock.now();
        let command = WebhookEndpointCommand::Disable {
            reason: "failing".to_owned(),
            by: None,
            at: now,
        };
        let metadata = actor_metadata(None, now);
        match crate::cqrs::execute(
            &self.frameworks.webhook_endpoints,
            endpoint_id,
            command,
            &metadata,
        )
        .await
        {
            Ok(()) => {
                metrics::counter!(crate::metrics::OUTGOING_DISABLED).increment(1);
                tracing::warn!(endpoint = %endpoint_id, "outgoing webhook endpoint disabled: failing");
            }
            Err(error) => tracing::error!(%error, "endpoint not disabled"),
        }
    }

    /// Moves a track forward as far as it can now; answers it as it stands.
    async fn follow(
        &self,
        spec: &EndpointSpec,
        endpoint_id: &str,
        key: &[u8],
        mut track: Track,
    ) -> Result<Track, ProjectionError> {
        if track.next_attempt_at > wall_millis() {
            return Ok(track);
        }
        let db = self.database();
        for _ in 0..BATCHES_PER_PASS {
            let batch = match track.until_position {
                None => self.log.read_all(track.cursor(), BATCH).await?,
                Some(until) => {
                    self.log
                        .read_positions(track.after_position, until, BATCH)
                        .await?
                }
            };
            if batch.is_empty() {
                if track.kind != "live" {
                    state::remove(db, &track.id).await?;
                }
                return Ok(track);
            }
            // Checked after the read: an event appended after a disabling is never sent.
            let (endpoint, _) = self
                .log
                .load_aggregate::<WebhookEndpoint>(endpoint_id)
                .await?;
            if !endpoint.enabled() {
                return Ok(track);
            }
            let mut facts = Facts::load(&self.log, &batch).await?;
            for event in batch {
                let target = Target {
                    endpoint_id,
                    url: &spec.url,
                    key,
                };
                if wanted(spec, &event, &mut facts)
                    && !self.deliver(&target, &mut track, &event).await?
                {
                    state::save(db, &track).await?;
                    return Ok(track);
                }
                track.after_tx = i64::try_from(event.cursor.transaction_id).unwrap_or(0);
                track.after_position = event.position;
            }
            state::save(db, &track).await?;
        }
        Ok(track)
    }

    /// One attempt at `event`; `false` when the track must wait for a retry.
    async fn deliver(
        &self,
        target: &Target<'_>,
        track: &mut Track,
        event: &RecordedEvent,
    ) -> Result<bool, ProjectionError> {
        let db = self.database();
        let endpoint_id = target.endpoint_id;
        let attempt = self.attempt(target, track, event).await;
        state::log_attempt(db, endpoint_id, &attempt).await?;
        let now = wall_millis();
        if attempt.error.is_none() {
            metrics::counter!(crate::metrics::OUTGOING_DELIVERIES, "outcome" => "delivered")
                .increment(1);
            track.attempts = 0;
            track.next_attempt_at = 0;
            track.failing_since = None;
            track.after_tx = i64::try_from(event.cursor.transaction_id).unwrap_or(0);
            track.after_position = event.position;
            state::save(db, track).await?;
            return Ok(true);
        }
        track.failing_since.get_or_insert(now);
        let failed = usize::try_from(attempt.attempt).unwrap_or(usize::MAX);
        if let Some(wait) = self.settings.retry_schedule.get(failed - 1) {
            metrics::counter!(crate::metrics::OUTGOING_DELIVERIES, "outcome" => "failed")
                .increment(1);
            track.attempts = attempt.attempt;
            track.next_attempt_at = now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
            return Ok(false);
        }
        metrics::counter!(crate::metrics::OUTGOING_DELIVERIES, "outcome" => "dead_lettered")
            .increment(1);
        let dead = EndpointDeadLetter {
            position: event.position,
            attempts: attempt.attempt,
            last_error: attempt.error.unwrap_or_default(),
            dead_at: now,
        };
        state::bury(db, endpoint_id, &dead).await?;
        track.attempts = 0;
        track.next_attempt_at = 0;
        Ok(true)
    }

    /// POSTs the event, signed; the attempt as the delivery log records it.
    async fn attempt(
        &self,
        target: &Target<'_>,
        track: &Track,
        event: &RecordedEvent,
    ) -> DeliveryAttempt {
        let key = target.key;
        let body = serde_json::to_vec(&EnvelopeOf(event)).unwrap_or_default();
        let id = event.position.to_string();
        let timestamp = wall_millis() / 1000;
        let started = Instant::now();
        let kind = if track.id.starts_with("retry:") {
            "retry"
        } else {
            track.kind.as_str()
        };
        let mut attempt = DeliveryAttempt {
            position: event.position,
            attempt: track.attempts + 1,
            kind: kind.to_owned(),
            status: None,
            error: None,
            latency_ms: 0,
            response_excerpt: None,
            at: wall_millis(),
        };
        let url = match address::check_url(target.url, self.settings.allow_private) {
            Ok(url) => url,
            Err(refused) => {
                attempt.error = Some(refused.to_string());
                return attempt;
            }
        };
        let sent = self
            .http
            .post(url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signing::signature(key, &id, timestamp, &body),
            )
            .body(body)
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                attempt.status = Some(i64::from(status.as_u16()));
                let text = tokio::time::timeout(Duration::from_secs(2), response.text())
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                attempt.response_excerpt = Some(text.chars().take(EXCERPT_CHARS).collect());
                if !status.is_success() {
                    attempt.error = Some(format!("the endpoint answered {status}"));
                }
            }
            Err(error) => attempt.error = Some(error_chain(&error)),
        }
        attempt.latency_ms = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
        attempt
    }
}

/// Where and how one endpoint's deliveries go.
struct Target<'a> {
    endpoint_id: &'a str,
    url: &'a str,
    key: &'a [u8],
}

/// Whether the endpoint receives `event`: its type matches, and its conversation, as it stood
/// at that event, passes the filters (events of no conversation pass only an endpoint
/// without filters).
fn wanted(spec: &EndpointSpec, event: &RecordedEvent, facts: &mut Facts) -> bool {
    if !spec.wants(&event.event_type) {
        return false;
    }
    if spec.phone_number_ids.is_empty() && spec.group_ids.is_empty() && !spec.bot {
        return true;
    }
    let Some(conversation) = conversation_of(event).and_then(|id| facts.at(id, event.cursor))
    else {
        return false;
    };
    let number_ok = spec.phone_number_ids.is_empty()
        || conversation
            .phone_number_id()
            .is_some_and(|n| spec.phone_number_ids.iter().any(|w| w == n.as_str()));
    let group_ok = spec.group_ids.is_empty()
        || conversation
            .assignment()
            .1
            .is_some_and(|g| spec.group_ids.contains(&g));
    number_ok && group_ok && (!spec.bot || conversation.with_bot())
}
