//! Scheduled mail: at `now`, which 催办 (reminders to lagging units, at most one per unit and
//! window), 未报送提醒 (before a month's deadline) and 周报 (the digest to the bureau) are due;
//! stored in the outbox with the reminder records in one ledger round. The decisions are
//! `core::remind`'s and the words `messages`'; this module only applies them to the ledger
//! (through its API, no SQL) — it never sends.

use crate::config::Config;
use crate::core::calendar::stamp;
use crate::core::count::Status;
use crate::core::remind::{self, Closed, Phase};
use crate::ledger::{Ledger, NewMessage};
use crate::mail::MailError;
use crate::mail::messages;
use crate::mail::outbox::{current_status, parse_stamp};
use chrono::DateTime;
use chrono_tz::Tz;

/// One scheduled message, planned or stored.
#[derive(Debug, Clone)]
pub struct Planned {
    pub message: NewMessage,
    /// False when a message with its key was stored before (this window is done).
    pub new: bool,
}

/// A unit passed over by the reminder schedule, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub unit: String,
    pub reason: String,
}

/// What the schedule decided at `now`.
#[derive(Debug, Clone)]
pub struct ScheduleReport {
    pub status: Status,
    pub phase: Phase,
    /// Why scheduled mail may not go now (quiet hours, skipped date).
    pub closed: Option<Closed>,
    /// The reminder window `now` falls in (local start, end).
    pub window: Option<remind::Window>,
    pub planned: Vec<Planned>,
    pub passed: Vec<Passed>,
}

/// Who asks the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The daemon, on its own: a 催办 it missed at the window's scheduled instant (it was not
    /// running) goes out later in the window, but only from the configured time of day on.
    Daemon,
    /// `tally remind`: bureau staff ask to send what is due now, at whatever time of day
    /// (quiet hours and skipped dates still hold).
    Request,
}

/// Evaluate the schedule at `now` as the daemon does: which reminders, deadline reminders and
/// digest are due. Unless `dry_run`, store them in the outbox together with the reminder
/// record, in one transaction; a key already stored is not stored again (at most one per unit
/// and window). A unit gets its 催办 when the first evaluation of a window finds it lagging
/// (at the window's weekday and time, or later in the window when nothing ran then) — not at
/// the moment it falls behind during the window.
pub fn schedule(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
    dry_run: bool,
) -> Result<ScheduleReport, MailError> {
    schedule_for(config, ledger, now, dry_run, Trigger::Daemon)
}

/// `schedule`, for `trigger`.
pub fn schedule_for(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
    dry_run: bool,
    trigger: Trigger,
) -> Result<ScheduleReport, MailError> {
    let status = current_status(config, ledger, now)?;
    let accepted = ledger.accepted_months()?;
    let submissions = ledger.submissions()?;
    let arrivals = ledger.arrivals(config.plan.tz)?;
    let eval = remind::evaluate(&config.plan, &config.mail.schedule(), now);
    let mut report = ScheduleReport {
        status: status.clone(),
        phase: eval.phase,
        closed: eval.closed.clone(),
        window: eval.reminder_window.clone(),
        planned: Vec::new(),
        passed: Vec::new(),
    };
    if eval.closed.is_some() {
        return Ok(report);
    }
    let at = stamp(now);
    let round = ledger.schedule_round()?;

    // 催办: one per lagging unit and window. The daemon catches up on a window it missed only
    // from the configured time of day on (not at 03:00 because it was restarted then).
    let reminder_hour =
        trigger == Trigger::Request || now.naive_local().time() >= config.mail.reminders.time.0;
    if let Some(window) = eval.reminder_window.as_ref().filter(|_| reminder_hour) {
        let wid = window.id();
        for u in &status.units {
            let Some(unit) = config.plan.units.iter().find(|x| x.name == u.unit) else {
                continue;
            };
            let current = round.window_record(&u.unit, &wid)?;
            let previous = round.previous_window_record(&u.unit, &wid)?;
            let history = remind::UnitHistory { current, previous };
            match remind::decide_reminder(
                u,
                !unit.contacts.is_empty(),
                &history,
                config.mail.reminders.leader_after,
            ) {
                remind::ReminderDecision::NotLagging => {
                    if !dry_run {
                        round.record_not_lagging(&u.unit, &wid, &at)?;
                    }
                }
                remind::ReminderDecision::NoContacts => report.passed.push(Passed {
                    unit: u.unit.clone(),
                    reason: "滞后，但 units.contacts 中没有邮箱，无法催办".into(),
                }),
                remind::ReminderDecision::AlreadySent => {
                    let key = messages::reminder_key(&wid, &u.unit);
                    report.passed.push(Passed {
                        unit: u.unit.clone(),
                        reason: format!(
                            "本轮（{} 起）已催办过{}",
                            window.label(),
                            if round.message_stored(&key)? {
                                ""
                            } else {
                                "（记录在案）"
                            }
                        ),
                    });
                }
                remind::ReminderDecision::NotLaggingAtWindowStart => {
                    report.passed.push(Passed {
                        unit: u.unit.clone(),
                        reason: format!(
                            "本轮（{} 起）开始时未滞后，本轮不再催办；下一轮 {} 起仍滞后则催办",
                            window.label(),
                            window.end.format("%Y-%m-%d %H:%M")
                        ),
                    });
                }
                remind::ReminderDecision::Send {
                    streak,
                    copy_leader,
                } => {
                    let lines = remind::lines(u, now, config.plan.year);
                    let message = messages::reminder(
                        config,
                        unit,
                        u,
                        &lines,
                        streak,
                        copy_leader,
                        window,
                        now,
                    );
                    let new = !round.message_stored(&message.idempotency_key)?;
                    if !dry_run {
                        round.queue(&message, &at)?;
                        round.record_reminded(&u.unit, &wid, &at, streak)?;
                    }
                    report.planned.push(Planned { message, new });
                }
            }
        }
    }

    // 未报送提醒: daily on the last days before a month's deadline.
    for due in &eval.deadlines {
        for unit in &config.plan.units {
            if accepted.contains(&(unit.name.clone(), due.month)) {
                continue;
            }
            if unit.contacts.is_empty() {
                report.passed.push(Passed {
                    unit: unit.name.clone(),
                    reason: format!("{} 未报送，但没有联系邮箱", due.month.label_zh()),
                });
                continue;
            }
            let message = messages::deadline_reminder(config, unit, due, now);
            let new = !round.message_stored(&message.idempotency_key)?;
            if !dry_run {
                round.queue(&message, &at)?;
            }
            report.planned.push(Planned { message, new });
        }
    }

    // 周报 to the bureau.
    if let Some(digest) = &eval.digest
        && !config.mail.bureau.is_empty()
    {
        let since = digest
            .since
            .and_then(|t| remind::local_to_tz(config.plan.tz, t));
        let failed = round.failed_messages()?;
        let received: Vec<&crate::ledger::Submission> = submissions
            .iter()
            .filter(|s| {
                let t = parse_stamp(&s.received_at, config.plan.tz);
                match (since, t) {
                    (Some(since), Some(t)) => t >= since && t <= now,
                    (None, Some(t)) => t <= now,
                    _ => false,
                }
            })
            .collect();
        let extras = messages::DigestExtras {
            since,
            received: &received,
            failed_mail: failed,
            master: Some(config.master_path()).filter(|p| p.exists()),
            arrivals: &arrivals,
        };
        let message = messages::digest(config, &status, eval.phase, digest, &extras, now);
        let new = !round.message_stored(&message.idempotency_key)?;
        if !dry_run {
            round.queue(&message, &at)?;
        }
        report.planned.push(Planned { message, new });
    }
    if dry_run {
        round.discard()?;
    } else {
        round.commit()?;
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::remind::QuietHours;
    use crate::mail::fixtures::config_in;
    use std::path::Path;

    /// The reference plan where no category lags (tolerance 1): units lag only when a month's
    /// return is overdue.
    fn lag_only_when_overdue(dir: &Path) -> Config {
        let mut c = config_in(dir);
        c.plan.tolerance = 1.0;
        c
    }

    fn at(s: &str) -> DateTime<Tz> {
        crate::core::calendar::parse_now(s, chrono_tz::Asia::Shanghai).unwrap()
    }

    fn reminded(r: &ScheduleReport) -> Vec<String> {
        r.planned
            .iter()
            .filter(|p| p.new && p.message.kind == "reminder")
            .filter_map(|p| p.message.unit.clone())
            .collect()
    }

    #[test]
    fn a_unit_that_falls_behind_mid_window_is_reminded_when_the_next_window_opens() {
        let dir = tempfile::tempdir().unwrap();
        let c = lag_only_when_overdue(dir.path());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        // Monday 2020-02-03 09:00 opens a window; January is due by 5 February: nobody lags.
        let r = schedule(&c, &mut ledger, at("2020-02-03T09:00:00"), false).unwrap();
        assert!(r.status.units.iter().all(|u| !u.lagging));
        assert!(reminded(&r).is_empty());
        // Thursday 00:00: January is overdue, every unit lags — no 催办 at midnight, from
        // the daemon nor from `tally remind`, nor later that day.
        for (t, trigger) in [
            ("2020-02-06T00:00:00", Trigger::Daemon),
            ("2020-02-06T00:00:00", Trigger::Request),
            ("2020-02-06T10:00:00", Trigger::Daemon),
            ("2020-02-09T23:00:00", Trigger::Request),
        ] {
            let r = schedule_for(&c, &mut ledger, at(t), false, trigger).unwrap();
            assert!(r.status.units.iter().all(|u| u.lagging), "{t}");
            assert!(
                reminded(&r).is_empty(),
                "{t} {trigger:?}: {:?}",
                reminded(&r)
            );
            if t.ends_with("10:00:00") {
                assert_eq!(r.passed.len(), 4, "{:?}", r.passed);
                assert!(
                    r.passed[0].reason.contains("2020-02-10 09:00"),
                    "{:?}",
                    r.passed
                );
            }
        }
        // The next window opens at its weekday and time: all four are reminded, once.
        let r = schedule(&c, &mut ledger, at("2020-02-10T09:00:00"), false).unwrap();
        assert_eq!(reminded(&r).len(), 4, "{:?}", r.passed);
        let r = schedule(&c, &mut ledger, at("2020-02-10T15:00:00"), false).unwrap();
        assert!(reminded(&r).is_empty());
    }

    #[test]
    fn a_window_the_daemon_missed_is_caught_up_from_the_configured_time_of_day() {
        let dir = tempfile::tempdir().unwrap();
        let c = lag_only_when_overdue(dir.path());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        // Nothing ran at Monday 09:00. Restarted on Thursday at 00:30, the daemon waits for
        // 09:00; `tally remind` (staff asking) sends at once.
        let r = schedule(&c, &mut ledger, at("2020-02-06T00:30:00"), false).unwrap();
        assert!(reminded(&r).is_empty());
        let r = schedule(&c, &mut ledger, at("2020-02-06T09:00:00"), false).unwrap();
        assert_eq!(reminded(&r).len(), 4);

        let dir = tempfile::tempdir().unwrap();
        let c = lag_only_when_overdue(dir.path());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        let r = schedule_for(
            &c,
            &mut ledger,
            at("2020-02-06T00:30:00"),
            false,
            Trigger::Request,
        )
        .unwrap();
        assert_eq!(reminded(&r).len(), 4);
        // Quiet hours hold for both.
        let dir = tempfile::tempdir().unwrap();
        let mut c = lag_only_when_overdue(dir.path());
        c.mail.quiet_hours = Some(QuietHours::try_from("20:00-08:00".to_string()).unwrap());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        let r = schedule_for(
            &c,
            &mut ledger,
            at("2020-02-06T00:30:00"),
            false,
            Trigger::Request,
        )
        .unwrap();
        assert!(r.closed.is_some() && r.planned.is_empty());
    }
}
