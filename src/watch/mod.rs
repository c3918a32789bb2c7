//! The daemon (`tally watch`): notify wrapped as [`Watcher`] `{ Native, Poll(Duration) }`, its
//! events converted once into [`FsEvent`]; a loop that feeds the settle machine
//! ([`crate::core::settle`]), takes settled files one at a time through [`intake::ingest`] and calls
//! [`after_burst`] once a burst is over. It owns the listing state in the ledger (which files
//! were seen, are being taken, failed, or lie outside a unit's folder). It never judges a
//! return itself (that is intake's job) and never writes outside intake and the master.

pub mod settings;

use crate::config::Config;
use crate::core::findings::{Code, Finding};
use crate::core::plan::Unit;
use crate::core::settle::{self, Class, Layout, Look, Outside, Ready, Settler, Stat, Timing};
use crate::intake::{self, IntakeContext, IntakeError, Outcome};
use crate::ledger::lock::{LockError, StateLock};
use crate::ledger::{Ledger, NewMessage, NewSubmission, Submission, SubmissionStatus};
use crate::mail::Transport;
use crate::settings::Environment;
use chrono::DateTime;
use chrono_tz::Tz;
use rusqlite::{OptionalExtension, params};
pub use settings::{Mode, WatchSettings};
use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

/// How long after a failure a file intake could not take in is tried again when it does not
/// change (in every mode: the loop re-adds it on its own timer, events or no events).
pub const FAILED_RETRY: Duration = Duration::from_secs(300);
/// A file whose processing killed the daemon this many times is rejected unread.
const MAX_CRASHES: i64 = 2;
/// The loop wakes at least this often (date change, missing folders, due mail work).
const HOUSEKEEPING: Duration = Duration::from_secs(30);
/// While a folder is missing, look for it this often.
const FOLDER_RETRY: Duration = Duration::from_secs(5);
/// A failed master rebuild is retried this much later.
const MASTER_RETRY: Duration = Duration::from_secs(30);
/// Scheduled mail (reminders, digest) and outbox retries are looked at this often, besides
/// after every burst.
const MAIL_EVERY: Duration = Duration::from_secs(300);

/// Seconds as a duration; callers have validated the value (config problems, flag parser).
pub fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

/// The clock for plan logic and records: `--now` fixed, or the wall clock read per file.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    Fixed(DateTime<Tz>),
    Wall(Tz),
}

impl Clock {
    pub fn now(&self) -> DateTime<Tz> {
        match self {
            Clock::Fixed(t) => *t,
            Clock::Wall(tz) => chrono::Utc::now().with_timezone(tz),
        }
    }
}

/// Everything the daemon is told, resolved once (flags over config).
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub poll_interval: Duration,
    pub rescan: Duration,
    pub timing: Timing,
    /// Process what is pending, then stop.
    pub once: bool,
    pub clock: Clock,
    /// A file intake could not take in is tried again this much later ([`FAILED_RETRY`];
    /// shorter only in tests).
    pub failed_retry: Duration,
    /// The environment, read once at start (SMTP overrides, test fault hooks).
    pub env: Environment,
}

impl Options {
    pub fn from_config(w: &WatchSettings, clock: Clock) -> Options {
        Options {
            mode: w.mode,
            poll_interval: secs(w.poll_interval_secs),
            rescan: secs(w.rescan_secs),
            timing: Timing::new(secs(w.settle_secs), secs(w.min_age_secs)),
            once: false,
            clock,
            failed_retry: FAILED_RETRY,
            env: Environment::default(),
        }
    }
}

/// Which notify watcher to run (watchexec's `Watcher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Watcher {
    /// The platform's native events.
    Native,
    /// notify's poll watcher, looking every interval.
    Poll(Duration),
}

/// What the daemon's loop receives: file system events and the stop request.
#[derive(Debug)]
pub enum Msg {
    Fs(FsEvent),
    /// SIGINT / SIGTERM / Ctrl-C: finish the current file, write the master, exit.
    Stop,
}

/// tally's own file system event: notify's are converted once, here.
#[derive(Debug)]
pub enum FsEvent {
    /// Something may have changed at this path: look at it.
    Changed(PathBuf),
    /// Events were lost (the kernel's queue overflowed): list every folder again.
    Rescan,
    /// The watcher reported a failure.
    Error(WatchError),
}

/// Convert one notify callback into tally's events.
pub fn convert(result: notify::Result<notify::Event>) -> Vec<FsEvent> {
    use notify::event::{AccessKind, AccessMode, EventKind};
    match result {
        Ok(event) => {
            if event.need_rescan() {
                return vec![FsEvent::Rescan];
            }
            match event.kind {
                // Opening or reading changes nothing; closing after a write is worth a look.
                EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
                EventKind::Access(_) => return Vec::new(),
                _ => {}
            }
            event.paths.into_iter().map(FsEvent::Changed).collect()
        }
        Err(e) => vec![FsEvent::Error(WatchError::from_notify(e, None))],
    }
}

/// Watcher failures. `Limit` and `RootMissing` have help text; none of them stops a running
/// daemon (it falls back to polling or waits), but `--once` and start-up report them.
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The operating system's limit on watches (`fs.inotify.max_user_watches`) or on watcher
    /// instances (`fs.inotify.max_user_instances`) is reached.
    #[error("{}the system's limit on {what} is reached; raise it with `sysctl {sysctl}=524288` (persist it in /etc/sysctl.d/), or run with --mode poll", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Limit {
        path: Option<PathBuf>,
        what: &'static str,
        sysctl: &'static str,
    },
    /// The watch root does not exist.
    #[error("{0}: the watch root does not exist (paths.watch_root); is the shared drive mounted?")]
    RootMissing(PathBuf),
    /// Any other failure of the watcher.
    #[error("{}cannot watch: {message}", path.as_ref().map(|p| format!("{}: ", p.display())).unwrap_or_default())]
    Other {
        path: Option<PathBuf>,
        message: String,
    },
}

impl WatchError {
    fn limit_watches(path: Option<PathBuf>) -> WatchError {
        WatchError::Limit {
            path,
            what: "inotify watches",
            sysctl: "fs.inotify.max_user_watches",
        }
    }

    /// Map notify's error; `path` is the path being watched, when known.
    pub fn from_notify(e: notify::Error, path: Option<&Path>) -> WatchError {
        let path = path
            .map(Path::to_path_buf)
            .or_else(|| e.paths.first().cloned());
        match &e.kind {
            notify::ErrorKind::MaxFilesWatch => WatchError::limit_watches(path),
            notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::ENOSPC) => {
                WatchError::limit_watches(path)
            }
            notify::ErrorKind::Io(io) if io.raw_os_error() == Some(libc::EMFILE) => {
                WatchError::Limit {
                    path,
                    what: "inotify instances",
                    sysctl: "fs.inotify.max_user_instances",
                }
            }
            _ => WatchError::Other {
                path,
                message: e.to_string(),
            },
        }
    }

    pub fn is_limit(&self) -> bool {
        matches!(self, WatchError::Limit { .. })
    }
}

impl Watcher {
    /// Start the watcher; its events go to `tx` as [`Msg::Fs`]. Nothing is watched yet.
    /// `fault` is the test hook `TALLY_FAULT_WATCH` (`enospc`: the watch limit is reached).
    pub fn create(
        self,
        tx: Sender<Msg>,
        fault: Option<&str>,
    ) -> Result<Box<dyn notify::Watcher + Send>, WatchError> {
        let handler = move |r: notify::Result<notify::Event>| {
            for e in convert(r) {
                let _ = tx.send(Msg::Fs(e));
            }
        };
        match self {
            Watcher::Native => {
                if fault == Some("enospc") {
                    return Err(WatchError::limit_watches(None));
                }
                <notify::RecommendedWatcher as notify::Watcher>::new(
                    handler,
                    notify::Config::default(),
                )
                .map(|w| Box::new(w) as Box<dyn notify::Watcher + Send>)
                .map_err(|e| WatchError::from_notify(e, None))
            }
            Watcher::Poll(interval) => <notify::PollWatcher as notify::Watcher>::new(
                handler,
                notify::Config::default().with_poll_interval(interval),
            )
            .map(|w| Box::new(w) as Box<dyn notify::Watcher + Send>)
            .map_err(|e| WatchError::from_notify(e, None)),
        }
    }
}

/// Asks a running daemon to stop (from a signal handler or another thread).
#[derive(Debug, Clone)]
pub struct Stopper(Sender<Msg>);

impl Stopper {
    pub fn stop(&self) {
        let _ = self.0.send(Msg::Stop);
    }
}

/// What a run did, for `--once`'s report and the tests.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    pub accepted: usize,
    pub rejected: usize,
    pub duplicate: usize,
    /// Files intake could not take in (they stay where they are).
    pub failed: usize,
    /// Files left because they were still changing (`--once`).
    pub left: usize,
    /// Master rebuilds (calls of [`after_burst`]).
    pub bursts: usize,
}

/// Builds the messages stored with a submission (receipt, rejection notice, alert).
type Compose<'a> = Box<dyn Fn(&Submission, &[Finding]) -> Vec<NewMessage> + 'a>;

fn composer(config: &Config) -> Compose<'_> {
    Box::new(crate::mail::messages::composer(config))
}

/// The running daemon.
pub struct Daemon<'a> {
    config: &'a Config,
    config_path: &'a Path,
    exe: PathBuf,
    opts: Options,
    ledger: Ledger,
    layout: Layout,
    settler: Settler,
    compose: Compose<'a>,
    transport: Transport,
    next_mail: Instant,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    source: Option<(Watcher, Box<dyn notify::Watcher + Send>)>,
    /// The identity (device, inode) of each watched folder when its watch was set: a folder
    /// replaced under the same path (recreated, a share remounted) needs a new watch.
    watched: HashMap<PathBuf, Option<(u64, u64)>>,
    stopping: bool,
    /// Start-up is done (a folder missing from now on has disappeared).
    started: bool,
    /// Files taken since the last rebuild, and when the first of them was.
    dirty: Option<(usize, Instant)>,
    master_retry_at: Option<Instant>,
    last_build_day: Option<chrono::NaiveDate>,
    next_rescan: Option<Instant>,
    /// Something (root or a unit folder) is missing: when to look again.
    folders_retry_at: Option<Instant>,
    missing_noted: HashSet<PathBuf>,
    /// Candidates already in the listing (saves a write per event).
    known: HashSet<PathBuf>,
    /// Files that failed, with what they looked like and when to retry unchanged.
    failed: HashMap<PathBuf, (Stat, Instant)>,
    summary: Summary,
    _lock: StateLock,
}

impl<'a> Daemon<'a> {
    /// Take the state lock, open the ledger, finish interrupted intakes. A second daemon on
    /// the same state is refused here ([`LockError::Busy`]).
    pub fn start(
        config: &'a Config,
        config_path: &'a Path,
        opts: Options,
    ) -> anyhow::Result<Daemon<'a>> {
        let lock = match StateLock::acquire(&config.state_path()) {
            Ok(l) => l,
            Err(e @ LockError::Busy { .. }) => {
                return Err(
                    crate::settings::UsageError(format!("cannot start the daemon: {e}")).into(),
                );
            }
            Err(e) => return Err(e.into()),
        };
        let ledger = Ledger::open(&config.state_path())?;
        // A bad SMTP setting is the user's to fix before the daemon runs for months.
        let transport = Transport::configured(config, &opts.env).map_err(|e| match e {
            crate::mail::MailError::Config(m) => crate::settings::UsageError(m).into(),
            e => anyhow::Error::from(e),
        })?;
        let exe = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot locate the tally binary: {e}"))?;
        let root = std::path::absolute(config.watch_root()).unwrap_or_else(|_| config.watch_root());
        let layout = Layout {
            root,
            unit_folders: config
                .plan
                .units
                .iter()
                .map(|u| u.folder().to_string())
                .collect(),
        };
        let settler = if opts.once {
            Settler::one_pass(opts.timing)
        } else {
            Settler::new(opts.timing)
        };
        let (tx, rx) = std::sync::mpsc::channel();
        Ok(Daemon {
            config,
            config_path,
            exe,
            compose: composer(config),
            transport,
            next_mail: Instant::now() + MAIL_EVERY,
            opts,
            ledger,
            layout,
            settler,
            tx,
            rx,
            source: None,
            watched: HashMap::new(),
            stopping: false,
            started: false,
            dirty: None,
            master_retry_at: None,
            last_build_day: None,
            next_rescan: None,
            folders_retry_at: None,
            missing_noted: HashSet::new(),
            known: HashSet::new(),
            failed: HashMap::new(),
            summary: Summary::default(),
            _lock: lock,
        })
    }

    /// A handle that stops the loop after the current file.
    pub fn stopper(&self) -> Stopper {
        Stopper(self.tx.clone())
    }

    /// Run until stopped (or, with `--once`, until nothing pending can settle).
    pub fn run(mut self) -> anyhow::Result<Summary> {
        let now = Instant::now();
        self.resume()?;
        if self.opts.once && !self.layout.root.is_dir() {
            return Err(crate::settings::UsageError(
                WatchError::RootMissing(self.layout.root.clone()).to_string(),
            )
            .into());
        }
        self.check_folders(now);
        if !self.opts.once {
            self.start_watching();
        }
        self.scan(now);
        self.started = true;
        tracing::info!(
            root = %self.layout.root.display(),
            mode = %self.source_name(),
            settle_ms = self.opts.timing.settle.as_millis() as u64,
            pending = self.settler.pending(),
            "watching"
        );
        loop {
            if self.stopping {
                break;
            }
            if self.opts.once && self.settler.pending() == 0 {
                break;
            }
            let timeout = self.next_deadline(Instant::now());
            match self.rx.recv_timeout(timeout) {
                Ok(msg) => self.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            self.drain();
            self.step();
        }
        // Stopping or done: whatever was taken goes into the master now.
        if self.dirty.is_some() || self.opts.once {
            self.finish_burst();
        }
        for p in self.settler.take_given_up() {
            tracing::info!(file = %p.display(), "still changing; left for the next run");
            self.summary.left += 1;
        }
        tracing::info!(
            accepted = self.summary.accepted,
            rejected = self.summary.rejected,
            duplicate = self.summary.duplicate,
            failed = self.summary.failed,
            "stopped"
        );
        Ok(self.summary)
    }

    fn source_name(&self) -> &'static str {
        match (&self.source, self.opts.once) {
            (_, true) => "once",
            (Some((Watcher::Native, _)), _) if self.opts.mode == Mode::Auto => "auto",
            (Some((Watcher::Native, _)), _) => "native",
            (Some((Watcher::Poll(_), _)), _) => "poll",
            (None, _) => "rescan",
        }
    }

    /// Finish interrupted intakes and note a master left stale by a crash.
    fn resume(&mut self) -> anyhow::Result<()> {
        let now = self.opts.clock.now();
        let ctx = IntakeContext {
            config: self.config,
            config_path: self.config_path,
            exe: &self.exe,
            now,
            compose: &*self.compose,
        };
        // A file that cannot be finished now (its folder unwritable, say) does not keep the
        // daemon from starting: intake finishes it when the file is taken.
        let done = intake::resume_pending(&ctx, &mut self.ledger).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "an interrupted intake could not be finished yet");
            Vec::new()
        });
        for s in &done {
            tracing::info!(unit = %s.unit, file = %s.file_name, result = %s.status.as_str(), "interrupted intake finished");
        }
        let stale = listing::state(&mut self.ledger, "master_stale")?.is_some();
        // A master that is missing, or from an earlier day (its expected figures move with
        // the date), is rebuilt at start.
        let today = now.date_naive();
        let outdated = match std::fs::metadata(self.config.master_path()).and_then(|m| m.modified())
        {
            Err(_) => true,
            Ok(t) => {
                matches!(self.opts.clock, Clock::Wall(_))
                    && DateTime::<chrono::Utc>::from(t)
                        .with_timezone(&self.config.plan.tz)
                        .date_naive()
                        != today
            }
        };
        if stale || outdated || !done.is_empty() {
            self.dirty = Some((done.len(), Instant::now()));
        }
        self.last_build_day = Some(today);
        Ok(())
    }

    // ---- watching --------------------------------------------------------------------------

    fn start_watching(&mut self) {
        let first = match self.opts.mode {
            Mode::Native | Mode::Auto => Watcher::Native,
            Mode::Poll => Watcher::Poll(self.opts.poll_interval),
        };
        if let Err(e) = self.watch_with(first) {
            if first == Watcher::Native {
                let poll = Watcher::Poll(self.opts.poll_interval);
                tracing::warn!(
                    error = %e,
                    "native file events unavailable; falling back to polling every {:?}",
                    self.opts.poll_interval
                );
                if let Err(e) = self.watch_with(poll) {
                    tracing::error!(error = %e, "cannot poll either; relying on rescans");
                }
            } else {
                tracing::error!(error = %e, "cannot poll; relying on rescans");
            }
        }
        if self.opts.mode != Mode::Native || self.source.is_none() {
            self.next_rescan = Some(Instant::now() + self.opts.rescan);
        }
    }

    fn watch_with(&mut self, kind: Watcher) -> Result<(), WatchError> {
        let mut w = kind.create(self.tx.clone(), self.opts.env.fault_watch.as_deref())?;
        let mut watched = HashMap::new();
        for dir in self.watched_dirs() {
            if dir.is_dir() {
                w.watch(&dir, notify::RecursiveMode::NonRecursive)
                    .map_err(|e| WatchError::from_notify(e, Some(&dir)))?;
                watched.insert(dir.clone(), identity(&dir));
            }
        }
        self.source = Some((kind, w));
        self.watched = watched;
        Ok(())
    }

    /// The root and every unit folder: each watched on its own, not recursively, so that
    /// 已接收/ and 退回/ (growing all year) cost nothing.
    fn watched_dirs(&self) -> Vec<PathBuf> {
        std::iter::once(self.layout.root.clone())
            .chain(
                self.layout
                    .unit_folders
                    .iter()
                    .map(|f| self.layout.root.join(f)),
            )
            .collect()
    }

    /// (Re-)watch one folder that has (re)appeared.
    fn rewatch(&mut self, dir: &Path) {
        let Some((kind, w)) = &mut self.source else {
            return;
        };
        let _ = w.unwatch(dir);
        self.watched.insert(dir.to_path_buf(), identity(dir));
        if let Err(e) = w.watch(dir, notify::RecursiveMode::NonRecursive) {
            let e = WatchError::from_notify(e, Some(dir));
            if e.is_limit() && *kind == Watcher::Native {
                tracing::warn!(error = %e, "falling back to polling every {:?}", self.opts.poll_interval);
                self.source = None;
                if let Err(e) = self.watch_with(Watcher::Poll(self.opts.poll_interval)) {
                    tracing::error!(error = %e, "cannot poll either; relying on rescans");
                }
                self.next_rescan
                    .get_or_insert(Instant::now() + self.opts.rescan);
            } else {
                tracing::warn!(error = %e, "cannot watch; relying on rescans");
                self.next_rescan
                    .get_or_insert(Instant::now() + self.opts.rescan);
            }
        }
    }

    /// Make sure the root and every unit folder exist: unit folders are recreated, a missing
    /// root (an unmounted share) is waited for.
    fn check_folders(&mut self, now: Instant) {
        let root = self.layout.root.clone();
        if !root.is_dir() {
            if self.missing_noted.insert(root.clone()) {
                tracing::warn!(error = %WatchError::RootMissing(root.clone()), "waiting for the watch root");
            }
            self.folders_retry_at = Some(now + FOLDER_RETRY);
            return;
        }
        let mut rewatch = Vec::new();
        let root_back = self.missing_noted.remove(&root);
        if root_back {
            tracing::info!(root = %root.display(), "the watch root is back");
            rewatch.push(root.clone());
        }
        let mut missing = false;
        for f in self.layout.unit_folders.clone() {
            let dir = root.join(&f);
            if dir.is_dir() {
                if self.missing_noted.remove(&dir) || root_back {
                    rewatch.push(dir);
                }
                continue;
            }
            match std::fs::create_dir_all(&dir) {
                Ok(()) if !self.started => {
                    tracing::info!(folder = %dir.display(), "created a unit folder");
                    rewatch.push(dir);
                }
                Ok(()) => {
                    tracing::warn!(folder = %dir.display(), "a unit folder was missing; recreated it");
                    self.missing_noted.remove(&dir);
                    rewatch.push(dir);
                }
                Err(e) => {
                    missing = true;
                    if self.missing_noted.insert(dir.clone()) {
                        tracing::warn!(folder = %dir.display(), error = %e, "a unit folder is missing and cannot be recreated; waiting for it");
                    }
                }
            }
        }
        self.folders_retry_at = missing.then(|| now + FOLDER_RETRY);
        for dir in rewatch {
            self.rewatch(&dir);
            // Files may have arrived with the folder.
            self.scan_unit_folder(&dir, now);
        }
    }

    // ---- the loop --------------------------------------------------------------------------

    fn next_deadline(&self, now: Instant) -> Duration {
        let mut at = now + HOUSEKEEPING;
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                at = at.min(t);
            }
        };
        consider(self.settler.next_wakeup());
        consider(self.next_rescan);
        consider(self.folders_retry_at);
        consider(self.master_retry_at);
        if !self.opts.once {
            if !self.mail_held() {
                consider(Some(self.next_mail));
            }
            consider(self.failed.values().map(|(_, at)| *at).min());
        }
        if let Some((_, since)) = self.dirty
            && self.master_retry_at.is_none()
        {
            // A burst ends when nothing is settling; check again soon, and by the cap.
            consider(Some(now + Duration::from_millis(50)).filter(|_| !self.settler.settling(now)));
            consider(Some(since + self.burst_cap()));
        }
        at.saturating_duration_since(now)
    }

    /// The longest a burst may hold the master back (a file written forever must not).
    fn burst_cap(&self) -> Duration {
        (self.opts.timing.settle * 10).max(Duration::from_secs(10))
    }

    /// Whether scheduled mail waits for the end of a burst (which runs the mail work itself).
    /// It does not wait while a failed master rebuild waits to be retried: mail must not stop
    /// because the master cannot be written.
    fn mail_held(&self) -> bool {
        self.dirty.is_some() && self.master_retry_at.is_none()
    }

    /// Whether the current burst has held the master back as long as it may.
    fn burst_overdue(&self, now: Instant) -> bool {
        self.master_retry_at.is_none()
            && self
                .dirty
                .is_some_and(|(_, since)| now.saturating_duration_since(since) >= self.burst_cap())
    }

    /// Handle events waiting in the queue without blocking.
    fn drain(&mut self) {
        while let Ok(msg) = self.rx.try_recv() {
            self.handle(msg);
        }
    }

    fn handle(&mut self, msg: Msg) {
        let now = Instant::now();
        match msg {
            Msg::Stop => {
                if !self.stopping {
                    tracing::info!(
                        "stop requested: finishing the current file, then writing the master"
                    );
                }
                self.stopping = true;
            }
            Msg::Fs(FsEvent::Changed(path)) => self.consider(path, now),
            Msg::Fs(FsEvent::Rescan) => {
                tracing::debug!("events were lost; rescanning");
                self.scan(now);
            }
            Msg::Fs(FsEvent::Error(e)) => {
                tracing::warn!(error = %e, "file watcher error; rescanning");
                if e.is_limit()
                    && let Some((Watcher::Native, _)) = self.source
                {
                    self.source = None;
                    if let Err(e) = self.watch_with(Watcher::Poll(self.opts.poll_interval)) {
                        tracing::error!(error = %e, "cannot poll either; relying on rescans");
                    }
                }
                self.scan(now);
            }
        }
    }

    /// One path from an event or a listing.
    fn consider(&mut self, path: PathBuf, now: Instant) {
        match self.layout.classify(&path) {
            Class::Return { folder } => {
                match std::fs::metadata(&path) {
                    Ok(m) if m.is_dir() => {
                        self.note_outside(&path, &Outside::SubFolder(folder));
                        return;
                    }
                    Ok(_) => {}
                    Err(_) => {
                        // Gone (moved away, removed): a pending entry learns so at its look.
                        if self.settler.contains(&path) {
                            self.settler.add_event(path, folder, now);
                        }
                        return;
                    }
                }
                if self.known.insert(path.clone()) {
                    let unit = self.unit_of(&folder).map(|u| u.name.clone());
                    let at = self.stamp();
                    if let Err(e) = listing::seen(&mut self.ledger, &path, unit.as_deref(), &at) {
                        tracing::warn!(error = %e, "cannot record the listing");
                    }
                }
                self.settler.add_event(path, folder, now);
            }
            Class::Folder => {
                if !path.exists() || self.folders_retry_at.is_some() {
                    self.check_folders(now);
                } else if path != self.layout.root {
                    // A unit folder appeared or changed as a whole: watch it anew if it is
                    // another folder under the same name, and look inside.
                    if self
                        .watched
                        .get(&path)
                        .is_some_and(|id| id.is_some() && *id != identity(&path))
                    {
                        self.rewatch(&path);
                    }
                    self.scan_unit_folder(&path, now);
                }
            }
            Class::Ignored(_) => {}
            Class::Outside(why) => {
                let why = match why {
                    Outside::InRoot if path.is_dir() => Outside::ForeignFolder(
                        path.file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default(),
                    ),
                    why => why,
                };
                if path.exists() {
                    self.note_outside(&path, &why);
                }
            }
        }
    }

    /// Log once that a file or folder in the watch root is not counted.
    fn note_outside(&mut self, path: &Path, why: &Outside) {
        let at = self.stamp();
        match listing::outside(&mut self.ledger, path, &at) {
            Ok(true) => tracing::warn!(
                path = %path.display(),
                "not counted: {}",
                why.explain()
            ),
            Ok(false) => {}
            Err(e) => tracing::warn!(error = %e, "cannot record the listing"),
        }
    }

    /// List the root and every unit folder (one level each); forget listing rows of files
    /// that are gone.
    fn scan(&mut self, now: Instant) {
        let root = self.layout.root.clone();
        let Ok(entries) = std::fs::read_dir(&root) else {
            self.check_folders(now);
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            match self.layout.classify(&path) {
                Class::Folder => self.scan_unit_folder(&path, now),
                Class::Outside(Outside::InRoot) if path.is_dir() => {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    self.note_outside(&path, &Outside::ForeignFolder(name));
                }
                _ => self.consider(path, now),
            }
        }
        self.check_folders(now);
        let replaced: Vec<PathBuf> = self
            .watched
            .iter()
            .filter(|(dir, id)| id.is_some() && identity(dir).is_some_and(|now| Some(now) != **id))
            .map(|(dir, _)| dir.clone())
            .collect();
        for dir in replaced {
            tracing::info!(folder = %dir.display(), "a watched folder was replaced (recreated or remounted); watching the new one");
            self.rewatch(&dir);
        }
        if let Err(e) = listing::forget_missing(&mut self.ledger) {
            tracing::warn!(error = %e, "cannot tidy the listing");
        }
        self.known.retain(|p| p.exists());
        if self.next_rescan.is_some() {
            self.next_rescan = Some(now + self.opts.rescan);
        }
    }

    fn scan_unit_folder(&mut self, dir: &Path, now: Instant) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut paths: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        paths.sort();
        for p in paths {
            self.consider(p, now);
        }
    }

    /// Looks that are due, files that settled, the end of a burst, timers.
    fn step(&mut self) {
        let now = Instant::now();
        if self.next_rescan.is_some_and(|t| t <= now) {
            self.scan(now);
        }
        if self.folders_retry_at.is_some_and(|t| t <= now) {
            self.check_folders(now);
        }
        if !self.opts.once {
            self.retry_failed(now);
        }
        self.look(now);
        // Files that settle while others are taken join the same burst: take until none is
        // ready. Each round takes at least one file; a burst that has held the master back
        // as long as it may stops here, and the rest is taken after the rebuild.
        'take: loop {
            let ready = self.settler.take_ready();
            if ready.is_empty() {
                break;
            }
            for r in ready {
                if self.stopping {
                    // Left in its folder: the next start takes it.
                    break 'take;
                }
                self.take(r);
                self.drain();
                // Looks that fell due while the file was processed.
                self.look(Instant::now());
            }
            if !self.opts.once && self.burst_overdue(Instant::now()) {
                break;
            }
        }
        self.maybe_end_burst(Instant::now());
        if !self.opts.once && !self.mail_held() && Instant::now() >= self.next_mail {
            self.next_mail = Instant::now() + MAIL_EVERY;
            mail_work(
                self.config,
                &mut self.ledger,
                self.opts.clock.now(),
                &self.transport,
            );
        }
        if !self.opts.once {
            let today = self.opts.clock.now().date_naive();
            if self.dirty.is_none() && self.last_build_day.is_some_and(|d| d != today) {
                // Expected progress moves with the date: refresh the master daily.
                self.dirty = Some((0, Instant::now()));
            }
        }
    }

    /// Files intake could not take in whose retry is due are considered again (as if an
    /// event had come for them), so that the retry happens in native mode too, where no
    /// periodic rescan would find them. One that fails again is noted again by [`Self::fail`].
    fn retry_failed(&mut self, now: Instant) {
        let due: Vec<PathBuf> = self
            .failed
            .iter()
            .filter(|(_, (_, at))| *at <= now)
            .map(|(p, _)| p.clone())
            .collect();
        for path in due {
            self.failed.remove(&path);
            if path.is_file() {
                tracing::info!(file = %path.display(), "trying again a file that was not taken in");
            }
            self.consider(path, now);
        }
    }

    fn look(&mut self, now: Instant) {
        for path in self.settler.due(now) {
            let look = look_at(&path);
            self.settler.observe(&path, look, now, SystemTime::now());
        }
    }

    fn maybe_end_burst(&mut self, now: Instant) {
        let Some((_, since)) = self.dirty else { return };
        if self.opts.once || self.stopping {
            return; // done once, at the end of run()
        }
        if self.master_retry_at.is_some_and(|t| t > now) {
            return;
        }
        if self.settler.settling(now) && now.saturating_duration_since(since) < self.burst_cap() {
            return; // more of the burst is on its way
        }
        self.finish_burst();
    }

    fn finish_burst(&mut self) {
        let files = self.dirty.map_or(0, |(n, _)| n);
        let started = Instant::now();
        let now = self.opts.clock.now();
        match after_burst(self.config, &mut self.ledger, now, &self.transport) {
            Ok(report) => {
                self.summary.bursts += 1;
                self.next_mail = Instant::now() + MAIL_EVERY;
                self.dirty = None;
                self.master_retry_at = None;
                self.last_build_day = Some(now.date_naive());
                if let Err(e) = listing::clear_state(&mut self.ledger, "master_stale") {
                    tracing::warn!(error = %e, "cannot record the listing");
                }
                tracing::info!(
                    files,
                    master = %report.master.display(),
                    ms = started.elapsed().as_millis() as u64,
                    "burst finished"
                );
            }
            Err(e) => {
                // The mail work has run all the same.
                tracing::warn!(error = %e, "the master could not be written; retrying in {:?}", MASTER_RETRY);
                self.next_mail = Instant::now() + MAIL_EVERY;
                self.master_retry_at = Some(Instant::now() + MASTER_RETRY);
            }
        }
    }

    // ---- one file --------------------------------------------------------------------------

    fn unit_of(&self, folder: &str) -> Option<&'a Unit> {
        let config: &'a Config = self.config;
        config.plan.units.iter().find(|u| u.folder() == folder)
    }

    fn stamp(&self) -> String {
        self.opts
            .clock
            .now()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
    }

    /// Take one settled file through intake, catching a panic.
    fn take(&mut self, ready: Ready) {
        let path = ready.path.clone();
        let Some(unit) = self.unit_of(&ready.folder) else {
            return;
        };
        if !path.is_file() {
            return; // taken away since it settled
        }
        if let Some((stat, retry_at)) = self.failed.get(&path)
            && *stat == ready.stat
            && Instant::now() < *retry_at
        {
            return;
        }
        let at = self.stamp();
        let crashes = match listing::begin(&mut self.ledger, &path, &unit.name, ready.stat, &at) {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!(error = %e, "cannot record the listing");
                0
            }
        };
        let started = Instant::now();
        let now = self.opts.clock.now();
        let ctx = IntakeContext {
            config: self.config,
            config_path: self.config_path,
            exe: &self.exe,
            now,
            compose: &*self.compose,
        };
        let ledger = &mut self.ledger;
        let result = if crashes >= MAX_CRASHES {
            tracing::error!(unit = %unit.name, file = %path.display(), crashes, "tally stopped abruptly while taking this file before; rejecting it unread");
            catch_unwind(AssertUnwindSafe(|| {
                reject_internal(&ctx, ledger, unit, &path)
            }))
        } else {
            let first = catch_unwind(AssertUnwindSafe(|| {
                if self.opts.env.fault_watch.as_deref() == Some("panic") {
                    panic!("fault injected by {}", crate::settings::env::FAULT_WATCH);
                }
                intake::ingest(&ctx, ledger, unit, &path)
            }));
            match first {
                Err(panic) => {
                    tracing::error!(unit = %unit.name, file = %path.display(), panic = panic_text(&*panic), "panic while taking a file; rejecting it as internal-error");
                    catch_unwind(AssertUnwindSafe(|| {
                        reject_internal(&ctx, ledger, unit, &path)
                    }))
                }
                ok => ok,
            }
        };
        let ms = started.elapsed().as_millis() as u64;
        let file = ready
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.settler.forget(&path);
        match result {
            Ok(Ok(outcome)) => {
                let s = &outcome.submission;
                match s.status {
                    SubmissionStatus::Rejected => self.summary.rejected += 1,
                    SubmissionStatus::Duplicate => self.summary.duplicate += 1,
                    _ => self.summary.accepted += 1,
                }
                tracing::info!(
                    unit = %unit.name,
                    file = %file,
                    result = %s.status.as_str(),
                    rows = s.rows,
                    errors = s.errors,
                    warnings = s.warnings,
                    ms,
                    "file taken"
                );
                self.failed.remove(&path);
                self.known.remove(&path);
                if let Err(e) = listing::done(&mut self.ledger, &path) {
                    tracing::warn!(error = %e, "cannot record the listing");
                }
                let n = self.dirty.map_or(0, |(n, _)| n) + 1;
                let since = self.dirty.map_or_else(Instant::now, |(_, t)| t);
                self.dirty = Some((n, since));
                if let Err(e) = listing::set_state(&mut self.ledger, "master_stale", "1") {
                    tracing::warn!(error = %e, "cannot record the listing");
                }
            }
            Ok(Err(e)) => self.fail(&path, unit, &file, ready.stat, ms, &e.to_string()),
            Err(panic) => {
                let msg = panic_text(&*panic);
                self.fail(&path, unit, &file, ready.stat, ms, &format!("panic: {msg}"));
            }
        }
    }

    fn fail(&mut self, path: &Path, unit: &Unit, file: &str, stat: Stat, ms: u64, error: &str) {
        self.summary.failed += 1;
        let retry = self.opts.failed_retry;
        let retry_text = if retry >= Duration::from_secs(60) {
            format!("{} min", retry.as_secs() / 60)
        } else {
            format!("{:.1} s", retry.as_secs_f64())
        };
        tracing::warn!(
            unit = %unit.name,
            file = %file,
            result = %"failed",
            rows = 0,
            ms,
            error = %error,
            "file not taken in; it stays where it is and is retried when it changes or in {retry_text}"
        );
        self.failed
            .insert(path.to_path_buf(), (stat, Instant::now() + retry));
        let at = self.stamp();
        if let Err(e) = listing::failed(&mut self.ledger, path, error, &at) {
            tracing::warn!(error = %e, "cannot record the listing");
        }
    }
}

/// A folder's (device, inode), where the platform has them.
fn identity(dir: &Path) -> Option<(u64, u64)> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(dir).ok().map(|m| (m.dev(), m.ino()))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        None
    }
}

/// The text of a caught panic.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into())
}

/// Look at one path: size, mtime, whether an office program holds it, whether it opens.
pub fn look_at(path: &Path) -> Look {
    let Ok(meta) = std::fs::metadata(path) else {
        return Look::Gone;
    };
    if !meta.is_file() {
        return Look::Gone;
    }
    let stat = Stat {
        size: meta.len(),
        mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(dir) = path.parent()
        && settle::lock_names(&name)
            .iter()
            .any(|l| dir.join(l).exists())
    {
        return Look::Held(stat);
    }
    if std::fs::File::open(path).is_err() {
        return Look::Unopenable(stat);
    }
    Look::Open(stat)
}

/// The message of an internal-error rejection.
const INTERNAL_ERROR_MESSAGE: &str = "系统处理此文件时发生内部错误，未能完成检查，本次报送暂未计入。文件已存档保留，请联系区安监局处理，或用 Excel/WPS 另存为 .xlsx 后重新报送。";

/// Reject a file whose processing panicked (or killed tally before) as `internal-error`,
/// without reading it again: archive copy, one ledger record, feedback, move into 退回/.
/// When intake had already recorded it before the panic, only its move is finished.
fn reject_internal(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    unit: &Unit,
    path: &Path,
) -> Result<Outcome, IntakeError> {
    let config = ctx.config;
    let sha = intake::hash_file(path)?;
    let source = path.to_string_lossy().into_owned();
    if ledger
        .unmoved()?
        .iter()
        .any(|s| s.sha256 == sha && s.source_path == source)
    {
        return intake::ingest(ctx, ledger, unit, path);
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "return.xlsx".into());
    let archive_rel = PathBuf::from(unit.folder())
        .join("未识别月份")
        .join(format!(
            "{}-{}-{}",
            ctx.now.format("%Y%m%dT%H%M%S"),
            &sha[..12],
            file_name
        ));
    let archive_abs = config.archive_dir().join(&archive_rel);
    if !archive_abs.exists() {
        intake::copy_durable(path, &archive_abs)?;
    }
    let dest = intake::free_name(
        &config.unit_dir(unit).join(intake::REJECTED_DIR),
        &file_name,
        |p| p.exists() || intake::feedback_path_for(p).exists(),
    );
    let feedback = intake::feedback_path_for(&dest);
    let findings = vec![Finding::file(Code::InternalError, INTERNAL_ERROR_MESSAGE)];
    let received_at = ctx.now.to_rfc3339_opts(chrono::SecondsFormat::Secs, false);
    let new = NewSubmission {
        sha256: sha,
        unit: unit.name.clone(),
        month: None,
        file_name: file_name.clone(),
        source_path: source,
        archive_path: archive_rel.to_string_lossy().into_owned(),
        received_at: received_at.clone(),
        status: SubmissionStatus::Rejected,
        duplicate_of: None,
        rows: 0,
        reporter: String::new(),
        phone: String::new(),
        destination: dest.to_string_lossy().into_owned(),
        feedback_path: Some(feedback.to_string_lossy().into_owned()),
        counted_rows: Vec::new(),
        findings: findings.clone(),
    };
    let provisional = Submission {
        id: 0,
        sha256: new.sha256.clone(),
        unit: new.unit.clone(),
        month: None,
        file_name: new.file_name.clone(),
        source_path: new.source_path.clone(),
        archive_path: new.archive_path.clone(),
        received_at: new.received_at.clone(),
        status: new.status,
        duplicate_of: None,
        superseded_by: None,
        rows: 0,
        errors: 1,
        warnings: 0,
        reporter: String::new(),
        phone: String::new(),
        destination: new.destination.clone(),
        feedback_path: new.feedback_path.clone(),
        moved: false,
    };
    let messages = (ctx.compose)(&provisional, &findings);
    ledger.record(&new, &messages)?;
    let received = received_at.replace('T', " ");
    let bytes = crate::feedback::render(&crate::feedback::FeedbackInput {
        file_name: &file_name,
        unit: Some(&unit.name),
        month: None,
        received_at: received.get(..16).unwrap_or(&received),
        workbook: None,
        findings: &findings,
    })
    .map_err(|e| IntakeError::Io {
        path: feedback.clone(),
        what: "cannot build the feedback workbook",
        source: std::io::Error::other(e.to_string()),
    })?;
    intake::write_durable(&feedback, &bytes)?;
    // The record is unmoved: intake finishes it (moves the file, marks it).
    intake::ingest(ctx, ledger, unit, path)
}

/// What [`after_burst`] did.
#[derive(Debug, Default)]
pub struct BurstReport {
    /// Where the master was written.
    pub master: PathBuf,
}

/// The single integration point after a burst of files (and at the end of `--once`, and when
/// the date changes): rebuild the master workbook from the ledger, then run the mail work that
/// is due — whether or not the master could be written (receipts and rejection notices must
/// not wait for a master that cannot be written). Only a failed master is an error (the
/// caller logs it and retries later); mail failures are logged and stay in the outbox for the
/// next round.
pub fn after_burst(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
    transport: &Transport,
) -> anyhow::Result<BurstReport> {
    let rebuilt = crate::master::rebuild(config, ledger, now);
    if let Ok(written) = &rebuilt
        && *written != config.master_path()
    {
        tracing::warn!(
            master = %config.master_path().display(),
            written = %written.display(),
            "the master is held open or read-only; the new version was written beside it"
        );
    }
    mail_work(config, ledger, now, transport);
    Ok(BurstReport { master: rebuilt? })
}

/// Store the scheduled mail that is due (催办, 未报送提醒, 周报), then send what is queued and
/// due. Failures are logged; messages stay in the outbox.
pub fn mail_work(config: &Config, ledger: &mut Ledger, now: DateTime<Tz>, transport: &Transport) {
    match crate::mail::schedule(config, ledger, now, false) {
        Ok(report) => {
            let new = report.planned.iter().filter(|p| p.new).count();
            if new > 0 {
                tracing::info!(messages = new, "scheduled mail stored");
            }
        }
        Err(e) => tracing::warn!(error = %e, "scheduled mail not evaluated"),
    }
    match crate::mail::send_due_with(config, ledger, now, transport) {
        Ok(report) if !report.deferred.is_empty() || !report.failed.is_empty() => {
            tracing::warn!(report = %report.summary(), "some mail was not delivered; it stays in the outbox")
        }
        Ok(report) if !report.sent.is_empty() => {
            tracing::info!(report = %report.summary(), "mail sent")
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "mail not sent; it stays in the outbox"),
    }
}

/// The listing state in the ledger: files seen in the drop folders, being taken, failed, or
/// outside any unit folder; and small key/value state (`master_stale`).
mod listing {
    use super::*;
    use crate::ledger::LedgerError;

    fn err(ledger: &Ledger, source: rusqlite::Error) -> LedgerError {
        LedgerError::Sql {
            path: ledger.path().to_path_buf(),
            source,
        }
    }

    fn key(path: &Path) -> String {
        path.to_string_lossy().into_owned()
    }

    fn mtime_ns(stat: Stat) -> i64 {
        stat.mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i64)
    }

    /// A candidate was seen (first time only).
    pub fn seen(
        ledger: &mut Ledger,
        path: &Path,
        unit: Option<&str>,
        at: &str,
    ) -> Result<(), LedgerError> {
        let r = ledger.conn().execute(
            "INSERT OR IGNORE INTO watch_files (path, unit, state, first_seen, updated_at) VALUES (?1, ?2, 'seen', ?3, ?3)",
            params![key(path), unit, at],
        );
        r.map(|_| ()).map_err(|e| err(ledger, e))
    }

    /// Taking starts; returns how many times tally died while taking this file before.
    pub fn begin(
        ledger: &mut Ledger,
        path: &Path,
        unit: &str,
        stat: Stat,
        at: &str,
    ) -> Result<i64, LedgerError> {
        let r = ledger.conn().query_row(
            "INSERT INTO watch_files (path, unit, state, size, mtime_ns, first_seen, updated_at) VALUES (?1, ?2, 'taking', ?3, ?4, ?5, ?5)
             ON CONFLICT(path) DO UPDATE SET
                crashes = crashes + (state = 'taking'), state = 'taking', unit = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5
             RETURNING crashes",
            params![key(path), unit, stat.size as i64, mtime_ns(stat), at],
            |r| r.get(0),
        );
        r.map_err(|e| err(ledger, e))
    }

    /// Taken: the file has left the folder, its row goes.
    pub fn done(ledger: &mut Ledger, path: &Path) -> Result<(), LedgerError> {
        let r = ledger.conn().execute(
            "DELETE FROM watch_files WHERE path = ?1",
            params![key(path)],
        );
        r.map(|_| ()).map_err(|e| err(ledger, e))
    }

    /// Intake could not take it in; it stays.
    pub fn failed(
        ledger: &mut Ledger,
        path: &Path,
        detail: &str,
        at: &str,
    ) -> Result<(), LedgerError> {
        let r = ledger.conn().execute(
            "UPDATE watch_files SET state = 'failed', detail = ?2, updated_at = ?3 WHERE path = ?1",
            params![key(path), detail, at],
        );
        r.map(|_| ()).map_err(|e| err(ledger, e))
    }

    /// Something outside any unit folder; true when it was not noted before.
    pub fn outside(ledger: &mut Ledger, path: &Path, at: &str) -> Result<bool, LedgerError> {
        let r = ledger.conn().execute(
            "INSERT OR IGNORE INTO watch_files (path, state, first_seen, updated_at) VALUES (?1, 'outside', ?2, ?2)",
            params![key(path), at],
        );
        r.map(|n| n > 0).map_err(|e| err(ledger, e))
    }

    /// Forget rows of paths that no longer exist (taken, removed, renamed).
    pub fn forget_missing(ledger: &mut Ledger) -> Result<(), LedgerError> {
        let db = ledger.path().to_path_buf();
        let sql = |source| LedgerError::Sql {
            path: db.clone(),
            source,
        };
        let paths: Vec<String> = {
            let conn = ledger.conn();
            let mut stmt = conn.prepare("SELECT path FROM watch_files").map_err(sql)?;
            stmt.query_map([], |r| r.get(0))
                .and_then(|rows| rows.collect::<Result<Vec<String>, _>>())
                .map_err(sql)?
        };
        for p in paths.into_iter().filter(|p| !Path::new(p).exists()) {
            let r = ledger
                .conn()
                .execute("DELETE FROM watch_files WHERE path = ?1", params![p]);
            r.map_err(|e| err(ledger, e))?;
        }
        Ok(())
    }

    pub fn state(ledger: &mut Ledger, name: &str) -> Result<Option<String>, LedgerError> {
        let r = ledger
            .conn()
            .query_row(
                "SELECT value FROM watch_state WHERE key = ?1",
                params![name],
                |r| r.get(0),
            )
            .optional();
        r.map_err(|e| err(ledger, e))
    }

    pub fn set_state(ledger: &mut Ledger, name: &str, value: &str) -> Result<(), LedgerError> {
        let r = ledger.conn().execute(
            "INSERT INTO watch_state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![name, value],
        );
        r.map(|_| ()).map_err(|e| err(ledger, e))
    }

    pub fn clear_state(ledger: &mut Ledger, name: &str) -> Result<(), LedgerError> {
        let r = ledger
            .conn()
            .execute("DELETE FROM watch_state WHERE key = ?1", params![name]);
        r.map(|_| ()).map_err(|e| err(ledger, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, EventKind, ModifyKind, RenameMode};

    #[test]
    fn notify_events_are_converted_once() {
        let ev = |kind| Ok(notify::Event::new(kind).add_path(PathBuf::from("/w/u/a.xlsx")));
        let changed = |r| match convert(r).as_slice() {
            [FsEvent::Changed(p)] => p == Path::new("/w/u/a.xlsx"),
            _ => false,
        };
        assert!(changed(ev(EventKind::Create(CreateKind::File))));
        assert!(changed(ev(EventKind::Modify(ModifyKind::Name(
            RenameMode::To
        )))));
        assert!(changed(ev(EventKind::Remove(
            notify::event::RemoveKind::File
        ))));
        assert!(changed(ev(EventKind::Access(
            notify::event::AccessKind::Close(notify::event::AccessMode::Write)
        ))));
        assert!(
            convert(ev(EventKind::Access(notify::event::AccessKind::Open(
                notify::event::AccessMode::Read
            ))))
            .is_empty()
        );
        let overflow = notify::Event::new(EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert!(matches!(
            convert(Ok(overflow)).as_slice(),
            [FsEvent::Rescan]
        ));
        let both = notify::Event::new(EventKind::Modify(ModifyKind::Name(RenameMode::Both)))
            .add_path("/w/u/8A3B2C10".into())
            .add_path("/w/u/2020-05.xlsx".into());
        assert_eq!(convert(Ok(both)).len(), 2);
    }

    #[test]
    fn the_watch_limit_names_the_sysctl() {
        let e = WatchError::from_notify(
            notify::Error::new(notify::ErrorKind::MaxFilesWatch),
            Some(Path::new("/w/西兴街道")),
        );
        assert!(e.is_limit());
        let text = e.to_string();
        assert!(
            text.contains("sysctl fs.inotify.max_user_watches="),
            "{text}"
        );
        assert!(text.contains("/w/西兴街道"), "{text}");
        let e = WatchError::from_notify(
            notify::Error::io(std::io::Error::from_raw_os_error(libc::ENOSPC)),
            None,
        );
        assert!(e.is_limit(), "{e}");
        let e = WatchError::from_notify(
            notify::Error::io(std::io::Error::from_raw_os_error(libc::EMFILE)),
            None,
        );
        assert!(
            e.to_string().contains("fs.inotify.max_user_instances"),
            "{e}"
        );
        let e = WatchError::from_notify(notify::Error::path_not_found(), None);
        assert!(!e.is_limit());
    }

    #[test]
    fn watch_config_defaults() {
        let w = WatchSettings::default();
        assert_eq!(w.mode, Mode::Auto);
        let o = Options::from_config(&w, Clock::Wall(chrono_tz::Asia::Shanghai));
        assert_eq!(o.poll_interval, Duration::from_secs(30));
        assert_eq!(o.rescan, Duration::from_secs(60));
        assert_eq!(o.timing.settle, Duration::from_secs(2));
        assert_eq!(o.timing.min_age, Duration::from_secs(1));
    }

    const REFERENCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml"));

    fn parse(src: &str) -> Result<Config, crate::config::ConfigError> {
        Config::parse(src, Path::new("tally.toml"), Path::new("/base"))
    }

    #[test]
    fn the_reference_plan_spells_out_the_defaults() {
        assert_eq!(parse(REFERENCE).unwrap().watch, WatchSettings::default());
        let without = REFERENCE.replacen("[watch]", "[watch_unused_example]", 1);
        assert!(parse(&without).is_err(), "unknown sections are refused");
    }

    #[test]
    fn bad_watch_values_name_key_and_line() {
        for (from, to, key) in [
            ("settle_secs = 2", "settle_secs = -1", "watch.settle_secs"),
            (
                "min_age_secs = 1",
                "min_age_secs = nan",
                "watch.min_age_secs",
            ),
            ("rescan_secs = 60", "rescan_secs = 0", "watch.rescan_secs"),
            (
                "poll_interval_secs = 30",
                "poll_interval_secs = 1e9",
                "watch.poll_interval_secs",
            ),
        ] {
            let src = REFERENCE.replacen(from, to, 1);
            let err = parse(&src).unwrap_err();
            let crate::config::ConfigError::Invalid { key: k, line, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(k, key);
            assert_eq!(
                *line,
                src.lines().position(|l| l.starts_with(to)).unwrap() + 1
            );
        }
        let err =
            parse(&REFERENCE.replacen("mode = \"auto\"", "mode = \"inotify\"", 1)).unwrap_err();
        assert!(err.to_string().contains("inotify"), "{err}");
    }

    #[test]
    fn the_wall_clock_moves_and_a_fixed_one_does_not() {
        let fixed =
            crate::core::calendar::parse_now("2020-07-01", chrono_tz::Asia::Shanghai).unwrap();
        assert_eq!(Clock::Fixed(fixed).now(), fixed);
        let wall = Clock::Wall(chrono_tz::Asia::Shanghai);
        let a = wall.now();
        std::thread::sleep(Duration::from_millis(5));
        assert!(wall.now() > a);
    }

    #[test]
    fn look_at_sees_lock_files_and_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("2020-05.xlsx");
        assert_eq!(look_at(&p), Look::Gone);
        std::fs::write(&p, b"x").unwrap();
        assert!(matches!(look_at(&p), Look::Open(s) if s.size == 1));
        std::fs::write(dir.path().join("~$2020-05.xlsx"), b"owner").unwrap();
        assert!(matches!(look_at(&p), Look::Held(_)));
        assert_eq!(look_at(dir.path()), Look::Gone, "a folder is not a file");
        // 2月.xlsx open in Excel holds 2月.xlsx, not 12月.xlsx.
        let (feb, dec) = (dir.path().join("2月.xlsx"), dir.path().join("12月.xlsx"));
        std::fs::write(&feb, b"x").unwrap();
        std::fs::write(&dec, b"x").unwrap();
        std::fs::write(dir.path().join("~$2月.xlsx"), b"owner").unwrap();
        assert!(matches!(look_at(&feb), Look::Held(_)));
        assert!(
            matches!(look_at(&dec), Look::Open(_)),
            "{:?}",
            look_at(&dec)
        );
    }
}
