//! The running daemon: start (the state lock, the ledger, interrupted intakes), the loop that
//! feeds the settle machine and the burst machine from events and timers, and the stop. How
//! folders are watched and listed is in `folders`, how one settled file is taken in is in
//! `take`. It never judges a return (intake's job), writes no SQL (the ledger's) and never
//! writes outside intake, the master and the mail.

mod alarm;
mod folders;
mod mailer;
mod take;

use super::burst::{self, Burst, End, mail_work, rebuild_outputs};
use super::source::{FsEvent, Msg, WatchError, Watcher};
use super::{Clock, Mode, Options};
use crate::config::Config;
use crate::core::settle::{Layout, Look, Settler, Stat};
use crate::intake::{self, IntakeContext};
use crate::ledger::Ledger;
use crate::ledger::lock::{LockError, StateLock};
use crate::mail::Transport;
use chrono::DateTime;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant, SystemTime};

/// The loop wakes at least this often (date change, missing folders, due mail work).
const HOUSEKEEPING: Duration = Duration::from_secs(30);
/// tally.toml is looked at this often for edits (see `config_edited`).
const CONFIG_CHECK: Duration = Duration::from_secs(2);

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
    /// The run ended because tally.toml was edited into another valid configuration: the
    /// caller starts the daemon again with it.
    pub reload: bool,
}

/// What the daemon knows of its configuration file besides the loaded `Config`.
struct ConfigFile {
    /// The bytes it was loaded from.
    loaded: Vec<u8>,
    /// Other bytes seen at the last look (acted upon once unchanged at the next look, so that
    /// an editor's save in steps is not read half-written).
    seen: Option<Vec<u8>>,
    /// Edited bytes that did not load (reported once).
    rejected: Option<Vec<u8>>,
    next_look: Instant,
}

/// Builds the messages stored with a submission (receipt, rejection notice, alert).
type Compose<'a> = Box<crate::intake::Compose<'a>>;

/// Where the daemon's mail work runs: in the loop (`--once`, which ends when it is done) or
/// on the mail thread (watching: a silent SMTP server must not hold up the files).
enum Mail {
    Inline(Transport),
    Thread(mailer::Mailer),
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
    burst: Burst,
    compose: Compose<'a>,
    mail: Mail,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    source: Option<(Watcher, Box<dyn notify::Watcher + Send>)>,
    /// The identity (device, inode) of each watched folder when its watch was set: a folder
    /// replaced under the same path (recreated, a share remounted) needs a new watch.
    watched: HashMap<PathBuf, Option<(u64, u64)>>,
    stopping: bool,
    /// Start-up is done (a folder missing from now on has disappeared).
    started: bool,
    last_build_day: Option<chrono::NaiveDate>,
    /// The day the forms were last published (see `refresh_forms`).
    forms_day: Option<chrono::NaiveDate>,
    next_rescan: Option<Instant>,
    /// Something (root or a unit folder) is missing: when to look again.
    folders_retry_at: Option<Instant>,
    missing_noted: HashSet<PathBuf>,
    /// Candidates already in the listing (saves a write per event).
    known: HashSet<PathBuf>,
    /// Files that failed, with what they looked like and when to retry unchanged.
    failed: HashMap<PathBuf, (Stat, Instant)>,
    /// Folders under a storage fault the bureau was told of (see `alarm`).
    alarms: HashSet<PathBuf>,
    config_file: ConfigFile,
    summary: Summary,
    /// This watcher's name in file claims (unique per process start).
    owner: String,
    /// With a shared ledger: when to look again for intakes a dead watcher left unfinished.
    next_resume: Option<Instant>,
    /// This burst has marked the master stale in the ledger already (see `take.rs`).
    stale_noted: bool,
    /// Reader children started on the next settled files while one is taken (see `take.rs`).
    ahead: HashMap<PathBuf, crate::intake::Ahead>,
    /// Files recorded and waiting in their folders for their group's records to be made
    /// durable together (see `take.rs`).
    group: Vec<take::InGroup<'a>>,
    /// The plan, shared with the threads that check the files read ahead.
    plan: std::sync::Arc<crate::core::plan::Plan>,
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
        let mut ledger = Ledger::open_at(&config.ledger_location())?;
        // A burst's records wait for the disk a group at a time (see `take.rs`).
        ledger.defer_durability();
        let alarms = ledger.storage_alarms()?.into_iter().collect();
        // A bad SMTP setting is the user's to fix before the daemon runs for months.
        let transport = Transport::configured(config, &opts.env).map_err(|e| match e {
            crate::mail::MailError::Config(m) => crate::settings::UsageError(m).into(),
            e => anyhow::Error::from(e),
        })?;
        let mail = if opts.once {
            Mail::Inline(transport)
        } else {
            Mail::Thread(
                mailer::Mailer::start(config.clone(), transport)
                    .map_err(|e| anyhow::anyhow!("cannot start the mail thread: {e}"))?,
            )
        };
        let exe = std::env::current_exe()
            .map_err(|e| anyhow::anyhow!("cannot locate the tally binary: {e}"))?;
        let root = std::path::absolute(config.watch_root()).unwrap_or_else(|_| config.watch_root());
        let layout = Layout {
            root,
            // `[watch] units`: this watcher's share of the units (all when empty).
            unit_folders: config
                .plan
                .units
                .iter()
                .filter(|u| {
                    config.watch.units.is_empty()
                        || config
                            .watch
                            .units
                            .iter()
                            .any(|w| config.plan.find_unit(w).is_some_and(|f| f.name == u.name))
                })
                .map(|u| u.folder().to_string())
                .collect(),
            // Ignored even while switched off: an earlier one may still lie there.
            published_files: vec![config.progress.file_name.clone()],
            published_folders: vec![config.forms.folder.clone()],
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
            compose: Box::new(crate::mail::messages::composer(config)),
            mail,
            burst: Burst::new(burst::cap(opts.timing.settle), Instant::now()),
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
            last_build_day: None,
            forms_day: None,
            next_rescan: None,
            folders_retry_at: None,
            missing_noted: HashSet::new(),
            known: HashSet::new(),
            failed: HashMap::new(),
            alarms,
            config_file: ConfigFile {
                loaded: std::fs::read(config_path).unwrap_or_default(),
                seen: None,
                rejected: None,
                next_look: Instant::now() + CONFIG_CHECK,
            },
            summary: Summary::default(),
            owner: format!(
                "pid{}-{}",
                std::process::id(),
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos())
            ),
            next_resume: None,
            stale_noted: false,
            plan: std::sync::Arc::new(config.plan.clone()),
            ahead: HashMap::new(),
            group: Vec::new(),
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
        self.refresh_forms();
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
        if self.burst.is_open() || self.opts.once {
            self.finish_burst(None);
        }
        // The mail asked for goes out (or fails, within the SMTP timeout) before the end.
        if let Mail::Thread(mailer) = &mut self.mail {
            mailer.stop();
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
        // What a killed run left half-written goes first (the state lock is held).
        intake::remove_stale_temps(self.config);
        let done = self.finish_interrupted();
        let stale = self.ledger.master_stale()?;
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
            self.burst.open(done.len(), Instant::now());
        }
        self.last_build_day = Some(today);
        Ok(())
    }

    /// Finish the intakes a crash interrupted (recorded, not moved). A file that cannot be
    /// finished now (its folder unwritable, say) does not keep the daemon from starting:
    /// intake finishes it when the file is taken. With a shared ledger another watcher may be
    /// doing one of them right now: each is finished under the claim on its file, and what a
    /// watcher that died left is picked up again every little while (`next_resume`).
    fn finish_interrupted(&mut self) -> Vec<crate::ledger::Submission> {
        let ctx = IntakeContext {
            config: self.config,
            plan: &self.plan,
            config_path: self.config_path,
            exe: &self.exe,
            now: self.opts.clock.now(),
            compose: &*self.compose,
        };
        let claim = self.config.ledger_location().shared().then(|| {
            (
                self.owner.as_str(),
                self.config.ledger.claim_secs.ceil() as i64,
            )
        });
        let done = intake::resume_pending(&ctx, &mut self.ledger, claim).unwrap_or_else(|e| {
            tracing::warn!(error = %e, "an interrupted intake could not be finished yet");
            Vec::new()
        });
        for s in &done {
            tracing::info!(unit = %s.unit, file = %s.file_name, result = %s.status.as_str(), "interrupted intake finished");
        }
        if claim.is_some() {
            let every = (self.config.ledger.claim_secs / 2.0).clamp(2.0, 60.0);
            self.next_resume = Some(Instant::now() + Duration::from_secs_f64(every));
        }
        done
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
        consider(self.next_resume);
        if !self.opts.once {
            consider(self.failed.values().map(|(_, at)| *at).min());
            consider(Some(self.config_file.next_look));
        }
        consider(
            self.burst
                .next_wakeup(now, self.settler.settling(now), !self.opts.once),
        );
        at.saturating_duration_since(now)
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
                    self.fall_back_to_polling();
                }
                self.scan(now);
            }
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
        if self.next_resume.is_some_and(|t| t <= now) {
            let done = self.finish_interrupted();
            if !done.is_empty() {
                self.burst.open(done.len(), now);
            }
        }
        if !self.opts.once {
            self.retry_failed(now);
            if self.config_file.next_look <= now {
                self.config_edited(now);
            }
        }
        self.look(now);
        // Files that settle while others are taken join the same burst: take until none is
        // ready. Each round takes at least one file; a burst that has held the master back
        // as long as it may stops here, and the rest is taken after the rebuild.
        let mut taken = 0;
        'take: loop {
            let mut ready: std::collections::VecDeque<_> = self.settler.take_ready().into();
            if ready.is_empty() {
                break;
            }
            while let Some(r) = ready.pop_front() {
                if self.stopping {
                    // Left in its folder: the next start takes it.
                    break 'take;
                }
                self.read_ahead(ready.iter());
                self.take(r);
                // A group waits for the disk once: it ends with the files ready now, or
                // at its size.
                if ready.is_empty() || self.group.len() >= intake::GROUP_FILES {
                    self.complete_group();
                }
                taken += 1;
                self.drain();
                // Looks that fell due while the file was processed.
                self.look(Instant::now());
            }
            if !self.opts.once && self.burst.overdue(Instant::now()) {
                break;
            }
        }
        self.complete_group();
        // Reads started for files left for later (a stop, a burst held long enough) end, and
        // so do the readers that stayed up for these files.
        self.ahead.clear();
        if taken > 0 {
            crate::read::server::end_idle();
        }
        self.maybe_end_burst(Instant::now());
        if !self.opts.once && self.burst.mail_due(Instant::now()) {
            self.burst.mail_ran(Instant::now());
            self.mail_work();
        }
        if !self.opts.once {
            let today = self.opts.clock.now().date_naive();
            if !self.burst.is_open() && self.last_build_day.is_some_and(|d| d != today) {
                // Expected progress moves with the date: refresh the master daily.
                self.burst.open(0, Instant::now());
            }
        }
        // The positive signal that tests (and an operator at -v) wait for before concluding
        // that nothing (else) happens.
        tracing::debug!(
            taken,
            pending = self.settler.pending(),
            burst = self.burst.files(),
            "round finished"
        );
    }

    /// Look at tally.toml: edited into another valid configuration, the daemon stops as on a
    /// signal (the current file, then the master) and the caller starts it again with the new
    /// one; edited into something that does not load, the error is logged once and the
    /// configuration the daemon started with is kept.
    fn config_edited(&mut self, now: Instant) {
        let file = &mut self.config_file;
        file.next_look = now + CONFIG_CHECK;
        let Ok(bytes) = std::fs::read(self.config_path) else {
            return; // moved away for a moment (an editor's save): looked at again later
        };
        if bytes == file.loaded {
            file.seen = None;
            return;
        }
        if file.seen.as_ref() != Some(&bytes) {
            file.seen = Some(bytes);
            return;
        }
        if file.rejected.as_ref() == Some(&bytes) {
            return;
        }
        match Config::load(self.config_path) {
            Ok(_) => {
                tracing::info!(config = %self.config_path.display(), "the configuration was edited: finishing the current file and the master, then starting again with it");
                self.summary.reload = true;
                self.stopping = true;
            }
            Err(e) => {
                tracing::error!(config = %self.config_path.display(), error = %e, "the configuration was edited but does not load; the daemon keeps the one it started with until it is fixed");
                file.rejected = Some(bytes);
            }
        }
    }

    /// Files intake could not take in whose retry is due are considered again (as if an
    /// event had come for them), so that the retry happens in native mode too, where no
    /// periodic rescan would find them. One that fails again is noted again by `fail`.
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
            let look = super::source::look_at(&path);
            let look = match look {
                Look::Open(stat)
                    if super::source::locked_by_fault(self.opts.env.fault_watch.as_deref()) =>
                {
                    Look::Unopenable(stat)
                }
                look => look,
            };
            match look {
                Look::Held(_) => {
                    tracing::debug!(file = %path.display(), "open in an office program; waiting for it to be closed")
                }
                Look::Unopenable(_) => {
                    tracing::debug!(file = %path.display(), "cannot be opened yet (locked by its writer, or no permission); looking again")
                }
                _ => {}
            }
            self.settler.observe(&path, look, now, SystemTime::now());
        }
    }

    fn maybe_end_burst(&mut self, now: Instant) {
        if self.opts.once || self.stopping {
            return; // done once, at the end of run()
        }
        if let Some(end) = self.burst.end(now, self.settler.settling(now)) {
            self.finish_burst(Some(end));
        }
    }

    /// Rebuild the master and run the mail work; `end` says why the burst is over (`None`:
    /// the run is).
    fn finish_burst(&mut self, end: Option<End>) {
        let files = self.burst.files();
        let started = Instant::now();
        let now = self.opts.clock.now();
        let rebuilt = rebuild_outputs(self.config, &mut self.ledger, now);
        // Whether or not the master could be written: receipts and notices must not wait.
        self.mail_work();
        self.refresh_forms();
        // The burst's returns and the master are done with: a large one's memory goes back.
        crate::memory::hand_back();
        match rebuilt {
            Ok(report) => {
                self.summary.bursts += 1;
                self.burst.rebuilt(Instant::now());
                self.last_build_day = Some(now.date_naive());
                if let Err(e) = self.ledger.set_master_stale(false) {
                    tracing::warn!(error = %e, "cannot record the listing");
                }
                self.stale_noted = false;
                self.storage_ok(true, false);
                tracing::info!(
                    files,
                    cut = end == Some(End::Cut),
                    master = %report.master.display(),
                    ms = started.elapsed().as_millis() as u64,
                    "burst finished"
                );
            }
            Err(e) => {
                // The mail work has run all the same.
                tracing::warn!(error = %e, "the master could not be written; retrying in {:?}", burst::MASTER_RETRY);
                self.burst.rebuild_failed(Instant::now());
                self.storage_alarm(e.as_ref(), "生成总表", false);
            }
        }
    }

    // ---- helpers ---------------------------------------------------------------------------

    /// The form of the month now due, in every unit's folder: at start (after the unit
    /// folders are made) and after the first burst of each day (the daily refresh after
    /// midnight brings a new month's form on its first day). Not after every burst: a form
    /// depends on the plan, the unit and the date only, and rendering one per unit costs
    /// seconds at hundreds of units.
    fn refresh_forms(&mut self) {
        let today = self.opts.clock.now().date_naive();
        if self.forms_day != Some(today) {
            burst::publish_forms(self.config, self.opts.clock.now());
            self.forms_day = Some(today);
        }
    }

    /// Store the scheduled mail that is due and send what is queued: here (`--once`), or on
    /// the mail thread, which this does not wait for.
    fn mail_work(&mut self) {
        let now = self.opts.clock.now();
        match &self.mail {
            Mail::Inline(transport) => mail_work(self.config, &mut self.ledger, now, transport),
            Mail::Thread(mailer) => mailer.kick(now),
        }
    }

    fn stamp(&self) -> String {
        crate::core::calendar::stamp(self.opts.clock.now())
    }
}
