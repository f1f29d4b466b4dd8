//! The template catalogue: listing and reading it (every agent), syncing it from Meta and
//! submitting, editing and deleting templates (`can_manage_templates`), and sending one with
//! its parameters checked before anything is queued.
//!
//! Management calls Meta first and records what Meta accepted, with who did it; Meta's
//! validation errors come back as 422 `meta_rejected` with Meta's code and message. The
//! permission is checked before the call (nothing reaches Meta for an agent without it) and
//! again by the Template aggregate with the append.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use serde_json::Value;
use switchboard_domain::ids::WabaId;
use switchboard_domain::message::OutboundContent;
use switchboard_domain::template::{
    ParameterFormat, Template, TemplateCommand, TemplateDefinition,
};
use switchboard_projections::templates::{self, TemplateFilter, TemplateView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::accounts::actor_metadata;
use crate::http::extract::{AuthAgent, JsonBody};
use crate::http::openapi::Errors;
use crate::http::sending::{queue, Accepted, Priority, SendRequest};
use crate::http::{ApiError, AppState};
use crate::whatsapp::graph::{GraphClient, GraphError};
use crate::workers::template_sync::{self, SyncReport};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(detail, edit, delete))
        .routes(routes!(sync))
        .routes(routes!(send))
}

const NOT_A_MANAGER: ApiError = ApiError::Forbidden {
    code: "forbidden",
    message: "managing templates needs the can_manage_templates permission",
};

fn manager(auth: &AuthAgent) -> Result<(), ApiError> {
    if auth.actor.permissions.can_manage_templates {
        Ok(())
    } else {
        Err(NOT_A_MANAGER)
    }
}

/// 409 `not_configured`: this server is not set up to talk to Meta about templates (a state
/// of the server the request conflicts with, not an outage).
fn not_configured(what: &str) -> ApiError {
    ApiError::Conflict {
        code: "not_configured",
        message: format!("template management needs {what}"),
    }
}

fn graph(state: &AppState) -> Result<&GraphClient, ApiError> {
    state
        .graph
        .as_ref()
        .ok_or_else(|| not_configured("the Graph API (set WHATSAPP_ACCESS_TOKEN)"))
}

/// The business accounts to sync, or the one a new template goes to.
fn accounts(state: &AppState) -> Result<&[String], ApiError> {
    let accounts = state.whatsapp.business_accounts.as_slice();
    if accounts.is_empty() {
        return Err(not_configured(
            "a business account (set WHATSAPP_BUSINESS_ACCOUNT_ID)",
        ));
    }
    Ok(accounts)
}

impl From<GraphError> for ApiError {
    fn from(error: GraphError) -> Self {
        match error {
            GraphError::Refused {
                status,
                error,
                user_message,
            } if status < 500 && error.code != 190 => Self::MetaRejected {
                error: Box::new(error),
                user_message,
            },
            other => {
                tracing::warn!(error = %other, "Graph API call failed");
                Self::Unavailable("the Graph API")
            }
        }
    }
}

impl From<switchboard_domain::template::TemplateError> for ApiError {
    fn from(error: switchboard_domain::template::TemplateError) -> Self {
        use switchboard_domain::template::TemplateError as E;
        let (code, message) = (error.code(), error.to_string());
        match error {
            E::NotPermitted => NOT_A_MANAGER,
            E::NotFound => Self::NotFound("template"),
            E::AlreadyExists => Self::Conflict { code, message },
            E::NotEditable(_) => Self::Unprocessable { code, message },
        }
    }
}

/// The catalogue, by name and language: `status`, `language`, `category` filter exactly, `q`
/// matches part of the name.
#[utoipa::path(get, path = "/api/templates", tag = "templates",
    params(("status" = Option<String>, Query, description = "APPROVED, PENDING, REJECTED, …"),
        ("language" = Option<String>, Query, description = "Language code (en_US, es, …)"),
        ("category" = Option<String>, Query, description = "MARKETING, UTILITY, AUTHENTICATION"),
        ("q" = Option<String>, Query, description = "Part of the name")),
    security(("bearer" = [])), responses((status = 200, body = Vec<TemplateView>), Errors))]
async fn list(
    State(state): State<AppState>,
    _auth: AuthAgent,
    RawQuery(query): RawQuery,
) -> Result<Json<Vec<TemplateView>>, ApiError> {
    let mut filter = TemplateFilter::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if value.chars().count() > 512 {
            return Err(ApiError::BadRequest(format!(
                "{name}: at most 512 characters"
            )));
        }
        let value = Some(value.into_owned());
        match name.as_ref() {
            "status" => filter.status = value,
            "language" => filter.language = value,
            "category" => filter.category = value,
            "q" => filter.q = value,
            other => return Err(ApiError::BadRequest(format!("{other}: unknown parameter"))),
        }
    }
    Ok(Json(templates::list(&state.database, &filter).await?))
}

/// One template, with its components and variables.
#[utoipa::path(get, path = "/api/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "Meta's template id")),
    security(("bearer" = [])), responses((status = 200, body = TemplateView), Errors))]
async fn detail(
    State(state): State<AppState>,
    _auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<Json<TemplateView>, ApiError> {
    Ok(Json(
        templates::get(&state.database, &id)
            .await?
            .ok_or(ApiError::NotFound("template"))?,
    ))
}

/// Reads every configured business account's catalogue from Meta, page by page, and records
/// what changed (`can_manage_templates`).
#[utoipa::path(post, path = "/api/templates/sync", operation_id = "syncTemplates", tag = "templates",
    security(("bearer" = [])), responses((status = 200, body = SyncReport), Errors))]
async fn sync(
    State(state): State<AppState>,
    auth: AuthAgent,
) -> Result<Json<SyncReport>, ApiError> {
    manager(&auth)?;
    let graph = graph(&state)?;
    let accounts = accounts(&state)?;
    let report = template_sync::sync(
        graph,
        &state.frameworks,
        &state.log,
        &state.database,
        &state.clock,
        accounts,
    )
    .await
    .map_err(|error| match error {
        template_sync::SyncError::Graph(graph) => graph.into(),
        other => ApiError::Internal(Box::new(other)),
    })?;
    Ok(Json(report))
}

/// A template to submit to Meta.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct NewTemplate {
    /// Lower-case letters, digits and underscores.
    name: String,
    /// Language code (`en_US`, `es`, …).
    language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    category: String,
    /// Meta's components (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`) with their examples.
    #[schema(value_type = Vec<Object>)]
    components: Vec<Value>,
    /// `POSITIONAL` (default) or `NAMED`.
    parameter_format: Option<String>,
    /// The business account (default: the first configured).
    waba_id: Option<String>,
}

/// The most components, and bytes of components, a submission carries.
const MAX_COMPONENTS: usize = 20;
const MAX_COMPONENT_BYTES: usize = 64 * 1024;

fn bounded(components: &[Value]) -> Result<(), ApiError> {
    let bytes = serde_json::to_vec(components).map_or(usize::MAX, |b| b.len());
    if components.len() > MAX_COMPONENTS || bytes > MAX_COMPONENT_BYTES {
        return Err(ApiError::Unprocessable {
            code: "invalid_template",
            message: format!(
                "components: at most {MAX_COMPONENTS}, {MAX_COMPONENT_BYTES} bytes in all"
            ),
        });
    }
    Ok(())
}

/// Submits a template to Meta for review (`can_manage_templates`); 201 with the catalogue
/// entry, `PENDING` until Meta's status webhook arrives.
#[utoipa::path(post, path = "/api/templates", tag = "templates", request_body = NewTemplate,
    security(("bearer" = [])), responses((status = 201, body = TemplateView), Errors))]
async fn create(
    State(state): State<AppState>,
    auth: AuthAgent,
    JsonBody(request): JsonBody<NewTemplate>,
) -> Result<(StatusCode, Json<TemplateView>), ApiError> {
    manager(&auth)?;
    bounded(&request.components)?;
    let sizes = [
        ("name", &request.name, 512),
        ("language", &request.language, 15),
        ("category", &request.category, 32),
    ];
    if let Some((field, _, max)) = sizes.iter().find(|(_, v, max)| v.len() > *max) {
        return Err(ApiError::Unprocessable {
            code: "invalid_template",
            message: format!("{field}: at most {max} bytes"),
        });
    }
    let graph = graph(&state)?;
    let accounts = accounts(&state)?;
    let waba_id = match request.waba_id {
        Some(waba_id) if accounts.contains(&waba_id) => waba_id,
        Some(waba_id) => {
            return Err(ApiError::Unprocessable {
                code: "unknown_business_account",
                message: format!("{waba_id} is not a configured business account"),
            })
        }
        None => accounts[0].clone(),
    };
    let mut definition = TemplateDefinition {
        waba_id: WabaId::new(waba_id),
        name: request.name,
        language: request.language,
        category: request.category.to_ascii_uppercase(),
        status: "PENDING".to_owned(),
        reason: None,
        quality: None,
        parameter_format: ParameterFormat::from_meta(request.parameter_format.as_deref()),
        components: request.components,
    };
    let (id, status) = crate::whatsapp::templates::create(graph, &definition).await?;
    definition.status = status;
    let now = state.clock.now();
    let by = auth.actor.agent_id.to_string();
    let view = TemplateView::of(&id, &definition, Some(&by), Some(&by), now);
    let command = TemplateCommand::Submit {
        definition,
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.templates, &id, command, &metadata).await?;
    Ok((StatusCode::CREATED, Json(view)))
}

/// The template as its aggregate holds it (404 when there is none).
async fn current(state: &AppState, id: &str) -> Result<TemplateDefinition, ApiError> {
    // Meta's ids are numbers; anything else would only end up in a Graph URL.
    if id.is_empty() || id.len() > 32 || !id.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::NotFound("template"));
    }
    let (template, _) = state.log.load_aggregate::<Template>(id).await?;
    template
        .definition()
        .cloned()
        .ok_or(ApiError::NotFound("template"))
}

/// An edit: new components, a new category, or both.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TemplateEdit {
    /// New components.
    #[schema(value_type = Option<Vec<Object>>)]
    components: Option<Vec<Value>>,
    /// New category.
    category: Option<String>,
}

/// Edits a template at Meta where Meta allows it (approved, rejected or paused ones;
/// `can_manage_templates`); it goes back to `PENDING` for review.
#[utoipa::path(put, path = "/api/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "Meta's template id")), request_body = TemplateEdit,
    security(("bearer" = [])), responses((status = 200, body = TemplateView), Errors))]
async fn edit(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<TemplateEdit>,
) -> Result<Json<TemplateView>, ApiError> {
    manager(&auth)?;
    if let Some(components) = &request.components {
        bounded(components)?;
    }
    if request.category.as_ref().is_some_and(|c| c.len() > 32) {
        return Err(ApiError::Unprocessable {
            code: "invalid_template",
            message: "category: at most 32 bytes".to_owned(),
        });
    }
    let category = request.category.map(|c| c.to_ascii_uppercase());
    // Checked before calling Meta (which refuses too); the aggregate decides again.
    let before = current(&state, &id).await?;
    if !before.is_editable() {
        let status = before.status.to_ascii_uppercase();
        return Err(switchboard_domain::template::TemplateError::NotEditable(status).into());
    }
    let components = request.components.as_deref();
    crate::whatsapp::templates::edit(graph(&state)?, &id, components, category.as_deref()).await?;
    let now = state.clock.now();
    let command = TemplateCommand::Edit {
        components: request.components,
        category,
        by: auth.actor.clone(),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.templates, &id, command, &metadata).await?;
    let definition = current(&state, &id).await?;
    let by = auth.actor.agent_id.to_string();
    Ok(Json(TemplateView::of(
        &id,
        &definition,
        None,
        Some(&by),
        now,
    )))
}

/// Deletes this translation of a template at Meta (`can_manage_templates`).
#[utoipa::path(delete, path = "/api/templates/{id}", tag = "templates",
    params(("id" = String, Path, description = "Meta's template id")),
    security(("bearer" = [])), responses((status = 204, description = "Deleted"), Errors))]
async fn delete(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    manager(&auth)?;
    let definition = current(&state, &id).await?;
    let waba_id = definition.waba_id.to_string();
    crate::whatsapp::templates::delete(graph(&state)?, &waba_id, &definition.name, &id).await?;
    let now = state.clock.now();
    let command = TemplateCommand::Delete {
        by: Some(auth.actor.clone()),
        at: now,
    };
    let metadata = actor_metadata(Some(auth.actor.agent_id), now);
    crate::cqrs::execute(&state.frameworks.templates, &id, command, &metadata).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A template send.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TemplateSend {
    /// The client's idempotency key.
    client_id: String,
    /// The conversation (or `to`).
    conversation_id: Option<String>,
    /// The customer's WhatsApp number, for the most recent conversation with them.
    to: Option<String>,
    /// Values by variable: `"1"`, `"2"` or names for the body, `"header.1"` for a text
    /// header, `"header"` for a media header (a link or `{id | link}`), `"button.<index>"`
    /// for a button's URL suffix, coupon code or payload.
    #[schema(value_type = Option<Object>)]
    parameters: Option<serde_json::Map<String, Value>>,
    /// Meta's `components` instead of `parameters`.
    #[schema(value_type = Option<Vec<Object>>)]
    components: Option<Vec<Value>>,
    priority: Option<Priority>,
}

/// Sends an approved template to a conversation, its parameters checked first; allowed
/// outside the customer-service window.
#[utoipa::path(post, path = "/api/templates/{id}/send", tag = "templates",
    params(("id" = String, Path, description = "Meta's template id")), request_body = TemplateSend,
    security(("bearer" = [])), responses((status = 202, body = Accepted), Errors))]
async fn send(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
    JsonBody(request): JsonBody<TemplateSend>,
) -> Result<(StatusCode, Json<Accepted>), ApiError> {
    let template = templates::get(&state.database, &id)
        .await?
        .ok_or(ApiError::NotFound("template"))?;
    let definition = template
        .definition()
        .ok_or(ApiError::NotFound("template"))?;
    let oversized = request
        .parameters
        .as_ref()
        .is_some_and(|p| p.len() > 100 || p.keys().any(|k| k.len() > 64));
    if oversized {
        return Err(ApiError::Unprocessable {
            code: "invalid_message",
            message: "parameters: at most 100, named in at most 64 bytes".to_owned(),
        });
    }
    let components = match (request.components, request.parameters) {
        (Some(components), None) => components,
        (None, parameters) => definition
            .send_components(&parameters.unwrap_or_default())
            .map_err(crate::http::template_check::invalid_parameters)?,
        (Some(_), Some(_)) => {
            return Err(ApiError::Unprocessable {
                code: "invalid_message",
                message: "give parameters or components, not both".to_owned(),
            })
        }
    };
    let conversation_id = match (request.conversation_id, request.to) {
        (Some(id), None) => id,
        (None, Some(to)) => crate::http::conversations::latest_with(&state, &auth, &to).await?,
        _ => {
            return Err(ApiError::Unprocessable {
                code: "invalid_message",
                message: "give conversation_id or to, one of them".to_owned(),
            })
        }
    };
    let request = SendRequest {
        client_id: request.client_id,
        content: OutboundContent::Template {
            name: definition.name,
            language: definition.language,
            components,
            rendered: None,
        },
        reply_to: None,
        priority: request.priority.unwrap_or_default(),
        expected_version: None,
    };
    queue(&state, &auth, &conversation_id, request, None).await
}
