//! Turns stored webhooks into commands, oldest first.
//!
//! Idempotent by construction: inbound messages are keyed by wamid, statuses apply once per
//! (wamid, status), template and account reports by a digest of their content. So a webhook
//! delivered twice, or processed again after a crash between "stored" and "processed", changes
//! nothing the second time. Pending webhooks left by a crash are simply claimed again at start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use cqrs_es::AggregateError;
use switchboard_domain::business_account::BusinessAccountCommand;
use switchboard_domain::conversation::ConversationCommand;
use switchboard_domain::message::MessageCommand;
use switchboard_domain::template::TemplateCommand;
use switchboard_domain::Timestamp;
use switchboard_store::Database;
use tokio::sync::watch;

use crate::clock::Clock;
use crate::config::WorkerSettings;
use crate::cqrs::{execute, Frameworks};
use crate::telemetry::error_chain;
use crate::webhooks::inbox::{self, ClaimedWebhook};
use crate::whatsapp::payload::{self, Instruction};

/// How a webhook's processing ended.
#[derive(Debug)]
enum Outcome {
    /// Every instruction applied.
    Processed,
    /// It can never succeed as it is (unparseable, unknown parts, refused by the domain).
    Failed(String),
    /// Storage trouble: try again later.
    Retry(String),
}

/// The worker that processes stored webhooks.
pub struct WebhookProcessor {
    database: Database,
    frameworks: Frameworks,
    clock: Arc<dyn Clock>,
    settings: WorkerSettings,
}

impl WebhookProcessor {
    /// A processor over the given store and command side.
    pub fn new(
        database: Database,
        frameworks: Frameworks,
        clock: Arc<dyn Clock>,
        settings: WorkerSettings,
    ) -> Self {
        Self {
            database,
            frameworks,
            clock,
            settings,
        }
    }

    /// Processes what is pending until none is left; returns how many webhooks were handled.
    ///
    /// # Errors
    /// When claiming or marking fails (database trouble).
    pub async fn drain(&self) -> Result<u64, switchboard_store::StoreError> {
        let mut handled = 0;
        loop {
            let now = self.clock.now().unix_millis();
            let claim_ms = i64::try_from(self.settings.webhook_claim.as_millis()).unwrap_or(60_000);
            let batch = inbox::claim(
                &self.database,
                now,
                now + claim_ms,
                self.settings.webhook_batch,
            )
            .await?;
            if batch.is_empty() {
                return Ok(handled);
            }
            for webhook in batch {
                let outcome = self.process(&webhook).await;
                let now = self.clock.now().unix_millis();
                match outcome {
                    Outcome::Processed => {
                        inbox::mark_processed(&self.database, webhook.id, now).await?
                    }
                    Outcome::Failed(error) => {
                        tracing::warn!(webhook_id = webhook.id, %error, "webhook processing failed");
                        inbox::mark_failed(&self.database, webhook.id, now, &error).await?;
                    }
                    Outcome::Retry(error) => {
                        tracing::warn!(webhook_id = webhook.id, %error, "webhook processing will be retried");
                        inbox::release(&self.database, webhook.id, now + 1_000, &error).await?;
                    }
                }
                handled += 1;
            }
        }
    }

    /// Runs until `shutdown` fires, waking when the inbox stores something and polling
    /// otherwise (other instances store too, and released webhooks come due).
    pub async fn run(self, mut stored: watch::Receiver<u64>, mut shutdown: watch::Receiver<bool>) {
        loop {
            if let Err(error) = self.drain().await {
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

    #[tracing::instrument(skip_all, fields(webhook_id = webhook.id, request_id = webhook.request_id.as_deref()))]
    async fn process(&self, webhook: &ClaimedWebhook) -> Outcome {
        let received_at =
            Timestamp::from_unix_millis(webhook.received_at).unwrap_or_else(|| self.clock.now());
        let parsed = match payload::parse(&webhook.body, received_at) {
            Ok(parsed) => parsed,
            Err(error) => return Outcome::Failed(error.to_string()),
        };
        let metadata = self.metadata(webhook);
        let mut refusals = Vec::new();
        for instruction in parsed.instructions {
            match self.apply(instruction, &metadata).await {
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

    async fn apply(
        &self,
        instruction: Instruction,
        metadata: &HashMap<String, String>,
    ) -> Result<(), Refusal> {
        let f = &self.frameworks;
        match instruction {
            Instruction::CustomerMessage(m) => {
                let conversation = ConversationCommand::RecordCustomerMessage {
                    phone_number_id: m.phone_number_id.clone(),
                    customer: m.customer.clone(),
                    profile_name: m.profile_name.clone(),
                    wamid: m.wamid.clone(),
                    sent_at: m.sent_at,
                    opens_window: m.content.opens_service_window(),
                };
                execute(
                    &f.conversations,
                    &m.conversation_id.to_string(),
                    conversation,
                    metadata,
                )
                .await
                .map_err(refusal)?;
                let message = MessageCommand::ReceiveInbound {
                    conversation_id: m.conversation_id,
                    phone_number_id: m.phone_number_id,
                    customer: m.customer,
                    profile_name: m.profile_name,
                    sent_at: m.sent_at,
                    content: m.content,
                    context: m.context,
                    referral: m.referral,
                    errors: m.errors,
                };
                execute(&f.messages, m.wamid.as_str(), message, metadata)
                    .await
                    .map_err(refusal)
            }
            Instruction::Echo(e) => {
                let touch = ConversationCommand::Touch {
                    phone_number_id: e.phone_number_id.clone(),
                    customer: e.customer.clone(),
                    at: e.sent_at,
                };
                execute(
                    &f.conversations,
                    &e.conversation_id.to_string(),
                    touch,
                    metadata,
                )
                .await
                .map_err(refusal)?;
                let message = MessageCommand::RecordEcho {
                    conversation_id: e.conversation_id,
                    phone_number_id: e.phone_number_id,
                    customer: e.customer,
                    sent_at: e.sent_at,
                    content: e.content,
                };
                execute(&f.messages, e.wamid.as_str(), message, metadata)
                    .await
                    .map_err(refusal)
            }
            Instruction::Status(s) => {
                let touch = ConversationCommand::Touch {
                    phone_number_id: s.phone_number_id.clone(),
                    customer: s.customer.clone(),
                    at: s.report.at,
                };
                execute(
                    &f.conversations,
                    &s.conversation_id.to_string(),
                    touch,
                    metadata,
                )
                .await
                .map_err(refusal)?;
                let status = MessageCommand::RecordStatus {
                    conversation_id: s.conversation_id,
                    phone_number_id: s.phone_number_id,
                    report: s.report,
                };
                execute(&f.messages, s.wamid.as_str(), status, metadata)
                    .await
                    .map_err(refusal)
            }
            Instruction::Template {
                template_id,
                report_id,
                change,
            } => {
                let command = TemplateCommand::RecordChange { report_id, change };
                execute(&f.templates, &template_id, command, metadata)
                    .await
                    .map_err(refusal)
            }
            Instruction::AccountNotification {
                waba_id,
                notification_id,
                notification,
            } => {
                let command = BusinessAccountCommand::RecordNotification {
                    notification_id,
                    notification,
                };
                execute(&f.accounts, waba_id.as_str(), command, metadata)
                    .await
                    .map_err(refusal)
            }
        }
    }
}

enum Refusal {
    Permanent(String),
    Transient(String),
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
