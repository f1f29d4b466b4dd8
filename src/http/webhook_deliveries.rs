//! What happened to an endpoint's deliveries, and what an admin can do about it: the delivery
//! log, the signing secret, replays of a range of the log, dead letters (retry, purge).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{AuthAgent, JsonBody, Query};
use crate::http::input::rfc3339_millis;
use crate::http::openapi::Errors;
use crate::http::webhook_endpoints::current;
use crate::http::{ApiError, AppState};
use crate::outgoing::state::{self, DeliveryAttempt, EndpointDeadLetter};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(deliveries))
        .routes(routes!(secret))
        .routes(routes!(replay))
        .routes(routes!(dead_letters, purge_dead_letters))
        .routes(routes!(retry_dead_letter, purge_dead_letter))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    /// Only attempts at this event.
    position: Option<i64>,
    /// At most this many (1–1000, default 100).
    limit: Option<u32>,
}

/// The delivery log of an endpoint, newest attempt first: status, latency, the start of the
/// answer. Kept for 7 days. Admins only.
#[utoipa::path(get, path = "/api/webhook-endpoints/{id}/deliveries", operation_id = "listWebhookDeliveries", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id"), DeliveryParams), security(("bearer" = [])),
    responses((status = 200, body = Vec<DeliveryAttempt>), Errors))]
async fn deliveries(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    Query(params): Query<DeliveryParams>,
) -> Result<Json<Vec<DeliveryAttempt>>, ApiError> {
    auth.require_admin()?;
    current(&state, &id).await?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1_000);
    Ok(Json(
        state::attempts(&state.database, &id, params.position, limit).await?,
    ))
}

/// An endpoint's signing secret.
#[derive(Serialize, utoipa::ToSchema)]
struct Secret {
    /// `whsec_…`.
    secret: String,
}

/// The signing secret of an endpoint. Admins only.
#[utoipa::path(get, path = "/api/webhook-endpoints/{id}/secret", operation_id = "getWebhookSecret", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id")), security(("bearer" = [])),
    responses((status = 200, body = Secret), Errors))]
async fn secret(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<Secret>, ApiError> {
    auth.require_admin()?;
    current(&state, &id).await?;
    let secret = state::secret(&state.database, &id)
        .await?
        .ok_or(ApiError::NotFound("webhook endpoint"))?;
    Ok(Json(Secret { secret }))
}

/// A range of the log to deliver again.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReplayRequest {
    /// The first position to deliver again.
    from_position: Option<i64>,
    /// Or: events recorded at or after this time (RFC 3339).
    since: Option<String>,
    /// The last position (default: where live delivery stands now).
    to_position: Option<i64>,
}

/// A replay asked for.
#[derive(Serialize, utoipa::ToSchema)]
struct Replay {
    /// Replay id.
    id: String,
    /// First position.
    from_position: i64,
    /// Last position.
    to_position: i64,
}

/// Delivers a range of the log again, in order, with the same `webhook-id`s (receivers
/// deduplicate by it); only the events the endpoint's filters want. Admins only.
#[utoipa::path(post, path = "/api/webhook-endpoints/{id}/replay", operation_id = "replayWebhookEndpoint", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id")), request_body = ReplayRequest,
    security(("bearer" = [])), responses((status = 202, body = Replay), Errors))]
async fn replay(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ReplayRequest>,
) -> Result<(StatusCode, Json<Replay>), ApiError> {
    auth.require_admin()?;
    current(&state, &id).await?;
    let invalid = |message: &str| ApiError::Unprocessable {
        code: "invalid_replay",
        message: message.to_owned(),
    };
    let from = match (request.from_position, &request.since) {
        (Some(position), None) if position >= 1 => position,
        (None, Some(since)) => {
            let at = rfc3339_millis("since", since)?;
            state::first_position_since(&state.database, at)
                .await?
                .ok_or_else(|| invalid("no event was recorded since then"))?
        }
        _ => return Err(invalid("give either from_position (≥ 1) or since")),
    };
    let live = state::tracks(&state.database, &id)
        .await?
        .into_iter()
        .find(|t| t.kind == "live")
        .map_or(0, |t| t.after_position);
    let to = request.to_position.unwrap_or(live);
    if to < from {
        return Err(invalid("to_position lies before the first position"));
    }
    let now = state.clock.now().unix_millis();
    let replay_id = state::add_replay(&state.database, &id, "replay", from, to, now).await?;
    state.log.notify_appended();
    Ok((
        StatusCode::ACCEPTED,
        Json(Replay {
            id: replay_id,
            from_position: from,
            to_position: to,
        }),
    ))
}

/// Events an endpoint never accepted, oldest first. Admins only.
#[utoipa::path(get, path = "/api/webhook-endpoints/{id}/dead-letters", operation_id = "listEndpointDeadLetters", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id")), security(("bearer" = [])),
    responses((status = 200, body = Vec<EndpointDeadLetter>), Errors))]
async fn dead_letters(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<Vec<EndpointDeadLetter>>, ApiError> {
    auth.require_admin()?;
    current(&state, &id).await?;
    Ok(Json(state::dead_letters(&state.database, &id).await?))
}

/// Forgets every dead letter of an endpoint. Admins only.
#[utoipa::path(delete, path = "/api/webhook-endpoints/{id}/dead-letters", operation_id = "purgeEndpointDeadLetters", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id")), security(("bearer" = [])),
    responses((status = 204, description = "Purged"), Errors))]
async fn purge_dead_letters(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    current(&state, &id).await?;
    state::remove_dead_letters(&state.database, &id, None).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Delivers a dead letter again (once more through the retry schedule). Admins only.
#[utoipa::path(post, path = "/api/webhook-endpoints/{id}/dead-letters/{position}/retry", operation_id = "retryEndpointDeadLetter", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id"), ("position" = i64, Path, description = "Event position")),
    security(("bearer" = [])), responses((status = 202, description = "Queued"), Errors))]
async fn retry_dead_letter(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path((id, position)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    current(&state, &id).await?;
    let position = dead_letter_position(&position)?;
    if state::remove_dead_letters(&state.database, &id, Some(position)).await? == 0 {
        return Err(ApiError::NotFound("dead letter"));
    }
    let now = state.clock.now().unix_millis();
    state::add_replay(&state.database, &id, "retry", position, position, now).await?;
    state.log.notify_appended();
    Ok(StatusCode::ACCEPTED)
}

/// A dead letter's position from the path: not a position, no such dead letter.
fn dead_letter_position(text: &str) -> Result<i64, ApiError> {
    text.parse::<i64>()
        .ok()
        .filter(|p| *p > 0)
        .ok_or(ApiError::NotFound("dead letter"))
}

/// Forgets one dead letter. Admins only.
#[utoipa::path(delete, path = "/api/webhook-endpoints/{id}/dead-letters/{position}", operation_id = "purgeEndpointDeadLetter", tag = "integrations",
    params(("id" = String, Path, description = "Endpoint id"), ("position" = i64, Path, description = "Event position")),
    security(("bearer" = [])), responses((status = 204, description = "Purged"), Errors))]
async fn purge_dead_letter(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path((id, position)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    auth.require_admin()?;
    current(&state, &id).await?;
    let position = dead_letter_position(&position)?;
    if state::remove_dead_letters(&state.database, &id, Some(position)).await? == 0 {
        return Err(ApiError::NotFound("dead letter"));
    }
    Ok(StatusCode::NO_CONTENT)
}
