//! Conversations and their messages, as the caller's read scope allows.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use switchboard_projections::conversations::{self, ConversationView};
use switchboard_projections::messages::{self, MessageView};
use switchboard_projections::page::Page;
use switchboard_projections::ReadScope;

use crate::http::extract::{AuthAgent, PageParams, Query};
use crate::http::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/conversations", get(list))
        .route("/api/conversations/{id}", get(detail))
        .route("/api/conversations/{id}/messages", get(list_messages))
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
pub(super) async fn visible(
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
