//! Data-protection requests about one customer: `GET /api/customers/{id}/export` gives
//! everything held about them (an access request), for agents with `can_export_data`; the
//! export is recorded on the asking agent's record (`AgentCustomerDataExported`), and the
//! permission is checked by that record as it appends, so the check and the record are one.
//! `DELETE /api/customers/{id}` erases them (admins, with a reason): each of their
//! conversations records `ConversationCustomerErased`, from which every read model puts
//! `[erased]` in place of their content, name and number, and the raw webhooks that carried
//! them are deleted.

use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::agent::AgentCommand;
use switchboard_domain::conversation::ConversationCommand;
use switchboard_domain::ConversationId;
use switchboard_projections::applied;
use switchboard_projections::conversations::{self, ConversationView};
use switchboard_projections::messages::{self, MessageView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::accounts::actor_metadata;
use crate::http::extract::{AuthAgent, JsonBody};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

mod archive;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(export))
        .routes(routes!(archive::export_zip))
        .routes(routes!(erase))
}

/// Message kinds whose file is served under `/api/media/{message id}`.
const MEDIA_KINDS: &[&str] = &["image", "audio", "video", "document", "sticker"];

/// Everything held about one customer.
#[derive(Serialize, utoipa::ToSchema)]
struct CustomerExport {
    /// The customer as asked for (`wa_id` digits or business-scoped user id).
    customer: String,
    /// When (RFC 3339).
    exported_at: String,
    /// The agent who asked.
    exported_by: String,
    /// Every conversation with them, on every business number, oldest first.
    conversations: Vec<ExportedConversation>,
}

/// One conversation with its whole timeline.
#[derive(Serialize, utoipa::ToSchema)]
struct ExportedConversation {
    #[serde(flatten)]
    conversation: ConversationView,
    /// Every message, note and status in chat order, as `GET /api/conversations/{id}/messages`
    /// gives them.
    messages: Vec<MessageView>,
    /// The files of its media messages (paths of `GET /api/media/{id}`).
    files: Vec<String>,
}

/// Everything held about one customer (conversations, messages, statuses, notes, files, and who
/// handled them); needs `can_export_data`; recorded with who asked.
#[utoipa::path(get, path = "/api/customers/{id}/export", operation_id = "exportCustomer",
    tag = "conversations",
    params(("id" = String, Path, description = "The customer's WhatsApp number (any spelling) or business-scoped user id"),
        ("format" = Option<String>, Query, description = "`zip` (or `Accept: application/zip`): the export and the files, as `/export.zip` gives them")),
    security(("bearer" = [])), responses((status = 200, body = CustomerExport), Errors))]
async fn export(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    Query(query): Query<ExportQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let accepts_zip = headers
        .get(header::ACCEPT)
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.contains("application/zip"));
    if accepts_zip || query.format.as_deref() == Some("zip") {
        return archive::zipped(&state, &auth, &id).await;
    }
    Ok(Json(collect(&state, &auth, &id).await?).into_response())
}

/// `?format=`.
#[derive(Deserialize)]
struct ExportQuery {
    /// `json` (the default) or `zip`.
    format: Option<String>,
}

/// Everything held about customer `id`, the export recorded first (refused without
/// `can_export_data`).
async fn collect(state: &AppState, auth: &AuthAgent, id: &str) -> Result<CustomerExport, ApiError> {
    // Refused before the lookup, so that whether someone is a customer cannot be probed; the
    // agent's record decides again as it records the export.
    if !auth.actor.permissions.can_export_data || auth.session_id.starts_with("api-key:") {
        return Err(ApiError::Forbidden {
            code: "forbidden",
            message:
                "exporting a customer's data needs an agent with the can_export_data permission",
        });
    }
    let customer = customer_key(id);
    let found = conversations::of_customer(&state.database, &customer).await?;
    if found.is_empty() {
        return Err(ApiError::NotFound("customer"));
    }
    let now = state.clock.now();
    let command = AgentCommand::RecordCustomerExport {
        conversations: found
            .iter()
            .filter_map(|c| ConversationId::parse(&c.id))
            .collect(),
        at: now,
    };
    let me = auth.actor.agent_id.to_string();
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.agents, &me, command, &metadata).await?;
    let mut exported = Vec::with_capacity(found.len());
    for conversation in found {
        let messages = timeline(state, &conversation.id).await?;
        let files = messages
            .iter()
            .filter(|m| m.kind.as_deref().is_some_and(|k| MEDIA_KINDS.contains(&k)))
            .map(|m| format!("/api/media/{}", m.id))
            .collect();
        exported.push(ExportedConversation {
            conversation,
            messages,
            files,
        });
    }
    Ok(CustomerExport {
        customer,
        exported_at: now.to_string(),
        exported_by: me,
        conversations: exported,
    })
}

/// An erasure request.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct ErasureRequest {
    /// Why (e.g. the request's reference), 1 to 500 characters.
    reason: String,
}

/// What was erased.
#[derive(Serialize, utoipa::ToSchema)]
struct Erased {
    /// The conversations whose content, name and number now read `[erased]`.
    conversations: Vec<String>,
    /// Raw webhooks that carried the customer, deleted.
    raw_webhooks_deleted: u64,
}

/// Erase one customer (a data-protection erasure request; admins, with a reason): their
/// conversations' messages, notes, name and number read `[erased]` everywhere from now on.
/// Made again for a customer already erased, it cleans up what is left (pending sends, files)
/// and answers the same conversations.
#[utoipa::path(delete, path = "/api/customers/{id}", operation_id = "eraseCustomer",
    tag = "conversations",
    params(("id" = String, Path, description = "The customer's WhatsApp number (any spelling) or business-scoped user id")),
    request_body = ErasureRequest,
    security(("bearer" = [])), responses((status = 200, body = Erased), Errors))]
async fn erase(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<ErasureRequest>,
) -> Result<Json<Erased>, ApiError> {
    // Refused before the lookup (see `export`); each conversation decides again as it appends.
    if auth.actor.role != switchboard_domain::agent::Role::Admin {
        return Err(ApiError::Forbidden {
            code: "forbidden",
            message: "erasing a customer's data needs the admin role",
        });
    }
    let customer = customer_key(&id);
    let found = conversations::of_customer(&state.database, &customer).await?;
    // Erased by an earlier request that failed before its clean-up ended: cleaned up again.
    let earlier = conversations::erased_of_customer(&state.database, &customer).await?;
    if found.is_empty() && earlier.is_empty() {
        return Err(ApiError::NotFound("customer"));
    }
    let now = state.clock.now();
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    let mut erased = Vec::with_capacity(found.len() + earlier.len());
    for conversation in found {
        let command = ConversationCommand::EraseCustomer {
            reason: request.reason.clone(),
            by: auth.actor.clone(),
            at: now,
        };
        state
            .frameworks
            .conversations
            .execute(&conversation.id, command, &metadata)
            .await?;
        erased.push(conversation.id);
    }
    erased.extend(earlier);
    for conversation in &erased {
        clean_up(&state, conversation, now).await?;
    }
    let raw_webhooks_deleted =
        crate::webhooks::retention::forget_customer(&state.database, &customer).await?;
    crate::privacy::release_when_projected(state.database.clone());
    Ok(Json(Erased {
        conversations: erased,
        raw_webhooks_deleted,
    }))
}

/// What an erased conversation leaves outside the log: sends not yet made, and its files.
async fn clean_up(
    state: &AppState,
    conversation: &str,
    now: switchboard_domain::Timestamp,
) -> Result<(), ApiError> {
    crate::outbox::forget_conversation(&state.database, conversation).await?;
    // The files as the log has them so far: one stored a moment ago, another customer's copy
    // of the same bytes (a bound, not a guarantee: the fetcher settles the rest).
    let stopped = &state.stopped_projections;
    applied::wait_until_caught_up(&state.log, stopped, Duration::from_secs(5)).await?;
    crate::media::retention::forget_conversation(
        &state.log,
        &state.frameworks,
        &state.media,
        conversation,
        now,
    )
    .await?;
    Ok(())
}

/// A conversation's whole timeline, page after page.
async fn timeline(state: &AppState, conversation: &str) -> Result<Vec<MessageView>, ApiError> {
    let mut all = Vec::new();
    let mut cursor = None;
    loop {
        let page = messages::list_for_conversation(
            &state.database,
            conversation,
            cursor.as_deref(),
            Some(500),
        )
        .await?;
        all.extend(page.items);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(all),
        }
    }
}

/// The customer key of `id`: a phone number in any spelling becomes its digits; anything else
/// (a business-scoped user id) is taken as it is.
fn customer_key(id: &str) -> String {
    let id = id.trim();
    let phone = id
        .chars()
        .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if phone {
        id.chars().filter(char::is_ascii_digit).collect()
    } else {
        id.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::customer_key;

    #[test]
    fn a_number_in_any_spelling_is_its_digits_and_a_user_id_is_kept() {
        assert_eq!(customer_key("+1 (555) 000-2222"), "15550002222");
        assert_eq!(
            customer_key("US.13491208655302741918"),
            "US.13491208655302741918"
        );
    }
}
