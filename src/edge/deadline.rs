//! A whole request within a time limit: `tower-http`'s body timeout bounds each pause while a
//! body arrives, not the total, so a client sending a byte a second could hold a request (and
//! its memory) for as long as its body allows. This bounds the total, from the headers to the
//! answer, and answers 408 `request_timeout` as JSON (`tower-http`'s `TimeoutLayer` answers an
//! empty body). Socket.IO's transport (long polls and upgrades) is exempt: its requests are
//! long by design and bounded by its own ping timeouts.

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::ApiError;

/// Middleware: runs the request within `limit`.
pub async fn within(limit: Duration, request: Request, next: Next) -> Response {
    if request.uri().path().starts_with("/socket.io") {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ApiError::RequestTimeout {
            seconds: limit.as_secs(),
        }
        .into_response(),
    }
}
