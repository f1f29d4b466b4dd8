//! Webhooks whose processing failed for good: inspect, retry, purge (admins only).
//!
//! A webhook is dead-lettered at once when retrying cannot help (the body does not parse, an
//! unknown `object` or `field`), or after its last retry. Others keep flowing meanwhile, later
//! ones for the same conversation included: the domain orders by Meta's timestamps (the service
//! window only moves forward, statuses only advance), so applying a message late reorders
//! nothing visible; a retried webhook whose events already exist creates none.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::http::extract::{AuthAgent, Query};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use crate::webhooks::inbox::DeadLetterSummary;
use switchboard_projections::page::Page;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::webhooks::inbox::{self, DeadLetter};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, purge))
        .routes(routes!(retry_all))
        .routes(routes!(detail))
        .routes(routes!(retry))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    cursor: Option<String>,
    limit: Option<u32>,
}

/// Newest first; `next_cursor` pages on.
#[utoipa::path(get, path = "/api/webhooks/dead-letters", operation_id = "listWebhookDeadLetters", tag = "dead letters", params(ListParams), security(("bearer" = [])),
    responses((status = 200, body = Page<DeadLetterSummary>), Errors))]
async fn list(
    State(state): State<AppState>,
    auth: AuthAgent,
    Query(params): Query<ListParams>,
) -> Result<Json<Value>, ApiError> {
    auth.require_admin()?;
    let before = match params.cursor.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<i64>().map_err(|_| ApiError::InvalidCursor)?),
    };
    let limit = params.limit.unwrap_or(50).clamp(1, 200);
    let mut items = inbox::dead_letters(&state.database, before, limit + 1).await?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|d| d.id.to_string())
    } else {
        None
    };
    Ok(Json(json!({ "items": items, "next_cursor": next_cursor })))
}

fn parse_id(text: &str) -> Result<i64, ApiError> {
    text.parse().map_err(|_| ApiError::NotFound("dead letter"))
}

/// One dead letter with its raw body and every failed attempt.
#[utoipa::path(get, path = "/api/webhooks/dead-letters/{id}", operation_id = "getWebhookDeadLetter", tag = "dead letters", params(("id" = String, Path, description = "Dead letter id")), security(("bearer" = [])),
    responses((status = 200, body = DeadLetter), Errors))]
async fn detail(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<DeadLetter>, ApiError> {
    auth.require_admin()?;
    inbox::dead_letter(&state.database, parse_id(&id)?)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("dead letter"))
}

/// Queues one dead letter again.
#[utoipa::path(post, path = "/api/webhooks/dead-letters/{id}/retry", operation_id = "retryWebhookDeadLetter", tag = "dead letters", params(("id" = String, Path, description = "Dead letter id")), security(("bearer" = [])),
    responses((status = 202, body = crate::http::openapi::answers::RequeuedWebhook), Errors))]
async fn retry(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_admin()?;
    let id = parse_id(&id)?;
    if inbox::requeue(&state.database, Some(id)).await? == 0 {
        return Err(ApiError::NotFound("dead letter"));
    }
    state.inbox.wake();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "pending" })),
    ))
}

/// Queues every dead letter again.
#[utoipa::path(post, path = "/api/webhooks/dead-letters/retry-all", operation_id = "retryAllWebhookDeadLetters", tag = "dead letters", security(("bearer" = [])),
    responses((status = 202, body = crate::http::openapi::answers::QueuedCount), Errors))]
async fn retry_all(
    State(state): State<AppState>,
    auth: AuthAgent,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_admin()?;
    let queued = inbox::requeue(&state.database, None).await?;
    state.inbox.wake();
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": queued }))))
}

/// `?older_than=RFC3339`, the cut-off of a dead-letter purge (webhooks and sends alike).
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PurgeParams {
    /// RFC 3339 cut-off: dead letters older than this go.
    older_than: Option<String>,
}

impl PurgeParams {
    /// The cut-off in Unix milliseconds; a clear 400 when missing or malformed.
    pub(crate) fn cutoff_millis(self) -> Result<i64, ApiError> {
        let text = self
            .older_than
            .ok_or_else(|| ApiError::BadRequest("older_than (RFC 3339) is required".to_owned()))?;
        crate::http::input::rfc3339_millis("older_than", &text)
    }
}

/// Deletes dead letters received before `older_than` (RFC 3339).
#[utoipa::path(delete, path = "/api/webhooks/dead-letters", operation_id = "purgeWebhookDeadLetters", tag = "dead letters", params(PurgeParams), security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::Deleted), Errors))]
async fn purge(
    State(state): State<AppState>,
    auth: AuthAgent,
    Query(params): Query<PurgeParams>,
) -> Result<Json<Value>, ApiError> {
    auth.require_admin()?;
    let deleted = inbox::purge(&state.database, params.cutoff_millis()?).await?;
    Ok(Json(json!({ "deleted": deleted })))
}
