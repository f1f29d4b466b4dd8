//! Instants as the domain sees them: always UTC, always given, never read from a clock here.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};

/// A point in time (UTC), serialized as RFC 3339.
///
/// Aggregates never call `Utc::now()`: commands carry the instant, so tests control time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(DateTime<Utc>);

impl Timestamp {
    /// Wraps a chrono instant.
    pub fn new(at: DateTime<Utc>) -> Self {
        Self(at)
    }

    /// The instant `seconds` after the Unix epoch, as Meta sends them; `None` when out of range.
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        Utc.timestamp_opt(seconds, 0).single().map(Self)
    }

    /// The instant `millis` milliseconds after the Unix epoch; `None` when out of range.
    pub fn from_unix_millis(millis: i64) -> Option<Self> {
        Utc.timestamp_millis_opt(millis).single().map(Self)
    }

    /// Milliseconds since the Unix epoch: the form read models store.
    pub fn unix_millis(self) -> i64 {
        self.0.timestamp_millis()
    }

    /// This instant plus a whole number of seconds, saturating at the ends of time (chrono's
    /// range, ±262,000 years) instead of panicking on any `i64` a client may send.
    pub fn plus_seconds(self, seconds: i64) -> Self {
        chrono::Duration::try_seconds(seconds)
            .and_then(|delta| self.0.checked_add_signed(delta))
            .map_or_else(
                || {
                    Self(if seconds < 0 {
                        DateTime::<Utc>::MIN_UTC
                    } else {
                        DateTime::<Utc>::MAX_UTC
                    })
                },
                Self,
            )
    }

    /// The chrono value, for formatting and arithmetic at the edges.
    pub fn as_datetime(self) -> DateTime<Utc> {
        self.0
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}",
            self.0.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
        )
    }
}

impl From<DateTime<Utc>> for Timestamp {
    fn from(at: DateTime<Utc>) -> Self {
        Self(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adding_any_number_of_seconds_saturates_instead_of_panicking() {
        let now = Timestamp::from_unix_seconds(1_780_000_000).expect("valid");
        for seconds in [i64::MAX, i64::MAX / 1000 + 1, 1 << 43] {
            assert_eq!(
                now.plus_seconds(seconds).as_datetime(),
                DateTime::<Utc>::MAX_UTC
            );
        }
        for seconds in [i64::MIN, -(1 << 43)] {
            assert_eq!(
                now.plus_seconds(seconds).as_datetime(),
                DateTime::<Utc>::MIN_UTC
            );
        }
        assert_eq!(
            now.plus_seconds(60).unix_millis(),
            now.unix_millis() + 60_000
        );
        assert_eq!(
            now.plus_seconds(-60).unix_millis(),
            now.unix_millis() - 60_000
        );
    }
}
