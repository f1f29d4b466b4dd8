//! What Meta reports about the account: account-level notifications, and webhooks whose
//! processing failed.

use axum::extract::State;
use axum::Json;
use switchboard_projections::account_notifications::{self, AccountNotificationView};
use switchboard_projections::page::Page;

use crate::http::extract::{AuthAgent, PageParams, Query};
use crate::http::openapi::Errors;
use crate::http::{ApiError, AppState};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub(super) fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_notifications))
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
