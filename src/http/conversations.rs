//! Conversations and their messages, as the read models hold them.

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use switchboard_projections::conversations::{self, ConversationView};
use switchboard_projections::messages::{self, MessageView};
use switchboard_projections::page::Page;

use crate::http::extract::{PageParams, Query};
use crate::http::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/conversations", get(list))
        .route("/api/conversations/{id}", get(detail))
        .route("/api/conversations/{id}/messages", get(list_messages))
        .route("/api/messages/{id}", get(message))
}

/// Cursor pagination parameters.
async fn list(
    State(state): State<AppState>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<ConversationView>>, ApiError> {
    let page = conversations::list(&state.database, page.cursor.as_deref(), page.limit).await?;
    Ok(Json(page))
}

async fn detail(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ConversationView>, ApiError> {
    conversations::get(&state.database, &id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("conversation"))
}

async fn list_messages(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    if conversations::get(&state.database, &id).await?.is_none() {
        return Err(ApiError::NotFound("conversation"));
    }
    let page =
        messages::list_for_conversation(&state.database, &id, page.cursor.as_deref(), page.limit)
            .await?;
    Ok(Json(page))
}

async fn message(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<MessageView>, ApiError> {
    messages::get(&state.database, &id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("message"))
}
