//! What Meta reports about the account: templates, account-level notifications, and webhooks
//! whose processing failed.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_projections::account_notifications::{self, AccountNotificationView};
use switchboard_projections::page::Page;
use switchboard_projections::templates::{self, TemplateView};

use crate::http::extract::{PageParams, Query};
use crate::http::{ApiError, AppState};
use crate::webhooks::inbox::{self, FailedWebhook};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/templates", get(list_templates))
        .route("/api/account/notifications", get(list_notifications))
        .route("/api/webhooks/dead-letters", get(list_failed_webhooks))
}

async fn list_templates(
    State(state): State<AppState>,
) -> Result<Json<Vec<TemplateView>>, ApiError> {
    Ok(Json(templates::list(&state.database).await?))
}

async fn list_notifications(
    State(state): State<AppState>,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<AccountNotificationView>>, ApiError> {
    let page =
        account_notifications::list(&state.database, page.cursor.as_deref(), page.limit).await?;
    Ok(Json(page))
}

#[derive(Debug, Deserialize)]
struct LimitParams {
    limit: Option<u32>,
}

async fn list_failed_webhooks(
    State(state): State<AppState>,
    Query(params): Query<LimitParams>,
) -> Result<Json<Vec<FailedWebhook>>, ApiError> {
    let limit = params.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(inbox::failed(&state.database, limit).await?))
}
