//! One settled file through intake: its state in the ledger (being taken, failed, gone), a
//! panic caught and turned into the file's internal-error rejection, a file that killed tally
//! before rejected unread, a failure left in place and retried later. The return itself is
//! judged by intake, never here.

use super::Daemon;
use crate::core::plan::Unit;
use crate::core::settle::{Ready, Stat};
use crate::intake::{self, IntakeContext};
use crate::ledger::SubmissionStatus;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;
use std::time::{Duration, Instant};

/// A file whose content killed the daemon this many times (each after the reader child had
/// read it, so a power loss or a kill while copying or reading it does not count) is
/// rejected unread. Three, not one: a kill from outside in that short window can happen too.
const MAX_CRASHES: u32 = 3;

/// A file another watcher holds, or one whose intake failed because the ledger's server was
/// away, is looked at again this soon.
const CLAIMED_RETRY: Duration = Duration::from_secs(2);

/// What intake made of a file: taken whole, or recorded and waiting for its group.
enum Step {
    Taken(intake::Outcome),
    Recorded(intake::Recorded),
}

/// A file recorded and still in its folder, waiting for its group to be made durable.
pub(super) struct InGroup<'a> {
    path: std::path::PathBuf,
    unit: &'a Unit,
    stat: Stat,
    started: Instant,
    recorded: intake::Recorded,
}

/// The clock of file claims: unix seconds of the real clock (never `--now`), which every
/// watcher sharing a server reads alike.
fn claim_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Daemon<'_> {
    /// Start reader children on the first [`intake::READ_AHEAD`] of `next` (the files to take
    /// after the one about to be taken) that have none yet: each reads in its own process on
    /// the other core while this one records, and its check runs there too, once it is read;
    /// its staged copy is made meanwhile too ([`intake::Ahead`]).
    /// Intake uses the answer only when the child read the bytes it then stages. Not with a
    /// shared ledger, where a file is read only under its claim.
    pub(super) fn read_ahead<'r>(&mut self, next: impl Iterator<Item = &'r Ready>) {
        if self.config.ledger_location().shared() {
            return;
        }
        for r in next.take(intake::READ_AHEAD) {
            if self.ahead.contains_key(&r.path) || !self.worth_taking(r) {
                continue;
            }
            let Some(unit) = self.unit_of(&r.folder) else {
                continue;
            };
            // Checked as soon as it is read, beside the recording of the file before it.
            let precheck = crate::read::Precheck {
                plan: self.plan.clone(),
                unit: unit.clone(),
                now: self.opts.clock.now(),
                max_rows: self.config.limits.max_rows,
            };
            let reading = crate::read::Reading::start_checked(
                &self.exe,
                Some(self.config_path),
                &r.path,
                &self.config.limits,
                precheck,
            );
            let ahead = intake::Ahead::start(self.config, &r.path, reading);
            self.ahead.insert(r.path.clone(), ahead);
        }
    }

    /// A settled file `take` would go on with: in a unit folder, still there, and not a
    /// failure waiting for its retry.
    fn worth_taking(&self, ready: &Ready) -> bool {
        self.unit_of(&ready.folder).is_some()
            && ready.path.is_file()
            && !self
                .failed
                .get(&ready.path)
                .is_some_and(|(stat, retry_at)| *stat == ready.stat && Instant::now() < *retry_at)
    }

    /// Take one settled file through intake, catching a panic.
    pub(super) fn take(&mut self, ready: Ready) {
        let path = ready.path.clone();
        // Dropped unused on every way out but intake's own (its child is ended).
        let ahead = self.ahead.remove(&path);
        if !self.worth_taking(&ready) {
            return; // taken away since it settled, or failed and not yet due again
        }
        let Some(unit) = self.unit_of(&ready.folder) else {
            return;
        };
        // Watchers sharing a PostgreSQL ledger take a file only under its claim (an SQLite
        // ledger has one writer, the state lock's holder: nothing to claim).
        let name = ready
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shared = self.config.ledger_location().shared();
        if shared {
            let clock = claim_clock();
            let expires = clock + self.config.ledger.claim_secs.ceil() as i64;
            match self
                .ledger
                .claim_file(&unit.name, &name, &self.owner, expires, clock)
            {
                Ok(true) => {}
                Ok(false) => {
                    tracing::debug!(unit = %unit.name, file = %name, "another watcher is taking this file");
                    self.settler.forget(&path);
                    self.failed
                        .insert(path, (ready.stat, Instant::now() + CLAIMED_RETRY));
                    return;
                }
                Err(e) => {
                    let e = intake::IntakeError::from(e);
                    self.settler.forget(&path);
                    self.fail(&path, unit, &name, ready.stat, 0, &e.to_string());
                    if e.ledger_unavailable() {
                        self.failed
                            .insert(path.clone(), (ready.stat, Instant::now() + CLAIMED_RETRY));
                    }
                    self.storage_alarm(&e, &format!("接收“{name}”"), true);
                    return;
                }
            }
        }
        if shared && !path.is_file() {
            // Another watcher took it between our look and our claim.
            self.release(unit, &name);
            return;
        }
        if shared {
            self.ledger
                .under_claim(Some((&unit.name, &name, &self.owner)));
        }
        let at = self.stamp();
        let crashes = match self.ledger.begin_taking(&path, &unit.name, ready.stat, &at) {
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
            plan: &self.plan,
            config_path: self.config_path,
            exe: &self.exe,
            now,
            compose: &*self.compose,
        };
        let ledger = &mut self.ledger;
        let result = if crashes >= MAX_CRASHES {
            tracing::error!(unit = %unit.name, file = %path.display(), crashes, "tally stopped abruptly while taking this file before; rejecting it unread");
            catch_unwind(AssertUnwindSafe(|| {
                intake::reject_internal_error(&ctx, ledger, unit, &path).map(Step::Taken)
            }))
        } else {
            let first = catch_unwind(AssertUnwindSafe(|| {
                if self.opts.env.fault_watch.as_deref() == Some("panic") {
                    panic!("fault injected by {}", crate::settings::env::FAULT_WATCH);
                }
                // With a ledger of this watcher's own, the file waits in its folder for its
                // group's records to be made durable together ([`Daemon::complete_group`]);
                // with a shared one, under its claim, it is taken whole.
                if shared {
                    intake::ingest(&ctx, ledger, unit, &path).map(Step::Taken)
                } else {
                    intake::record(&ctx, ledger, unit, &path, ahead).map(Step::Recorded)
                }
            }));
            match first {
                Err(panic) => {
                    tracing::error!(unit = %unit.name, file = %path.display(), panic = panic_text(&*panic), "panic while taking a file; rejecting it as internal-error");
                    catch_unwind(AssertUnwindSafe(|| {
                        intake::reject_internal_error(&ctx, ledger, unit, &path).map(Step::Taken)
                    }))
                }
                ok => ok,
            }
        };
        self.settler.forget(&path);
        let result = match result {
            Ok(Ok(Step::Recorded(recorded))) => {
                let large = recorded.is_large();
                self.group.push(InGroup {
                    path,
                    unit,
                    stat: ready.stat,
                    started,
                    recorded,
                });
                if large {
                    // Its cells go now, not after the files that join its group.
                    self.complete_group();
                }
                return;
            }
            Ok(Ok(Step::Taken(outcome))) => Ok(Ok(outcome)),
            Ok(Err(e)) => Ok(Err(e)),
            Err(panic) => Err(panic),
        };
        self.note_taken(&path, unit, ready.stat, started, result);
        if shared {
            self.ledger.under_claim(None);
            self.release(unit, &name);
        }
    }

    /// Finish the files recorded since the last group: their records made durable with one
    /// wait for the disk, then each moved (a panic is the file's internal-error rejection,
    /// as in [`Daemon::take`]).
    pub(super) fn complete_group(&mut self) {
        for r in std::mem::take(&mut self.group) {
            let ctx = IntakeContext {
                config: self.config,
                plan: &self.plan,
                config_path: self.config_path,
                exe: &self.exe,
                now: self.opts.clock.now(),
                compose: &*self.compose,
            };
            let ledger = &mut self.ledger;
            let result = match catch_unwind(AssertUnwindSafe(|| {
                intake::complete(&ctx, ledger, r.recorded)
            })) {
                Err(panic) => {
                    tracing::error!(unit = %r.unit.name, file = %r.path.display(), panic = panic_text(&*panic), "panic while taking a file; rejecting it as internal-error");
                    catch_unwind(AssertUnwindSafe(|| {
                        intake::reject_internal_error(&ctx, ledger, r.unit, &r.path)
                    }))
                }
                ok => ok,
            };
            self.note_taken(&r.path, r.unit, r.stat, r.started, result);
        }
    }

    /// What became of a file intake took (or failed to): counted, logged, its listing
    /// updated, or its failure noted for a retry.
    fn note_taken(
        &mut self,
        path: &Path,
        unit: &Unit,
        stat: Stat,
        started: Instant,
        result: std::thread::Result<Result<intake::Outcome, intake::IntakeError>>,
    ) {
        let shared = self.config.ledger_location().shared();
        let path = path.to_path_buf();
        let ms = started.elapsed().as_millis() as u64;
        let file = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
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
                if let Err(e) = self.ledger.file_gone(&path) {
                    tracing::warn!(error = %e, "cannot record the listing");
                }
                self.burst.file_taken(Instant::now());
                self.storage_ok(false, s.status != SubmissionStatus::Duplicate);
                // Once per burst is enough with a ledger of this watcher's own; a shared one
                // may have been marked fresh by another watcher's master since.
                if shared || !self.stale_noted {
                    match self.ledger.set_master_stale(true) {
                        Ok(()) => self.stale_noted = true,
                        Err(e) => tracing::warn!(error = %e, "cannot record the listing"),
                    }
                }
            }
            Ok(Err(e)) => {
                self.fail(&path, unit, &file, stat, ms, &e.to_string());
                if e.ledger_unavailable() {
                    // The server is back soon (the next statement waits for it): no need to
                    // wait the usual retry.
                    self.failed
                        .insert(path.clone(), (stat, Instant::now() + CLAIMED_RETRY));
                }
                self.storage_alarm(&e, &format!("接收“{file}”"), true);
            }
            Err(panic) => {
                let msg = panic_text(&*panic);
                self.fail(&path, unit, &file, stat, ms, &format!("panic: {msg}"));
            }
        }
    }

    /// Give up this watcher's claim on `unit`'s file `name`.
    fn release(&mut self, unit: &Unit, name: &str) {
        if let Err(e) = self.ledger.release_file(&unit.name, name, &self.owner) {
            tracing::warn!(unit = %unit.name, file = %name, error = %e, "cannot release the claim; it runs out by itself");
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
        if let Err(e) = self.ledger.file_failed(path, error, &at) {
            tracing::warn!(error = %e, "cannot record the listing");
        }
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
