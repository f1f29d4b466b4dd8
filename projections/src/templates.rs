//! The template catalogue: every template as Meta's catalogue lists it, kept current by
//! Meta's webhooks and by what agents submit, edit and delete.

use serde::Serialize;
use serde_json::Value;
use switchboard_domain::ids::WabaId;
use switchboard_domain::template::{
    ParameterFormat, TemplateChangeKind, TemplateDefinition, TemplateEvent, Variable,
};
use switchboard_store::{bind_all, with_pool, Database, RecordedEvent, SqlValue, Statement};

use crate::page::rfc3339;
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds the `templates` table.
pub struct TemplatesProjection;

macro_rules! change_sql {
    ($set:literal) => {
        concat!(
            "
insert into templates (id, waba_id, name, language, updated_at, version, status, reason, category, quality, components)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
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
const COMPONENTS: &str =
    change_sql!(", components = coalesce(excluded.components, templates.components)");

/// A whole catalogue entry (sync, submission).
const ENTRY: &str = "
insert into templates (id, waba_id, name, language, status, category, quality, reason, components,
    parameter_format, submitted_by, updated_by, updated_at, version)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13)
on conflict (id) do update set
    waba_id = excluded.waba_id, name = excluded.name, language = excluded.language,
    status = excluded.status, category = excluded.category, quality = excluded.quality,
    reason = excluded.reason, components = excluded.components,
    parameter_format = excluded.parameter_format,
    submitted_by = coalesce(excluded.submitted_by, templates.submitted_by),
    updated_by = coalesce(excluded.updated_by, templates.updated_by),
    updated_at = excluded.updated_at, version = excluded.version";

const EDITED: &str = "
update templates set components = coalesce($1, components), category = coalesce($2, category),
    status = 'PENDING', reason = null, updated_by = $3, updated_at = $4, version = $5
where id = $6";

const DELETED: &str = "delete from templates where id = $1";

fn json_text(value: &[Value]) -> SqlValue {
    serde_json::to_string(value).ok().into()
}

fn entry(event: &RecordedEvent, d: &TemplateDefinition, by: Option<String>, at: i64) -> Statement {
    Statement::new(
        ENTRY,
        vec![
            event.aggregate_id.as_str().into(),
            d.waba_id.as_str().into(),
            d.name.as_str().into(),
            d.language.as_str().into(),
            d.status.as_str().into(),
            d.category.as_str().into(),
            d.quality.clone().into(),
            d.reason.clone().into(),
            json_text(&d.components),
            d.parameter_format.meta_name().into(),
            by.into(),
            at.into(),
            event.sequence.into(),
        ],
    )
}

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
        let DecodedEvent::Template(template_event) = decoded else {
            return;
        };
        let id = event.aggregate_id.as_str();
        let change = match template_event {
            TemplateEvent::ChangeReported { change, .. } => change,
            TemplateEvent::Synced { definition, at } => {
                return out.push(entry(event, definition, None, at.unix_millis()));
            }
            TemplateEvent::Submitted { definition, by, at } => {
                let by = Some(by.to_string());
                return out.push(entry(event, definition, by, at.unix_millis()));
            }
            TemplateEvent::Edited {
                components,
                category,
                by,
                at,
            } => {
                let components = components
                    .as_deref()
                    .map_or(SqlValue::Text(None), json_text);
                return out.push(Statement::new(
                    EDITED,
                    vec![
                        components,
                        category.clone().into(),
                        by.to_string().into(),
                        at.unix_millis().into(),
                        event.sequence.into(),
                        id.into(),
                    ],
                ));
            }
            TemplateEvent::Deleted { .. } => {
                return out.push(Statement::new(DELETED, vec![id.into()]));
            }
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
        let components = change
            .reported_components()
            .map_or(SqlValue::Text(None), |c| json_text(&c));
        out.push(Statement::new(
            sql,
            vec![
                id.into(),
                change.waba_id.as_str().into(),
                change.name.clone().into(),
                change.language.clone().into(),
                change.at.unix_millis().into(),
                event.sequence.into(),
                status.into(),
                reason.into(),
                category.into(),
                quality.into(),
                components,
            ],
        ));
    }
}

/// A template in the catalogue.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema, PartialEq, sqlx::FromRow)]
pub struct TemplateView {
    /// Meta's template id.
    pub id: String,
    /// The business account.
    pub waba_id: String,
    /// Template name.
    pub name: Option<String>,
    /// Language of this translation.
    pub language: Option<String>,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, …
    pub status: Option<String>,
    /// `MARKETING`, `UTILITY`, `AUTHENTICATION`.
    pub category: Option<String>,
    /// Quality score (`GREEN`, `YELLOW`, `RED`, …).
    pub quality: Option<String>,
    /// Meta's reason for the last status (rejections, pauses).
    pub reason: Option<String>,
    /// `POSITIONAL` (`{{1}}`) or `NAMED` (`{{customer_name}}`); null until synced.
    pub parameter_format: Option<String>,
    /// Meta's components (header, body, footer, buttons); null while known only from a
    /// status webhook (the next sync fills them).
    #[sqlx(skip)]
    #[schema(value_type = Option<Vec<Object>>)]
    pub components: Option<Vec<Value>>,
    /// The variables the components declare, with Meta's examples.
    #[sqlx(skip)]
    #[schema(value_type = Vec<VariableDoc>)]
    pub variables: Vec<Variable>,
    /// The agent who submitted it from here.
    pub submitted_by: Option<String>,
    /// The agent who last submitted or edited it from here.
    pub updated_by: Option<String>,
    /// When it last changed.
    #[sqlx(skip)]
    pub updated_at: String,
    #[serde(skip)]
    #[sqlx(rename = "updated_at")]
    updated_at_ms: i64,
    #[serde(skip)]
    #[sqlx(rename = "components")]
    components_json: Option<String>,
}

impl TemplateView {
    /// The view of `definition` as the projection will write it.
    pub fn of(
        id: &str,
        definition: &TemplateDefinition,
        submitted_by: Option<&str>,
        updated_by: Option<&str>,
        at: switchboard_domain::Timestamp,
    ) -> Self {
        Self {
            id: id.to_owned(),
            waba_id: definition.waba_id.to_string(),
            name: Some(definition.name.clone()),
            language: Some(definition.language.clone()),
            status: Some(definition.status.clone()),
            category: Some(definition.category.clone()),
            quality: definition.quality.clone(),
            reason: definition.reason.clone(),
            parameter_format: Some(definition.parameter_format.meta_name().to_owned()),
            components: None,
            variables: Vec::new(),
            submitted_by: submitted_by.map(str::to_owned),
            updated_by: updated_by.map(str::to_owned),
            updated_at: String::new(),
            updated_at_ms: at.unix_millis(),
            components_json: serde_json::to_string(&definition.components).ok(),
        }
        .finish()
    }

    fn finish(mut self) -> Self {
        self.updated_at = rfc3339(self.updated_at_ms);
        self.components = self
            .components_json
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok());
        if let Some(definition) = self.definition() {
            self.variables = definition.variables();
        }
        self
    }

    /// The catalogue entry, for checking a send (`None` without name or language).
    pub fn definition(&self) -> Option<TemplateDefinition> {
        Some(TemplateDefinition {
            waba_id: WabaId::new(self.waba_id.clone()),
            name: self.name.clone()?,
            language: self.language.clone()?,
            category: self.category.clone().unwrap_or_default(),
            status: self.status.clone().unwrap_or_default(),
            reason: self.reason.clone(),
            quality: self.quality.clone(),
            parameter_format: ParameterFormat::from_meta(self.parameter_format.as_deref()),
            components: self.components.clone().unwrap_or_default(),
        })
    }
}

/// A template variable (documentation of [`Variable`]'s wire form).
#[allow(dead_code)] // documentation only: never built, described
#[derive(utoipa::ToSchema)]
#[schema(as = TemplateVariable)]
pub struct VariableDoc {
    /// Where: `header`, `body`, or `button[<index>]`.
    pub component: String,
    /// `1`, `2`, … or the variable's name.
    pub name: String,
    /// What it takes: `text`, `image`, `video`, `document`, `location`, `url_suffix`,
    /// `coupon_code`.
    pub kind: String,
    /// Meta's example value, when the template gives one.
    #[schema(nullable = false)]
    pub example: Option<String>,
}

/// Filters of the catalogue list.
#[derive(Debug, Clone, Default)]
pub struct TemplateFilter {
    /// Only this status (case-insensitive).
    pub status: Option<String>,
    /// Only this language.
    pub language: Option<String>,
    /// Only this category (case-insensitive).
    pub category: Option<String>,
    /// Name containing these letters (case-insensitive).
    pub q: Option<String>,
}

const COLUMNS: &str = "select id, waba_id, name, language, status, category, quality, reason,
    parameter_format, components, submitted_by, updated_by, updated_at from templates";

/// The most templates one list returns (Meta allows a few hundred per account).
pub const MAX_LIST: i64 = 2000;

/// The catalogue, by name and language.
///
/// # Errors
/// Database failures.
pub async fn list(
    db: &Database,
    filter: &TemplateFilter,
) -> Result<Vec<TemplateView>, ProjectionError> {
    let mut conditions = Vec::new();
    let mut args: Vec<SqlValue> = Vec::new();
    let mut add = |condition: &str, value: String| {
        args.push(value.into());
        conditions.push(condition.replace('?', &format!("${}", args.len())));
    };
    if let Some(status) = &filter.status {
        add("upper(status) = upper(?)", status.clone());
    }
    if let Some(language) = &filter.language {
        add("language = ?", language.clone());
    }
    if let Some(category) = &filter.category {
        add("upper(category) = upper(?)", category.clone());
    }
    if let Some(q) = &filter.q {
        let escaped = q
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        add("lower(name) like ? escape '\\'", format!("%{escaped}%"));
    }
    let mut sql = COLUMNS.to_owned();
    if !conditions.is_empty() {
        sql.push_str(" where ");
        sql.push_str(&conditions.join(" and "));
    }
    sql.push_str(&format!(" order by name, language, id limit {MAX_LIST}"));
    let rows: Vec<TemplateView> =
        with_pool!(db, pool => bind_all!(sqlx::query_as(&sql), args).fetch_all(pool).await?);
    Ok(rows.into_iter().map(TemplateView::finish).collect())
}

/// One template.
///
/// # Errors
/// Database failures.
pub async fn get(db: &Database, id: &str) -> Result<Option<TemplateView>, ProjectionError> {
    let sql = format!("{COLUMNS} where id = $1");
    let row: Option<TemplateView> =
        with_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?);
    Ok(row.map(TemplateView::finish))
}

/// The translations named `name` in `language` (one per business account).
///
/// # Errors
/// Database failures.
pub async fn by_name(
    db: &Database,
    name: &str,
    language: &str,
) -> Result<Vec<TemplateView>, ProjectionError> {
    let sql = format!("{COLUMNS} where name = $1 and language = $2 order by id");
    let rows: Vec<TemplateView> = with_pool!(db, pool =>
        sqlx::query_as(&sql).bind(name).bind(language).fetch_all(pool).await?);
    Ok(rows.into_iter().map(TemplateView::finish).collect())
}

/// The ids of a business account's templates (to find those a full sync no longer lists).
///
/// # Errors
/// Database failures.
pub async fn ids_of(db: &Database, waba_id: &str) -> Result<Vec<String>, ProjectionError> {
    Ok(with_pool!(db, pool => sqlx::query_scalar(
        "select id from templates where waba_id = $1").bind(waba_id).fetch_all(pool).await?))
}
