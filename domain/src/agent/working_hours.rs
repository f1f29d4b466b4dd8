//! Working hours: outside them an agent may read but not write or take locks.

use chrono::{Datelike, NaiveTime, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// When an agent is on duty, in their own time zone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "WorkingHoursSpec", into = "WorkingHoursSpec")]
pub struct WorkingHours {
    days: Vec<Weekday>,
    start: NaiveTime,
    end: NaiveTime,
    timezone: Tz,
}

/// The wire form: `{"days": ["mon", …], "start": "09:00", "end": "17:30", "timezone": "Europe/Berlin"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkingHoursSpec {
    /// Days on duty (`mon` … `sun`).
    pub days: Vec<String>,
    /// Start of duty, `HH:MM`, local time.
    pub start: String,
    /// End of duty, `HH:MM`, local time; before `start` means the shift crosses midnight.
    pub end: String,
    /// IANA time zone, e.g. `America/New_York`.
    pub timezone: String,
}

/// Why a working-hours specification was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid working hours: {0}")]
pub struct WorkingHoursError(pub String);

impl TryFrom<WorkingHoursSpec> for WorkingHours {
    type Error = WorkingHoursError;

    fn try_from(spec: WorkingHoursSpec) -> Result<Self, Self::Error> {
        let time = |t: &str| {
            NaiveTime::parse_from_str(t, "%H:%M")
                .map_err(|_| WorkingHoursError(format!("{t:?} is not HH:MM")))
        };
        let mut days = Vec::with_capacity(spec.days.len());
        for day in &spec.days {
            let parsed: Weekday = day
                .parse()
                .map_err(|_| WorkingHoursError(format!("{day:?} is not a weekday")))?;
            if !days.contains(&parsed) {
                days.push(parsed);
            }
        }
        let timezone: Tz = spec.timezone.parse().map_err(|_| {
            WorkingHoursError(format!("{:?} is not an IANA time zone", spec.timezone))
        })?;
        Ok(Self {
            days,
            start: time(&spec.start)?,
            end: time(&spec.end)?,
            timezone,
        })
    }
}

impl From<WorkingHours> for WorkingHoursSpec {
    fn from(hours: WorkingHours) -> Self {
        let short = |d: &Weekday| d.to_string().to_lowercase();
        Self {
            days: hours.days.iter().map(short).collect(),
            start: hours.start.format("%H:%M").to_string(),
            end: hours.end.format("%H:%M").to_string(),
            timezone: hours.timezone.name().to_owned(),
        }
    }
}

impl WorkingHours {
    pub(crate) fn days(&self) -> &[Weekday] {
        &self.days
    }

    pub(crate) fn start(&self) -> NaiveTime {
        self.start
    }

    pub(crate) fn end(&self) -> NaiveTime {
        self.end
    }

    pub(crate) fn timezone(&self) -> Tz {
        self.timezone
    }

    /// Whether `at` falls within these hours (in their time zone). A shift that crosses midnight
    /// belongs to the day it starts on.
    pub fn contains(&self, at: Timestamp) -> bool {
        let local = at.as_datetime().with_timezone(&self.timezone);
        let time = local.time();
        let day = local.weekday();
        if self.start <= self.end {
            self.days.contains(&day) && time >= self.start && time < self.end
        } else {
            (self.days.contains(&day) && time >= self.start)
                || (self.days.contains(&day.pred()) && time < self.end)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Hours from their wire form (shared with the business-time tests).
    pub(crate) fn hours(days: &[&str], start: &str, end: &str, tz: &str) -> WorkingHours {
        WorkingHours::try_from(WorkingHoursSpec {
            days: days.iter().map(|d| (*d).to_owned()).collect(),
            start: start.into(),
            end: end.into(),
            timezone: tz.into(),
        })
        .expect("valid")
    }

    pub(crate) fn at(rfc3339: &str) -> Timestamp {
        Timestamp::new(
            chrono::DateTime::parse_from_rfc3339(rfc3339)
                .expect("time")
                .into(),
        )
    }

    #[test]
    fn hours_are_judged_in_the_agents_time_zone() {
        // 09:00-17:00 in New York (UTC-4 in summer): 12:30 UTC is 08:30 there.
        let ny = hours(
            &["mon", "tue", "wed", "thu", "fri"],
            "09:00",
            "17:00",
            "America/New_York",
        );
        assert!(
            !ny.contains(at("2026-06-01T12:30:00Z")),
            "before 09:00 local"
        );
        assert!(ny.contains(at("2026-06-01T13:30:00Z")), "09:30 local");
        assert!(
            !ny.contains(at("2026-06-01T21:00:00Z")),
            "17:00 local is the end"
        );
        assert!(!ny.contains(at("2026-06-06T15:00:00Z")), "Saturday");
    }

    #[test]
    fn a_night_shift_crosses_midnight() {
        let night = hours(&["mon"], "22:00", "06:00", "UTC");
        assert!(night.contains(at("2026-06-01T23:00:00Z")), "Monday 23:00");
        assert!(
            night.contains(at("2026-06-02T05:00:00Z")),
            "Tuesday 05:00, Monday's shift"
        );
        assert!(!night.contains(at("2026-06-02T23:00:00Z")), "Tuesday 23:00");
    }

    #[test]
    fn bad_specifications_are_refused() {
        for (days, start, end, tz) in [
            (vec!["funday"], "09:00", "17:00", "UTC"),
            (vec!["mon"], "9am", "17:00", "UTC"),
            (vec!["mon"], "09:00", "17:00", "Mars/Olympus"),
        ] {
            let spec = WorkingHoursSpec {
                days: days.into_iter().map(str::to_owned).collect(),
                start: start.into(),
                end: end.into(),
                timezone: tz.into(),
            };
            assert!(WorkingHours::try_from(spec).is_err());
        }
    }
}
