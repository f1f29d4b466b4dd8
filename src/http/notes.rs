//! Private notes: written by agents for agents, never sent to the customer; they appear in the
//! conversation's timeline (`direction: note`) and on sockets, and mentioned agents receive a
//! `mention` on their socket.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::agent::Agent;
use switchboard_domain::conversation::{ConversationCommand, Write};
use switchboard_domain::AgentId;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::accounts::actor_metadata;
use crate::http::extract::{AuthAgent, JsonBody};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(add_note))
}

/// A note to add.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NoteRequest {
    /// The text (1–4096 characters).
    text: String,
    /// Agents to notify (at most 20).
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    mentions: Vec<AgentId>,
}

/// The note added.
#[derive(Serialize, utoipa::ToSchema)]
struct NoteAdded {
    /// The note's id; in the timeline it is the message `note:{id}`.
    id: String,
    /// The conversation.
    conversation_id: String,
    /// The conversation's version now.
    version: u64,
}

/// Adds a private note (write scope needed; another agent's lock does not stop it).
#[utoipa::path(post, path = "/api/conversations/{id}/notes", tag = "ownership",
    params(("id" = String, Path, description = "Conversation id")), request_body = NoteRequest,
    security(("bearer" = [])), responses((status = 201, body = NoteAdded), Errors))]
async fn add_note(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<NoteRequest>,
) -> Result<(StatusCode, Json<NoteAdded>), ApiError> {
    for agent in request
        .mentions
        .iter()
        .take(switchboard_domain::conversation::MAX_MENTIONS + 1)
    {
        let (mentioned, _) = state
            .log
            .load_aggregate::<Agent>(&agent.to_string())
            .await?;
        if !mentioned.is_active() {
            return Err(ApiError::Unprocessable {
                code: "unknown_agent",
                message: format!("no active agent {agent}"),
            });
        }
    }
    let now = state.clock.now();
    let note_id = uuid::Uuid::new_v4().to_string();
    let by = auth.actor.agent_id;
    let command = ConversationCommand::AddNote {
        write: Write {
            actor: auth.actor,
            expected_version: None,
            at: now,
        },
        note_id: note_id.clone(),
        text: request.text,
        mentions: request.mentions,
    };
    let conversation = state
        .frameworks
        .conversations
        .execute(&id, command, &actor_metadata(Some(by), now))
        .await?;
    let added = NoteAdded {
        id: note_id,
        conversation_id: id,
        version: conversation.version(),
    };
    Ok((StatusCode::CREATED, Json(added)))
}
