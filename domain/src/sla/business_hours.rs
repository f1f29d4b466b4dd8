//! Time counted in business hours: how much of a stretch falls within them, and when a
//! duration of business time after an instant runs out. SLA due times and analytics measured
//! "in business hours" both use these, so the two agree by construction.
//!
//! Hand-written rather than taken from a crate: the business-time crates on crates.io model a
//! fixed weekly calendar in one offset; ours follow [`WorkingHours`] (IANA time zone with its
//! daylight-saving changes, shifts that cross midnight), which is one loop over local days.

use chrono::{Datelike, Days, LocalResult, NaiveDate, NaiveDateTime, TimeZone};

use crate::agent::WorkingHours;
use crate::Timestamp;

/// The longest stretch of days looked through for a due time (ten years): hours with no day
/// in them never make anything due.
const MAX_DAYS: u64 = 3_660;

impl WorkingHours {
    /// The UTC milliseconds `[start, end)` of the shift that begins on the local day `date`,
    /// if that weekday is a working day.
    fn shift_on(&self, date: NaiveDate) -> Option<(i64, i64)> {
        if !self.days().contains(&date.weekday()) {
            return None;
        }
        let end_date = if self.end() <= self.start() {
            date.checked_add_days(Days::new(1))?
        } else {
            date
        };
        let start = self.utc_millis(date.and_time(self.start()))?;
        let end = self.utc_millis(end_date.and_time(self.end()))?;
        (end > start).then_some((start, end))
    }

    /// A local wall-clock time as UTC milliseconds: the earlier of two in a repeated hour; a
    /// time skipped by a clock change moves to the hour after.
    fn utc_millis(&self, local: NaiveDateTime) -> Option<i64> {
        let zone = self.timezone();
        match zone.from_local_datetime(&local) {
            LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.timestamp_millis()),
            LocalResult::None => match zone
                .from_local_datetime(&(local + chrono::Duration::hours(1)))
            {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.timestamp_millis()),
                LocalResult::None => None,
            },
        }
    }

    /// The local day `at` falls on, one day earlier (a shift crossing midnight may have begun
    /// the day before).
    fn first_day_for(&self, at: Timestamp) -> NaiveDate {
        let local = at
            .as_datetime()
            .with_timezone(&self.timezone())
            .date_naive();
        local.pred_opt().unwrap_or(local)
    }

    /// Milliseconds of `[from, to)` within these hours.
    pub fn business_millis(&self, from: Timestamp, to: Timestamp) -> i64 {
        let (from, to_ms) = (from.unix_millis(), to.unix_millis());
        if to_ms <= from {
            return 0;
        }
        let mut total = 0;
        let mut day = self.first_day_for(Timestamp::from_unix_millis(from).unwrap_or(to));
        let last = to
            .as_datetime()
            .with_timezone(&self.timezone())
            .date_naive();
        while day <= last {
            if let Some((start, end)) = self.shift_on(day) {
                total += (end.min(to_ms) - start.max(from)).max(0);
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        total
    }

    /// The instant at which `millis` of business time after `from` have passed; `None` when
    /// the hours hold no time within ten years.
    pub fn after_business_millis(&self, from: Timestamp, millis: i64) -> Option<Timestamp> {
        let mut left = millis.max(0);
        let start_ms = from.unix_millis();
        let mut day = self.first_day_for(from);
        for _ in 0..MAX_DAYS {
            if let Some((start, end)) = self.shift_on(day) {
                let begin = start.max(start_ms);
                if end > begin {
                    if left <= end - begin {
                        return Timestamp::from_unix_millis(begin + left);
                    }
                    left -= end - begin;
                }
            }
            day = day.succ_opt()?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use crate::agent::working_hours::tests::{at, hours};

    const WEEKDAYS: [&str; 5] = ["mon", "tue", "wed", "thu", "fri"];

    #[test]
    fn only_time_within_the_hours_counts() {
        // 09:00–17:00 in Madrid (UTC+2 in June). Friday 16:00 local to Monday 10:00 local:
        // one hour on Friday, one on Monday.
        let madrid = hours(&WEEKDAYS, "09:00", "17:00", "Europe/Madrid");
        let friday = at("2026-06-05T14:00:00Z");
        let monday = at("2026-06-08T08:00:00Z");
        assert_eq!(madrid.business_millis(friday, monday), 2 * 3_600_000);
        assert_eq!(madrid.business_millis(monday, friday), 0);
        // Two business hours after Friday 16:00 local is Monday 10:00 local.
        assert_eq!(
            madrid.after_business_millis(friday, 2 * 3_600_000),
            Some(monday)
        );
        // Counting from outside the hours starts at the next opening.
        let saturday = at("2026-06-06T10:00:00Z");
        assert_eq!(
            madrid.after_business_millis(saturday, 30 * 60_000),
            Some(at("2026-06-08T07:30:00Z"))
        );
    }

    #[test]
    fn a_night_shift_and_a_clock_change_count_their_real_length() {
        let night = hours(&["sat"], "22:00", "06:00", "UTC");
        assert_eq!(
            night.business_millis(at("2026-06-06T00:00:00Z"), at("2026-06-08T00:00:00Z")),
            8 * 3_600_000
        );
        // Berlin, 2026-03-29: clocks go from 02:00 to 03:00. 00:00–06:00 local lasts 5 hours.
        let berlin = hours(&["sun"], "00:00", "06:00", "Europe/Berlin");
        assert_eq!(
            berlin.business_millis(at("2026-03-28T00:00:00Z"), at("2026-03-30T00:00:00Z")),
            5 * 3_600_000
        );
    }

    #[test]
    fn hours_without_days_make_nothing_due() {
        let never = hours(&[], "09:00", "17:00", "UTC");
        assert_eq!(
            never.after_business_millis(at("2026-06-05T14:00:00Z"), 1),
            None
        );
        assert_eq!(
            never.business_millis(at("2026-06-05T14:00:00Z"), at("2026-06-09T14:00:00Z")),
            0
        );
    }
}
