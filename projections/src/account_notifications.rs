//! Account-level notifications from Meta, newest first.

use serde::Serialize;
use serde_json::Value;
use switchboard_domain::business_account::BusinessAccountEvent;
use switchboard_store::{with_pool, Database, RecordedEvent, SqlValue, Statement};

use crate::page::paginate;
use crate::page::{page_size, rfc3339, Cursor, Page};
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds the `account_notifications` table.
pub struct AccountNotificationsProjection;

const INSERT: &str = "
insert into account_notifications (id, waba_id, field, phone_number_id, summary, at, value, position)
values ($1, $2, $3, $4, $5, $6, $7, $8)
on conflict (id) do nothing";

impl Projection for AccountNotificationsProjection {
    fn name(&self) -> &'static str {
        "account_notifications"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["account_notifications"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["BusinessAccount"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let DecodedEvent::BusinessAccount(BusinessAccountEvent::NotificationReceived {
            notification_id,
            notification,
        }) = decoded
        else {
            return;
        };
        out.push(Statement::new(
            INSERT,
            vec![
                notification_id.as_str().into(),
                event.aggregate_id.as_str().into(),
                notification.field.as_str().into(),
                notification
                    .phone_number_id
                    .as_ref()
                    .map(|p| p.as_str().to_owned())
                    .into(),
                notification.summary.clone().into(),
                notification.at.unix_millis().into(),
                SqlValue::Text(serde_json::to_string(&notification.value).ok()),
                event.position.into(),
            ],
        ));
    }
}

/// One notification.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq)]
pub struct AccountNotificationView {
    /// Notification id (derived from its content).
    pub id: String,
    /// The business account.
    pub waba_id: String,
    /// Webhook field (`account_update`, `calls`, …).
    pub field: String,
    /// The business number it concerns, when known.
    pub phone_number_id: Option<String>,
    /// Short summary, when there is one.
    pub summary: Option<String>,
    /// When it happened.
    pub at: String,
    /// The payload as Meta sent it.
    pub value: Value,
}

#[derive(sqlx::FromRow)]
struct Row {
    id: String,
    waba_id: String,
    field: String,
    phone_number_id: Option<String>,
    summary: Option<String>,
    at: i64,
    value: String,
}

impl From<Row> for AccountNotificationView {
    fn from(row: Row) -> Self {
        Self {
            id: row.id,
            waba_id: row.waba_id,
            field: row.field,
            phone_number_id: row.phone_number_id,
            summary: row.summary,
            at: rfc3339(row.at),
            value: serde_json::from_str(&row.value).unwrap_or(Value::Null),
        }
    }
}

/// Notifications, newest first, one page at a time.
///
/// # Errors
/// [`ProjectionError::InvalidCursor`] for a bad cursor; database failures.
pub async fn list(
    db: &Database,
    cursor: Option<&str>,
    limit: Option<u32>,
) -> Result<Page<AccountNotificationView>, ProjectionError> {
    const FIRST: &str = "select id, waba_id, field, phone_number_id, summary, at, value
        from account_notifications order by at desc, id desc limit $1";
    const AFTER: &str = "select id, waba_id, field, phone_number_id, summary, at, value
        from account_notifications where at < $1 or (at = $1 and id < $2)
        order by at desc, id desc limit $3";
    let limit = page_size(limit, 50, 200);
    let fetch = i64::from(limit) + 1;
    let rows: Vec<Row> = match cursor.map(Cursor::parse).transpose()? {
        None => with_pool!(db, pool => sqlx::query_as(FIRST).bind(fetch).fetch_all(pool).await?),
        Some(Cursor { key, tie }) => with_pool!(db, pool => sqlx::query_as(AFTER)
            .bind(key).bind(&tie).bind(fetch).fetch_all(pool).await?),
    };
    Ok(paginate(rows, limit, |row| Cursor::encode(row.at, &row.id)))
}
