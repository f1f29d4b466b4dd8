//! CORS and the security headers of every answer.
//!
//! - **CORS** (`tower-http`): only the origins in `SWITCHBOARD_CORS_ORIGINS` may call the API
//!   from a browser; with none configured the layer still answers preflights (a JSON-less 200
//!   without `Access-Control-Allow-Origin`, which the browser reads as a refusal), so a
//!   preflight is never a 405. Credentials are bearer headers, never cookies, so
//!   `Allow-Credentials` is not sent.
//! - **Every answer**: `X-Content-Type-Options: nosniff`, `Referrer-Policy: no-referrer`,
//!   `X-Frame-Options: DENY`; HTML pages set their own `Content-Security-Policy` (the console's
//!   and the API docs' are strict); any other answer gets `default-src 'none'` so a JSON
//!   answer opened as a page runs nothing.
//! - **HSTS** on answers to requests that reached a trusted proxy over HTTPS (TLS ends at the
//!   proxy; the server itself speaks plain HTTP).

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use tower_http::cors::{AllowOrigin, CorsLayer};

use super::client::ClientAddress;

/// The CORS layer for `origins` (empty: none allowed).
pub fn cors(origins: &[String]) -> CorsLayer {
    let allowed: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(allowed))
        .allow_methods([
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ])
        .allow_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::IF_NONE_MATCH,
            HeaderName::from_static("idempotency-key"),
            HeaderName::from_static("last-event-id"),
            HeaderName::from_static(crate::http::REQUEST_ID_HEADER),
        ])
        .expose_headers([
            header::RETRY_AFTER,
            header::ETAG,
            header::LOCATION,
            HeaderName::from_static(crate::http::REQUEST_ID_HEADER),
        ])
        .max_age(std::time::Duration::from_secs(600))
}

/// What an answer that is not a page may do when opened as one: nothing.
const API_POLICY: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'";
/// One year, as browsers' preload lists ask.
const HSTS: &str = "max-age=31536000; includeSubDomains";

/// Middleware: the security headers (see the module documentation).
pub async fn secure(hsts: bool, request: Request, next: Next) -> Response {
    let https = request
        .extensions()
        .get::<ClientAddress>()
        .is_some_and(|client| client.https);
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_POLICY),
        );
    }
    if hsts && https {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
    }
    response
}
