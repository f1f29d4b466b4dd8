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
}

impl WebhookInbox {
    /// Starts the writer task over `database`.
    pub fn start(database: Database) -> Self {
        let (sender, receiver) = mpsc::channel(4 * MAX_GROUP);
        let (stored_tx, stored) = watch::channel(0);
        tokio::spawn(write_loop(database, receiver, stored_tx));
        Self { sender, stored }
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

    /// Changes after every commit, so the processor wakes at once.
    pub fn stored(&self) -> watch::Receiver<u64> {
        self.stored.clone()
    }
}

async fn write_loop(
    database: Database,
    mut receiver: mpsc::Receiver<Pending>,
    stored: watch::Sender<u64>,
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

async fn insert_group(database: &Database, group: &[Pending]) -> Result<(), StoreError> {
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
update raw_webhooks set claimed_until = $1, attempts = attempts + 1
 where id in (select id from raw_webhooks
               where status = 'pending' and (claimed_until is null or claimed_until < $2)
               order by id limit $3 for update skip locked)
returning id, body, request_id, received_at, attempts";
    const SQLITE: &str = "
update raw_webhooks set claimed_until = $1, attempts = attempts + 1
 where id in (select id from raw_webhooks
               where status = 'pending' and (claimed_until is null or claimed_until < $2)
               order by id limit $3)
returning id, body, request_id, received_at, attempts";
    let limit = i64::from(limit);
    let mut rows: Vec<ClaimedWebhook> = match database {
        Database::Postgres(pool) => {
            sqlx::query_as(POSTGRES)
                .bind(claim_until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
        Database::Sqlite(pool) => {
            sqlx::query_as(SQLITE)
                .bind(claim_until)
                .bind(now)
                .bind(limit)
                .fetch_all(pool)
                .await?
        }
    };
    rows.sort_by_key(|w| w.id);
    Ok(rows)
}

/// The statement that marks a webhook processed (run inside the transaction of its events).
pub fn processed_statement(id: i64, now: i64) -> Statement {
    Statement::new(
        "update raw_webhooks set status = 'processed', processed_at = $1, claimed_until = null, last_error = null where id = $2",
        vec![now.into(), id.into()],
    )
}

/// The statement that marks a webhook failed for good (it cannot succeed by retrying).
pub fn failed_statement(id: i64, now: i64, error: &str) -> Statement {
    Statement::new(
        "update raw_webhooks set status = 'failed', processed_at = $1, claimed_until = null, last_error = $2 where id = $3",
        vec![now.into(), error.into(), id.into()],
    )
}

/// Leaves a webhook pending, to be tried again after `retry_at` (Unix milliseconds).
///
/// # Errors
/// Database failures.
pub async fn release(
    database: &Database,
    id: i64,
    retry_at: i64,
    error: &str,
) -> Result<(), StoreError> {
    let sql = "update raw_webhooks set claimed_until = $1, last_error = $2 where id = $3 and status = 'pending'";
    with_pool!(database, pool => sqlx::query(sql).bind(retry_at).bind(error).bind(id).execute(pool).await.map(|_| ())?);
    Ok(())
}

/// A webhook whose processing failed, as operators see it.
#[derive(Debug, Clone, Serialize)]
pub struct FailedWebhook {
    /// Its id.
    pub id: i64,
    /// When it was received.
    pub received_at: String,
    /// The request that delivered it.
    pub request_id: Option<String>,
    /// Processing attempts.
    pub attempts: i32,
    /// Why it failed.
    pub error: Option<String>,
    /// The raw body (lossless when it is UTF-8, as Meta's always are).
    pub body: String,
}

#[derive(sqlx::FromRow)]
struct FailedRow {
    id: i64,
    received_at: i64,
    request_id: Option<String>,
    attempts: i32,
    last_error: Option<String>,
    body: Vec<u8>,
}

/// Failed webhooks, newest first.
///
/// # Errors
/// Database failures.
pub async fn failed(database: &Database, limit: u32) -> Result<Vec<FailedWebhook>, StoreError> {
    let sql = "select id, received_at, request_id, attempts, last_error, body from raw_webhooks
               where status = 'failed' order by id desc limit $1";
    let rows: Vec<FailedRow> = with_pool!(database, pool => sqlx::query_as(sql).bind(i64::from(limit)).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(|row| FailedWebhook {
            id: row.id,
            received_at: Timestamp::from_unix_millis(row.received_at)
                .map_or_else(String::new, |t| t.to_string()),
            request_id: row.request_id,
            attempts: row.attempts,
            error: row.last_error,
            body: String::from_utf8_lossy(&row.body).into_owned(),
        })
        .collect())
}
