//! Quick replies: saved answers agents insert with a shortcode. An agent uses their own, their
//! groups' and everyone's; shared ones are managed with `can_manage_templates`. A reply sends
//! one with `quick_reply_id` (see `sending`).

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use switchboard_domain::quick_reply::{
    normalize_shortcode, quick_reply_id, QuickReplyCommand, QuickReplyMedia, Visibility,
};
use switchboard_domain::GroupId;
use switchboard_projections::quick_replies::{self, QuickReplyView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::accounts::actor_metadata;
use crate::http::extract::{AuthAgent, JsonBody};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(change, delete))
}

/// Who may use a new quick reply.
#[derive(Deserialize, Clone, Copy, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
enum VisibilityName {
    /// The author only.
    Personal,
    /// A group's members (`group_id`).
    Group,
    /// Every agent.
    Everyone,
}

/// A quick reply to create.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewQuickReply {
    /// `/refund` (the slash may be left out): letters, digits, `-`, `_`; unique per visibility.
    shortcode: String,
    /// Title (1–100 characters).
    title: String,
    /// Text (1–4096 characters) with `{{customer.name}}`, `{{agent.name}}`,
    /// `{{conversation.id}}` or variables a send names.
    text: String,
    /// Who may use it (default `personal`; shared ones need `can_manage_templates`).
    visibility: Option<VisibilityName>,
    /// The group, with `visibility: group`.
    #[schema(value_type = Option<String>)]
    group_id: Option<GroupId>,
    /// Media to send with the text as its caption (≤ 1,024 characters then):
    /// `{kind: image|video|document, id | link, filename?}`.
    #[schema(value_type = Option<Object>)]
    media: Option<QuickReplyMedia>,
}

/// The quick replies the caller may use; `q` matches a shortcode prefix or words of title or
/// text.
#[utoipa::path(get, path = "/api/quick-replies", tag = "quick replies",
    params(("q" = Option<String>, Query, description = "Shortcode prefix or words")),
    security(("bearer" = [])), responses((status = 200, body = Vec<QuickReplyView>), Errors))]
async fn list(
    State(state): State<AppState>,
    auth: AuthAgent,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<QuickReplyView>>, ApiError> {
    let mut q = None;
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        match name.as_ref() {
            "q" if value.chars().count() <= 100 => q = Some(value.into_owned()),
            "q" => return Err(ApiError::BadRequest("q: at most 100 characters".into())),
            other => return Err(ApiError::BadRequest(format!("{other}: unknown parameter"))),
        }
    }
    let me = auth.actor.agent_id.to_string();
    Ok(Json(
        quick_replies::usable(&state.database, &me, q.as_deref()).await?,
    ))
}

/// Creates a quick reply.
#[utoipa::path(post, path = "/api/quick-replies", tag = "quick replies",
    request_body = NewQuickReply, security(("bearer" = [])),
    responses((status = 201, body = QuickReplyView), Errors))]
async fn create(
    State(state): State<AppState>,
    auth: AuthAgent,
    JsonBody(request): JsonBody<NewQuickReply>,
) -> Result<(StatusCode, Json<QuickReplyView>), ApiError> {
    let shortcode = normalize_shortcode(&request.shortcode)?;
    let visibility = match (
        request.visibility.unwrap_or(VisibilityName::Personal),
        request.group_id,
    ) {
        (VisibilityName::Personal, None) => Visibility::Personal {
            agent: auth.actor.agent_id,
        },
        (VisibilityName::Everyone, None) => Visibility::Everyone,
        (VisibilityName::Group, Some(group)) => {
            let (found, _) = state
                .log
                .load_aggregate::<switchboard_domain::group::Group>(&group.to_string())
                .await?;
            if !found.exists() {
                return Err(ApiError::Unprocessable {
                    code: "unknown_group",
                    message: format!("no group {group}"),
                });
            }
            Visibility::Group { group }
        }
        _ => {
            return Err(ApiError::Unprocessable {
                code: "invalid_quick_reply",
                message: "group_id goes with visibility group, and only with it".to_owned(),
            })
        }
    };
    let id = quick_reply_id(&visibility, &shortcode);
    let now = state.clock.now();
    let (kind, agent_id, group_id) = quick_replies::visibility_columns(&visibility);
    let view = QuickReplyView {
        id: id.clone(),
        shortcode: shortcode.clone(),
        title: request.title.trim().to_owned(),
        text: request.text.clone(),
        media: request.media.clone(),
        visibility: kind.to_owned(),
        agent_id,
        group_id,
        created_by: auth.actor.agent_id.to_string(),
        updated_at: now.to_string(),
    };
    let command = QuickReplyCommand::Create {
        shortcode,
        title: request.title,
        text: request.text,
        media: request.media,
        visibility,
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.quick_replies, &id, command, &metadata).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// Changes to a quick reply.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct QuickReplyChange {
    /// New title.
    title: Option<String>,
    /// New text.
    text: Option<String>,
    /// New media; `null` removes it.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<Object>)]
    media: Option<Option<QuickReplyMedia>>,
}

/// Changes a quick reply's title or text (its author's, or a shared one with
/// `can_manage_templates`).
#[utoipa::path(patch, path = "/api/quick-replies/{id}", tag = "quick replies",
    params(("id" = String, Path, description = "Quick reply id")), request_body = QuickReplyChange,
    security(("bearer" = [])), responses((status = 204, description = "Changed"), Errors))]
async fn change(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<QuickReplyChange>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    let command = QuickReplyCommand::Change {
        title: request.title,
        text: request.text,
        media: request.media,
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.quick_replies, &id, command, &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes a quick reply; messages sent with it keep their text.
#[utoipa::path(delete, path = "/api/quick-replies/{id}", tag = "quick replies",
    params(("id" = String, Path, description = "Quick reply id")),
    security(("bearer" = [])), responses((status = 204, description = "Deleted"), Errors))]
async fn delete(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let now = state.clock.now();
    let command = QuickReplyCommand::Delete {
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.quick_replies, &id, command, &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}
