//! What Meta reports about the account: templates, account-level notifications, and webhooks
//! whose processing failed.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use switchboard_projections::account_notifications::{self, AccountNotificationView};
use switchboard_projections::page::Page;
use switchboard_projections::templates::{self, TemplateView};

use crate::http::extract::{AuthAgent, PageParams, Query};
use crate::http::{ApiError, AppState};
use crate::webhooks::inbox::{self, FailedWebhook};

pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/api/templates", get(list_templates))
        .route("/api/account/notifications", get(list_notifications))
        .route("/api/webhooks/dead-letters", get(list_failed_webhooks))
}

fn require_admin(auth: &AuthAgent) -> Result<(), ApiError> {
    if auth.actor.role == switchboard_domain::agent::Role::Admin {
        Ok(())
    } else {
        Err(ApiError::Forbidden {
            code: "forbidden",
            message: "only admins may see this",
        })
    }
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
    require_admin(&auth)?;
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
    auth: AuthAgent,
    Query(params): Query<LimitParams>,
) -> Result<Json<Vec<FailedWebhook>>, ApiError> {
    require_admin(&auth)?;
    let limit = params.limit.unwrap_or(50).clamp(1, 500);
    Ok(Json(inbox::failed(&state.database, limit).await?))
}
