//! Settings resolved once per run — the plan folder's tally.toml, the clock and the
//! environment (flags over environment over file) — with the exit status and the usage error
//! every command returns. Every environment variable tally reads is named and read here, and
//! nowhere else. Below `cmd`; imports no command.

use crate::config::Config;
use crate::core::calendar;
use crate::core::plan::Unit;
use chrono::DateTime;
use chrono_tz::Tz;
use std::path::{Path, PathBuf};

/// Environment variables read by tally, all in one place.
pub mod env {
    /// Replaces the wall clock (RFC 3339 or YYYY-MM-DD).
    pub const NOW: &str = "TALLY_NOW";
    /// Overrides the SMTP server URL.
    pub const SMTP_URL: &str = "TALLY_SMTP_URL";
    /// SMTP password (never in tally.toml).
    pub const SMTP_PASSWORD: &str = "TALLY_SMTP_PASSWORD";
    /// Password of the PostgreSQL ledger server (`[ledger] url`; never in tally.toml).
    pub const LEDGER_PASSWORD: &str = "TALLY_LEDGER_PASSWORD";
    /// Password of the account `tally service install --account` names (Windows).
    pub const SERVICE_PASSWORD: &str = "TALLY_SERVICE_PASSWORD";
    /// Test hook: `enospc` or `panic` injected into the daemon's rounds, or `locked:MARKER`
    /// (every drop counts as still locked by its writer while the file MARKER exists).
    pub const FAULT_WATCH: &str = "TALLY_FAULT_WATCH";
    /// Test hook: `panic` injected into the reader child, or `hang` (it never finishes); for
    /// every file, or as `panic@NAME` for the files whose name contains NAME (a list,
    /// comma-separated).
    pub const FAULT_READER: &str = "TALLY_FAULT_READER";
}

/// What the environment says, read once at start.
#[derive(Clone, Default)]
pub struct Environment {
    /// `TALLY_SMTP_URL`, when set and not blank.
    pub smtp_url: Option<String>,
    /// `TALLY_SMTP_PASSWORD`.
    pub smtp_password: Option<String>,
    /// `TALLY_SERVICE_PASSWORD`.
    pub service_password: Option<String>,
    /// `TALLY_LEDGER_PASSWORD`.
    pub ledger_password: Option<String>,
    /// `TALLY_FAULT_WATCH` (tests only).
    pub fault_watch: Option<String>,
    /// `TALLY_FAULT_READER` (tests only).
    pub fault_reader: Option<String>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field(
                "smtp_url",
                &self.smtp_url.as_deref().map(crate::mail::url::redact),
            )
            .field("smtp_password", &self.smtp_password.as_ref().map(|_| "…"))
            .field(
                "service_password",
                &self.service_password.as_ref().map(|_| "…"),
            )
            .field(
                "ledger_password",
                &self.ledger_password.as_ref().map(|_| "…"),
            )
            .field("fault_watch", &self.fault_watch)
            .field("fault_reader", &self.fault_reader)
            .finish()
    }
}

impl Environment {
    /// Read the process environment (the only place tally does).
    pub fn read() -> Environment {
        let var = |name: &str| std::env::var(name).ok().filter(|s| !s.trim().is_empty());
        Environment {
            smtp_url: var(env::SMTP_URL),
            smtp_password: std::env::var(env::SMTP_PASSWORD).ok(),
            service_password: std::env::var(env::SERVICE_PASSWORD).ok(),
            ledger_password: std::env::var(env::LEDGER_PASSWORD)
                .ok()
                .filter(|p| !p.is_empty()),
            fault_watch: var(env::FAULT_WATCH),
            fault_reader: var(env::FAULT_READER),
        }
    }
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

/// Settings resolved once: flags over environment over file.
pub struct Settings {
    pub config_path: PathBuf,
    pub config: Config,
    pub now: DateTime<Tz>,
    /// `--now` (or `TALLY_NOW`) was given: the clock is fixed.
    pub fixed_clock: bool,
    pub env: Environment,
}

impl Settings {
    /// Load `config_path` and resolve the clock; `now` is `--now` / `TALLY_NOW` (clap reads the
    /// variable with the flag).
    pub fn load(config_path: &Path, now: Option<&str>) -> anyhow::Result<Settings> {
        let config = load_config(config_path)?;
        let tz = config.plan.tz;
        let fixed = match now {
            Some(s) => Some(calendar::parse_now(s, tz).ok_or_else(|| {
                UsageError(format!(
                    "--now / {}: {s:?} is not a date (use RFC 3339 such as 2020-07-01T09:00:00+08:00, or 2020-07-01)",
                    env::NOW
                ))
            })?),
            None => None,
        };
        Ok(Settings {
            config_path: config_path.to_path_buf(),
            now: fixed.unwrap_or_else(|| chrono::Utc::now().with_timezone(&tz)),
            fixed_clock: fixed.is_some(),
            config,
            env: Environment::read(),
        })
    }

    /// The same settings with the configuration loaded again from its file (the daemon, after
    /// tally.toml was edited); the clock and the environment stay.
    pub fn reloaded(&self) -> anyhow::Result<Settings> {
        Ok(Settings {
            config_path: self.config_path.clone(),
            config: load_config(&self.config_path)?,
            now: self.now,
            fixed_clock: self.fixed_clock,
            env: self.env.clone(),
        })
    }

    /// A unit named on the command line (name or alias), or a usage error.
    pub fn unit_arg(&self, name: &str) -> anyhow::Result<&Unit> {
        self.config.plan.find_unit(name).ok_or_else(|| {
            UsageError(format!(
                "--unit {name:?}: not a unit of {} (units: {})",
                self.config_path.display(),
                self.config.plan.unit_names().join(", ")
            ))
            .into()
        })
    }

    /// The unit whose drop folder holds `file`, if it sits directly in one.
    pub fn unit_of_folder(&self, file: &Path) -> Option<&Unit> {
        let folder = file.parent()?.file_name()?.to_str()?;
        self.config.plan.unit_by_folder(folder)
    }
}

/// Load `config_path`; name the folders holding personal data; give the ledger its password
/// (`TALLY_LEDGER_PASSWORD`, else the first line of `[ledger] password_file`).
fn load_config(config_path: &Path) -> anyhow::Result<Config> {
    let mut config = Config::load(config_path).map_err(|e| UsageError(e.to_string()))?;
    if config.ledger.url.is_some() {
        config.ledger.password = match Environment::read().ledger_password {
            Some(p) => Some(p),
            None => match &config.ledger.password_file {
                Some(file) => {
                    let file = config.resolve(file);
                    let text = std::fs::read_to_string(&file).map_err(|e| {
                        UsageError(format!(
                            "{}: [ledger] password_file {}: cannot read it: {e}",
                            config_path.display(),
                            file.display()
                        ))
                    })?;
                    Some(text.lines().next().unwrap_or("").to_string())
                }
                None => None,
            },
        };
    }
    // The ledger's folder and the archive hold full 身份证号: named here, once per load (never
    // in the `__read` child, which loads no settings), made owner-only when the ledger opens.
    let archive = config.archive_dir();
    if let Some(state) = config.state_path().parent() {
        let shared = [config.watch_root(), config.master_path()];
        let shared: Vec<&Path> = shared.iter().map(PathBuf::as_path).collect();
        let staging = archive.join(crate::private::STAGING_DIR);
        crate::private::register(state, &archive, &staging, &shared);
    }
    Ok(config)
}

/// A line for the user when `err` comes from a full or read-only disk: what to do about it.
pub fn storage_hint(err: &anyhow::Error) -> Option<&'static str> {
    use crate::durable::StorageFault;
    let fault = err
        .chain()
        .find_map(|e| {
            e.downcast_ref::<crate::ledger::LedgerError>()
                .and_then(|l| l.storage_fault())
        })
        .or_else(|| StorageFault::in_chain(err.as_ref()))?;
    Some(match fault {
        StorageFault::Full => "所在磁盘空间已满：请清理或扩容后再运行，未处理的文件都原样保留",
        StorageFault::ReadOnly => {
            "所在磁盘为只读状态：请恢复为可写后再运行，未处理的文件都原样保留"
        }
    })
}
