//! Private notes: written by agents for agents, never sent to the customer; they appear in the
//! conversation's timeline (`direction: note`) and on sockets, and mentioned agents (who must
//! be able to read the conversation) receive a `mention` on their socket.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::agent::Agent;
use switchboard_domain::conversation::MAX_MENTIONS;
use switchboard_domain::conversation::{ConversationCommand, Write};
use switchboard_domain::{AgentId, GroupId};
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
    let mut mentions = request.mentions;
    mentions.sort();
    mentions.dedup();
    if mentions.len() > MAX_MENTIONS {
        return Err(ApiError::Unprocessable {
            code: "invalid_note",
            message: format!("a note mentions at most {MAX_MENTIONS} agents"),
        });
    }
    let conversation = crate::http::conversations::visible(&state, &auth, &id).await?;
    let (agent, group) = (
        conversation
            .assigned_agent_id
            .as_deref()
            .and_then(AgentId::parse),
        conversation
            .assigned_group_id
            .as_deref()
            .and_then(GroupId::parse),
    );
    let now = state.clock.now();
    for mentioned in &mentions {
        let (found, _) = state
            .log
            .load_aggregate::<Agent>(&mentioned.to_string())
            .await?;
        // A note is read where the conversation is: only its readers may be mentioned.
        let reader = found.actor(*mentioned, now);
        if !reader.is_some_and(|r| r.may_read(agent, group)) {
            return Err(ApiError::Unprocessable {
                code: "unknown_agent",
                message: format!("no active agent {mentioned} who may read this conversation"),
            });
        }
    }
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
        mentions,
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
