//! Outgoing webhook endpoints as admins list them and the deliverer reads them
//! (`webhook_endpoints`): URL, what they receive, whether deliveries run. Never the secret.

use serde::Serialize;
use switchboard_domain::webhook_endpoint::{EndpointSpec, WebhookEndpoint, WebhookEndpointEvent};
use switchboard_domain::GroupId;
use switchboard_store::{with_pool, Database, RecordedEvent, SqlValue, Statement};

use crate::page::rfc3339;
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds `webhook_endpoints`.
pub struct WebhookEndpointsProjection;

const REGISTERED: &str = "insert into webhook_endpoints
    (id, url, description, event_types, phone_number_ids, group_ids, bot, enabled,
     registered_position, created_by, created_at, updated_at)
    values ($1, $2, $3, $4, $5, $6, $7, 1, $8, $9, $10, $10)";
const UPDATED: &str = "update webhook_endpoints set url = $1, description = $2, event_types = $3,
    phone_number_ids = $4, group_ids = $5, bot = $6, updated_at = $7 where id = $8";
const DISABLED: &str = "update webhook_endpoints set enabled = 0, disabled_reason = $1,
    updated_at = $2 where id = $3";
const ENABLED: &str = "update webhook_endpoints set enabled = 1, disabled_reason = null,
    updated_at = $1 where id = $2";
const DELETED: &str = "update webhook_endpoints set deleted = 1, enabled = 0, updated_at = $1
    where id = $2";

fn json<T: Serialize>(value: &T) -> SqlValue {
    serde_json::to_string(value).unwrap_or_default().into()
}

fn spec_values(spec: &EndpointSpec) -> Vec<SqlValue> {
    vec![
        spec.url.as_str().into(),
        spec.description.clone().into(),
        json(&spec.event_types),
        json(&spec.phone_number_ids),
        json(&spec.group_ids),
        i64::from(spec.bot).into(),
    ]
}

impl Projection for WebhookEndpointsProjection {
    fn name(&self) -> &'static str {
        "webhook_endpoints"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["webhook_endpoints"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["WebhookEndpoint"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let DecodedEvent::WebhookEndpoint(endpoint_event) = decoded else {
            return;
        };
        let id = event.aggregate_id.as_str();
        match endpoint_event {
            WebhookEndpointEvent::Registered { spec, by, at } => {
                let mut values = vec![id.into()];
                values.extend(spec_values(spec));
                values.extend([
                    event.position.into(),
                    by.to_string().into(),
                    at.unix_millis().into(),
                ]);
                out.push(Statement::new(REGISTERED, values));
            }
            WebhookEndpointEvent::Updated { spec, at, .. } => {
                let mut values = spec_values(spec);
                values.extend([at.unix_millis().into(), id.into()]);
                out.push(Statement::new(UPDATED, values));
            }
            WebhookEndpointEvent::Disabled { reason, at, .. } => out.push(Statement::new(
                DISABLED,
                vec![reason.as_str().into(), at.unix_millis().into(), id.into()],
            )),
            WebhookEndpointEvent::Enabled { at, .. } => out.push(Statement::new(
                ENABLED,
                vec![at.unix_millis().into(), id.into()],
            )),
            WebhookEndpointEvent::Deleted { at, .. } => out.push(Statement::new(
                DELETED,
                vec![at.unix_millis().into(), id.into()],
            )),
        }
    }
}

/// An endpoint as the API lists it and the deliverer reads it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct EndpointView {
    /// Endpoint id.
    pub id: String,
    /// Where deliveries go.
    pub url: String,
    /// What it is for.
    pub description: Option<String>,
    /// Event-type patterns (`*` matches any run of characters).
    pub event_types: Vec<String>,
    /// Only conversations on these numbers (empty: any event).
    pub phone_number_ids: Vec<String>,
    /// Only conversations in these groups (empty: any event).
    #[schema(value_type = Vec<String>)]
    pub group_ids: Vec<GroupId>,
    /// The bot's endpoint.
    pub bot: bool,
    /// Whether deliveries run.
    pub enabled: bool,
    /// Why deliveries stopped (`failing`: the deliverer gave up on it).
    pub disabled_reason: Option<String>,
    /// Deliveries start after this log position.
    #[serde(skip)]
    pub registered_position: i64,
    /// The admin who registered it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// Last change.
    pub updated_at: String,
}

impl EndpointView {
    /// The endpoint `id` as its aggregate stands (answers to writes, before the read model
    /// has caught up): `None` unless registered and not deleted.
    pub fn of(id: &str, endpoint: &WebhookEndpoint) -> Option<Self> {
        let spec = endpoint.spec()?.clone();
        let (by, at) = endpoint.created()?;
        Some(Self {
            id: id.to_owned(),
            url: spec.url,
            description: spec.description,
            event_types: spec.event_types,
            phone_number_ids: spec.phone_number_ids,
            group_ids: spec.group_ids,
            bot: spec.bot,
            enabled: endpoint.enabled(),
            disabled_reason: endpoint.disabled_reason().map(str::to_owned),
            registered_position: 0,
            created_by: by.to_string(),
            created_at: at.to_string(),
            updated_at: endpoint.updated_at().unwrap_or(at).to_string(),
        })
    }

    /// The spec it was registered with (as last changed).
    pub fn spec(&self) -> EndpointSpec {
        EndpointSpec {
            url: self.url.clone(),
            description: self.description.clone(),
            event_types: self.event_types.clone(),
            phone_number_ids: self.phone_number_ids.clone(),
            group_ids: self.group_ids.clone(),
            bot: self.bot,
        }
    }
}

type Row = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    String,
    i64,
    i64,
);

const COLUMNS: &str = "select id, url, description, event_types, phone_number_ids, group_ids,
    bot, enabled, disabled_reason, registered_position, created_by, created_at, updated_at
    from webhook_endpoints where deleted = 0";

fn view(row: Row) -> EndpointView {
    let (id, url, description, types, phones, groups, bot, enabled, reason, position, by, at, up) =
        row;
    EndpointView {
        id,
        url,
        description,
        event_types: serde_json::from_str(&types).unwrap_or_default(),
        phone_number_ids: serde_json::from_str(&phones).unwrap_or_default(),
        group_ids: serde_json::from_str(&groups).unwrap_or_default(),
        bot: bot != 0,
        enabled: enabled != 0,
        disabled_reason: reason,
        registered_position: position,
        created_by: by,
        created_at: rfc3339(at),
        updated_at: rfc3339(up),
    }
}

/// Every endpoint not deleted, oldest first.
///
/// # Errors
/// Database failures.
pub async fn list(db: &Database) -> Result<Vec<EndpointView>, ProjectionError> {
    let sql = format!("{COLUMNS} order by created_at, id limit 1000");
    let rows: Vec<Row> = with_pool!(db, pool => sqlx::query_as(&sql).fetch_all(pool).await?);
    Ok(rows.into_iter().map(view).collect())
}

/// One endpoint, unless unknown or deleted.
///
/// # Errors
/// Database failures.
pub async fn find(db: &Database, id: &str) -> Result<Option<EndpointView>, ProjectionError> {
    let sql = format!("{COLUMNS} and id = $1");
    let row: Option<Row> =
        with_pool!(db, pool => sqlx::query_as(&sql).bind(id).fetch_optional(pool).await?);
    Ok(row.map(view))
}
