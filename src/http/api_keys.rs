//! API keys for integrations (admins only): created with some of the admin's own rights, the
//! secret shown once; listed without it; revoked at once.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::agent::{ChatScope, Permissions, PermissionsPatch};
use switchboard_domain::api_key::ApiKeyCommand;
use switchboard_projections::api_keys::{self, ApiKeyView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::accounts::actor_metadata;
use crate::http::agents::PermissionsInput;
use crate::http::extract::{AuthAgent, JsonBody};
use crate::http::input::rfc3339_millis;
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(revoke))
}

/// A key to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewApiKey {
    /// What it is for (1–100 characters).
    name: String,
    /// Its rights (absent ones: none); at most the creator's own. `scopes` is another name.
    #[serde(alias = "scopes")]
    permissions: Option<PermissionsInput>,
    /// The `bot` scope: the key writes only to conversations that are with the bot (replies,
    /// hand-offs). Without `permissions`, a bot key reads and writes every conversation, within
    /// that limit.
    #[serde(default)]
    bot: bool,
    /// When it stops working (RFC 3339); default: never.
    expires_at: Option<String>,
}

/// A created key, with its secret: shown this once, never again.
#[derive(Serialize, utoipa::ToSchema)]
struct CreatedApiKey {
    /// Key id (the actor id its events carry).
    id: String,
    /// The secret: `Authorization: Bearer sbk_…`.
    secret: String,
    /// Its first characters (shown in lists).
    prefix: String,
    /// Its rights.
    #[schema(value_type = Object)]
    permissions: Permissions,
}

/// Every API key, newest first (never their secrets). Admins only.
#[utoipa::path(get, path = "/api/api-keys", operation_id = "listApiKeys", tag = "integrations",
    security(("bearer" = [])), responses((status = 200, body = Vec<ApiKeyView>), Errors))]
async fn list(
    State(state): State<AppState>,
    auth: AuthAgent,
) -> Result<Json<Vec<ApiKeyView>>, ApiError> {
    auth.require_admin()?;
    Ok(Json(api_keys::list(&state.database).await?))
}

/// Creates an API key. Admins only; its rights are at most the admin's own.
#[utoipa::path(post, path = "/api/api-keys", operation_id = "createApiKey", tag = "integrations",
    request_body = NewApiKey, security(("bearer" = [])),
    responses((status = 201, body = CreatedApiKey), Errors))]
async fn create(
    State(state): State<AppState>,
    auth: AuthAgent,
    JsonBody(request): JsonBody<NewApiKey>,
) -> Result<(StatusCode, Json<CreatedApiKey>), ApiError> {
    auth.require_admin()?;
    let expires_at = match &request.expires_at {
        Some(text) => Some(
            switchboard_domain::Timestamp::from_unix_millis(rfc3339_millis("expires_at", text)?)
                .ok_or_else(|| ApiError::BadRequest("expires_at: out of range".to_owned()))?,
        ),
        None => None,
    };
    let permissions = match request.permissions {
        Some(given) => PermissionsPatch::from(given).over(Permissions::nothing()),
        None if request.bot => Permissions {
            can_read_chats: ChatScope::All,
            can_write_to_chats: ChatScope::All,
            ..Permissions::nothing()
        },
        None => Permissions::nothing(),
    };
    let key = crate::auth::api_keys::generate();
    let now = state.clock.now();
    let command = ApiKeyCommand::Create {
        name: request.name,
        permissions,
        expires_at,
        bot: request.bot,
        secret_sha256: key.secret_sha256,
        prefix: key.prefix.clone(),
        by: auth.actor.clone(),
        at: now,
    };
    let id = key.id.to_string();
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.api_keys, &id, command, &metadata).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedApiKey {
            id,
            secret: key.token,
            prefix: key.prefix,
            permissions,
        }),
    ))
}

/// Revokes an API key: it is refused from the next request on. Admins only.
#[utoipa::path(delete, path = "/api/api-keys/{id}", operation_id = "revokeApiKey", tag = "integrations",
    params(("id" = String, Path, description = "Key id")), security(("bearer" = [])),
    responses((status = 204, description = "Revoked"), Errors))]
async fn revoke(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    let now = state.clock.now();
    let command = ApiKeyCommand::Revoke {
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.api_keys, &id, command, &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}
