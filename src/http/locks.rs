//! The short lock an agent holds on a conversation while answering. Atomic by construction:
//! the decision is the conversation aggregate's, committed against its version, and a lost race
//! is retried against the fresh state, ending as a clean 409.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::conversation::{ConversationCommand, Lock};

use crate::auth::accounts::actor_metadata;
use crate::http::conversations::visible;
use crate::http::extract::{AuthAgent, OptionalJson};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(acquire, release))
        .routes(routes!(status))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AcquireRequest {
    ttl_seconds: Option<u64>,
    /// The conversation version the agent last saw (409 `conversation_changed` if it moved on,
    /// e.g. another agent replied meanwhile).
    expected_version: Option<u64>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ReleaseRequest {
    #[serde(default)]
    force: bool,
    reason: Option<String>,
}

/// A lock as the API shows it.
#[derive(Serialize, utoipa::ToSchema)]
struct LockState {
    locked: bool,
    agent_id: Option<String>,
    acquired_at: Option<String>,
    expires_at: Option<String>,
}

impl From<Option<Lock>> for LockState {
    fn from(lock: Option<Lock>) -> Self {
        Self {
            locked: lock.is_some(),
            agent_id: lock.map(|l| l.agent.to_string()),
            acquired_at: lock.map(|l| l.acquired_at.to_string()),
            expires_at: lock.map(|l| l.expires_at.to_string()),
        }
    }
}

/// Takes the lock (or renews it, for its holder).
#[utoipa::path(post, path = "/api/conversations/{id}/lock", tag = "locks", params(("id" = String, Path, description = "Conversation id")),
    request_body(content = Option<AcquireRequest>, description = "Optional"), security(("bearer" = [])),
    responses((status = 200, body = LockState), Errors))]
async fn acquire(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    OptionalJson(request): OptionalJson<AcquireRequest>,
) -> Result<Json<LockState>, ApiError> {
    let settings = &state.conversations;
    let max = settings.max_lock_ttl.as_secs();
    let ttl = request
        .ttl_seconds
        .unwrap_or(settings.default_lock_ttl.as_secs());
    if ttl == 0 || ttl > max {
        return Err(ApiError::Unprocessable {
            code: "invalid_ttl",
            message: format!("ttl_seconds must be between 1 and {max}"),
        });
    }
    let now = state.clock.now();
    let by = auth.actor.agent_id;
    let command = ConversationCommand::AcquireLock {
        actor: auth.actor,
        expected_version: request.expected_version,
        ttl_seconds: i64::try_from(ttl).unwrap_or(i64::MAX),
        at: now,
    };
    let result = state
        .frameworks
        .conversations
        .execute(&id, command, &actor_metadata(Some(by), now))
        .await;
    if let Err(cqrs_es::AggregateError::UserError(
        switchboard_domain::conversation::ConversationError::LockedByAnotherAgent { .. },
    )) = &result
    {
        tracing::debug!(conversation_id = %id, "lock conflict");
        metrics::counter!(crate::metrics::LOCK_CONFLICTS).increment(1);
    }
    Ok(Json(result?.lock_at(now).into()))
}

/// Releases the lock: its holder may; a supervisor may force it with `{"force": true, "reason": …}`.
#[utoipa::path(delete, path = "/api/conversations/{id}/lock", tag = "locks", params(("id" = String, Path, description = "Conversation id")),
    request_body(content = Option<ReleaseRequest>, description = "Optional; `force` for supervisors"), security(("bearer" = [])),
    responses((status = 200, body = LockState), Errors))]
async fn release(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    OptionalJson(request): OptionalJson<ReleaseRequest>,
) -> Result<Json<LockState>, ApiError> {
    let now = state.clock.now();
    let by = auth.actor.agent_id;
    let command = ConversationCommand::ReleaseLock {
        actor: auth.actor,
        force: request.force,
        reason: request.reason,
        at: now,
    };
    let conversation = state
        .frameworks
        .conversations
        .execute(&id, command, &actor_metadata(Some(by), now))
        .await?;
    Ok(Json(conversation.lock_at(now).into()))
}

/// The lock in force now, from the conversation's events (a lapsed lock is free).
#[utoipa::path(get, path = "/api/conversations/{id}/lock-status", operation_id = "getLockStatus", tag = "locks", params(("id" = String, Path, description = "Conversation id")), security(("bearer" = [])),
    responses((status = 200, body = LockState), Errors))]
async fn status(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<LockState>, ApiError> {
    let (conversation, _) = state.frameworks.conversations.current(&id).await?;
    if !conversation.visible_to(&auth.actor) {
        visible(&state, &auth, &id).await?;
    }
    Ok(Json(conversation.lock_at(state.clock.now()).into()))
}
