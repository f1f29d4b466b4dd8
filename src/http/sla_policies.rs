//! SLA policies: thresholds for first response, next response and resolution, optional
//! business hours, and which conversations they cover. Managed with `can_manage_agents`; the
//! list is also open to `can_view_analytics` (the SLA report names them).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use switchboard_domain::agent::WorkingHours;
use switchboard_domain::conversation::Tag;
use switchboard_domain::sla::{SlaPolicyCommand, SlaScope, SlaTerms};
use switchboard_domain::{GroupId, PhoneNumberId};
use switchboard_projections::sla::{self, SlaPolicyView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::accounts::actor_metadata;
use crate::http::extract::{AuthAgent, JsonBody};
use crate::http::input::present;
use crate::http::openapi::{Errors, WorkingHoursDoc};
use crate::http::{ApiError, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(change, delete))
}

/// Which conversations a policy covers; every criterion given must hold (none: all).
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Scope {
    /// Conversations assigned to this group.
    #[schema(value_type = Option<String>)]
    group_id: Option<GroupId>,
    /// Conversations carrying this tag.
    tag: Option<String>,
    /// Conversations on this business number.
    #[schema(value_type = Option<String>)]
    phone_number_id: Option<PhoneNumberId>,
}

/// A policy to create: a name and at least one threshold (1 s to 366 days).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewSlaPolicy {
    /// Display name (1–100 characters).
    name: String,
    /// Seconds from the customer's first message to the first agent reply.
    first_response_seconds: Option<u32>,
    /// Seconds from a customer's message (the first since a reply) to the next reply.
    next_response_seconds: Option<u32>,
    /// Seconds from the start (or a reopening) to the resolution.
    resolution_seconds: Option<u32>,
    /// Only time within these hours counts (none: every hour).
    #[schema(value_type = Option<WorkingHoursDoc>)]
    business_hours: Option<WorkingHours>,
    /// Which conversations it covers (most specific policy wins; of equals, the oldest).
    applies_to: Option<Scope>,
}

/// Changes to a policy: the fields given; `null` removes a threshold or the business hours.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct SlaPolicyChange {
    /// New name.
    name: Option<String>,
    /// New first-response threshold in seconds.
    #[serde(default, deserialize_with = "present")]
    first_response_seconds: Option<Option<u32>>,
    /// New next-response threshold in seconds.
    #[serde(default, deserialize_with = "present")]
    next_response_seconds: Option<Option<u32>>,
    /// New resolution threshold in seconds.
    #[serde(default, deserialize_with = "present")]
    resolution_seconds: Option<Option<u32>>,
    /// New business hours.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<WorkingHoursDoc>)]
    business_hours: Option<Option<WorkingHours>>,
    /// New scope (replaces the old one).
    applies_to: Option<Scope>,
}

/// The scope asked for, once its group is known and its tag valid.
async fn scope(state: &AppState, input: Scope) -> Result<SlaScope, ApiError> {
    if let Some(group) = input.group_id {
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
    }
    Ok(SlaScope {
        group: input.group_id,
        tag: input.tag.as_deref().map(Tag::parse).transpose()?,
        phone_number_id: input.phone_number_id,
    })
}

fn may_manage(auth: &AuthAgent) -> Result<(), ApiError> {
    if auth.actor.permissions.can_manage_agents {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        code: "forbidden",
        message: "SLA policies need the can_manage_agents permission",
    })
}

/// Every SLA policy, oldest first. Needs `can_manage_agents` or `can_view_analytics`.
#[utoipa::path(get, path = "/api/sla-policies", tag = "analytics", security(("bearer" = [])),
    responses((status = 200, body = Vec<SlaPolicyView>), Errors))]
async fn list(
    State(state): State<AppState>,
    auth: AuthAgent,
) -> Result<Json<Vec<SlaPolicyView>>, ApiError> {
    if !auth.actor.permissions.can_view_analytics {
        may_manage(&auth)?;
    }
    Ok(Json(sla::policies(&state.database).await?))
}

/// Creates an SLA policy. Needs `can_manage_agents`.
#[utoipa::path(post, path = "/api/sla-policies", tag = "analytics", request_body = NewSlaPolicy,
    security(("bearer" = [])), responses((status = 201, body = SlaPolicyView), Errors))]
async fn create(
    State(state): State<AppState>,
    auth: AuthAgent,
    JsonBody(request): JsonBody<NewSlaPolicy>,
) -> Result<(StatusCode, Json<SlaPolicyView>), ApiError> {
    may_manage(&auth)?;
    let terms = SlaTerms {
        name: request.name.trim().to_owned(),
        first_response_seconds: request.first_response_seconds,
        next_response_seconds: request.next_response_seconds,
        resolution_seconds: request.resolution_seconds,
        business_hours: request.business_hours,
        applies_to: scope(&state, request.applies_to.unwrap_or_default()).await?,
    };
    let id = uuid::Uuid::new_v4().to_string();
    let now = state.clock.now();
    let command = SlaPolicyCommand::Create {
        terms: terms.clone(),
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.sla_policies, &id, command, &metadata).await?;
    let view = SlaPolicyView {
        id,
        terms,
        created_at: now.to_string(),
        updated_at: now.to_string(),
    };
    Ok((StatusCode::CREATED, Json(view)))
}

/// Changes an SLA policy; conversations are measured by the new terms from the next pass.
/// Needs `can_manage_agents`.
#[utoipa::path(patch, path = "/api/sla-policies/{id}", tag = "analytics",
    params(("id" = String, Path, description = "Policy id")), request_body = SlaPolicyChange,
    security(("bearer" = [])), responses((status = 204, description = "Changed"), Errors))]
async fn change(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<SlaPolicyChange>,
) -> Result<StatusCode, ApiError> {
    may_manage(&auth)?;
    let applies_to = match request.applies_to {
        Some(input) => Some(scope(&state, input).await?),
        None => None,
    };
    let now = state.clock.now();
    let command = SlaPolicyCommand::Change {
        name: request.name,
        first_response_seconds: request.first_response_seconds,
        next_response_seconds: request.next_response_seconds,
        resolution_seconds: request.resolution_seconds,
        business_hours: request.business_hours,
        applies_to,
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.sla_policies, &id, command, &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Deletes an SLA policy; outcomes recorded against it stay. Needs `can_manage_agents`.
#[utoipa::path(delete, path = "/api/sla-policies/{id}", tag = "analytics",
    params(("id" = String, Path, description = "Policy id")),
    security(("bearer" = [])), responses((status = 204, description = "Deleted"), Errors))]
async fn delete(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    may_manage(&auth)?;
    let now = state.clock.now();
    let command = SlaPolicyCommand::Delete {
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.sla_policies, &id, command, &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}
