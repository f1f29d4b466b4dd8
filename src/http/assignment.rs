//! Agent availability and the auto-assignment policies.

use axum::extract::{Path, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::agent::{AgentCommand, Availability};
use switchboard_domain::assignment::{AssignmentMode, AssignmentPolicyCommand, DEFAULT_POOL};
use switchboard_domain::group::Group;
use switchboard_domain::{AgentId, GroupId};
use switchboard_projections::assignment::{self, PolicyView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::accounts::actor_metadata;
use crate::http::extract::{AuthAgent, JsonBody};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(set_availability))
        .routes(routes!(list_policies))
        .routes(routes!(set_policy))
}

/// An availability to set.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct AvailabilityRequest {
    /// `online` (takes new conversations), `busy` or `offline`.
    #[schema(value_type = String)]
    availability: Availability,
}

/// An agent's availability after the change.
#[derive(Serialize, utoipa::ToSchema)]
struct AvailabilityAnswer {
    /// The agent.
    agent_id: String,
    /// `online`, `busy` or `offline`.
    availability: String,
    /// The agent's version now.
    version: u64,
}

/// Sets an agent's availability: `me` for oneself; another agent's needs the right to manage
/// them. An agent with no connected socket for the grace period goes `offline` by itself.
#[utoipa::path(put, path = "/api/agents/{id}/availability", tag = "agents",
    params(("id" = String, Path, description = "Agent id, or `me`")),
    request_body = AvailabilityRequest, security(("bearer" = [])),
    responses((status = 200, body = AvailabilityAnswer), Errors))]
async fn set_availability(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<AvailabilityRequest>,
) -> Result<Json<AvailabilityAnswer>, ApiError> {
    let agent = if id == "me" {
        auth.actor.agent_id
    } else {
        AgentId::parse(&id).ok_or(ApiError::NotFound("agent"))?
    };
    let now = state.clock.now();
    let command = AgentCommand::SetAvailability {
        availability: request.availability,
        reason: None,
        expected_version: None,
        by: Some(auth.actor.clone()),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    let id = agent.to_string();
    crate::cqrs::execute(&state.frameworks.agents, &id, command, &metadata).await?;
    let (found, _) = state
        .log
        .load_aggregate::<switchboard_domain::agent::Agent>(&id)
        .await?;
    Ok(Json(AvailabilityAnswer {
        agent_id: id,
        availability: found.availability().name().to_owned(),
        version: found.version(),
    }))
}

/// Every pool's auto-assignment policy (a pool without one is manual).
#[utoipa::path(get, path = "/api/assignment/policies", tag = "agents",
    security(("bearer" = [])), responses((status = 200, body = Vec<PolicyView>), Errors))]
async fn list_policies(
    State(state): State<AppState>,
    _auth: AuthAgent,
) -> Result<Json<Vec<PolicyView>>, ApiError> {
    Ok(Json(assignment::policies(&state.database).await?))
}

/// A policy to set.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PolicyRequest {
    /// `manual`, `round_robin` or `least_busy`.
    #[schema(value_type = String)]
    mode: AssignmentMode,
    /// Open conversations per agent (1–1000).
    capacity: u32,
}

/// Sets the policy of a group's conversations, or of those in no group (`default`). Admins and
/// supervisors.
#[utoipa::path(put, path = "/api/assignment/policies/{pool}", tag = "agents",
    params(("pool" = String, Path, description = "A group id, or `default`")),
    request_body = PolicyRequest, security(("bearer" = [])),
    responses((status = 200, body = PolicyView), Errors))]
async fn set_policy(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(pool): Path<String>,
    JsonBody(request): JsonBody<PolicyRequest>,
) -> Result<Json<PolicyView>, ApiError> {
    // The aggregate id is the group id as the log writes it (whatever the path's spelling).
    let pool = if pool == DEFAULT_POOL {
        pool
    } else {
        let group = GroupId::parse(&pool).ok_or(ApiError::NotFound("group"))?;
        let (found, _) = state
            .log
            .load_aggregate::<Group>(&group.to_string())
            .await?;
        if !found.exists() {
            return Err(ApiError::NotFound("group"));
        }
        group.to_string()
    };
    let now = state.clock.now();
    let command = AssignmentPolicyCommand::Set {
        mode: request.mode,
        capacity: request.capacity,
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.policies, &pool, command, &metadata).await?;
    Ok(Json(PolicyView {
        pool,
        mode: request.mode.name().to_owned(),
        capacity: i64::from(request.capacity),
        updated_at: now.to_string(),
    }))
}
