//! The command line (clap derive): global options, subcommands, resolved settings and the
//! dispatch to `cmd::*`. Parsing only; each subcommand's work lives in its own module.

use crate::config::Config;
use crate::plan;
use anyhow::{Context as _, bail};
use chrono::DateTime;
use chrono_tz::Tz;
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

/// Environment variables read by tally, all in one place.
pub mod env {
    /// Replaces the wall clock (RFC 3339 or YYYY-MM-DD).
    pub const NOW: &str = "TALLY_NOW";
    /// Overrides the SMTP server URL.
    pub const SMTP_URL: &str = "TALLY_SMTP_URL";
    /// SMTP password (never in tally.toml).
    pub const SMTP_PASSWORD: &str = "TALLY_SMTP_PASSWORD";
}

/// Process exit status (DESIGN.md §6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: success.
    Success,
    /// 1: a return rejected or a check failed.
    Failure,
    /// 2: usage or configuration error.
    Error,
}

impl ExitStatus {
    pub fn code(self) -> i32 {
        match self {
            ExitStatus::Success => 0,
            ExitStatus::Failure => 1,
            ExitStatus::Error => 2,
        }
    }
}

/// An error that is the user's to fix (bad config, bad flag value): exit 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

#[derive(Debug, Parser)]
#[command(
    name = "tally",
    version,
    about = "Work-safety training returns: check, ledger, master workbook, reminders"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct Global {
    /// The plan (tally.toml); relative paths in it are relative to its folder.
    #[arg(long, global = true, default_value = "tally.toml", value_name = "PATH")]
    pub config: PathBuf,
    /// The clock for everything that depends on time: RFC 3339 or YYYY-MM-DD (plan time zone).
    #[arg(long, global = true, env = env::NOW, value_name = "DATE")]
    pub now: Option<String>,
    /// More log output (-vv for debug detail).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Write the reference plan's tally.toml and drop folders into DIR.
    Init(InitArgs),
    /// Write the blank return workbook.
    Template(TemplateArgs),
    /// Validate a return; writes nothing. Exit 1 when it would be rejected.
    Check(CheckArgs),
    /// Take returns in by hand, as the daemon would (archive, ledger, move, feedback).
    Ingest(IngestArgs),
    /// Progress per unit and category at --now.
    Status(StatusArgs),
    /// Quota tables: `targets import FILE` reads the plan's attachment into [targets].
    #[command(subcommand)]
    Targets(TargetsCommand),
    /// The daemon: take returns dropped into the units' folders, keep the master current.
    ///
    /// --once: process what is pending, rebuild the master, run due mail work, exit.
    Watch(crate::cmd::watch::WatchArgs),
    /// Rewrite the master workbook from the ledger (the previous version is archived).
    Rebuild,
    /// Who is lagging; queue and send the reminders, deadline reminders and digest due now
    /// (at most one per unit and schedule window). --dry-run: show them, send nothing.
    Remind(crate::cmd::remind::RemindArgs),
    /// Mail waiting or failed: `list` it (the default), or `retry` it now.
    Outbox(crate::cmd::outbox::OutboxArgs),
    /// Internal: read a return in a sandboxed child process.
    #[command(name = "__read", hide = true)]
    Read { file: PathBuf },
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Target folder (created if missing).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    /// Pre-fill 填报单位 with this unit.
    #[arg(long, value_name = "U")]
    pub unit: Option<String>,
    /// Output file (default: 培训情况月报模板.xlsx, or with the unit's name).
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The return (.xlsx, .xlsm, .xls, .ods).
    pub file: PathBuf,
    /// The unit whose folder the return belongs to (default: the unit folder it sits in).
    #[arg(long, value_name = "U")]
    pub unit: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Return files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The unit whose returns these are (its folder receives them).
    #[arg(long, value_name = "U")]
    pub unit: String,
}

#[derive(Debug, Subcommand)]
pub enum TargetsCommand {
    /// Import a quota breakdown table (序号 | 单位 | categories… | 合计) into [targets].
    Import(crate::targets::ImportArgs),
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print one JSON object (DESIGN.md §6) instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Settings resolved once: flags over environment over file.
pub struct Settings {
    pub config_path: PathBuf,
    pub config: Config,
    pub now: DateTime<Tz>,
}

impl Settings {
    pub fn load(global: &Global) -> anyhow::Result<Settings> {
        let config = Config::load(&global.config).map_err(|e| UsageError(e.to_string()))?;
        let now = match &global.now {
            Some(s) => plan::parse_now(s, config.tz).ok_or_else(|| {
                UsageError(format!(
                    "--now / {}: {s:?} is not a date (use RFC 3339 such as 2020-07-01T09:00:00+08:00, or 2020-07-01)",
                    env::NOW
                ))
            })?,
            None => chrono::Utc::now().with_timezone(&config.tz),
        };
        Ok(Settings {
            config_path: global.config.clone(),
            config,
            now,
        })
    }

    /// A unit named on the command line (name or alias), or a usage error.
    pub fn unit_arg(&self, name: &str) -> anyhow::Result<&crate::config::Unit> {
        self.config.find_unit(name).ok_or_else(|| {
            UsageError(format!(
                "--unit {name:?}: not a unit of {} (units: {})",
                self.config_path.display(),
                self.config.unit_names().join(", ")
            ))
            .into()
        })
    }

    /// The unit whose drop folder holds `file`, if it sits directly in one.
    pub fn unit_of_folder(&self, file: &Path) -> Option<&crate::config::Unit> {
        let folder = file.parent()?.file_name()?.to_str()?;
        self.config.unit_by_folder(folder)
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    match &cli.command {
        Command::Init(args) => crate::cmd::init::run(args),
        Command::Targets(TargetsCommand::Import(args)) => {
            crate::targets::run(&cli.global.config, args)
        }
        Command::Read { file } => {
            // The child must never fail on config: fall back to default limits.
            let limits = Config::load(&cli.global.config)
                .map(|c| c.limits)
                .unwrap_or_default();
            let code = crate::read::child_main(file, &limits);
            Ok(if code == 0 {
                ExitStatus::Success
            } else {
                ExitStatus::Error
            })
        }
        Command::Template(args) => {
            let settings = Settings::load(&cli.global)?;
            crate::cmd::template::run(&settings, args)
        }
        Command::Check(args) => {
            let settings = Settings::load(&cli.global)?;
            crate::cmd::check::run(&settings, args)
        }
        Command::Ingest(args) => {
            let settings = Settings::load(&cli.global)?;
            crate::cmd::ingest::run(&settings, args)
        }
        Command::Status(args) => {
            let settings = Settings::load(&cli.global)?;
            crate::cmd::status::run(&settings, args)
        }
        Command::Watch(args) => {
            let settings = Settings::load(&cli.global)?;
            crate::cmd::watch::run(&settings, &cli.global, args)
        }
        Command::Rebuild => {
            let settings = Settings::load(&cli.global)?;
            crate::cmd::rebuild::run(&settings)
        }
        Command::Remind(args) => {
            let settings = Settings::load(&cli.global)?;
            crate::cmd::remind::run(&settings, args)
        }
        Command::Outbox(args) => {
            let settings = Settings::load(&cli.global)?;
            crate::cmd::outbox::run(&settings, args)
        }
    }
}

/// Refuse to overwrite a file the user did not name.
pub fn ensure_absent(path: &Path) -> anyhow::Result<()> {
    if path.exists() {
        bail!(UsageError(format!(
            "{}: already exists; remove it or choose another name with -o",
            path.display()
        )));
    }
    Ok(())
}

/// Write bytes to a new or named file, with the path in any error.
pub fn write_file(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("{}: cannot create folder", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("{}: cannot write", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_flags_parse() {
        let cli = Cli::try_parse_from([
            "tally",
            "--now",
            "2020-07-01",
            "check",
            "a.xlsx",
            "--unit",
            "西兴街道",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.global.now.as_deref(), Some("2020-07-01"));
        let Command::Check(args) = cli.command else {
            panic!()
        };
        assert!(args.json);
        assert_eq!(args.unit.as_deref(), Some("西兴街道"));
    }

    #[test]
    fn config_defaults_to_tally_toml_and_is_global() {
        let cli = Cli::try_parse_from(["tally", "template"]).unwrap();
        assert_eq!(cli.global.config, PathBuf::from("tally.toml"));
        let cli =
            Cli::try_parse_from(["tally", "template", "--config", "x/t.toml", "-o", "f.xlsx"])
                .unwrap();
        assert_eq!(cli.global.config, PathBuf::from("x/t.toml"));
    }

    #[test]
    fn verbose_and_quiet_conflict() {
        assert!(Cli::try_parse_from(["tally", "-v", "-q", "template"]).is_err());
    }

    #[test]
    fn check_needs_a_file() {
        assert!(Cli::try_parse_from(["tally", "check"]).is_err());
    }
}
