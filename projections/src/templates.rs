//! Message templates as Meta last reported them.

use serde::Serialize;
use switchboard_domain::template::{TemplateChangeKind, TemplateEvent};
use switchboard_store::{with_pool, Database, RecordedEvent, Statement};

use crate::page::rfc3339;
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds the `templates` table.
pub struct TemplatesProjection;

macro_rules! change_sql {
    ($set:literal) => {
        concat!(
            "
insert into templates (id, waba_id, name, language, updated_at, version, status, reason, category, quality)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
on conflict (id) do update set
    waba_id = excluded.waba_id,
    name = coalesce(excluded.name, templates.name),
    language = coalesce(excluded.language, templates.language),
    updated_at = excluded.updated_at,
    version = excluded.version",
            $set
        )
    };
}

const STATUS: &str = change_sql!(
    ", status = excluded.status, reason = excluded.reason,
    category = coalesce(excluded.category, templates.category)"
);
const CATEGORY: &str = change_sql!(", category = excluded.category");
const QUALITY: &str = change_sql!(", quality = excluded.quality");
const COMPONENTS: &str = change_sql!("");

impl Projection for TemplatesProjection {
    fn name(&self) -> &'static str {
        "templates"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["templates"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["Template"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let DecodedEvent::Template(TemplateEvent::ChangeReported { change, .. }) = decoded else {
            return;
        };
        let (sql, status, reason, category, quality) = match change.kind {
            TemplateChangeKind::Status => (
                STATUS,
                change.value.clone(),
                change.reason.clone(),
                change.category.clone(),
                None,
            ),
            TemplateChangeKind::Category => (CATEGORY, None, None, change.category.clone(), None),
            TemplateChangeKind::Quality => (QUALITY, None, None, None, change.value.clone()),
            TemplateChangeKind::Components => (COMPONENTS, None, None, None, None),
        };
        out.push(Statement::new(
            sql,
            vec![
                event.aggregate_id.as_str().into(),
                change.waba_id.as_str().into(),
                change.name.clone().into(),
                change.language.clone().into(),
                change.at.unix_millis().into(),
                event.sequence.into(),
                status.into(),
                reason.into(),
                category.into(),
                quality.into(),
            ],
        ));
    }
}

/// A template as Meta last reported it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, sqlx::FromRow)]
pub struct TemplateView {
    /// Meta's template id.
    pub id: String,
    /// The business account.
    pub waba_id: String,
    /// Template name.
    pub name: Option<String>,
    /// Language of the reported translation.
    pub language: Option<String>,
    /// `APPROVED`, `REJECTED`, `PAUSED`, …
    pub status: Option<String>,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`.
    pub category: Option<String>,
    /// Quality score (`GREEN`, `YELLOW`, `RED`, …).
    pub quality: Option<String>,
    /// Meta's reason for the last status.
    pub reason: Option<String>,
    /// When Meta last reported on it.
    #[sqlx(skip)]
    pub updated_at: String,
    #[serde(skip)]
    #[sqlx(rename = "updated_at")]
    updated_at_ms: i64,
}

/// Every template, by name.
///
/// # Errors
/// Database failures.
pub async fn list(db: &Database) -> Result<Vec<TemplateView>, ProjectionError> {
    const SQL: &str =
        "select id, waba_id, name, language, status, category, quality, reason, updated_at
                       from templates order by name, language, id limit 1000";
    let mut rows: Vec<TemplateView> =
        with_pool!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
    for row in &mut rows {
        row.updated_at = rfc3339(row.updated_at_ms);
    }
    Ok(rows)
}
