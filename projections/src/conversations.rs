//! The inbox: one row per conversation, newest activity first.

use serde::Serialize;
use switchboard_domain::conversation::{ConversationEvent, ConversationStatus};
use switchboard_domain::message::MessageEvent;
use switchboard_domain::Timestamp;
use switchboard_store::{with_pool, Database, RecordedEvent, SqlValue, Statement};

use crate::page::{page_size, rfc3339, rfc3339_opt, Cursor, Page};
use crate::scope::scope_filter;
use crate::ReadScope;
use crate::{DecodedEvent, Projection, ProjectionError};

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
const STATUS: &str =
    "update conversations set status = $1, snoozed_until = $2, version = $3 where id = $4";
const TAGS: &str = "update conversations set tags = $1, version = $2 where id = $3";
const LOCK: &str = "
update conversations set lock_agent_id = $1, lock_acquired_at = $2, lock_expires_at = $3, version = $4 where id = $5";
const LOCK_RENEWED: &str =
    "update conversations set lock_expires_at = $1, version = $2 where id = $3";

const NAMED: &str = "update conversations set profile_name = $1, version = $2 where id = $3";

const CUSTOMER_WROTE: &str = "
update conversations set
    last_customer_message_at = $1,
    window_closes_at = coalesce($2, window_closes_at),
    version = $3
where id = $4";

/// A message in the conversation: moves activity and the preview (only forward in time), and
/// counts unread customer messages.
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
    unread_count = conversations.unread_count + excluded.unread_count";

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
        &["conversations"]
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
                ConversationEvent::TagAdded { tags, .. }
                | ConversationEvent::TagRemoved { tags, .. },
            ) => out.push(Statement::new(
                TAGS,
                vec![
                    SqlValue::Text(serde_json::to_string(tags).ok()),
                    version,
                    id.into(),
                ],
            )),
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
                out.push(Statement::new(
                    "update conversations set version = $1 where id = $2",
                    vec![version, id.into()],
                ))
            }
            DecodedEvent::Message(message) => out.extend(message_statement(id, message)),
            _ => {}
        }
    }
}

/// The customer of a conversation, as the inbox shows them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct CustomerView {
    /// Phone-based WhatsApp id, when known.
    pub wa_id: Option<String>,
    /// Business-scoped user id, when known.
    pub user_id: Option<String>,
    /// WhatsApp profile name, when known.
    pub profile_name: Option<String>,
}

/// The newest message of a conversation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct LastMessageView {
    /// Message id.
    pub id: String,
    /// One-line preview.
    pub preview: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Meta's timestamp of it.
    pub at: String,
}

/// A conversation's lock.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct LockView {
    /// The holder.
    pub agent_id: String,
    /// When it was taken.
    pub acquired_at: String,
    /// When it lapses.
    pub expires_at: String,
}

/// One conversation in the inbox.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct ConversationView {
    /// Conversation id.
    pub id: String,
    /// The customer.
    pub customer: CustomerView,
    /// The business number.
    pub phone_number_id: String,
    /// `open`, …
    pub status: String,
    /// The newest message.
    pub last_message: Option<LastMessageView>,
    /// Customer messages not yet read by an agent.
    pub unread_count: i64,
    /// When anything last happened.
    pub last_activity_at: String,
    /// When the customer last wrote.
    pub last_customer_message_at: Option<String>,
    /// When free-form replies stop being allowed (absent: never opened).
    pub service_window_closes_at: Option<String>,
    /// The owning agent (absent: the bot).
    pub owner_agent_id: Option<String>,
    /// `owner_agent_id` is empty: the bot has it.
    pub owned_by_bot: bool,
    /// When a snoozed conversation wakes up.
    pub snoozed_until: Option<String>,
    /// Tags.
    pub tags: Vec<String>,
    /// The lock as last recorded (it is free once `expires_at` has passed).
    pub lock: Option<LockView>,
    /// The agent it is assigned to.
    pub assigned_agent_id: Option<String>,
    /// The group it is assigned to.
    pub assigned_group_id: Option<String>,
    /// The conversation aggregate's version, for collision detection.
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    id: String,
    phone_number_id: String,
    customer_wa_id: Option<String>,
    customer_user_id: Option<String>,
    profile_name: Option<String>,
    status: String,
    last_activity_at: i64,
    last_message_id: Option<String>,
    last_message_preview: Option<String>,
    last_message_direction: Option<String>,
    last_message_at: Option<i64>,
    unread_count: i64,
    last_customer_message_at: Option<i64>,
    window_closes_at: Option<i64>,
    assigned_agent_id: Option<String>,
    assigned_group_id: Option<String>,
    owner_agent_id: Option<String>,
    snoozed_until: Option<i64>,
    tags: String,
    lock_agent_id: Option<String>,
    lock_acquired_at: Option<i64>,
    lock_expires_at: Option<i64>,
    version: i64,
}

impl From<ConversationRow> for ConversationView {
    fn from(row: ConversationRow) -> Self {
        let last_message = match (row.last_message_id, row.last_message_at) {
            (Some(id), Some(at)) => Some(LastMessageView {
                id,
                preview: row.last_message_preview.unwrap_or_default(),
                direction: row.last_message_direction.unwrap_or_default(),
                at: rfc3339(at),
            }),
            _ => None,
        };
        Self {
            id: row.id,
            customer: CustomerView {
                wa_id: row.customer_wa_id,
                user_id: row.customer_user_id,
                profile_name: row.profile_name,
            },
            phone_number_id: row.phone_number_id,
            status: row.status,
            last_message,
            unread_count: row.unread_count,
            last_activity_at: rfc3339(row.last_activity_at),
            last_customer_message_at: rfc3339_opt(row.last_customer_message_at),
            service_window_closes_at: rfc3339_opt(row.window_closes_at),
            owned_by_bot: row.owner_agent_id.is_none(),
            owner_agent_id: row.owner_agent_id,
            snoozed_until: rfc3339_opt(row.snoozed_until),
            tags: serde_json::from_str(&row.tags).unwrap_or_default(),
            lock: match (row.lock_agent_id, row.lock_acquired_at, row.lock_expires_at) {
                (Some(agent_id), Some(acquired_at), Some(expires_at)) => Some(LockView {
                    agent_id,
                    acquired_at: rfc3339(acquired_at),
                    expires_at: rfc3339(expires_at),
                }),
                _ => None,
            },
            assigned_agent_id: row.assigned_agent_id,
            assigned_group_id: row.assigned_group_id,
            version: row.version,
        }
    }
}

macro_rules! conversation_columns {
    () => {
        "id, phone_number_id, customer_wa_id, customer_user_id, profile_name, status,
         last_activity_at, last_message_id, last_message_preview, last_message_direction,
         last_message_at, unread_count, last_customer_message_at, window_closes_at,
         assigned_agent_id, assigned_group_id, owner_agent_id, snoozed_until, tags,
         lock_agent_id, lock_acquired_at, lock_expires_at, version"
    };
}

/// The inbox as `scope` may see it, newest activity first, one page at a time.
///
/// # Errors
/// [`ProjectionError::InvalidCursor`] for a bad cursor; database failures.
pub async fn list(
    db: &Database,
    scope: &ReadScope,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<ConversationView>, ProjectionError> {
    let limit = page_size(limit, 50, 200);
    let after = cursor.map(Cursor::parse).transpose()?;
    if *scope == ReadScope::Nothing {
        return Ok(Page {
            items: vec![],
            next_cursor: None,
        });
    }
    let (mode, me) = scope.args();
    let fetch = i64::from(limit) + 1;
    let rows: Vec<ConversationRow> = match after {
        None => {
            const SQL: &str = concat!(
                "select ",
                conversation_columns!(),
                " from conversations where ",
                scope_filter!(),
                " order by last_activity_at desc, id desc limit $3"
            );
            with_pool!(db, pool => sqlx::query_as(SQL).bind(mode).bind(me).bind(fetch).fetch_all(pool).await?)
        }
        Some(Cursor { key, tie }) => {
            const SQL: &str = concat!(
                "select ",
                conversation_columns!(),
                " from conversations where ",
                scope_filter!(),
                " and (last_activity_at < $3 or (last_activity_at = $3 and id < $4))
                 order by last_activity_at desc, id desc limit $5"
            );
            with_pool!(db, pool => sqlx::query_as(SQL)
                .bind(mode).bind(me).bind(key).bind(&tie).bind(fetch).fetch_all(pool).await?)
        }
    };
    Ok(paginate(rows, limit, |row| {
        Cursor::encode(row.last_activity_at, &row.id)
    }))
}

/// Splits `limit + 1` fetched rows into a page and the next cursor.
pub(crate) fn paginate<R, V: From<R>>(
    mut rows: Vec<R>,
    limit: u32,
    cursor_of: impl Fn(&R) -> String,
) -> Page<V> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let next_cursor = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(cursor_of)
    } else {
        None
    };
    Page {
        items: rows.into_iter().map(V::from).collect(),
        next_cursor,
    }
}

/// One conversation if `scope` may see it; `None` when there is none or it is out of scope
/// (the two are indistinguishable, so ids cannot be probed).
///
/// # Errors
/// Database failures.
pub async fn get(
    db: &Database,
    scope: &ReadScope,
    id: &str,
) -> Result<Option<ConversationView>, ProjectionError> {
    const SQL: &str = concat!(
        "select ",
        conversation_columns!(),
        " from conversations where ",
        scope_filter!(),
        " and id = $3"
    );
    if *scope == ReadScope::Nothing {
        return Ok(None);
    }
    let (mode, me) = scope.args();
    let row: Option<ConversationRow> = with_pool!(db, pool => sqlx::query_as(SQL)
        .bind(mode).bind(me).bind(id).fetch_optional(pool).await?);
    Ok(row.map(ConversationView::from))
}

/// Conversations whose recorded lock has lapsed by `now`, or whose snooze has ended (for the
/// expiry worker), at most `limit`.
///
/// # Errors
/// Database failures.
pub async fn due(db: &Database, now: i64, limit: u32) -> Result<Vec<String>, ProjectionError> {
    const SQL: &str = "select id from conversations where lock_expires_at <= $1
                       union select id from conversations where snoozed_until <= $1 and status = 'snoozed'
                       limit $2";
    Ok(
        with_pool!(db, pool => sqlx::query_scalar(SQL).bind(now).bind(i64::from(limit)).fetch_all(pool).await?),
    )
}

/// Who a conversation is assigned to: `(conversation id, agent id, group id)`.
pub type AssignmentRow = (String, Option<String>, Option<String>);

/// The current assignment of each of `ids` that the read model knows, in one query per 500
/// ids (the realtime fan-out filters a whole batch of events with it).
///
/// # Errors
/// Database failures.
pub async fn assignments(
    db: &Database,
    ids: &[String],
) -> Result<Vec<AssignmentRow>, ProjectionError> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let mut sql = String::from(
            "select id, assigned_agent_id, assigned_group_id from conversations where id in (",
        );
        for index in 1..=chunk.len() {
            if index > 1 {
                sql.push_str(", ");
            }
            sql.push('$');
            sql.push_str(&index.to_string());
        }
        sql.push(')');
        let rows: Vec<AssignmentRow> = with_pool!(db, pool => {
            let mut query = sqlx::query_as(&sql);
            for id in chunk {
                query = query.bind(id);
            }
            query.fetch_all(pool).await?
        });
        found.extend(rows);
    }
    Ok(found)
}
