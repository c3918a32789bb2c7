//! `tally remind [--dry-run]`: who is lagging at --now, and the scheduled mail that is due —
//! 催办, 未报送提醒, 周报 — stored in the outbox and sent now ("send now"); at most one per
//! unit and window however often it runs. --dry-run shows exactly what would be sent. The
//! window's rules are the daemon's: a unit found not lagging when the window was first
//! evaluated is reminded in the next one (`mail::schedule`); only the time of day is not
//! waited for, since staff ask for it now.

use crate::core::remind::Phase;
use crate::ledger::Ledger;
use crate::mail::{self, MailError, Planned, ScheduleReport, Transport};
use crate::settings::{ExitStatus, Settings, UsageError};
use clap::Args;

#[derive(Debug, Args)]
pub struct RemindArgs {
    /// Show who is lagging and exactly what would be sent; store and send nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A bad SMTP setting is the user's to fix (exit 2).
pub fn mail_error(e: MailError) -> anyhow::Error {
    match e {
        MailError::Config(m) => UsageError(m).into(),
        e => e.into(),
    }
}

pub fn run(settings: &Settings, args: &RemindArgs) -> anyhow::Result<ExitStatus> {
    let config = &settings.config;
    let now = settings.now;
    let transport = if args.dry_run {
        None
    } else {
        Some(Transport::configured(config, &settings.env).map_err(mail_error)?)
    };
    let mut ledger = Ledger::open_at(&config.ledger_location())?;
    if !args.dry_run {
        refresh_master_for_digest(settings, &mut ledger);
    }
    let report = mail::schedule_for(
        config,
        &mut ledger,
        now,
        args.dry_run,
        mail::Trigger::Request,
    )
    .map_err(mail_error)?;
    print!("{}", render(settings, &report, args.dry_run));
    let Some(transport) = transport else {
        return Ok(ExitStatus::Success);
    };
    let sent = mail::send_due_with(config, &mut ledger, now, &transport).map_err(mail_error)?;
    println!("{}", sent.summary());
    if sent.deferred.is_empty() && sent.failed.is_empty() {
        Ok(ExitStatus::Success)
    } else {
        eprintln!("tally: 有邮件未能送达，仍在发件箱中（可运行 tally outbox list 查看）");
        Ok(ExitStatus::Failure)
    }
}

/// Before a digest is stored, bring the master up to date so the attachment is current —
/// unless the daemon holds the state (it keeps the master current itself).
fn refresh_master_for_digest(settings: &Settings, ledger: &mut Ledger) {
    let config = &settings.config;
    let eval = crate::core::remind::evaluate(&config.plan, &config.mail.schedule(), settings.now);
    let Some(digest) = eval
        .digest
        .filter(|_| eval.closed.is_none() && !config.mail.bureau.is_empty())
    else {
        return;
    };
    if mail::exists(ledger, &digest.key).unwrap_or(true) {
        return;
    }
    let Ok(_lock) = crate::ledger::lock::StateLock::acquire(&config.state_path()) else {
        return; // the daemon holds the state, and keeps the master current itself
    };
    if let Err(e) = crate::master::rebuild(config, ledger, settings.now) {
        tracing::warn!(error = %e, "the master was not rebuilt; the digest attaches the last one");
    }
}

/// The report for the terminal: who lags, what is (or would be) sent, who is passed over.
pub fn render(settings: &Settings, report: &ScheduleReport, dry_run: bool) -> String {
    let config = &settings.config;
    let mut out = format!(
        "{} — 截至 {}\n",
        config.plan.title,
        settings.now.format("%Y-%m-%d %H:%M")
    );
    out.push_str(&match report.phase {
        Phase::Before => "计划年度尚未开始：没有需要发送的定时邮件。\n".to_string(),
        Phase::Running => String::new(),
        Phase::Grace { last_day } => format!("计划年度已结束，补报期至 {last_day}。\n"),
        Phase::Over => "计划年度及补报期已结束：不再催办，只发送一次最终周报。\n".to_string(),
    });
    if let Some(w) = &report.window {
        out.push_str(&format!(
            "本轮催办：{} 起，至 {} 止\n",
            w.label(),
            w.end.format("%Y-%m-%d %H:%M")
        ));
    }
    out.push('\n');

    let lagging: Vec<_> = report.status.units.iter().filter(|u| u.lagging).collect();
    if lagging.is_empty() {
        out.push_str("没有滞后单位。\n");
    } else {
        out.push_str("滞后单位：\n");
        for u in lagging {
            let cats: Vec<String> = u
                .categories
                .iter()
                .filter(|c| c.lagging)
                .map(|c| {
                    format!(
                        "{} {}/{}（序时 {}）",
                        c.category, c.completed, c.target, c.expected
                    )
                })
                .collect();
            let mut why = cats.join("，");
            if !u.missing_months.is_empty() {
                if !why.is_empty() {
                    why.push('；');
                }
                let months: Vec<String> = u
                    .missing_months
                    .iter()
                    .map(|m| {
                        crate::core::calendar::YearMonth::parse(m)
                            .map_or_else(|| m.clone(), |m| m.label_zh())
                    })
                    .collect();
                why.push_str(&format!("未报送 {}", months.join("、")));
            }
            out.push_str(&format!("  {}：{}\n", u.unit, why));
        }
    }
    out.push('\n');

    if let Some(closed) = &report.closed {
        out.push_str(&format!("{}。\n", closed.describe()));
        return out;
    }
    let new: Vec<&Planned> = report.planned.iter().filter(|p| p.new).collect();
    let old = report.planned.len() - new.len();
    if new.is_empty() {
        out.push_str("现在没有需要发送的定时邮件");
    } else if dry_run {
        out.push_str(&format!(
            "将发送 {} 封邮件（--dry-run：不保存、不发送）",
            new.len()
        ));
    } else {
        out.push_str(&format!("已存入发件箱 {} 封邮件", new.len()));
    }
    if old > 0 {
        out.push_str(&format!("；另有 {old} 封本轮已发过，不再重发"));
    }
    out.push_str("。\n");
    for (i, p) in new.iter().enumerate() {
        let m = &p.message;
        out.push_str(&format!("\n=== {}. {}\n", i + 1, m.subject));
        out.push_str(&format!("收件人：{}\n", m.to.join(", ")));
        if !m.cc.is_empty() {
            out.push_str(&format!("抄送：{}\n", m.cc.join(", ")));
        }
        for (name, _) in &m.attachments {
            out.push_str(&format!("附件：{name}\n"));
        }
        if dry_run {
            out.push('\n');
            out.push_str(&m.body);
        }
    }
    if !report.passed.is_empty() {
        out.push_str("\n未发送：\n");
        for p in &report.passed {
            out.push_str(&format!("  {}：{}\n", p.unit, p.reason));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use crate::cmd::{Cli, Command};
    use clap::Parser;

    #[test]
    fn remind_flags_parse() {
        let cli =
            Cli::try_parse_from(["tally", "--now", "2020-07-01", "remind", "--dry-run"]).unwrap();
        let Command::Remind(args) = cli.command else {
            panic!()
        };
        assert!(args.dry_run);
        let cli = Cli::try_parse_from(["tally", "remind"]).unwrap();
        let Command::Remind(args) = cli.command else {
            panic!()
        };
        assert!(!args.dry_run);
    }
}
