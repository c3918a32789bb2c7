//! Durable file steps shared by the edges that write files (intake, master, watch, a unit's
//! progress workbook, the forms in its folder): making a rename or a new file survive power loss,
//! and publishing a file for clerks on the share without disturbing one they hold open. Only
//! file-system calls; no domain rules.

use std::path::{Path, PathBuf};

/// Flush a folder's entries (a rename or a new file in it) to disk. On systems where a folder
/// cannot be opened or synced (Windows) this does nothing: there the rename itself is durable
/// once the file's own data was synced.
pub fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Flush a file's data to disk. It is opened for writing: Windows flushes only a handle that
/// may write.
pub fn sync_file(path: &Path) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)
        .and_then(|f| f.sync_all())
}

/// A fault of the storage under a folder tally writes, rather than of the file at hand: it
/// lasts until someone frees space or remounts the disk, and every file would meet it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StorageFault {
    /// No space left (or the account's quota used up).
    Full,
    /// The file system is mounted read-only.
    ReadOnly,
}

impl StorageFault {
    /// The fault an I/O error reports, if it is one.
    pub fn of_io(e: &std::io::Error) -> Option<StorageFault> {
        use std::io::ErrorKind;
        match e.kind() {
            ErrorKind::StorageFull | ErrorKind::QuotaExceeded => Some(StorageFault::Full),
            ErrorKind::ReadOnlyFilesystem => Some(StorageFault::ReadOnly),
            _ => None,
        }
    }

    /// The first storage fault among `err` and its sources (I/O errors only; the ledger
    /// recognises its own database's, see `LedgerError::storage_fault`).
    pub fn in_chain(err: &(dyn std::error::Error + 'static)) -> Option<StorageFault> {
        let mut next = Some(err);
        while let Some(e) = next {
            if let Some(f) = e
                .downcast_ref::<std::io::Error>()
                .and_then(StorageFault::of_io)
            {
                return Some(f);
            }
            next = e.source();
        }
        None
    }

    /// 磁盘空间已满 / 磁盘为只读: for the bureau's alert.
    pub fn label(self) -> &'static str {
        match self {
            StorageFault::Full => "磁盘空间已满",
            StorageFault::ReadOnly => "磁盘为只读状态",
        }
    }

    /// For logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StorageFault::Full => "disk full",
            StorageFault::ReadOnly => "read-only file system",
        }
    }
}

/// Temporary files tally writes beside a file it replaces start with this: hidden on Unix,
/// and a name the watcher never takes as a return.
pub const TEMP_PREFIX: &str = ".tally-";
/// …and end with this (the watcher ignores `*.tmp`).
pub const TEMP_SUFFIX: &str = ".tmp";

/// Prefixes of temporary files that earlier versions of tally wrote: the master's
/// `.master.XXXXXX.tmp`. Recognised so an upgraded install loses that litter too.
const LEGACY_TEMP_PREFIXES: [&str; 1] = [".master."];

/// A new private temporary file in `dir`, named `.tally-XXXXXX.tmp`: the one shape of every
/// temporary file tally makes, so the watcher ignores it, the clerk can tell it is tally's,
/// and [`remove_stale_temps`] finds it after a crash.
pub fn temp_file_in(dir: &Path) -> std::io::Result<tempfile::NamedTempFile> {
    tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
}

/// Whether `name` is a temporary file of tally's ([`temp_file_in`], or a legacy one:
/// `.master.XXXXXX.tmp`, or tempfile's default `.tmpXXXXXX` of versions before the one shape).
pub fn is_temp_name(name: &str) -> bool {
    let ours = name.ends_with(TEMP_SUFFIX)
        && (name.starts_with(TEMP_PREFIX)
            || LEGACY_TEMP_PREFIXES.iter().any(|p| name.starts_with(p)));
    let legacy_default = name.len() == 10
        && name
            .strip_prefix(".tmp")
            .is_some_and(|rest| rest.bytes().all(|b| b.is_ascii_alphanumeric()));
    ours || legacy_default
}

/// Remove the temporary files a killed tally left directly in `dir` (not in its sub-folders);
/// returns what was removed. Call it only while holding the state lock (or from the one
/// writer of that folder): a temporary file of a running tally would be taken away from it.
pub fn remove_stale_temps(dir: &Path) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for e in entries.flatten() {
        let is_file = e.file_type().is_ok_and(|t| t.is_file());
        if !is_file || !e.file_name().to_str().is_some_and(is_temp_name) {
            continue;
        }
        match std::fs::remove_file(e.path()) {
            Ok(()) => removed.push(e.path()),
            Err(err) => {
                tracing::warn!(path = %e.path().display(), error = %err, "cannot remove a stale temporary file")
            }
        }
    }
    removed
}

/// [`remove_stale_temps`] in `dir` and its sub-folders down to `depth` levels (0: `dir` only).
/// Hidden sub-folders are skipped.
pub fn remove_stale_temps_under(dir: &Path, depth: usize) -> Vec<PathBuf> {
    let mut removed = remove_stale_temps(dir);
    if depth == 0 {
        return removed;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for e in entries.flatten() {
        let hidden = e.file_name().to_str().is_none_or(|n| n.starts_with('.'));
        if !hidden && e.file_type().is_ok_and(|t| t.is_dir()) {
            removed.extend(remove_stale_temps_under(&e.path(), depth - 1));
        }
    }
    removed
}

/// Temporary files are private (0600); a file published for others on the share (the master,
/// a unit's progress workbook) gets 0644 before it is renamed into place.
pub fn shared_mode(file: &std::fs::File) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = file.set_permissions(std::fs::Permissions::from_mode(0o644));
    }
    #[cfg(not(unix))]
    let _ = file;
}

/// What became of a file published into a unit's folder.
#[derive(Debug, PartialEq, Eq)]
pub enum Published {
    /// Written: new, or its content changed.
    Written(PathBuf),
    /// It held these bytes already: left untouched.
    Unchanged(PathBuf),
    /// Left as it is: a clerk has it open (an Office lock file beside it, or the rename
    /// refused), or has saved over it.
    Kept(PathBuf),
}

/// A file step of publishing that failed.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {what}: {source}")]
pub struct PublishError {
    pub path: PathBuf,
    pub what: &'static str,
    pub source: std::io::Error,
}

/// Replace `target` with `bytes` atomically (a temporary file beside it, fsync, rename, sync
/// the folder), unless it holds these bytes already or a clerk holds it open.
pub fn publish(target: &Path, bytes: &[u8]) -> Result<Published, PublishError> {
    let dir = target.parent().unwrap_or(Path::new("."));
    if held_open(target) {
        return Ok(Published::Kept(target.to_path_buf()));
    }
    if std::fs::read(target).is_ok_and(|old| old == bytes) {
        return Ok(Published::Unchanged(target.to_path_buf()));
    }
    let io = |path: &Path, what| {
        let path = path.to_path_buf();
        move |source| PublishError { path, what, source }
    };
    // No folder is made here: a unit's folder that is gone is the watcher's to notice and
    // recreate, not something a publish should paper over.
    let mut tmp = temp_file_in(dir).map_err(io(dir, "cannot create a temporary file"))?;
    use std::io::Write as _;
    tmp.write_all(bytes)
        .map_err(io(tmp.path(), "cannot write"))?;
    shared_mode(tmp.as_file());
    tmp.as_file()
        .sync_all()
        .map_err(io(tmp.path(), "cannot fsync"))?;
    match tmp.persist(target) {
        Ok(_) => {
            sync_dir(dir);
            Ok(Published::Written(target.to_path_buf()))
        }
        // Windows refuses to replace a file another program holds open.
        Err(e) if e.error.kind() == std::io::ErrorKind::PermissionDenied => {
            Ok(Published::Kept(target.to_path_buf()))
        }
        Err(e) => Err(PublishError {
            path: target.to_path_buf(),
            what: "cannot replace",
            source: e.error,
        }),
    }
}

/// Whether Excel, WPS or LibreOffice has `path` open: their lock file is beside it.
pub fn held_open(path: &Path) -> bool {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str())) else {
        return false;
    };
    // Excel and WPS: `~$` over the first two characters of a long name, or before a short one.
    let short: String = name.chars().skip(2).collect();
    [
        format!("~${name}"),
        format!("~${short}"),
        format!(".~lock.{name}#"),
    ]
    .iter()
    .any(|lock| dir.join(lock).exists())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_writes_skips_the_same_bytes_and_keeps_a_file_held_open() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("本单位进度.xlsx");
        assert_eq!(
            publish(&target, b"one").unwrap(),
            Published::Written(target.clone())
        );
        assert_eq!(
            publish(&target, b"one").unwrap(),
            Published::Unchanged(target.clone())
        );
        for lock in [
            "~$本单位进度.xlsx",
            "~$位进度.xlsx",
            ".~lock.本单位进度.xlsx#",
        ] {
            let lock = dir.path().join(lock);
            std::fs::write(&lock, b"").unwrap();
            assert_eq!(
                publish(&target, b"two").unwrap(),
                Published::Kept(target.clone())
            );
            std::fs::remove_file(lock).unwrap();
        }
        assert_eq!(std::fs::read(&target).unwrap(), b"one");
        assert_eq!(
            publish(&target, b"two").unwrap(),
            Published::Written(target.clone())
        );
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(names.len(), 1, "no temporary file left");
    }

    #[test]
    fn stale_temps_are_tallys_own_and_removed_at_the_given_depth() {
        for name in [".tally-a1B2c3.tmp", ".master.Xy12zz.tmp", ".tmpAb12Cd"] {
            assert!(is_temp_name(name), "{name}");
        }
        for name in [
            "2020-05.xlsx",
            "~$2020-05.xlsx",
            "ABCD1234.tmp",
            ".tally-notes.txt",
            ".tmp",
            ".tmpAb12Cd.xlsx",
        ] {
            assert!(!is_temp_name(name), "{name}");
        }
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("已接收");
        std::fs::create_dir(&sub).unwrap();
        let top = temp_file_in(dir.path())
            .unwrap()
            .into_temp_path()
            .keep()
            .unwrap();
        let deep = temp_file_in(&sub).unwrap().into_temp_path().keep().unwrap();
        std::fs::write(dir.path().join("2020-05.xlsx"), b"x").unwrap();
        assert_eq!(remove_stale_temps(dir.path()), vec![top.clone()]);
        assert!(deep.exists());
        let _again = temp_file_in(dir.path())
            .unwrap()
            .into_temp_path()
            .keep()
            .unwrap();
        assert_eq!(remove_stale_temps_under(dir.path(), 1).len(), 2);
        assert!(!deep.exists());
        assert!(dir.path().join("2020-05.xlsx").exists());
    }
}
