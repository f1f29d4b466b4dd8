//! What request text may hold.
//!
//! U+0000 (NUL) is customer content when a customer sends it, and the store keeps it (see
//! `switchboard_store::nul`). In our own identifiers, names and notes it is only ever a
//! mistake or an attack, so:
//! - a JSON body holding a NUL anywhere is refused with 422 `invalid_input` naming the field,
//!   except the content of a message to a customer ([`super::extract::ContentJson`]);
//! - a path holding a control character (`%00`–`%1F`, `%7F`) names nothing: 404;
//! - a query string holding a NUL is refused with 400.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::http::ApiError;

/// Whether JSON text holds a `\u0000` escape, the only way a JSON string can hold U+0000.
///
/// `json` must be valid JSON: outside strings there are no backslashes, and inside them each
/// backslash starts an escape of one character (or of `uXXXX`).
pub fn has_nul(json: &str) -> bool {
    let bytes = json.as_bytes();
    let mut at = 0;
    while let Some(offset) = bytes[at..].iter().position(|b| *b == b'\\') {
        let escape = at + offset;
        if bytes[escape + 1..].starts_with(b"u0000") {
            return true;
        }
        at = escape + 2;
        if at >= bytes.len() {
            return false;
        }
    }
    false
}

/// Where in `value` the first NUL is, as `field`, `items[2].name` or `(a key)`.
fn nul_path(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(String::new),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| nul_path(item).map(|inner| format!("[{i}]{}", dotted(&inner)))),
        Value::Object(map) => map.iter().find_map(|(key, inner)| {
            if key.contains('\0') {
                return Some("(a key)".to_owned());
            }
            nul_path(inner).map(|path| format!("{key}{}", dotted(&path)))
        }),
        Value::Null | Value::Bool(_) | Value::Number(_) => None,
    }
}

fn dotted(inner: &str) -> String {
    if inner.is_empty() || inner.starts_with('[') {
        inner.to_owned()
    } else {
        format!(".{inner}")
    }
}

/// Refuses JSON text holding a NUL, saying which field holds it.
///
/// # Errors
/// 422 `invalid_input`.
pub fn refuse_nul(json: &str) -> Result<(), ApiError> {
    if !has_nul(json) {
        return Ok(());
    }
    let path = serde_json::from_str::<Value>(json)
        .ok()
        .and_then(|value| nul_path(&value))
        .filter(|path| !path.is_empty())
        .unwrap_or_else(|| "the body".to_owned());
    Err(ApiError::Unprocessable {
        code: "invalid_input",
        message: format!("{path} must not contain NUL (U+0000) characters"),
    })
}

/// Whether percent-encoded text encodes a byte that `forbidden` refuses.
fn encodes(text: &str, forbidden: impl Fn(u8) -> bool) -> bool {
    text.as_bytes().windows(3).any(|w| {
        w[0] == b'%'
            && std::str::from_utf8(&w[1..])
                .ok()
                .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                .is_some_and(&forbidden)
    })
}

/// Middleware: a path with an encoded control character is not found (no id holds one), a
/// query string with an encoded NUL is a bad request. Both answer before any handler (and
/// any database) sees them.
pub async fn refuse_control_characters(request: Request, next: Next) -> Response {
    let uri = request.uri();
    if encodes(uri.path(), |b| b < 0x20 || b == 0x7f) {
        return ApiError::NotFound("route").into_response();
    }
    if uri.query().is_some_and(|query| encodes(query, |b| b == 0)) {
        return ApiError::BadRequest("the query string must not contain NUL (%00)".to_owned())
            .into_response();
    }
    next.run(request).await
}

/// The query parameter `name`'s RFC 3339 time in Unix milliseconds; a clear 400 otherwise.
pub(crate) fn rfc3339_millis(name: &str, text: &str) -> Result<i64, ApiError> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|at| at.timestamp_millis())
        .map_err(|_| ApiError::BadRequest(format!("{name} {text:?} is not RFC 3339")))
}

/// Distinguishes a JSON field set to `null` (`Some(None)`) from one left out (`None`, with
/// `#[serde(default)]`), for partial updates.
pub fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(deserializer).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_real_nul_escapes_count() {
        assert!(has_nul(r#"{"name":"a\u0000b"}"#));
        assert!(has_nul(r#"["\\\u0000"]"#));
        assert!(!has_nul(r#"{"name":"a\\u0000b"}"#), "an escaped backslash");
        assert!(!has_nul(r#"{"name":"\u0001 \\"}"#));
        assert!(!has_nul(r#"{"name":"plain"}"#));
    }

    #[test]
    fn the_refusal_names_the_field() {
        let refused = refuse_nul(r#"{"a":{"items":[{"x":1},{"name":"\u0000"}]}}"#);
        let Err(ApiError::Unprocessable { message, .. }) = refused else {
            panic!("refused");
        };
        assert!(message.starts_with("a.items[1].name "), "{message}");
    }

    #[test]
    fn encoded_control_characters_are_found() {
        assert!(encodes("/api/agents/a%00b", |b| b < 0x20));
        assert!(encodes("/x/%0a", |b| b < 0x20));
        assert!(!encodes("/api/agents/%C3%A9%20x", |b| b < 0x20 || b == 0x7f));
        assert!(!encodes("%0", |b| b == 0));
    }
}
