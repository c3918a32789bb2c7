//! Logging set-up (tracing): readable lines on stderr; `-v`/`-q` pick the level, `RUST_LOG`
//! refines it. What the user asked for goes to stdout, never through here.

use tracing_subscriber::EnvFilter;

/// The log level asked for on the command line (`-v`, `-vv`, `-q`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Verbosity {
    pub verbose: u8,
    pub quiet: bool,
}

fn level(v: Verbosity) -> &'static str {
    match (v.quiet, v.verbose) {
        (true, _) => "error",
        (false, 0) => "info",
        (false, 1) => "debug",
        (false, _) => "trace",
    }
}

pub fn init(verbosity: Verbosity) {
    let level = level(verbosity);
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(format!("tally={level}")));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

/// Log line format of the daemon (`--log-format`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Readable lines.
    #[default]
    Text,
    /// One JSON object per line, fields at the top level (for log collectors).
    Json,
}

/// Log files kept by `--log-file` (one per day).
pub const LOG_FILES_KEPT: usize = 30;

/// The daemon's logger: `format` lines on stderr, or in `file` rotated daily
/// (`tally.log` → `tally.2020-07-01.log`, the newest [`LOG_FILES_KEPT`] kept). Install it for
/// the daemon's thread with `tracing::dispatcher::set_default`. The daemon logs one line per
/// file itself, so intake's own line is left out at the default level.
pub fn daemon(
    verbosity: Verbosity,
    format: LogFormat,
    file: Option<&std::path::Path>,
) -> Result<tracing::Dispatch, String> {
    let level = level(verbosity);
    let filter = || {
        EnvFilter::try_from_default_env().unwrap_or_else(|_| {
            let quiet_intake = if level == "info" {
                ",tally::intake=warn"
            } else {
                ""
            };
            EnvFilter::new(format!("tally={level}{quiet_intake}"))
        })
    };
    let Some(file) = file else {
        use std::io::IsTerminal;
        let ansi = std::io::stderr().is_terminal();
        return Ok(build(filter(), format, std::io::stderr, ansi));
    };
    let dir = file
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| format!("{}: not a file name", file.display()))?;
    let (prefix, suffix) = match name.rsplit_once('.') {
        Some((p, s)) if !p.is_empty() => (p.to_string(), Some(s.to_string())),
        _ => (name.clone(), None),
    };
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: cannot create: {e}", dir.display()))?;
    let mut builder = tracing_appender::rolling::RollingFileAppender::builder()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix(prefix)
        .max_log_files(LOG_FILES_KEPT);
    if let Some(s) = suffix {
        builder = builder.filename_suffix(s);
    }
    let appender = builder
        .build(dir)
        .map_err(|e| format!("{}: cannot open the log file: {e}", file.display()))?;
    Ok(build(filter(), format, appender, false))
}

fn build<W>(filter: EnvFilter, format: LogFormat, writer: W, ansi: bool) -> tracing::Dispatch
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi)
        .with_target(false);
    match format {
        LogFormat::Text => tracing::Dispatch::new(builder.finish()),
        LogFormat::Json => tracing::Dispatch::new(
            builder
                .json()
                .flatten_event(true)
                .with_current_span(false)
                .with_span_list(false)
                .finish(),
        ),
    }
}
