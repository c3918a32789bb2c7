//! `tally watch [--once]`: the daemon. Resolves its options (flags over `[watch]` in
//! tally.toml), sets up its logger and the signal handler, and runs [`crate::watch::Daemon`] —
//! again with the new configuration when tally.toml is edited while it runs; the watching
//! itself lives in `watch` and `settle`.

use crate::logging::LogFormat;
use crate::logging::Verbosity;
use crate::settings::{ExitStatus, Settings, UsageError};
use crate::watch::{Clock, Daemon, Mode, Options, Stopper, secs};
use clap::Args;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Process what is pending (waiting for files to settle), rebuild the master, run the
    /// mail work that is due, then exit 0: for cron or the Windows Task Scheduler.
    #[arg(long)]
    pub once: bool,
    /// How new files are noticed: native events, poll (for SMB/CIFS and NFS shares, which
    /// send no events), or auto = native events plus a periodic rescan [watch.mode; auto].
    #[arg(long, value_enum, value_name = "MODE")]
    pub mode: Option<Mode>,
    /// Seconds between looks in poll mode [watch.poll_interval_secs; 30].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub poll_interval: Option<f64>,
    /// A file is taken when its size and mtime are unchanged across two looks this many
    /// seconds apart [watch.settle_secs; 2].
    #[arg(long, value_name = "SECS", value_parser = parse_secs)]
    pub settle: Option<f64>,
    /// Log lines as readable text or as JSON objects.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, value_name = "FORMAT")]
    pub log_format: LogFormat,
    /// Log to this file instead of stderr, rotated daily (tally.log → tally.2020-07-01.log).
    #[arg(long, value_name = "PATH")]
    pub log_file: Option<PathBuf>,
    /// Test hook, hidden from --help: seconds until a file intake could not take in is tried
    /// again when it has not changed (default 300), so that tests need not wait 5 minutes.
    #[arg(long, hide = true, value_name = "SECS", value_parser = parse_secs)]
    pub failed_retry: Option<f64>,
}

/// Seconds: a number from 0.01 to 86400, fractions allowed.
fn parse_secs(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && (0.01..=86_400.0).contains(&v) => Ok(v),
        _ => Err(format!(
            "{s:?} is not a number of seconds from 0.01 to 86400"
        )),
    }
}

pub fn run(
    settings: &Settings,
    verbosity: Verbosity,
    args: &WatchArgs,
) -> anyhow::Result<ExitStatus> {
    // One handler for the whole run: it stops whichever daemon is running (the daemon starts
    // again after tally.toml is edited), or the next one as soon as it starts.
    let current: Arc<Mutex<(bool, Option<Stopper>)>> = Arc::default();
    {
        let current = current.clone();
        let signals = AtomicUsize::new(0);
        if let Err(e) = ctrlc::set_handler(move || {
            if signals.fetch_add(1, Ordering::SeqCst) == 0 {
                let mut c = current.lock().unwrap_or_else(|p| p.into_inner());
                c.0 = true;
                if let Some(s) = &c.1 {
                    s.stop();
                }
            } else {
                // A second signal: stop now. The ledger is transactional; a restart finishes.
                std::process::exit(130);
            }
        }) {
            tracing::warn!(error = %e, "cannot handle SIGINT/SIGTERM; stopping may interrupt a file (a restart finishes it)");
        }
    }
    serve(settings, verbosity, args, |stopper| {
        let mut c = current.lock().unwrap_or_else(|p| p.into_inner());
        if c.0 {
            stopper.stop();
        }
        c.1 = Some(stopper);
    })
}

/// Run the daemon; `on_started` is given its stopper each time it starts watching (a signal
/// handler, or the Windows service's stop request): a stop finishes the file being taken in,
/// then the master, then returns. When tally.toml is edited into another valid configuration
/// the daemon stops the same way and starts again with it (`on_started` is called again).
pub fn serve(
    settings: &Settings,
    verbosity: Verbosity,
    args: &WatchArgs,
    mut on_started: impl FnMut(Stopper),
) -> anyhow::Result<ExitStatus> {
    let dispatch = crate::logging::daemon(verbosity, args.log_format, args.log_file.as_deref())
        .map_err(|e| UsageError(format!("--log-file: {e}")))?;
    let _log = tracing::dispatcher::set_default(&dispatch);
    log_panics();

    let mut reloaded: Option<Settings> = None;
    loop {
        let settings = reloaded.as_ref().unwrap_or(settings);
        let daemon = Daemon::start(
            &settings.config,
            &settings.config_path,
            options(settings, args),
        )?;
        on_started(daemon.stopper());
        let summary = daemon.run()?;
        if summary.reload {
            match settings.reloaded() {
                Ok(next) => {
                    tracing::info!("starting again with the edited configuration");
                    reloaded = Some(next);
                }
                // Edited again since it was checked: the one before goes on.
                Err(e) => {
                    tracing::error!(error = %e, "the edited configuration does not load after all; starting again with the one before");
                }
            }
            continue;
        }
        if args.once {
            println!(
                "已采用 {} 份，退回 {} 份，重复 {} 份，未能处理 {} 份，留待下次 {} 份",
                summary.accepted, summary.rejected, summary.duplicate, summary.failed, summary.left
            );
        }
        return Ok(ExitStatus::Success);
    }
}

/// The daemon's options: flags over `[watch]` in tally.toml.
fn options(settings: &Settings, args: &WatchArgs) -> Options {
    let config = &settings.config;
    let clock = if settings.fixed_clock {
        Clock::Fixed(settings.now)
    } else {
        Clock::Wall(config.plan.tz)
    };
    let mut opts = Options::from_config(&config.watch, clock);
    opts.once = args.once;
    opts.env = settings.env.clone();
    if let Some(m) = args.mode {
        opts.mode = m;
    }
    if let Some(s) = args.poll_interval {
        opts.poll_interval = secs(s);
    }
    if let Some(s) = args.settle {
        opts.timing.settle = secs(s);
    }
    if let Some(s) = args.failed_retry {
        opts.failed_retry = secs(s);
    }
    opts
}

/// Send panic messages to the daemon's log (a file, for a service) as well as stderr's default.
fn log_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let location = info
            .location()
            .map(|l| format!("{}:{}", l.file(), l.line()))
            .unwrap_or_default();
        tracing::error!(%location, panic = %info, "panic");
        default(info);
    }));
}

#[cfg(test)]
mod tests {
    use crate::cmd::{Cli, Command};
    use clap::Parser;

    fn watch(args: &[&str]) -> Result<super::WatchArgs, clap::Error> {
        let mut v = vec!["tally", "watch"];
        v.extend_from_slice(args);
        Cli::try_parse_from(v).map(|c| match c.command {
            Command::Watch(a) => a,
            _ => unreachable!(),
        })
    }

    #[test]
    fn defaults_come_from_the_config() {
        let a = watch(&[]).unwrap();
        assert!(!a.once);
        assert_eq!(a.mode, None);
        assert_eq!(a.settle, None);
        assert_eq!(a.poll_interval, None);
        assert_eq!(a.log_format, super::LogFormat::Text);
        assert_eq!(a.log_file, None);
        assert_eq!(a.failed_retry, None);
    }

    #[test]
    fn the_failed_retry_test_hook_parses_and_is_hidden() {
        assert_eq!(
            watch(&["--failed-retry", "0.5"]).unwrap().failed_retry,
            Some(0.5)
        );
        assert!(watch(&["--failed-retry", "0"]).is_err());
        let help = match Cli::try_parse_from(["tally", "watch", "--help"]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("--help prints help"),
        };
        assert!(help.contains("--settle"), "{help}");
        assert!(!help.contains("--failed-retry"), "{help}");
    }

    #[test]
    fn every_flag_parses() {
        let a = watch(&[
            "--once",
            "--mode",
            "poll",
            "--poll-interval",
            "0.5",
            "--settle",
            "0.3",
            "--log-format",
            "json",
            "--log-file",
            "/var/log/tally/tally.log",
        ])
        .unwrap();
        assert!(a.once);
        assert_eq!(a.mode, Some(super::Mode::Poll));
        assert_eq!(a.poll_interval, Some(0.5));
        assert_eq!(a.settle, Some(0.3));
        assert_eq!(a.log_format, super::LogFormat::Json);
        assert_eq!(
            a.log_file.as_deref(),
            Some(std::path::Path::new("/var/log/tally/tally.log"))
        );
        for m in ["native", "auto"] {
            assert!(watch(&["--mode", m]).is_ok(), "{m}");
        }
    }

    #[test]
    fn bad_values_are_refused() {
        assert!(watch(&["--mode", "inotify"]).is_err());
        assert!(watch(&["--settle", "-1"]).is_err());
        assert!(watch(&["--settle", "NaN"]).is_err());
        assert!(watch(&["--poll-interval", "0"]).is_err());
        assert!(watch(&["--log-format", "xml"]).is_err());
    }
}
