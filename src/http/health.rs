//! Liveness, readiness and detailed health.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

use crate::http::extract::AuthAgent;
use crate::http::metrics::StoredCounts;
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(live))
        .routes(routes!(ready))
        .routes(routes!(detailed))
}

/// How long the database may take to answer a health check.
const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The process answers.
#[utoipa::path(get, path = "/api/health", operation_id = "getLiveness", tag = "health",
    responses((status = 200, body = crate::http::openapi::answers::Health)))]
async fn live() -> Json<Value> {
    Json(json!({ "status": "ok" }))
}

/// The database check: reachable within the timeout and every migration applied.
async fn database_check(state: &AppState) -> (Result<(), &'static str>, Duration) {
    let started = Instant::now();
    let result =
        match tokio::time::timeout(DATABASE_TIMEOUT, state.database.migrations_applied()).await {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err("migrations pending"),
            Ok(Err(_)) | Err(_) => Err("database unreachable"),
        };
    (result, started.elapsed())
}

/// Ready to serve: database reachable, migrations applied, workers running, no read model
/// stopped by an event it cannot apply; 503 otherwise.
#[utoipa::path(get, path = "/api/health/ready", operation_id = "getReadiness", tag = "health",
    responses((status = 200, description = "Ready", body = crate::http::openapi::answers::Health), (status = 503, description = "Not ready, with the reason", body = crate::http::openapi::answers::Health)))]
async fn ready(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    let (database, _) = database_check(&state).await;
    let reason = match database {
        Err(reason) => Some(reason),
        Ok(()) if !state.workers.all_running() => Some("a worker is not running"),
        Ok(()) if !state.stopped_projections.list().is_empty() => {
            Some("a projection is stopped at an event it cannot apply")
        }
        Ok(()) => None,
    };
    match reason {
        None => (StatusCode::OK, Json(json!({ "status": "ready" }))),
        Some(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({ "status": "not_ready", "reason": reason })),
        ),
    }
}

/// The sender's state: whether it sends, its backlog, and when Meta last answered.
fn sender(state: &AppState, counts: Option<&StoredCounts>) -> Value {
    let stamp = |ms: i64| {
        (ms > 0)
            .then(|| switchboard_domain::Timestamp::from_unix_millis(ms))
            .flatten()
            .map(|t| t.to_string())
    };
    let (answered, unreachable) = state
        .graph
        .as_ref()
        .map_or((0, 0), |graph| graph.contact().last());
    // Wall time, like the Graph client's record (a test clock does not move the network).
    let now = crate::clock::wall_millis();
    json!({
        "sending": state.graph.is_some(),
        "queued": counts.map(|c| c.sends_queued),
        "dead_lettered": counts.map(|c| c.sends_dead_lettered),
        "graph_last_answered_at": stamp(answered),
        "graph_last_unreachable_at": stamp(unreachable),
        "graph_answered_recently": answered > 0 && now - answered < GRAPH_RECENT_MS,
    })
}

/// "Recently", for the Graph API's last answer: five minutes.
const GRAPH_RECENT_MS: i64 = 5 * 60_000;

/// The current master key's id, and how many data keys still need an earlier one (0: earlier
/// master keys can be dropped from the configuration).
async fn master_key(state: &AppState) -> Value {
    let master = state.log.vault().master();
    let left = switchboard_store::vault::wrapped_by_others(&state.database, master).await;
    json!({ "current_id": master.current_id(), "keys_on_previous_master_keys": left.ok() })
}

/// Every component with its status and latency, the backlogs, the version and uptime (admins).
#[utoipa::path(get, path = "/api/health/detailed", operation_id = "getHealthDetails", tag = "health", security(("bearer" = [])),
    responses((status = 200, description = "Healthy", body = serde_json::Value), Errors))]
async fn detailed(
    State(state): State<AppState>,
    auth: AuthAgent,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_admin()?;
    let (database, latency) = database_check(&state).await;
    let counts = match database {
        Ok(()) => StoredCounts::read(&state.database).await.ok(),
        Err(_) => None,
    };
    let workers = state.workers.states();
    let stopped = state.stopped_projections.list();
    let healthy = database.is_ok() && workers.iter().all(|w| w.running) && stopped.is_empty();
    let body = json!({
        "status": if healthy { "ok" } else { "degraded" },
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_seconds": state.started.elapsed().as_secs(),
        "components": {
            "database": {
                "status": if database.is_ok() { "ok" } else { "down" },
                "error": database.err(),
                "latency_ms": latency.as_secs_f64() * 1000.0,
                "backend": format!("{:?}", state.database.backend()).to_lowercase(),
            },
            "workers": workers,
        },
        "webhooks": {
            "awaiting_processing": counts.map(|c| c.awaiting),
            "dead_lettered": counts.map(|c| c.dead_lettered),
        },
        "projections": {
            "lag_events": counts.map(|c| c.projection_lag),
            "stopped": stopped,
        },
        "conversations": { "active": counts.map(|c| c.active_conversations) },
        "sockets": {
            "connected": state.sockets_connected.load(std::sync::atomic::Ordering::Relaxed),
        },
        "sender": sender(&state, counts.as_ref()),
        "stream": state.stream.health(),
        "master_key": master_key(&state).await,
    });
    let status = if healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    Ok((status, Json(body)))
}
