//! The event log for analytics consumers: pages, and a live server-sent-event stream that
//! resumes from `Last-Event-ID`. Both need `can_export_data`, which is granted only together
//! with read scope `all` (the stream holds every conversation's messages); an agent whose
//! rights predate that rule and lack read scope `all` is refused here too.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::{Stream, StreamExt};
use serde::Deserialize;
use serde_json::Value;
use switchboard_store::{EventRepository, LogCursor, StoreError};

use crate::http::extract::{AuthAgent, Query};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::realtime::Envelope;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(page))
        .routes(routes!(stream))
}

/// One server-sent event of the stream.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct StreamEvent {
    /// The position (send it back as `Last-Event-ID`).
    id: String,
    /// The event type.
    event: String,
    /// The envelope (`{position, type, aggregate_type, aggregate_id, conversation_id, data,
    /// metadata, at}`), as JSON.
    data: String,
}

/// A page of the event log.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
struct EventPage {
    items: Vec<Envelope>,
    /// Pass as `after` for the next page; absent at the end of the log.
    next_after: Option<i64>,
}

fn require_export(auth: &AuthAgent) -> Result<(), ApiError> {
    let permissions = &auth.actor.permissions;
    if permissions.can_export_data && permissions.consistent().is_ok() {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "forbidden",
            message: "the event stream needs the can_export_data permission and read scope all",
        })
    }
}

async fn cursor(log: &EventRepository, after: i64) -> Result<LogCursor, ApiError> {
    log.cursor_after(after).await.map_err(|error| match error {
        StoreError::UnknownPosition(position) => {
            ApiError::BadRequest(format!("no event at position {position}"))
        }
        other => other.into(),
    })
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct PageParams {
    after: Option<i64>,
    limit: Option<u32>,
}

/// A page of the log in order, after a position.
#[utoipa::path(get, path = "/api/events", operation_id = "listEvents", tag = "events", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = EventPage), Errors))]
async fn page(
    State(state): State<AppState>,
    auth: AuthAgent,
    Query(params): Query<PageParams>,
) -> Result<Json<Value>, ApiError> {
    require_export(&auth)?;
    let from = cursor(&state.log, params.after.unwrap_or(0)).await?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1_000);
    let events = state.log.read_all(from, limit).await?;
    let next_after = events.last().map(|e| e.position);
    let items: Vec<Envelope> = events.into_iter().map(Envelope::from).collect();
    Ok(Json(
        serde_json::json!({ "items": items, "next_after": next_after }),
    ))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct StreamParams {
    after: Option<i64>,
}

/// Server-sent events, one per log event (`id` = position, `event` = type), live; resumes
/// after `Last-Event-ID` (or `?after=`).
#[utoipa::path(get, path = "/api/events/stream", operation_id = "streamEvents", tag = "events", params(StreamParams,
        ("Last-Event-ID" = Option<i64>, Header, description = "Resume after this position")), security(("bearer" = [])),
    responses((status = 200, description = "Server-sent events, one per log event: `id` = position, `event` = type, `data` = the envelope", content_type = "text/event-stream", body = StreamEvent), Errors))]
async fn stream(
    State(state): State<AppState>,
    auth: AuthAgent,
    headers: HeaderMap,
    Query(params): Query<StreamParams>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    require_export(&auth)?;
    let last_event_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .map(|v| v.trim().parse::<i64>())
        .transpose()
        .map_err(|_| ApiError::BadRequest("Last-Event-ID must be a position".to_owned()))?;
    let from = cursor(&state.log, last_event_id.or(params.after).unwrap_or(0)).await?;
    let log = state.log.clone();
    let stream_max = state.event_stream_max;
    let appended = log.appended();
    let events = futures::stream::unfold(
        (log, from, appended, VecDeque::new()),
        |(log, mut cursor, mut appended, mut buffer)| async move {
            loop {
                if let Some(event) = buffer.pop_front() {
                    let envelope = Envelope::from(event);
                    let sse = Event::default()
                        .id(envelope.position.to_string())
                        .event(envelope.kind.clone())
                        .json_data(&envelope)
                        .unwrap_or_else(|_| Event::default().comment("unserializable event"));
                    return Some((Ok(sse), (log, cursor, appended, buffer)));
                }
                match log.read_all(cursor, 500).await {
                    Ok(batch) if !batch.is_empty() => {
                        if let Some(last) = batch.last() {
                            cursor = last.cursor;
                        }
                        buffer.extend(batch);
                    }
                    Ok(_) => {
                        tokio::select! {
                            _ = appended.changed() => {}
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "event stream read failed; retrying");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        },
    );
    // Ends after a while: the client reconnects with Last-Event-ID and misses nothing.
    let events = events.take_until(tokio::time::sleep(stream_max));
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}
