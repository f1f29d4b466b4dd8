//! Agents and groups (admin API).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use secrecy::SecretString;
use serde::Deserialize;
use serde_json::{json, Value};
use switchboard_domain::agent::{
    AgentCommand, AgentUpdate, ChatScope, Email, Permissions, PermissionsPatch, Role, WorkingHours,
};
use switchboard_domain::group::{Group, GroupCommand};
use switchboard_domain::{AgentId, GroupId};
use switchboard_projections::agents::{self, AgentView};
use switchboard_projections::groups::{self, GroupView};

use crate::auth::accounts::{self, actor_metadata, NewAgent};
use crate::cqrs::execute;
use crate::http::extract::{AuthAgent, JsonBody, OptionalJson};
use crate::http::openapi::Errors;
use crate::http::openapi::{ChatScopeDoc, RoleDoc, WorkingHoursDoc};
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(directory))
        .routes(routes!(detail, update))
        .routes(routes!(deactivate))
        .routes(routes!(reactivate))
        .routes(routes!(list_groups, create_group))
}

const NOT_A_MANAGER: ApiError = ApiError::Forbidden {
    code: "forbidden",
    message: "managing agents needs the can_manage_agents permission",
};

fn require_manager(auth: &AuthAgent) -> Result<(), ApiError> {
    if auth.actor.permissions.can_manage_agents {
        Ok(())
    } else {
        Err(NOT_A_MANAGER)
    }
}

/// Permissions given in a request: any field left out keeps its current (or role default) value.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct PermissionsInput {
    #[schema(value_type = Option<ChatScopeDoc>)]
    can_read_chats: Option<ChatScope>,
    #[schema(value_type = Option<ChatScopeDoc>)]
    can_write_to_chats: Option<ChatScope>,
    can_use_tags: Option<bool>,
    can_manage_templates: Option<bool>,
    can_view_analytics: Option<bool>,
    can_export_data: Option<bool>,
    can_manage_agents: Option<bool>,
}

impl From<PermissionsInput> for PermissionsPatch {
    fn from(p: PermissionsInput) -> Self {
        Self {
            can_read_chats: p.can_read_chats,
            can_write_to_chats: p.can_write_to_chats,
            can_use_tags: p.can_use_tags,
            can_manage_templates: p.can_manage_templates,
            can_view_analytics: p.can_view_analytics,
            can_export_data: p.can_export_data,
            can_manage_agents: p.can_manage_agents,
        }
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    email: String,
    name: String,
    #[schema(value_type = RoleDoc)]
    role: Role,
    #[schema(value_type = String, min_length = 12)]
    password: SecretString,
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    groups: Vec<GroupId>,
    permissions: Option<PermissionsInput>,
    #[schema(value_type = Option<WorkingHoursDoc>)]
    working_hours: Option<WorkingHours>,
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct UpdateAgent {
    name: Option<String>,
    #[schema(value_type = Option<RoleDoc>)]
    role: Option<Role>,
    #[schema(value_type = Option<Vec<String>>)]
    groups: Option<Vec<GroupId>>,
    permissions: Option<PermissionsInput>,
    /// `null` removes the working hours.
    #[serde(default, deserialize_with = "crate::http::input::present")]
    #[schema(value_type = Option<WorkingHoursDoc>)]
    working_hours: Option<Option<WorkingHours>>,
    #[schema(value_type = Option<String>, min_length = 12)]
    password: Option<SecretString>,
    /// The agent version the caller last saw (409 `agent_changed` if it moved on).
    expected_version: Option<u64>,
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct Reason {
    reason: Option<String>,
}

/// Every group must exist.
async fn check_groups(state: &AppState, groups: &[GroupId]) -> Result<(), ApiError> {
    let ids: Vec<String> = groups.iter().map(ToString::to_string).collect();
    let refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let found = state.log.load_aggregates::<Group>(&refs).await?;
    match ids
        .iter()
        .find(|id| !found.get(*id).is_some_and(|(g, _)| g.exists()))
    {
        Some(missing) => Err(ApiError::Unprocessable {
            code: "unknown_group",
            message: format!("no group {missing}"),
        }),
        None => Ok(()),
    }
}

/// Every agent (needs `can_manage_agents`).
#[utoipa::path(get, path = "/api/agents", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = Vec<AgentView>), Errors))]
async fn list(
    State(state): State<AppState>,
    auth: AuthAgent,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    require_manager(&auth)?;
    Ok(Json(agents::list(&state.database).await?))
}

/// A colleague as every agent may see them: who holds a lock, who is viewing, whom to assign.
#[derive(serde::Serialize, utoipa::ToSchema)]
struct Colleague {
    /// Agent id.
    id: String,
    /// Display name.
    name: String,
    /// Whether the agent may work.
    active: bool,
    /// `online`, `busy` or `offline`.
    #[schema(value_type = switchboard_projections::wire::AvailabilityDoc)]
    availability: String,
}

/// Every agent's id, name and availability, for any signed-in agent (no emails, no rights).
#[utoipa::path(get, path = "/api/agents/directory", operation_id = "listColleagues", tag = "agents", security(("bearer" = [])),
    responses((status = 200, description = "Every agent, by name", body = Vec<Colleague>), Errors))]
async fn directory(
    State(state): State<AppState>,
    _auth: AuthAgent,
) -> Result<Json<Vec<Colleague>>, ApiError> {
    let colleagues = agents::list(&state.database).await?.into_iter();
    Ok(Json(
        colleagues
            .map(|a| Colleague {
                id: a.id,
                name: a.name,
                active: a.active,
                availability: a.availability,
            })
            .collect(),
    ))
}

/// One agent.
#[utoipa::path(get, path = "/api/agents/{id}", tag = "agents", params(("id" = String, Path, description = "Agent id")), security(("bearer" = [])),
    responses((status = 200, body = AgentView), Errors))]
async fn detail(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<AgentView>, ApiError> {
    if auth.actor.agent_id.to_string() != id {
        require_manager(&auth)?;
    }
    agents::get(&state.database, &id)
        .await?
        .map(Json)
        .ok_or(ApiError::NotFound("agent"))
}

/// Registers an agent.
#[utoipa::path(post, path = "/api/agents", tag = "agents", request_body = CreateAgent, security(("bearer" = [])),
    responses((status = 201, body = crate::http::openapi::answers::AgentCreated), Errors))]
async fn create(
    State(state): State<AppState>,
    auth: AuthAgent,
    JsonBody(request): JsonBody<CreateAgent>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_manager(&auth)?;
    let email = Email::parse(&request.email).map_err(|message| ApiError::Unprocessable {
        code: "invalid_email",
        message,
    })?;
    check_groups(&state, &request.groups).await?;
    let permissions = request
        .permissions
        .map(|p| PermissionsPatch::from(p).over(Permissions::for_role(request.role)));
    let new = NewAgent {
        email: email.clone(),
        name: request.name,
        role: request.role,
        groups: request.groups,
        permissions,
        working_hours: request.working_hours,
        password: request.password,
        one_time_password: true,
    };
    let now = state.clock.now();
    let id = accounts::register(
        &state.frameworks,
        &state.database,
        new,
        Some(auth.actor),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "email": email, "role": request.role })),
    ))
}

/// Changes an agent: any field given, merged with the agent as they are (two concurrent changes
/// of different fields both hold). The rules — nobody grants what they do not hold, only admins
/// manage admins, nobody changes their own rights, the last admin stays — are the agent's.
#[utoipa::path(patch, path = "/api/agents/{id}", tag = "agents", params(("id" = String, Path, description = "Agent id")), request_body = UpdateAgent, security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::AgentUpdated), Errors))]
async fn update(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateAgent>,
) -> Result<Json<Value>, ApiError> {
    require_manager(&auth)?;
    let agent_id = AgentId::parse(&id).ok_or(ApiError::NotFound("agent"))?;
    if let Some(groups) = &request.groups {
        check_groups(&state, groups).await?;
    }
    let now = state.clock.now();
    let by = auth.actor.clone();
    let update = AgentUpdate {
        name: request.name,
        role: request.role,
        groups: request.groups,
        permissions: request.permissions.map(Into::into).unwrap_or_default(),
        working_hours: request.working_hours,
    };
    let command = |actor, other_admins| AgentCommand::Update {
        update: update.clone(),
        expected_version: request.expected_version,
        other_admins,
        by: actor,
        at: now,
    };
    let changed = accounts::change_agent(
        &state.log,
        &state.auth.cache,
        &id,
        Some(by.agent_id),
        now,
        command,
    )
    .await?;
    if let Some(password) = request.password {
        accounts::set_password(
            &state.frameworks,
            &state.database,
            agent_id,
            password,
            Some(by),
            now,
        )
        .await?;
        // Whoever held the old password is out; changing one's own keeps this session.
        let keep = (agent_id == auth.actor.agent_id).then_some(auth.session_id.as_str());
        let revoked_at = now.unix_millis();
        crate::auth::sessions::revoke_all_of(
            &state.database,
            &state.auth.cache,
            &id,
            keep,
            revoked_at,
            "password_changed",
        )
        .await?;
    }
    Ok(Json(
        json!({ "id": id, "previous_version": changed.previous_version, "version": changed.version }),
    ))
}

/// Deactivates an agent: their sessions end at once.
#[utoipa::path(post, path = "/api/agents/{id}/deactivate", tag = "agents", params(("id" = String, Path, description = "Agent id")),
    request_body(content = Option<Reason>, description = "Optional"), security(("bearer" = [])),
    responses((status = 204, description = "Deactivated"), Errors))]
async fn deactivate(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    OptionalJson(request): OptionalJson<Reason>,
) -> Result<StatusCode, ApiError> {
    require_manager(&auth)?;
    AgentId::parse(&id).ok_or(ApiError::NotFound("agent"))?;
    let now = state.clock.now();
    let by = auth.actor;
    let command = |actor, other_admins| AgentCommand::Deactivate {
        by: actor,
        reason: request.reason.clone(),
        other_admins,
        at: now,
    };
    accounts::change_agent(
        &state.log,
        &state.auth.cache,
        &id,
        Some(by.agent_id),
        now,
        command,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Reactivates an agent.
#[utoipa::path(post, path = "/api/agents/{id}/reactivate", tag = "agents", params(("id" = String, Path, description = "Agent id")), security(("bearer" = [])),
    responses((status = 204, description = "Reactivated"), Errors))]
async fn reactivate(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_manager(&auth)?;
    AgentId::parse(&id).ok_or(ApiError::NotFound("agent"))?;
    let now = state.clock.now();
    let by = auth.actor;
    let command = |actor, _| AgentCommand::Reactivate { by: actor, at: now };
    accounts::change_agent(
        &state.log,
        &state.auth.cache,
        &id,
        Some(by.agent_id),
        now,
        command,
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[derive(utoipa::ToSchema)]
struct CreateGroup {
    name: String,
}

/// Every group.
#[utoipa::path(get, path = "/api/groups", tag = "agents", security(("bearer" = [])),
    responses((status = 200, body = Vec<GroupView>), Errors))]
async fn list_groups(
    State(state): State<AppState>,
    _auth: AuthAgent,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    Ok(Json(groups::list(&state.database).await?))
}

/// Creates a group (needs `can_manage_agents`).
#[utoipa::path(post, path = "/api/groups", tag = "agents", request_body = CreateGroup, security(("bearer" = [])),
    responses((status = 201, body = crate::http::openapi::answers::GroupCreated), Errors))]
async fn create_group(
    State(state): State<AppState>,
    auth: AuthAgent,
    JsonBody(request): JsonBody<CreateGroup>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    require_manager(&auth)?;
    let id = GroupId::for_name(&request.name);
    let now = state.clock.now();
    let by = Some(auth.actor.agent_id);
    let command = GroupCommand::Create {
        name: request.name.clone(),
        by,
        at: now,
    };
    execute(
        &state.frameworks.groups,
        &id.to_string(),
        command,
        &actor_metadata(by, now),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "name": request.name.trim() })),
    ))
}
