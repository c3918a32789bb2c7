//! Reminder decisions (pure): schedule windows, quiet hours and skipped dates, the plan year
//! and its grace, who is due a 催办, 未报送提醒 or 周报, the leader copy after repeated
//! reminders, and the figures a reminder shows. Takes values, returns values: no ledger, no
//! clock, no mail.

use crate::core::calendar::{self, YearMonth};
use crate::core::count::UnitStatus;
use crate::core::plan::Plan;
use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Weekday,
};
use chrono_tz::Tz;
use serde::Deserialize;
use serde::Serialize;

/// How often a schedule's windows open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cadence {
    Weekly(Weekday),
    EveryDays(u32),
}

pub use crate::core::calendar::DateSpan;

/// One kind of scheduled mail: whether it is sent, how often its windows open and at what
/// local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cycle {
    pub enabled: bool,
    pub cadence: Cadence,
    pub time: NaiveTime,
}

/// When scheduled mail may go out (built by the mail edge from `[mail]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    /// Days after the plan year during which reminders go on.
    pub grace_days: u32,
    /// Days without scheduled mail.
    pub skip_dates: Vec<DateSpan>,
    /// A span of local time without scheduled mail.
    pub quiet_hours: Option<QuietHours>,
    /// 催办 to lagging units.
    pub reminders: Cycle,
    /// 未报送提醒 daily on this many last days up to a deadline (0: none).
    pub deadline_days: u32,
    /// 周报 to the bureau.
    pub digest: Cycle,
}

/// A span of local time during which no scheduled mail is sent; may run past midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct QuietHours {
    pub from: NaiveTime,
    pub to: NaiveTime,
}

impl TryFrom<String> for QuietHours {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        let bad = || format!("{s:?} is not a span of time; write it as \"20:00-08:00\"");
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let (from, to) = (
            parse_clock(a).map_err(|_| bad())?,
            parse_clock(b).map_err(|_| bad())?,
        );
        if from == to {
            return Err(format!(
                "{s:?}: the quiet hours start and end at the same time"
            ));
        }
        Ok(QuietHours { from, to })
    }
}

impl QuietHours {
    pub fn contains(&self, t: NaiveTime) -> bool {
        if self.from < self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }
}

/// A local time of day written "HH:MM" (or "HH:MM:SS").
pub fn parse_clock(s: &str) -> Result<NaiveTime, String> {
    let t = s.trim();
    NaiveTime::parse_from_str(t, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(t, "%H:%M:%S"))
        .map_err(|_| format!("{s:?} is not a time of day; write it as \"09:00\""))
}

/// One window of a schedule: from one scheduled instant to the next, in the plan's local
/// time. At most one reminder per unit (and one digest) per window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Window {
    pub start: NaiveDateTime,
    pub end: NaiveDateTime,
}

impl Window {
    /// Stable, sortable id: `2020-06-29T09:00`.
    pub fn id(&self) -> String {
        self.start.format("%Y-%m-%dT%H:%M").to_string()
    }
    /// `2020-06-29 09:00`, for people.
    pub fn label(&self) -> String {
        self.start.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// The window of `cadence` (opening at `time`) that contains `now`; every-N-day windows
/// count from `anchor` (1 January of the plan year).
pub fn window_at(
    cadence: Cadence,
    time: NaiveTime,
    anchor: NaiveDate,
    now: NaiveDateTime,
) -> Window {
    match cadence {
        Cadence::Weekly(day) => {
            let date = now.date();
            let back = (date.weekday().num_days_from_monday() + 7 - day.num_days_from_monday()) % 7;
            let mut start = (date - Duration::days(i64::from(back))).and_time(time);
            if start > now {
                start -= Duration::days(7);
            }
            Window {
                start,
                end: start + Duration::days(7),
            }
        }
        Cadence::EveryDays(n) => {
            let n = i64::from(n.max(1));
            let origin = anchor.and_time(time);
            let k = (now - origin).num_seconds().div_euclid(n * 86_400);
            let start = origin + Duration::days(k * n);
            Window {
                start,
                end: start + Duration::days(n),
            }
        }
    }
}

/// Where `now` stands relative to the plan year.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "phase")]
pub enum Phase {
    /// Before 1 January of the plan year: nothing is due.
    Before,
    /// Within the plan year.
    Running,
    /// The year has closed; late returns still count until `last_day` (inclusive).
    Grace { last_day: NaiveDate },
    /// The year and its grace are over: reminders have stopped; one final digest.
    Over,
}

/// Why scheduled mail does not go out at `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Closed {
    QuietHours(QuietHours),
    SkippedDate(NaiveDate),
}

impl Closed {
    pub fn describe(&self) -> String {
        match self {
            Closed::QuietHours(q) => format!(
                "免打扰时段（{}–{}），此时不发送定时邮件",
                q.from.format("%H:%M"),
                q.to.format("%H:%M")
            ),
            Closed::SkippedDate(d) => {
                format!("{d} 为不发送日（mail.skip_dates），此日不发送定时邮件")
            }
        }
    }
}

/// A unit's reminder record for one window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub window: String,
    pub lagging: bool,
    /// How many reminders in a row this one was (0 when not lagging).
    pub streak: u32,
}

/// What is recorded about a unit: in the current window, and the latest window before it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitHistory {
    pub current: Option<Record>,
    pub previous: Option<Record>,
}

/// Whether a unit gets a 催办 in the current window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReminderDecision {
    NotLagging,
    /// Lagging, but the plan gives no address to write to.
    NoContacts,
    /// Reminded in this window already.
    AlreadySent,
    /// Found not lagging when this window was first evaluated (at its scheduled instant, or
    /// later when nothing ran then): a unit that falls behind during a window — say at
    /// midnight, when a month's return becomes overdue — is reminded when the next window
    /// opens, at the configured weekday and time, not at that moment.
    NotLaggingAtWindowStart,
    /// The `streak`-th reminder in a row; copy the leader when `copy_leader`.
    Send {
        streak: u32,
        copy_leader: bool,
    },
}

/// Decide one unit's reminder. The first evaluation of a window decides it: a unit lagging
/// then is reminded then (at the window's scheduled instant, or at the first run after it
/// when nothing ran at that instant); one found not lagging then waits for the next window.
/// A window in which the unit was found not lagging ends a run of reminders; windows nobody
/// evaluated (the daemon was off) do not.
pub fn decide_reminder(
    u: &UnitStatus,
    has_contacts: bool,
    history: &UnitHistory,
    leader_after: u32,
) -> ReminderDecision {
    if !u.lagging {
        return ReminderDecision::NotLagging;
    }
    match &history.current {
        Some(c) if c.lagging => return ReminderDecision::AlreadySent,
        Some(_) => return ReminderDecision::NotLaggingAtWindowStart,
        None => {}
    }
    if !has_contacts {
        return ReminderDecision::NoContacts;
    }
    let streak = match &history.previous {
        Some(p) if p.lagging => p.streak + 1,
        _ => 1,
    };
    ReminderDecision::Send {
        streak,
        copy_leader: leader_after > 0 && streak > leader_after,
    }
}

/// One category's figures in a reminder; target, completed and expected are those of
/// `status --json`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Line {
    pub category: String,
    pub target: u32,
    pub completed: u64,
    pub expected: f64,
    /// People still missing against the expected figure (rounded up; 0 when ahead).
    pub shortfall: u64,
    /// People still missing against the year's target.
    pub remaining: u64,
    /// People per month needed to reach the target by 31 December (None once the year is over).
    pub monthly_pace: Option<u64>,
    pub lagging: bool,
    /// Completed as a percentage of the target, one decimal.
    pub rate: String,
}

/// Months left in the plan year at `date`, the current one included.
pub fn months_left(year: i32, date: NaiveDate) -> u32 {
    match date.year().cmp(&year) {
        std::cmp::Ordering::Less => 12,
        std::cmp::Ordering::Equal => 13 - date.month(),
        std::cmp::Ordering::Greater => 0,
    }
}

/// The figures of each category of a unit at `now`.
pub fn lines(u: &UnitStatus, now: DateTime<Tz>, year: i32) -> Vec<Line> {
    let left = months_left(year, now.date_naive());
    u.categories
        .iter()
        .map(|c| {
            let remaining = u64::from(c.target).saturating_sub(c.completed);
            let gap = (c.expected - c.completed as f64).ceil();
            Line {
                category: c.category.clone(),
                target: c.target,
                completed: c.completed,
                expected: c.expected,
                shortfall: if gap > 0.0 { gap as u64 } else { 0 },
                remaining,
                monthly_pace: (left > 0).then(|| remaining.div_ceil(u64::from(left))),
                lagging: c.lagging,
                rate: if c.target == 0 {
                    "—".into()
                } else {
                    format!("{:.1}%", c.completed as f64 * 100.0 / f64::from(c.target))
                },
            }
        })
        .collect()
}

/// A month whose return is due soon, on a day a 未报送提醒 goes out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineDue {
    pub month: YearMonth,
    /// The last day on which the return is on time.
    pub deadline: NaiveDate,
    /// The day this reminder is for.
    pub today: NaiveDate,
    /// Days from today to the deadline (0: today is the last day).
    pub days_left: i64,
}

/// A digest that is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestDue {
    /// The digest window (None for the final digest).
    pub window: Option<Window>,
    /// Start of the previous window: what was received since then is reported.
    pub since: Option<NaiveDateTime>,
    /// The final digest after the plan year and its grace.
    pub last: bool,
    /// Idempotency key.
    pub key: String,
}

/// Everything the schedule says about `now`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    pub phase: Phase,
    pub closed: Option<Closed>,
    pub reminder_window: Option<Window>,
    pub deadlines: Vec<DeadlineDue>,
    pub digest: Option<DigestDue>,
}

/// The phase of the plan year at local time `now`.
pub fn phase(plan: &Plan, schedule: &Schedule, now: NaiveDateTime) -> Phase {
    let year = plan.year;
    let start = NaiveDate::from_ymd_opt(year, 1, 1).expect("1 January");
    let end = NaiveDate::from_ymd_opt(year + 1, 1, 1).expect("1 January");
    let grace_end = end + Duration::days(i64::from(schedule.grace_days));
    let date = now.date();
    if date < start {
        Phase::Before
    } else if date < end {
        Phase::Running
    } else if date < grace_end {
        Phase::Grace {
            last_day: grace_end - Duration::days(1),
        }
    } else {
        Phase::Over
    }
}

/// Whether scheduled mail is held back at local time `now`.
pub fn closed(schedule: &Schedule, now: NaiveDateTime) -> Option<Closed> {
    let mail = schedule;
    if let Some(d) = mail.skip_dates.iter().find(|s| s.contains(now.date())) {
        let _ = d;
        return Some(Closed::SkippedDate(now.date()));
    }
    match mail.quiet_hours {
        Some(q) if q.contains(now.time()) => Some(Closed::QuietHours(q)),
        _ => None,
    }
}

/// Evaluate the schedule at `now`.
pub fn evaluate(plan: &Plan, schedule: &Schedule, now: DateTime<Tz>) -> Evaluation {
    let local = now.naive_local();
    let mail = schedule;
    let phase = phase(plan, schedule, local);
    let active = matches!(phase, Phase::Running | Phase::Grace { .. });
    let anchor = NaiveDate::from_ymd_opt(plan.year, 1, 1).expect("1 January");

    let reminder_window = (mail.reminders.enabled && active)
        .then(|| window_at(mail.reminders.cadence, mail.reminders.time, anchor, local));

    let mut deadlines = Vec::new();
    let days = i64::from(mail.deadline_days);
    if mail.reminders.enabled && active && days > 0 && local.time() >= mail.reminders.time {
        let today = local.date();
        for month in YearMonth::months_of(plan.year) {
            let deadline = calendar::deadline_date(plan, month);
            let days_left = (deadline - today).num_days();
            if (0..days).contains(&days_left) {
                deadlines.push(DeadlineDue {
                    month,
                    deadline,
                    today,
                    days_left,
                });
            }
        }
    }

    let digest = if !mail.digest.enabled {
        None
    } else if active {
        let w = window_at(mail.digest.cadence, mail.digest.time, anchor, local);
        let length = w.end - w.start;
        Some(DigestDue {
            since: Some(w.start - length),
            key: format!("digest/{}", w.id()),
            window: Some(w),
            last: false,
        })
    } else if phase == Phase::Over && local.time() >= mail.digest.time {
        Some(DigestDue {
            window: None,
            since: None,
            last: true,
            key: format!("digest/final/{}", plan.year),
        })
    } else {
        None
    };

    Evaluation {
        phase,
        closed: closed(schedule, local),
        reminder_window,
        deadlines,
        digest,
    }
}

/// A local time of the plan as an instant (the earlier one when ambiguous).
pub fn local_to_tz(tz: Tz, t: NaiveDateTime) -> Option<DateTime<Tz>> {
    tz.from_local_datetime(&t).earliest()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::count::CategoryStatus;
    use chrono::Weekday;

    fn plan() -> Plan {
        crate::core::plan::reference()
    }

    fn at(s: &str) -> DateTime<Tz> {
        calendar::parse_now(s, chrono_tz::Asia::Shanghai).unwrap()
    }

    fn local(s: &str) -> NaiveDateTime {
        at(s).naive_local()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    /// The reference plan's `[mail]` schedule.
    fn schedule() -> Schedule {
        let weekly = |h, m| Cycle {
            enabled: true,
            cadence: Cadence::Weekly(Weekday::Mon),
            time: t(h, m),
        };
        Schedule {
            grace_days: 31,
            skip_dates: Vec::new(),
            quiet_hours: None,
            reminders: weekly(9, 0),
            deadline_days: 3,
            digest: weekly(8, 30),
        }
    }

    fn jan1() -> NaiveDate {
        NaiveDate::from_ymd_opt(2020, 1, 1).unwrap()
    }

    #[test]
    fn weekly_windows_open_at_the_weekday_and_time() {
        // 2020-07-01 is a Wednesday.
        let w = window_at(
            Cadence::Weekly(Weekday::Mon),
            t(9, 0),
            jan1(),
            local("2020-07-01T10:00:00"),
        );
        assert_eq!(w.id(), "2020-06-29T09:00");
        assert_eq!(w.end, local("2020-07-06T09:00:00"));
        // Monday 08:59 still belongs to the week before; 09:00 opens the new window.
        let w = window_at(
            Cadence::Weekly(Weekday::Mon),
            t(9, 0),
            jan1(),
            local("2020-07-06T08:59:00"),
        );
        assert_eq!(w.id(), "2020-06-29T09:00");
        let w = window_at(
            Cadence::Weekly(Weekday::Mon),
            t(9, 0),
            jan1(),
            local("2020-07-06T09:00:00"),
        );
        assert_eq!(w.id(), "2020-07-06T09:00");
    }

    #[test]
    fn every_n_days_counts_from_the_first_of_january() {
        let w = window_at(
            Cadence::EveryDays(10),
            t(9, 0),
            jan1(),
            local("2020-01-25T12:00:00"),
        );
        assert_eq!(w.id(), "2020-01-21T09:00");
        let w = window_at(
            Cadence::EveryDays(10),
            t(9, 0),
            jan1(),
            local("2020-01-01T08:00:00"),
        );
        assert_eq!(w.id(), "2019-12-22T09:00");
    }

    #[test]
    fn quiet_hours_and_skipped_dates_close_the_schedule() {
        let mut c = schedule();
        c.quiet_hours = Some(QuietHours::try_from("20:00-08:00".to_string()).unwrap());
        c.skip_dates = vec![DateSpan::try_from("2020-10-01..2020-10-08".to_string()).unwrap()];
        assert!(matches!(
            closed(&c, local("2020-07-01T21:00:00")),
            Some(Closed::QuietHours(_))
        ));
        assert!(matches!(
            closed(&c, local("2020-07-01T07:00:00")),
            Some(Closed::QuietHours(_))
        ));
        assert_eq!(closed(&c, local("2020-07-01T09:00:00")), None);
        assert!(matches!(
            closed(&c, local("2020-10-05T10:00:00")),
            Some(Closed::SkippedDate(_))
        ));
    }

    #[test]
    fn grace_follows_the_year_then_reminders_stop_and_one_final_digest_is_due() {
        let (c, mut s) = (plan(), schedule());
        s.grace_days = 31;
        assert_eq!(phase(&c, &s, local("2019-12-31T12:00:00")), Phase::Before);
        assert_eq!(phase(&c, &s, local("2020-12-31T23:00:00")), Phase::Running);
        assert_eq!(
            phase(&c, &s, local("2021-01-15")),
            Phase::Grace {
                last_day: NaiveDate::from_ymd_opt(2021, 1, 31).unwrap()
            }
        );
        assert_eq!(phase(&c, &s, local("2021-02-01")), Phase::Over);
        let e = evaluate(&c, &s, at("2021-01-15T10:00:00"));
        assert!(e.reminder_window.is_some());
        assert!(!e.digest.as_ref().unwrap().last);
        let e = evaluate(&c, &s, at("2021-02-02T10:00:00"));
        assert!(e.reminder_window.is_none() && e.deadlines.is_empty());
        let d = e.digest.unwrap();
        assert!(d.last);
        assert_eq!(d.key, "digest/final/2020");
    }

    #[test]
    fn deadline_reminders_run_daily_on_the_last_days() {
        let c = plan(); // deadline day 5, deadline_days 3, time 09:00
        let days = |s: &str| {
            evaluate(&c, &schedule(), at(s))
                .deadlines
                .iter()
                .map(|d| (d.month.to_string(), d.days_left))
                .collect::<Vec<_>>()
        };
        assert_eq!(days("2020-06-02T10:00:00"), vec![]);
        assert_eq!(
            days("2020-06-03T10:00:00"),
            vec![("2020-05".to_string(), 2)]
        );
        assert_eq!(
            days("2020-06-05T10:00:00"),
            vec![("2020-05".to_string(), 0)]
        );
        assert_eq!(
            days("2020-06-05T08:00:00"),
            vec![],
            "not before the reminder time"
        );
        assert_eq!(days("2020-06-06T10:00:00"), vec![]);
        // December's return is due in January, within the grace.
        assert_eq!(
            days("2021-01-04T10:00:00"),
            vec![("2020-12".to_string(), 1)]
        );
    }

    fn unit(lagging: bool) -> UnitStatus {
        UnitStatus {
            unit: "西兴街道".into(),
            lagging,
            missing_months: vec![],
            categories: vec![CategoryStatus {
                category: "企业主要负责人".into(),
                target: 70,
                completed: 3,
                expected: 34.8,
                lagging,
            }],
        }
    }

    fn rec(window: &str, lagging: bool, streak: u32) -> Option<Record> {
        Some(Record {
            window: window.into(),
            lagging,
            streak,
        })
    }

    #[test]
    fn the_leader_is_copied_after_n_reminders_in_a_row() {
        let u = unit(true);
        let first = decide_reminder(&u, true, &UnitHistory::default(), 2);
        assert_eq!(
            first,
            ReminderDecision::Send {
                streak: 1,
                copy_leader: false
            }
        );
        let h = UnitHistory {
            current: None,
            previous: rec("w2", true, 2),
        };
        assert_eq!(
            decide_reminder(&u, true, &h, 2),
            ReminderDecision::Send {
                streak: 3,
                copy_leader: true
            }
        );
        // A window in which the unit had caught up ends the run.
        let h = UnitHistory {
            current: None,
            previous: rec("w2", false, 0),
        };
        assert_eq!(
            decide_reminder(&u, true, &h, 2),
            ReminderDecision::Send {
                streak: 1,
                copy_leader: false
            }
        );
        assert_eq!(
            decide_reminder(&u, true, &h, 0),
            ReminderDecision::Send {
                streak: 1,
                copy_leader: false
            }
        );
    }

    #[test]
    fn at_most_one_reminder_per_window() {
        let u = unit(true);
        let h = UnitHistory {
            current: rec("w", true, 1),
            previous: None,
        };
        assert_eq!(
            decide_reminder(&u, true, &h, 2),
            ReminderDecision::AlreadySent
        );
        // Found not lagging when the window opened, lagging now (a month just went overdue):
        // reminded when the next window opens, not now.
        let h = UnitHistory {
            current: rec("w", false, 0),
            previous: None,
        };
        assert_eq!(
            decide_reminder(&u, true, &h, 2),
            ReminderDecision::NotLaggingAtWindowStart
        );
        assert_eq!(
            decide_reminder(&unit(false), true, &h, 2),
            ReminderDecision::NotLagging
        );
        assert_eq!(
            decide_reminder(&u, false, &UnitHistory::default(), 2),
            ReminderDecision::NoContacts
        );
    }

    #[test]
    fn reminder_figures_and_pace() {
        let l = &lines(&unit(true), at("2020-07-01"), 2020)[0];
        assert_eq!((l.target, l.completed, l.expected), (70, 3, 34.8));
        assert_eq!(l.shortfall, 32);
        assert_eq!(l.remaining, 67);
        assert_eq!(l.monthly_pace, Some(12)); // 67 over July..December
        assert_eq!(l.rate, "4.3%");
        assert_eq!(
            months_left(2020, NaiveDate::from_ymd_opt(2020, 12, 31).unwrap()),
            1
        );
        assert_eq!(
            lines(&unit(true), at("2021-01-10"), 2020)[0].monthly_pace,
            None
        );
    }
}
