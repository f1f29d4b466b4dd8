//! Extractors whose rejections are [`ApiError`]s, so every error body has the same shape.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::http::ApiError;

/// The raw request body, bounded by the route's body limit.
pub struct RawBody(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for RawBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let limit = request
            .extensions()
            .get::<BodyLimit>()
            .map_or(0, |limit| limit.0);
        Bytes::from_request(request, state)
            .await
            .map(RawBody)
            .map_err(|rejection: BytesRejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::PayloadTooLarge { limit }
                } else {
                    ApiError::BadRequest(rejection.body_text())
                }
            })
    }
}

/// The body limit of a route, recorded so that the 413 message can say it.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// A query string parsed into `T`, or a 400 that says what is wrong.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(value)| Query(value))
            .map_err(|rejection: QueryRejection| ApiError::BadRequest(rejection.body_text()))
    }
}

/// How long a read waits for the read models to reach its `min_position`.
pub const READ_AFTER_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Reads waiting for the read models at once, in this process; beyond, a read does not wait
/// (each waiting read polls the checkpoints: many of them must not load the database).
static READS_WAITING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(64);

/// `min_position`: a log position the caller has seen (a socket event's `position`); the read
/// models are read once they have applied it (waiting at most [`READ_AFTER_WAIT`], then they
/// are read as they stand). Extract it after the caller is authenticated.
pub struct ReadAfter;

/// The query parameter of [`ReadAfter`], for the OpenAPI document.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct ReadAfterParams {
    /// A log position you have seen (a socket event's `position`): the answer includes that
    /// event, waiting up to 2 s for the read models to apply it.
    min_position: Option<i64>,
}

impl FromRequestParts<crate::http::AppState> for ReadAfter {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::http::AppState,
    ) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let Some((_, value)) =
            form_urlencoded::parse(query.as_bytes()).find(|(name, _)| name == "min_position")
        else {
            return Ok(ReadAfter);
        };
        let position: i64 = value.parse().ok().filter(|p| *p >= 0).ok_or_else(|| {
            ApiError::BadRequest("min_position: expected a log position (0 or more)".into())
        })?;
        let Ok(_waiting) = READS_WAITING.try_acquire() else {
            tracing::debug!(position, "too many reads waiting; this one reads at once");
            return Ok(ReadAfter);
        };
        let waited = switchboard_projections::applied::wait_until_applied(
            &state.log,
            &state.stopped_projections,
            position,
            READ_AFTER_WAIT,
        )
        .await;
        match waited {
            Ok(true) => Ok(ReadAfter),
            Ok(false) => {
                tracing::debug!(position, "read models not at min_position in time");
                Ok(ReadAfter)
            }
            Err(switchboard_projections::ProjectionError::Store(
                switchboard_store::StoreError::UnknownPosition(position),
            )) => Err(ApiError::BadRequest(format!(
                "min_position: no event at position {position}"
            ))),
            Err(error) => Err(error.into()),
        }
    }
}

/// Cursor pagination parameters shared by every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
    /// Items per page (clamped by each list).
    pub limit: Option<u32>,
}

/// A JSON body parsed into `T`; malformed JSON is a 400, a body of the wrong shape a 422, each
/// with a message saying what is wrong. A NUL (U+0000) anywhere in it is a 422 naming the field
/// (see [`crate::http::input`]); bodies that carry a customer's message use [`ContentJson`].
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let raw = raw_json(request, state).await?;
        crate::http::input::refuse_nul(raw.get())?;
        parse_json(&raw).map(JsonBody)
    }
}

/// [`JsonBody`] for a message to a customer: its text is theirs to receive as written, NUL
/// included (stored losslessly); identifiers in it are checked by the handler.
pub struct ContentJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ContentJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let raw = raw_json(request, state).await?;
        parse_json(&raw).map(ContentJson)
    }
}

fn json_rejection(rejection: axum::extract::rejection::JsonRejection) -> ApiError {
    use axum::extract::rejection::JsonRejection;
    match rejection {
        JsonRejection::JsonDataError(e) => ApiError::Unprocessable {
            code: "invalid_input",
            message: e.body_text(),
        },
        other => ApiError::BadRequest(other.body_text()),
    }
}

/// The body as syntactically valid JSON, with a JSON content type.
async fn raw_json<S: Send + Sync>(
    request: Request,
    state: &S,
) -> Result<Box<serde_json::value::RawValue>, ApiError> {
    axum::Json::<Box<serde_json::value::RawValue>>::from_request(request, state)
        .await
        .map(|axum::Json(raw)| raw)
        .map_err(json_rejection)
}

/// Reads `value` as `T`, with the same answers as a body of the wrong shape.
///
/// # Errors
/// 422 saying what is wrong.
pub fn from_value<T: DeserializeOwned>(value: &serde_json::Value) -> Result<T, ApiError> {
    let bytes = serde_json::to_vec(value).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    axum::Json::<T>::from_bytes(&bytes)
        .map(|axum::Json(value)| value)
        .map_err(json_rejection)
}

fn parse_json<T: DeserializeOwned>(raw: &serde_json::value::RawValue) -> Result<T, ApiError> {
    axum::Json::<T>::from_bytes(raw.get().as_bytes())
        .map(|axum::Json(value)| value)
        .map_err(json_rejection)
}

/// The authenticated agent of a request: a valid access token of a live session of an active
/// agent, with that agent's rights as they stand now. Session and rights come from the
/// instance's [`AuthCache`](crate::auth::cache::AuthCache): a logout, revocation, deactivation
/// or permission change made on this instance applies to its very next request; one made on
/// another instance within `SWITCHBOARD_AUTH_CACHE_MS` (1 s) of its commit.
pub struct AuthAgent {
    /// Who, with which rights.
    pub actor: switchboard_domain::Actor,
    /// The session family of the token.
    pub session_id: String,
    /// When the token expires.
    pub expires_at: switchboard_domain::Timestamp,
}

impl AuthAgent {
    /// Refuses anyone but an admin.
    ///
    /// # Errors
    /// 403 for other roles.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.actor.role == switchboard_domain::agent::Role::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden {
                code: "forbidden",
                message: "only admins may do this",
            })
        }
    }
}

impl FromRequestParts<crate::http::AppState> for AuthAgent {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &crate::http::AppState,
    ) -> Result<Self, Self::Rejection> {
        Self::from_headers(parts, state).await.inspect_err(|error| {
            if let ApiError::Unauthorized { code, .. } = error {
                metrics::counter!(crate::metrics::AUTH_FAILURES, "reason" => *code).increment(1);
            }
        })
    }
}

impl AuthAgent {
    async fn from_headers(parts: &Parts, state: &crate::http::AppState) -> Result<Self, ApiError> {
        let token = bearer_token(&parts.headers)?;
        match parts
            .extensions
            .get::<crate::edge::limits::VerifiedClaims>()
        {
            Some(verified) => authorize_claims(state, verified.0.clone(), state.clock.now()).await,
            None => authenticate(state, token).await,
        }
    }
}

/// The access token of an `Authorization: Bearer <token>` header (the scheme in any case, as
/// RFC 9110 has it).
///
/// # Errors
/// 401 `missing_token` without the header, `invalid_token` for another scheme or no token.
pub fn bearer_token(headers: &axum::http::HeaderMap) -> Result<&str, ApiError> {
    let header = headers
        .get(axum::http::header::AUTHORIZATION)
        .ok_or(ApiError::Unauthorized {
            code: "missing_token",
            message: "an Authorization: Bearer access token is required",
        })?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.trim().split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or(ApiError::Unauthorized {
            code: "invalid_token",
            message: "the Authorization header must be `Bearer <access token>`",
        })
}

/// Checks an access token and finds its session and agent (in the instance's cache, or in the
/// database: both at once).
///
/// # Errors
/// 401 with the reason when the token, its session or its agent is not valid.
pub async fn authenticate(
    state: &crate::http::AppState,
    token: &str,
) -> Result<AuthAgent, ApiError> {
    use crate::auth::tokens::TokenError;
    let now = state.clock.now();
    if token.starts_with(crate::auth::api_keys::PREFIX) {
        let actor = crate::auth::api_keys::actor(&state.log, token, now)
            .await?
            .ok_or(ApiError::Unauthorized {
                code: "invalid_token",
                message: "the API key is not valid",
            })?;
        crate::auth::api_keys::record_use(&state.database, actor.agent_id, now).await?;
        return Ok(AuthAgent {
            session_id: format!("api-key:{}", actor.agent_id),
            actor,
            expires_at: now.plus_seconds(3600),
        });
    }
    let claims = state
        .auth
        .keys
        .verify(token, now)
        .map_err(|error| match error {
            TokenError::Expired => ApiError::Unauthorized {
                code: "token_expired",
                message: "the access token has expired; refresh it",
            },
            TokenError::Invalid => ApiError::Unauthorized {
                code: "invalid_token",
                message: "the access token is not valid",
            },
        })?;
    authorize_claims(state, claims, now).await
}

/// Finds the session and agent of a verified access token's claims.
async fn authorize_claims(
    state: &crate::http::AppState,
    claims: crate::auth::tokens::Claims,
    now: switchboard_domain::Timestamp,
) -> Result<AuthAgent, ApiError> {
    // Claims verified at the edge moments ago: expiry is checked again against this instant.
    if claims.exp.saturating_mul(1000) <= now.unix_millis() {
        return Err(ApiError::Unauthorized {
            code: "token_expired",
            message: "the access token has expired; refresh it",
        });
    }
    let invalid = ApiError::Unauthorized {
        code: "invalid_token",
        message: "the access token is not valid",
    };
    let agent_id = switchboard_domain::AgentId::parse(&claims.sub).ok_or(invalid)?;
    let cache = &state.auth.cache;
    let (live, agent) = tokio::try_join!(
        cache.session_is_live(&state.database, &claims.sid, now.unix_millis()),
        cache.agent(&state.log, &claims.sub),
    )?;
    if !live {
        return Err(ApiError::Unauthorized {
            code: "session_revoked",
            message: "this session has ended; log in again",
        });
    }
    let actor = agent.actor(agent_id, now).ok_or(ApiError::Unauthorized {
        code: "agent_deactivated",
        message: "this agent is deactivated",
    })?;
    Ok(AuthAgent {
        actor,
        session_id: claims.sid,
        expires_at: switchboard_domain::Timestamp::from_unix_seconds(claims.exp).unwrap_or(now),
    })
}

/// The client's address: the TCP peer, or behind a trusted proxy the address it forwarded for
/// (resolved by the edge, [`crate::edge::client`]).
pub struct ClientIp(pub std::net::IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let ip = match parts.extensions.get::<crate::edge::client::ClientAddress>() {
            Some(client) => client.ip,
            None => parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map_or(
                    std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                    |info| info.0.ip(),
                ),
        };
        Ok(ClientIp(ip))
    }
}

/// An optional JSON body: an empty body is `T::default()`; otherwise as [`JsonBody`] (NUL
/// refused too, but without requiring a content type, so that `curl -X POST` with no body
/// works).
pub struct OptionalJson<T>(pub T);

impl<T: DeserializeOwned + Default, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| ApiError::BadRequest(rejection.body_text()))?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self(T::default()));
        }
        if let Ok(text) = std::str::from_utf8(&body) {
            crate::http::input::refuse_nul(text)?;
        }
        serde_json::from_slice(&body)
            .map(Self)
            .map_err(|e| ApiError::Unprocessable {
                code: "invalid_input",
                message: e.to_string(),
            })
    }
}
