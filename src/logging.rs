//! Logging set-up (tracing): readable lines on stderr; `-v`/`-q` pick the level, `RUST_LOG`
//! refines it. What the user asked for goes to stdout, never through here.

use crate::cli::Global;
use tracing_subscriber::EnvFilter;

pub fn init(global: &Global) {
    let level = match (global.quiet, global.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(format!("tally={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}
