//! The plan's calendar: reporting months, deadlines, the expected-progress schedule and the
//! lagging rule (DESIGN.md §2, §4a). Pure: `now` is always a parameter, never the wall clock.

use crate::core::plan::{Plan, ScheduleKind};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A calendar month, the reporting period of a return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct YearMonth {
    pub year: i32,
    pub month: u32,
}

impl YearMonth {
    pub fn new(year: i32, month: u32) -> Option<YearMonth> {
        ((1..=12).contains(&month) && (1000..=9999).contains(&year))
            .then_some(YearMonth { year, month })
    }

    /// Parse the canonical `YYYY-MM`.
    pub fn parse(s: &str) -> Option<YearMonth> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.is_empty() || m.len() > 2 {
            return None;
        }
        YearMonth::new(y.parse().ok()?, m.parse().ok()?)
    }

    pub fn of(date: NaiveDate) -> YearMonth {
        YearMonth {
            year: date.year(),
            month: date.month(),
        }
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("valid by construction")
    }

    pub fn next(self) -> YearMonth {
        if self.month == 12 {
            YearMonth {
                year: self.year + 1,
                month: 1,
            }
        } else {
            YearMonth {
                year: self.year,
                month: self.month + 1,
            }
        }
    }

    pub fn contains(self, date: NaiveDate) -> bool {
        YearMonth::of(date) == self
    }

    /// `2020年5月`, for workbooks and mail.
    pub fn label_zh(self) -> String {
        format!("{}年{}月", self.year, self.month)
    }

    /// The twelve months of a year.
    pub fn months_of(year: i32) -> impl Iterator<Item = YearMonth> {
        (1..=12).map(move |month| YearMonth { year, month })
    }
}

impl fmt::Display for YearMonth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl From<YearMonth> for String {
    fn from(ym: YearMonth) -> String {
        ym.to_string()
    }
}

impl TryFrom<String> for YearMonth {
    type Error = String;
    fn try_from(s: String) -> Result<YearMonth, String> {
        YearMonth::parse(&s).ok_or_else(|| format!("{s:?} is not a month YYYY-MM"))
    }
}

/// Local midnight at the start of `date` in `tz` (the earliest instant of that day).
pub fn start_of_day(tz: Tz, date: NaiveDate) -> DateTime<Tz> {
    let naive = date.and_hms_opt(0, 0, 0).expect("midnight exists");
    tz.from_local_datetime(&naive)
        .earliest()
        .unwrap_or_else(|| tz.from_utc_datetime(&naive))
}

/// The first instant at which month `m`'s return is late: the start of day D+1 of month M+1.
pub fn late_from(plan: &Plan, m: YearMonth) -> DateTime<Tz> {
    let due_day = m.next().first_day() + chrono::Days::new(u64::from(plan.deadline_day));
    start_of_day(plan.tz, due_day)
}

/// The last day on which month `m`'s return is on time.
pub fn deadline_date(plan: &Plan, m: YearMonth) -> NaiveDate {
    m.next().first_day() + chrono::Days::new(u64::from(plan.deadline_day) - 1)
}

/// Months of the plan year whose deadline has passed at `now`.
pub fn overdue_months(plan: &Plan, now: DateTime<Tz>) -> Vec<YearMonth> {
    YearMonth::months_of(plan.year)
        .filter(|m| now >= late_from(plan, *m))
        .collect()
}

/// The month that contains `now` in the plan's time zone.
pub fn current_month(now: DateTime<Tz>) -> YearMonth {
    YearMonth::of(now.date_naive())
}

/// Fraction of the yearly target expected to be done at `now`, in [0, 1].
pub fn expected_fraction(plan: &Plan, now: DateTime<Tz>) -> f64 {
    let year = plan.year;
    let start = start_of_day(plan.tz, NaiveDate::from_ymd_opt(year, 1, 1).expect("Jan 1"));
    let end = start_of_day(
        plan.tz,
        NaiveDate::from_ymd_opt(year + 1, 1, 1).expect("Jan 1"),
    );
    let secs = |a: DateTime<Tz>, b: DateTime<Tz>| (b - a).num_milliseconds() as f64 / 1000.0;
    let fraction = match plan.schedule {
        ScheduleKind::Linear => secs(start, now) / secs(start, end),
        ScheduleKind::Milestones => {
            // Piecewise linear through (1 Jan, 0) and (end of each milestone month, fraction).
            let mut points = vec![(start, 0.0)];
            for (month, f) in &plan.milestones {
                if let Some(m) = YearMonth::parse(month) {
                    points.push((start_of_day(plan.tz, m.next().first_day()), *f));
                }
            }
            let mut value = points.last().map_or(0.0, |p| p.1);
            for pair in points.windows(2) {
                let ((t0, f0), (t1, f1)) = (pair[0], pair[1]);
                if now < t1 {
                    let span = secs(t0, t1);
                    let x = if span > 0.0 {
                        secs(t0, now) / span
                    } else {
                        1.0
                    };
                    value = f0 + (f1 - f0) * x.clamp(0.0, 1.0);
                    break;
                }
            }
            if now < start { 0.0 } else { value }
        }
    };
    fraction.clamp(0.0, 1.0)
}

/// Whether `completed` lags behind `expected` beyond the plan's tolerance.
pub fn is_lagging(plan: &Plan, completed: u64, expected: f64) -> bool {
    (completed as f64) < expected * (1.0 - plan.tolerance)
}

/// An instant as tally records it: RFC 3339 to the second with the plan's offset
/// (`2020-07-01T09:00:00+08:00`), in the ledger, the master, mail and JSON alike.
pub fn stamp(t: DateTime<Tz>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
}

/// Parse a `--now` value: RFC 3339, or `YYYY-MM-DD` meaning local midnight in the plan's zone.
pub fn parse_now(s: &str, tz: Tz) -> Option<DateTime<Tz>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&tz));
    }
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Some(start_of_day(tz, d));
    }
    if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S") {
        return tz.from_local_datetime(&t).earliest();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference() -> Plan {
        crate::core::plan::reference()
    }

    fn at(s: &str) -> DateTime<Tz> {
        parse_now(s, chrono_tz::Asia::Shanghai).unwrap()
    }

    #[test]
    fn linear_schedule_on_1_july_2020_is_182_of_366() {
        let c = reference();
        let f = expected_fraction(&c, at("2020-07-01"));
        assert!((f - 182.0 / 366.0).abs() < 1e-12, "{f}");
        assert_eq!(expected_fraction(&c, at("2019-06-01")), 0.0);
        assert_eq!(expected_fraction(&c, at("2021-03-01")), 1.0);
        assert_eq!(expected_fraction(&c, at("2020-01-01")), 0.0);
    }

    #[test]
    fn rfc3339_now_is_taken_in_the_plan_zone() {
        let c = reference();
        // 2020-06-30T16:00Z is 2020-07-01 00:00 in Shanghai.
        let f = expected_fraction(&c, at("2020-06-30T16:00:00Z"));
        assert!((f - 182.0 / 366.0).abs() < 1e-12, "{f}");
    }

    #[test]
    fn milestones_interpolate_and_hold() {
        let mut c = reference();
        c.schedule = ScheduleKind::Milestones;
        c.milestones = [("2020-06".to_string(), 0.6), ("2020-12".to_string(), 1.0)].into();
        let f = expected_fraction(&c, at("2020-07-01"));
        assert!((f - 0.6).abs() < 1e-12, "{f}");
        let mid = expected_fraction(&c, at("2020-04-01"));
        assert!((mid - 0.6 * 91.0 / 182.0).abs() < 1e-9, "{mid}");
        assert_eq!(expected_fraction(&c, at("2021-01-02")), 1.0);
    }

    #[test]
    fn deadline_is_inclusive_of_day_d() {
        let c = reference();
        let may = YearMonth::parse("2020-05").unwrap();
        assert_eq!(
            deadline_date(&c, may),
            NaiveDate::from_ymd_opt(2020, 6, 5).unwrap()
        );
        assert!(!overdue_months(&c, at("2020-06-05T23:59:59+08:00")).contains(&may));
        assert!(overdue_months(&c, at("2020-06-06")).contains(&may));
        let due = overdue_months(&c, at("2020-07-01"));
        assert_eq!(
            due.iter().map(|m| m.to_string()).collect::<Vec<_>>(),
            ["2020-01", "2020-02", "2020-03", "2020-04", "2020-05"]
        );
        assert_eq!(overdue_months(&c, at("2021-02-01")).len(), 12);
    }

    #[test]
    fn lagging_uses_tolerance() {
        let c = reference();
        assert!(is_lagging(&c, 30, 34.8));
        assert!(!is_lagging(&c, 32, 34.8)); // 34.8 × 0.9 = 31.32
        assert!(!is_lagging(&c, 0, 0.0));
    }

    #[test]
    fn year_month_parses_and_prints() {
        let m = YearMonth::parse("2020-5").unwrap();
        assert_eq!(m.to_string(), "2020-05");
        assert_eq!(m.label_zh(), "2020年5月");
        assert!(YearMonth::parse("2020-13").is_none());
        assert!(YearMonth::parse("20-05").is_none());
        assert_eq!(
            YearMonth::parse("2020-12").unwrap().next().to_string(),
            "2021-01"
        );
    }
}
