//! The messages of each conversation: content, direction, and every delivery status with its time.

use serde::Serialize;
use serde_json::Value;
use switchboard_domain::conversation::ConversationEvent;
use switchboard_domain::message::{DeliveryStatus, MessageEvent, StatusReport};
use switchboard_store::{with_pool, Database, RecordedEvent, SqlValue, Statement};

use crate::page::paginate;
use crate::page::{page_size, rfc3339_opt, Cursor, Page};
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds the `messages` table.
pub struct MessagesProjection;

const WITH_CONTENT: &str = "
insert into messages (id, conversation_id, wamid, direction, kind, content, context, referral, errors,
    profile_name, sent_at, sort_at, first_position, status, version)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14)
on conflict (id) do update set
    conversation_id = excluded.conversation_id,
    wamid = excluded.wamid,
    direction = excluded.direction,
    kind = excluded.kind,
    content = excluded.content,
    context = excluded.context,
    referral = excluded.referral,
    errors = excluded.errors,
    profile_name = excluded.profile_name,
    sent_at = excluded.sent_at,
    sort_at = excluded.sort_at,
    status = coalesce(messages.status, excluded.status),
    version = excluded.version";

const REQUESTED: &str = "
insert into messages (id, conversation_id, direction, kind, content, context, sent_at, sort_at, first_position,
    status, client_id, priority, requested_by, version)
values ($1, $2, 'outbound', $3, $4, $5, $6, $6, $7, 'queued', $8, $9, $10, $11)
on conflict (id) do nothing";

/// Accepted by Meta: the wamid is known; a status that already arrived is not overwritten.
/// Every message, reply and note of a conversation up to an erasure request: `[erased]` in
/// place of its content and the customer's name (statuses and times stay, for the counts).
const ERASED: &str = r#"update messages set content = '{"body":"[erased]"}', context = null,
    referral = null, profile_name = case when profile_name is null then null else '[erased]' end
    where conversation_id = $1 and first_position < $2"#;

/// The retention period: messages and notes written before `$3` (and recorded before `$2`)
/// read `[erased]`, as the events whose keys it destroyed read on replay.
const EXPIRED: &str = r#"update messages set content = '{"body":"[erased]"}', context = null,
    referral = null where conversation_id = $1 and first_position < $2 and sent_at < $3
    and content is not null"#;

/// A private note in the conversation's timeline (direction and kind `note`; never sent).
const NOTE: &str = "
insert into messages (id, conversation_id, direction, kind, content, sent_at, sort_at, first_position,
    requested_by, version)
values ($1, $2, 'note', 'note', $3, $4, $4, $5, $6, $7)
on conflict (id) do nothing";

const ACCEPTED: &str = "update messages set wamid = $1,
    status = case when status = 'queued' then 'accepted' else status end, version = $2 where id = $3";
const DEAD_LETTERED: &str = "update messages set status = 'dead_lettered', status_at = $1,
    status_errors = $2, version = $3 where id = $4";
const SEND_FAILED: &str = "update messages set status = 'failed', status_at = $1, failed_at = $1,
    status_errors = $2, version = $3 where id = $4";

macro_rules! status_sql {
    ($column:literal) => {
        concat!(
            "
insert into messages (id, conversation_id, wamid, direction, sort_at, first_position, status, status_at, ",
            $column,
            ", status_errors, pricing, version)
values ($1, $2, $3, 'outbound', $4, $5, $6, $4, $4, $7, $8, $9)
on conflict (id) do update set
    status = excluded.status,
    status_at = excluded.status_at,
    ",
            $column,
            " = excluded.",
            $column,
            ",
    status_errors = coalesce(excluded.status_errors, messages.status_errors),
    pricing = coalesce(excluded.pricing, messages.pricing),
    version = excluded.version"
        )
    };
}

macro_rules! ignored_sql {
    ($column:literal) => {
        concat!(
            "update messages set ignored_statuses = ignored_statuses + 1, ",
            $column,
            " = coalesce(",
            $column,
            ", $1), pricing = coalesce(pricing, $2), version = $3 where id = $4"
        )
    };
}

fn status_column_sql(status: DeliveryStatus) -> (&'static str, &'static str) {
    match status {
        DeliveryStatus::Sent => (
            status_sql!("sent_status_at"),
            ignored_sql!("sent_status_at"),
        ),
        DeliveryStatus::Delivered => (status_sql!("delivered_at"), ignored_sql!("delivered_at")),
        DeliveryStatus::Read => (status_sql!("read_at"), ignored_sql!("read_at")),
        DeliveryStatus::Played => (status_sql!("played_at"), ignored_sql!("played_at")),
        DeliveryStatus::Failed => (status_sql!("failed_at"), ignored_sql!("failed_at")),
    }
}

fn json_text<T: Serialize>(value: &T) -> SqlValue {
    SqlValue::Text(serde_json::to_string(value).ok())
}

fn json_text_opt<T: Serialize>(value: Option<&T>) -> SqlValue {
    SqlValue::Text(value.and_then(|v| serde_json::to_string(v).ok()))
}

fn errors_text(report: &StatusReport) -> SqlValue {
    if report.errors.is_empty() {
        SqlValue::Text(None)
    } else {
        json_text(&report.errors)
    }
}

/// The wamid of a message aggregate: messages from webhooks are keyed by it.
fn wamid_of(aggregate_id: &str) -> SqlValue {
    aggregate_id.into()
}

impl Projection for MessagesProjection {
    fn name(&self) -> &'static str {
        "messages"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["messages"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["Message", "Conversation"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        if let DecodedEvent::Conversation(ConversationEvent::CustomerErased { .. }) = decoded {
            out.push(Statement::new(
                ERASED,
                vec![event.aggregate_id.as_str().into(), event.position.into()],
            ));
            return;
        }
        if let DecodedEvent::Conversation(ConversationEvent::ContentExpired { before, .. }) =
            decoded
        {
            out.push(Statement::new(
                EXPIRED,
                vec![
                    event.aggregate_id.as_str().into(),
                    event.position.into(),
                    before.unix_millis().into(),
                ],
            ));
            return;
        }
        if let DecodedEvent::Conversation(ConversationEvent::NoteAdded {
            note_id,
            text,
            mentions,
            by,
            at,
        }) = decoded
        {
            let content = serde_json::json!({ "text": text, "mentions": mentions });
            out.push(Statement::new(
                NOTE,
                vec![
                    format!("note:{note_id}").into(),
                    event.aggregate_id.as_str().into(),
                    json_text(&content),
                    at.unix_millis().into(),
                    event.position.into(),
                    by.to_string().into(),
                    SqlValue::from(event.sequence),
                ],
            ));
            return;
        }
        let DecodedEvent::Message(message_event) = decoded else {
            return;
        };
        let id = event.aggregate_id.as_str();
        let version = SqlValue::from(event.sequence);
        match message_event {
            MessageEvent::InboundReceived {
                conversation_id,
                profile_name,
                sent_at,
                content,
                context,
                referral,
                errors,
                ..
            } => out.push(Statement::new(
                WITH_CONTENT,
                vec![
                    id.into(),
                    conversation_id.to_string().into(),
                    wamid_of(id),
                    "inbound".into(),
                    content.kind().into(),
                    json_text(content),
                    json_text_opt(context.as_ref()),
                    json_text_opt(referral.as_ref()),
                    if errors.is_empty() {
                        SqlValue::Text(None)
                    } else {
                        json_text(errors)
                    },
                    profile_name.clone().into(),
                    sent_at.unix_millis().into(),
                    event.position.into(),
                    SqlValue::Text(None),
                    version,
                ],
            )),
            MessageEvent::EchoRecorded {
                conversation_id,
                sent_at,
                content,
                ..
            } => out.push(Statement::new(
                WITH_CONTENT,
                vec![
                    id.into(),
                    conversation_id.to_string().into(),
                    wamid_of(id),
                    "outbound".into(),
                    content.kind().into(),
                    json_text(content),
                    SqlValue::Text(None),
                    SqlValue::Text(None),
                    SqlValue::Text(None),
                    SqlValue::Text(None),
                    sent_at.unix_millis().into(),
                    event.position.into(),
                    "sent".into(),
                    version,
                ],
            )),
            MessageEvent::StatusAdvanced {
                conversation_id,
                report,
                ..
            } => {
                let (sql, _) = status_column_sql(report.status);
                out.push(Statement::new(
                    sql,
                    vec![
                        id.into(),
                        conversation_id.to_string().into(),
                        wamid_of(id),
                        report.at.unix_millis().into(),
                        event.position.into(),
                        report.status.as_str().into(),
                        errors_text(report),
                        json_text_opt(report.pricing.as_ref()),
                        version,
                    ],
                ));
            }
            MessageEvent::OutboundRequested {
                conversation_id,
                client_id,
                content,
                reply_to,
                priority,
                by,
                at,
                ..
            } => out.push(Statement::new(
                REQUESTED,
                vec![
                    id.into(),
                    conversation_id.to_string().into(),
                    content.kind().into(),
                    json_text(content),
                    json_text_opt(
                        reply_to
                            .as_ref()
                            .map(|r| serde_json::json!({ "id": r }))
                            .as_ref(),
                    ),
                    at.unix_millis().into(),
                    event.position.into(),
                    client_id.as_str().into(),
                    priority.as_str().into(),
                    by.to_string().into(),
                    version,
                ],
            )),
            MessageEvent::OutboundAccepted { wamid, .. } => out.push(Statement::new(
                ACCEPTED,
                vec![wamid.as_str().into(), version, id.into()],
            )),
            MessageEvent::OutboundFailed { error, at, .. } => out.push(Statement::new(
                SEND_FAILED,
                vec![
                    at.unix_millis().into(),
                    json_text(&vec![error]),
                    version,
                    id.into(),
                ],
            )),
            // Visible in the log and the audit; the message stays queued until its next attempt.
            MessageEvent::OutboundAttemptFailed { .. } => {}
            MessageEvent::OutboundDeadLettered { error, at, .. } => out.push(Statement::new(
                DEAD_LETTERED,
                vec![
                    at.unix_millis().into(),
                    json_text(&vec![error]),
                    version,
                    id.into(),
                ],
            )),
            // Dropped from the dead-letter queue by an operator: failed for good.
            MessageEvent::DeadLetterPurged { at, .. } => out.push(Statement::new(
                "update messages set status = 'failed', status_at = $1, failed_at = $1,
                    version = $2 where id = $3",
                vec![at.unix_millis().into(), version, id.into()],
            )),
            // The file's fate is the `media` read model's; the message moves to its version.
            MessageEvent::MediaStored { .. }
            | MessageEvent::MediaUnavailable { .. }
            | MessageEvent::MediaDeleted { .. } => {
                out.push(Statement::new(
                    "update messages set version = $1 where id = $2",
                    vec![version, id.into()],
                ));
            }
            MessageEvent::OutboundRequeued { .. } => out.push(Statement::new(
                "update messages set status = 'queued', version = $1 where id = $2",
                vec![version, id.into()],
            )),
            MessageEvent::StatusIgnored { report, .. } => {
                let (_, sql) = status_column_sql(report.status);
                out.push(Statement::new(
                    sql,
                    vec![
                        report.at.unix_millis().into(),
                        json_text_opt(report.pricing.as_ref()),
                        version,
                        id.into(),
                    ],
                ));
            }
        }
    }
}

/// When each delivery status was reported.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct StatusTimes {
    /// Sent (one tick).
    pub sent: Option<String>,
    /// Delivered (two ticks).
    pub delivered: Option<String>,
    /// Read (blue ticks).
    pub read: Option<String>,
    /// Voice message played.
    pub played: Option<String>,
    /// Failed.
    pub failed: Option<String>,
}

/// One message as agents see it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct MessageView {
    /// Message id (the wamid for inbound messages).
    pub id: String,
    /// Meta's message id, when known.
    pub wamid: Option<String>,
    /// Its conversation.
    pub conversation_id: String,
    /// `inbound`, `outbound`, or `note` (internal).
    #[schema(value_type = crate::wire::DirectionDoc)]
    pub direction: String,
    /// Content type (`text`, `image`, …); absent when only a status is known.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The content, by type.
    pub content: Option<Value>,
    /// Reply / forward context.
    pub context: Option<Value>,
    /// Ad referral.
    pub referral: Option<Value>,
    /// Errors Meta attached to the message.
    pub errors: Option<Value>,
    /// The sender's profile name (inbound).
    pub profile_name: Option<String>,
    /// Meta's timestamp of the message.
    pub sent_at: Option<String>,
    /// Current delivery status (outbound).
    pub status: Option<String>,
    /// When the current status was reported.
    pub status_at: Option<String>,
    /// When each status was reported.
    pub statuses: StatusTimes,
    /// Errors of a failed delivery.
    pub status_errors: Option<Value>,
    /// Meta's pricing information.
    pub pricing: Option<Value>,
    /// Status reports that came late and were not applied.
    pub ignored_statuses: i64,
    /// The client's id of an agent's send (idempotency key).
    pub client_id: Option<String>,
    /// `high`, `normal` or `low` (agent's sends).
    pub priority: Option<String>,
    /// The agent who sent it.
    pub requested_by: Option<String>,
    /// The message aggregate's version.
    pub version: i64,
}

#[derive(sqlx::FromRow)]
struct MessageRow {
    id: String,
    conversation_id: String,
    wamid: Option<String>,
    direction: String,
    kind: Option<String>,
    content: Option<String>,
    context: Option<String>,
    referral: Option<String>,
    errors: Option<String>,
    profile_name: Option<String>,
    sent_at: Option<i64>,
    sort_at: i64,
    first_position: i64,
    status: Option<String>,
    status_at: Option<i64>,
    sent_status_at: Option<i64>,
    delivered_at: Option<i64>,
    read_at: Option<i64>,
    played_at: Option<i64>,
    failed_at: Option<i64>,
    status_errors: Option<String>,
    pricing: Option<String>,
    ignored_statuses: i64,
    client_id: Option<String>,
    priority: Option<String>,
    requested_by: Option<String>,
    version: i64,
}

fn parse_json(text: Option<String>) -> Option<Value> {
    text.and_then(|t| serde_json::from_str(&t).ok())
}

impl From<MessageRow> for MessageView {
    fn from(row: MessageRow) -> Self {
        Self {
            id: row.id,
            wamid: row.wamid,
            conversation_id: row.conversation_id,
            direction: row.direction,
            kind: row.kind,
            content: parse_json(row.content),
            context: parse_json(row.context),
            referral: parse_json(row.referral),
            errors: parse_json(row.errors),
            profile_name: row.profile_name,
            sent_at: rfc3339_opt(row.sent_at),
            status: row.status,
            status_at: rfc3339_opt(row.status_at),
            statuses: StatusTimes {
                sent: rfc3339_opt(row.sent_status_at),
                delivered: rfc3339_opt(row.delivered_at),
                read: rfc3339_opt(row.read_at),
                played: rfc3339_opt(row.played_at),
                failed: rfc3339_opt(row.failed_at),
            },
            status_errors: parse_json(row.status_errors),
            pricing: parse_json(row.pricing),
            ignored_statuses: row.ignored_statuses,
            client_id: row.client_id,
            priority: row.priority,
            requested_by: row.requested_by,
            version: row.version,
        }
    }
}

macro_rules! message_columns {
    () => {
        "id, conversation_id, wamid, direction, kind, content, context, referral, errors, profile_name,
         sent_at, sort_at, first_position, status, status_at, sent_status_at, delivered_at, read_at,
         played_at, failed_at, status_errors, pricing, ignored_statuses, client_id, priority,
         requested_by, version"
    };
}

/// The messages of a conversation in chat order (Meta's timestamps, ties by arrival), oldest first.
///
/// # Errors
/// [`ProjectionError::InvalidCursor`] for a bad cursor; database failures.
pub async fn list_for_conversation(
    db: &Database,
    conversation_id: &str,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<MessageView>, ProjectionError> {
    const FIRST: &str = concat!(
        "select ",
        message_columns!(),
        " from messages where conversation_id = $1 order by sort_at, first_position limit $2"
    );
    const AFTER: &str = concat!(
        "select ",
        message_columns!(),
        " from messages where conversation_id = $1
          and (sort_at > $2 or (sort_at = $2 and first_position > $3))
          order by sort_at, first_position limit $4"
    );
    let limit = page_size(limit, 100, 500);
    let fetch = i64::from(limit) + 1;
    let rows: Vec<MessageRow> = match cursor.map(Cursor::parse).transpose()? {
        None => with_pool!(db, pool => sqlx::query_as(FIRST)
            .bind(conversation_id).bind(fetch).fetch_all(pool).await?),
        Some(Cursor { key, tie }) => {
            let tie: i64 = tie.parse().map_err(|_| ProjectionError::InvalidCursor)?;
            with_pool!(db, pool => sqlx::query_as(AFTER)
                .bind(conversation_id).bind(key).bind(tie).bind(fetch).fetch_all(pool).await?)
        }
    };
    Ok(paginate(rows, limit, |row| {
        Cursor::encode(row.sort_at, &row.first_position.to_string())
    }))
}

/// One message by id, or `None`.
///
/// # Errors
/// Database failures.
pub async fn get(db: &Database, id: &str) -> Result<Option<MessageView>, ProjectionError> {
    const SQL: &str = concat!(
        "select ",
        message_columns!(),
        " from messages where id = $1"
    );
    let row: Option<MessageRow> =
        with_pool!(db, pool => sqlx::query_as(SQL).bind(id).fetch_optional(pool).await?);
    Ok(row.map(MessageView::from))
}
