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

    /// This instant plus a whole number of seconds (saturating at the end of time).
    pub fn plus_seconds(self, seconds: i64) -> Self {
        self.0
            .checked_add_signed(chrono::Duration::seconds(seconds))
            .map_or(self, Self)
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
