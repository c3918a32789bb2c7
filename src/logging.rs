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
        .filename_prefix(prefix.clone())
        .max_log_files(LOG_FILES_KEPT);
    if let Some(s) = &suffix {
        builder = builder.filename_suffix(s);
    }
    let appender = builder
        .build(dir)
        .map_err(|e| format!("{}: cannot open the log file: {e}", file.display()))?;
    let private = PrivateLog::new(appender, dir, prefix, suffix);
    Ok(build(
        filter(),
        format,
        std::sync::Mutex::new(private),
        false,
    ))
}

/// The daemon's log file, owner-only (0600) on Unix whatever the umask: each day's file is
/// created with that mode just before the appender rolls over to it, and the files already
/// there are made so at start. Log lines name returns and units, never a full 身份证号, but a
/// log is the bureau's, not every account's on the machine.
struct PrivateLog {
    inner: tracing_appender::rolling::RollingFileAppender,
    dir: std::path::PathBuf,
    prefix: String,
    suffix: Option<String>,
    /// The UTC day whose file was last made private.
    day: Option<chrono::NaiveDate>,
}

impl PrivateLog {
    fn new(
        inner: tracing_appender::rolling::RollingFileAppender,
        dir: &std::path::Path,
        prefix: String,
        suffix: Option<String>,
    ) -> PrivateLog {
        let mut log = PrivateLog {
            inner,
            dir: dir.to_path_buf(),
            prefix,
            suffix,
            day: None,
        };
        if let Ok(entries) = std::fs::read_dir(&log.dir) {
            for e in entries.flatten() {
                if log.is_ours(&e.file_name().to_string_lossy()) {
                    let _ = crate::private::restrict_path(&e.path());
                }
            }
        }
        log.make_today_private();
        log
    }

    fn is_ours(&self, name: &str) -> bool {
        name.starts_with(&format!("{}.", self.prefix))
            && self
                .suffix
                .as_ref()
                .is_none_or(|s| name.ends_with(&format!(".{s}")))
    }

    /// tracing-appender names a daily file `prefix.YYYY-MM-DD[.suffix]`, by the UTC date.
    fn make_today_private(&mut self) {
        let today = chrono::Utc::now().date_naive();
        if self.day == Some(today) {
            return;
        }
        let mut name = format!("{}.{}", self.prefix, today.format("%Y-%m-%d"));
        if let Some(s) = &self.suffix {
            name = format!("{name}.{s}");
        }
        if crate::private::touch_file(&self.dir.join(name)).is_ok() {
            self.day = Some(today);
        }
    }
}

impl std::io::Write for PrivateLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.make_today_private();
        self.inner.write(buf)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
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
