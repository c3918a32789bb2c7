//! The plan's calendar: reporting months, deadlines, the expected-progress schedule and the
//! lagging rule (DESIGN.md §2, §4a). Pure: `now` is always a parameter, never the wall clock.

use crate::core::plan::{Plan, ScheduleKind};
use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Weekday};
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

/// A month's text kept from one row to the next: a roster's rows come a return at a time, so
/// one month follows itself for hundreds of rows and is formatted once per run, not per row.
#[derive(Debug, Default)]
pub struct KeptMonthText(Option<(YearMonth, String)>);

impl KeptMonthText {
    /// `month`'s text, made by `text` unless it is the last month asked for.
    pub fn of(&mut self, month: YearMonth, text: impl FnOnce(YearMonth) -> String) -> String {
        match &self.0 {
            Some((m, kept)) if *m == month => kept.clone(),
            _ => {
                let made = text(month);
                self.0 = Some((month, made.clone()));
                made
            }
        }
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

/// One skipped date or an inclusive span of dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct DateSpan {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl TryFrom<String> for DateSpan {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || {
            format!(
                "{s:?} is not a date; write \"2020-10-01\" or a span \"2020-10-01..2020-10-08\""
            )
        };
        let date = |x: &str| NaiveDate::parse_from_str(x.trim(), "%Y-%m-%d").map_err(|_| bad());
        let (first, last) = match s.split_once("..") {
            Some((a, b)) => (date(a)?, date(b)?),
            None => (date(&s)?, date(&s)?),
        };
        if last < first {
            return Err(format!("{s:?}: the span ends before it begins"));
        }
        Ok(DateSpan { first, last })
    }
}

impl DateSpan {
    pub fn contains(&self, d: NaiveDate) -> bool {
        self.first <= d && d <= self.last
    }
}

/// Rest days and working days (`[plan.calendar]`): weekends, public holidays, and the
/// adjusted working days (调休) that fall on a weekend.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkCalendar {
    /// Public holidays: a date or an inclusive span of dates ("2020-10-01..2020-10-08").
    #[serde(default)]
    pub holidays: Vec<DateSpan>,
    /// Adjusted working days (调休): days of the weekend on which offices work.
    #[serde(default)]
    pub workdays: Vec<DateSpan>,
    /// The days of the week that are rest days; Saturday and Sunday unless given.
    #[serde(default = "default_weekend")]
    pub weekend: Vec<Weekday>,
}

fn default_weekend() -> Vec<Weekday> {
    vec![Weekday::Sat, Weekday::Sun]
}

impl WorkCalendar {
    /// Whether offices work on `d`: an adjusted working day always; a holiday never; else
    /// any day outside the weekend.
    pub fn is_working_day(&self, d: NaiveDate) -> bool {
        if self.workdays.iter().any(|s| s.contains(d)) {
            return true;
        }
        !self.holidays.iter().any(|s| s.contains(d)) && !self.weekend.contains(&d.weekday())
    }

    /// `d` itself when it is a working day, else the next working day (at most a year on).
    pub fn on_or_after(&self, d: NaiveDate) -> NaiveDate {
        let mut day = d;
        for _ in 0..366 {
            if self.is_working_day(day) {
                return day;
            }
            day = day.succ_opt().unwrap_or(day);
        }
        d
    }
}

/// The last day on which month `m`'s return is on time: day D of month M+1, moved to the next
/// working day of `[plan.calendar]` when it is a rest day (unmoved without a calendar).
pub fn deadline_date(plan: &Plan, m: YearMonth) -> NaiveDate {
    let nominal = m.next().first_day() + chrono::Days::new(u64::from(plan.deadline_day) - 1);
    match &plan.calendar {
        Some(c) => c.on_or_after(nominal),
        None => nominal,
    }
}

/// The first instant at which month `m`'s return is late: the start of the day after its
/// deadline.
pub fn late_from(plan: &Plan, m: YearMonth) -> DateTime<Tz> {
    start_of_day(plan.tz, deadline_date(plan, m) + chrono::Days::new(1))
}

/// Calendar days a return received at `received` is late for month `m` (0: on time). Counted
/// from the (moved) deadline day to the day of receipt in the plan's time zone: received the
/// day after the deadline is late by 1.
pub fn days_late(plan: &Plan, m: YearMonth, received: DateTime<Tz>) -> u32 {
    let day = received.with_timezone(&plan.tz).date_naive();
    let late = (day - deadline_date(plan, m)).num_days();
    u32::try_from(late.max(0)).unwrap_or(u32::MAX)
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

/// A recorded instant ([`stamp`]) as people read it: `2020-07-01 09:00`.
pub fn show_stamp(stamp: &str) -> String {
    let s = stamp.replace('T', " ");
    s.get(..16).unwrap_or(&s).to_string()
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

    /// A month's text is made once per run of that month, and a new month gets its own.
    #[test]
    fn a_kept_month_text_is_made_once_per_run() {
        let (may, june) = (
            YearMonth::new(2020, 5).unwrap(),
            YearMonth::new(2020, 6).unwrap(),
        );
        let mut kept = KeptMonthText::default();
        let mut made = 0;
        let mut text = |m: YearMonth| {
            made += 1;
            m.label_zh()
        };
        let got: Vec<String> = [may, may, june, june, may]
            .into_iter()
            .map(|m| kept.of(m, &mut text))
            .collect();
        assert_eq!(
            got,
            [
                "2020年5月",
                "2020年5月",
                "2020年6月",
                "2020年6月",
                "2020年5月"
            ]
        );
        assert_eq!(made, 3);
    }

    fn reference() -> Plan {
        crate::core::plan::reference()
    }

    fn at(s: &str) -> DateTime<Tz> {
        parse_now(s, chrono_tz::Asia::Shanghai).unwrap()
    }

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn ym(s: &str) -> YearMonth {
        YearMonth::parse(s).unwrap()
    }

    #[test]
    fn deadlines_on_rest_days_move_to_the_next_working_day_of_2020() {
        let c = reference();
        // The examples, from the State Council's 2020 calendar.
        for (month, due) in [
            ("2020-03", "2020-04-07"), // 5 April: Sunday, 清明 4–6 April
            ("2020-04", "2020-05-06"), // 5 May: 劳动节 1–5 May
            ("2020-06", "2020-07-06"), // 5 July: Sunday
            ("2020-09", "2020-10-09"), // 5 October: 国庆 1–8 October
            ("2020-01", "2020-02-05"), // a Wednesday after the extended Spring Festival
            ("2020-05", "2020-06-05"), // a Friday: unmoved
            ("2020-12", "2021-01-05"), // a Tuesday
        ] {
            assert_eq!(deadline_date(&c, ym(month)), date(due), "{month}");
        }
        assert_eq!(late_from(&c, ym("2020-03")), at("2020-04-08"));
    }

    #[test]
    fn adjusted_working_days_count_and_holidays_do_not() {
        let cal = reference().calendar.unwrap();
        assert!(
            cal.is_working_day(date("2020-01-19")),
            "Sunday 19 Jan is 调休"
        );
        assert!(
            cal.is_working_day(date("2020-10-10")),
            "Saturday 10 Oct is 调休"
        );
        assert!(
            !cal.is_working_day(date("2020-02-01")),
            "1 Feb became a rest day"
        );
        assert!(!cal.is_working_day(date("2020-10-05")), "国庆");
        assert!(!cal.is_working_day(date("2020-07-05")), "a Sunday");
        assert!(cal.is_working_day(date("2020-07-06")));
        // A deadline on an adjusted working day stays: day 10 of October 2020 is a Saturday.
        let mut c = reference();
        c.deadline_day = 10;
        assert_eq!(deadline_date(&c, ym("2020-09")), date("2020-10-10"));
    }

    #[test]
    fn without_a_calendar_deadlines_are_never_moved() {
        let mut c = reference();
        c.calendar = None;
        assert_eq!(deadline_date(&c, ym("2020-06")), date("2020-07-05"));
        assert_eq!(deadline_date(&c, ym("2020-09")), date("2020-10-05"));
    }

    #[test]
    fn days_late_count_calendar_days_from_the_moved_deadline() {
        let c = reference();
        let june = ym("2020-06");
        assert_eq!(
            days_late(&c, june, at("2020-07-06T23:59:59")),
            0,
            "the deadline day"
        );
        assert_eq!(
            days_late(&c, june, at("2020-07-07T00:00:00")),
            1,
            "the day after"
        );
        assert_eq!(days_late(&c, june, at("2020-07-09T09:00:00")), 3);
        assert_eq!(days_late(&c, june, at("2020-06-20T09:00:00")), 0, "early");
        // In the plan's time zone: 16:30 UTC on 6 July is already 7 July in Shanghai.
        assert_eq!(days_late(&c, june, at("2020-07-06T16:30:00Z")), 1);
    }

    #[test]
    fn weekend_days_are_configurable() {
        let cal: WorkCalendar =
            toml::from_str("weekend = [\"friday\", \"Sat\"]\nholidays = []").unwrap();
        assert_eq!(cal.weekend, [Weekday::Fri, Weekday::Sat]);
        assert!(!cal.is_working_day(date("2020-07-03")));
        assert!(cal.is_working_day(date("2020-07-05")));
        let cal: WorkCalendar = toml::from_str("").unwrap();
        assert_eq!(cal.weekend, [Weekday::Sat, Weekday::Sun]);
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
