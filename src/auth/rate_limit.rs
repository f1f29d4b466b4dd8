//! Login throttling: strict per client address, slowing per account, and never a lockout of
//! the account's owner.
//!
//! The policy (README, *Login throttling*):
//! - **Per address** (IPv6 per /64): at most `per_ip` attempts a minute; and once an address
//!   has failed [`ADDRESS_FREE_FAILURES`] times within [`WINDOW`], each further attempt from it
//!   waits 1 s, 2 s, 4 s, … after its last failure (at most [`ADDRESS_MAX_DELAY`]).
//! - **Per account**: once an account has taken `per_account` failures within [`WINDOW`], an
//!   address that has itself failed recently waits 1 s, 2 s, 4 s, … after its own last failure
//!   before it may try again (at most [`ACCOUNT_MAX_DELAY`]).
//! - An address **without** recent failures is never held back by an account's failures: the
//!   owner logging in from their usual place gets in with the right password even while
//!   someone guesses from elsewhere. What such guessing costs: one try per fresh address, then
//!   that address is slowed like any other.
//! - A success forgets the address's failures (not the account's).
//!
//! Failures are forgotten [`WINDOW`] after the last one. State is per server instance and in
//! memory; each table holds at most [`MAX_ENTRIES`] keys (hashes, not emails), pruned of
//! forgotten ones as it fills.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

/// How long failures are remembered after the last one.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Failures an address makes before its attempts are spaced out.
pub const ADDRESS_FREE_FAILURES: u32 = 5;
/// The longest an address waits between attempts because of its own failures.
pub const ADDRESS_MAX_DELAY: Duration = Duration::from_secs(15 * 60);
/// The longest a failing address waits because of an account's failures.
pub const ACCOUNT_MAX_DELAY: Duration = Duration::from_secs(5 * 60);
/// The most keys one table holds.
pub const MAX_ENTRIES: usize = 100_000;

/// Throttles login attempts (see the module documentation for the policy).
pub struct LoginLimiter {
    attempts: DefaultKeyedRateLimiter<u64>,
    clock: DefaultClock,
    account_free_failures: u32,
    hasher: RandomState,
    state: Mutex<Ledgers>,
}

#[derive(Default)]
struct Ledgers {
    addresses: Ledger,
    accounts: Ledger,
    pruned_at_ms: i64,
}

/// Recent failures per key.
#[derive(Default)]
struct Ledger(HashMap<u64, Failures>);

#[derive(Clone, Copy)]
struct Failures {
    count: u32,
    last_ms: i64,
}

fn window_ms() -> i64 {
    i64::try_from(WINDOW.as_millis()).unwrap_or(i64::MAX)
}

impl Ledger {
    /// The failures of `key` that are still remembered at `now_ms`.
    fn recent(&self, key: u64, now_ms: i64) -> Option<Failures> {
        self.0
            .get(&key)
            .copied()
            .filter(|f| now_ms - f.last_ms < window_ms())
    }

    fn record(&mut self, key: u64, now_ms: i64) {
        let count = self.recent(key, now_ms).map_or(0, |f| f.count);
        if self.0.len() >= MAX_ENTRIES && !self.0.contains_key(&key) {
            tracing::warn!("login failure table full: a key is not tracked");
            return;
        }
        self.0.insert(
            key,
            Failures {
                count: count.saturating_add(1),
                last_ms: now_ms,
            },
        );
    }

    fn prune(&mut self, now_ms: i64) {
        self.0.retain(|_, f| now_ms - f.last_ms < window_ms());
        self.0.shrink_to(self.0.len() * 2);
    }
}

/// 0 below `free` failures, then 1 s, 2 s, 4 s, … up to `max`.
fn backoff(failures: u32, free: u32, max: Duration) -> Duration {
    match failures.checked_sub(free) {
        None => Duration::ZERO,
        Some(over) => Duration::from_secs(1u64 << over.min(30)).min(max),
    }
}

impl LoginLimiter {
    /// At most `per_ip` attempts a minute from one address; `per_account` failures of one
    /// account before failing addresses are slowed on it.
    pub fn new(per_ip: u32, per_account: u32) -> Self {
        let per_minute = NonZeroU32::new(per_ip.max(1)).unwrap_or(NonZeroU32::MIN);
        Self {
            attempts: RateLimiter::keyed(Quota::per_minute(per_minute)),
            clock: DefaultClock::default(),
            account_free_failures: per_account.max(1),
            hasher: RandomState::new(),
            state: Mutex::new(Ledgers::default()),
        }
    }

    /// The address key: IPv4 as is, IPv6 by its /64 (one subscriber's usual allocation).
    fn address_key(&self, ip: IpAddr) -> u64 {
        match ip {
            IpAddr::V4(v4) => self.hasher.hash_one((4u8, v4)),
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.hasher.hash_one((4u8, v4)),
                None => self.hasher.hash_one((6u8, u128::from(v6) >> 64)),
            },
        }
    }

    fn account_key(&self, account: &str) -> u64 {
        self.hasher.hash_one(account)
    }

    /// Counts an attempt at `now_ms` (Unix milliseconds); `Err` says how long to wait first.
    pub fn check(&self, ip: IpAddr, account: &str, now_ms: i64) -> Result<(), Duration> {
        let address = self.address_key(ip);
        let wait = {
            let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            match state.addresses.recent(address, now_ms) {
                // A clean address is never held back by the account's failures.
                None => Duration::ZERO,
                Some(own) => {
                    let account_failures = state
                        .accounts
                        .recent(self.account_key(account), now_ms)
                        .map_or(0, |f| f.count);
                    let delay =
                        backoff(own.count, ADDRESS_FREE_FAILURES, ADDRESS_MAX_DELAY).max(backoff(
                            account_failures,
                            self.account_free_failures,
                            ACCOUNT_MAX_DELAY,
                        ));
                    let until = own
                        .last_ms
                        .saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
                    Duration::from_millis(u64::try_from(until - now_ms).unwrap_or(0))
                }
            }
        };
        if !wait.is_zero() {
            return Err(wait);
        }
        let now = self.clock.now();
        self.attempts
            .check_key(&address)
            .map_err(|not_until| not_until.wait_time_from(now))
    }

    /// Records a wrong password (or unknown account) from `ip` for `account`.
    pub fn record_failure(&self, ip: IpAddr, account: &str, now_ms: i64) {
        let (address, account) = (self.address_key(ip), self.account_key(account));
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let full = state.addresses.0.len() >= MAX_ENTRIES || state.accounts.0.len() >= MAX_ENTRIES;
        let since = now_ms - state.pruned_at_ms;
        // Pruning walks the tables: at most once a second however full they are.
        if since >= window_ms() || (full && since >= 1_000) {
            state.addresses.prune(now_ms);
            state.accounts.prune(now_ms);
            state.pruned_at_ms = now_ms;
            self.attempts.retain_recent();
            self.attempts.shrink_to_fit();
        }
        state.addresses.record(address, now_ms);
        state.accounts.record(account, now_ms);
    }

    /// Records a successful login from `ip`: the address is trusted again.
    pub fn record_success(&self, ip: IpAddr) {
        let address = self.address_key(ip);
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.addresses.0.remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, last))
    }

    #[test]
    fn failures_from_many_addresses_do_not_lock_the_owner_out() {
        let limiter = LoginLimiter::new(1_000, 10);
        for n in 0..50 {
            assert!(limiter.check(ip(n), "ada@example.com", 0).is_ok());
            limiter.record_failure(ip(n), "ada@example.com", 0);
        }
        assert!(
            limiter.check(ip(200), "ada@example.com", 0).is_ok(),
            "clean address"
        );
        let wait = limiter
            .check(ip(3), "ada@example.com", 1_000)
            .expect_err("a failing address is slowed on the account");
        assert!(wait <= ACCOUNT_MAX_DELAY);
        assert!(limiter
            .check(
                ip(3),
                "ada@example.com",
                ACCOUNT_MAX_DELAY.as_millis() as i64
            )
            .is_ok());
    }

    #[test]
    fn an_address_that_keeps_failing_waits_longer_each_time() {
        let limiter = LoginLimiter::new(1_000, 1_000);
        let mut now = 0;
        let mut waits = Vec::new();
        for n in 0..8 {
            let account = format!("user{n}@example.com");
            if let Err(wait) = limiter.check(ip(1), &account, now) {
                waits.push(wait);
                now += i64::try_from(wait.as_millis()).expect("small");
                assert!(limiter.check(ip(1), &account, now).is_ok());
            }
            limiter.record_failure(ip(1), &account, now);
        }
        let secs: Vec<u64> = waits.iter().map(Duration::as_secs).collect();
        assert_eq!(secs, [1, 2, 4]);
        assert!(limiter
            .check(ip(1), "x@example.com", now + window_ms())
            .is_ok());
        limiter.record_success(ip(1));
        assert!(limiter.check(ip(1), "x@example.com", now).is_ok());
    }

    #[test]
    fn the_tables_stay_bounded_and_forget() {
        let limiter = LoginLimiter::new(1_000, 10);
        for n in 0..(MAX_ENTRIES as u32 + 10) {
            let ip = IpAddr::V4(Ipv4Addr::from(n));
            limiter.record_failure(ip, &format!("u{n}@example.com"), 0);
        }
        {
            let state = limiter.state.lock().expect("lock");
            assert_eq!(state.addresses.0.len(), MAX_ENTRIES);
            assert_eq!(state.accounts.0.len(), MAX_ENTRIES);
        }
        limiter.record_failure(ip(1), "late@example.com", window_ms());
        let state = limiter.state.lock().expect("lock");
        assert_eq!(state.addresses.0.len(), 1, "forgotten after the window");
    }

    #[test]
    fn ipv6_addresses_count_per_64() {
        let limiter = LoginLimiter::new(1_000, 1_000);
        let a: IpAddr = "2001:db8::1".parse().expect("ip");
        let b: IpAddr = "2001:db8::2".parse().expect("ip");
        assert_eq!(limiter.address_key(a), limiter.address_key(b));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(limiter.address_key(mapped), limiter.address_key(ip(1)));
    }
}
