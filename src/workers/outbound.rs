//! Sends agents' messages: claims rows of the outbox ([`crate::outbox`], high priority first)
//! with a visibility timeout, sends them through the Graph API, and records Meta's answer as an
//! event in the same transaction as the outbox change: once Meta's acceptance is recorded the
//! row is gone, so no later claim sends the message again, whatever the projections are doing.
//! Before sending, the message's own state is checked too (a status webhook that proves Meta
//! has it counts as sent).
//!
//! The one window that cannot close: a sender that dies (or loses the database) between Meta's
//! answer and its commit leaves the row claimed; after the visibility timeout the message is
//! sent again. Meta cannot deduplicate for us; the window is the send's round trip plus the
//! commit. A row claimed more often than the retry policy allows (every claim lapsed) is
//! dead-lettered instead of being sent again.

use sha2::Digest;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use switchboard_domain::message::{Message, MessageCommand, OutboundContent};
use switchboard_domain::{Customer, MetaError, Timestamp};
use switchboard_store::{Database, EventRepository, StoreError};
use tokio::sync::watch;

use crate::auth::accounts::actor_metadata;
use crate::clock::Clock;
use crate::config::{OutboundSettings, RetryPolicy};
use crate::outbox;
use crate::whatsapp::graph::{local_error, request_body, GraphClient, SendOutcome};

#[derive(sqlx::FromRow)]
struct Queued {
    message_id: String,
    phone_number_id: String,
    wa_id: Option<String>,
    user_id: Option<String>,
    content: String,
    reply_to: Option<String>,
    attempts: i32,
}

/// The sender worker.
pub struct OutboundSender {
    log: EventRepository,
    graph: GraphClient,
    clock: Arc<dyn Clock>,
    retry: RetryPolicy,
    pair_interval_ms: i64,
    /// How long a claim lasts (milliseconds).
    visibility_ms: i64,
    /// Meta's per-number throughput, in this process (several instances each pace alone).
    throughput: DefaultKeyedRateLimiter<String>,
    /// Where agents' uploads are kept (sends naming an `upload_id` need it).
    media: Option<crate::media::MediaStore>,
    /// Messages claimed by the batch under way whose sending has not started: released at
    /// shutdown, so that another instance sends them at once, not after the claim lapses.
    untouched: std::sync::Mutex<Vec<String>>,
}

impl OutboundSender {
    /// A sender over the given store and Graph client.
    pub fn new(
        log: EventRepository,
        graph: GraphClient,
        clock: Arc<dyn Clock>,
        retry: RetryPolicy,
        pacing: &OutboundSettings,
    ) -> Self {
        let per_second = NonZeroU32::new(pacing.messages_per_second).unwrap_or(NonZeroU32::MIN);
        Self {
            log,
            graph,
            clock,
            retry,
            pair_interval_ms: i64::try_from(pacing.pair_interval.as_millis()).unwrap_or(i64::MAX),
            visibility_ms: i64::try_from(pacing.visibility.as_millis()).unwrap_or(i64::MAX / 4),
            throughput: RateLimiter::keyed(Quota::per_second(per_second)),
            media: None,
            untouched: std::sync::Mutex::default(),
        }
    }

    /// Sends agents' uploads from `media`.
    pub fn with_media(mut self, media: crate::media::MediaStore) -> Self {
        self.media = Some(media);
        self
    }

    fn database(&self) -> &Database {
        self.log.database()
    }

    async fn claim(&self, now: i64) -> Result<Vec<Queued>, StoreError> {
        const POSTGRES: &str = "
update outbound_queue set claimed_until = $1, attempts = attempts + 1
 where message_id in (select message_id from outbound_queue
        where dead = 0 and available_at <= $2 and (claimed_until is null or claimed_until < $2)
        order by priority_rank, available_at limit 32 for update skip locked)
returning message_id, phone_number_id, wa_id, user_id, content, reply_to, attempts";
        const SQLITE: &str = "
update outbound_queue set claimed_until = $1, attempts = attempts + 1
 where message_id in (select message_id from outbound_queue
        where dead = 0 and available_at <= $2 and (claimed_until is null or claimed_until < $2)
        order by priority_rank, available_at limit 32)
returning message_id, phone_number_id, wa_id, user_id, content, reply_to, attempts";
        Ok(match self.database() {
            Database::Postgres(pool) => {
                sqlx::query_as(POSTGRES)
                    .bind(now.saturating_add(self.visibility_ms))
                    .bind(now)
                    .fetch_all(pool)
                    .await?
            }
            Database::Sqlite(pool) => {
                sqlx::query_as(SQLITE)
                    .bind(now.saturating_add(self.visibility_ms))
                    .bind(now)
                    .fetch_all(pool)
                    .await?
            }
        })
    }

    /// Sends everything due now; returns how many messages were tried.
    ///
    /// # Errors
    /// Database failures.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let now = self.clock.now();
        let claimed = self.claim(now.unix_millis()).await?;
        *self.lock_untouched() = claimed.iter().map(|q| q.message_id.clone()).collect();
        for queued in &claimed {
            self.lock_untouched().retain(|id| *id != queued.message_id);
            let attempts = u32::try_from(queued.attempts).unwrap_or(u32::MAX);
            if attempts > self.retry.max_attempts {
                // Every claim so far lapsed without an outcome: do not send blindly again.
                let error = local_error("send outcome unknown", Some(format!(
                    "claimed {attempts} times without a recorded outcome (sender crashed or lost the database)"
                )));
                self.dead_letter(queued, attempts, error).await;
                continue;
            }
            if !self.still_to_send(queued).await? {
                continue;
            }
            match self.reserve_pair_slot(queued).await? {
                None => {
                    self.throughput
                        .until_key_ready(&queued.phone_number_id)
                        .await;
                    self.send(queued).await?
                }
                Some(next_at) => self.wait_for_pair_slot(queued, next_at).await?,
            }
        }
        Ok(claimed.len())
    }

    /// Whether the message may still go out by its own state; if not, its row goes.
    async fn still_to_send(&self, queued: &Queued) -> Result<bool, StoreError> {
        let (message, _) = self
            .log
            .load_aggregate::<Message>(&queued.message_id)
            .await?;
        if message.may_be_sent() {
            return Ok(true);
        }
        tracing::info!(message_id = %queued.message_id, "already sent or settled; not sending again");
        self.database()
            .execute_atomically(&[outbox::remove(&queued.message_id)])
            .await?;
        Ok(false)
    }

    /// Takes the customer's next sending slot (Meta's pair limit) or says when it frees up.
    /// The slot lives in the database, so senders on several instances share it.
    async fn reserve_pair_slot(&self, queued: &Queued) -> Result<Option<i64>, StoreError> {
        const RESERVE: &str = "
insert into outbound_pacing (pair, next_at) values ($1, $2)
on conflict (pair) do update set next_at = excluded.next_at where outbound_pacing.next_at <= $3
returning next_at";
        const NEXT: &str = "select next_at from outbound_pacing where pair = $1";
        if self.pair_interval_ms == 0 {
            return Ok(None);
        }
        // Kept as a digest: this sender state must not hold the customer's number (it would
        // outlive an erasure request).
        let pair = hex::encode(sha2::Sha256::digest(format!(
            "{}|{}",
            queued.phone_number_id,
            queued
                .wa_id
                .as_deref()
                .or(queued.user_id.as_deref())
                .unwrap_or_default()
        )));
        let now = self.clock.now().unix_millis();
        let next_at = now.saturating_add(self.pair_interval_ms);
        let reserved: Option<i64> = switchboard_store::with_pool!(self.database(), pool => {
            sqlx::query_scalar(RESERVE).bind(&pair).bind(next_at).bind(now).fetch_optional(pool).await?
        });
        if reserved.is_some() {
            return Ok(None);
        }
        let busy_until: Option<i64> = switchboard_store::with_pool!(self.database(), pool => {
            sqlx::query_scalar(NEXT).bind(&pair).fetch_optional(pool).await?
        });
        Ok(Some(busy_until.unwrap_or(next_at)))
    }

    /// Puts a message back until its customer's slot frees up; the wait costs no attempt.
    async fn wait_for_pair_slot(&self, queued: &Queued, next_at: i64) -> Result<(), StoreError> {
        const RELEASE: &str = "update outbound_queue set claimed_until = null,
 attempts = attempts - 1, available_at = $1 where message_id = $2";
        self.database()
            .execute_atomically(&[switchboard_store::Statement::new(
                RELEASE,
                vec![next_at.into(), queued.message_id.as_str().into()],
            )])
            .await
    }

    async fn send(&self, queued: &Queued) -> Result<(), StoreError> {
        let attempt = u32::try_from(queued.attempts).unwrap_or(1);
        let outcome = match (
            serde_json::from_str::<OutboundContent>(&queued.content),
            Customer::new(queued.wa_id.clone(), queued.user_id.clone()),
        ) {
            (Ok(content), Some(customer)) => match crate::media::outbound::attach(
                &self.log,
                self.media.as_ref(),
                &self.graph,
                content,
                &queued.phone_number_id,
            )
            .await
            {
                Err(outcome) => outcome,
                Ok(content) => {
                    let body = request_body(
                        &customer,
                        &content,
                        queued.reply_to.as_deref(),
                        &queued.message_id,
                    );
                    let started = std::time::Instant::now();
                    let outcome = self.graph.send(&queued.phone_number_id, &body).await;
                    let kind = match &outcome {
                        SendOutcome::Accepted(_) => "accepted",
                        SendOutcome::Refused { .. } => "refused",
                        SendOutcome::Unreachable(_) => "unreachable",
                    };
                    metrics::histogram!(crate::metrics::GRAPH_SEND_DURATION, "outcome" => kind)
                        .record(started.elapsed().as_secs_f64());
                    outcome
                }
            },
            _ => SendOutcome::Refused {
                error: local_error("unreadable queued message", None),
                retryable: false,
            },
        };
        let now = self.clock.now();
        let (wamid, error) = match outcome {
            SendOutcome::Accepted(wamid) => {
                count_send("accepted", None);
                (Some(wamid), None)
            }
            SendOutcome::Refused {
                error,
                retryable: false,
            } => {
                count_send("refused", Some(&error));
                (None, Some(error))
            }
            SendOutcome::Refused {
                error,
                retryable: true,
            } if attempt < self.retry.max_attempts => {
                tracing::warn!(message_id = %queued.message_id, code = error.code, attempt, "send refused; will retry");
                count_send("retried", Some(&error));
                return self.retry_later(queued, attempt, error).await;
            }
            SendOutcome::Unreachable(reason) if attempt < self.retry.max_attempts => {
                tracing::warn!(message_id = %queued.message_id, %reason, attempt, "Meta unreachable; will retry");
                let error = local_error("unreachable", Some(reason));
                count_send("unreachable", Some(&error));
                return self.retry_later(queued, attempt, error).await;
            }
            // Retrying could help but the attempts are spent: the dead-letter queue.
            SendOutcome::Refused { error, .. } => {
                self.dead_letter(queued, attempt, error).await;
                return Ok(());
            }
            SendOutcome::Unreachable(reason) => {
                let error = local_error("unreachable", Some(reason));
                self.dead_letter(queued, attempt, error).await;
                return Ok(());
            }
        };
        let command = MessageCommand::RecordSendOutcome {
            wamid,
            error,
            attempt,
            at: now,
        };
        self.record(queued, command, now).await;
        Ok(())
    }

    /// Gives up after the last attempt: the message waits in the dead-letter queue.
    async fn dead_letter(&self, queued: &Queued, attempts: u32, error: MetaError) {
        count_send("dead_lettered", Some(&error));
        let now = self.clock.now();
        tracing::warn!(message_id = %queued.message_id, code = error.code, attempts, "send dead-lettered");
        let command = MessageCommand::DeadLetter {
            error,
            attempts,
            at: now,
        };
        self.record(queued, command, now).await;
    }

    /// Records the failed attempt (an event); its outbox row becomes due again after a backoff.
    async fn retry_later(
        &self,
        queued: &Queued,
        attempt: u32,
        error: MetaError,
    ) -> Result<(), StoreError> {
        let delay = self.retry.delay_after(attempt, rand::random::<f64>());
        let now = self.clock.now();
        let at = now.unix_millis() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        let retry_at = Timestamp::from_unix_millis(at).unwrap_or(now);
        let command = MessageCommand::RecordSendAttemptFailed {
            error,
            attempt,
            retry_at,
            at: now,
        };
        self.record(queued, command, now).await;
        Ok(())
    }

    /// Records what became of a send on its message, with the outbox change it implies, in one
    /// transaction. A failure is logged, not returned: the claim lapses and the claim count
    /// (capped) decides what happens next.
    async fn record(&self, queued: &Queued, command: MessageCommand, now: Timestamp) {
        let metadata = actor_metadata(None, now);
        if let Err(error) = outbox::execute(&self.log, &queued.message_id, command, &metadata).await
        {
            tracing::error!(message_id = %queued.message_id, %error, "recording the send failed");
        }
    }

    fn lock_untouched(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.untouched
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Gives back the claims of the batch whose sending had not started (the attempt they
    /// were counted never happened). A send cut off mid-way keeps its claim: Meta may have
    /// taken it, so only the claim's lapse and the retry policy decide what happens to it.
    async fn release_untouched(&self) {
        const RELEASE: &str = "update outbound_queue set claimed_until = null,
 attempts = attempts - 1 where message_id = $1 and claimed_until is not null";
        let statements: Vec<_> = std::mem::take(&mut *self.lock_untouched())
            .into_iter()
            .map(|id| switchboard_store::Statement::new(RELEASE, vec![id.into()]))
            .collect();
        if statements.is_empty() {
            return;
        }
        match self.database().execute_atomically(&statements).await {
            Ok(()) => tracing::info!(
                released = statements.len(),
                "unsent claims released at shutdown"
            ),
            Err(error) => tracing::warn!(%error, "claims not released at shutdown; they lapse"),
        }
    }

    /// Runs until `shutdown` fires; a batch under way is cut off there and its unsent claims
    /// are released.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let mut appended = self.log.appended();
        loop {
            let sent = tokio::select! {
                sent = self.run_once() => sent,
                _ = shutdown.changed() => {
                    self.release_untouched().await;
                    return;
                }
            };
            if let Err(error) = sent {
                tracing::error!(%error, "sending stalled; retrying");
            }
            tokio::select! {
                _ = appended.changed() => {}
                _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// Counts one send attempt's outcome with Meta's error code (`local`: one of ours).
fn count_send(outcome: &'static str, error: Option<&MetaError>) {
    let code = match error {
        None => "none".to_owned(),
        Some(error) if error.code == 0 => "local".to_owned(),
        Some(error) => error.code.to_string(),
    };
    metrics::counter!(crate::metrics::SENDS, "outcome" => outcome, "code" => code).increment(1);
}
