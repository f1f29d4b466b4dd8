//! Turns stored webhooks into commands, oldest first.
//!
//! Idempotent by construction: inbound messages are keyed by wamid, statuses apply once per
//! (wamid, status), template and account reports by a digest of their content. So a webhook
//! delivered twice, or processed again after a crash between "stored" and "processed", changes
//! nothing the second time. Pending webhooks left by a crash are simply claimed again at start.
//!
//! A claimed batch is processed as one [`UnitOfWork`]: its events and the inbox bookkeeping
//! commit together. If another writer raced it, the batch is redone one command at a time
//! through cqrs-es, which retries each conflict against fresh state.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::AggregateError;
use switchboard_domain::business_account::BusinessAccountCommand;
use switchboard_domain::conversation::ConversationCommand;
use switchboard_domain::message::MessageCommand;
use switchboard_domain::template::TemplateCommand;
use switchboard_domain::Timestamp;
use switchboard_store::{AppendError, Database, EventRepository, Statement, StoreError};
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::WorkerSettings;
use crate::cqrs::{execute, Frameworks};
use crate::metrics as metrics_names;
use crate::telemetry::error_chain;
use crate::webhooks::commands::{apply, targets, CommandBus, Refusal};
use crate::webhooks::inbox::{self, ClaimedWebhook};
use crate::webhooks::unit_of_work::UnitOfWork;
use crate::whatsapp::payload::{self, ParsedWebhook, PayloadError};
use crate::workers::health::{Worker, WorkerHealth};

/// The worker that processes stored webhooks.
pub struct WebhookProcessor {
    log: EventRepository,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    settings: WorkerSettings,
    extra_fields: Vec<String>,
    /// Claims of failed batches not yet given back (the database refused that too): retried
    /// before each claim, so that their webhooks need not wait out the claim's timeout.
    unreleased: std::sync::Mutex<Vec<String>>,
}

impl WebhookProcessor {
    /// A processor over the given log and command side.
    pub fn new(
        log: EventRepository,
        frameworks: Frameworks,
        clock: Arc<dyn Clock>,
        settings: WorkerSettings,
        extra_fields: Vec<String>,
    ) -> Self {
        Self {
            log,
            frameworks,
            clock,
            settings,
            extra_fields,
            unreleased: std::sync::Mutex::default(),
        }
    }

    fn database(&self) -> &Database {
        self.log.database()
    }

    /// Processes what is pending until none is left; returns how many webhooks were handled.
    ///
    /// # Errors
    /// When claiming or marking fails (database trouble).
    pub async fn drain(&self) -> Result<u64, StoreError> {
        self.drain_until(&|| false).await
    }

    /// [`Self::drain`], claiming no further batch once `stopping()`: a server shutting down
    /// finishes the batch it holds and leaves the rest pending, rather than be aborted at the
    /// deadline holding a claim that keeps its webhooks from every other worker until the
    /// claim times out.
    async fn drain_until(&self, stopping: &(dyn Fn() -> bool + Sync)) -> Result<u64, StoreError> {
        let mut handled = 0;
        self.release_unreleased().await?;
        while !stopping() {
            let now = self.clock.now().unix_millis();
            let claim_ms = i64::try_from(self.settings.webhook_claim.as_millis()).unwrap_or(60_000);
            let batch = inbox::claim(
                self.database(),
                now,
                now + claim_ms,
                self.settings.webhook_batch,
            )
            .await?;
            if batch.is_empty() {
                return Ok(handled);
            }
            let started = std::time::Instant::now();
            metrics::counter!(metrics_names::WEBHOOK_ATTEMPTS).increment(batch.len() as u64);
            // Conversations as this process holds them first; if one was stale (another
            // instance wrote to it), the batch conflicts and is tried again on fresh loads.
            let together = match self.process_together(&batch, true).await {
                Err(BatchError::Conflict) => self.process_together(&batch, false).await,
                other => other,
            };
            let mode = match together {
                Ok(()) => "batch",
                Err(reason) => {
                    tracing::debug!(%reason, size = batch.len(), "batch redone one command at a time");
                    for webhook in &batch {
                        if let Err(error) = self.process_alone(webhook).await {
                            self.release(webhook).await;
                            return Err(error);
                        }
                    }
                    "single"
                }
            };
            metrics::histogram!(metrics_names::WEBHOOK_PROCESSING, "mode" => mode)
                .record(started.elapsed().as_secs_f64());
            handled += batch.len() as u64;
        }
        Ok(handled)
    }

    /// Runs until `shutdown` fires, waking when the inbox stores something and polling
    /// otherwise (other instances store too, and released webhooks come due).
    pub async fn run(
        self,
        mut stored: watch::Receiver<u64>,
        mut shutdown: watch::Receiver<bool>,
        health: Arc<WorkerHealth>,
    ) {
        loop {
            health.beat(Worker::WebhookProcessor);
            let stopping = || *shutdown.borrow();
            if let Err(error) = self.drain_until(&stopping).await {
                tracing::error!(error = %error_chain(&error), "webhook processing stalled; retrying");
            }
            tokio::select! {
                _ = stored.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }

    fn parse(&self, webhook: &ClaimedWebhook) -> Result<ParsedWebhook, PayloadError> {
        let received_at =
            Timestamp::from_unix_millis(webhook.received_at).unwrap_or_else(|| self.clock.now());
        payload::parse(&webhook.body, received_at, &self.extra_fields)
    }

    /// The whole batch in one transaction: events and bookkeeping together; decided on the
    /// conversations this process holds in memory when `held`, else on fresh loads.
    #[tracing::instrument(skip_all, fields(size = batch.len()))]
    async fn process_together(
        &self,
        batch: &[ClaimedWebhook],
        held: bool,
    ) -> Result<(), BatchError> {
        let parsed: Vec<_> = batch.iter().map(|w| (w, self.parse(w))).collect();
        let touched: Vec<(&'static str, String)> = parsed
            .iter()
            .filter_map(|(_, p)| p.as_ref().ok())
            .flat_map(|p| p.instructions.iter().flat_map(targets))
            .collect();
        let conversations = &self.frameworks.conversations;
        let mut work = UnitOfWork::load(&self.log, &touched, |ids| {
            if held {
                conversations.held(ids)
            } else {
                HashMap::new()
            }
        })
        .await
        .map_err(|e| BatchError::Load(error_chain(&e)))?;
        let now = self.clock.now().unix_millis();
        let mut bookkeeping = Vec::with_capacity(batch.len());
        for (webhook, parsed) in parsed {
            work.set_metadata(serde_json::Value::Object(
                self.metadata(webhook)
                    .into_iter()
                    .map(|(k, v)| (k, v.into()))
                    .collect(),
            ));
            match apply_all(parsed, &mut work).await {
                // In memory nothing is transient; should it ever be, redo the batch singly.
                Outcome::Retry(reason) => return Err(BatchError::Load(reason)),
                // Marked all at once below.
                Outcome::Processed if webhook.claim_token.is_some() => {}
                outcome => bookkeeping.extend(self.bookkeeping(webhook, now, outcome)),
            }
        }
        // After the failures: every webhook of the claim still pending is processed.
        let claims: std::collections::BTreeSet<&str> = batch
            .iter()
            .filter_map(|w| w.claim_token.as_deref())
            .collect();
        bookkeeping.extend(
            claims
                .into_iter()
                .map(|token| inbox::claim_processed_statement(token, now)),
        );
        let changes = work.into_changes();
        let sent = std::time::Instant::now();
        let appended = self
            .log
            .append(&changes.events, &changes.snapshots, &bookkeeping)
            .await;
        match appended {
            Ok(()) => {
                // Agents act on the conversations customers just wrote in: no load for that.
                let conversations = &self.frameworks.conversations;
                conversations.remember(changes.conversations, sent);
                Ok(())
            }
            Err(AppendError::Conflict) => Err(BatchError::Conflict),
            Err(AppendError::Store(error)) => Err(BatchError::Store(error)),
        }
    }

    /// One webhook, one command at a time through cqrs-es (which retries conflicts).
    #[tracing::instrument(skip_all, fields(webhook_id = webhook.id, request_id = webhook.request_id.as_deref()))]
    async fn process_alone(&self, webhook: &ClaimedWebhook) -> Result<(), StoreError> {
        let metadata = self.metadata(webhook);
        let mut bus = FrameworkBus {
            frameworks: &self.frameworks,
            metadata: &metadata,
        };
        let outcome = apply_all(self.parse(webhook), &mut bus).await;
        let now = self.clock.now().unix_millis();
        let statements = self.bookkeeping(webhook, now, outcome);
        self.database().execute_atomically(&statements).await
    }

    /// Gives back the unfinished rest of `webhook`'s batch, due again in a second (or keeps
    /// its claim to give back later, when the database refuses now).
    async fn release(&self, webhook: &ClaimedWebhook) {
        let Some(token) = &webhook.claim_token else {
            return;
        };
        let retry_at = self.clock.now().unix_millis() + 1_000;
        if let Err(error) = inbox::release(self.database(), token, retry_at).await {
            tracing::warn!(%error, "giving back a failed batch's claims failed; retrying");
            self.unreleased_claims().push(token.clone());
        }
    }

    /// Gives back the claims [`Self::release`] could not.
    async fn release_unreleased(&self) -> Result<(), StoreError> {
        let tokens = std::mem::take(&mut *self.unreleased_claims());
        let now = self.clock.now().unix_millis();
        for (i, token) in tokens.iter().enumerate() {
            if let Err(error) = inbox::release(self.database(), token, now).await {
                self.unreleased_claims().extend_from_slice(&tokens[i..]);
                return Err(error);
            }
        }
        Ok(())
    }

    fn unreleased_claims(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.unreleased
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn metadata(&self, webhook: &ClaimedWebhook) -> HashMap<String, String> {
        let mut metadata = HashMap::with_capacity(5);
        metadata.insert("actor".to_owned(), "meta".to_owned());
        metadata.insert("webhook_id".to_owned(), webhook.id.to_string());
        metadata.insert("recorded_at".to_owned(), self.clock.now().to_string());
        if let Some(request_id) = &webhook.request_id {
            metadata.insert("request_id".to_owned(), request_id.clone());
            metadata.insert("correlation_id".to_owned(), request_id.clone());
        }
        metadata
    }
}

/// How a webhook's processing ended.
enum Outcome {
    /// Every instruction applied.
    Processed,
    /// It can never succeed as it is: what was refused or unreadable.
    Failed(String),
    /// Storage trouble: try again later.
    Retry(String),
}

/// Applies every instruction of a parsed webhook.
async fn apply_all(
    parsed: Result<ParsedWebhook, PayloadError>,
    bus: &mut impl CommandBus,
) -> Outcome {
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(error) => return Outcome::Failed(error.to_string()),
    };
    let mut refusals = Vec::new();
    for instruction in parsed.instructions {
        match apply(instruction, bus).await {
            Ok(()) => {}
            Err(Refusal::Permanent(reason)) => refusals.push(reason),
            Err(Refusal::Transient(reason)) => return Outcome::Retry(reason),
        }
    }
    refusals.extend(parsed.problems.into_iter().map(|p| p.0));
    if refusals.is_empty() {
        Outcome::Processed
    } else {
        Outcome::Failed(refusals.join("; "))
    }
}

impl WebhookProcessor {
    /// What to record for an outcome: processed; dead-lettered at once when retrying cannot
    /// help; retried later with backoff; dead-lettered after the last attempt.
    fn bookkeeping(&self, webhook: &ClaimedWebhook, now: i64, outcome: Outcome) -> Vec<Statement> {
        let attempt = webhook.attempts;
        match outcome {
            Outcome::Processed => vec![inbox::processed_statement(webhook.id, now)],
            Outcome::Failed(error) => {
                metrics::counter!(metrics_names::WEBHOOK_FAILURES, "reason" => "permanent")
                    .increment(1);
                tracing::warn!(webhook_id = webhook.id, %error, "webhook cannot be processed: dead-lettered");
                vec![
                    inbox::attempt_statement(webhook.id, attempt, now, &error, false),
                    inbox::dead_letter_statement(webhook.id, now, &error),
                ]
            }
            Outcome::Retry(error) => {
                metrics::counter!(metrics_names::WEBHOOK_FAILURES, "reason" => "retryable")
                    .increment(1);
                let policy = self.settings.webhook_retry;
                let attempts_made = u32::try_from(attempt).unwrap_or(u32::MAX);
                let record = inbox::attempt_statement(webhook.id, attempt, now, &error, true);
                if attempts_made >= policy.max_attempts {
                    tracing::warn!(webhook_id = webhook.id, %error, attempts = attempt, "webhook dead-lettered after its last attempt");
                    let reason = format!("gave up after {attempt} attempts: {error}");
                    vec![
                        record,
                        inbox::dead_letter_statement(webhook.id, now, &reason),
                    ]
                } else {
                    let delay = policy.delay_after(attempts_made, rand::random::<f64>());
                    let retry_at = now + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
                    tracing::warn!(webhook_id = webhook.id, %error, attempt, delay_ms = delay.as_millis() as u64, "webhook processing will be retried");
                    vec![
                        record,
                        inbox::retry_later_statement(webhook.id, retry_at, &error),
                    ]
                }
            }
        }
    }
}

/// Why a batch is redone one webhook at a time.
#[derive(Debug, thiserror::Error)]
enum BatchError {
    #[error("another writer changed an aggregate of the batch")]
    Conflict,
    #[error("aggregates could not be loaded: {0}")]
    Load(String),
    #[error("the batch could not be committed: {0}")]
    Store(StoreError),
}

/// Commands through cqrs-es, one transaction each.
struct FrameworkBus<'a> {
    frameworks: &'a Frameworks,
    metadata: &'a HashMap<String, String>,
}

impl CommandBus for FrameworkBus<'_> {
    async fn conversation(
        &mut self,
        id: &str,
        command: ConversationCommand,
    ) -> Result<(), Refusal> {
        self.frameworks
            .conversations
            .execute(id, command, self.metadata)
            .await
            .map(drop)
            .map_err(refusal)
    }

    async fn message(&mut self, id: &str, command: MessageCommand) -> Result<(), Refusal> {
        execute(&self.frameworks.messages, id, command, self.metadata)
            .await
            .map_err(refusal)
    }

    async fn template(&mut self, id: &str, command: TemplateCommand) -> Result<(), Refusal> {
        execute(&self.frameworks.templates, id, command, self.metadata)
            .await
            .map_err(refusal)
    }

    async fn account(&mut self, id: &str, command: BusinessAccountCommand) -> Result<(), Refusal> {
        execute(&self.frameworks.accounts, id, command, self.metadata)
            .await
            .map_err(refusal)
    }
}

fn refusal<E: std::error::Error>(error: AggregateError<E>) -> Refusal {
    match error {
        AggregateError::UserError(e) => Refusal::Permanent(e.to_string()),
        AggregateError::DeserializationError(e) => {
            Refusal::Permanent(format!("stored event unreadable: {e}"))
        }
        other => Refusal::Transient(other.to_string()),
    }
}
