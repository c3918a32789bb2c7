//! Putting the master in place, durably: render into a temporary file beside it, fsync, keep
//! the previous version under `<archive>/master/`, rename over the old file (the temporary file
//! is `.tally-XXXXXX.tmp`, and one a killed rebuild left is removed by the next); when the old file
//! is held open or read-only, retry, then write `master.<time>.xlsx` beside it. The new content
//! is never lost and an unchanged master is left untouched. It renders nothing itself.

use super::{MasterError, RenderOptions, render_with_bar};
use crate::config::Config;
use crate::core::count::CountedRow;
use crate::core::plan::Unit;
use crate::durable::sync_dir;
use crate::ledger::Ledger;
use chrono::DateTime;
use chrono_tz::Tz;
use indicatif::ProgressBar;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Folder under the configured archive that holds earlier versions of the master.
pub const ARCHIVE_SUBDIR: &str = "master";

/// Waits between attempts to rename the new master over a file someone holds open (1.5 s in
/// all), before writing `master.<timestamp>.xlsx` beside it instead.
const RENAME_BACKOFF_MS: [u64; 4] = [100, 200, 400, 800];

fn io_err<'a>(
    path: &'a Path,
    what: &'static str,
) -> impl FnOnce(std::io::Error) -> MasterError + 'a {
    move |source| MasterError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
}

/// Write the master at `config.master_path()`: render into a temporary file in the same
/// folder, fsync, keep the previous version under `<archive>/master/` (the newest
/// `master.versions_kept`), then rename over the old file. When the old file cannot be replaced
/// — held open (Excel on a Windows share) or read-only — retry with backoff, then write
/// `master.<timestamp>.xlsx` beside it and log a warning: the new content is never lost.
/// Returns where the master was written. An unchanged master is left untouched.
pub fn rebuild(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
) -> Result<PathBuf, MasterError> {
    let nothing = || Ok(None::<Nothing>);
    Ok(rebuild_with(config, ledger, now, false, &ProgressBar::hidden(), nothing)?.master)
}

/// [`rebuild`], and every unit's roster workbook rewritten whether or not it changed (`tally
/// rebuild`); the master is rendered on a thread of its own meanwhile. With the roster per
/// unit, each unit's rows read for its roster workbook also feed what `beside` makes of them
/// (another workbook of the unit), in the same pass over the ledger; `beside` is made after the
/// kept tallies are recounted, and its outcomes come back in the plan's order of units. `None`
/// when no roster is written per unit: `beside` was not made and its work is the caller's.
/// `bar` advances by each roster row written (a terminal's progress bar, or hidden).
pub fn rebuild_full<B: Beside>(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    bar: &ProgressBar,
    beside: impl FnOnce() -> Result<Option<B>, MasterError>,
) -> Result<Rebuilt<B>, MasterError> {
    rebuild_with(config, ledger, now, true, bar, beside)
}

/// What [`rebuild_full`] did.
pub struct Rebuilt<B: Beside> {
    /// Where the master was written.
    pub master: PathBuf,
    /// The [`Beside`] made and its outcomes; `None` when no roster was written per unit.
    pub beside: Option<BesideDone<B>>,
}

/// A [`Beside`] and what became of each unit's workbook beside its roster, in the plan's order.
pub type BesideDone<B> = (B, Vec<<B as Beside>::Outcome>);

/// Another workbook of each unit made from the rows read for its roster workbook, so that a
/// unit's rows are read from the ledger once for both (`tally rebuild` renders each unit's
/// progress workbook so). Each unit's calls come on one thread, in order: `start`, `write` for
/// each of its counted rows in ledger order, then `finish`; units go on both cores at once.
pub trait Beside: Sync {
    /// A unit's workbook while its rows stream in.
    type Book;
    /// What became of it.
    type Outcome: Send;

    /// Start `unit`'s workbook, reading what else it needs through `reader`; `None` when this
    /// unit gets none.
    fn start(&self, reader: &Ledger, unit: &Unit) -> Option<Self::Book>;
    /// One counted row of the unit (the roster workbook takes it next).
    fn write(&self, book: &mut Self::Book, row: &CountedRow);
    /// After the unit's last row.
    fn finish(&self, book: Self::Book) -> Self::Outcome;
}

/// Nothing beside the rosters (a rebuild after an intake).
struct Nothing;

impl Beside for Nothing {
    type Book = ();
    type Outcome = ();

    fn start(&self, _: &Ledger, _: &Unit) -> Option<()> {
        None
    }

    fn write(&self, _: &mut (), _: &CountedRow) {}

    fn finish(&self, _: ()) {}
}

fn rebuild_with<B: Beside>(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    full: bool,
    bar: &ProgressBar,
    beside: impl FnOnce() -> Result<Option<B>, MasterError>,
) -> Result<Rebuilt<B>, MasterError> {
    // Watchers sharing a PostgreSQL ledger write the master one at a time.
    ledger.as_master_writer(|| {
        // Tallies counted under an earlier plan are recounted once, here (callers hold the
        // lock).
        if ledger.refresh_tallies(&config.plan)? {
            tracing::info!("kept tallies recounted for the plan");
        }
        if !full {
            let master = write_master(config, ledger, now, bar)?;
            let beside = publish_rosters(config, ledger, now, full, bar, beside)?;
            return Ok(Rebuilt { master, beside });
        }
        // The master is rendered on a thread of its own, with its own reader of the ledger,
        // while the units' workbooks take both cores: it is not waited for first.
        let reader = ledger.reader()?;
        std::thread::scope(|scope| {
            let master = scope.spawn(move || write_master(config, &reader, now, bar));
            let beside = publish_rosters(config, ledger, now, full, bar, beside);
            let master = master
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))?;
            Ok(Rebuilt {
                master,
                beside: beside?,
            })
        })
    })?
}

/// Folder beside the master with one roster workbook per unit (`[master] roster = "per-unit"`).
pub const ROSTER_DIR: &str = "台账";

/// Roster rows written between moves of the progress bar.
const BAR_BATCH: u64 = 1024;

/// `watch_state` key prefix of what each unit's roster workbook was last written from.
const ROSTER_STAMP: &str = "roster:";

/// With `[master] roster = "per-unit"` (or `auto` past its size), write `台账/<unit>.xlsx`
/// beside the master for each unit whose counted returns changed since it was last written
/// (every unit when `full`), and feed the same rows to `beside` (made here, see
/// [`rebuild_full`]). A unit's file held open is kept and written next time.
fn publish_rosters<B: Beside>(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    full: bool,
    bar: &ProgressBar,
    beside: impl FnOnce() -> Result<Option<B>, MasterError>,
) -> Result<Option<BesideDone<B>>, MasterError> {
    let mode = config.master.roster.resolve(ledger.counted_total()?);
    if mode != super::RosterMode::PerUnit {
        return Ok(None);
    }
    let dir = config
        .master_path()
        .parent()
        .unwrap_or(Path::new("."))
        .join(ROSTER_DIR);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the roster folder"))?;
    crate::durable::remove_stale_temps(&dir);
    let stamps = ledger.roster_stamps()?;
    let made_under = format!(
        "{};{}",
        crate::core::count::tally_fingerprint(&config.plan),
        config.plan.mask_ids
    );
    let mut due = Vec::new();
    for unit in &config.plan.units {
        let target = dir.join(format!("{}.xlsx", unit.folder()));
        let key = format!("{ROSTER_STAMP}{}", unit.name);
        let stamp = format!(
            "{};{made_under}",
            stamps.get(&unit.name).copied().unwrap_or(0)
        );
        if full || !target.is_file() || ledger.state_value(&key)?.as_deref() != Some(&stamp) {
            due.push((unit, target, key, stamp));
        }
    }
    let beside = beside()?;
    // Rendered and written on both cores, each with its own reader of the ledger.
    let written = ledger.in_parallel(&due, |reader, (unit, target, _, _)| {
        let mut other = beside
            .as_ref()
            .and_then(|b| Some((b, b.start(reader, unit)?)));
        let mut roster = super::UnitRoster::start(config, &unit.name, now)?;
        let mut failed = None;
        // The bar moves a batch of rows at a time: it reads the clock on each move.
        let mut unshown = 0;
        reader.for_each_counted_row_of(Some(&unit.name), |r| {
            if let Some((b, book)) = &mut other {
                b.write(book, &r);
            }
            if failed.is_none() {
                failed = roster.write(r).err();
                unshown += 1;
                if unshown == BAR_BATCH {
                    bar.inc(unshown);
                    unshown = 0;
                }
            }
            Ok(())
        })?;
        bar.inc(unshown);
        if let Some(err) = failed {
            return Err(err.into());
        }
        let bytes = roster.finish()?;
        let outcome = other.map(|(b, book)| b.finish(book));
        Ok::<_, MasterError>((crate::durable::publish(target, &bytes), outcome))
    })?;
    let mut outcomes = Vec::new();
    for ((unit, _, key, stamp), result) in due.iter().zip(written) {
        let (published, outcome) = result?;
        outcomes.extend(outcome);
        match published {
            Ok(crate::durable::Published::Kept(path)) => {
                tracing::info!(unit = %unit.name, path = %path.display(), "roster workbook held open; written next time");
            }
            Ok(_) => ledger.set_state_value(key, stamp)?,
            Err(e) => {
                tracing::warn!(unit = %unit.name, error = %e, "roster workbook not written")
            }
        }
    }
    Ok(beside.map(|b| (b, outcomes)))
}

/// Render and put the master in place (see [`rebuild`]).
fn write_master(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    bar: &ProgressBar,
) -> Result<PathBuf, MasterError> {
    let target = config.master_path();
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the master's folder"))?;
    // Callers hold the state lock: a temporary file here is a killed rebuild's, never a
    // running one's, and goes at once.
    crate::durable::remove_stale_temps(&dir);
    let started = std::time::Instant::now();
    let mut tmp = crate::durable::temp_file_in(&dir)
        .map_err(io_err(&dir, "cannot create a temporary file"))?;
    let tmp_path = tmp.path().to_path_buf();
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        render_with_bar(
            config,
            ledger,
            now,
            &RenderOptions::default(),
            &mut out,
            bar,
        )?;
        out.flush().map_err(io_err(&tmp_path, "cannot write"))?;
    }
    shared_mode(tmp.as_file(), &target);
    tmp.as_file()
        .sync_all()
        .map_err(io_err(tmp.path(), "cannot fsync"))?;

    if target.is_file() && same_content(tmp.path(), &target) {
        tracing::info!(path = %target.display(), "master unchanged");
        return Ok(target);
    }
    let stamp = now.format("%Y%m%dT%H%M%S").to_string();
    let stem = target
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("master")
        .to_string();
    if target.is_file() {
        // A full or missing archive must not hold the bureau's view back: warn and go on.
        if let Err(e) = archive_previous(config, &target, &stem, &stamp) {
            tracing::warn!(error = %e, "the previous master was not archived");
        }
    }

    let mut tmp = tmp;
    let mut last_error = None;
    for (attempt, wait) in std::iter::once(0).chain(RENAME_BACKOFF_MS).enumerate() {
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait));
        }
        if is_read_only(&target) {
            last_error = Some(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the file is read-only",
            ));
            continue;
        }
        match tmp.persist(&target) {
            Ok(_) => {
                sync_dir(&dir);
                // Versions written beside it while it was held open are stale now.
                remove_all(&versions(&dir, &stem), "a stale copy of the master");
                tracing::info!(path = %target.display(), ms = started.elapsed().as_millis() as u64, "master written");
                return Ok(target);
            }
            Err(e) => {
                tracing::debug!(attempt, error = %e.error, path = %target.display(), "cannot replace the master yet");
                last_error = Some(e.error);
                tmp = e.file;
            }
        }
    }

    // Held open: write the new version beside it under a name nobody holds.
    let earlier = versions(&dir, &stem);
    let name = format!("{stem}.{stamp}.xlsx");
    let fallback = crate::intake::free_name(&dir, &name, |p| p.exists());
    tmp.persist_noclobber(&fallback)
        .map_err(|e| MasterError::Io {
            path: fallback.clone(),
            what: "cannot write the master beside the one held open",
            source: e.error,
        })?;
    sync_dir(&dir);
    // Only the newest version beside it is kept (one still held open stays too).
    remove_all(&earlier, "an earlier copy of the master");
    tracing::warn!(
        path = %target.display(),
        written = %fallback.display(),
        error = %last_error.map(|e| e.to_string()).unwrap_or_default(),
        "the master is held open or read-only and could not be replaced; the new version was written beside it — close the file and run `tally rebuild`"
    );
    Ok(fallback)
}

/// Temporary files are private (0600); the master is for everyone on the share: keep the old
/// file's mode, or 0644 for a first master.
fn shared_mode(file: &std::fs::File, like: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(like)
            .map(|m| m.permissions().mode() & 0o777)
            .ok()
            .filter(|m| m & 0o200 != 0)
            .unwrap_or(0o644);
        let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (file, like);
}

fn is_read_only(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.permissions().readonly())
        .unwrap_or(false)
}

/// Whether two files hold the same bytes (streamed).
fn same_content(a: &Path, b: &Path) -> bool {
    let (Ok(fa), Ok(fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    match (fa.metadata(), fb.metadata()) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() => {}
        _ => return false,
    }
    let (mut ra, mut rb) = (std::io::BufReader::new(fa), std::io::BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let Ok(n) = read_full(&mut ra, &mut ba) else {
            return false;
        };
        let Ok(m) = read_full(&mut rb, &mut bb) else {
            return false;
        };
        if n != m || ba[..n] != bb[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Copy the current master to `<archive>/master/<stem>.<stamp>.xlsx` — unless the newest copy
/// there already holds these bytes (a master held open for a while) — and prune the oldest.
fn archive_previous(
    config: &Config,
    current: &Path,
    stem: &str,
    stamp: &str,
) -> Result<(), MasterError> {
    let dir = config.archive_dir().join(ARCHIVE_SUBDIR);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the archive folder"))?;
    if let Some(newest) = versions(&dir, stem).pop()
        && same_content(&newest, current)
    {
        return Ok(());
    }
    let dest = crate::intake::free_name(&dir, &format!("{stem}.{stamp}.xlsx"), |p| p.exists());
    crate::intake::copy_durable(current, &dest).map_err(|e| MasterError::Io {
        path: dest.clone(),
        what: "cannot archive the previous master",
        source: std::io::Error::other(e.to_string()),
    })?;
    let old = versions(&dir, stem);
    let excess = old.len().saturating_sub(config.master.versions_kept);
    remove_all(&old[..excess], "an old archived master");
    Ok(())
}

/// (timestamp, sequence) of `<stem>.<YYYYMMDDTHHMMSS>.xlsx` or `<stem>.<stamp> (n).xlsx`.
fn version_key(stem: &str, name: &str) -> Option<(String, u32)> {
    let rest = name
        .strip_prefix(stem)?
        .strip_prefix('.')?
        .strip_suffix(".xlsx")?;
    let (stamp, n) = match rest.split_once(" (") {
        Some((stamp, n)) => (stamp, n.strip_suffix(')')?.parse().ok()?),
        None => (rest, 1),
    };
    let b = stamp.as_bytes();
    let is_stamp = b.len() == 15
        && b[8] == b'T'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit());
    is_stamp.then(|| (stamp.to_string(), n))
}

/// Versions of a master in a folder (archived copies, or fallbacks beside it), oldest first.
fn versions(dir: &Path, stem: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<((String, u32), PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((version_key(stem, e.file_name().to_str()?)?, e.path())))
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// Remove derived files (old masters; they can always be rebuilt); one held open stays.
fn remove_all(paths: &[PathBuf], what: &str) {
    for path in paths {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove {what}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_sort_by_stamp_then_number() {
        let mut keys: Vec<_> = [
            "master.20200702T000000.xlsx",
            "master.20200701T000000 (2).xlsx",
            "master.20200701T000000.xlsx",
            "master.20200701T000000 (10).xlsx",
        ]
        .iter()
        .map(|n| version_key("master", n).unwrap())
        .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                ("20200701T000000".to_string(), 1),
                ("20200701T000000".to_string(), 2),
                ("20200701T000000".to_string(), 10),
                ("20200702T000000".to_string(), 1)
            ]
        );
        for other in [
            "notes.txt",
            "master.xlsx",
            "master.backup.xlsx",
            "master.2020.xlsx",
        ] {
            assert!(version_key("master", other).is_none(), "{other}");
        }
        assert!(version_key("考核汇总", "考核汇总.20200701T000000.xlsx").is_some());
    }
}
