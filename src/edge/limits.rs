//! Rate limits beyond login: per credential and per address on the API, per address on the
//! webhook endpoint; a request over its limit is answered 429 `rate_limited` with
//! `Retry-After`, before any handler runs.
//!
//! - **Credential**: a live access token counts under the agent it was signed for (every
//!   session of one agent shares a bucket); anything else presented as a bearer (API keys, garbage)
//!   under a hash of the whole value, so a guessed key id cannot spend its owner's bucket.
//! - **Address**: the client as [`client::resolve`](super::client::resolve) found it, IPv6 per
//!   /64. `/api/health*` and `/metrics` are not limited (monitoring must see an overloaded
//!   server).
//!
//! State is per instance and in memory (generous defaults; behind a load balancer each
//! instance allows its share). Every table is bounded: keys whose bucket is full again are
//! dropped every [`TIDY_EVERY`] checks (`governor`'s `retain_recent`), and past [`MAX_KEYS`]
//! new keys share [`OVERFLOW_BUCKETS`] buckets instead of growing the table, so a flood of
//! distinct addresses or tokens cannot grow memory.

use std::hash::{BuildHasher, RandomState};
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use super::client::{address_bucket, resolve, ClientAddress};
use super::{EdgeSettings, Rate};
use crate::auth::tokens::JwtKeys;
use crate::http::ApiError;

/// Keys one table holds before new ones share buckets.
pub const MAX_KEYS: usize = 100_000;
/// Shared buckets of a full table.
pub const OVERFLOW_BUCKETS: u64 = 1_024;
/// Checks between two sweeps of a table.
pub const TIDY_EVERY: u64 = 4_096;

/// One keyed limit.
struct Limit {
    name: &'static str,
    limiter: DefaultKeyedRateLimiter<u64>,
    checks: AtomicU64,
}

impl Limit {
    fn new(name: &'static str, rate: Rate) -> Option<Self> {
        let burst = NonZeroU32::new(rate.burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::with_period(rate.every)?.allow_burst(burst);
        Some(Self {
            name,
            limiter: RateLimiter::keyed(quota),
            checks: AtomicU64::new(0),
        })
    }

    /// `Err(wait)` when `key` is over the limit.
    fn check(&self, key: u64, clock: &DefaultClock) -> Result<(), Duration> {
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(TIDY_EVERY)
        {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        let key = if self.limiter.len() >= MAX_KEYS {
            key % OVERFLOW_BUCKETS
        } else {
            key
        };
        self.limiter.check_key(&key).map_err(|not_until| {
            metrics::counter!(crate::metrics::RATE_LIMITED, "limit" => self.name).increment(1);
            not_until.wait_time_from(clock.now())
        })
    }
}

/// The edge's rate limits and who the client is (see the module documentation).
pub struct Limits {
    per_credential: Option<Limit>,
    per_address: Option<Limit>,
    webhooks: Option<Limit>,
    proxies: Vec<ipnet::IpNet>,
    keys: Arc<JwtKeys>,
    /// The application's clock: a token counts under its agent only until it expires.
    now: Arc<dyn crate::clock::Clock>,
    hasher: RandomState,
    clock: DefaultClock,
}

/// Which limits a path falls under.
enum Route {
    Webhook,
    Unlimited,
    Api,
}

fn route(path: &str) -> Route {
    if path.starts_with("/webhooks/") {
        Route::Webhook
    } else if path == "/metrics" || path == "/api/health" || path.starts_with("/api/health/") {
        Route::Unlimited
    } else {
        Route::Api
    }
}

impl Limits {
    /// The limits of `settings`; access tokens are told apart with `keys` and `now`.
    pub fn new(
        settings: &EdgeSettings,
        keys: Arc<JwtKeys>,
        now: Arc<dyn crate::clock::Clock>,
    ) -> Self {
        Self {
            per_credential: Limit::new("credential", settings.api_per_credential),
            per_address: Limit::new("address", settings.api_per_address),
            webhooks: Limit::new("webhook_address", settings.webhooks_per_address),
            proxies: settings.trusted_proxies.clone(),
            keys,
            now,
            hasher: RandomState::new(),
            clock: DefaultClock::default(),
        }
    }

    /// How many keys each table holds now (limit name, keys): what bounds memory.
    pub fn sizes(&self) -> Vec<(&'static str, usize)> {
        [&self.per_credential, &self.per_address, &self.webhooks]
            .into_iter()
            .flatten()
            .map(|limit| (limit.name, limit.limiter.len()))
            .collect()
    }

    fn address_key(&self, ip: IpAddr) -> u64 {
        self.hasher.hash_one(address_bucket(ip))
    }

    /// A live access token counts under its agent; anything else (an expired or foreign token,
    /// an API key) under its own hash, so a stale token cannot spend its agent's bucket.
    /// The verified claims go along, so that authentication does not verify the token again.
    fn credential_key(&self, bearer: &str) -> (u64, Option<VerifiedClaims>) {
        match self.keys.verify(bearer, self.now.now()) {
            Ok(claims) => (
                self.hasher.hash_one(("agent", &claims.sub)),
                Some(VerifiedClaims(claims)),
            ),
            Err(_) => (self.hasher.hash_one(("bearer", bearer)), None),
        }
    }

    /// `Err(wait)` when the request must wait.
    fn admit(&self, request: &mut Request, client: ClientAddress) -> Result<(), Duration> {
        let check = |limit: &Option<Limit>, key: u64| match limit {
            Some(limit) => limit.check(key, &self.clock),
            None => Ok(()),
        };
        match route(request.uri().path()) {
            Route::Unlimited => Ok(()),
            Route::Webhook => check(&self.webhooks, self.address_key(client.ip)),
            Route::Api => {
                check(&self.per_address, self.address_key(client.ip))?;
                if self.per_credential.is_none() {
                    return Ok(());
                }
                let Ok(bearer) = crate::http::extract::bearer_token(request.headers()) else {
                    return Ok(());
                };
                let (key, claims) = self.credential_key(bearer);
                if let Some(claims) = claims {
                    request.extensions_mut().insert(claims);
                }
                check(&self.per_credential, key)
            }
        }
    }
}

/// An access token's claims, verified by the limits on the request's way in (in its extensions,
/// for [`crate::http::extract::authenticate`]): the HMAC is checked once per request.
#[derive(Debug, Clone)]
pub struct VerifiedClaims(pub crate::auth::tokens::Claims);

/// Middleware: finds the client and puts its [`ClientAddress`] in the request's extensions
/// (outermost, so that every other layer sees it).
pub async fn identify(
    State(limits): State<Arc<Limits>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED), |info| {
            info.0.ip()
        });
    let client = resolve(peer, request.headers(), &limits.proxies);
    request.extensions_mut().insert(client);
    next.run(request).await
}

/// Middleware: admits the request or answers 429 (after [`identify`]).
pub async fn guard(
    State(limits): State<Arc<Limits>>,
    mut request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ClientAddress>()
        .copied()
        .unwrap_or(ClientAddress {
            ip: IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            https: false,
        });
    match limits.admit(&mut request, client) {
        Ok(()) => next.run(request).await,
        Err(wait) => ApiError::TooManyRequests {
            retry_after_seconds: wait.as_secs_f64().ceil() as u64,
        }
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_of_distinct_keys_leaves_the_table_bounded() {
        let limit = Limit::new("test", Rate::per_second(1, 1)).expect("a limit");
        let clock = DefaultClock::default();
        for key in 0..(MAX_KEYS as u64 + 50_000) {
            let _ = limit.check(key, &clock);
        }
        assert!(
            limit.limiter.len() <= MAX_KEYS + OVERFLOW_BUCKETS as usize,
            "{} keys",
            limit.limiter.len()
        );
        // A key over its limit waits.
        assert!(limit.check(7, &clock).is_err());
    }
}
