//! Liveness and readiness.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::http::AppState;

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/health", get(live))
        .route("/api/health/ready", get(ready))
}

/// The process answers.
async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database answers and the schema is current; 503 otherwise.
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.database.migrations_applied().await {
        Ok(true) => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Ok(false) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": "migrations pending" })),
        ),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": "database unreachable" })),
        ),
    }
}
