//! Conversations and their messages, as the caller's read scope allows; assignment.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_domain::agent::Agent;
use switchboard_domain::conversation::ConversationCommand;
use switchboard_domain::group::Group;
use switchboard_domain::{AgentId, GroupId};
use switchboard_projections::conversations::{self, ConversationView};
use switchboard_projections::messages::{self, MessageView};
use switchboard_projections::page::Page;
use switchboard_projections::ReadScope;

use crate::auth::accounts::actor_metadata;
use crate::cqrs::execute;
use crate::http::extract::{AuthAgent, JsonBody, PageParams, Query};
use crate::http::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/conversations", get(list))
        .route("/api/conversations/{id}", get(detail))
        .route("/api/conversations/{id}/messages", get(list_messages))
        .route(
            "/api/conversations/{id}/assignment",
            put(assign).delete(unassign),
        )
        .route("/api/messages/{id}", get(message))
}

async fn list(
    State(state): State<AppState>,
    auth: AuthAgent,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<ConversationView>>, ApiError> {
    let scope = ReadScope::of(&auth.actor);
    let page =
        conversations::list(&state.database, &scope, page.cursor.as_deref(), page.limit).await?;
    Ok(Json(page))
}

/// A conversation the caller may see; 404 otherwise (out of scope looks like absent).
async fn visible(
    state: &AppState,
    auth: &AuthAgent,
    id: &str,
) -> Result<ConversationView, ApiError> {
    conversations::get(&state.database, &ReadScope::of(&auth.actor), id)
        .await?
        .ok_or(ApiError::NotFound("conversation"))
}

async fn detail(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    Ok(Json(visible(&state, &auth, &id).await?))
}

async fn list_messages(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    visible(&state, &auth, &id).await?;
    let page =
        messages::list_for_conversation(&state.database, &id, page.cursor.as_deref(), page.limit)
            .await?;
    Ok(Json(page))
}

async fn message(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    let message = messages::get(&state.database, &id)
        .await?
        .ok_or(ApiError::NotFound("message"))?;
    visible(&state, &auth, &message.conversation_id)
        .await
        .map_err(|_| ApiError::NotFound("message"))?;
    Ok(Json(message))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Assignment {
    agent_id: Option<AgentId>,
    group_id: Option<GroupId>,
    reason: Option<String>,
}

/// Assigns the conversation to an agent and/or a group (both absent: unassigns).
async fn assign(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<Assignment>,
) -> Result<StatusCode, ApiError> {
    if let Some(agent) = request.agent_id {
        let (assignee, _) = state
            .log
            .load_aggregate::<Agent>(&agent.to_string())
            .await?;
        if !assignee.is_active() {
            return Err(ApiError::Unprocessable {
                code: "unknown_agent",
                message: format!("no active agent {agent}"),
            });
        }
    }
    if let Some(group) = request.group_id {
        let (found, _) = state
            .log
            .load_aggregate::<Group>(&group.to_string())
            .await?;
        if !found.exists() {
            return Err(ApiError::Unprocessable {
                code: "unknown_group",
                message: format!("no group {group}"),
            });
        }
    }
    let now = state.clock.now();
    let by = Some(auth.actor.agent_id);
    let command = ConversationCommand::Assign {
        actor: auth.actor,
        agent: request.agent_id,
        group: request.group_id,
        reason: request.reason,
        at: now,
    };
    execute(
        &state.frameworks.conversations,
        &id,
        command,
        &actor_metadata(by, now),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unassign(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    let by = Some(auth.actor.agent_id);
    let command = ConversationCommand::Unassign {
        actor: auth.actor,
        at: now,
    };
    execute(
        &state.frameworks.conversations,
        &id,
        command,
        &actor_metadata(by, now),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
