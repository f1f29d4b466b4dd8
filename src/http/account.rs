//! What Meta reports about the account: templates, account-level notifications, and webhooks
//! whose processing failed.

use axum::extract::State;
use axum::Json;
use switchboard_projections::account_notifications::{self, AccountNotificationView};
use switchboard_projections::page::Page;
use switchboard_projections::templates::{self, TemplateView};

use crate::http::extract::{AuthAgent, PageParams, Query};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_templates))
        .routes(routes!(list_notifications))
}

/// Message templates as Meta last reported them.
#[utoipa::path(get, path = "/api/templates", tag = "account", security(("bearer" = [])),
    responses((status = 200, body = Vec<TemplateView>), Errors))]
async fn list_templates(
    State(state): State<AppState>,
    _auth: AuthAgent,
) -> Result<Json<Vec<TemplateView>>, ApiError> {
    Ok(Json(templates::list(&state.database).await?))
}

/// Account-level notifications from Meta, newest first (admins).
#[utoipa::path(get, path = "/api/account/notifications", tag = "account", params(PageParams), security(("bearer" = [])),
    responses((status = 200, body = Page<AccountNotificationView>), Errors))]
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
