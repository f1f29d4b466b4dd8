//! Sessions: log in, refresh, validate, log out.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use switchboard_domain::agent::{Agent, Email, Permissions, Role};
use switchboard_domain::{AgentId, GroupId, Timestamp};

use crate::auth::accounts::password_hash;
use crate::auth::passwords;
use crate::auth::sessions::{self, Rotation};
use crate::auth::tokens::{new_id, new_refresh_token};
use crate::http::extract::{authenticate, AuthAgent, ClientIp, JsonBody};
use crate::http::openapi::Errors;
use crate::http::openapi::RoleDoc;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(validate))
        .routes(routes!(logout))
}

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginRequest {
    email: String,
    #[schema(value_type = String)]
    password: SecretString,
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RefreshRequest {
    refresh_token: String,
}

/// The agent as their own session sees them.
#[derive(Serialize, utoipa::ToSchema)]
struct AgentSummary {
    id: String,
    email: String,
    name: String,
    #[schema(value_type = Option<RoleDoc>)]
    role: Option<Role>,
    #[schema(value_type = Vec<String>)]
    groups: Vec<GroupId>,
    #[schema(value_type = Option<Object>)]
    permissions: Option<Permissions>,
    on_duty: bool,
}

impl AgentSummary {
    fn of(id: AgentId, agent: &Agent, now: Timestamp) -> Self {
        Self {
            id: id.to_string(),
            email: agent.email().map(ToString::to_string).unwrap_or_default(),
            name: agent.name().unwrap_or_default().to_owned(),
            role: agent.role(),
            groups: agent.groups().to_vec(),
            permissions: agent.permissions(),
            on_duty: agent.actor(id, now).is_some_and(|a| a.on_duty),
        }
    }
}

#[derive(Serialize, utoipa::ToSchema)]
struct TokenPair {
    access_token: String,
    #[schema(value_type = String)]
    token_type: &'static str,
    expires_in: u64,
    expires_at: String,
    refresh_token: String,
    refresh_expires_in: u64,
    agent: AgentSummary,
}

const INVALID_CREDENTIALS: ApiError = ApiError::Unauthorized {
    code: "invalid_credentials",
    message: "wrong email or password",
};

/// Logs in. Failures take the same time and give the same answer whether or not the email
/// exists; attempts are rate limited per client address and per account.
#[utoipa::path(post, path = "/api/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), Errors))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let account = request.email.trim().to_lowercase();
    state.auth.limiter.check(ip, &account).map_err(|wait| {
        metrics::counter!(crate::metrics::AUTH_FAILURES, "reason" => "rate_limited").increment(1);
        ApiError::TooManyRequests {
            retry_after_seconds: wait.as_secs() + 1,
        }
    })?;
    let email = Email::parse(&account).ok();
    let id = email.as_ref().map(AgentId::for_email);
    let stored = match id {
        Some(id) => password_hash(&state.database, id).await?,
        None => None,
    };
    let password_ok = passwords::verify(request.password, stored).await;
    let (Some(id), true) = (id, password_ok) else {
        metrics::counter!(crate::metrics::AUTH_FAILURES, "reason" => "invalid_credentials")
            .increment(1);
        return Err(INVALID_CREDENTIALS);
    };
    let (agent, _) = state.log.load_aggregate::<Agent>(&id.to_string()).await?;
    if !agent.is_active() {
        return Err(INVALID_CREDENTIALS);
    }
    let family = new_id();
    let refresh_token = new_refresh_token();
    let now = state.clock.now();
    let refresh_ttl = state.auth.settings.refresh_token_ttl.as_secs();
    let refresh_expires = now.plus_seconds(i64::try_from(refresh_ttl).unwrap_or(i64::MAX));
    sessions::start(
        &state.database,
        &family,
        &id.to_string(),
        &refresh_token,
        now.unix_millis(),
        refresh_expires.unix_millis(),
    )
    .await?;
    let pair = token_pair(&state, id, &agent, &family, refresh_token, refresh_expires)?;
    Ok(Json(pair))
}

fn token_pair(
    state: &AppState,
    id: AgentId,
    agent: &Agent,
    family: &str,
    refresh_token: String,
    refresh_expires: Timestamp,
) -> Result<TokenPair, ApiError> {
    let now = state.clock.now();
    let ttl = state.auth.settings.access_token_ttl.as_secs();
    let (access_token, expires_at) = state
        .auth
        .keys
        .issue(
            &id.to_string(),
            family,
            now,
            i64::try_from(ttl).unwrap_or(i64::MAX),
        )
        .map_err(|e| ApiError::Internal(Box::new(e)))?;
    let refresh_in = (refresh_expires.unix_millis() - now.unix_millis()).max(0) / 1000;
    Ok(TokenPair {
        access_token,
        token_type: "Bearer",
        expires_in: ttl,
        expires_at: expires_at.to_string(),
        refresh_token,
        refresh_expires_in: u64::try_from(refresh_in).unwrap_or(0),
        agent: AgentSummary::of(id, agent, now),
    })
}

/// Exchanges a refresh token for a new pair. A rotated token presented again revokes the whole
/// login (every token descended from it): someone else may hold a copy.
#[utoipa::path(post, path = "/api/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), Errors))]
async fn refresh(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    let replacement = new_refresh_token();
    let now = state.clock.now();
    let grace = i64::try_from(state.auth.settings.refresh_grace.as_millis()).unwrap_or(0);
    let rotation = sessions::rotate(
        &state.database,
        request.refresh_token.trim(),
        &replacement,
        now.unix_millis(),
        grace,
    )
    .await?;
    let (agent_id, family_id) = match rotation {
        Rotation::Rotated {
            agent_id,
            family_id,
        } => (agent_id, family_id),
        Rotation::Reused => {
            tracing::warn!("refresh token reused: session family revoked");
            return Err(ApiError::Unauthorized {
                code: "refresh_token_reused",
                message:
                    "this refresh token was already used; the session is revoked, log in again",
            });
        }
        Rotation::Invalid => {
            return Err(ApiError::Unauthorized {
                code: "invalid_refresh_token",
                message: "unknown refresh token",
            })
        }
        Rotation::Expired => {
            return Err(ApiError::Unauthorized {
                code: "refresh_token_expired",
                message: "the refresh token has expired; log in again",
            })
        }
        Rotation::Revoked => {
            return Err(ApiError::Unauthorized {
                code: "session_revoked",
                message: "this session has ended; log in again",
            })
        }
    };
    let id = AgentId::parse(&agent_id).ok_or(ApiError::Unauthorized {
        code: "invalid_refresh_token",
        message: "unknown refresh token",
    })?;
    let (agent, _) = state.log.load_aggregate::<Agent>(&agent_id).await?;
    if !agent.is_active() {
        sessions::revoke(
            &state.database,
            &family_id,
            now.unix_millis(),
            "agent_deactivated",
        )
        .await?;
        return Err(ApiError::Unauthorized {
            code: "agent_deactivated",
            message: "this agent is deactivated",
        });
    }
    let expires: Option<i64> = switchboard_store::with_pool!(&state.database, pool => sqlx::query_scalar(
        "select expires_at from session_families where id = $1").bind(&family_id).fetch_optional(pool).await.map_err(switchboard_store::StoreError::from)?);
    let refresh_expires = expires.and_then(Timestamp::from_unix_millis).unwrap_or(now);
    Ok(Json(token_pair(
        &state,
        id,
        &agent,
        &family_id,
        replacement,
        refresh_expires,
    )?))
}

#[derive(Serialize, utoipa::ToSchema)]
struct Validation {
    valid: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<AgentSummary>,
    #[serde(skip_serializing_if = "Option::is_none")]
    expires_at: Option<String>,
}

/// Says whether the bearer token is valid, for whom, and until when.
#[utoipa::path(post, path = "/api/auth/session/validate", tag = "auth", security((), ("bearer" = [])),
    responses((status = 200, body = Validation), Errors))]
async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Validation>, ApiError> {
    let token = headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default()
        .trim();
    match authenticate(&state, token).await {
        Ok(auth) => {
            let (agent, _) = state
                .log
                .load_aggregate::<Agent>(&auth.actor.agent_id.to_string())
                .await?;
            Ok(Json(Validation {
                valid: true,
                reason: None,
                agent: Some(AgentSummary::of(
                    auth.actor.agent_id,
                    &agent,
                    state.clock.now(),
                )),
                expires_at: Some(auth.expires_at.to_string()),
            }))
        }
        Err(ApiError::Unauthorized { code, .. }) => Ok(Json(Validation {
            valid: false,
            reason: Some(code),
            agent: None,
            expires_at: None,
        })),
        Err(other) => Err(other),
    }
}

/// Ends the session: the refresh tokens of this login and its access tokens stop working.
#[utoipa::path(post, path = "/api/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Logged out"), Errors))]
async fn logout(State(state): State<AppState>, auth: AuthAgent) -> Result<StatusCode, ApiError> {
    sessions::revoke(
        &state.database,
        &auth.session_id,
        state.clock.now().unix_millis(),
        "logout",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}
