//! The inbox: one row per conversation (and one per tag), with what its views filter and sort
//! on: [`view`] shows one, [`inbox`] lists and counts them.

mod inbox;
mod view;

pub use inbox::{counts, list, Assignee, Counts, InboxFilter, Sort, WindowState};
pub use view::{
    assignments, due, erased_of_customer, get, get_many, latest_with_customer, of_customer,
    AssignmentRow, ConversationView, CustomerView, LastMessageView, LockView,
};

use switchboard_domain::conversation::{ConversationEvent, ConversationStatus};
use switchboard_domain::message::MessageEvent;
use switchboard_domain::Timestamp;
use switchboard_store::{RecordedEvent, SqlValue, Statement};

use crate::{DecodedEvent, Projection};

/// Builds the `conversations` table.
pub struct ConversationsProjection;

const STARTED: &str = "
insert into conversations (id, phone_number_id, customer_wa_id, customer_user_id, started_at, last_activity_at, version)
values ($1, $2, $3, $4, $5, $5, $6)
on conflict (id) do update set
    phone_number_id = excluded.phone_number_id,
    customer_wa_id = excluded.customer_wa_id,
    customer_user_id = excluded.customer_user_id,
    started_at = excluded.started_at,
    version = excluded.version";

const IDENTIFIED: &str = "
update conversations set customer_wa_id = $1, customer_user_id = $2, version = $3 where id = $4";

const ASSIGNED: &str = "
update conversations set assigned_agent_id = $1, assigned_group_id = $2, version = $3 where id = $4";

const OWNER: &str = "update conversations set owner_agent_id = $1, version = $2 where id = $3";
/// A resolved conversation waits for nobody.
const STATUS: &str = "update conversations set status = $1, snoozed_until = $2,
    waiting_since = case when $1 = 'resolved' then null else waiting_since end,
    version = $3 where id = $4";
/// The bot let go: open, nobody's, in the group it was handed to.
const HANDED_OFF: &str = "update conversations set status = 'open', snoozed_until = null,
    owner_agent_id = null, assigned_agent_id = null, assigned_group_id = $1, version = $2
    where id = $3";
const TAGS: &str = "update conversations set tags = $1, version = $2 where id = $3";
const TAG_ADDED: &str =
    "insert into conversation_tags (conversation_id, tag) values ($1, $2) on conflict do nothing";
const TAG_REMOVED: &str = "delete from conversation_tags where conversation_id = $1 and tag = $2";
const REPLIED: &str = "update conversations set waiting_since = null, version = $1 where id = $2";
const LOCK: &str = "
update conversations set lock_agent_id = $1, lock_acquired_at = $2, lock_expires_at = $3, version = $4 where id = $5";
const LOCK_RENEWED: &str =
    "update conversations set lock_expires_at = $1, version = $2 where id = $3";

const NAMED: &str = "update conversations set profile_name = $1, version = $2 where id = $3";

/// What the customer said and who they are, erased on request (`[erased]` in their place).
const ERASED: &str = "update conversations set profile_name = '[erased]',
    customer_wa_id = case when customer_wa_id is null then null else '[erased]' end,
    customer_user_id = case when customer_user_id is null then null else '[erased]' end,
    last_message_preview = case when last_message_preview is null then null else '[erased]' end,
    version = $1 where id = $2";

/// The retention period: the preview of a last message written before `$1` reads `[erased]`.
const EXPIRED_PREVIEW: &str = "update conversations set
    last_message_preview = case when last_message_preview is null then null else '[erased]' end
    where id = $2 and last_message_at < $1";

const CUSTOMER_WROTE: &str = "
update conversations set
    last_customer_message_at = $1,
    waiting_since = coalesce(waiting_since, $1),
    window_closes_at = coalesce($2, window_closes_at),
    version = $3
where id = $4";

/// A message in the conversation: moves activity and the preview (only forward in time), counts
/// unread customer messages, and an answer sent after the customer started waiting ends the
/// wait (an echo from the business app included).
const MESSAGE: &str = "
insert into conversations (id, phone_number_id, customer_wa_id, customer_user_id, started_at,
    last_activity_at, last_message_id, last_message_preview, last_message_direction, last_message_at,
    unread_count, version)
values ($1, $2, $3, $4, $5, $5, $6, $7, $8, $5, $9, 0)
on conflict (id) do update set
    last_activity_at = case when excluded.last_activity_at > conversations.last_activity_at
        then excluded.last_activity_at else conversations.last_activity_at end,
    last_message_id = case when excluded.last_message_at >= coalesce(conversations.last_message_at, 0)
        then excluded.last_message_id else conversations.last_message_id end,
    last_message_preview = case when excluded.last_message_at >= coalesce(conversations.last_message_at, 0)
        then excluded.last_message_preview else conversations.last_message_preview end,
    last_message_direction = case when excluded.last_message_at >= coalesce(conversations.last_message_at, 0)
        then excluded.last_message_direction else conversations.last_message_direction end,
    last_message_at = case when excluded.last_message_at >= coalesce(conversations.last_message_at, 0)
        then excluded.last_message_at else conversations.last_message_at end,
    unread_count = conversations.unread_count + excluded.unread_count,
    waiting_since = case when excluded.last_message_direction = 'outbound'
        and excluded.last_message_at >= coalesce(conversations.waiting_since, 0)
        then null else conversations.waiting_since end";

/// The activity statement for a message event, if it is one that moves the conversation.
fn message_statement(message_id: &str, event: &MessageEvent) -> Option<Statement> {
    let (conversation_id, phone_number_id, customer, sent_at, preview, direction, unread) =
        match event {
            MessageEvent::InboundReceived {
                conversation_id,
                phone_number_id,
                customer,
                sent_at,
                content,
                ..
            } => (
                conversation_id,
                phone_number_id,
                customer,
                sent_at,
                content.preview(),
                "inbound",
                1,
            ),
            MessageEvent::EchoRecorded {
                conversation_id,
                phone_number_id,
                customer,
                sent_at,
                content,
            } => (
                conversation_id,
                phone_number_id,
                customer,
                sent_at,
                content.preview(),
                "outbound",
                0,
            ),
            MessageEvent::OutboundRequested {
                conversation_id,
                phone_number_id,
                customer,
                content,
                at,
                ..
            } => (
                conversation_id,
                phone_number_id,
                customer,
                at,
                content.preview(),
                "outbound",
                0,
            ),
            _ => return None,
        };
    Some(Statement::new(
        MESSAGE,
        vec![
            conversation_id.to_string().into(),
            phone_number_id.as_str().into(),
            customer.wa_id.clone().into(),
            customer.user_id.clone().into(),
            sent_at.unix_millis().into(),
            message_id.into(),
            preview.into(),
            direction.into(),
            SqlValue::from(unread),
        ],
    ))
}

impl Projection for ConversationsProjection {
    fn name(&self) -> &'static str {
        "conversations"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["conversations", "conversation_tags"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["Conversation", "Message"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let id = event.aggregate_id.as_str();
        let version = SqlValue::from(event.sequence);
        match decoded {
            DecodedEvent::Conversation(ConversationEvent::Started {
                phone_number_id,
                customer,
                started_at,
            }) => out.push(Statement::new(
                STARTED,
                vec![
                    id.into(),
                    phone_number_id.as_str().into(),
                    customer.wa_id.clone().into(),
                    customer.user_id.clone().into(),
                    started_at.unix_millis().into(),
                    version,
                ],
            )),
            DecodedEvent::Conversation(ConversationEvent::CustomerIdentified { customer }) => {
                out.push(Statement::new(
                    IDENTIFIED,
                    vec![
                        customer.wa_id.clone().into(),
                        customer.user_id.clone().into(),
                        version,
                        id.into(),
                    ],
                ));
            }
            DecodedEvent::Conversation(ConversationEvent::CustomerProfileNamed { name }) => {
                out.push(Statement::new(
                    NAMED,
                    vec![name.as_str().into(), version, id.into()],
                ));
            }
            DecodedEvent::Conversation(ConversationEvent::CustomerMessageReceived {
                sent_at,
                window_closes_at,
                ..
            }) => out.push(Statement::new(
                CUSTOMER_WROTE,
                vec![
                    sent_at.unix_millis().into(),
                    window_closes_at.map(Timestamp::unix_millis).into(),
                    version,
                    id.into(),
                ],
            )),
            DecodedEvent::Conversation(ConversationEvent::Assigned { agent, group, .. }) => {
                out.push(Statement::new(
                    ASSIGNED,
                    vec![
                        agent.map(|a| a.to_string()).into(),
                        group.map(|g| g.to_string()).into(),
                        version,
                        id.into(),
                    ],
                ));
            }
            DecodedEvent::Conversation(ConversationEvent::AutoAssigned { agent, .. }) => {
                out.push(Statement::new(
                    "update conversations set assigned_agent_id = $1, version = $2 where id = $3",
                    vec![agent.to_string().into(), version, id.into()],
                ));
            }
            DecodedEvent::Conversation(ConversationEvent::CustomerErased { .. }) => {
                out.push(Statement::new(ERASED, vec![version, id.into()]));
            }
            DecodedEvent::Conversation(ConversationEvent::ContentExpired { before, .. }) => {
                out.push(Statement::new(
                    EXPIRED_PREVIEW,
                    vec![before.unix_millis().into(), id.into()],
                ));
                out.push(Statement::new(
                    "update conversations set version = $1 where id = $2",
                    vec![version, id.into()],
                ));
            }
            DecodedEvent::Conversation(ConversationEvent::NoteAdded { .. }) => {
                out.push(Statement::new(
                    "update conversations set version = $1 where id = $2",
                    vec![version, id.into()],
                ));
            }
            DecodedEvent::Conversation(ConversationEvent::Unassigned { .. }) => {
                out.push(Statement::new(
                    ASSIGNED,
                    vec![
                        SqlValue::Text(None),
                        SqlValue::Text(None),
                        version,
                        id.into(),
                    ],
                ))
            }
            DecodedEvent::Conversation(ConversationEvent::TakenOver { agent, .. }) => out.push(
                Statement::new(OWNER, vec![agent.to_string().into(), version, id.into()]),
            ),
            DecodedEvent::Conversation(ConversationEvent::HandedBackToBot { .. }) => out.push(
                Statement::new(OWNER, vec![SqlValue::Text(None), version, id.into()]),
            ),
            DecodedEvent::Conversation(ConversationEvent::HandedOff { group, .. }) => {
                out.push(Statement::new(
                    HANDED_OFF,
                    vec![group.map(|g| g.to_string()).into(), version, id.into()],
                ));
            }
            DecodedEvent::Conversation(ConversationEvent::StatusChanged { status, .. }) => {
                let snoozed_until = match status {
                    ConversationStatus::Snoozed { until } => Some(until.unix_millis()),
                    _ => None,
                };
                out.push(Statement::new(
                    STATUS,
                    vec![
                        status.name().into(),
                        snoozed_until.into(),
                        version,
                        id.into(),
                    ],
                ));
            }
            DecodedEvent::Conversation(
                ConversationEvent::TagAdded { tag, tags, .. }
                | ConversationEvent::TagRemoved { tag, tags, .. },
            ) => {
                let row = if matches!(
                    decoded,
                    DecodedEvent::Conversation(ConversationEvent::TagAdded { .. })
                ) {
                    TAG_ADDED
                } else {
                    TAG_REMOVED
                };
                out.push(Statement::new(row, vec![id.into(), tag.as_str().into()]));
                out.push(Statement::new(
                    TAGS,
                    vec![
                        SqlValue::Text(serde_json::to_string(tags).ok()),
                        version,
                        id.into(),
                    ],
                ));
            }
            DecodedEvent::Conversation(ConversationEvent::LockAcquired {
                agent,
                acquired_at,
                expires_at,
            }) => out.push(Statement::new(
                LOCK,
                vec![
                    agent.to_string().into(),
                    acquired_at.unix_millis().into(),
                    expires_at.unix_millis().into(),
                    version,
                    id.into(),
                ],
            )),
            DecodedEvent::Conversation(ConversationEvent::LockRenewed { expires_at, .. }) => out
                .push(Statement::new(
                    LOCK_RENEWED,
                    vec![expires_at.unix_millis().into(), version, id.into()],
                )),
            DecodedEvent::Conversation(
                ConversationEvent::LockReleased { .. } | ConversationEvent::LockExpired { .. },
            ) => out.push(Statement::new(
                LOCK,
                vec![
                    SqlValue::Text(None),
                    SqlValue::Int(None),
                    SqlValue::Int(None),
                    version,
                    id.into(),
                ],
            )),
            DecodedEvent::Conversation(ConversationEvent::ReadByAgent { .. }) => {
                out.push(Statement::new(
                    "update conversations set unread_count = 0, version = $1 where id = $2",
                    vec![version, id.into()],
                ))
            }
            // The reply itself shows through its message; the conversation's version moves on.
            DecodedEvent::Conversation(ConversationEvent::AgentReplied { .. }) => {
                out.push(Statement::new(REPLIED, vec![version, id.into()]))
            }
            DecodedEvent::Message(message) => out.extend(message_statement(id, message)),
            _ => {}
        }
    }
}
