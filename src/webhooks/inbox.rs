//! The durable inbox of raw webhooks, with group commit.
//!
//! A single writer task takes every webhook that arrived while the previous commit was in
//! flight, inserts them in one statement and commits once, then acknowledges each: latency
//! stays about one commit while throughput grows with the batch (DESIGN.md §2).

use bytes::Bytes;
use serde::Serialize;
use switchboard_domain::Timestamp;
use switchboard_store::{with_pool, Database, Statement, StoreError};
use tokio::sync::{mpsc, oneshot, watch};

/// The most webhooks written in one commit.
const MAX_GROUP: usize = 256;

struct Pending {
    body: Bytes,
    request_id: Option<String>,
    received_at: i64,
    done: oneshot::Sender<Result<(), String>>,
}

/// Why a webhook could not be stored.
#[derive(Debug, thiserror::Error)]
pub enum InboxError {
    /// The writer task is gone (shutting down).
    #[error("webhook inbox is shutting down")]
    Closed,
    /// The database refused the write.
    #[error("webhook could not be stored: {0}")]
    Write(String),
}

/// Handle to the inbox: cheap to clone, shared by every request.
#[derive(Clone)]
pub struct WebhookInbox {
    sender: mpsc::Sender<Pending>,
    stored: watch::Receiver<u64>,
    wake: std::sync::Arc<watch::Sender<u64>>,
}

impl WebhookInbox {
    /// Starts the writer task over `database`.
    pub fn start(database: Database) -> Self {
        let (sender, receiver) = mpsc::channel(4 * MAX_GROUP);
        let (stored_tx, stored) = watch::channel(0);
        let wake = std::sync::Arc::new(stored_tx);
        tokio::spawn(write_loop(database, receiver, std::sync::Arc::clone(&wake)));
        Self {
            sender,
            stored,
            wake,
        }
    }

    /// Stores `body`; returns once it is committed.
    ///
    /// # Errors
    /// When the database refuses the write or the inbox is shutting down.
    pub async fn store(
        &self,
        body: Bytes,
        request_id: Option<String>,
        received_at: Timestamp,
    ) -> Result<(), InboxError> {
        let (done, committed) = oneshot::channel();
        let pending = Pending {
            body,
            request_id,
            received_at: received_at.unix_millis(),
            done,
        };
        self.sender
            .send(pending)
            .await
            .map_err(|_| InboxError::Closed)?;
        committed
            .await
            .map_err(|_| InboxError::Closed)?
            .map_err(InboxError::Write)
    }

    /// Wakes the processor (webhooks were queued again).
    pub fn wake(&self) {
        self.wake.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Changes after every commit, so the processor wakes at once.
    pub fn stored(&self) -> watch::Receiver<u64> {
        self.stored.clone()
    }
}

async fn write_loop(
    database: Database,
    mut receiver: mpsc::Receiver<Pending>,
    stored: std::sync::Arc<watch::Sender<u64>>,
) {
    let mut group = Vec::with_capacity(MAX_GROUP);
    while receiver.recv_many(&mut group, MAX_GROUP).await > 0 {
        let result = insert_group(&database, &group).await.map_err(|e| {
            tracing::error!(error = %crate::telemetry::error_chain(&e), count = group.len(), "storing webhooks failed");
            e.to_string()
        });
        if result.is_ok() {
            stored.send_modify(|n| *n = n.wrapping_add(1));
        }
        for pending in group.drain(..) {
            // The request may have gone away (client timeout); its webhook is stored regardless.
            let _ignored = pending.done.send(result.clone());
        }
    }
}

/// Stores a group of webhooks; tried once more on a fresh connection when the first was found
/// lost (a database restart, terminated sessions): a webhook is answered 503 only when the
/// database cannot take it. Storing one twice is harmless, processing is idempotent.
async fn insert_group(database: &Database, group: &[Pending]) -> Result<(), StoreError> {
    match insert_group_once(database, group).await {
        Err(StoreError::Database(error))
            if switchboard_store::database::connection_lost(&error) =>
        {
            tracing::warn!(%error, "a database connection was lost; storing the webhooks again");
            insert_group_once(database, group).await
        }
        other => other,
    }
}

async fn insert_group_once(database: &Database, group: &[Pending]) -> Result<(), StoreError> {
    with_pool!(database, pool => {
        let mut insert = sqlx::QueryBuilder::new("insert into raw_webhooks (received_at, request_id, body) ");
        insert.push_values(group, |mut row, pending| {
            row.push_bind(pending.received_at)
                .push_bind(pending.request_id.as_deref())
                .push_bind(pending.body.as_ref());
        });
        insert.build().execute(pool).await?;
    });
    Ok(())
}

/// A stored webhook claimed for processing.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ClaimedWebhook {
    /// Its id.
    pub id: i64,
    /// The raw body, exactly as signed.
    pub body: Vec<u8>,
    /// The id of the request that delivered it.
    pub request_id: Option<String>,
    /// When it was received (Unix milliseconds).
    pub received_at: i64,
    /// Processing attempts so far, this one included.
    pub attempts: i32,
    /// The claim it was taken under (shared by its batch).
    pub claim_token: Option<String>,
}

/// Claims up to `limit` pending webhooks, oldest first, hiding them from other workers until
/// `claim_until` (Unix milliseconds). On PostgreSQL concurrent workers skip each other's rows.
///
/// # Errors
/// Database failures.
pub async fn claim(
    database: &Database,
    now: i64,
    claim_until: i64,
    limit: u32,
) -> Result<Vec<ClaimedWebhook>, StoreError> {
    const POSTGRES: &str = "
update raw_webhooks set claimed_until = $1, attempts = attempts + 1, claim_token = $2
 where id in (select id from raw_webhooks
               where status = 'pending' and (claimed_until is null or claimed_until < $3)
               order by id limit $4 for update skip locked)
returning id, body, request_id, received_at, attempts, claim_token";
    const SQLITE: &str = "
update raw_webhooks set claimed_until = $1, attempts = attempts + 1, claim_token = $2
 where id in (select id from raw_webhooks
               where status = 'pending' and (claimed_until is null or claimed_until < $3)
               order by id limit $4)
returning id, body, request_id, received_at, attempts, claim_token";
    let limit = i64::from(limit);
    let token = uuid::Uuid::new_v4().to_string();
    let sql = match database {
        Database::Postgres(_) => POSTGRES,
        Database::Sqlite(_) => SQLITE,
    };
    let mut rows: Vec<ClaimedWebhook> = with_pool!(database, pool => sqlx::query_as(sql)
        .bind(claim_until).bind(&token).bind(now).bind(limit).fetch_all(pool).await?);
    rows.sort_by_key(|w| w.id);
    Ok(rows)
}

/// Gives back what is still pending of a claim, due again at `retry_at` (Unix milliseconds):
/// after a storage failure the rest of a batch is retried soon rather than after the claim's
/// whole visibility timeout. The claim's attempt is not counted: those webhooks were not tried.
///
/// # Errors
/// Database failures (the claim then simply runs out).
pub async fn release(
    database: &Database,
    claim_token: &str,
    retry_at: i64,
) -> Result<(), StoreError> {
    let statement = Statement::new(
        "update raw_webhooks set claimed_until = $1, claim_token = null,
            attempts = case when attempts > 0 then attempts - 1 else 0 end
          where claim_token = $2 and status = 'pending'",
        vec![retry_at.into(), claim_token.into()],
    );
    database.execute_atomically(&[statement]).await
}

/// The statement that marks a webhook processed (run inside the transaction of its events).
pub fn processed_statement(id: i64, now: i64) -> Statement {
    Statement::new(
        "update raw_webhooks set status = 'processed', processed_at = $1, claimed_until = null, claim_token = null, last_error = null where id = $2",
        vec![now.into(), id.into()],
    )
}

/// The statement that marks processed every webhook of a claim not marked otherwise before
/// (one statement for the whole batch, inside the transaction of its events).
pub fn claim_processed_statement(claim_token: &str, now: i64) -> Statement {
    Statement::new(
        "update raw_webhooks set status = 'processed', processed_at = $1, claimed_until = null, last_error = null, claim_token = null
         where claim_token = $2 and status = 'pending'",
        vec![now.into(), claim_token.into()],
    )
}

/// The statement that records one failed attempt and its error.
pub fn attempt_statement(
    id: i64,
    attempt: i32,
    now: i64,
    error: &str,
    retryable: bool,
) -> Statement {
    Statement::new(
        "insert into webhook_attempts (webhook_id, attempt, at, error, retryable) values ($1, $2, $3, $4, $5)",
        vec![
            id.into(),
            i64::from(attempt).into(),
            now.into(),
            error.into(),
            i64::from(retryable).into(),
        ],
    )
}

/// The statement that dead-letters a webhook: it waits, visible, until an operator retries it.
pub fn dead_letter_statement(id: i64, now: i64, error: &str) -> Statement {
    Statement::new(
        "update raw_webhooks set status = 'failed', processed_at = $1, dead_lettered_at = $1, claimed_until = null, claim_token = null, last_error = $2 where id = $3",
        vec![now.into(), error.into(), id.into()],
    )
}

/// The statement that leaves a webhook pending until `retry_at` (Unix milliseconds).
pub fn retry_later_statement(id: i64, retry_at: i64, error: &str) -> Statement {
    Statement::new(
        "update raw_webhooks set claimed_until = $1, claim_token = null, last_error = $2 where id = $3 and status = 'pending'",
        vec![retry_at.into(), error.into(), id.into()],
    )
}

fn rfc3339(millis: i64) -> String {
    Timestamp::from_unix_millis(millis).map_or_else(String::new, |t| t.to_string())
}

/// A dead-lettered webhook in a list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetterSummary {
    /// Its id.
    pub id: i64,
    /// When it was received.
    pub received_at: String,
    /// When it was dead-lettered.
    pub dead_lettered_at: Option<String>,
    /// The request that delivered it.
    pub request_id: Option<String>,
    /// Processing attempts since it was last (re)queued.
    pub attempts: i32,
    /// The last error.
    pub error: Option<String>,
}

/// One failed attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AttemptView {
    /// Attempt number (counting from the last time it was queued).
    pub attempt: i64,
    /// When it failed.
    pub at: String,
    /// Why.
    pub error: String,
    /// Whether it was worth retrying.
    pub retryable: bool,
}

/// A dead-lettered webhook with its raw body and every failed attempt.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    /// The summary.
    #[serde(flatten)]
    pub summary: DeadLetterSummary,
    /// The raw body, exactly as signed (lossless for UTF-8, as Meta's always are).
    pub body: String,
    /// Every failed attempt, oldest first.
    pub attempt_history: Vec<AttemptView>,
}

#[derive(sqlx::FromRow)]
struct DeadLetterRow {
    id: i64,
    received_at: i64,
    dead_lettered_at: Option<i64>,
    request_id: Option<String>,
    attempts: i32,
    last_error: Option<String>,
}

impl From<DeadLetterRow> for DeadLetterSummary {
    fn from(row: DeadLetterRow) -> Self {
        Self {
            id: row.id,
            received_at: rfc3339(row.received_at),
            dead_lettered_at: row.dead_lettered_at.map(rfc3339),
            request_id: row.request_id,
            attempts: row.attempts,
            error: row.last_error,
        }
    }
}

/// Dead letters, newest first, `limit` at a time after `before_id`.
///
/// # Errors
/// Database failures.
pub async fn dead_letters(
    database: &Database,
    before_id: Option<i64>,
    limit: u32,
) -> Result<Vec<DeadLetterSummary>, StoreError> {
    let sql = "select id, received_at, dead_lettered_at, request_id, attempts, last_error from raw_webhooks
               where status = 'failed' and id < $1 order by id desc limit $2";
    let rows: Vec<DeadLetterRow> = with_pool!(database, pool => sqlx::query_as(sql)
        .bind(before_id.unwrap_or(i64::MAX)).bind(i64::from(limit)).fetch_all(pool).await?);
    Ok(rows.into_iter().map(DeadLetterSummary::from).collect())
}

/// One dead letter with its body and attempts, or `None`.
///
/// # Errors
/// Database failures.
pub async fn dead_letter(database: &Database, id: i64) -> Result<Option<DeadLetter>, StoreError> {
    let sql = "select id, received_at, dead_lettered_at, request_id, attempts, last_error from raw_webhooks
               where status = 'failed' and id = $1";
    let row: Option<DeadLetterRow> =
        with_pool!(database, pool => sqlx::query_as(sql).bind(id).fetch_optional(pool).await?);
    let Some(row) = row else {
        return Ok(None);
    };
    let body: Vec<u8> = with_pool!(database, pool => sqlx::query_scalar(
        "select body from raw_webhooks where id = $1").bind(id).fetch_one(pool).await?);
    let attempts: Vec<(i64, i64, String, i64)> = with_pool!(database, pool => sqlx::query_as(
        "select attempt, at, error, retryable from webhook_attempts where webhook_id = $1 order by id")
        .bind(id).fetch_all(pool).await?);
    Ok(Some(DeadLetter {
        summary: row.into(),
        body: String::from_utf8_lossy(&body).into_owned(),
        attempt_history: attempts
            .into_iter()
            .map(|(attempt, at, error, retryable)| AttemptView {
                attempt,
                at: rfc3339(at),
                error,
                retryable: retryable != 0,
            })
            .collect(),
    }))
}

/// Queues dead letters again (one, or all when `id` is `None`), with a fresh attempt count;
/// returns how many. Processing is idempotent, so retrying one whose events exist adds none.
///
/// # Errors
/// Database failures.
pub async fn requeue(database: &Database, id: Option<i64>) -> Result<u64, StoreError> {
    let sql = "update raw_webhooks set status = 'pending', attempts = 0, claimed_until = null,
               dead_lettered_at = null, processed_at = null
               where status = 'failed' and ($1 = 0 or id = $2)";
    let (all, id) = (i64::from(id.is_none()), id.unwrap_or(0));
    Ok(
        with_pool!(database, pool => sqlx::query(sql).bind(1 - all).bind(id).execute(pool).await?.rows_affected()),
    )
}

/// Deletes dead letters received before `older_than` (Unix milliseconds), with their attempts;
/// returns how many.
///
/// # Errors
/// Database failures.
pub async fn purge(database: &Database, older_than: i64) -> Result<u64, StoreError> {
    let attempts = "delete from webhook_attempts where webhook_id in
                    (select id from raw_webhooks where status = 'failed' and received_at < $1)";
    let webhooks = "delete from raw_webhooks where status = 'failed' and received_at < $1";
    with_pool!(database, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(attempts).bind(older_than).execute(&mut *tx).await?;
        let deleted = sqlx::query(webhooks).bind(older_than).execute(&mut *tx).await?.rows_affected();
        tx.commit().await?;
        Ok(deleted)
    })
}

/// How many webhooks are dead-lettered now.
///
/// # Errors
/// Database failures.
pub async fn dead_letter_count(database: &Database) -> Result<i64, StoreError> {
    let sql = "select count(*) from raw_webhooks where status = 'failed'";
    Ok(with_pool!(database, pool => sqlx::query_scalar(sql).fetch_one(pool).await?))
}
