//! API keys as admins list them (`api_keys`): name, prefix, rights, who created them, expiry
//! and revocation. The secret is never here (nor its hash).

use serde::Serialize;
use switchboard_domain::api_key::ApiKeyEvent;
use switchboard_store::{with_pool, Database, RecordedEvent, Statement};

use crate::page::{rfc3339, rfc3339_opt};
use crate::{DecodedEvent, Projection, ProjectionError};

/// Builds `api_keys`.
pub struct ApiKeysProjection;

const CREATED: &str = "insert into api_keys
    (id, name, prefix, permissions, created_by, created_at, expires_at, bot)
    values ($1, $2, $3, $4, $5, $6, $7, $8)";
const REVOKED: &str = "update api_keys set revoked_at = $1 where id = $2";

impl Projection for ApiKeysProjection {
    fn name(&self) -> &'static str {
        "api_keys"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["api_keys"]
    }

    fn reads(&self) -> &'static [&'static str] {
        &["ApiKey"]
    }

    fn apply(&self, event: &RecordedEvent, decoded: &DecodedEvent, out: &mut Vec<Statement>) {
        let DecodedEvent::ApiKey(key_event) = decoded else {
            return;
        };
        let id = event.aggregate_id.as_str();
        match key_event {
            ApiKeyEvent::Created {
                name,
                permissions,
                expires_at,
                prefix,
                by,
                at,
                bot,
                ..
            } => out.push(Statement::new(
                CREATED,
                vec![
                    id.into(),
                    name.as_str().into(),
                    prefix.as_str().into(),
                    serde_json::to_string(permissions)
                        .unwrap_or_default()
                        .into(),
                    by.to_string().into(),
                    at.unix_millis().into(),
                    expires_at.map(|e| e.unix_millis()).into(),
                    i64::from(*bot).into(),
                ],
            )),
            ApiKeyEvent::Revoked { at, .. } => out.push(Statement::new(
                REVOKED,
                vec![at.unix_millis().into(), id.into()],
            )),
        }
    }
}

/// An API key as the API lists it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct ApiKeyView {
    /// Key id (the actor id its events carry).
    pub id: String,
    /// Name.
    pub name: String,
    /// The secret's first characters.
    pub prefix: String,
    /// Its rights.
    #[schema(value_type = Object)]
    pub permissions: serde_json::Value,
    /// The admin who created it.
    pub created_by: String,
    /// When.
    pub created_at: String,
    /// When it stops working.
    pub expires_at: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<String>,
    /// The `bot` scope: it writes only to conversations that are with the bot.
    pub bot: bool,
    /// When it last authenticated a request (to the minute).
    pub last_used_at: Option<String>,
}

type Row = (
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<i64>,
    i64,
    Option<i64>,
);

/// Every key, newest first.
///
/// # Errors
/// Database failures.
pub async fn list(db: &Database) -> Result<Vec<ApiKeyView>, ProjectionError> {
    const SQL: &str = "select id, name, prefix, permissions, created_by, created_at, expires_at,
        revoked_at, bot, (select last_used_at from api_key_usage u where u.key_id = k.id)
        from api_keys k order by created_at desc, id limit 1000";
    let rows: Vec<Row> = with_pool!(db, pool => sqlx::query_as(SQL).fetch_all(pool).await?);
    Ok(rows
        .into_iter()
        .map(
            |(
                id,
                name,
                prefix,
                permissions,
                created_by,
                created_at,
                expires_at,
                revoked_at,
                bot,
                last_used_at,
            )| {
                ApiKeyView {
                    id,
                    name,
                    prefix,
                    permissions: serde_json::from_str(&permissions).unwrap_or_default(),
                    created_by,
                    created_at: rfc3339(created_at),
                    expires_at: rfc3339_opt(expires_at),
                    revoked_at: rfc3339_opt(revoked_at),
                    bot: bot != 0,
                    last_used_at: rfc3339_opt(last_used_at),
                }
            },
        )
        .collect())
}
