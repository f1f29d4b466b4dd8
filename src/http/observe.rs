//! Per-request observation: the request id for everything the request causes, and the HTTP
//! metrics by method, route (the matched pattern, never the raw path) and status.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

use crate::http::REQUEST_ID_HEADER;
use crate::metrics::{HTTP_DURATION, HTTP_REQUESTS};
use crate::telemetry::REQUEST_ID;

/// Runs the request with its id in scope and records its metrics.
pub async fn observe(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let response = REQUEST_ID.scope(request_id, next.run(request)).await;
    let status = response.status().as_u16().to_string();
    let labels = [("method", method), ("route", route), ("status", status)];
    metrics::counter!(HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(HTTP_DURATION, &labels).record(started.elapsed().as_secs_f64());
    response
}
