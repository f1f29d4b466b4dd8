//! Inbox views (filtered, sorted, paged conversation lists), their tab counts, and search: all
//! within the caller's read scope.

use axum::extract::{RawQuery, State};
use axum::Json;
use switchboard_projections::conversations::{
    self, Assignee, ConversationView, Counts, InboxFilter, Sort, WindowState,
};
use switchboard_projections::page::Page;
use switchboard_projections::search::{self, SearchHit};
use switchboard_projections::ReadScope;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::http::extract::{AuthAgent, ReadAfter, ReadAfterParams};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use switchboard_domain::conversation::Tag;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(counts))
        .routes(routes!(search_text))
}

/// The query of a view. Lists (`status`, `tag`) take repeated parameters or commas.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct ViewParams {
    /// Any of these statuses: `open`, `pending`, `snoozed`, `resolved`.
    status: Option<Vec<String>>,
    /// `me`, `none`, or an agent id.
    assignee: Option<String>,
    /// A group id.
    group: Option<String>,
    /// Every one of these tags.
    tag: Option<Vec<String>>,
    /// `true`: with unread customer messages; `false`: without.
    unread: Option<bool>,
    /// `open` or `closed`: the customer-service window now.
    window: Option<String>,
    /// A business number.
    phone_number_id: Option<String>,
    /// `true`: someone holds the lock now; `false`: free.
    locked: Option<bool>,
    /// Customer name, number, or words of the conversation's messages.
    q: Option<String>,
    /// `last_activity` (default), `waiting_longest` or `created`.
    sort: Option<String>,
    /// The `next_cursor` of the previous page (same filters and sort).
    cursor: Option<String>,
    /// Items per page (1–200, default 50).
    limit: Option<u32>,
}

/// The longest parameter value accepted.
const MAX_VALUE_CHARS: usize = 512;
/// The most values of a list parameter.
const MAX_VALUES: usize = 30;

/// A parsed view query.
#[derive(Default)]
struct View {
    filter: InboxFilter,
    sort: Sort,
    cursor: Option<String>,
    limit: Option<u32>,
    /// `q` for the search endpoint.
    q: Option<String>,
}

/// A query the server cannot use: 400, as for every list's malformed query.
fn invalid(parameter: &str, message: impl Into<String>) -> ApiError {
    ApiError::BadRequest(format!("{parameter}: {}", message.into()))
}

fn boolean(name: &str, value: &str) -> Result<bool, ApiError> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(name, "expected true or false")),
    }
}

/// Parses a view query; unknown parameters are refused (a typo must not widen a view).
fn parse(query: Option<&str>, known: &[&str]) -> Result<View, ApiError> {
    let mut view = View::default();
    for (name, value) in form_urlencoded::parse(query.unwrap_or_default().as_bytes()) {
        if !known.contains(&name.as_ref()) {
            return Err(invalid(&name, "unknown parameter"));
        }
        if value.chars().count() > MAX_VALUE_CHARS {
            return Err(invalid(
                &name,
                format!("at most {MAX_VALUE_CHARS} characters"),
            ));
        }
        let value = value.into_owned();
        let list = |value: &str| -> Vec<String> {
            value
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .collect()
        };
        let filter = &mut view.filter;
        match name.as_ref() {
            "status" => {
                for status in list(&value) {
                    if !["open", "pending", "snoozed", "resolved"].contains(&status.as_str()) {
                        return Err(invalid("status", format!("unknown status {status:?}")));
                    }
                    filter.statuses.push(status);
                }
            }
            "assignee" => {
                filter.assignee = Some(match value.as_str() {
                    "me" => Assignee::Me,
                    "none" => Assignee::Nobody,
                    id => Assignee::Agent(id.to_owned()),
                });
            }
            "group" => filter.group = Some(value),
            "tag" => {
                for tag in list(&value) {
                    let tag = Tag::parse(&tag).map_err(|e| invalid("tag", e.to_string()))?;
                    filter.tags.push(tag.as_str().to_owned());
                }
            }
            "unread" => filter.unread = Some(boolean("unread", &value)?),
            "locked" => filter.locked = Some(boolean("locked", &value)?),
            "window" => {
                filter.window = Some(match value.as_str() {
                    "open" => WindowState::Open,
                    "closed" => WindowState::Closed,
                    _ => return Err(invalid("window", "expected open or closed")),
                });
            }
            "phone_number_id" => filter.phone_number_id = Some(value),
            "q" => view.q = Some(value).filter(|q| !q.trim().is_empty()),
            "sort" => {
                view.sort = match value.as_str() {
                    "last_activity" => Sort::LastActivity,
                    "waiting_longest" => Sort::WaitingLongest,
                    "created" => Sort::Created,
                    _ => {
                        return Err(invalid(
                            "sort",
                            "expected last_activity, waiting_longest or created",
                        ))
                    }
                };
            }
            "cursor" => view.cursor = Some(value),
            "limit" => {
                view.limit = Some(
                    value
                        .parse()
                        .map_err(|_| invalid("limit", "expected a positive integer"))?,
                );
            }
            _ => {}
        }
    }
    if view.filter.statuses.len() > MAX_VALUES || view.filter.tags.len() > MAX_VALUES {
        return Err(invalid(
            "status/tag",
            format!("at most {MAX_VALUES} values"),
        ));
    }
    Ok(view)
}

const VIEW_PARAMETERS: &[&str] = &[
    "status",
    "assignee",
    "group",
    "tag",
    "unread",
    "window",
    "phone_number_id",
    "locked",
    "q",
    "sort",
    "cursor",
    "limit",
    "min_position",
];

/// The inbox as the caller's read scope allows: filters combine (all must hold), pages are
/// stable while conversations arrive.
#[utoipa::path(get, path = "/api/conversations", tag = "conversations", params(ViewParams, ReadAfterParams),
    security(("bearer" = [])), responses((status = 200, body = Page<ConversationView>), Errors))]
async fn list(
    State(state): State<AppState>,
    auth: AuthAgent,
    _: ReadAfter,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<ConversationView>>, ApiError> {
    let mut view = parse(query.as_deref(), VIEW_PARAMETERS)?;
    view.filter.text = view.q.take();
    let scope = ReadScope::of(&auth.actor);
    let now = state.clock.now().unix_millis();
    let me = auth.actor.agent_id.to_string();
    let page = conversations::list(
        &state.database,
        &scope,
        &me,
        &view.filter,
        view.sort,
        now,
        view.cursor.as_deref(),
        view.limit,
    )
    .await?;
    Ok(Json(page))
}

/// Tab badges: conversations of the caller, of nobody, in all and per status, in the caller's
/// scope and matching the same filters as the list (except `sort`, `cursor`, `limit`).
#[utoipa::path(get, path = "/api/conversations/counts", operation_id = "countConversations", tag = "conversations", params(ViewParams, ReadAfterParams),
    security(("bearer" = [])), responses((status = 200, body = Counts), Errors))]
async fn counts(
    State(state): State<AppState>,
    auth: AuthAgent,
    _: ReadAfter,
    RawQuery(query): RawQuery,
) -> Result<Json<Counts>, ApiError> {
    let mut view = parse(query.as_deref(), VIEW_PARAMETERS)?;
    view.filter.text = view.q.take();
    let scope = ReadScope::of(&auth.actor);
    let now = state.clock.now().unix_millis();
    let me = auth.actor.agent_id.to_string();
    let counts = conversations::counts(&state.database, &scope, &me, &view.filter, now).await?;
    Ok(Json(counts))
}

/// Search parameters.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
struct SearchParams {
    /// Words (each matches as a word prefix, accents and case ignored); a phone number.
    q: String,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Hits per page (1–100, default 20).
    limit: Option<u32>,
}

/// Message text and captions, customer names and numbers, and notes, in the caller's scope:
/// the exact phrase first, then by relevance, each hit with a highlighted snippet and its
/// conversation.
#[utoipa::path(get, path = "/api/search", operation_id = "searchConversations", tag = "conversations", params(SearchParams),
    security(("bearer" = [])), responses((status = 200, body = Page<SearchHit>), Errors))]
async fn search_text(
    State(state): State<AppState>,
    auth: AuthAgent,
    RawQuery(query): RawQuery,
) -> Result<Json<Page<SearchHit>>, ApiError> {
    let view = parse(query.as_deref(), &["q", "cursor", "limit"])?;
    let q = view.q.ok_or_else(|| invalid("q", "required"))?;
    let scope = ReadScope::of(&auth.actor);
    let page = search::search(
        &state.database,
        &scope,
        &q,
        view.cursor.as_deref(),
        view.limit,
    )
    .await?;
    Ok(Json(page))
}
