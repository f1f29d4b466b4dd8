//! Agents' replies: validated against Meta's limits and the conversation's rules, then stored
//! as a request before any network call. The same `client_id` again (a double click, a retry on
//! a weak connection) lands on the same message and sends nothing more.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::conversation::{Conversation, Write};
use switchboard_domain::message::{MessageCommand, OutboundContent};
use uuid::Uuid;

use crate::auth::accounts::actor_metadata;
use crate::cqrs::execute;
use crate::http::extract::{AuthAgent, ContentJson};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(send))
        .routes(routes!(mark_read))
}

/// Namespace of outbound message ids: one message per (conversation, client id), forever.
const OUTBOUND_NAMESPACE: Uuid = Uuid::from_u128(0x4d2c_9a7e_51b8_4f06_a3d1_7c9e_2b64_f018);

#[derive(Deserialize, Clone, Copy, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum Priority {
    High,
    #[default]
    Normal,
    Low,
}

impl Priority {
    fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Normal => "normal",
            Self::Low => "low",
        }
    }
}

#[derive(Deserialize)]
struct SendRequest {
    client_id: String,
    #[serde(flatten)]
    content: OutboundContent,
    reply_to: Option<String>,
    #[serde(default)]
    priority: Priority,
    expected_version: Option<u64>,
}

/// The wire form of a send (documentation): `client_id`, `type`, and that type's fields.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct SendRequestDoc {
    /// The client's idempotency key: the same one again sends nothing more.
    client_id: String,
    /// `text {body, preview_url?}`, `image|audio|video|document|sticker {link | id, caption?,
    /// filename?}`, `location {latitude, longitude, name?, address?}`, `reaction {message_id,
    /// emoji}`, `buttons {body, buttons: [{id, title}], header?, footer?}`, `list {body, button,
    /// sections: [{title?, rows: [{id, title, description?}]}], header?, footer?}`, `template
    /// {name, language, components?}`.
    #[schema(rename = "type")]
    kind: MessageTypeDoc,
    /// The message this replies to.
    reply_to: Option<String>,
    priority: Option<Priority>,
    /// The conversation version the agent last saw (409 if it moved on).
    expected_version: Option<u64>,
}

/// The content types an agent may send.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code)]
enum MessageTypeDoc {
    Text,
    Image,
    Audio,
    Video,
    Document,
    Sticker,
    Location,
    Reaction,
    Buttons,
    List,
    Template,
}

#[derive(Serialize, utoipa::ToSchema)]
struct Accepted {
    id: String,
    client_id: String,
    /// `queued`.
    #[schema(value_type = String)]
    status: &'static str,
}

/// Queues a reply. 202 with the message id; the same `client_id` again answers the same.
#[utoipa::path(post, path = "/api/conversations/{id}/messages", tag = "messages", params(("id" = String, Path, description = "Conversation id")),
    request_body = SendRequestDoc, security(("bearer" = [])),
    responses((status = 202, body = Accepted), Errors))]
async fn send(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(conversation_id): Path<String>,
    ContentJson(request): ContentJson<SendRequest>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let client_id = request.client_id.trim().to_owned();
    if client_id.is_empty() || client_id.len() > 128 || client_id.contains(char::is_control) {
        return Err(ApiError::Unprocessable {
            code: "invalid_client_id",
            message: "client_id must be 1 to 128 characters, none of them control characters"
                .to_owned(),
        });
    }
    if (request.reply_to.as_ref()).is_some_and(|r| r.len() > 512 || r.contains(char::is_control)) {
        return Err(ApiError::Unprocessable {
            code: "invalid_message",
            message: "reply_to: a message id of at most 512 bytes, without control characters"
                .to_owned(),
        });
    }
    request
        .content
        .validate()
        .map_err(|e| ApiError::Unprocessable {
            code: "invalid_message",
            message: e.to_string(),
        })?;
    let (conversation, _) = state
        .log
        .load_aggregate::<Conversation>(&conversation_id)
        .await?;
    let (Some(phone_number_id), Some(customer)) =
        (conversation.phone_number_id(), conversation.customer())
    else {
        return Err(ApiError::NotFound("conversation"));
    };
    let (phone_number_id, customer) = (phone_number_id.clone(), customer.clone());
    let now = state.clock.now();
    let requested_by = auth.actor.agent_id;
    let write = Write {
        actor: auth.actor,
        expected_version: request.expected_version,
        at: now,
    };
    conversation.authorize_send(&write, request.content.is_template())?;
    let message_id = format!(
        "out.{}",
        Uuid::new_v5(
            &OUTBOUND_NAMESPACE,
            format!("{conversation_id}/{client_id}").as_bytes()
        )
    );
    let conversation_key = switchboard_domain::ConversationId::parse(&conversation_id)
        .ok_or(ApiError::NotFound("conversation"))?;
    let command = MessageCommand::RequestOutbound {
        conversation_id: conversation_key,
        phone_number_id,
        customer,
        client_id: client_id.clone(),
        content: request.content,
        reply_to: request.reply_to,
        priority: request.priority.as_str().to_owned(),
        requested_by,
        at: now,
    };
    execute(
        &state.frameworks.messages,
        &message_id,
        command,
        &actor_metadata(Some(requested_by), now),
    )
    .await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(Accepted {
            id: message_id,
            client_id,
            status: "queued",
        }),
    ))
}

/// Marks the customer's messages read: at Meta (blue ticks; when sending is configured) and in
/// the inbox (unread count back to zero). Meta is told first, so a refusal changes nothing.
#[utoipa::path(post, path = "/api/conversations/{id}/read", tag = "messages", params(("id" = String, Path, description = "Conversation id")), security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::ReadUpTo), Errors))]
async fn mark_read(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(conversation_id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    use crate::whatsapp::graph::SendOutcome;
    use switchboard_domain::conversation::ConversationCommand;
    let (conversation, _) = state
        .log
        .load_aggregate::<Conversation>(&conversation_id)
        .await?;
    let now = state.clock.now();
    let by = auth.actor.agent_id;
    let write = Write {
        actor: auth.actor,
        expected_version: None,
        at: now,
    };
    if !conversation.visible_to(&write.actor) {
        return Err(ApiError::NotFound("conversation"));
    }
    let up_to = conversation
        .last_customer_message()
        .cloned()
        .ok_or(ApiError::Unprocessable {
            code: "nothing_to_read",
            message: "the customer has not written yet".to_owned(),
        })?;
    if let (Some(graph), Some(phone)) = (&state.graph, conversation.phone_number_id()) {
        match graph.mark_read(phone.as_str(), up_to.as_str()).await {
            SendOutcome::Accepted(_) => {}
            SendOutcome::Refused { error, .. } => {
                return Err(ApiError::Conflict {
                    code: "meta_refused",
                    message: format!(
                        "Meta refused the read receipt: {} {}",
                        error.code,
                        error.message.unwrap_or_default()
                    ),
                })
            }
            SendOutcome::Unreachable(_) => return Err(ApiError::Unavailable("Graph API")),
        }
    }
    execute(
        &state.frameworks.conversations,
        &conversation_id,
        ConversationCommand::MarkRead { write },
        &actor_metadata(Some(by), now),
    )
    .await?;
    Ok(Json(
        serde_json::json!({ "id": conversation_id, "read_up_to": up_to }),
    ))
}
