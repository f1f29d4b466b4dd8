//! The queue of agents' messages waiting to be sent.

use switchboard_domain::message::MessageEvent;
use switchboard_store::{RecordedEvent, SqlValue, Statement};

use crate::{DecodedEvent, Projection};

/// Builds the `outbound_queue` table.
pub struct OutboundQueueProjection;

const ENQUEUE: &str = "
insert into outbound_queue (message_id, conversation_id, phone_number_id, wa_id, user_id, priority_rank,
    available_at, content, reply_to)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
on conflict (message_id) do nothing";
const DEQUEUE: &str = "delete from outbound_queue where message_id = $1";
const DEAD: &str = "update outbound_queue set dead = 1, claimed_until = null, last_error = $1, dead_lettered_at = $2
    where message_id = $3";
const REQUEUE: &str =
    "update outbound_queue set dead = 0, attempts = 0, claimed_until = null, available_at = $1,
    dead_lettered_at = null where message_id = $2";

/// Queue order of a priority: high first.
pub fn priority_rank(priority: &str) -> i64 {
    match priority {
        "high" => 0,
        "low" => 2,
        _ => 1,
    }
}

impl Projection for OutboundQueueProjection {
    fn name(&self) -> &'static str {
        "outbound_queue"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["outbound_queue"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let DecodedEvent::Message(message) = decoded else {
            return;
        };
        let id = event.aggregate_id.as_str();
        match message {
            MessageEvent::OutboundRequested {
                conversation_id,
                phone_number_id,
                customer,
                content,
                reply_to,
                priority,
                at,
                ..
            } => out.push(Statement::new(
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
            )),
            MessageEvent::OutboundAccepted { .. } | MessageEvent::OutboundFailed { .. } => {
                out.push(Statement::new(DEQUEUE, vec![id.into()]));
            }
            MessageEvent::OutboundDeadLettered { error, at, .. } => out.push(Statement::new(
                DEAD,
                vec![
                    SqlValue::Text(serde_json::to_string(error).ok()),
                    at.unix_millis().into(),
                    id.into(),
                ],
            )),
            MessageEvent::OutboundRequeued { at, .. } => {
                out.push(Statement::new(
                    REQUEUE,
                    vec![at.unix_millis().into(), id.into()],
                ));
            }
            _ => {}
        }
    }
}
