//! Taking one file in (DESIGN.md §8): hash → duplicate check → sandboxed read → validate →
//! archive copy (fsync'd) → one ledger transaction → feedback workbook → move into 已接收/ or
//! 退回/. Every step can be redone after a crash; nothing is deleted or overwritten.

use crate::config::Config;
use crate::core::calendar::stamp;
use crate::core::findings::{Code, Finding};
pub use crate::core::form::{ACCEPTED_DIR, FEEDBACK_SUFFIX, REJECTED_DIR, is_feedback_name};
use crate::core::ids::mask_id;
use crate::core::plan::Unit;
use crate::core::returns::{self, Return};
use crate::core::workbook::Workbook;
use crate::durable::sync_dir;
use crate::ledger::{Ledger, LedgerError, NewMessage, NewSubmission, Submission, SubmissionStatus};
use crate::read::{Checked, Reading};
use chrono::DateTime;
use chrono_tz::Tz;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Composes the messages a submission causes (receipt, rejection notice, alert), given the
/// ledger as it stands before the submission is recorded.
pub type Compose<'a> = dyn Fn(&Ledger, &Submission, &[Finding]) -> Vec<NewMessage> + 'a;

mod temps;
use crate::private::STAGING_DIR;
pub use temps::{clear_staging, remove_stale_temps};

/// A file that could not be taken in; it stays where it is.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

impl IntakeError {
    /// The ledger's server could not be reached: nothing was recorded, try again soon.
    pub fn ledger_unavailable(&self) -> bool {
        matches!(self, IntakeError::Ledger(e) if e.unavailable())
    }
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> IntakeError + 'a {
    move |source| IntakeError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Everything intake needs besides the ledger.
pub struct IntakeContext<'a> {
    pub config: &'a Config,
    /// `config`'s plan, shared with the threads that check files as they are read.
    pub plan: &'a std::sync::Arc<crate::core::plan::Plan>,
    pub config_path: &'a Path,
    /// The `tally` binary, re-invoked to read untrusted files.
    pub exe: &'a Path,
    pub now: DateTime<Tz>,
    /// Builds the messages stored with a submission (receipt, rejection, alert).
    pub compose: &'a Compose<'a>,
}

/// What happened to one file.
#[derive(Debug)]
pub struct Outcome {
    pub submission: Submission,
    pub findings: Vec<Finding>,
    /// True when this call only finished the move of an earlier, interrupted intake.
    pub resumed: bool,
}

/// sha256 of a file, streamed.
fn hash_file(path: &Path) -> Result<String, IntakeError> {
    let mut f = std::fs::File::open(path).map_err(io(path, "cannot open"))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(io(path, "cannot read"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex::encode(hasher.finalize()))
}

/// `name`, or `stem (2).ext`, `stem (3).ext`, … — the first for which `taken` is false.
pub fn free_name(dir: &Path, name: &str, taken: impl Fn(&Path) -> bool) -> PathBuf {
    let (stem, ext) = split_name(name);
    let mut candidate = dir.join(name);
    let mut n = 2;
    while taken(&candidate) {
        candidate = dir.join(format!("{stem} ({n}){ext}"));
        n += 1;
    }
    candidate
}

/// (`2020-05`, `.xlsx`) from `2020-05.xlsx`; a name without extension has an empty one.
fn split_name(name: &str) -> (&str, &str) {
    match name.rfind('.') {
        Some(i) if i > 0 => (&name[..i], &name[i..]),
        _ => (name, ""),
    }
}

/// The feedback workbook path for a rejected file at `dest`.
fn feedback_path_for(dest: &Path) -> PathBuf {
    let name = dest
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("return");
    let (stem, _) = split_name(name);
    dest.with_file_name(format!("{stem}{FEEDBACK_SUFFIX}"))
}

/// Copy `src` to `dst` durably: write to a temp file beside it, fsync, rename, fsync the folder.
pub fn copy_durable(src: &Path, dst: &Path) -> Result<(), IntakeError> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir, "cannot create folder"))?;
    let mut tmp =
        crate::durable::temp_file_in(dir).map_err(io(dir, "cannot create a temporary file"))?;
    let mut input = std::fs::File::open(src).map_err(io(src, "cannot open"))?;
    std::io::copy(&mut input, tmp.as_file_mut()).map_err(io(dst, "cannot copy into"))?;
    tmp.as_file().sync_all().map_err(io(dst, "cannot fsync"))?;
    tmp.persist_noclobber(dst).map_err(|e| IntakeError::Io {
        path: dst.to_path_buf(),
        what: "cannot rename into place",
        source: e.error,
    })?;
    sync_dir(dir);
    Ok(())
}

/// Make the staged copy the archive copy at `dest`: made durable, then renamed into place (the
/// staging folder is in the archive, on the same file system), so a return is written to the
/// archive once, not copied a second time (`synced`: it was fsync'd when staged). False when
/// the very same archive copy is there already (`dest` names the bytes' hash and the second
/// they came in); the staged copy goes.
fn archive_staged(
    staged: tempfile::TempPath,
    synced: bool,
    dest: &Path,
) -> Result<bool, IntakeError> {
    // The archive holds full 身份证号: its unit and month folders are owner-only.
    let dir = dest.parent().unwrap_or(Path::new("."));
    crate::private::create_dir(dir).map_err(io(dir, "cannot create folder"))?;
    if !synced {
        crate::durable::sync_file(&staged).map_err(io(&staged, "cannot fsync"))?;
    }
    match staged.persist_noclobber(dest) {
        Ok(()) => {
            sync_dir(dir);
            Ok(true)
        }
        Err(e) if e.error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        // The staging folder made a mount of its own: copied instead.
        Err(e) if e.error.kind() == std::io::ErrorKind::CrossesDevices => {
            copy_durable(&e.path, dest)?;
            Ok(true)
        }
        Err(e) => Err(IntakeError::Io {
            path: dest.to_path_buf(),
            what: "cannot rename into place",
            source: e.error,
        }),
    }
}

/// Write bytes durably (temp file, fsync, rename, the folder fsync'd).
pub fn write_durable(dst: &Path, bytes: &[u8]) -> Result<(), IntakeError> {
    write_synced(dst, bytes)?;
    sync_dir(dst.parent().unwrap_or(Path::new(".")));
    Ok(())
}

/// [`write_durable`] but for the folder: the file's bytes are on disk before its name
/// appears, and the caller fsyncs the folder once for several files ([`sync_dir`]).
pub fn write_synced(dst: &Path, bytes: &[u8]) -> Result<(), IntakeError> {
    let dir = dst.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(dir, "cannot create folder"))?;
    let mut tmp =
        crate::durable::temp_file_in(dir).map_err(io(dir, "cannot create a temporary file"))?;
    tmp.write_all(bytes).map_err(io(dst, "cannot write"))?;
    tmp.as_file().sync_all().map_err(io(dst, "cannot fsync"))?;
    tmp.persist_noclobber(dst).map_err(|e| IntakeError::Io {
        path: dst.to_path_buf(),
        what: "cannot rename into place",
        source: e.error,
    })?;
    Ok(())
}

/// Move a file without ever overwriting: rename, or copy + remove across file systems. When
/// the original cannot be removed after copying, the copy is removed again, so a retry never
/// leaves a second copy behind.
fn move_file(src: &Path, dst: &Path) -> Result<(), IntakeError> {
    if let Some(dir) = dst.parent() {
        std::fs::create_dir_all(dir).map_err(io(dir, "cannot create folder"))?;
    }
    if dst.exists() {
        return Err(IntakeError::Io {
            path: dst.to_path_buf(),
            what: "refusing to overwrite",
            source: std::io::Error::from(std::io::ErrorKind::AlreadyExists),
        });
    }
    match std::fs::rename(src, dst) {
        Ok(()) => {
            if let Some(dir) = dst.parent() {
                sync_dir(dir);
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::CrossesDevices => {
            copy_durable(src, dst)?;
            std::fs::remove_file(src).map_err(|source| {
                let _ = std::fs::remove_file(dst);
                IntakeError::Io {
                    path: src.to_path_buf(),
                    what: "cannot remove after copying",
                    source,
                }
            })
        }
        Err(source) => Err(IntakeError::Io {
            path: src.to_path_buf(),
            what: "cannot move",
            source,
        }),
    }
}

/// The message of an internal-error rejection.
const INTERNAL_ERROR_MESSAGE: &str = "系统处理此文件时发生内部错误，未能完成检查，本次报送暂未计入。文件已存档保留，请联系区安监局处理，或用 Excel/WPS 另存为 .xlsx 后重新报送。";

/// Take one file in for `unit`.
///
/// The dropped file is copied once into a private staging file; the hash, the validation and
/// the archive copy all come from that one copy, so they agree even if the drop changes
/// meanwhile (the final move checks the drop still has the recorded bytes).
pub fn ingest(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    unit: &Unit,
    path: &Path,
) -> Result<Outcome, IntakeError> {
    let recorded = take(ctx, ledger, unit, path, None, None)?;
    complete(ctx, ledger, recorded)
}

/// How many of the next files are read ahead while one is taken (the daemon's burst, `tally
/// ingest` of several files): two keep the other core busy when reading a small return takes
/// about as long as recording one.
pub const READ_AHEAD: usize = 2;

/// How many files of a burst are recorded before their records are made durable together and
/// they are moved ([`record`], [`complete`]): one wait for the disk instead of one each. A
/// unit's file waits in its folder for at most the others of its group (a few milliseconds
/// each for a small return).
pub const GROUP_FILES: usize = 16;

/// [`ingest`], with the dropped file read ahead (the daemon starts the next files' reads while
/// it records one). The read's answer is used only when the child read the very bytes that
/// were staged; otherwise the staged copy is read as usual.
pub fn ingest_read_ahead(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    unit: &Unit,
    path: &Path,
    ahead: Ahead,
) -> Result<Outcome, IntakeError> {
    let recorded = take(ctx, ledger, unit, path, None, Some(ahead))?;
    complete(ctx, ledger, recorded)
}

/// [`ingest`] up to the ledger record, for a burst whose files are recorded a group at a time
/// ([`Ledger::defer_durability`]): the file stays in its folder until [`complete`] moves it.
pub fn record(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    unit: &Unit,
    path: &Path,
    ahead: Option<Ahead>,
) -> Result<Recorded, IntakeError> {
    take(ctx, ledger, unit, path, None, ahead)
}

/// A file on record in the ledger and still in its drop folder: [`complete`] writes its
/// feedback and moves it. Dropped without that (tally stopped), the next start finishes it
/// ([`resume_pending`]).
pub struct Recorded {
    submission: Submission,
    findings: Vec<Finding>,
    resumed: bool,
    /// A rejection's feedback workbook: where it goes and the cells it shows.
    feedback: Option<(PathBuf, Option<Workbook>)>,
    /// A large accepted return's cells and rows being freed on a thread of their own.
    freeing: Option<std::thread::JoinHandle<()>>,
    /// It held this many rows or more ([`LARGE_RETURN_ROWS`]).
    large: bool,
    /// For the log line of a file read and checked: its unit, when its intake began, and
    /// its steps.
    log: Option<Box<(String, std::time::Instant, Phases)>>,
}

impl Recorded {
    /// A large return: completed at once rather than held with a group.
    pub fn is_large(&self) -> bool {
        self.large
    }

    /// A record with nothing left but the move (a duplicate, an interrupted intake).
    fn done(submission: Submission, findings: Vec<Finding>, resumed: bool) -> Recorded {
        Recorded {
            submission,
            findings,
            resumed,
            feedback: None,
            freeing: None,
            large: false,
            log: None,
        }
    }
}

/// Finish a recorded file: its record made durable (with every record since the last wait),
/// then its feedback written and the file moved to 已接收/ or 退回/.
pub fn complete(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    recorded: Recorded,
) -> Result<Outcome, IntakeError> {
    ledger.make_durable()?;
    let Recorded {
        submission,
        findings,
        resumed,
        feedback,
        freeing,
        large: _,
        mut log,
    } = recorded;
    let mut phase = |at: fn(&mut Phases) -> &mut std::time::Duration| {
        if let Some((_, started, phases)) = log.as_deref_mut() {
            *at(phases) = started.elapsed();
        }
    };
    phase(|p| &mut p.durable);
    if let Some((path, workbook)) = &feedback {
        write_feedback(
            &ctx.config.plan.title,
            &submission,
            workbook.as_ref(),
            &findings,
            path,
        )?;
    }
    let s = finish(ctx, ledger, submission)?;
    phase(|p| &mut p.moved);
    drop(feedback);
    if let Some(freeing) = freeing {
        let _ = freeing.join();
    }
    if let Some((unit, started, phases)) = log.map(|l| *l) {
        tracing::info!(
            unit = %unit,
            file = %s.file_name,
            result = s.status.as_str(),
            rows = s.rows,
            errors = s.errors,
            warnings = s.warnings,
            ms = started.elapsed().as_millis() as u64,
            phases = %phases,
            "return processed"
        );
    }
    Ok(Outcome {
        submission: s,
        findings,
        resumed,
    })
}

/// A dropped file read ahead: its reader child ([`Reading`]) and its staged copy, made
/// meanwhile on a thread of its own (copied, hashed and fsync'd while the file before it is
/// recorded). Dropped unused, the child is ended and the staged copy removed.
pub struct Ahead {
    reading: Reading,
    staging: std::thread::JoinHandle<Result<Staged, IntakeError>>,
}

impl Ahead {
    /// Stage `path` ahead beside its `reading`.
    pub fn start(config: &Config, path: &Path, reading: Reading) -> Ahead {
        let (archive, path) = (config.archive_dir(), path.to_path_buf());
        let staging = std::thread::spawn(move || {
            let path = std::path::absolute(&path).map_err(io(&path, "cannot resolve"))?;
            stage(&archive, &path, true)
        });
        Ahead { reading, staging }
    }
}

/// A private copy of a dropped file in the archive's staging folder, and its SHA-256.
struct Staged {
    path: tempfile::TempPath,
    sha: String,
    /// fsync'd already.
    synced: bool,
}

/// Copy the dropped file at `path` into `archive`'s staging folder, hashing it as it is
/// written; fsync'd when `sync` (else by [`archive_staged`] when it is kept).
fn stage(archive: &Path, path: &Path, sync: bool) -> Result<Staged, IntakeError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "return.xlsx".into());
    let staging_dir = archive.join(STAGING_DIR);
    crate::private::create_dir(&staging_dir).map_err(io(&staging_dir, "cannot create folder"))?;
    let mut staging = tempfile::Builder::new()
        .prefix("intake-")
        .suffix(&format!("-{file_name}"))
        .tempfile_in(&staging_dir)
        .map_err(io(&staging_dir, "cannot create a staging file"))?;
    let staged_path = staging.path().to_path_buf();
    let mut hasher = Sha256::new();
    let mut input = std::fs::File::open(path).map_err(io(path, "cannot open"))?;
    let out = staging.as_file_mut();
    // Not io::copy: a failed write (the staging disk full) must be told from a failed read
    // (the drop), as they are different folders' faults.
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = input.read(&mut buf).map_err(io(path, "cannot read"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n])
            .map_err(io(&staged_path, "cannot write"))?;
    }
    if sync {
        out.sync_all().map_err(io(&staged_path, "cannot fsync"))?;
    }
    Ok(Staged {
        path: staging.into_temp_path(),
        sha: hex::encode(hasher.finalize()),
        synced: sync,
    })
}

/// Reject a file as `internal-error` without reading it: taking it in panicked, or killed
/// tally before. It goes the way of every rejection (archive copy, one ledger record with its
/// notice, feedback, move into 退回/), but is not read, and is not compared with counted
/// returns. When an earlier intake of it was recorded before the failure, only its move is
/// finished.
pub fn reject_internal_error(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    unit: &Unit,
    path: &Path,
) -> Result<Outcome, IntakeError> {
    let finding = Finding::file(Code::InternalError, INTERNAL_ERROR_MESSAGE);
    let recorded = take(ctx, ledger, unit, path, Some(finding), None)?;
    complete(ctx, ledger, recorded)
}

/// [`ingest`] up to its record, or with `unread` the rejection of the file with that one
/// finding. Rows written ahead of the record and not taken by it are undone, whatever
/// happened (an earlier intake that panicked, this one failing).
fn take(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    unit: &Unit,
    path: &Path,
    unread: Option<Finding>,
    ahead: Option<Ahead>,
) -> Result<Recorded, IntakeError> {
    ledger.discard_ahead();
    let taken = take_in(ctx, ledger, unit, path, unread, ahead);
    ledger.discard_ahead();
    taken
}

fn take_in(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    unit: &Unit,
    path: &Path,
    unread: Option<Finding>,
    ahead: Option<Ahead>,
) -> Result<Recorded, IntakeError> {
    let config = ctx.config;
    let path = std::path::absolute(path).map_err(io(path, "cannot resolve"))?;
    let path = path.as_path();
    let source = path.to_string_lossy().to_string();
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "return.xlsx".into());

    // Staged ahead (while the file before it was recorded) when the drop still holds those
    // bytes, else now: what is taken is what the folder holds now.
    let (ahead, staging) = match ahead {
        Some(Ahead { reading, staging }) => (Some(reading), Some(staging)),
        None => (None, None),
    };
    let staged_ahead = staging.and_then(|h| h.join().ok()).and_then(|r| {
        r.inspect_err(|e| tracing::debug!(error = %e, "staging ahead failed; staging again"))
            .ok()
    });
    let staged_ahead = match staged_ahead {
        Some(s) if hash_file(path)? == s.sha => Some(s),
        Some(_) => {
            tracing::debug!(file = %path.display(), "the file changed after it was staged ahead; staging it again");
            None
        }
        None => None,
    };
    let Staged {
        path: staged,
        sha,
        synced,
    } = match staged_ahead {
        Some(s) => s,
        None => stage(&config.archive_dir(), path, false)?,
    };

    // An interrupted intake of these very bytes from this very path: finish it.
    if let Some(s) = ledger
        .unmoved()?
        .into_iter()
        .find(|s| s.sha256 == sha && s.source_path == source)
    {
        // Not read again: a read started ahead is ended before the file is moved.
        drop(ahead);
        let findings = ledger.findings(s.id)?;
        return Ok(Recorded::done(s, findings, true));
    }

    let unit_dir = config.unit_dir(unit);
    let received_at = stamp(ctx.now);

    // The same bytes as a return that counts now: recorded as a duplicate, counted nothing.
    // Bytes that were rejected, or superseded since, are checked again like new ones.
    let original = match unread {
        None => ledger.find_counting_by_hash(&unit.name, &sha)?,
        Some(_) => None,
    };
    if let Some(original) = original {
        drop(ahead);
        let dest = free_name(&unit_dir.join(ACCEPTED_DIR), &file_name, |p| p.exists());
        let duplicate = Submission {
            sha256: sha,
            file_name,
            source_path: source,
            received_at,
            status: SubmissionStatus::Duplicate,
            duplicate_of: Some(original.id),
            destination: dest.to_string_lossy().to_string(),
            feedback_path: None,
            ..original.clone()
        };
        let new = NewSubmission::new(duplicate, Vec::new(), Vec::new());
        let s = record_new(ctx, ledger, &new)?;
        return Ok(Recorded::done(s, Vec::new(), false));
    }

    // Read and check; a staged copy not made durable yet is made so meanwhile.
    let mut syncing = (!synced).then_some(StagedSync::Later);
    let started = std::time::Instant::now();
    let mut phases = Phases::default();
    let (workbook, mut ret) = match unread {
        Some(finding) => (
            None,
            Return {
                findings: vec![finding],
                ..Return::default()
            },
        ),
        None => match read_staged(ctx, ledger, unit, &staged, &sha, ahead, &mut syncing) {
            Ok((wb, checked)) => {
                phases.read = started.elapsed();
                // From here on tally itself handles what the file held: a stop before the file
                // is recorded counts against it (the daemon's guard against a killing file).
                if let Err(e) = ledger.file_read(path) {
                    tracing::warn!(error = %e, "cannot record the listing");
                }
                // Checked already beside the recording of the file before it, for this very
                // unit and day (the check reads no more of the clock than the day).
                let ret = match checked {
                    Some(c)
                        if c.unit == unit.name && c.now.date_naive() == ctx.now.date_naive() =>
                    {
                        c.ret
                    }
                    _ => returns::check(
                        &wb,
                        &returns::Context {
                            plan: &config.plan,
                            unit: Some(unit),
                            now: ctx.now,
                            max_rows: config.limits.max_rows,
                        },
                    ),
                };
                (Some(wb), ret)
            }
            Err(f) => (
                None,
                Return {
                    findings: vec![f],
                    ..Return::default()
                },
            ),
        },
    };
    let synced = synced || syncing.is_some_and(StagedSync::done);
    phases.checked = started.elapsed();
    if ret.accepted() {
        let doubles = double_reported(ledger, unit, &ret)?;
        ret.findings.extend(doubles);
    }
    phases.doubles = started.elapsed();
    let accepted = ret.accepted();
    // The cells are needed only for a rejection's feedback workbook: an accepted return's go
    // now, before its rows are written (memory follows one copy of the return, not two). A
    // large one's are freed on a thread of their own: half a million cells take tens of
    // milliseconds to free, which the recording need not wait for.
    let large = ret.row_count >= LARGE_RETURN_ROWS;
    let (workbook, freeing) = match workbook {
        Some(wb) if accepted && large => (None, Some(std::thread::spawn(move || drop(wb)))),
        wb if accepted => {
            drop(wb);
            (None, None)
        }
        wb => (wb, None),
    };

    // Archive copy first: a received file is never lost.
    let month_dir = ret
        .month
        .map_or("未识别月份".to_string(), |m| m.to_string());
    let archive_rel = PathBuf::from(unit.folder()).join(&month_dir).join(format!(
        "{}-{}-{}",
        ctx.now.format("%Y%m%dT%H%M%S"),
        &sha[..12],
        file_name
    ));
    let archive_abs = config.archive_dir().join(&archive_rel);
    let archived_now = if archive_abs.exists() {
        drop(staged);
        false
    } else {
        archive_staged(staged, synced, &archive_abs)?
    };

    let (dest, feedback) = if accepted {
        (
            free_name(&unit_dir.join(ACCEPTED_DIR), &file_name, |p| p.exists()),
            None,
        )
    } else {
        let dest = free_name(&unit_dir.join(REJECTED_DIR), &file_name, |p| {
            p.exists() || feedback_path_for(p).exists()
        });
        let fb = feedback_path_for(&dest);
        (dest, Some(fb))
    };
    let submission = Submission {
        id: 0,
        sha256: sha,
        unit: unit.name.clone(),
        month: ret.month,
        file_name,
        source_path: source,
        archive_path: archive_rel.to_string_lossy().to_string(),
        received_at,
        status: if accepted {
            SubmissionStatus::Accepted
        } else {
            SubmissionStatus::Rejected
        },
        duplicate_of: None,
        superseded_by: None,
        rows: ret.row_count as i64,
        errors: 0,
        warnings: 0,
        reporter: ret.reporter.clone(),
        phone: ret.phone.clone(),
        destination: dest.to_string_lossy().to_string(),
        feedback_path: feedback.as_ref().map(|p| p.to_string_lossy().to_string()),
        moved: false,
    };
    let counted = if accepted {
        std::mem::take(&mut ret.rows)
    } else {
        Vec::new()
    };
    let mut new = NewSubmission::new(submission, counted, ret.findings.clone());
    phases.archived = started.elapsed();
    let s = match record_new(ctx, ledger, &new) {
        Ok(s) => s,
        Err(e) => {
            // Not on record (the ledger's disk full, say): no archive copy without its
            // ledger row. The drop stays and is taken again later.
            let rel = archive_rel.to_string_lossy();
            let on_record = ledger
                .unmoved()
                .map_or(true, |u| u.iter().any(|s| s.archive_path == rel));
            if archived_now && !on_record {
                let _ = std::fs::remove_file(&archive_abs);
            }
            return Err(e);
        }
    };
    phases.recorded = started.elapsed();
    // A large return's rows are freed beside its cells, not here.
    let freeing = match freeing {
        Some(cells) => {
            let rows = std::mem::take(&mut new.counted_rows);
            std::thread::Builder::new()
                .spawn(move || {
                    drop(rows);
                    let _ = cells.join();
                })
                .ok()
        }
        None => None,
    };
    drop(new);
    Ok(Recorded {
        submission: s,
        findings: ret.findings,
        resumed: false,
        feedback: feedback.map(|fb| (fb, workbook)),
        freeing,
        large,
        log: Some(Box::new((unit.name.clone(), started, phases))),
    })
}

/// The fsync of a staged copy while the reader child reads it ([`read_staged`]): on a thread
/// started once the child is (a copy of this process is made only while no other thread
/// runs), waited for once the read is done.
enum StagedSync {
    /// To be started with the read.
    Later,
    Running(std::thread::JoinHandle<std::io::Result<()>>),
}

impl StagedSync {
    /// Start the fsync of `staged` (when it is still to be started).
    fn start(&mut self, staged: &Path) {
        if matches!(self, StagedSync::Later) {
            let staged = staged.to_path_buf();
            let sync = move || crate::durable::sync_file(&staged);
            if let Ok(running) = std::thread::Builder::new().spawn(sync) {
                *self = StagedSync::Running(running);
            }
        }
    }

    /// Whether the staged copy was made durable (else [`archive_staged`] makes it so, and
    /// says why it cannot).
    fn done(self) -> bool {
        match self {
            StagedSync::Later => false,
            StagedSync::Running(running) => running.join().is_ok_and(|r| r.is_ok()),
        }
    }
}

/// The staged copy read: its workbook and its check for `unit`. The answer of the read started
/// ahead when that child read the same bytes (`sha`), else a read of the staged copy now,
/// checked as it comes. A large return's rows are written to the ledger as they are checked
/// ([`Ledger::write_ahead`]). `syncing`: the staged copy's fsync, started once its reader is.
fn read_staged(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    unit: &Unit,
    staged: &Path,
    sha: &str,
    ahead: Option<Reading>,
    syncing: &mut Option<StagedSync>,
) -> Result<(Workbook, Option<Checked>), Finding> {
    let mut writer = WriterAhead {
        ledger,
        writing: true,
        since: None,
    };
    if let Some(ahead) = ahead {
        if let Some(s) = syncing {
            s.start(staged);
        }
        let answer = ahead.finish_with(|rows| writer.write(rows));
        if answer.sha256.as_deref() == Some(sha) {
            return answer.result.map(|wb| (wb, answer.checked));
        }
        tracing::debug!(file = %staged.display(), "the file changed after it was read ahead; reading it again");
        writer.ledger.discard_ahead();
        writer.writing = true;
        writer.since = None;
    }
    let limits = &ctx.config.limits;
    let precheck = crate::read::Precheck {
        plan: std::sync::Arc::clone(ctx.plan),
        unit: unit.clone(),
        now: ctx.now,
        max_rows: limits.max_rows,
    };
    let reading = Reading::start_checked(ctx.exe, Some(ctx.config_path), staged, limits, precheck);
    if let Some(s) = syncing {
        s.start(staged);
    }
    let answer = reading.finish_with(|rows| writer.write(rows));
    answer.result.map(|wb| (wb, answer.checked))
}

/// Rows checked ahead on their way to the ledger ([`Ledger::write_ahead`]). Rows the ledger
/// could not take end the writing; the record writes them. So does a read that goes quiet
/// ([`crate::read::ROWS_AHEAD_QUIET`]) or runs long ([`WRITING_AHEAD_AT_MOST`]): the rows'
/// transaction holds the ledger's write lock, which the mailer and the other commands wait
/// for (SQLite's busy timeout), so it is never held for a slow file.
struct WriterAhead<'a> {
    ledger: &'a mut Ledger,
    writing: bool,
    /// When the first run was written.
    since: Option<std::time::Instant>,
}

/// Rows are written ahead for this long at most after the first run (a 50,000-row return
/// takes well under a second): the write lock is then let go, and the record writes the rest.
const WRITING_AHEAD_AT_MOST: std::time::Duration = std::time::Duration::from_secs(5);

impl WriterAhead<'_> {
    fn write(&mut self, rows: &[crate::core::returns::Row]) {
        if !self.writing {
            return;
        }
        let long = self
            .since
            .is_some_and(|t| t.elapsed() > WRITING_AHEAD_AT_MOST);
        if rows.is_empty() || long {
            if self.ledger.writing_ahead() {
                tracing::debug!("the read is slow; its rows are written with the record");
                self.ledger.discard_ahead();
            }
            self.writing = false;
            return;
        }
        self.since.get_or_insert_with(std::time::Instant::now);
        if let Err(e) = self.ledger.write_ahead(rows) {
            tracing::warn!(error = %e, "cannot write rows ahead; they are written with the record");
            self.writing = false;
        }
    }
}

/// When each step of one intake ended, from the start of its read: logged with the result,
/// for the benchmark and for a slow intake in the field.
#[derive(Default)]
struct Phases {
    read: std::time::Duration,
    checked: std::time::Duration,
    doubles: std::time::Duration,
    archived: std::time::Duration,
    recorded: std::time::Duration,
    /// The record's commit waited for ([`Ledger::make_durable`]).
    durable: std::time::Duration,
    /// Its feedback written, the file moved.
    moved: std::time::Duration,
}

impl std::fmt::Display for Phases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        write!(
            f,
            "read {:.1} checked {:.1} doubles {:.1} archived {:.1} recorded {:.1} durable {:.1} moved {:.1} (ms)",
            ms(self.read),
            ms(self.checked),
            ms(self.doubles),
            ms(self.archived),
            ms(self.recorded),
            ms(self.durable),
            ms(self.moved)
        )
    }
}

/// A return of this many rows or more is large: its cells are freed on a thread of their own,
/// and it ends a group at once. The memory it took goes back to the system after the burst
/// (`memory::hand_back`), not here: the master rebuilt next reuses it.
const LARGE_RETURN_ROWS: usize = 5_000;

fn record_new(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    new: &NewSubmission,
) -> Result<Submission, IntakeError> {
    // Compose the messages the submission causes against its provisional record (no id yet:
    // message keys come from the bytes and the verdict), then store both in one transaction.
    let messages = (ctx.compose)(ledger, new.provisional(), &new.findings);
    Ok(ledger.record(&ctx.config.plan, new, &messages)?)
}

fn write_feedback(
    plan: &str,
    s: &Submission,
    wb: Option<&Workbook>,
    findings: &[Finding],
    path: &Path,
) -> Result<(), IntakeError> {
    let month = s.month.map(|m| m.to_string());
    let received = s.received_at.replace('T', " ");
    let bytes = crate::feedback::render(&crate::feedback::FeedbackInput {
        plan,
        file_name: &s.file_name,
        unit: Some(&s.unit),
        month: month.as_deref(),
        received_at: received.get(..16).unwrap_or(&received),
        workbook: wb,
        findings,
    })
    .map_err(|e| IntakeError::Io {
        path: path.to_path_buf(),
        what: "cannot build the feedback workbook",
        source: std::io::Error::other(e.to_string()),
    })?;
    write_durable(path, &bytes)
}

/// Move the dropped file to its recorded destination (renumbering on a clash) and mark it.
fn finish(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    s: Submission,
) -> Result<Submission, IntakeError> {
    let src = PathBuf::from(&s.source_path);
    let at = stamp(ctx.now);
    if !src.exists() {
        if Path::new(&s.destination).exists() {
            ledger.mark_moved(s.id, &s.destination, &at)?;
        } else {
            ledger.mark_source_gone(
                s.id,
                &at,
                "the dropped file was gone before it could be moved; the archive copy is kept",
            )?;
        }
        return Ok(ledger.submission(s.id)?.unwrap_or(s));
    }
    if hash_file(&src)? != s.sha256 {
        // Replaced since it was recorded (a corrected return under the same name): this
        // record is done — its archive copy is kept — and the new file is a new intake.
        ledger.mark_source_gone(
            s.id,
            &at,
            "the dropped file was replaced by other bytes before it could be moved; the archive copy is kept and the new file is taken in on its own",
        )?;
        return Ok(ledger.submission(s.id)?.unwrap_or(s));
    }
    if let Some(fb) = &s.feedback_path
        && !Path::new(fb).exists()
    {
        // Interrupted before the feedback was written: rebuild it from the archived copy.
        let archived = ctx.config.archive_dir().join(&s.archive_path);
        let wb = crate::read::read_sandboxed(
            ctx.exe,
            Some(ctx.config_path),
            &archived,
            &ctx.config.limits,
        )
        .ok();
        // A duplicate of a rejected return carries its original's findings.
        let findings = ledger.findings(s.duplicate_of.unwrap_or(s.id))?;
        write_feedback(
            &ctx.config.plan.title,
            &s,
            wb.as_ref(),
            &findings,
            Path::new(fb),
        )?;
    }
    let mut dest = PathBuf::from(&s.destination);
    if dest.exists() {
        let dir = dest.parent().map(Path::to_path_buf).unwrap_or_default();
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        dest = free_name(&dir, &name, |p| p.exists());
    }
    debug_assert!(
        ledger.records_durable(),
        "a dropped file is moved only once its record is durable"
    );
    move_file(&src, &dest)?;
    ledger.mark_moved(s.id, &dest.to_string_lossy(), &at)?;
    Ok(ledger.submission(s.id)?.unwrap_or(s))
}

/// Finish every intake a crash interrupted (files recorded but not moved). A record that
/// cannot be finished now is logged and left for the next run; the others go on. With a
/// `claim` (watchers sharing a PostgreSQL ledger: this watcher's name and how long a claim
/// holds), each is finished only under the claim on its file, so that an intake another
/// watcher is doing right now is left to it.
pub fn resume_pending(
    ctx: &IntakeContext<'_>,
    ledger: &mut Ledger,
    claim: Option<(&str, i64)>,
) -> Result<Vec<Submission>, IntakeError> {
    // Staging copies left by a crash (see `clear_staging`); a read mark left beside the
    // ledger by a stop (see `ledger::ahead`) goes into it.
    clear_staging(ctx.config);
    ledger.settle_read_mark_or_warn();
    let mut done = Vec::new();
    for s in ledger.unmoved()? {
        let (id, file) = (s.id, s.source_path.clone());
        let name = Path::new(&file)
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let unit = s.unit.clone();
        if let Some((owner, secs)) = claim {
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if !ledger.claim_file(&unit, &name, owner, clock + secs, clock)? {
                continue;
            }
        }
        match finish(ctx, ledger, s) {
            Ok(s) => done.push(s),
            Err(e) => {
                tracing::error!(submission = id, file = %file, error = %e, "cannot finish an interrupted intake yet")
            }
        }
        if let Some((owner, _)) = claim {
            ledger.release_file(&unit, &name, owner)?;
        }
    }
    Ok(done)
}

/// double-reported warnings: people of this return already counted for another unit, or for
/// this unit in the same category in another month.
fn double_reported(
    ledger: &Ledger,
    unit: &Unit,
    ret: &Return,
) -> Result<Vec<Finding>, IntakeError> {
    let mut out = Vec::new();
    let Some(month) = ret.month else {
        return Ok(out);
    };
    let id_col = ret
        .layout
        .columns
        .get(crate::core::form::Column::Id.header())
        .copied()
        .unwrap_or(2);
    let sheet = ret.layout.roster.clone().unwrap_or_default();
    let earlier = ledger.reports_of_ids(ret.rows.iter().map(|r| r.id.as_str()))?;
    for row in &ret.rows {
        let Some(reports) = earlier.get(&row.id) else {
            continue;
        };
        for (other_unit, other_month, other_cat) in reports {
            let same_unit = other_unit == &unit.name;
            if same_unit && (*other_month == month || other_cat != &row.category) {
                continue; // the same month is being replaced; another category is not a double
            }
            let message = if same_unit {
                format!(
                    "第 {} 行人员（{}）已在本单位 {} 的报表中作为“{}”报送过。按人数统计只计一次；如是重复填报，无需处理（仅提醒）。",
                    row.line,
                    mask_id(&row.id),
                    other_month.label_zh(),
                    other_cat
                )
            } else {
                format!(
                    "第 {} 行人员（{}）已由“{}”在 {} 的报表中作为“{}”报送过。请核实该人员是否确由本单位培训（仅提醒，已列入区里的核查清单）。",
                    row.line,
                    mask_id(&row.id),
                    other_unit,
                    other_month.label_zh(),
                    other_cat
                )
            };
            out.push(Finding::new(
                Code::DoubleReported,
                &sheet,
                crate::core::findings::a1(row.line - 1, id_col),
                mask_id(&row.id),
                message,
            ));
            break;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::returns::Row;

    fn row(line: u32) -> Row {
        Row {
            line,
            name: format!("员工{line}"),
            id: format!("33010819800101{line:03}7"),
            enterprise: "杭州某某科技有限公司".into(),
            credit_code: "91330108MA27XXXX1X".into(),
            category: "其他从业人员".into(),
            date: chrono::NaiveDate::from_ymd_opt(2020, 5, 6).unwrap(),
            hours: 8.0,
            passed: true,
            certificate: String::new(),
        }
    }

    /// A read that goes quiet (an empty run) or runs long lets the ledger's write lock go:
    /// the rows written so far are undone and no more are written; the record writes them all.
    #[test]
    fn a_slow_read_lets_the_write_lock_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("tally.db")).unwrap();
        let mut w = WriterAhead {
            ledger: &mut ledger,
            writing: true,
            since: None,
        };
        w.write(&[row(2), row(3)]);
        assert!(w.ledger.writing_ahead());
        w.write(&[]);
        assert!(!w.ledger.writing_ahead(), "quiet: undone");
        w.write(&[row(4)]);
        assert!(!w.ledger.writing_ahead(), "nothing more is written");

        let mut w = WriterAhead {
            ledger: &mut ledger,
            writing: true,
            since: None,
        };
        w.write(&[row(2)]);
        assert!(w.ledger.writing_ahead());
        w.since = Some(std::time::Instant::now() - WRITING_AHEAD_AT_MOST * 2);
        w.write(&[row(3)]);
        assert!(!w.ledger.writing_ahead(), "long: undone");
    }
}
