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
    /// A dependency is down; try again.
    #[error("service unavailable: {0}")]
    Unavailable(&'static str),
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
            Self::WebhooksNotConfigured | Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
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
            Self::Unavailable(_) => "service_unavailable",
            Self::Internal(_) => "internal_error",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %error_chain(&self), code = self.code(), "request failed");
        }
        let body = json!({ "error": { "code": self.code(), "message": self.to_string() } });
        (status, Json(body)).into_response()
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

/// The answer for routes that do not exist.
pub async fn not_found() -> ApiError {
    ApiError::NotFound("route")
}
