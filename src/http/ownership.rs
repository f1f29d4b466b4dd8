//! Who handles a conversation and how it stands: assignment, bot/agent ownership, status, tags.
//! Every write goes through the conversation aggregate, which checks scope, working hours, the
//! lock and (when given) the version the agent last saw.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_domain::agent::Agent;
use switchboard_domain::conversation::{ConversationCommand, ConversationStatus, Tag, Write};
use switchboard_domain::group::Group;
use switchboard_domain::{AgentId, GroupId, Timestamp};

use crate::auth::accounts::actor_metadata;
use crate::http::extract::{AuthAgent, JsonBody, OptionalJson};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(assign, unassign))
        .routes(routes!(take_over))
        .routes(routes!(hand_back))
        .routes(routes!(hand_off))
        .routes(routes!(change_status))
        .routes(routes!(add_tag))
        .routes(routes!(remove_tag))
}

/// Runs a conversation command for the caller and answers with the conversation's new version.
pub(super) async fn dispatch(
    state: &AppState,
    id: &str,
    by: AgentId,
    command: ConversationCommand,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let conversation = state
        .frameworks
        .conversations
        .execute(id, command, &actor_metadata(Some(by), now))
        .await?;
    Ok(Json(json!({ "id": id, "version": conversation.version() })))
}

/// 422 `unknown_group` unless `group` (when given) exists.
async fn known_group(state: &AppState, group: Option<GroupId>) -> Result<(), ApiError> {
    let Some(group) = group else {
        return Ok(());
    };
    let (found, _) = state
        .log
        .load_aggregate::<Group>(&group.to_string())
        .await?;
    if found.exists() {
        Ok(())
    } else {
        Err(ApiError::Unprocessable {
            code: "unknown_group",
            message: format!("no group {group}"),
        })
    }
}

fn write(auth: AuthAgent, expected_version: Option<u64>, at: Timestamp) -> Write {
    Write {
        actor: auth.actor,
        expected_version,
        at,
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Assignment {
    #[schema(value_type = Option<String>)]
    agent_id: Option<AgentId>,
    #[schema(value_type = Option<String>)]
    group_id: Option<GroupId>,
    reason: Option<String>,
    expected_version: Option<u64>,
}

/// Assigns the conversation to an agent and/or a group (both absent: unassigns).
#[utoipa::path(put, path = "/api/conversations/{id}/assignment", tag = "ownership", params(("id" = String, Path, description = "Conversation id")), request_body = Assignment, security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::Versioned), Errors))]
async fn assign(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<Assignment>,
) -> Result<Json<Value>, ApiError> {
    check_reason(request.reason.as_ref())?;
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
    known_group(&state, request.group_id).await?;
    let by = auth.actor.agent_id;
    let command = ConversationCommand::Assign {
        write: write(auth, request.expected_version, state.clock.now()),
        agent: request.agent_id,
        group: request.group_id,
        reason: request.reason,
    };
    dispatch(&state, &id, by, command).await
}

/// Removes the assignment.
#[utoipa::path(delete, path = "/api/conversations/{id}/assignment", tag = "ownership", params(("id" = String, Path, description = "Conversation id")), security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::Versioned), Errors))]
async fn unassign(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let by = auth.actor.agent_id;
    let command = ConversationCommand::Unassign {
        write: write(auth, None, state.clock.now()),
    };
    dispatch(&state, &id, by, command).await
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Reasoned {
    reason: Option<String>,
    expected_version: Option<u64>,
}

/// The caller takes the conversation over (from the bot or another agent).
#[utoipa::path(post, path = "/api/conversations/{id}/takeover", tag = "ownership", params(("id" = String, Path, description = "Conversation id")),
    request_body(content = Option<Reasoned>, description = "Optional"), security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::Versioned), Errors))]
async fn take_over(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    OptionalJson(request): OptionalJson<Reasoned>,
) -> Result<Json<Value>, ApiError> {
    check_reason(request.reason.as_ref())?;
    let by = auth.actor.agent_id;
    let command = ConversationCommand::TakeOver {
        write: write(auth, request.expected_version, state.clock.now()),
        reason: request.reason,
    };
    dispatch(&state, &id, by, command).await
}

/// The conversation goes back to the bot (status pending).
#[utoipa::path(post, path = "/api/conversations/{id}/handback", tag = "ownership", params(("id" = String, Path, description = "Conversation id")),
    request_body(content = Option<Reasoned>, description = "Optional"), security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::Versioned), Errors))]
async fn hand_back(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    OptionalJson(request): OptionalJson<Reasoned>,
) -> Result<Json<Value>, ApiError> {
    check_reason(request.reason.as_ref())?;
    let by = auth.actor.agent_id;
    let command = ConversationCommand::HandBackToBot {
        write: write(auth, request.expected_version, state.clock.now()),
        reason: request.reason,
    };
    dispatch(&state, &id, by, command).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct HandOff {
    /// The group to hand it to (absent: keep its group, if any).
    #[schema(value_type = Option<String>)]
    group_id: Option<GroupId>,
    /// Why (1–1000 characters).
    #[schema(max_length = 1000)]
    reason: String,
    expected_version: Option<u64>,
}

/// The bot hands the conversation to the humans (`ConversationHandedOff`): open, unowned, in
/// the given group, it goes through assignment as a new conversation would. Only while the
/// conversation is with the bot (409 `not_with_bot` otherwise).
#[utoipa::path(post, path = "/api/conversations/{id}/handoff", tag = "ownership", params(("id" = String, Path, description = "Conversation id")),
    request_body = HandOff, security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::Versioned), Errors))]
async fn hand_off(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<HandOff>,
) -> Result<Json<Value>, ApiError> {
    check_reason(Some(&request.reason))?;
    if request.reason.trim().is_empty() {
        return Err(ApiError::Unprocessable {
            code: "invalid_reason",
            message: "a hand-off needs a reason".to_owned(),
        });
    }
    known_group(&state, request.group_id).await?;
    let by = auth.actor.agent_id;
    let command = ConversationCommand::HandOff {
        write: write(auth, request.expected_version, state.clock.now()),
        group: request.group_id,
        reason: request.reason,
    };
    dispatch(&state, &id, by, command).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum StatusName {
    Open,
    Pending,
    Snoozed,
    Resolved,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct StatusChange {
    status: StatusName,
    /// RFC 3339, in the future and within 10 years; required with `snoozed`.
    #[schema(value_type = Option<String>, format = DateTime, max_length = 64)]
    snoozed_until: Option<String>,
    #[schema(max_length = 1000)]
    reason: Option<String>,
    expected_version: Option<u64>,
}

/// The furthest a conversation may be snoozed: 10 years (of 365.25 days).
const MAX_SNOOZE_SECONDS: i64 = 10 * 36_525 * 864;

/// The longest reason given for a change.
const MAX_REASON_CHARS: usize = 1000;

fn invalid_snooze(message: &str) -> ApiError {
    ApiError::Unprocessable {
        code: "invalid_snooze",
        message: message.to_owned(),
    }
}

/// Refuses a reason longer than [`MAX_REASON_CHARS`].
fn check_reason(reason: Option<&String>) -> Result<(), ApiError> {
    if reason.is_some_and(|r| r.chars().count() > MAX_REASON_CHARS) {
        return Err(ApiError::Unprocessable {
            code: "invalid_input",
            message: format!("reason must be at most {MAX_REASON_CHARS} characters"),
        });
    }
    Ok(())
}

impl StatusChange {
    /// The status asked for, its snooze time parsed and bounded at `now` (a time in the past is
    /// the conversation's to refuse).
    fn status(&self, now: Timestamp) -> Result<ConversationStatus, ApiError> {
        check_reason(self.reason.as_ref())?;
        let until = match &self.snoozed_until {
            Some(text) if text.len() <= 64 => chrono::DateTime::parse_from_rfc3339(text)
                .map(|t| Timestamp::new(t.with_timezone(&chrono::Utc)))
                .map_err(|_| invalid_snooze("snoozed_until must be an RFC 3339 time"))
                .map(Some)?,
            Some(_) => return Err(invalid_snooze("snoozed_until must be an RFC 3339 time")),
            None => None,
        };
        if until.is_some_and(|t| t > now.plus_seconds(MAX_SNOOZE_SECONDS)) {
            return Err(invalid_snooze("snoozed_until must be within 10 years"));
        }
        match (&self.status, until) {
            (StatusName::Snoozed, Some(until)) => Ok(ConversationStatus::Snoozed { until }),
            (StatusName::Snoozed, None) => Err(ApiError::Unprocessable {
                code: "invalid_input",
                message: "snoozed needs snoozed_until (RFC 3339)".to_owned(),
            }),
            (_, Some(_)) => Err(ApiError::Unprocessable {
                code: "invalid_input",
                message: "snoozed_until goes only with status snoozed".to_owned(),
            }),
            (StatusName::Open, None) => Ok(ConversationStatus::Open),
            (StatusName::Pending, None) => Ok(ConversationStatus::Pending),
            (StatusName::Resolved, None) => Ok(ConversationStatus::Resolved),
        }
    }
}

/// Sets the status: open, pending (back to the bot), snoozed until a time, resolved.
#[utoipa::path(put, path = "/api/conversations/{id}/status", tag = "ownership", params(("id" = String, Path, description = "Conversation id")), request_body = StatusChange, security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::Versioned), Errors))]
async fn change_status(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<StatusChange>,
) -> Result<Json<Value>, ApiError> {
    let now = state.clock.now();
    let status = request.status(now)?;
    let by = auth.actor.agent_id;
    let command = ConversationCommand::ChangeStatus {
        write: write(auth, request.expected_version, now),
        status,
        reason: request.reason,
    };
    dispatch(&state, &id, by, command).await
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TagRequest {
    tag: String,
    expected_version: Option<u64>,
}

fn parse_tag(text: &str) -> Result<Tag, ApiError> {
    Tag::parse(text).map_err(ApiError::from)
}

/// Adds a tag (needs `can_use_tags`).
#[utoipa::path(post, path = "/api/conversations/{id}/tags", tag = "ownership", params(("id" = String, Path, description = "Conversation id")), request_body = TagRequest, security(("bearer" = [])),
    responses((status = 201, body = crate::http::openapi::answers::Versioned), Errors))]
async fn add_tag(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<TagRequest>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let tag = parse_tag(&request.tag)?;
    let by = auth.actor.agent_id;
    let command = ConversationCommand::AddTag {
        write: write(auth, request.expected_version, state.clock.now()),
        tag,
    };
    Ok((StatusCode::OK, dispatch(&state, &id, by, command).await?))
}

/// Removes a tag.
#[utoipa::path(delete, path = "/api/conversations/{id}/tags/{tag}", tag = "ownership",
    params(("id" = String, Path, description = "Conversation id"), ("tag" = String, Path, description = "The tag")), security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::Versioned), Errors))]
async fn remove_tag(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path((id, tag)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let tag = parse_tag(&tag)?;
    let by = auth.actor.agent_id;
    let command = ConversationCommand::RemoveTag {
        write: write(auth, None, state.clock.now()),
        tag,
    };
    dispatch(&state, &id, by, command).await
}
