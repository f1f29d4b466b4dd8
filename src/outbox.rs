//! The sender's outbox: agents' messages that may still be sent. Worker state, not a read
//! model: a row is written in the same transaction as the message's own events (see
//! [`changes`]) — inserted with the request, released with a failed attempt, marked dead with a
//! dead letter, deleted with Meta's acceptance, a final refusal or a purge — so a row exists
//! exactly while the message may still go out, whatever the projections are doing, and no
//! rebuild touches it. Senders claim rows with a visibility timeout (`claimed_until`) and count
//! their claims (`attempts`).

use std::collections::HashMap;

use cqrs_es::AggregateError;
use switchboard_domain::message::{Message, MessageCommand, MessageError, MessageEvent};
use switchboard_store::{EventRepository, SqlValue, Statement, StoreError};

use crate::transaction::{retrying, Attempt, Transaction};

const ENQUEUE: &str = "
insert into outbound_queue (message_id, conversation_id, phone_number_id, wa_id, user_id, priority_rank,
    available_at, content, reply_to)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
on conflict (message_id) do nothing";
const DELETE: &str = "delete from outbound_queue where message_id = $1";
const RELEASE: &str =
    "update outbound_queue set claimed_until = null, available_at = $1 where message_id = $2";
const DEAD: &str = "update outbound_queue set dead = 1, claimed_until = null, last_error = $1,
    dead_lettered_at = $2 where message_id = $3";
const REQUEUE: &str = "update outbound_queue set dead = 0, attempts = 0, claimed_until = null,
    available_at = $1, last_error = null, dead_lettered_at = null where message_id = $2";

/// Runs `command` on message `id` and applies what its events do to the outbox, in one
/// transaction (redone on a concurrent change). A settled message's row, if one is left, goes.
///
/// # Errors
/// The message's refusal; storage failures.
pub async fn execute(
    log: &EventRepository,
    id: &str,
    command: MessageCommand,
    metadata: &HashMap<String, String>,
) -> Result<Vec<MessageEvent>, AggregateError<MessageError>> {
    retrying(|| async {
        let mut tx = Transaction::new(log, metadata);
        let mut message = tx.load::<Message>(id).await.map_err(storage)?;
        let events = tx.decide(id, &mut message, command.clone()).await?;
        if events.is_empty() && message.aggregate.is_settled() {
            tx.also(remove(id));
        }
        for statement in changes(id, &events) {
            tx.also(statement);
        }
        Attempt::commit(tx, events).await.map_err(storage)
    })
    .await
}

fn storage(error: StoreError) -> AggregateError<MessageError> {
    error.into_aggregate_error()
}

/// Queue order of a priority: high first.
pub fn priority_rank(priority: &str) -> i64 {
    match priority {
        "high" => 0,
        "low" => 2,
        _ => 1,
    }
}

/// What the message's new `events` do to its outbox row (to run in their transaction).
pub fn changes(message_id: &str, events: &[MessageEvent]) -> Vec<Statement> {
    events
        .iter()
        .filter_map(|event| change(message_id, event))
        .collect()
}

/// Removes the row of a message that may no longer be sent (its outcome was recorded before).
pub fn remove(message_id: &str) -> Statement {
    Statement::new(DELETE, vec![message_id.into()])
}

fn change(id: &str, event: &MessageEvent) -> Option<Statement> {
    Some(match event {
        MessageEvent::OutboundRequested {
            conversation_id,
            phone_number_id,
            customer,
            content,
            reply_to,
            priority,
            at,
            ..
        } => Statement::new(
            ENQUEUE,
            vec![
                id.into(),
                conversation_id.to_string().into(),
                phone_number_id.as_str().into(),
                customer.wa_id.clone().into(),
                customer.user_id.clone().into(),
                priority_rank(priority).into(),
                at.unix_millis().into(),
                SqlValue::Text(serde_json::to_string(content).ok()),
                reply_to.clone().into(),
            ],
        ),
        MessageEvent::OutboundAccepted { .. }
        | MessageEvent::OutboundFailed { .. }
        | MessageEvent::DeadLetterPurged { .. } => remove(id),
        MessageEvent::OutboundAttemptFailed { retry_at, .. } => {
            Statement::new(RELEASE, vec![retry_at.unix_millis().into(), id.into()])
        }
        MessageEvent::OutboundDeadLettered { error, at, .. } => Statement::new(
            DEAD,
            vec![
                SqlValue::Text(serde_json::to_string(error).ok()),
                at.unix_millis().into(),
                id.into(),
            ],
        ),
        MessageEvent::OutboundRequeued { at, .. } => {
            Statement::new(REQUEUE, vec![at.unix_millis().into(), id.into()])
        }
        _ => return None,
    })
}

/// An erasure request's pending sends: their rows (the customer's number and what was to be
/// sent) are deleted, so they are not sent and hold nothing of the customer; returns how many.
///
/// # Errors
/// Database failures.
pub async fn forget_conversation(
    database: &switchboard_store::Database,
    conversation: &str,
) -> Result<u64, StoreError> {
    let deleted = switchboard_store::with_pool!(database, pool =>
        sqlx::query("delete from outbound_queue where conversation_id = $1")
            .bind(conversation).execute(pool).await?.rows_affected());
    Ok(deleted)
}
