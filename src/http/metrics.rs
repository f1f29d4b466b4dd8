//! Prometheus scrape endpoints.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use switchboard_store::{with_pool, Database, StoreError};

use crate::http::extract::AuthAgent;
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::metrics::{
    ACTIVE_CONVERSATIONS, PROJECTION_LAG, WEBHOOKS_AWAITING, WEBHOOKS_DEAD_LETTERED,
};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(open_scrape))
        .routes(routes!(api_scrape))
}

/// For Prometheus on the internal network (no token: keep `/metrics` off the public side).
#[utoipa::path(get, path = "/metrics", operation_id = "getMetrics", tag = "health",
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String), Errors))]
async fn open_scrape(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    render(&state).await
}

/// The same, for agents allowed to see analytics.
#[utoipa::path(get, path = "/api/metrics/prometheus", operation_id = "getPrometheusMetrics", tag = "health", security(("bearer" = [])),
    responses((status = 200, description = "Prometheus text format", content_type = "text/plain", body = String), Errors))]
async fn api_scrape(
    State(state): State<AppState>,
    auth: AuthAgent,
) -> Result<impl IntoResponse, ApiError> {
    if !auth.actor.permissions.can_view_analytics {
        return Err(ApiError::Forbidden {
            code: "forbidden",
            message: "metrics need the can_view_analytics permission",
        });
    }
    render(&state).await
}

async fn render(state: &AppState) -> Result<impl IntoResponse, ApiError> {
    let counts = StoredCounts::read(&state.database).await?;
    metrics::gauge!(WEBHOOKS_AWAITING).set(counts.awaiting as f64);
    metrics::gauge!(WEBHOOKS_DEAD_LETTERED).set(counts.dead_lettered as f64);
    metrics::gauge!(ACTIVE_CONVERSATIONS).set(counts.active_conversations as f64);
    metrics::gauge!(PROJECTION_LAG).set(counts.projection_lag as f64);
    metrics::gauge!(crate::metrics::SENDS_QUEUED).set(counts.sends_queued as f64);
    for (projection, behind) in behind_by_projection(&state.database).await? {
        // Every read model has both series, so alerts and dashboards see 0, not nothing.
        let stopped_at = state.stopped_projections.position(&projection).unwrap_or(0);
        metrics::gauge!(crate::metrics::PROJECTION_STOPPED, "projection" => projection.clone())
            .set(stopped_at as f64);
        metrics::gauge!(crate::metrics::PROJECTION_BEHIND, "projection" => projection)
            .set(behind as f64);
    }
    metrics::gauge!(crate::metrics::SENDS_DEAD_LETTERED).set(counts.sends_dead_lettered as f64);
    for (target, outcome, count) in sla_outcomes(&state.database).await? {
        metrics::gauge!(crate::metrics::SLA_OUTCOMES, "target" => target, "outcome" => outcome)
            .set(count as f64);
    }
    Ok((
        [(CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(),
    ))
}

/// How many log positions each read model's checkpoint is behind the newest event.
async fn behind_by_projection(database: &Database) -> Result<Vec<(String, i64)>, StoreError> {
    const BEHIND: &str =
        "select c.name, greatest_position - c.position from projection_checkpoints c,
        (select coalesce(max(position), 0) as greatest_position from events) e";
    Ok(with_pool!(database, pool => sqlx::query_as(BEHIND).fetch_all(pool).await?))
}

/// SLA outcomes recorded, per target and outcome; every pair present (0 when none).
async fn sla_outcomes(database: &Database) -> Result<Vec<(String, String, i64)>, StoreError> {
    const OUTCOMES: &str =
        "select target, outcome, count(*) from sla_outcomes group by target, outcome";
    let found: Vec<(String, String, i64)> =
        with_pool!(database, pool => sqlx::query_as(OUTCOMES).fetch_all(pool).await?);
    let mut all = Vec::new();
    for target in switchboard_domain::sla::SlaTarget::ALL {
        for outcome in ["met", "breached"] {
            let count = found
                .iter()
                .find(|(t, o, _)| t == target.as_str() && o == outcome)
                .map_or(0, |(_, _, n)| *n);
            all.push((target.as_str().to_owned(), outcome.to_owned(), count));
        }
    }
    Ok(all)
}

/// Counts of stored things, for gauges and the detailed health.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct StoredCounts {
    /// Webhooks stored, not yet processed.
    pub awaiting: i64,
    /// Webhooks dead-lettered.
    pub dead_lettered: i64,
    /// Conversations not resolved.
    pub active_conversations: i64,
    /// Events not yet applied to the read models.
    pub projection_lag: i64,
    /// Outbound messages queued, not yet sent (worker state: `outbound_queue`).
    pub sends_queued: i64,
    /// Outbound messages dead-lettered.
    pub sends_dead_lettered: i64,
}

impl StoredCounts {
    /// Reads them (four indexed counts).
    ///
    /// # Errors
    /// Database failures.
    pub async fn read(database: &Database) -> Result<Self, StoreError> {
        const WEBHOOKS: &str = "select
            coalesce(sum(case when status = 'pending' then 1 else 0 end), 0),
            coalesce(sum(case when status = 'failed' then 1 else 0 end), 0)
            from raw_webhooks where status in ('pending', 'failed')";
        const ACTIVE: &str = "select count(*) from conversations where status <> 'resolved'";
        const LAG_SQLITE: &str = "select count(*) from events where position >
            coalesce((select min(position) from projection_checkpoints), 0)";
        const LAG_POSTGRES: &str = "select count(*) from events where (transaction_id, position) >
            coalesce((select (min(transaction_id)::text::xid8, min(position)) from projection_checkpoints having count(*) > 0),
                     ('0'::xid8, 0::bigint))";
        let (awaiting, dead_lettered): (i64, i64) =
            with_pool!(database, pool => sqlx::query_as(WEBHOOKS).fetch_one(pool).await?);
        const SENDS: &str = "select
            coalesce(sum(case when dead = 0 then 1 else 0 end), 0),
            coalesce(sum(case when dead = 1 then 1 else 0 end), 0)
            from outbound_queue";
        let (sends_queued, sends_dead_lettered): (i64, i64) =
            with_pool!(database, pool => sqlx::query_as(SENDS).fetch_one(pool).await?);
        let active_conversations: i64 =
            with_pool!(database, pool => sqlx::query_scalar(ACTIVE).fetch_one(pool).await?);
        let projection_lag: i64 = match database {
            Database::Postgres(pool) => sqlx::query_scalar(LAG_POSTGRES).fetch_one(pool).await?,
            Database::Sqlite(pool) => sqlx::query_scalar(LAG_SQLITE).fetch_one(pool).await?,
        };
        Ok(Self {
            awaiting,
            dead_lettered,
            active_conversations,
            projection_lag,
            sends_queued,
            sends_dead_lettered,
        })
    }
}
