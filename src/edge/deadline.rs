//! A whole request within a time limit: `tower-http`'s body timeout bounds each pause while a
//! body arrives, not the total, so a client sending a byte a second could hold a request (and
//! its memory) for as long as its body allows. This bounds the total, from the headers to the
//! answer, and answers 408 `request_timeout` as JSON (`tower-http`'s `TimeoutLayer` answers an
//! empty body). Media (`POST /api/media` uploads up to 100 MB, and the files served under
//! `/api/media/…`) are exempt: on a slow link they legitimately take longer, and the body pause
//! timeout still bounds a stalled upload. Socket.IO's
//! transport never reaches this layer (its layer sits outside the router).

use std::time::Duration;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::http::ApiError;

/// Middleware: runs the request within `limit`.
pub async fn within(limit: Duration, request: Request, next: Next) -> Response {
    if is_media(request.uri().path()) {
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

/// Whether `path` carries a media file (`/api/media` and below), which may take longer.
fn is_media(path: &str) -> bool {
    path == "/api/media" || path.starts_with("/api/media/")
}

#[cfg(test)]
mod tests {
    use super::is_media;

    #[test]
    fn uploads_and_media_files_are_exempt_and_nothing_else() {
        assert!(is_media("/api/media"));
        assert!(is_media("/api/media/wamid.X/signed"));
        assert!(!is_media("/api/mediax"));
        assert!(!is_media("/api/conversations"));
        assert!(!is_media("/api/uploads"));
    }
}
