//! The command line (clap derive): global options, the subcommands and the dispatch to one
//! module per command, each holding its arguments, its usage text and its `run`. The top of
//! the program: nothing below `cmd` imports it.

pub mod check;
pub mod ingest;
pub mod init;
pub mod ledger;
pub mod outbox;
pub mod rebuild;
pub mod remind;
pub mod service;
pub mod status;
pub mod table;
pub mod targets;
pub mod template;
pub mod watch;

use crate::config::Config;
use crate::logging::Verbosity;
use crate::settings::{Environment, ExitStatus, Settings, UsageError, env};
use anyhow::{Context as _, bail};
use clap::{Args, Parser, Subcommand};
use std::path::{Path, PathBuf};

#[derive(Debug, Parser)]
#[command(
    name = "tally",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TALLY_COMMIT"), ")"),
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
    Init(init::InitArgs),
    /// Write the blank return workbook.
    Template(template::TemplateArgs),
    /// Validate a return; writes nothing. Exit 1 when it would be rejected.
    Check(check::CheckArgs),
    /// Take returns in by hand, as the daemon would (archive, ledger, move, feedback).
    Ingest(ingest::IngestArgs),
    /// Progress per unit and category at --now.
    Status(status::StatusArgs),
    /// Quota tables: `targets import FILE` reads the plan's attachment into [targets].
    #[command(subcommand)]
    Targets(targets::TargetsCommand),
    /// The daemon: take returns dropped into the units' folders, keep the master current.
    ///
    /// --once: process what is pending, rebuild the master, run due mail work, exit.
    Watch(watch::WatchArgs),
    /// Rewrite the master workbook from the ledger (the previous version is archived).
    Rebuild,
    /// Who is lagging; queue and send the reminders, deadline reminders and digest due now
    /// (at most one per unit and schedule window). --dry-run: show them, send nothing.
    Remind(remind::RemindArgs),
    /// Mail waiting or failed: `list` it (the default), or `retry` it now.
    Outbox(outbox::OutboxArgs),
    /// The ledger itself: `migrate --to URL` copies the SQLite ledger into PostgreSQL.
    #[command(subcommand)]
    Ledger(ledger::LedgerCommand),
    /// Windows: run `watch` as a Windows service (install, uninstall, start, stop, status).
    #[command(subcommand)]
    Service(service::ServiceCommand),
    /// Internal: read a return in a sandboxed child process.
    #[command(name = "__read", hide = true)]
    Read {
        /// The file; without it (`--serve`), the files asked for on stdin.
        file: Option<PathBuf>,
        /// Stay up: read each file asked for on stdin, until it ends.
        #[arg(
            long,
            hide = true,
            conflicts_with = "file",
            required_unless_present = "file"
        )]
        serve: bool,
        /// Windows: wait until the parent has put this process in its Job Object.
        #[arg(long, hide = true)]
        confined: bool,
        /// The parent's `[limits]` (`Limits::to_arg`); without it they are read from the
        /// plan's file.
        #[arg(long, hide = true)]
        limits: Option<String>,
    },
}

impl Global {
    /// The log level asked for with `-v` / `-q`.
    pub fn verbosity(&self) -> Verbosity {
        Verbosity {
            verbose: self.verbose,
            quiet: self.quiet,
        }
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    let global = &cli.global;
    match &cli.command {
        Command::Init(args) => return init::run(args),
        Command::Targets(targets::TargetsCommand::Import(args)) => {
            return targets::import(&global.config, args);
        }
        Command::Service(command) => {
            return service::run(&global.config, global.verbosity(), command);
        }
        Command::Read {
            file,
            serve,
            confined,
            limits,
        } => {
            // The child must never fail on config: fall back to default limits. The parent
            // passes its limits; else only `[limits]` is read (the plan is the parent's).
            let limits = limits
                .as_deref()
                .and_then(crate::read::Limits::from_arg)
                .unwrap_or_else(|| Config::reader_limits(&global.config));
            let fault = Environment::read().fault_reader;
            let code = match file {
                Some(file) if !serve => {
                    crate::read::child_main(file, &limits, fault.as_deref(), *confined)
                }
                _ => crate::read::server::serve_main(&limits, fault.as_deref(), *confined),
            };
            return Ok(if code == 0 {
                ExitStatus::Success
            } else {
                ExitStatus::Error
            });
        }
        _ => {}
    }
    // `check` starts reading its file before the plan is loaded: the reader child reads while
    // this process parses the plan (both cores).
    let early = match &cli.command {
        Command::Check(args) => check::start_reading(&global.config, &args.file),
        _ => None,
    };
    let settings = Settings::load(&global.config, global.now.as_deref())?;
    match &cli.command {
        Command::Init(_) | Command::Targets(_) | Command::Service(_) | Command::Read { .. } => {
            unreachable!("run above")
        }
        Command::Template(args) => template::run(&settings, args),
        Command::Check(args) => check::run(&settings, args, early),
        Command::Ingest(args) => ingest::run(&settings, args),
        Command::Status(args) => status::run(&settings, args),
        Command::Watch(args) => watch::run(&settings, global.verbosity(), args),
        Command::Rebuild => rebuild::run(&settings),
        Command::Remind(args) => remind::run(&settings, args),
        Command::Outbox(args) => outbox::run(&settings, args),
        Command::Ledger(command) => ledger::run(&settings, command),
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

    #[test]
    fn version_names_the_release_and_the_commit() {
        let err = Cli::try_parse_from(["tally", "--version"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayVersion);
        let shown = err.to_string();
        assert!(shown.starts_with(&format!("tally {} (commit ", env!("CARGO_PKG_VERSION"))));
        // build.rs: the short hash of HEAD, or "unknown" outside a git checkout.
        let commit = env!("TALLY_COMMIT");
        assert!(!commit.is_empty());
        assert!(shown.contains(&format!("(commit {commit})")), "{shown}");
    }
}
