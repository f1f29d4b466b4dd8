//! Agents' messages whose every send attempt failed: list, retry, purge (admins). They look and
//! behave like the webhook dead letters.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use switchboard_domain::message::{MessageCommand, MessageError};
use switchboard_store::{with_pool, StoreError};

use crate::auth::accounts::actor_metadata;
use crate::http::dead_letters::PurgeParams;
use crate::http::extract::{AuthAgent, Query};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use crate::outbox;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, purge))
        .routes(routes!(retry))
}

#[derive(Serialize, sqlx::FromRow)]
struct DeadSend {
    message_id: String,
    conversation_id: String,
    attempts: i32,
    last_error: Option<String>,
    dead_lettered_at: Option<i64>,
}

/// Dead-lettered sends, newest first.
#[utoipa::path(get, path = "/api/dead-letters", operation_id = "listOutboundDeadLetters", tag = "dead letters", security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::DeadSends), Errors))]
async fn list(State(state): State<AppState>, auth: AuthAgent) -> Result<Json<Value>, ApiError> {
    auth.require_admin()?;
    let sql = "select message_id, conversation_id, attempts, last_error, dead_lettered_at from outbound_queue
               where dead = 1 order by dead_lettered_at desc, message_id limit 500";
    let rows: Vec<DeadSend> = with_pool!(&state.database, pool => sqlx::query_as(sql)
        .fetch_all(pool).await.map_err(StoreError::from)?);
    let items: Vec<Value> = rows
        .into_iter()
        .map(|r| {
            json!({
                "id": r.message_id,
                "conversation_id": r.conversation_id,
                "attempts": r.attempts,
                "error": r.last_error.and_then(|e| serde_json::from_str::<Value>(&e).ok()),
                "dead_lettered_at": r.dead_lettered_at
                    .and_then(switchboard_domain::Timestamp::from_unix_millis)
                    .map(|t| t.to_string()),
            })
        })
        .collect();
    Ok(Json(json!({ "items": items })))
}

/// Queues a dead-lettered send again.
#[utoipa::path(post, path = "/api/dead-letters/{id}/retry", operation_id = "retryOutboundDeadLetter", tag = "dead letters", params(("id" = String, Path, description = "Message id")), security(("bearer" = [])),
    responses((status = 202, body = crate::http::openapi::answers::Requeued), Errors))]
async fn retry(
    State(state): State<AppState>,
    auth: AuthAgent,
    Path(id): Path<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    auth.require_admin()?;
    let now = state.clock.now();
    let by = auth.actor.agent_id;
    let command = MessageCommand::Requeue { by, at: now };
    outbox::execute(&state.log, &id, command, &actor_metadata(Some(by), now)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "id": id, "status": "queued" })),
    ))
}

/// Drops dead-lettered sends older than `older_than` (RFC 3339): each becomes `failed` for
/// good, recorded as an event on its message with the outbox change.
#[utoipa::path(delete, path = "/api/dead-letters", operation_id = "purgeOutboundDeadLetters", tag = "dead letters", params(PurgeParams), security(("bearer" = [])),
    responses((status = 200, body = crate::http::openapi::answers::Deleted), Errors))]
async fn purge(
    State(state): State<AppState>,
    auth: AuthAgent,
    Query(params): Query<PurgeParams>,
) -> Result<Json<Value>, ApiError> {
    auth.require_admin()?;
    let older_than = params.cutoff_millis()?;
    let sql = "select message_id from outbound_queue where dead = 1 and dead_lettered_at < $1";
    let ids: Vec<String> = with_pool!(&state.database, pool => sqlx::query_scalar(sql)
        .bind(older_than).fetch_all(pool).await.map_err(StoreError::from)?);
    let now = state.clock.now();
    let by = auth.actor.agent_id;
    let metadata = actor_metadata(Some(by), now);
    let mut deleted = 0u64;
    for id in ids {
        let command = MessageCommand::PurgeDeadLetter { by, at: now };
        match outbox::execute(&state.log, &id, command, &metadata).await {
            Ok(events) => deleted += u64::from(!events.is_empty()),
            // Retried by someone else meanwhile: no longer a dead letter.
            Err(cqrs_es::AggregateError::UserError(MessageError::NotDeadLettered)) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(Json(json!({ "deleted": deleted })))
}
