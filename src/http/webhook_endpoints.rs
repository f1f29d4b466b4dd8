//! Outgoing webhook endpoints (admins only): register (the signing secret shown in the answer,
//! and later on its own route), list, change, enable/disable, delete. A URL on a loopback or
//! private address is refused with 422 before anything connects to it, unless the server
//! allows private addresses.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::webhook_endpoint::{EndpointSpec, WebhookEndpoint, WebhookEndpointCommand};
use switchboard_domain::GroupId;
use switchboard_projections::webhook_endpoints::{self, EndpointView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::accounts::actor_metadata;
use crate::http::extract::{AuthAgent, JsonBody};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use crate::outgoing::{address, signing, state};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, register))
        .routes(routes!(show, change, delete))
}

/// Filters that narrow what an endpoint receives.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Filters {
    /// Only conversations on these business numbers.
    phone_number_ids: Option<Vec<String>>,
    /// Only conversations in these groups.
    #[schema(value_type = Option<Vec<String>>)]
    group_ids: Option<Vec<GroupId>>,
}

/// An endpoint to register.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewEndpoint {
    /// `http(s)://…`; private and loopback addresses are refused unless allowed.
    #[schema(max_length = 2048)]
    url: String,
    /// What it is for.
    description: Option<String>,
    /// Event types, `*` as a wildcard (`Message*`); default `["*"]`.
    event_types: Option<Vec<String>>,
    /// Only conversations on these numbers.
    phone_number_ids: Option<Vec<String>>,
    /// Only conversations in these groups.
    #[schema(value_type = Option<Vec<String>>)]
    group_ids: Option<Vec<GroupId>>,
    /// The same filters, grouped.
    filters: Option<Filters>,
    /// The bot's endpoint: receives only events of conversations with the bot.
    #[serde(default)]
    bot: bool,
    /// The signing secret (`whsec_` + base64 of 24–64 bytes); default: generated.
    secret: Option<String>,
}

/// A registered endpoint with its signing secret.
#[derive(Serialize, utoipa::ToSchema)]
struct Registered {
    #[serde(flatten)]
    endpoint: EndpointView,
    /// The signing secret (`whsec_…`): verify deliveries with it.
    secret: String,
}

fn refused(error: address::UrlRefused) -> ApiError {
    ApiError::Unprocessable {
        code: "invalid_url",
        message: error.to_string(),
    }
}

/// Checks the URL against the server's address policy (no connection is made).
pub(super) fn check_url(state: &AppState, url: &str) -> Result<String, ApiError> {
    address::check_url(url, state.outgoing.allow_private)
        .map(|u| u.to_string())
        .map_err(refused)
}

async fn execute(
    state: &AppState,
    id: &str,
    auth: &AuthAgent,
    command: WebhookEndpointCommand,
) -> Result<(), ApiError> {
    let metadata = actor_metadata(Some(auth.actor.agent_id), state.clock.now());
    crate::cqrs::execute(&state.frameworks.webhook_endpoints, id, command, &metadata).await?;
    Ok(())
}

/// The endpoint as its aggregate stands (the read model may not have caught up yet).
pub(super) async fn current(state: &AppState, id: &str) -> Result<EndpointView, ApiError> {
    let (endpoint, _) = state.log.load_aggregate::<WebhookEndpoint>(id).await?;
    EndpointView::of(id, &endpoint).ok_or(ApiError::NotFound("webhook endpoint"))
}

/// Every endpoint. Admins only.
#[utoipa::path(get, path = "/api/webhook-endpoints", operation_id = "listWebhookEndpoints", tag = "integrations",
    security(("bearer" = [])), responses((status = 200, body = Vec<EndpointView>), Errors))]
async fn list(
    State(state): State<AppState>,
    auth: AuthAgent,
) -> Result<Json<Vec<EndpointView>>, ApiError> {
    auth.require_admin()?;
    Ok(Json(webhook_endpoints::list(&state.database).await?))
}

/// Registers an endpoint: events after this moment are delivered to it, signed with the
/// secret in the answer (Standard Webhooks). Admins only.
#[utoipa::path(post, path = "/api/webhook-endpoints", operation_id = "registerWebhookEndpoint", tag = "integrations",
    request_body = NewEndpoint, security(("bearer" = [])),
    responses((status = 201, body = Registered), Errors))]
async fn register(
    State(state): State<AppState>,
    auth: AuthAgent,
    JsonBody(request): JsonBody<NewEndpoint>,
) -> Result<(StatusCode, Json<Registered>), ApiError> {
    auth.require_admin()?;
    let url = check_url(&state, &request.url)?;
    let secret = match request.secret {
        Some(given) => {
            signing::key_of(&given).map_err(|e| ApiError::Unprocessable {
                code: "invalid_secret",
                message: e.to_string(),
            })?;
            given
        }
        None => signing::generate(),
    };
    let filters = request.filters.unwrap_or_default();
    let spec = EndpointSpec {
        url,
        description: request.description,
        event_types: request.event_types.unwrap_or_else(|| vec!["*".to_owned()]),
        phone_number_ids: request
            .phone_number_ids
            .or(filters.phone_number_ids)
            .unwrap_or_default(),
        group_ids: request.group_ids.or(filters.group_ids).unwrap_or_default(),
        bot: request.bot,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let now = state.clock.now();
    state::save_secret(&state.database, &id, &secret, now.unix_millis()).await?;
    let command = WebhookEndpointCommand::Register {
        spec,
        by: auth.actor.clone(),
        at: now,
    };
    execute(&state, &id, &auth, command).await?;
    let endpoint = current(&state, &id).await?;
    Ok((StatusCode::CREATED, Json(Registered { endpoint, secret })))
}

/// One endpoint. Admins only.
#[utoipa::path(get, path = "/api/webhook-endpoints/{id}", operation_id = "getWebhookEndpoint", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id")), security(("bearer" = [])),
    responses((status = 200, body = EndpointView), Errors))]
async fn show(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<EndpointView>, ApiError> {
    auth.require_admin()?;
    Ok(Json(current(&state, &id).await?))
}

/// Changes to an endpoint: absent fields stay as they are.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct EndpointPatch {
    #[schema(max_length = 2048)]
    url: Option<String>,
    description: Option<String>,
    event_types: Option<Vec<String>>,
    phone_number_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Vec<String>>)]
    group_ids: Option<Vec<GroupId>>,
    filters: Option<Filters>,
    bot: Option<bool>,
    /// `false` stops deliveries; `true` resumes them where they stopped (nothing is skipped).
    enabled: Option<bool>,
}

/// Changes an endpoint, or disables / re-enables it. Admins only.
#[utoipa::path(patch, path = "/api/webhook-endpoints/{id}", operation_id = "updateWebhookEndpoint", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id")), request_body = EndpointPatch,
    security(("bearer" = [])), responses((status = 200, body = EndpointView), Errors))]
async fn change(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(patch): JsonBody<EndpointPatch>,
) -> Result<Json<EndpointView>, ApiError> {
    auth.require_admin()?;
    let before = current(&state, &id).await?;
    let mut spec = before.spec();
    if let Some(url) = &patch.url {
        spec.url = check_url(&state, url)?;
    }
    let filters = patch.filters.unwrap_or_default();
    spec.description = patch.description.or(spec.description);
    spec.event_types = patch.event_types.unwrap_or(spec.event_types);
    spec.phone_number_ids = patch
        .phone_number_ids
        .or(filters.phone_number_ids)
        .unwrap_or(spec.phone_number_ids);
    spec.group_ids = patch
        .group_ids
        .or(filters.group_ids)
        .unwrap_or(spec.group_ids);
    spec.bot = patch.bot.unwrap_or(spec.bot);
    let now = state.clock.now();
    let by = auth.actor.clone();
    let update = WebhookEndpointCommand::Update {
        spec,
        by: by.clone(),
        at: now,
    };
    execute(&state, &id, &auth, update).await?;
    match patch.enabled {
        Some(true) if !before.enabled => {
            state::clear_failures(&state.database, &id).await?;
            execute(
                &state,
                &id,
                &auth,
                WebhookEndpointCommand::Enable { by, at: now },
            )
            .await?;
        }
        Some(false) => {
            let command = WebhookEndpointCommand::Disable {
                reason: "disabled by an admin".to_owned(),
                by: Some(by),
                at: now,
            };
            execute(&state, &id, &auth, command).await?;
        }
        _ => {}
    }
    Ok(Json(current(&state, &id).await?))
}

/// Deletes an endpoint: deliveries stop for good. Admins only.
#[utoipa::path(delete, path = "/api/webhook-endpoints/{id}", operation_id = "deleteWebhookEndpoint", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id")), security(("bearer" = [])),
    responses((status = 204, description = "Deleted"), Errors))]
async fn delete(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    let command = WebhookEndpointCommand::Delete {
        by: auth.actor.clone(),
        at: state.clock.now(),
    };
    execute(&state, &id, &auth, command).await?;
    Ok(StatusCode::NO_CONTENT)
}
