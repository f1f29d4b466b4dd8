//! Meta's webhook endpoint: the verification handshake and event delivery.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode};
use axum::Extension;
use secrecy::ExposeSecret;

use crate::http::extract::{BodyLimit, Query, RawBody};
use crate::http::openapi::ErrorBody;
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::REQUEST_ID_HEADER;
use crate::metrics::{WEBHOOKS_RECEIVED, WEBHOOKS_REJECTED};
use crate::whatsapp::signature::{self, SignatureError};

pub(super) fn router(max_body_bytes: usize) -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(verify, receive))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(Extension(BodyLimit(max_body_bytes)))
}

/// The subscription handshake: echo `hub.challenge` exactly when the verify token matches.
#[utoipa::path(get, path = "/webhooks/whatsapp", tag = "webhooks",
    params(("hub.mode" = Option<String>, Query, description = "`subscribe`"),
        ("hub.verify_token" = Option<String>, Query, description = "Must equal WHATSAPP_VERIFY_TOKEN"),
        ("hub.challenge" = Option<String>, Query, description = "Echoed back")),
    responses((status = 200, description = "The challenge, echoed", content_type = "text/plain", body = String), Errors))]
async fn verify(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<String, ApiError> {
    let expected = state
        .whatsapp
        .verify_token
        .as_ref()
        .ok_or(ApiError::VerificationFailed)?;
    let mode_ok = params.get("hub.mode").map(String::as_str) == Some("subscribe");
    let token = params
        .get("hub.verify_token")
        .map(String::as_str)
        .unwrap_or_default();
    let token_ok = constant_time_eq(token.as_bytes(), expected.expose_secret().as_bytes());
    match params.get("hub.challenge") {
        Some(challenge) if mode_ok && token_ok => Ok(challenge.clone()),
        _ => Err(ApiError::VerificationFailed),
    }
}

/// Event delivery. Acknowledges only after the raw body is durable; turning it into events is
/// the processor's job, so Meta never waits on aggregates. A validly signed body that does not
/// parse is stored and acknowledged too (else Meta retries it for a week): it shows up as a
/// processing failure instead.
#[tracing::instrument(skip_all)]
#[utoipa::path(post, path = "/webhooks/whatsapp", tag = "webhooks",
    request_body(content = serde_json::Value, description = "Meta's webhook body, signed over its raw bytes"),
    security(("hub_signature" = [])),
    responses((status = 200, description = "Stored durably; processed asynchronously"),
        (status = 413, description = "Over the body limit", body = ErrorBody), Errors))]
async fn receive(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<RawBody, ApiError>,
) -> Result<StatusCode, ApiError> {
    let RawBody(body) = body.inspect_err(|error| {
        if matches!(error, ApiError::PayloadTooLarge { .. }) {
            metrics::counter!(WEBHOOKS_REJECTED, "reason" => "too_large").increment(1);
        }
    })?;
    if state.whatsapp.app_secrets.is_empty() {
        metrics::counter!(WEBHOOKS_REJECTED, "reason" => "not_configured").increment(1);
        return Err(ApiError::WebhooksNotConfigured);
    }
    let header = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    signature::verify(&state.whatsapp.app_secrets, &body, header).map_err(|error| {
        tracing::warn!(reason = ?error, "webhook rejected");
        let (reason, error) = match error {
            SignatureError::Missing => ("missing_signature", ApiError::MissingSignature),
            SignatureError::Mismatch => ("invalid_signature", ApiError::InvalidSignature),
        };
        metrics::counter!(WEBHOOKS_REJECTED, "reason" => reason).increment(1);
        error
    })?;
    let request_id = headers
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    state
        .inbox
        .store(body, request_id, state.clock.now())
        .await
        .map_err(|error| {
            tracing::error!(%error, "webhook not stored");
            ApiError::Unavailable("webhook inbox")
        })?;
    metrics::counter!(WEBHOOKS_RECEIVED).increment(1);
    Ok(StatusCode::OK)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}
