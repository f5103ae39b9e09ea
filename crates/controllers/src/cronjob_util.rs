//! Schedule arithmetic of CronJobs, free of I/O (pkg/controller/cronjob/utils.go
//! `mostRecentScheduleTime`, `nextScheduleTime`, `getJobName`): standard five-field cron
//! syntax and the `@hourly`-style macros through `croner`, evaluated in `spec.timeZone`
//! (IANA, via chrono-tz) or UTC.

use std::str::FromStr;

use chrono::{DateTime, Duration, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;

/// A parsed `spec.schedule` in its time zone.
#[derive(Debug)]
pub struct Schedule {
    cron: Cron,
    zone: Tz,
}

/// What the controller should do at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Due {
    /// The most recent schedule time not yet run, if any.
    pub scheduled: Option<DateTime<Utc>>,
    /// How many schedule times were missed since the last run (upstream warns past 100).
    pub missed: u32,
    /// The schedule time after `now`.
    pub next: Option<DateTime<Utc>>,
}

impl Schedule {
    /// Parses `schedule` for `time_zone` (UTC when unset), as upstream's
    /// `cron.ParseStandard` plus `time.LoadLocation`.
    pub fn parse(schedule: &str, time_zone: Option<&str>) -> Result<Schedule, String> {
        let zone = match time_zone {
            Some(name) => Tz::from_str(name).map_err(|_| format!("unknown time zone {name}"))?,
            None => Tz::UTC,
        };
        let cron = Cron::from_str(schedule.trim())
            .map_err(|e| format!("unparseable schedule: {schedule:?} : {e}"))?;
        Ok(Schedule { cron, zone })
    }

    /// The first schedule time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&self.zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|n| n.with_timezone(&Utc))
    }

    /// The schedule times in `(earliest, now]`: the latest and how many there were
    /// (counting stops at `limit`), plus the next time after `now`.
    pub fn due(&self, earliest: DateTime<Utc>, now: DateTime<Utc>, limit: u32) -> Due {
        let mut scheduled = None;
        let mut missed = 0;
        let mut cursor = earliest;
        while let Some(t) = self.next_after(cursor) {
            if t > now {
                break;
            }
            scheduled = Some(t);
            missed += 1;
            if missed >= limit {
                // Skip ahead: the latest time before now is all that matters.
                scheduled = self.latest_at_or_before(now).or(scheduled);
                break;
            }
            cursor = t;
        }
        Due {
            scheduled,
            missed,
            next: self.next_after(now),
        }
    }

    fn latest_at_or_before(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.zone);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|n| n.with_timezone(&Utc))
    }

    /// `t` in the schedule's zone as RFC 3339 (the `cronjob-scheduled-timestamp` annotation).
    pub fn format_in_zone(&self, t: DateTime<Utc>) -> String {
        self.zone
            .from_utc_datetime(&t.naive_utc())
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    }
}

/// The Job name for a schedule time: `<cronjob>-<minutes since the epoch>`.
pub fn job_name(cron_job: &str, scheduled: DateTime<Utc>) -> String {
    format!("{cron_job}-{}", scheduled.timestamp().div_euclid(60))
}

/// The earliest time to consider: the last schedule time (or creation), moved forward to
/// `now - startingDeadlineSeconds` when that is later.
pub fn earliest_time(
    last_schedule: Option<DateTime<Utc>>,
    created: DateTime<Utc>,
    starting_deadline_seconds: Option<i64>,
    now: DateTime<Utc>,
) -> DateTime<Utc> {
    let earliest = last_schedule.unwrap_or(created);
    match starting_deadline_seconds {
        Some(secs) => earliest.max(now - Duration::seconds(secs)),
        None => earliest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn quarter_hour_list_finds_the_latest_missed_time() {
        let s = Schedule::parse("0,15,30,45 * * * *", None).unwrap();
        let due = s.due(at("2024-05-01T10:01:00Z"), at("2024-05-01T10:47:10Z"), 100);
        assert_eq!(due.scheduled, Some(at("2024-05-01T10:45:00Z")));
        assert_eq!(due.missed, 3);
        assert_eq!(due.next, Some(at("2024-05-01T11:00:00Z")));
        let none = s.due(at("2024-05-01T10:45:00Z"), at("2024-05-01T10:50:00Z"), 100);
        assert_eq!(none.scheduled, None);
        assert_eq!(none.missed, 0);
    }

    #[test]
    fn macros_and_every_minute() {
        let hourly = Schedule::parse("@hourly", None).unwrap();
        assert_eq!(
            hourly.next_after(at("2024-05-01T10:00:00Z")),
            Some(at("2024-05-01T11:00:00Z"))
        );
        let daily = Schedule::parse("@daily", None).unwrap();
        assert_eq!(
            daily.next_after(at("2024-05-01T10:00:00Z")),
            Some(at("2024-05-02T00:00:00Z"))
        );
        let every = Schedule::parse("* * * * *", None).unwrap();
        assert_eq!(
            every.next_after(at("2024-05-01T10:00:30Z")),
            Some(at("2024-05-01T10:01:00Z"))
        );
        assert!(Schedule::parse("not a schedule", None).is_err());
        assert!(Schedule::parse("* * * * *", Some("Mars/Olympus")).is_err());
    }

    #[test]
    fn time_zone_shifts_the_schedule() {
        // 09:00 in New York during daylight saving time is 13:00 UTC.
        let s = Schedule::parse("0 9 * * *", Some("America/New_York")).unwrap();
        assert_eq!(
            s.next_after(at("2024-07-01T00:00:00Z")),
            Some(at("2024-07-01T13:00:00Z"))
        );
        assert_eq!(
            s.format_in_zone(at("2024-07-01T13:00:00Z")),
            "2024-07-01T09:00:00-04:00"
        );
    }

    #[test]
    fn too_many_missed_times_still_yields_the_latest() {
        let s = Schedule::parse("* * * * *", None).unwrap();
        let due = s.due(at("2024-05-01T00:00:00Z"), at("2024-05-01T10:00:30Z"), 100);
        assert_eq!(due.missed, 100);
        assert_eq!(due.scheduled, Some(at("2024-05-01T10:00:00Z")));
    }

    #[test]
    fn job_names_and_starting_deadline() {
        assert_eq!(
            job_name("hello", at("2024-05-01T10:45:00Z")),
            "hello-28576005"
        );
        let now = at("2024-05-01T10:00:00Z");
        let created = at("2024-05-01T08:00:00Z");
        assert_eq!(earliest_time(None, created, None, now), created);
        assert_eq!(
            earliest_time(None, created, Some(200), now),
            at("2024-05-01T09:56:40Z")
        );
    }
}
