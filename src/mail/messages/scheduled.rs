//! The messages the schedule stores: the 催办 to a lagging unit (its leader on copy after a
//! streak), the 未报送提醒 before a month's deadline, and the 周报 to the bureau with the
//! master attached. Words only: what is due is `core::remind`'s to decide, and nothing is
//! stored or sent here.

use super::{file_name_of, month_labels, render, sender, show_now, split};
use crate::config::Config;
use crate::core::calendar::YearMonth;
use crate::core::count::{Status, UnitStatus};
use crate::core::lateness::{self, Arrivals};
use crate::core::plan::Unit;
use crate::core::remind::{self, DeadlineDue, DigestDue, Line, Phase, Window};
use crate::ledger::{NewMessage, Submission, SubmissionStatus};
use chrono::DateTime;
use chrono_tz::Tz;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Key of a unit's reminder in a window.
pub fn reminder_key(window_id: &str, unit: &str) -> String {
    format!("reminder/{window_id}/{unit}")
}

#[derive(Serialize)]
struct ReminderContext<'a> {
    plan: &'a str,
    unit: &'a str,
    as_of: String,
    window: String,
    lines: &'a [Line],
    missing_months: Vec<String>,
    deadline_day: u32,
    streak: u32,
    copy_leader: bool,
    sender: String,
}

/// 催办 to a lagging unit; the leader on copy when `copy_leader`.
#[allow(clippy::too_many_arguments)]
pub fn reminder(
    config: &Config,
    unit: &Unit,
    u: &UnitStatus,
    lines: &[Line],
    streak: u32,
    copy_leader: bool,
    window: &Window,
    now: DateTime<Tz>,
) -> NewMessage {
    let leader = unit.leader.clone().filter(|_| copy_leader);
    let ctx = ReminderContext {
        plan: &config.plan.title,
        unit: &unit.name,
        as_of: show_now(now),
        window: window.label(),
        lines,
        missing_months: month_labels(&u.missing_months),
        deadline_day: config.plan.deadline_day,
        streak,
        copy_leader: leader.is_some(),
        sender: sender(config),
    };
    let (subject, body) = split(
        "reminder",
        Some(&unit.name),
        &render(config, "reminder", &ctx),
    );
    NewMessage {
        idempotency_key: reminder_key(&window.id(), &unit.name),
        kind: "reminder".into(),
        unit: Some(unit.name.clone()),
        to: unit.contacts.clone(),
        cc: leader.into_iter().collect(),
        subject,
        body,
        attachments: Vec::new(),
    }
}

#[derive(Serialize)]
struct DeadlineContext<'a> {
    plan: &'a str,
    unit: &'a str,
    month: String,
    deadline: String,
    days_left: i64,
    sender: String,
}

/// 未报送提醒: a month's return is not in and its deadline is near.
pub fn deadline_reminder(
    config: &Config,
    unit: &Unit,
    due: &DeadlineDue,
    _now: DateTime<Tz>,
) -> NewMessage {
    let d = due.deadline;
    let ctx = DeadlineContext {
        plan: &config.plan.title,
        unit: &unit.name,
        month: due.month.label_zh(),
        deadline: format!(
            "{}年{}月{}日",
            chrono::Datelike::year(&d),
            chrono::Datelike::month(&d),
            chrono::Datelike::day(&d)
        ),
        days_left: due.days_left,
        sender: sender(config),
    };
    let (subject, body) = split(
        "deadline",
        Some(&unit.name),
        &render(config, "deadline", &ctx),
    );
    NewMessage {
        idempotency_key: format!("deadline/{}/{}/{}", due.month, due.today, unit.name),
        kind: "deadline".into(),
        unit: Some(unit.name.clone()),
        to: unit.contacts.clone(),
        cc: Vec::new(),
        subject,
        body,
        attachments: Vec::new(),
    }
}

/// What a digest reports besides the status.
pub struct DigestExtras<'a> {
    /// Start of the period the digest covers.
    pub since: Option<DateTime<Tz>>,
    /// Submissions received in that period.
    pub received: &'a [&'a Submission],
    /// Messages in the outbox that failed.
    pub failed_mail: i64,
    /// The master workbook, when it exists.
    pub master: Option<PathBuf>,
    /// When each unit's returns arrived, per month (for the 报送日历 lines).
    pub arrivals: &'a BTreeMap<String, BTreeMap<YearMonth, Arrivals>>,
}

#[derive(Serialize)]
struct DigestUnit {
    /// The unit's row of the 报送日历.
    calendar: String,
    unit: String,
    lagging: bool,
    missing_months: Vec<String>,
    lines: Vec<Line>,
}

#[derive(Serialize)]
struct Received {
    total: usize,
    accepted: usize,
    rejected: usize,
    duplicate: usize,
}

#[derive(Serialize)]
struct DigestContext<'a> {
    plan: &'a str,
    year: i32,
    as_of: String,
    last: bool,
    grace_last_day: Option<String>,
    units: Vec<DigestUnit>,
    lagging_units: Vec<String>,
    since: Option<String>,
    received: Received,
    failed_mail: i64,
    master_name: Option<String>,
}

/// 周报 to the bureau: the status table, the period's returns, the master attached.
pub fn digest(
    config: &Config,
    status: &Status,
    phase: Phase,
    due: &DigestDue,
    extras: &DigestExtras<'_>,
    now: DateTime<Tz>,
) -> NewMessage {
    let count = |st: SubmissionStatus| extras.received.iter().filter(|s| s.status == st).count();
    let ctx = DigestContext {
        plan: &config.plan.title,
        year: config.plan.year,
        as_of: show_now(now),
        last: due.last,
        grace_last_day: match phase {
            Phase::Grace { last_day } => Some(last_day.to_string()),
            _ => None,
        },
        units: status
            .units
            .iter()
            .map(|u| DigestUnit {
                calendar: lateness::calendar_line(&lateness::unit_months(
                    &config.plan,
                    now,
                    extras.arrivals.get(&u.unit).unwrap_or(&BTreeMap::new()),
                )),
                unit: u.unit.clone(),
                lagging: u.lagging,
                missing_months: month_labels(&u.missing_months),
                lines: remind::lines(u, now, config.plan.year),
            })
            .collect(),
        lagging_units: status
            .units
            .iter()
            .filter(|u| u.lagging)
            .map(|u| u.unit.clone())
            .collect(),
        since: extras.since.map(show_now),
        received: Received {
            total: extras.received.len(),
            accepted: count(SubmissionStatus::Accepted) + count(SubmissionStatus::Superseded),
            rejected: count(SubmissionStatus::Rejected),
            duplicate: count(SubmissionStatus::Duplicate),
        },
        failed_mail: extras.failed_mail,
        master_name: extras
            .master
            .as_ref()
            .map(|p| file_name_of(&p.to_string_lossy())),
    };
    let (subject, body) = split("digest", None, &render(config, "digest", &ctx));
    NewMessage {
        idempotency_key: due.key.clone(),
        kind: "digest".into(),
        unit: None,
        to: config.mail.bureau.clone(),
        cc: Vec::new(),
        subject,
        body,
        attachments: extras
            .master
            .iter()
            .map(|p| {
                (
                    file_name_of(&p.to_string_lossy()),
                    p.to_string_lossy().to_string(),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::calendar::YearMonth;
    use crate::mail::fixtures::config_in;
    use crate::mail::messages::custom_dir;
    use std::path::Path;

    fn config() -> Config {
        config_in(Path::new("/nonexistent-base"))
    }

    #[test]
    fn the_bureau_s_copy_of_a_template_wins_and_a_broken_one_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.base_dir = dir.path().to_path_buf();
        let folder = custom_dir(&c);
        std::fs::create_dir_all(&folder).unwrap();
        let due = DeadlineDue {
            month: YearMonth::parse("2020-06").unwrap(),
            deadline: chrono::NaiveDate::from_ymd_opt(2020, 7, 5).unwrap(),
            today: chrono::NaiveDate::from_ymd_opt(2020, 7, 3).unwrap(),
            days_left: 2,
        };
        let now = crate::core::calendar::parse_now("2020-07-03T10:00:00", c.plan.tz).unwrap();
        std::fs::write(
            folder.join("deadline.txt"),
            "请报送{{ month }}月报\n\n{{ unit }}：请于{{ deadline }}前报送。\n",
        )
        .unwrap();
        let m = deadline_reminder(&c, &c.plan.units[0], &due, now);
        assert_eq!(m.subject, "【未报送提醒】西兴街道 请报送2020年6月月报");
        assert_eq!(m.body, "西兴街道：请于2020年7月5日前报送。\n");
        std::fs::write(folder.join("deadline.txt"), "{% if %}broken").unwrap();
        let m = deadline_reminder(&c, &c.plan.units[0], &due, now);
        assert!(
            m.subject
                .starts_with("【未报送提醒】西兴街道 2020年6月月报"),
            "{}",
            m.subject
        );
        assert!(m.body.contains("还有 2 天"), "{}", m.body);
    }
}
