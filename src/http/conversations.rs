//! Conversations and their messages, as the caller's read scope allows.

use axum::extract::{Path, State};
use axum::Json;
use switchboard_projections::conversations::{self, ConversationView};
use switchboard_projections::messages::{self, MessageView};
use switchboard_projections::page::Page;
use switchboard_projections::sla::{self, SlaDue};
use switchboard_projections::ReadScope;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{AuthAgent, PageParams, Query, ReadAfter, ReadAfterParams};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(detail))
        .routes(routes!(list_messages))
        .routes(routes!(message))
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

/// The most recent conversation the caller may see with the customer `wa_id` (a number in any
/// spelling: digits only are compared).
pub(super) async fn latest_with(
    state: &AppState,
    auth: &AuthAgent,
    wa_id: &str,
) -> Result<String, ApiError> {
    let digits: String = wa_id.chars().filter(char::is_ascii_digit).collect();
    conversations::latest_with_customer(&state.database, &ReadScope::of(&auth.actor), &digits)
        .await?
        .ok_or(ApiError::Unprocessable {
            code: "unknown_customer",
            message: format!("no conversation with {wa_id} that you may see"),
        })
}

/// A conversation with the due times of the SLA policy covering it.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct ConversationDetail {
    #[serde(flatten)]
    conversation: ConversationView,
    /// When its running SLA stretches fall due (absent when no policy covers it).
    sla: Option<SlaDue>,
}

/// One conversation, with its SLA due times.
#[utoipa::path(get, path = "/api/conversations/{id}", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id"), ReadAfterParams),
    security(("bearer" = [])), responses((status = 200, body = ConversationDetail), Errors))]
async fn detail(
    State(state): State<AppState>,
    auth: AuthAgent,
    _: ReadAfter,
    Path(id): Path<String>,
) -> Result<Json<ConversationDetail>, ApiError> {
    let conversation = visible(&state, &auth, &id).await?;
    let sla = sla::due_times(
        &state.database,
        &conversation.id,
        conversation.assigned_group_id.as_deref(),
        &conversation.tags,
        &conversation.phone_number_id,
    )
    .await?;
    Ok(Json(ConversationDetail { conversation, sla }))
}

/// A conversation's messages in chat order (Meta's timestamps).
#[utoipa::path(get, path = "/api/conversations/{id}/messages", tag = "conversations",
    params(("id" = String, Path, description = "Conversation id"), PageParams, ReadAfterParams),
    security(("bearer" = [])), responses((status = 200, body = Page<MessageView>), Errors))]
async fn list_messages(
    State(state): State<AppState>,
    auth: AuthAgent,
    _: ReadAfter,
    Path(id): Path<String>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<MessageView>>, ApiError> {
    visible(&state, &auth, &id).await?;
    let page =
        messages::list_for_conversation(&state.database, &id, page.cursor.as_deref(), page.limit)
            .await?;
    Ok(Json(page))
}

/// One message (inbound messages by wamid).
#[utoipa::path(get, path = "/api/messages/{id}", operation_id = "getMessage", tag = "conversations",
    params(("id" = String, Path, description = "Message id")),
    security(("bearer" = [])), responses((status = 200, body = MessageView), Errors))]
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
