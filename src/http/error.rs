//! Every error the API answers with: `{"error": {"code": "...", "message": "..."}}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use switchboard_projections::ProjectionError;
use switchboard_store::StoreError;

use crate::telemetry::error_chain;

/// An API failure, named by outcome.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The webhook has no `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256 header")]
    MissingSignature,
    /// The webhook signature matches no configured app secret.
    #[error("X-Hub-Signature-256 does not match the body")]
    InvalidSignature,
    /// No app secret is configured, so no webhook can be verified (Meta will retry later).
    #[error("webhooks are not configured: set WHATSAPP_APP_SECRET")]
    WebhooksNotConfigured,
    /// The verification handshake did not match.
    #[error("webhook verification failed")]
    VerificationFailed,
    /// The body is larger than allowed.
    #[error("request body exceeds {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// A malformed request (query string, body).
    #[error("{0}")]
    BadRequest(String),
    /// A pagination cursor that this server did not hand out.
    #[error("invalid pagination cursor")]
    InvalidCursor,
    /// Nothing at this address.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The route exists, but not with this method (the `Allow` header lists those it has).
    #[error("method not allowed here")]
    MethodNotAllowed,
    /// Authentication failed (no token, bad token, bad credentials, ...).
    #[error("{message}")]
    Unauthorized {
        /// Stable code (`invalid_token`, `token_expired`, `invalid_credentials`, …).
        code: &'static str,
        /// What happened.
        message: &'static str,
    },
    /// Authenticated, but not allowed.
    #[error("{message}")]
    Forbidden {
        /// Stable code.
        code: &'static str,
        /// What is missing.
        message: &'static str,
    },
    /// The caller may not do this; the message says why.
    #[error("{message}")]
    Refused {
        /// Stable code.
        code: &'static str,
        /// Why.
        message: String,
    },
    /// The request took longer than the server allows (a body sent too slowly).
    #[error("the request was not completed within {seconds} s")]
    RequestTimeout {
        /// The limit.
        seconds: u64,
    },
    /// Too many attempts.
    #[error("too many attempts; retry in {retry_after_seconds} s")]
    TooManyRequests {
        /// When to retry.
        retry_after_seconds: u64,
    },
    /// A well-formed request the rules refuse (validation).
    #[error("{message}")]
    Unprocessable {
        /// Stable code.
        code: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The request conflicts with the current state.
    #[error("{message}")]
    Conflict {
        /// Stable code.
        code: &'static str,
        /// What conflicts.
        message: String,
    },
    /// Another agent holds the conversation's lock.
    #[error("conversation is locked by another agent until {until}")]
    Locked {
        /// The holder.
        holder: String,
        /// When the lock lapses.
        until: String,
    },
    /// The conversation changed since the version the agent saw.
    #[error("the conversation changed since version {expected}; it is now at {current}")]
    Changed {
        /// What the agent saw.
        expected: u64,
        /// What it is now.
        current: u64,
    },
    /// Meta refused the request (template management): its code and message, for the agent.
    #[error("Meta refused: {}", user_message.as_deref().or(error.message.as_deref()).unwrap_or("no reason given"))]
    MetaRejected {
        /// Meta's error (boxed: it is large, and rare).
        error: Box<switchboard_domain::MetaError>,
        /// What Meta says to show the user (`error_user_msg`).
        user_message: Option<String>,
    },
    /// A dependency is down; try again.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
    /// This instance is at capacity for this kind of work (password checks); try again soon.
    #[error("{message}; retry in {retry_after_seconds} s")]
    Overloaded {
        /// What is at capacity.
        message: &'static str,
        /// When to retry.
        retry_after_seconds: u64,
    },
    /// A bug or an unexpected failure; details are logged, not returned.
    #[error("internal error")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::MissingSignature | Self::InvalidSignature => StatusCode::UNAUTHORIZED,
            Self::VerificationFailed => StatusCode::FORBIDDEN,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BadRequest(_) | Self::InvalidCursor => StatusCode::BAD_REQUEST,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::WebhooksNotConfigured | Self::Unavailable(_) | Self::Overloaded { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            Self::Forbidden { .. } | Self::Refused { .. } => StatusCode::FORBIDDEN,
            Self::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::RequestTimeout { .. } => StatusCode::REQUEST_TIMEOUT,
            Self::Unprocessable { .. } | Self::MetaRejected { .. } => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            Self::Conflict { .. } | Self::Locked { .. } | Self::Changed { .. } => {
                StatusCode::CONFLICT
            }
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingSignature => "missing_signature",
            Self::InvalidSignature => "invalid_signature",
            Self::WebhooksNotConfigured => "webhooks_not_configured",
            Self::VerificationFailed => "verification_failed",
            Self::PayloadTooLarge { .. } => "payload_too_large",
            Self::BadRequest(_) => "bad_request",
            Self::InvalidCursor => "invalid_cursor",
            Self::NotFound(_) => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Unavailable(_) => "service_unavailable",
            Self::Overloaded { .. } => "overloaded",
            Self::Internal(_) => "internal_error",
            Self::Unauthorized { code, .. }
            | Self::Forbidden { code, .. }
            | Self::Refused { code, .. }
            | Self::Unprocessable { code, .. }
            | Self::Conflict { code, .. } => code,
            Self::TooManyRequests { .. } => "rate_limited",
            Self::RequestTimeout { .. } => "request_timeout",
            Self::Locked { .. } => "conversation_locked",
            Self::Changed { .. } => "conversation_changed",
            Self::MetaRejected { .. } => "meta_rejected",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() && !matches!(self, Self::Overloaded { .. }) {
            tracing::error!(error = %error_chain(&self), code = self.code(), "request failed");
        }
        let mut body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        match &self {
            Self::Locked { holder, until } => {
                body["locked_by"] = json!(holder);
                body["expires_at"] = json!(until);
            }
            Self::Changed { current, .. } => body["current_version"] = json!(current),
            Self::MetaRejected {
                error,
                user_message,
            } => {
                body["error"]["meta"] = json!({
                    "code": error.code,
                    "message": error.message,
                    "title": error.title,
                    "user_message": user_message,
                });
            }
            _ => {}
        }
        let mut response = (status, Json(body)).into_response();
        if let Self::TooManyRequests {
            retry_after_seconds,
        }
        | Self::Overloaded {
            retry_after_seconds,
            ..
        } = self
        {
            response.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from(retry_after_seconds.max(1)),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        if error.is_transient() {
            tracing::warn!(error = %error_chain(&error), "database unavailable");
            return Self::Unavailable("database");
        }
        Self::Internal(Box::new(error))
    }
}

impl From<ProjectionError> for ApiError {
    fn from(error: ProjectionError) -> Self {
        match error {
            ProjectionError::InvalidCursor => Self::InvalidCursor,
            ProjectionError::Store(store) => store.into(),
            ProjectionError::Query(sqlx) => StoreError::from(sqlx).into(),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<crate::auth::passwords::PasswordError> for ApiError {
    fn from(error: crate::auth::passwords::PasswordError) -> Self {
        use crate::auth::passwords::PasswordError as E;
        match error {
            E::TooShort => Self::Unprocessable {
                code: "weak_password",
                message: error.to_string(),
            },
            E::TooLong => Self::Unprocessable {
                code: "invalid_password",
                message: error.to_string(),
            },
            E::Busy => Self::Overloaded {
                message: "too many password checks in progress",
                retry_after_seconds: 1,
            },
            E::Hashing(_) => Self::Internal(Box::new(error)),
        }
    }
}

/// The answer for routes that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}

/// The answer for a method a route does not have (axum adds the `Allow` header).
pub async fn method_not_allowed() -> ApiError {
    ApiError::MethodNotAllowed
}

impl From<switchboard_domain::conversation::ConversationError> for ApiError {
    fn from(error: switchboard_domain::conversation::ConversationError) -> Self {
        use switchboard_domain::conversation::ConversationError as E;
        match error {
            E::NotFound => Self::NotFound("conversation"),
            E::NotPermitted => Self::Forbidden {
                code: "forbidden",
                message: "your permissions do not allow writing to this conversation",
            },
            E::OffDuty => Self::Forbidden {
                code: "outside_working_hours",
                message: "outside your working hours you may read but not write",
            },
            E::LockedByAnotherAgent { holder, until } => Self::Locked {
                holder: holder.to_string(),
                until: until.to_string(),
            },
            E::Changed { expected, current } => Self::Changed { expected, current },
            E::ForceReleaseNotAllowed => Self::Forbidden {
                code: "forbidden",
                message: "forcing a lock open needs the supervisor or admin role and a reason",
            },
            E::ErasureNotAllowed => Self::Forbidden {
                code: "forbidden",
                message: "erasing a customer's data needs the admin role",
            },
            E::TagsNotAllowed => Self::Forbidden {
                code: "forbidden",
                message: "your permissions do not include tags",
            },
            E::NotWithBot => Self::Conflict {
                code: "not_with_bot",
                message: E::NotWithBot.to_string(),
            },
            other => Self::Unprocessable {
                code: other.code(),
                message: other.to_string(),
            },
        }
    }
}

impl From<crate::transaction::ConflictsExhausted> for ApiError {
    fn from(_: crate::transaction::ConflictsExhausted) -> Self {
        cqrs_es::AggregateError::<switchboard_domain::message::MessageError>::AggregateConflict
            .into()
    }
}

impl<E> From<cqrs_es::AggregateError<E>> for ApiError
where
    E: std::error::Error + Into<ApiError>,
{
    fn from(error: cqrs_es::AggregateError<E>) -> Self {
        match error {
            cqrs_es::AggregateError::UserError(e) => e.into(),
            cqrs_es::AggregateError::AggregateConflict => Self::Conflict {
                code: "concurrent_update",
                message: "the record was changed concurrently; retry".to_owned(),
            },
            cqrs_es::AggregateError::DatabaseConnectionError(e) => {
                tracing::warn!(error = %e, "database unavailable");
                Self::Unavailable("database")
            }
            other => Self::Internal(Box::new(std::io::Error::other(other.to_string()))),
        }
    }
}

impl From<switchboard_domain::agent::AgentError> for ApiError {
    fn from(error: switchboard_domain::agent::AgentError) -> Self {
        use switchboard_domain::agent::AgentError as E;
        let (code, message) = (error.code(), error.to_string());
        match error {
            E::NotRegistered => Self::NotFound("agent"),
            E::NotPermitted(_) => Self::Refused { code, message },
            E::AlreadyRegistered | E::AlreadyInState(_) | E::LastAdmin | E::Changed { .. } => {
                Self::Conflict { code, message }
            }
            E::InvalidName
            | E::TooManyGroups { .. }
            | E::OwnRights(_)
            | E::CannotDeactivateSelf
            | E::InconsistentPermissions(_) => Self::Unprocessable { code, message },
        }
    }
}

impl From<switchboard_domain::assignment::AssignmentPolicyError> for ApiError {
    fn from(error: switchboard_domain::assignment::AssignmentPolicyError) -> Self {
        use switchboard_domain::assignment::AssignmentPolicyError as E;
        match error {
            E::NotPermitted => Self::Forbidden {
                code: "forbidden",
                message: "only admins and supervisors set assignment policies",
            },
            E::InvalidCapacity => Self::Unprocessable {
                code: error.code(),
                message: error.to_string(),
            },
        }
    }
}

impl From<switchboard_domain::quick_reply::QuickReplyError> for ApiError {
    fn from(error: switchboard_domain::quick_reply::QuickReplyError) -> Self {
        use switchboard_domain::quick_reply::QuickReplyError as E;
        let (code, message) = (error.code(), error.to_string());
        match error {
            E::NotFound => Self::NotFound("quick reply"),
            E::NotPermitted => Self::Refused { code, message },
            E::ShortcodeTaken => Self::Conflict { code, message },
            E::InvalidShortcode | E::InvalidContent | E::InvalidMedia => {
                Self::Unprocessable { code, message }
            }
        }
    }
}

impl From<switchboard_domain::sla::SlaPolicyError> for ApiError {
    fn from(error: switchboard_domain::sla::SlaPolicyError) -> Self {
        use switchboard_domain::sla::SlaPolicyError as E;
        let message = error.to_string();
        match error {
            E::NotFound => Self::NotFound("SLA policy"),
            E::NotPermitted => Self::Refused {
                code: "forbidden",
                message,
            },
            E::AlreadyExists => Self::Conflict {
                code: "sla_policy_exists",
                message,
            },
            E::Invalid(_) => Self::Unprocessable {
                code: "invalid_sla_policy",
                message,
            },
        }
    }
}

impl From<switchboard_domain::upload::UploadError> for ApiError {
    fn from(error: switchboard_domain::upload::UploadError) -> Self {
        Self::Conflict {
            code: "upload_exists",
            message: error.to_string(),
        }
    }
}

impl From<switchboard_domain::api_key::ApiKeyError> for ApiError {
    fn from(error: switchboard_domain::api_key::ApiKeyError) -> Self {
        use switchboard_domain::api_key::ApiKeyError as E;
        let message = error.to_string();
        match error {
            E::NotFound => Self::NotFound("API key"),
            E::NotPermitted | E::Ungranted(_) => Self::Refused {
                code: "forbidden",
                message,
            },
            E::AlreadyExists => Self::Conflict {
                code: "api_key_exists",
                message,
            },
            E::Invalid(_) => Self::Unprocessable {
                code: "invalid_api_key",
                message,
            },
        }
    }
}

impl From<switchboard_domain::webhook_endpoint::WebhookEndpointError> for ApiError {
    fn from(error: switchboard_domain::webhook_endpoint::WebhookEndpointError) -> Self {
        use switchboard_domain::webhook_endpoint::WebhookEndpointError as E;
        let message = error.to_string();
        match error {
            E::NotFound => Self::NotFound("webhook endpoint"),
            E::NotPermitted => Self::Refused {
                code: "forbidden",
                message,
            },
            E::AlreadyExists => Self::Conflict {
                code: "webhook_endpoint_exists",
                message,
            },
            E::Invalid(_) => Self::Unprocessable {
                code: "invalid_webhook_endpoint",
                message,
            },
        }
    }
}

impl From<switchboard_domain::group::GroupError> for ApiError {
    fn from(error: switchboard_domain::group::GroupError) -> Self {
        use switchboard_domain::group::GroupError as E;
        match error {
            E::AlreadyExists => Self::Conflict {
                code: error.code(),
                message: error.to_string(),
            },
            E::EmptyName | E::InvalidName => Self::Unprocessable {
                code: error.code(),
                message: error.to_string(),
            },
        }
    }
}

impl From<crate::auth::accounts::AccountError> for ApiError {
    fn from(error: crate::auth::accounts::AccountError) -> Self {
        use crate::auth::accounts::AccountError as E;
        match error {
            E::Agent(e) => e.into(),
            E::Password(error) => error.into(),
            E::Store(e) => e.into(),
            other => Self::Internal(Box::new(other)),
        }
    }
}

impl From<switchboard_domain::message::MessageError> for ApiError {
    fn from(error: switchboard_domain::message::MessageError) -> Self {
        if error == switchboard_domain::message::MessageError::NotDeadLettered {
            return Self::NotFound("dead letter");
        }
        Self::Conflict {
            code: error.code(),
            message: error.to_string(),
        }
    }
}
