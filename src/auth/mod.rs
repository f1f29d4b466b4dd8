//! Agent authentication: passwords, access tokens (JWT), rotating refresh tokens, login rate
//! limits, and the first admin of a fresh install.
//!
//! Access tokens are short-lived JWTs (HS256 only). Refresh tokens are opaque random values,
//! stored hashed, rotated on every use; presenting a rotated one again revokes its whole
//! family (every token descended from that login). Whether a login is live and what its agent
//! may do are kept in memory per instance ([`cache`]), with the guarantees written there.

pub mod accounts;
pub mod api_keys;
pub mod cache;
pub mod passwords;
pub mod rate_limit;
pub mod sessions;
pub mod tokens;

use std::sync::Arc;

pub use rate_limit::LoginLimiter;
pub use tokens::JwtKeys;

use crate::config::AuthSettings;
use cache::AuthCache;

/// Everything handlers need to authenticate: keys, limits and lifetimes.
#[derive(Clone)]
pub struct Auth {
    /// Signing and verification keys.
    pub keys: Arc<JwtKeys>,
    /// Login rate limits.
    pub limiter: Arc<LoginLimiter>,
    /// Password checks of this instance, bounded.
    pub verifier: passwords::Verifier,
    /// Token lifetimes.
    pub settings: Arc<AuthSettings>,
    /// Live logins and agents' rights, in memory.
    pub cache: Arc<AuthCache>,
}

impl Auth {
    /// Builds keys and limiters from the settings.
    pub fn new(settings: &AuthSettings) -> Self {
        Self {
            keys: Arc::new(JwtKeys::new(&settings.jwt_secret)),
            limiter: Arc::new(LoginLimiter::new(
                settings.login_attempts_per_ip,
                settings.login_attempts_per_account,
            )),
            verifier: passwords::Verifier::new(settings.login_queue),
            settings: Arc::new(settings.clone()),
            cache: Arc::new(AuthCache::new(settings.cache_staleness)),
        }
    }
}
