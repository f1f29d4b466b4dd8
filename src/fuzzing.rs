//! Entry points for fuzzers: each feeds arbitrary bytes to one parser that faces clients or
//! Meta, and must return (an error is fine) without panicking. The `cargo fuzz` targets in
//! `fuzz/` call these (coverage-guided, nightly, for long runs); `tests/api/fuzz_smoke.rs` runs
//! them on stable over every fixture and mutations of them in each CI run.

use std::sync::OnceLock;

use secrecy::SecretString;
use switchboard_domain::Timestamp;

/// A fixed instant for parsers that need one.
fn now() -> Timestamp {
    Timestamp::from_unix_seconds(1_780_000_000)
        .unwrap_or_else(|| Timestamp::new(chrono::DateTime::<chrono::Utc>::UNIX_EPOCH))
}

/// Meta's webhook envelope and everything in it (messages, statuses, account fields).
pub fn webhook(data: &[u8]) {
    let _ = crate::whatsapp::payload::parse(data, now(), &["extra_field".to_owned()]);
}

/// An agent's outbound message as the API receives it: parsed, then validated.
pub fn outbound(data: &[u8]) {
    if let Ok(content) =
        serde_json::from_slice::<switchboard_domain::message::OutboundContent>(data)
    {
        let _ = content.validate();
    }
}

/// A page cursor a client sends back.
pub fn cursor(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = switchboard_projections::page::Cursor::parse(text);
    }
}

/// A bearer credential: as an access token (JWT, signature and claims) and as a media link.
pub fn token(data: &[u8]) {
    static KEYS: OnceLock<crate::auth::tokens::JwtKeys> = OnceLock::new();
    let keys = KEYS.get_or_init(|| {
        crate::auth::tokens::JwtKeys::new(&SecretString::from(
            "fuzzing-secret-0123456789-0123456789".to_owned(),
        ))
    });
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = keys.verify(text, now());
        let _ = keys.verify_media_link(text, "media-1", now());
        let _ = crate::http::extract::bearer_token(&bearer(text));
    }
}

fn bearer(text: &str) -> axum::http::HeaderMap {
    let mut headers = axum::http::HeaderMap::new();
    if let Ok(value) = axum::http::HeaderValue::from_str(text) {
        headers.insert(axum::http::header::AUTHORIZATION, value);
    }
    headers
}
