//! `tally service install|uninstall|start|stop|status` (Windows): `tally watch` as a Windows
//! service, registered with the Service Control Manager (the windows-service crate). The SCM
//! starts `tally --config <plan> service run`, which hands the daemon to the SCM; a stop
//! request drains the file being taken in and the master, like Ctrl-C. On other systems every
//! subcommand says, in Chinese, that it is Windows-only (systemd: contrib/tally.service).

#[cfg(windows)]
mod windows;

use crate::logging::Verbosity;
use crate::settings::ExitStatus;
use clap::{Args, Subcommand};
use std::path::Path;

/// The service name when `--name` is not given.
pub const DEFAULT_NAME: &str = "tally";

#[derive(Debug, Subcommand)]
pub enum ServiceCommand {
    /// Register `tally watch` on this plan (--config) as a service that starts at boot and is
    /// restarted after a failure; its log is <plan folder>\logs\tally.log.
    Install(InstallArgs),
    /// Stop the service (after the file it is taking in) and remove it.
    Uninstall(NameArg),
    /// Start the service and wait until it runs.
    Start(NameArg),
    /// Ask the service to stop: it finishes the file it is taking in and the master, then exits.
    Stop(NameArg),
    /// Whether the service is installed and running; exit 0 when it runs, 1 when it does not.
    Status(NameArg),
    /// Internal: what the Service Control Manager starts.
    #[command(hide = true)]
    Run(NameArg),
}

#[derive(Debug, Args)]
pub struct NameArg {
    /// The service's name (several plans on one machine need one service each).
    #[arg(long, default_value = DEFAULT_NAME, value_name = "NAME")]
    pub name: String,
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    #[command(flatten)]
    pub name: NameArg,
    /// The account the service runs as, e.g. `BINJIANG\svc-tally` (it needs read and write
    /// access to the shared drive); its password from the environment variable
    /// TALLY_SERVICE_PASSWORD. Default: LocalSystem (a local drive only).
    #[arg(long, value_name = "ACCOUNT")]
    pub account: Option<String>,
    /// Start the service right after installing it.
    #[arg(long)]
    pub start: bool,
}

/// Run a `service` subcommand on the plan at `config`.
pub fn run(
    config: &Path,
    verbosity: Verbosity,
    command: &ServiceCommand,
) -> anyhow::Result<ExitStatus> {
    #[cfg(windows)]
    {
        windows::run(config, verbosity, command)
    }
    #[cfg(not(windows))]
    {
        let _ = (config, verbosity, command);
        Err(crate::settings::UsageError(
            "tally service 只用于 Windows：它把 tally watch 注册为 Windows 服务。在 Linux 上请用 systemd（见 contrib/tally.service），或用 cron 定时运行 tally watch --once。".into(),
        )
        .into())
    }
}

#[cfg(test)]
mod tests {
    use crate::cmd::{Cli, Command};
    use clap::Parser;

    fn service(args: &[&str]) -> super::ServiceCommand {
        let mut v = vec!["tally", "--config", "C:\\tally\\tally.toml", "service"];
        v.extend_from_slice(args);
        match Cli::try_parse_from(v).unwrap().command {
            Command::Service(c) => c,
            _ => unreachable!(),
        }
    }

    #[test]
    fn install_takes_a_name_an_account_and_start() {
        match service(&["install"]) {
            super::ServiceCommand::Install(a) => {
                assert_eq!(a.name.name, super::DEFAULT_NAME);
                assert_eq!(a.account, None);
                assert!(!a.start);
            }
            c => panic!("{c:?}"),
        }
        match service(&[
            "install",
            "--name",
            "tally-2021",
            "--account",
            "BINJIANG\\svc-tally",
            "--start",
        ]) {
            super::ServiceCommand::Install(a) => {
                assert_eq!(a.name.name, "tally-2021");
                assert_eq!(a.account.as_deref(), Some("BINJIANG\\svc-tally"));
                assert!(a.start);
            }
            c => panic!("{c:?}"),
        }
        for sub in ["uninstall", "start", "stop", "status"] {
            let c = service(&[sub, "--name", "x"]);
            assert!(format!("{c:?}").contains("\"x\""), "{c:?}");
        }
    }

    #[test]
    fn run_is_hidden_from_help() {
        let help = match Cli::try_parse_from(["tally", "service", "--help"]) {
            Err(e) => e.to_string(),
            Ok(_) => panic!("--help prints help"),
        };
        assert!(help.contains("install"), "{help}");
        assert!(!help.contains("\n  run"), "{help}");
    }

    #[cfg(not(windows))]
    #[test]
    fn elsewhere_it_says_it_is_for_windows() {
        let e = super::run(
            std::path::Path::new("tally.toml"),
            Default::default(),
            &service(&["status"]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("只用于 Windows"), "{e}");
        assert!(e.downcast_ref::<crate::settings::UsageError>().is_some());
    }
}
