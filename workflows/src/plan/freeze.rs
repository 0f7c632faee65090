//! Freeze windows: times in which a plan's rollouts do not start — a recurring window (a cron
//! expression for its start, and how long it lasts: "Friday 18:00 for 62 hours") or fixed dates
//! ("2026-12-20 to 2027-01-02"). A rollout that starts inside one is refused, or waits for the
//! window's end, as the window says; an override (`rollout start --override-freeze REASON`) is
//! recorded with who and why.
//!
//! Evaluated by the workflow at its own start time, so a rollout started by a Temporal
//! Schedule, a webhook or the CLI is held to the same windows, and replay decides the same.

use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::duration_serde;

/// One freeze window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeWindow {
    /// Shown in refusals and status.
    pub name: String,
    /// A recurring window: when it starts (five-field cron, read in `timezone`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<String>,
    /// A recurring window: how long it lasts.
    #[serde(
        default,
        with = "duration_serde::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub duration: Option<Duration>,
    /// The IANA time zone `cron` is read in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// A fixed window: its start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<DateTime<Utc>>,
    /// A fixed window: its end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<DateTime<Utc>>,
    /// What a start inside it does.
    #[serde(default)]
    pub during: FreezeAction,
}

/// What a start inside a freeze window does.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FreezeAction {
    /// The rollout ends at once, failed, saying which window and until when.
    #[default]
    Refuse,
    /// The rollout waits (a durable timer) until the window ends, then runs.
    Wait,
}

/// Who overrode the freeze for a rollout, and why; set by the starter, not by plans.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FreezeOverride {
    /// Who.
    pub by: String,
    /// Why (required).
    pub reason: String,
}

/// The recurrence a window can be checked with no further than this far back: a longer
/// window would make every check walk a year of occurrences.
pub const MAX_WINDOW: Duration = Duration::from_secs(366 * 24 * 3600);

impl FreezeWindow {
    /// If `at` is inside this window, when the window ends.
    pub fn active_at(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        if let (Some(from), Some(until)) = (self.from, self.until) {
            return (from <= at && at < until).then_some(until);
        }
        let (cron, duration) = (self.cron.as_deref()?, self.duration?);
        let cron = croner::Cron::from_str(cron).ok()?;
        let tz: chrono_tz::Tz = self.timezone.as_deref().unwrap_or("UTC").parse().ok()?;
        let length = chrono::Duration::from_std(duration).ok()?;
        // Occurrences that started within `duration` before `at` cover it; the latest end wins.
        let mut from = (at - length).with_timezone(&tz);
        let mut end = None;
        for _ in 0..10_000 {
            let Ok(start) = cron.find_next_occurrence(&from, true) else {
                break;
            };
            let start = start.with_timezone(&Utc);
            if start > at {
                break;
            }
            end = Some(start + length);
            from = (start + chrono::Duration::minutes(1)).with_timezone(&tz);
        }
        end.filter(|e| *e > at)
    }

    /// What is wrong with this window, if anything (for the parser, which has positions).
    pub fn problem(&self) -> Option<String> {
        match (&self.cron, self.duration, self.from, self.until) {
            (Some(cron), Some(d), None, None) => {
                if let Err(e) = croner::Cron::from_str(cron) {
                    return Some(format!("`{cron}` is not a cron expression: {e}"));
                }
                if let Some(tz) = &self.timezone
                    && tz.parse::<chrono_tz::Tz>().is_err()
                {
                    return Some(format!("`{tz}` is not an IANA time zone"));
                }
                (d.is_zero() || d > MAX_WINDOW)
                    .then(|| "a window lasts more than 0s and at most 366 days".to_owned())
            }
            (None, None, Some(from), Some(until)) => (from >= until)
                .then(|| "`from` must be before `until`".to_owned())
                .or_else(|| {
                    self.timezone.is_some().then(|| {
                        "`timezone` applies to `cron` windows; dates carry their offset".to_owned()
                    })
                }),
            _ => Some(
                "a window is `cron` with `duration` (recurring), or `from` with `until` (dates)"
                    .to_owned(),
            ),
        }
    }
}

/// The first window of `windows` that `at` is inside, with its end.
pub fn active(
    windows: &[FreezeWindow],
    at: DateTime<Utc>,
) -> Option<(&FreezeWindow, DateTime<Utc>)> {
    windows
        .iter()
        .find_map(|w| w.active_at(at).map(|end| (w, end)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a time")
            .with_timezone(&Utc)
    }

    fn weekend(timezone: Option<&str>) -> FreezeWindow {
        FreezeWindow {
            name: "weekend".into(),
            cron: Some("0 18 * * 5".into()),
            duration: Some(Duration::from_secs(62 * 3600)),
            timezone: timezone.map(Into::into),
            from: None,
            until: None,
            during: FreezeAction::Refuse,
        }
    }

    #[test]
    fn a_recurring_window_covers_its_duration_from_each_start() {
        let w = weekend(None);
        // 2026-12-04 is a Friday.
        assert_eq!(w.active_at(at("2026-12-04T17:59:00Z")), None);
        assert_eq!(
            w.active_at(at("2026-12-04T18:00:00Z")),
            Some(at("2026-12-07T08:00:00Z"))
        );
        assert_eq!(
            w.active_at(at("2026-12-06T23:00:00Z")),
            Some(at("2026-12-07T08:00:00Z"))
        );
        assert_eq!(w.active_at(at("2026-12-07T08:00:00Z")), None);
        assert_eq!(w.active_at(at("2026-12-09T12:00:00Z")), None);
        assert_eq!(w.problem(), None);
    }

    #[test]
    fn a_recurring_window_is_read_in_its_time_zone() {
        let w = weekend(Some("Europe/Berlin"));
        // 18:00 in Berlin is 17:00 UTC in December.
        assert_eq!(
            w.active_at(at("2026-12-04T17:30:00Z")),
            Some(at("2026-12-07T07:00:00Z"))
        );
    }

    #[test]
    fn fixed_dates_cover_from_to_until() {
        let w = FreezeWindow {
            name: "holidays".into(),
            cron: None,
            duration: None,
            timezone: None,
            from: Some(at("2026-12-20T00:00:00Z")),
            until: Some(at("2027-01-02T00:00:00Z")),
            during: FreezeAction::Wait,
        };
        assert_eq!(w.active_at(at("2026-12-19T23:59:59Z")), None);
        assert_eq!(
            active(std::slice::from_ref(&w), at("2026-12-24T12:00:00Z")).map(|(_, e)| e),
            Some(at("2027-01-02T00:00:00Z"))
        );
        assert_eq!(w.active_at(at("2027-01-02T00:00:00Z")), None);
    }

    #[test]
    fn bad_windows_say_what_is_wrong() {
        let mut w = weekend(None);
        w.cron = Some("every friday".into());
        assert!(
            w.problem()
                .is_some_and(|p| p.contains("not a cron expression"))
        );
        let mut w = weekend(Some("Mars/Olympus"));
        assert!(w.problem().is_some_and(|p| p.contains("IANA")));
        w.timezone = None;
        w.duration = None;
        assert!(
            w.problem()
                .is_some_and(|p| p.contains("`cron` with `duration`"))
        );
    }
}
