//! `tally outbox [list|retry]`: the mail waiting or failed in the ledger's outbox; `retry`
//! re-queues failed messages and sends everything queued now. Never sends a sent message again.

use crate::cmd::remind::mail_error;
use crate::ledger::Ledger;
use crate::mail::{self, OutboxRow, Transport};
use crate::settings::{ExitStatus, Settings};
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    pub action: Option<OutboxAction>,
}

#[derive(Debug, Subcommand)]
pub enum OutboxAction {
    /// Messages waiting or failed (the default); --all includes those sent.
    List {
        /// Include messages already sent.
        #[arg(long)]
        all: bool,
        /// Print a JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Re-queue failed messages (all, or those with the given ids) and send what is queued now.
    Retry {
        /// Outbox ids (see `tally outbox list`); none: every failed or waiting message.
        ids: Vec<i64>,
    },
}

pub fn run(settings: &Settings, args: &OutboxArgs) -> anyhow::Result<ExitStatus> {
    let config = &settings.config;
    match &args.action {
        None => list(settings, false, false),
        Some(OutboxAction::List { all, json }) => list(settings, *all, *json),
        Some(OutboxAction::Retry { ids }) => {
            let transport = Transport::configured(config, &settings.env).map_err(mail_error)?;
            let mut ledger = Ledger::open_at(&config.ledger_location())?;
            let requeued = mail::requeue(&mut ledger, ids, settings.now).map_err(mail_error)?;
            println!("已重新排队 {} 封", requeued.changed);
            for id in &requeued.sending {
                println!("  #{id}：另一进程正在发送，由它完成（不会重复发送）");
            }
            let report = mail::send_due_with(config, &mut ledger, settings.now, &transport)
                .map_err(mail_error)?;
            println!("{}", report.summary());
            for (id, e) in report.deferred.iter().chain(&report.failed) {
                println!("  #{id}: {e}");
            }
            Ok(if report.deferred.is_empty() && report.failed.is_empty() {
                ExitStatus::Success
            } else {
                ExitStatus::Failure
            })
        }
    }
}

fn list(settings: &Settings, all: bool, json: bool) -> anyhow::Result<ExitStatus> {
    let ledger = Ledger::open_at(&settings.config.ledger_location())?;
    let rows = mail::list(&ledger, all).map_err(mail_error)?;
    if json {
        println!("{}", serde_json::to_string(&rows)?);
    } else {
        print!("{}", render(&rows, all));
    }
    Ok(ExitStatus::Success)
}

fn status_label(row: &OutboxRow) -> &'static str {
    match row.status.as_str() {
        "queued" if row.sending() => "发送中",
        "queued" => "待发送",
        "sent" => "已发送",
        _ => "失败",
    }
}

/// The outbox as a table.
pub fn render(rows: &[OutboxRow], all: bool) -> String {
    if rows.is_empty() {
        return if all {
            "发件箱是空的。\n".into()
        } else {
            "发件箱中没有待发送或发送失败的邮件。\n".into()
        };
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            let when = match r.status.as_str() {
                "sent" => r.sent_at.clone(),
                _ => r.next_attempt_at.clone(),
            }
            .map(|t| t.replace('T', " ").chars().take(16).collect())
            .unwrap_or_default();
            let subject: String = r.subject.chars().take(40).collect();
            vec![
                r.id.to_string(),
                status_label(r).to_string(),
                mail::kind_label(&r.kind).to_string(),
                r.to.join(",")
                    + &if r.cc.is_empty() {
                        String::new()
                    } else {
                        format!(" (抄送 {})", r.cc.join(","))
                    },
                subject,
                r.attempts.to_string(),
                when,
                r.last_error
                    .clone()
                    .unwrap_or_default()
                    .chars()
                    .take(60)
                    .collect(),
            ]
        })
        .collect();
    crate::cmd::table::render(
        &[
            "编号",
            "状态",
            "类型",
            "收件人",
            "主题",
            "尝试",
            "下次尝试/发送时间",
            "错误",
        ],
        &cells,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cmd::{Cli, Command};
    use clap::Parser;

    #[test]
    fn outbox_subcommands_parse() {
        let cli = Cli::try_parse_from(["tally", "outbox"]).unwrap();
        let Command::Outbox(args) = cli.command else {
            panic!()
        };
        assert!(args.action.is_none());
        let cli = Cli::try_parse_from(["tally", "outbox", "list", "--all", "--json"]).unwrap();
        let Command::Outbox(args) = cli.command else {
            panic!()
        };
        assert!(matches!(
            args.action,
            Some(OutboxAction::List {
                all: true,
                json: true
            })
        ));
        let cli = Cli::try_parse_from(["tally", "outbox", "retry", "3", "4"]).unwrap();
        let Command::Outbox(args) = cli.command else {
            panic!()
        };
        assert!(matches!(args.action, Some(OutboxAction::Retry { ref ids }) if ids == &[3, 4]));
    }
}
