//! Sessions: log in, refresh, validate, log out.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use switchboard_domain::agent::{Agent, Email, Permissions, Role};
use switchboard_domain::{AgentId, GroupId, Timestamp};

use crate::auth::accounts::{self, password_hash};
use crate::auth::passwords::{self, MAX_PASSWORD_BYTES};
use crate::auth::sessions::{self, Rotation};
use crate::auth::tokens::{new_id, new_refresh_token};
use crate::http::extract::{
    authenticate, bearer_token, AuthAgent, ClientIp, JsonBody, OptionalJson,
};
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
        .routes(routes!(change_password))
}

/// The longest email accepted at login (RFC 5321's path limit).
const MAX_EMAIL_BYTES: usize = 320;
/// The longest refresh token accepted (ours are 43 characters).
const MAX_REFRESH_TOKEN_BYTES: usize = 256;

#[derive(Deserialize, utoipa::ToSchema)]
struct LoginRequest {
    #[schema(max_length = 320)]
    email: String,
    #[schema(value_type = String, max_length = 1024)]
    password: SecretString,
}

impl LoginRequest {
    /// Sizes only: whether the account exists is for the password check to find out.
    fn check(&self) -> Result<(), ApiError> {
        if self.email.len() > MAX_EMAIL_BYTES {
            return Err(ApiError::Unprocessable {
                code: "invalid_email",
                message: format!("email must be at most {MAX_EMAIL_BYTES} bytes"),
            });
        }
        if self.password.expose_secret().len() > MAX_PASSWORD_BYTES {
            return Err(passwords::PasswordError::TooLong.into());
        }
        Ok(())
    }
}

#[derive(Deserialize, utoipa::ToSchema)]
struct RefreshRequest {
    #[schema(max_length = 256)]
    refresh_token: String,
}

/// What logging out may name: the login's refresh token (which works after the access token
/// expired); without it, the bearer access token's login ends.
#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct LogoutRequest {
    #[schema(max_length = 256)]
    refresh_token: Option<String>,
}

/// A password change by its owner.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    #[schema(value_type = String, max_length = 1024)]
    current_password: SecretString,
    #[schema(value_type = String, min_length = 12, max_length = 1024)]
    new_password: SecretString,
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
    /// The password was chosen for them (the first admin's one-time password, or one an admin
    /// set): clients ask them to change it (`PUT /api/auth/password`) before anything else.
    password_change_required: bool,
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
            password_change_required: agent.password_change_required(),
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

const INVALID_REFRESH_TOKEN: ApiError = ApiError::Unauthorized {
    code: "invalid_refresh_token",
    message: "unknown refresh token",
};

/// Holds back an attempt on `account` from `ip` as the login policy says (429 with
/// `Retry-After`; see `auth::rate_limit`).
fn throttle(state: &AppState, ip: std::net::IpAddr, account: &str) -> Result<(), ApiError> {
    let now = state.clock.now().unix_millis();
    state.auth.limiter.check(ip, account, now).map_err(|wait| {
        metrics::counter!(crate::metrics::AUTH_FAILURES, "reason" => "rate_limited").increment(1);
        ApiError::TooManyRequests {
            retry_after_seconds: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    })
}

/// Whether `password` is agent `id`'s (a dummy check when `id` is `None`), recording the
/// outcome for the throttle. 503 with `Retry-After` when every password check is taken.
async fn password_matches(
    state: &AppState,
    ip: std::net::IpAddr,
    account: &str,
    id: Option<AgentId>,
    password: SecretString,
) -> Result<bool, ApiError> {
    let stored = match id {
        Some(id) => password_hash(&state.database, id).await?,
        None => None,
    };
    let matches = state.auth.verifier.verify(password, stored).await?;
    if matches {
        state.auth.limiter.record_success(ip);
    } else {
        let now = state.clock.now().unix_millis();
        state.auth.limiter.record_failure(ip, account, now);
        metrics::counter!(crate::metrics::AUTH_FAILURES, "reason" => "invalid_credentials")
            .increment(1);
    }
    Ok(matches)
}

/// Logs in. Failures take the same time and give the same answer whether or not the email
/// exists; attempts are throttled per client address and per account (never locking the
/// owner out), and password checks are bounded (503 with `Retry-After` beyond).
#[utoipa::path(post, path = "/api/auth/login", operation_id = "logIn", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = TokenPair), Errors))]
async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    JsonBody(request): JsonBody<LoginRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    request.check()?;
    let account = request.email.trim().to_lowercase();
    throttle(&state, ip, &account)?;
    let id = Email::parse(&account).ok().map(|e| AgentId::for_email(&e));
    let matches = password_matches(&state, ip, &account, id, request.password).await?;
    let (Some(id), true) = (id, matches) else {
        return Err(INVALID_CREDENTIALS);
    };
    let agent = state
        .auth
        .cache
        .load_agent(&state.log, &id.to_string())
        .await?;
    if !agent.is_active() {
        return Err(INVALID_CREDENTIALS);
    }
    Ok(Json(start_login(&state, id, &agent).await?))
}

/// A new login (session family) for the agent, and its first token pair.
async fn start_login(state: &AppState, id: AgentId, agent: &Agent) -> Result<TokenPair, ApiError> {
    let family = new_id();
    let refresh_token = new_refresh_token();
    let now = state.clock.now();
    let refresh_ttl = state.auth.settings.refresh_token_ttl.as_secs();
    let refresh_expires = now.plus_seconds(i64::try_from(refresh_ttl).unwrap_or(i64::MAX));
    let (agent_id, millis) = (id.to_string(), now.unix_millis());
    let expires = refresh_expires.unix_millis();
    let start = sessions::start(
        &state.database,
        &family,
        &agent_id,
        &refresh_token,
        millis,
        expires,
    );
    state
        .auth
        .cache
        .session_started(&family, &agent_id, expires, start)
        .await?;
    token_pair(state, id, agent, &family, refresh_token, refresh_expires)
}

/// Changes the caller's own password, given the current one (no other permission needed).
/// Every other login of the agent ends; this one goes on. Wrong current passwords count as
/// failed logins for the throttle.
#[utoipa::path(put, path = "/api/auth/password", tag = "auth", request_body = PasswordChange,
    security(("bearer" = [])), responses((status = 204, description = "Changed"), Errors))]
async fn change_password(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    auth: AuthAgent,
    JsonBody(request): JsonBody<PasswordChange>,
) -> Result<StatusCode, ApiError> {
    passwords::check_new(&request.new_password)?;
    let id = auth.actor.agent_id;
    let (agent, _) = state.log.load_aggregate::<Agent>(&id.to_string()).await?;
    let account = agent.email().map(ToString::to_string).unwrap_or_default();
    throttle(&state, ip, &account)?;
    if request.current_password.expose_secret().len() > MAX_PASSWORD_BYTES
        || !password_matches(&state, ip, &account, Some(id), request.current_password).await?
    {
        return Err(ApiError::Forbidden {
            code: "wrong_password",
            message: "the current password is not right",
        });
    }
    let now = state.clock.now();
    accounts::set_password(
        &state.frameworks,
        &state.database,
        id,
        request.new_password,
        Some(auth.actor.clone()),
        now,
    )
    .await?;
    let (agent_id, session) = (id.to_string(), auth.session_id.as_str());
    sessions::revoke_all_of(
        &state.database,
        &state.auth.cache,
        &agent_id,
        Some(session),
        now.unix_millis(),
        "password_changed",
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
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
#[utoipa::path(post, path = "/api/auth/refresh", operation_id = "refreshSession", tag = "auth", request_body = RefreshRequest,
    responses((status = 200, body = TokenPair), Errors))]
async fn refresh(
    State(state): State<AppState>,
    JsonBody(request): JsonBody<RefreshRequest>,
) -> Result<Json<TokenPair>, ApiError> {
    if request.refresh_token.len() > MAX_REFRESH_TOKEN_BYTES {
        return Err(INVALID_REFRESH_TOKEN);
    }
    let replacement = new_refresh_token();
    let now = state.clock.now();
    let grace = i64::try_from(state.auth.settings.refresh_grace.as_millis()).unwrap_or(0);
    let rotation = sessions::rotate(
        &state.database,
        &state.auth.cache,
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
        Rotation::Invalid => return Err(INVALID_REFRESH_TOKEN),
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
    let id = AgentId::parse(&agent_id).ok_or(INVALID_REFRESH_TOKEN)?;
    let agent = state.auth.cache.load_agent(&state.log, &agent_id).await?;
    if !agent.is_active() {
        sessions::revoke(
            &state.database,
            &state.auth.cache,
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
#[utoipa::path(post, path = "/api/auth/session/validate", operation_id = "validateSession", tag = "auth", security((), ("bearer" = [])),
    responses((status = 200, body = Validation), Errors))]
async fn validate(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Validation>, ApiError> {
    let token = bearer_token(&headers).unwrap_or_default();
    match authenticate(&state, token).await {
        Ok(auth) => {
            let id = auth.actor.agent_id.to_string();
            let agent = state.auth.cache.agent(&state.log, &id).await?;
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

/// Ends the session: the refresh tokens of this login and its access tokens stop working. The
/// login is named by `refresh_token` in the body (which works after the access token expired)
/// or by the bearer access token.
#[utoipa::path(post, path = "/api/auth/logout", operation_id = "logOut", tag = "auth", security((), ("bearer" = [])),
    request_body(content = Option<LogoutRequest>, description = "Optional"),
    responses((status = 204, description = "Logged out"), Errors))]
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    OptionalJson(request): OptionalJson<LogoutRequest>,
) -> Result<StatusCode, ApiError> {
    let family = match request.refresh_token {
        Some(token) if token.len() <= MAX_REFRESH_TOKEN_BYTES => {
            sessions::family_of(&state.database, token.trim())
                .await?
                .ok_or(INVALID_REFRESH_TOKEN)?
        }
        Some(_) => return Err(INVALID_REFRESH_TOKEN),
        None => {
            authenticate(&state, bearer_token(&headers)?)
                .await?
                .session_id
        }
    };
    let now = state.clock.now().unix_millis();
    sessions::revoke(&state.database, &state.auth.cache, &family, now, "logout").await?;
    Ok(StatusCode::NO_CONTENT)
}
