//! The `tally` binary: parse, set up logging, run, map the outcome to an exit code.

use clap::Parser;
use tally::cmd::Cli;
use tally::settings::ExitStatus;

fn main() {
    let cli = Cli::parse();
    tally::logging::init(cli.global.verbosity());
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "tally: internal error: {info}\n\
             tally: nothing was half-written (every change is one ledger transaction); \
             please report this message to the maintainers"
        );
    }));
    let status = match tally::cmd::run(cli) {
        Ok(status) => status,
        Err(err) => {
            // Configuration, usage and I/O errors: every message names its file, key or cell.
            eprintln!("tally: error: {err:#}");
            ExitStatus::Error
        }
    };
    std::process::exit(status.code());
}
