//! Analytics for supervisors (needs `can_view_analytics`): response times and SLA outcomes of
//! a period.

use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_projections::response_times::{self, ResponseOverview};
use switchboard_projections::sla::{self, SlaSummary};

use crate::http::extract::{AuthAgent, Query};
use crate::http::input::rfc3339_millis as millis;
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(sla_report))
}

/// The longest period one request may cover (a year and a day).
const MAX_PERIOD_MS: i64 = 366 * 24 * 3_600_000;
/// The period when none is given: the last seven days.
const DEFAULT_PERIOD_MS: i64 = 7 * 24 * 3_600_000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Period {
    /// Start (RFC 3339, included); default: seven days before `to`.
    from: Option<String>,
    /// End (RFC 3339, excluded); default: now.
    to: Option<String>,
}

impl Period {
    /// `[from, to)` in Unix milliseconds: forward, at most 366 days.
    fn millis(&self, state: &AppState) -> Result<(i64, i64), ApiError> {
        let to = match &self.to {
            Some(text) => millis("to", text)?,
            None => state.clock.now().unix_millis(),
        };
        let from = match &self.from {
            Some(text) => millis("from", text)?,
            None => to - DEFAULT_PERIOD_MS,
        };
        if from >= to || to - from > MAX_PERIOD_MS {
            return Err(ApiError::BadRequest(
                "the period must run forward and last at most 366 days".to_owned(),
            ));
        }
        Ok((from, to))
    }
}

fn stamp(ms: i64) -> String {
    switchboard_domain::Timestamp::from_unix_millis(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

fn may_view(auth: &AuthAgent) -> Result<(), ApiError> {
    if auth.actor.permissions.can_view_analytics {
        return Ok(());
    }
    Err(ApiError::Forbidden {
        code: "forbidden",
        message: "analytics need the can_view_analytics permission",
    })
}

/// Response times over a period, with the period it covers.
#[derive(Serialize, utoipa::ToSchema)]
struct Overview {
    /// Start of the period (included).
    from: String,
    /// End of the period (excluded).
    to: String,
    /// The response times.
    times: ResponseOverview,
}

/// First response, next response and resolution times of a period (median, p90, average, in
/// seconds), conversations started and reopened. Needs `can_view_analytics`.
#[utoipa::path(get, path = "/api/analytics/overview", operation_id = "getAnalyticsOverview", tag = "analytics", params(Period), security(("bearer" = [])),
    responses((status = 200, description = "Response times of the period", body = Overview), Errors))]
async fn overview(
    State(state): State<AppState>,
    auth: AuthAgent,
    Query(period): Query<Period>,
) -> Result<Json<Overview>, ApiError> {
    may_view(&auth)?;
    let (from, to) = period.millis(&state)?;
    let times = response_times::overview(&state.database, from, to).await?;
    Ok(Json(Overview {
        from: stamp(from),
        to: stamp(to),
        times,
    }))
}

/// SLA outcomes of a period.
#[derive(Serialize, utoipa::ToSchema)]
struct SlaReport {
    /// Start of the period (included).
    from: String,
    /// End of the period (excluded).
    to: String,
    /// Per policy and target: met, breached, compliance.
    policies: Vec<SlaSummary>,
}

/// Met and breached SLA thresholds whose due time falls in the period, per policy and target.
/// Needs `can_view_analytics`.
#[utoipa::path(get, path = "/api/analytics/sla", operation_id = "getAnalyticsSla", tag = "analytics", params(Period), security(("bearer" = [])),
    responses((status = 200, description = "SLA outcomes of the period", body = SlaReport), Errors))]
async fn sla_report(
    State(state): State<AppState>,
    auth: AuthAgent,
    Query(period): Query<Period>,
) -> Result<Json<SlaReport>, ApiError> {
    may_view(&auth)?;
    let (from, to) = period.millis(&state)?;
    let policies = sla::summary(&state.database, from, to).await?;
    Ok(Json(SlaReport {
        from: stamp(from),
        to: stamp(to),
        policies,
    }))
}
