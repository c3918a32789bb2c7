//! Who reported, when (报送日历): each unit's months of the plan year as on time, late by N
//! days, missing, rejected or not yet due, from when its returns arrived (DESIGN.md §2, §6).
//! The first accepted return of a month decides; a later correction does not make a month
//! late. Pure: the arrivals and `now` come in as arguments.

use crate::core::calendar::{self, YearMonth};
use crate::core::plan::Plan;
use chrono::DateTime;
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::BTreeMap;

/// One file's arrival: when it was received and under what name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arrival {
    pub received_at: DateTime<Tz>,
    pub file: String,
}

/// What a unit sent for one month, as the ledger knows it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Arrivals {
    /// The first accepted return (superseded since or not).
    pub first_accepted: Option<Arrival>,
    /// The latest rejected return.
    pub last_rejected: Option<Arrival>,
}

/// A month's standing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum MonthState {
    /// Accepted on or before the deadline.
    OnTime,
    /// Accepted after the deadline.
    Late,
    /// No accepted return after the deadline (未报送).
    Missing,
    /// Only rejected returns so far (退回待改).
    Rejected,
    /// Not due yet and nothing accepted.
    NotDue,
}

impl MonthState {
    pub const ALL: [MonthState; 5] = [
        MonthState::OnTime,
        MonthState::Late,
        MonthState::Missing,
        MonthState::Rejected,
        MonthState::NotDue,
    ];

    /// The word in workbooks, mail and on the terminal.
    pub fn label(self, days_late: u32) -> String {
        match self {
            MonthState::OnTime => "按时".into(),
            MonthState::Late => format!("逾期{days_late}天"),
            MonthState::Missing => "未报".into(),
            MonthState::Rejected => "退回待改".into(),
            MonthState::NotDue => "未到期".into(),
        }
    }
}

/// One month of one unit (`status --json`: `units[].months[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MonthEntry {
    /// `2020-05`.
    pub month: String,
    pub state: MonthState,
    /// Calendar days after the deadline (0 unless late).
    pub days_late: u32,
    /// When the return that decides the state arrived (RFC 3339).
    pub received_at: Option<String>,
    /// Its file name.
    pub file: Option<String>,
    /// The deadline has passed at `now`, or the month is reported: it counts in the rate.
    #[serde(skip)]
    pub due: bool,
}

/// The standing of month `m` at `now`.
pub fn month_entry(plan: &Plan, now: DateTime<Tz>, m: YearMonth, a: &Arrivals) -> MonthEntry {
    let passed = now >= calendar::late_from(plan, m);
    let entry = |state, days_late, arrival: Option<&Arrival>| MonthEntry {
        month: m.to_string(),
        state,
        days_late,
        received_at: arrival.map(|a| calendar::stamp(a.received_at)),
        file: arrival.map(|a| a.file.clone()),
        due: passed || matches!(state, MonthState::OnTime | MonthState::Late),
    };
    if let Some(first) = &a.first_accepted {
        let late = calendar::days_late(plan, m, first.received_at);
        return if late == 0 {
            entry(MonthState::OnTime, 0, Some(first))
        } else {
            entry(MonthState::Late, late, Some(first))
        };
    }
    if let Some(rejected) = &a.last_rejected {
        return entry(MonthState::Rejected, 0, Some(rejected));
    }
    if passed {
        entry(MonthState::Missing, 0, None)
    } else {
        entry(MonthState::NotDue, 0, None)
    }
}

/// The twelve months of the plan year for one unit.
pub fn unit_months(
    plan: &Plan,
    now: DateTime<Tz>,
    arrivals: &BTreeMap<YearMonth, Arrivals>,
) -> Vec<MonthEntry> {
    let none = Arrivals::default();
    YearMonth::months_of(plan.year)
        .map(|m| month_entry(plan, now, m, arrivals.get(&m).unwrap_or(&none)))
        .collect()
}

/// Share of the months that are due (deadline passed, or reported) that came on time; None
/// while no month is due.
pub fn on_time_rate(months: &[MonthEntry]) -> Option<f64> {
    let due = months.iter().filter(|m| m.due).count();
    let on_time = months
        .iter()
        .filter(|m| m.state == MonthState::OnTime)
        .count();
    (due > 0).then(|| on_time as f64 / due as f64)
}

/// One unit's row of the calendar as a line of text (for mail, where columns do not align):
/// the months that are due or reported, then the on-time rate.
/// `1月按时 2月逾期4天 3月未报 4月退回待改（按时率 25%）`.
pub fn calendar_line(months: &[MonthEntry]) -> String {
    let shown: Vec<String> = months
        .iter()
        .filter(|m| m.state != MonthState::NotDue)
        .filter_map(|m| {
            let month = YearMonth::parse(&m.month)?;
            Some(format!("{}月{}", month.month, m.state.label(m.days_late)))
        })
        .collect();
    let rate =
        on_time_rate(months).map_or_else(|| "—".to_string(), |r| format!("{:.0}%", r * 100.0));
    if shown.is_empty() {
        format!("尚无到期月份（按时率 {rate}）")
    } else {
        format!("{}（按时率 {rate}）", shown.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::calendar::parse_now;

    fn at(s: &str) -> DateTime<Tz> {
        parse_now(s, chrono_tz::Asia::Shanghai).unwrap()
    }

    fn arrival(s: &str) -> Arrival {
        Arrival {
            received_at: at(s),
            file: format!("{s}.xlsx"),
        }
    }

    fn accepted(s: &str) -> Arrivals {
        Arrivals {
            first_accepted: Some(arrival(s)),
            last_rejected: None,
        }
    }

    fn ym(s: &str) -> YearMonth {
        YearMonth::parse(s).unwrap()
    }

    #[test]
    fn lateness_at_the_boundaries_of_a_moved_deadline() {
        let plan = crate::core::plan::reference();
        let now = at("2020-12-31");
        let june = ym("2020-06"); // due Monday 6 July (5 July is a Sunday)
        let state = |s: &str| month_entry(&plan, now, june, &accepted(s));
        assert_eq!(state("2020-07-06T23:59:00").state, MonthState::OnTime);
        let e = state("2020-07-07T08:00:00");
        assert_eq!((e.state, e.days_late), (MonthState::Late, 1));
        assert_eq!(e.received_at.as_deref(), Some("2020-07-07T08:00:00+08:00"));
        // Moved by a holiday: March is due Tuesday 7 April (清明).
        let march = month_entry(&plan, now, ym("2020-03"), &accepted("2020-04-07T17:00:00"));
        assert_eq!(march.state, MonthState::OnTime);
        // By 调休: the September return, due Friday 9 October; Saturday 10 October is a
        // working day, and a return on it is late by 1.
        let sept = month_entry(&plan, now, ym("2020-09"), &accepted("2020-10-10T09:00:00"));
        assert_eq!((sept.state, sept.days_late), (MonthState::Late, 1));
    }

    #[test]
    fn a_correction_after_the_deadline_does_not_make_a_month_late() {
        // The ledger gives the first accepted return; a superseding one later changes nothing.
        let plan = crate::core::plan::reference();
        let mut a = accepted("2020-06-03T10:00:00");
        a.last_rejected = Some(arrival("2020-06-20T10:00:00"));
        let e = month_entry(&plan, at("2020-12-31"), ym("2020-05"), &a);
        assert_eq!(e.state, MonthState::OnTime);
        assert_eq!(e.file.as_deref(), Some("2020-06-03T10:00:00.xlsx"));
    }

    #[test]
    fn missing_rejected_and_not_due_and_the_rate() {
        let plan = crate::core::plan::reference();
        let now = at("2020-07-01");
        let mut arrivals = BTreeMap::new();
        arrivals.insert(ym("2020-01"), accepted("2020-02-05T10:00:00"));
        arrivals.insert(ym("2020-02"), accepted("2020-03-09T10:00:00"));
        arrivals.insert(
            ym("2020-05"),
            Arrivals {
                first_accepted: None,
                last_rejected: Some(arrival("2020-06-04T10:00:00")),
            },
        );
        let months = unit_months(&plan, now, &arrivals);
        let states: Vec<_> = months.iter().map(|m| m.state.label(m.days_late)).collect();
        assert_eq!(
            states,
            [
                "按时",
                "逾期4天",
                "未报",
                "未报",
                "退回待改",
                "未到期",
                "未到期",
                "未到期",
                "未到期",
                "未到期",
                "未到期",
                "未到期"
            ]
        );
        // Due: January–May (5); on time: January.
        assert_eq!(on_time_rate(&months), Some(0.2));
        assert_eq!(
            calendar_line(&months),
            "1月按时 2月逾期4天 3月未报 4月未报 5月退回待改（按时率 20%）"
        );
        assert_eq!(
            on_time_rate(&unit_months(&plan, at("2020-01-15"), &BTreeMap::new())),
            None
        );
    }
}
