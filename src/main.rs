//! The `tally` binary: parse, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use tally::cli::{Cli, ExitStatus, UsageError};

fn main() {
    let cli = Cli::parse();
    tally::logging::init(&cli.global);
    let status = match tally::cli::run(cli) {
        Ok(status) => status,
        Err(err) => {
            eprintln!("tally: error: {err:#}");
            if err.downcast_ref::<UsageError>().is_some()
                || err.downcast_ref::<tally::config::ConfigError>().is_some()
            {
                ExitStatus::Error
            } else {
                ExitStatus::Error
            }
        }
    };
    std::process::exit(status.code());
}
