//! Messages in and out per local hour or day and business number, sends by their latest
//! status (failures by Meta's error code), and template usage.

use std::collections::BTreeMap;

use chrono_tz::Tz;
use serde::Serialize;
use serde_json::Value;
use switchboard_store::{with_pool, Database};

use super::{bucket_start, filter_sql, local_rfc3339, Bucket, Filter, SLOT_MS};
use crate::ProjectionError;

/// Messages of one bucket on one number.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct VolumeRow {
    /// Start of the bucket, local time with its offset.
    pub start: String,
    /// The business number.
    pub phone_number_id: String,
    /// Customer messages.
    pub inbound: u64,
    /// Messages sent to customers (by agents or the server).
    pub outbound: u64,
    /// Outbound not yet sent (queued or accepted by Meta).
    pub pending: u64,
    /// Outbound whose latest status is `sent`.
    pub sent: u64,
    /// … `delivered`.
    pub delivered: u64,
    /// … `read` (or `played`).
    pub read: u64,
    /// … failed (reported by Meta, or refused for good).
    pub failed: u64,
    /// Failures by Meta's error code (`unknown` without one).
    pub failed_by_code: BTreeMap<String, u64>,
}

/// Where an outbound message stands, from its latest status.
fn outcome(status: Option<&str>) -> &'static str {
    match status {
        Some("sent") => "sent",
        Some("delivered") => "delivered",
        Some("read" | "played") => "read",
        Some("failed" | "dead_lettered") => "failed",
        _ => "pending",
    }
}

/// Meta's error code in stored status errors (a list of errors, or one).
fn error_code(errors: Option<&str>) -> String {
    let parsed: Option<Value> = errors.and_then(|text| serde_json::from_str(text).ok());
    let first = match &parsed {
        Some(Value::Array(list)) => list.first(),
        other => other.as_ref(),
    };
    first
        .and_then(|e| e.get("code"))
        .map(|code| match code {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Volumes per `bucket` of `zone` and number, for `[from, to)`.
///
/// # Errors
/// Database failures.
pub async fn per_bucket(
    db: &Database,
    (from, to): (i64, i64),
    filter: &Filter,
    bucket: Bucket,
    zone: Tz,
) -> Result<Vec<VolumeRow>, ProjectionError> {
    let sql = format!(
        "select m.sort_at / {SLOT_MS}, c.phone_number_id, m.direction, m.status,
                case when m.status in ('failed', 'dead_lettered') then m.status_errors end, count(*)
           from messages m join conversations c on c.id = m.conversation_id
          where m.direction in ('inbound', 'outbound') and m.sort_at >= $1 and m.sort_at < $2 {}
          group by m.sort_at / {SLOT_MS}, c.phone_number_id, m.direction, m.status,
                   case when m.status in ('failed', 'dead_lettered') then m.status_errors end
          limit 1000000",
        filter_sql(3, "c.assigned_agent_id")
    );
    type Row = (i64, String, String, Option<String>, Option<String>, i64);
    let rows: Vec<Row> = with_pool!(db, pool => sqlx::query_as(&sql)
        .bind(from).bind(to).bind(&filter.group).bind(&filter.agent).bind(&filter.phone_number_id)
        .fetch_all(pool).await?);
    let mut buckets: BTreeMap<(i64, String), VolumeRow> = BTreeMap::new();
    for (slot, number, direction, status, errors, count) in rows {
        let Some(start) = bucket_start(slot * SLOT_MS, bucket, zone) else {
            continue;
        };
        let count = u64::try_from(count).unwrap_or(0);
        let row = buckets
            .entry((start.timestamp_millis(), number.clone()))
            .or_insert_with(|| VolumeRow {
                start: local_rfc3339(&start),
                phone_number_id: number,
                ..VolumeRow::default()
            });
        if direction == "inbound" {
            row.inbound += count;
            continue;
        }
        row.outbound += count;
        match outcome(status.as_deref()) {
            "sent" => row.sent += count,
            "delivered" => row.delivered += count,
            "read" => row.read += count,
            "failed" => {
                row.failed += count;
                *row.failed_by_code
                    .entry(error_code(errors.as_deref()))
                    .or_default() += count;
            }
            _ => row.pending += count,
        }
    }
    Ok(buckets.into_values().collect())
}

/// How one template was used.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TemplateUsage {
    /// Template name.
    pub name: String,
    /// Its language.
    pub language: String,
    /// Messages sent with it.
    pub sends: u64,
    /// Of which not yet sent.
    pub pending: u64,
    /// … latest status `sent`.
    pub sent: u64,
    /// … `delivered`.
    pub delivered: u64,
    /// … `read`.
    pub read: u64,
    /// … failed.
    pub failed: u64,
}

/// Template sends in `[from, to)`, by template and language.
///
/// # Errors
/// Database failures.
pub async fn templates(
    db: &Database,
    (from, to): (i64, i64),
    filter: &Filter,
) -> Result<Vec<TemplateUsage>, ProjectionError> {
    let sql = format!(
        "select m.content, m.status from messages m join conversations c on c.id = m.conversation_id
          where m.direction = 'outbound' and m.kind = 'template'
            and m.sort_at >= $1 and m.sort_at < $2 {} limit 1000000",
        filter_sql(3, "m.requested_by")
    );
    let rows: Vec<(Option<String>, Option<String>)> = with_pool!(db, pool => sqlx::query_as(&sql)
        .bind(from).bind(to).bind(&filter.group).bind(&filter.agent).bind(&filter.phone_number_id)
        .fetch_all(pool).await?);
    let mut usage: BTreeMap<(String, String), TemplateUsage> = BTreeMap::new();
    for (content, status) in rows {
        let content: Value = content
            .and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default();
        let field = |name: &str| content[name].as_str().unwrap_or_default().to_owned();
        let (name, language) = (field("name"), field("language"));
        let entry = usage
            .entry((name.clone(), language.clone()))
            .or_insert_with(|| TemplateUsage {
                name,
                language,
                ..TemplateUsage::default()
            });
        entry.sends += 1;
        match outcome(status.as_deref()) {
            "sent" => entry.sent += 1,
            "delivered" => entry.delivered += 1,
            "read" => entry.read += 1,
            "failed" => entry.failed += 1,
            _ => entry.pending += 1,
        }
    }
    Ok(usage.into_values().collect())
}
