//! The conversation as the inbox shows it, and the lookups of one conversation.

use serde::Serialize;
use switchboard_domain::{ConversationId, Customer, PhoneNumberId};
use switchboard_store::{with_pool, Database};

use crate::page::{rfc3339, rfc3339_opt};
use crate::scope::scope_filter;
use crate::{ProjectionError, ReadScope};

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
    #[schema(value_type = crate::wire::DirectionDoc)]
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
    /// `open`, `pending`, `snoozed` or `resolved`.
    #[schema(value_type = crate::wire::ConversationStatusDoc)]
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
    /// Since when the customer has been waiting for an answer (their first message after the
    /// last reply; absent when answered or resolved).
    pub waiting_since: Option<String>,
    /// The conversation aggregate's version, for collision detection.
    pub version: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct ConversationRow {
    pub(crate) id: String,
    phone_number_id: String,
    customer_wa_id: Option<String>,
    customer_user_id: Option<String>,
    profile_name: Option<String>,
    status: String,
    pub(crate) last_activity_at: i64,
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
    pub(crate) waiting_since: Option<i64>,
    pub(crate) started_at: i64,
    pub(crate) version: i64,
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
            waiting_since: rfc3339_opt(row.waiting_since),
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
         lock_agent_id, lock_acquired_at, lock_expires_at, waiting_since, started_at, version"
    };
}
pub(crate) use conversation_columns;

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

/// The conversations a customer known as `customer` (their `wa_id` or user id) would have on
/// each business number that has any, whose customer was erased: an erasure request made
/// again (after a failure midway) finds them by their ids, the customer's number being gone
/// from the read model.
///
/// # Errors
/// Database failures.
pub async fn erased_of_customer(
    db: &Database,
    customer: &str,
) -> Result<Vec<String>, ProjectionError> {
    let numbers: Vec<String> = with_pool!(db, pool => sqlx::query_scalar(
        "select distinct phone_number_id from conversations").fetch_all(pool).await?);
    let Some(customer) = Customer::new(Some(customer.to_owned()), None) else {
        return Ok(Vec::new());
    };
    let mut erased = Vec::new();
    for number in numbers {
        let id = ConversationId::for_customer(&PhoneNumberId::new(number), &customer).to_string();
        let found: Option<String> = with_pool!(db, pool => sqlx::query_scalar(
            "select id from conversations where id = $1
             and (customer_wa_id = '[erased]' or customer_user_id = '[erased]')")
            .bind(&id).fetch_optional(pool).await?);
        erased.extend(found);
    }
    Ok(erased)
}

/// Every conversation with one customer, known by their `wa_id` (digits) or their
/// business-scoped user id, on every business number, oldest first (no scope: for
/// data-protection requests, which need `can_export_data`).
///
/// # Errors
/// Database failures.
pub async fn of_customer(
    db: &Database,
    customer: &str,
) -> Result<Vec<ConversationView>, ProjectionError> {
    const SQL: &str = concat!(
        "select ",
        conversation_columns!(),
        " from conversations where customer_wa_id = $1 or customer_user_id = $1",
        " order by started_at, id"
    );
    let rows: Vec<ConversationRow> = with_pool!(db, pool => sqlx::query_as(SQL)
        .bind(customer).fetch_all(pool).await?);
    Ok(rows.into_iter().map(ConversationView::from).collect())
}

/// The id of the most recently active conversation with the customer `wa_id` within `scope`.
///
/// # Errors
/// Database failures.
pub async fn latest_with_customer(
    db: &Database,
    scope: &ReadScope,
    wa_id: &str,
) -> Result<Option<String>, ProjectionError> {
    const SQL: &str = concat!(
        "select id from conversations where ",
        scope_filter!(),
        " and customer_wa_id = $3 order by last_activity_at desc, id desc limit 1"
    );
    if *scope == ReadScope::Nothing {
        return Ok(None);
    }
    let (mode, me) = scope.args();
    Ok(with_pool!(db, pool => sqlx::query_scalar(SQL)
        .bind(mode).bind(me).bind(wa_id).fetch_optional(pool).await?))
}

/// The conversations with these ids (no scope: the caller found them within one), by id.
///
/// # Errors
/// Database failures.
pub async fn get_many(
    db: &Database,
    ids: &[String],
) -> Result<std::collections::HashMap<String, ConversationView>, ProjectionError> {
    let mut unique: Vec<&String> = ids.iter().collect();
    unique.sort();
    unique.dedup();
    let mut found = std::collections::HashMap::with_capacity(unique.len());
    for chunk in unique.chunks(200) {
        let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            concat!(
                "select ",
                conversation_columns!(),
                " from conversations where id in ({})"
            ),
            placeholders.join(", ")
        );
        let rows: Vec<ConversationRow> = with_pool!(db, pool => {
            let mut query = sqlx::query_as(&sql);
            for id in chunk {
                query = query.bind(*id);
            }
            query.fetch_all(pool).await?
        });
        found.extend(
            rows.into_iter()
                .map(|row| (row.id.clone(), ConversationView::from(row))),
        );
    }
    Ok(found)
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
