//! Analytics queries over the read models (issue #21): who answered how fast, how much went in
//! and out, in the time zone the supervisor works in. They read `responses`,
//! `response_waits`, `messages` and `conversations`, which projections build and `verify`
//! checks; nothing here writes.

pub mod agents;
pub mod volume;

use chrono::{DateTime, TimeZone, Timelike, Utc};
pub use chrono_tz::Tz;
use switchboard_domain::agent::WorkingHours;
use switchboard_domain::Timestamp;

/// Restricts analytics to some conversations; every criterion given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Conversations assigned to this group.
    pub group: Option<String>,
    /// Replies of this agent; conversations assigned to them.
    pub agent: Option<String>,
    /// Conversations on this business number.
    pub phone_number_id: Option<String>,
}

/// `and` conditions for [`Filter`] on a conversation alias `c` (`$n` numbered from `first`),
/// and the agent column to compare (`agent_column`).
pub(crate) fn filter_sql(first: usize, agent_column: &str) -> String {
    format!(
        " and (cast(${g} as text) is null or c.assigned_group_id = ${g})
          and (cast(${a} as text) is null or {agent_column} = ${a})
          and (cast(${p} as text) is null or c.phone_number_id = ${p})",
        g = first,
        a = first + 1,
        p = first + 2,
    )
}

/// How long `[from, to)` (Unix milliseconds) counts: all of it, or its time within `hours`.
pub(crate) fn measured(hours: Option<&WorkingHours>, from: i64, to: i64) -> i64 {
    match (
        hours,
        Timestamp::from_unix_millis(from),
        Timestamp::from_unix_millis(to),
    ) {
        (Some(hours), Some(from), Some(to)) => hours.business_millis(from, to),
        _ => (to - from).max(0),
    }
}

/// The width of a time bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// A local hour.
    Hour,
    /// A local calendar day.
    Day,
}

/// The start of the local `bucket` holding `millis`, in `zone`, as a date-time there.
pub fn bucket_start(millis: i64, bucket: Bucket, zone: Tz) -> Option<DateTime<Tz>> {
    let local = DateTime::<Utc>::from_timestamp_millis(millis)?.with_timezone(&zone);
    let start = match bucket {
        Bucket::Hour => local.date_naive().and_hms_opt(local.hour(), 0, 0)?,
        Bucket::Day => local.date_naive().and_hms_opt(0, 0, 0)?,
    };
    // A start skipped by a clock change (rare: midnight in a few zones) is the bucket's first
    // real instant, the local time itself.
    zone.from_local_datetime(&start).earliest().or(Some(local))
}

/// A local date-time as RFC 3339 with its offset (`2026-05-28T22:00:00+02:00`).
pub fn local_rfc3339(at: &DateTime<Tz>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// Milliseconds per slot that queries group by before bucketing: every time zone's offset is
/// a multiple of 15 minutes, so each slot lies within one local hour.
pub(crate) const SLOT_MS: i64 = 15 * 60_000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_follow_the_local_clock() {
        let madrid: Tz = "Europe/Madrid".parse().expect("zone");
        // 2026-05-28T22:30:00Z is 00:30 on the 29th in Madrid (UTC+2).
        let at = 1_780_007_400_000;
        let day = bucket_start(at, Bucket::Day, madrid).expect("day");
        assert_eq!(local_rfc3339(&day), "2026-05-29T00:00:00+02:00");
        let hour = bucket_start(at, Bucket::Hour, madrid).expect("hour");
        assert_eq!(local_rfc3339(&hour), "2026-05-29T00:00:00+02:00");
        let kolkata: Tz = "Asia/Kolkata".parse().expect("zone");
        let hour = bucket_start(at, Bucket::Hour, kolkata).expect("hour");
        assert_eq!(local_rfc3339(&hour), "2026-05-29T04:00:00+05:30");
    }
}
