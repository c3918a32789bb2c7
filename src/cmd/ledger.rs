//! `tally ledger migrate --to URL`: move a plan's SQLite ledger up to an empty PostgreSQL
//! database (issue 14). The copy is `Ledger::copy_into`; this takes the state lock (no daemon
//! may write meanwhile), checks every table's count and `status --json` on both sides, and
//! tells the bureau what to put in tally.toml next.

use crate::cmd::status;
use crate::ledger::lock::StateLock;
use crate::ledger::settings::LedgerSettings;
use crate::ledger::{Ledger, Location};
use crate::settings::{ExitStatus, Settings, UsageError};
use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum LedgerCommand {
    /// Copy the SQLite ledger at [paths] state into an empty PostgreSQL database, then check
    /// that every table and `status --json` are the same on both sides.
    Migrate(MigrateArgs),
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// The target: postgres://user@host[:port]/database (password in TALLY_LEDGER_PASSWORD).
    #[arg(long, value_name = "URL")]
    pub to: String,
}

pub fn run(settings: &Settings, command: &LedgerCommand) -> anyhow::Result<ExitStatus> {
    let LedgerCommand::Migrate(args) = command;
    let config = &settings.config;
    let target = LedgerSettings {
        url: Some(args.to.clone()),
        ..LedgerSettings::default()
    };
    if let Some((_, problem)) = target.problems().into_iter().next() {
        return Err(UsageError(format!("--to: {problem}")).into());
    }
    let state = config.state_path();
    if !state.exists() {
        return Err(UsageError(format!(
            "{}：没有可迁移的 SQLite 台账（[paths] state）",
            state.display()
        ))
        .into());
    }
    let _lock = StateLock::acquire(&state)?;
    let source = Ledger::open(&state)?;
    let target = Location::Postgres {
        url: args.to.clone(),
        password: settings.env.ledger_password.clone(),
        ca_file: config.ledger.ca_file.as_ref().map(|f| config.resolve(f)),
    };
    let copied = source.copy_into(&target)?;
    let to = Ledger::open_at(&target)?;
    let before = status_json(settings, &source)?;
    let after = status_json(settings, &to)?;
    println!("{:<18} {:>10} {:>10}", "表", "SQLite", "PostgreSQL");
    let mut equal = true;
    for c in &copied {
        let mark = if c.source == c.target {
            ""
        } else {
            "  ← 不一致"
        };
        equal &= c.source == c.target;
        println!("{:<18} {:>10} {:>10}{mark}", c.table, c.source, c.target);
    }
    if !equal || before != after {
        eprintln!(
            "tally: 迁移后核对不一致{}；请勿启用新台账，保留原 SQLite 台账",
            if before != after {
                "（status --json 不同）"
            } else {
                ""
            }
        );
        return Ok(ExitStatus::Failure);
    }
    println!("status --json：迁移前后一致");
    println!(
        "已迁移到 {}。在 tally.toml 中加入：\n\n[ledger]\nurl = \"{}\"\n\n密码放在环境变量 TALLY_LEDGER_PASSWORD 或 password_file 指定的文件中。原 SQLite 台账 {} 保留不动。",
        to.path().display(),
        args.to,
        state.display()
    );
    Ok(ExitStatus::Success)
}

/// `status --json` of the plan from `ledger`, at the settings' clock.
fn status_json(settings: &Settings, ledger: &Ledger) -> anyhow::Result<String> {
    let s = status::load(settings, ledger)?;
    Ok(serde_json::to_string(&status::report(
        settings, ledger, &s,
    )?)?)
}
