//! What Meta reports about the account: templates, account-level notifications, and webhooks
//! whose processing failed.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use switchboard_projections::account_notifications::{self, AccountNotificationView};
use switchboard_projections::page::Page;
use switchboard_projections::templates::{self, TemplateView};

use crate::http::extract::{AuthAgent, PageParams, Query};
use crate::http::{ApiError, AppState};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/templates", get(list_templates))
        .route("/api/account/notifications", get(list_notifications))
}

async fn list_templates(
    State(state): State<AppState>,
    _auth: AuthAgent,
) -> Result<Json<Vec<TemplateView>>, ApiError> {
    Ok(Json(templates::list(&state.database).await?))
}

async fn list_notifications(
    State(state): State<AppState>,
    auth: AuthAgent,
    Query(page): Query<PageParams>,
) -> Result<Json<Page<AccountNotificationView>>, ApiError> {
    auth.require_admin()?;
    let page =
        account_notifications::list(&state.database, page.cursor.as_deref(), page.limit).await?;
    Ok(Json(page))
}
