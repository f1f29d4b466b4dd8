//! Agents and groups (admin API).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use secrecy::SecretString;
use serde::{Deserialize, Deserializer};
use serde_json::{json, Value};
use switchboard_domain::agent::{
    Agent, AgentCommand, AgentUpdate, ChatScope, Email, Permissions, Role, WorkingHours,
};
use switchboard_domain::group::{Group, GroupCommand};
use switchboard_domain::{AgentId, GroupId};
use switchboard_projections::agents::{self, AgentView};
use switchboard_projections::groups::{self, GroupView};

use crate::auth::accounts::{self, actor_metadata, NewAgent};
use crate::cqrs::execute;
use crate::http::extract::{AuthAgent, JsonBody, OptionalJson};
use crate::http::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/agents", get(list).post(create))
        .route("/api/agents/{id}", get(detail).patch(update))
        .route("/api/agents/{id}/deactivate", post(deactivate))
        .route("/api/agents/{id}/reactivate", post(reactivate))
        .route("/api/groups", get(list_groups).post(create_group))
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
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PermissionsInput {
    can_read_chats: Option<ChatScope>,
    can_write_to_chats: Option<ChatScope>,
    can_use_tags: Option<bool>,
    can_manage_templates: Option<bool>,
    can_view_analytics: Option<bool>,
    can_export_data: Option<bool>,
    can_manage_agents: Option<bool>,
}

impl PermissionsInput {
    fn over(self, base: Permissions) -> Permissions {
        Permissions {
            can_read_chats: self.can_read_chats.unwrap_or(base.can_read_chats),
            can_write_to_chats: self.can_write_to_chats.unwrap_or(base.can_write_to_chats),
            can_use_tags: self.can_use_tags.unwrap_or(base.can_use_tags),
            can_manage_templates: self
                .can_manage_templates
                .unwrap_or(base.can_manage_templates),
            can_view_analytics: self.can_view_analytics.unwrap_or(base.can_view_analytics),
            can_export_data: self.can_export_data.unwrap_or(base.can_export_data),
            can_manage_agents: self.can_manage_agents.unwrap_or(base.can_manage_agents),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateAgent {
    email: String,
    name: String,
    role: Role,
    password: SecretString,
    #[serde(default)]
    groups: Vec<GroupId>,
    permissions: Option<PermissionsInput>,
    working_hours: Option<WorkingHours>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UpdateAgent {
    name: Option<String>,
    role: Option<Role>,
    groups: Option<Vec<GroupId>>,
    permissions: Option<PermissionsInput>,
    #[serde(default, deserialize_with = "present")]
    working_hours: Option<Option<WorkingHours>>,
    password: Option<SecretString>,
}

/// Distinguishes a field set to `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize, Default)]
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

async fn list(
    State(state): State<AppState>,
    auth: AuthAgent,
) -> Result<Json<Vec<AgentView>>, ApiError> {
    require_manager(&auth)?;
    Ok(Json(agents::list(&state.database).await?))
}

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
        .map(|p| p.over(Permissions::for_role(request.role)));
    let new = NewAgent {
        email: email.clone(),
        name: request.name,
        role: request.role,
        groups: request.groups,
        permissions,
        working_hours: request.working_hours,
        password: request.password,
    };
    let now = state.clock.now();
    let id = accounts::register(
        &state.frameworks,
        &state.database,
        new,
        Some(auth.actor.agent_id),
        now,
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": id, "email": email, "role": request.role })),
    ))
}

async fn update(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<UpdateAgent>,
) -> Result<Json<Value>, ApiError> {
    require_manager(&auth)?;
    let agent_id = AgentId::parse(&id).ok_or(ApiError::NotFound("agent"))?;
    let (current, version) = state.log.load_aggregate::<Agent>(&id).await?;
    let base = current.permissions().ok_or(ApiError::NotFound("agent"))?;
    if let Some(groups) = &request.groups {
        check_groups(&state, groups).await?;
    }
    let now = state.clock.now();
    let by = Some(auth.actor.agent_id);
    let command = AgentCommand::Update {
        update: AgentUpdate {
            name: request.name,
            role: request.role,
            groups: request.groups,
            permissions: request.permissions.map(|p| p.over(base)),
            working_hours: request.working_hours,
        },
        by,
        at: now,
    };
    execute(
        &state.frameworks.agents,
        &id,
        command,
        &actor_metadata(by, now),
    )
    .await?;
    if let Some(password) = request.password {
        accounts::set_password(
            &state.frameworks,
            &state.database,
            agent_id,
            password,
            by,
            now,
        )
        .await?;
    }
    Ok(Json(json!({ "id": id, "previous_version": version })))
}

async fn deactivate(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    OptionalJson(request): OptionalJson<Reason>,
) -> Result<StatusCode, ApiError> {
    require_manager(&auth)?;
    AgentId::parse(&id).ok_or(ApiError::NotFound("agent"))?;
    let now = state.clock.now();
    let by = Some(auth.actor.agent_id);
    let reason = request.reason;
    let command = AgentCommand::Deactivate {
        by,
        reason,
        at: now,
    };
    execute(
        &state.frameworks.agents,
        &id,
        command,
        &actor_metadata(by, now),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn reactivate(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    require_manager(&auth)?;
    AgentId::parse(&id).ok_or(ApiError::NotFound("agent"))?;
    let now = state.clock.now();
    let by = Some(auth.actor.agent_id);
    let command = AgentCommand::Reactivate { by, at: now };
    execute(
        &state.frameworks.agents,
        &id,
        command,
        &actor_metadata(by, now),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateGroup {
    name: String,
}

async fn list_groups(
    State(state): State<AppState>,
    _auth: AuthAgent,
) -> Result<Json<Vec<GroupView>>, ApiError> {
    Ok(Json(groups::list(&state.database).await?))
}

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
