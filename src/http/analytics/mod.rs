//! Analytics for supervisors (needs `can_view_analytics`): response times, per-agent days,
//! volumes, template usage and SLA outcomes of a period, as JSON or CSV ([`export`]).
//!
//! Every report takes the period (`from`, `to`), and filters by `group`, `agent` and
//! `phone_number_id`; days and hours are those of `tz` (IANA, default UTC); with `sla_policy`,
//! times count only within that policy's business hours.

mod export;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use switchboard_domain::agent::WorkingHours;
use switchboard_projections::analytics::agents::{self, AgentDay};
use switchboard_projections::analytics::volume::{self, TemplateUsage, VolumeRow};
use switchboard_projections::analytics::Tz;
use switchboard_projections::analytics::{Bucket, Filter};
use switchboard_projections::response_times::{self, Durations, ResponseOverview};
use switchboard_projections::sla::{self, SlaSummary};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use self::export::{csv, Format};
use crate::http::extract::{AuthAgent, Query};
use crate::http::input::rfc3339_millis as millis;
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(overview))
        .routes(routes!(agent_days))
        .routes(routes!(volumes))
        .routes(routes!(template_usage))
        .routes(routes!(sla_report))
}

/// The longest period one request may cover (a year and a day).
const MAX_PERIOD_MS: i64 = 366 * 24 * 3_600_000;
/// The period when none is given: the last seven days.
const DEFAULT_PERIOD_MS: i64 = 7 * 24 * 3_600_000;

/// What a report covers.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct Report {
    /// Start (RFC 3339, included); default: seven days before `to`.
    from: Option<String>,
    /// End (RFC 3339, excluded); default: now.
    to: Option<String>,
    /// Only conversations assigned to this group.
    group: Option<String>,
    /// Only this agent's replies (and conversations assigned to them).
    agent: Option<String>,
    /// Only conversations on this business number.
    phone_number_id: Option<String>,
    /// IANA time zone of days and hours (default `UTC`).
    tz: Option<String>,
    /// Volumes only: `hour` or `day` (default `day`).
    bucket: Option<String>,
    /// Count only time within this SLA policy's business hours.
    sla_policy: Option<String>,
    /// `json` (default) or `csv` (also `Accept: text/csv`).
    format: Option<String>,
}

impl Report {
    /// `[from, to)` in Unix milliseconds: forward, at most 366 days.
    fn period(&self, state: &AppState) -> Result<(i64, i64), ApiError> {
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

    fn filter(&self) -> Result<Filter, ApiError> {
        let short = |name: &str, value: &Option<String>| match value {
            Some(v) if v.is_empty() || v.len() > 128 => {
                Err(ApiError::BadRequest(format!("{name}: 1 to 128 characters")))
            }
            other => Ok(other.clone()),
        };
        Ok(Filter {
            group: short("group", &self.group)?,
            agent: short("agent", &self.agent)?,
            phone_number_id: short("phone_number_id", &self.phone_number_id)?,
        })
    }

    fn zone(&self) -> Result<Tz, ApiError> {
        match &self.tz {
            None => Ok(Tz::UTC),
            Some(name) => name.parse().map_err(|_| {
                ApiError::BadRequest(format!("tz: {name:?} is not an IANA time zone"))
            }),
        }
    }

    /// The business hours of `sla_policy`, if one is named (and has hours).
    async fn hours(&self, state: &AppState) -> Result<Option<WorkingHours>, ApiError> {
        let Some(id) = &self.sla_policy else {
            return Ok(None);
        };
        let policies = sla::policies(&state.database).await?;
        let policy = policies
            .into_iter()
            .find(|p| p.id == *id)
            .ok_or_else(|| ApiError::BadRequest(format!("sla_policy: no policy {id:?}")))?;
        Ok(policy.terms.business_hours)
    }

    /// Checks the caller's right and the parameters every report shares.
    fn open(
        &self,
        state: &AppState,
        auth: &AuthAgent,
        headers: &HeaderMap,
    ) -> Result<(Format, (i64, i64), Filter), ApiError> {
        if !auth.actor.permissions.can_view_analytics {
            return Err(ApiError::Forbidden {
                code: "forbidden",
                message: "analytics need the can_view_analytics permission",
            });
        }
        let format = Format::asked(headers, self.format.as_deref())?;
        Ok((format, self.period(state)?, self.filter()?))
    }
}

fn stamp(ms: i64) -> String {
    switchboard_domain::Timestamp::from_unix_millis(ms)
        .map(|t| t.to_string())
        .unwrap_or_default()
}

/// A report's rows with the period they cover.
#[derive(Serialize, utoipa::ToSchema)]
struct Rows<R> {
    /// Start of the period (included).
    from: String,
    /// End of the period (excluded).
    to: String,
    /// The rows (the CSV's lines, column for column).
    rows: Vec<R>,
}

/// `rows` as JSON (with the period) or CSV.
fn answer<R: Serialize + Default>(
    format: Format,
    name: &str,
    (from, to): (i64, i64),
    rows: Vec<R>,
) -> Result<Response, ApiError> {
    match format {
        Format::Csv => csv(name, &rows),
        Format::Json => Ok(Json(Rows {
            from: stamp(from),
            to: stamp(to),
            rows,
        })
        .into_response()),
    }
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

/// One line of the overview as CSV: a measure and its figures.
#[derive(Serialize, Default)]
struct OverviewLine {
    measure: &'static str,
    count: u64,
    average_seconds: Option<f64>,
    median_seconds: Option<f64>,
    p90_seconds: Option<f64>,
}

impl OverviewLine {
    fn of(measure: &'static str, d: &Durations) -> Self {
        Self {
            measure,
            count: d.count,
            average_seconds: d.average_seconds,
            median_seconds: d.median_seconds,
            p90_seconds: d.p90_seconds,
        }
    }

    fn count(measure: &'static str, count: u64) -> Self {
        Self {
            measure,
            count,
            ..Self::default()
        }
    }
}

/// First response, next response and resolution times of a period (median, p90, average, in
/// seconds), conversations started and reopened. As CSV: one line per measure. Needs
/// `can_view_analytics`.
#[utoipa::path(get, path = "/api/analytics/overview", operation_id = "getAnalyticsOverview", tag = "analytics", params(Report), security(("bearer" = [])),
    responses((status = 200, description = "Response times of the period",
        content((Overview = "application/json"), (String = "text/csv"))), Errors))]
async fn overview(
    State(state): State<AppState>,
    auth: AuthAgent,
    headers: HeaderMap,
    Query(report): Query<Report>,
) -> Result<Response, ApiError> {
    let (format, period, filter) = report.open(&state, &auth, &headers)?;
    let hours = report.hours(&state).await?;
    let times = response_times::overview(&state.database, period, &filter, hours.as_ref()).await?;
    if format == Format::Csv {
        return csv(
            "overview",
            &[
                OverviewLine::count("conversations_started", times.conversations_started),
                OverviewLine::of("first_response", &times.first_response),
                OverviewLine::of("next_response", &times.next_response),
                OverviewLine::of("resolution", &times.resolution),
                OverviewLine::count("reopened", times.reopened),
            ],
        );
    }
    Ok(Json(Overview {
        from: stamp(period.0),
        to: stamp(period.1),
        times,
    })
    .into_response())
}

/// Per agent and day (of `tz`): conversations handled, replies, responses with median and p90
/// wait, open conversations now. Needs `can_view_analytics`.
#[utoipa::path(get, path = "/api/analytics/agents", operation_id = "getAnalyticsAgents", tag = "analytics", params(Report), security(("bearer" = [])),
    responses((status = 200, description = "One row per agent and day",
        content((Rows<AgentDay> = "application/json"), (String = "text/csv"))), Errors))]
async fn agent_days(
    State(state): State<AppState>,
    auth: AuthAgent,
    headers: HeaderMap,
    Query(report): Query<Report>,
) -> Result<Response, ApiError> {
    let (format, period, filter) = report.open(&state, &auth, &headers)?;
    let hours = report.hours(&state).await?;
    let zone = report.zone()?;
    let rows = agents::per_day(&state.database, period, &filter, zone, hours.as_ref()).await?;
    answer(format, "agents", period, rows)
}

/// Messages in and out per hour or day (of `tz`) and number; sends by latest status, failures
/// by Meta's error code. Needs `can_view_analytics`.
#[utoipa::path(get, path = "/api/analytics/volume", operation_id = "getAnalyticsVolume", tag = "analytics", params(Report), security(("bearer" = [])),
    responses((status = 200, description = "One row per bucket and number",
        content((Rows<VolumeRow> = "application/json"), (String = "text/csv"))), Errors))]
async fn volumes(
    State(state): State<AppState>,
    auth: AuthAgent,
    headers: HeaderMap,
    Query(report): Query<Report>,
) -> Result<Response, ApiError> {
    let (format, period, filter) = report.open(&state, &auth, &headers)?;
    let bucket = match report.bucket.as_deref() {
        None | Some("day") => Bucket::Day,
        Some("hour") => Bucket::Hour,
        Some(_) => return Err(ApiError::BadRequest("bucket: hour or day".to_owned())),
    };
    let rows = volume::per_bucket(&state.database, period, &filter, bucket, report.zone()?).await?;
    if format == Format::Csv {
        let lines: Vec<VolumeLine> = rows.into_iter().map(VolumeLine::from).collect();
        return csv("volume", &lines);
    }
    answer(format, "volume", period, rows)
}

/// A volume row as CSV: the failures by code as `code=count` joined by `;`.
#[derive(Serialize, Default)]
struct VolumeLine {
    start: String,
    phone_number_id: String,
    inbound: u64,
    outbound: u64,
    pending: u64,
    sent: u64,
    delivered: u64,
    read: u64,
    failed: u64,
    failed_by_code: String,
}

impl From<VolumeRow> for VolumeLine {
    fn from(row: VolumeRow) -> Self {
        let codes: Vec<String> = row
            .failed_by_code
            .iter()
            .map(|(code, n)| format!("{code}={n}"))
            .collect();
        Self {
            start: row.start,
            phone_number_id: row.phone_number_id,
            inbound: row.inbound,
            outbound: row.outbound,
            pending: row.pending,
            sent: row.sent,
            delivered: row.delivered,
            read: row.read,
            failed: row.failed,
            failed_by_code: codes.join(";"),
        }
    }
}

/// Template sends of a period by template and language, by latest status. Needs
/// `can_view_analytics`.
#[utoipa::path(get, path = "/api/analytics/templates", operation_id = "getAnalyticsTemplates", tag = "analytics", params(Report), security(("bearer" = [])),
    responses((status = 200, description = "One row per template and language",
        content((Rows<TemplateUsage> = "application/json"), (String = "text/csv"))), Errors))]
async fn template_usage(
    State(state): State<AppState>,
    auth: AuthAgent,
    headers: HeaderMap,
    Query(report): Query<Report>,
) -> Result<Response, ApiError> {
    let (format, period, filter) = report.open(&state, &auth, &headers)?;
    let rows = volume::templates(&state.database, period, &filter).await?;
    answer(format, "templates", period, rows)
}

/// Met and breached SLA thresholds whose due time falls in the period, per policy and target.
/// Needs `can_view_analytics`.
#[utoipa::path(get, path = "/api/analytics/sla", operation_id = "getAnalyticsSla", tag = "analytics", params(Report), security(("bearer" = [])),
    responses((status = 200, description = "SLA outcomes of the period",
        content((Rows<SlaSummary> = "application/json"), (String = "text/csv"))), Errors))]
async fn sla_report(
    State(state): State<AppState>,
    auth: AuthAgent,
    headers: HeaderMap,
    Query(report): Query<Report>,
) -> Result<Response, ApiError> {
    let (format, period, _) = report.open(&state, &auth, &headers)?;
    let rows = sla::summary(&state.database, period.0, period.1).await?;
    answer(format, "sla", period, rows)
}
