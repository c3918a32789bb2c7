//! Personal data at rest (DESIGN.md §8): the ledger, the archive, its staging folder and the
//! log files hold full 身份证号, so on Unix they are the owner's alone — folders 0700, files
//! 0600, set explicitly whatever the umask — and a plan folder left readable by others is
//! tightened at start with a warning. Only file-system calls; no domain rules.
//!
//! Windows: nothing is changed there. Files inherit the ACL of their folder, so keep the plan
//! folder's `state\` and `archive\` (and the log folder) under a folder whose ACL grants
//! access only to the service account and the administrators, with inheritance on:
//! `icacls <plan>\state /inheritance:r /grant:r "<account>:(OI)(CI)F" "Administrators:(OI)(CI)F"`,
//! and the same for `archive\`. Never put them on the shared drive.

use std::path::{Path, PathBuf};

/// The archive's staging folder (intake's private copies of drops being taken in).
pub const STAGING_DIR: &str = ".staging";

/// Mode of a folder holding personal data.
pub const FOLDER_MODE: u32 = 0o700;
/// Mode of a file holding personal data.
pub const FILE_MODE: u32 = 0o600;

/// Create `dir` (and its missing parents) owner-only; an existing folder is left as it is.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        // Parents that do not exist yet are the plan's own folders (state/, archive/): private.
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(FOLDER_MODE)
            .create(dir)?;
        // The umask may have taken bits away, never added any: set the mode explicitly.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(FOLDER_MODE))
    }
    #[cfg(not(unix))]
    std::fs::create_dir_all(dir)
}

/// Create `path` if it is missing, as an empty owner-only file; an existing file is made
/// owner-only. For files another library then opens (SQLite's database, a log file).
pub fn touch_file(path: &Path) -> std::io::Result<()> {
    // Never open an existing file: SQLite's POSIX locks belong to the process, and closing any
    // other descriptor of the database (or its -shm) in this process would drop them — another
    // process could then reset the -shm under this one's mapping (SIGBUS).
    if path.exists() {
        return restrict_path(path);
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, FILE_MODE);
    match options.open(path) {
        Ok(file) => restrict_file(&file),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => restrict_path(path),
        Err(e) => Err(e),
    }
}

/// Make an open file owner-only (0600).
pub fn restrict_file(file: &std::fs::File) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if file.metadata()?.permissions().mode() & 0o777 != FILE_MODE {
            file.set_permissions(std::fs::Permissions::from_mode(FILE_MODE))?;
        }
    }
    #[cfg(not(unix))]
    let _ = file;
    Ok(())
}

/// Make the file at `path` owner-only if it exists. By path, never through a descriptor (see
/// [`touch_file`]).
pub fn restrict_path(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        match std::fs::metadata(path) {
            Ok(m) if m.permissions().mode() & 0o777 != FILE_MODE => {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(FILE_MODE))
            }
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        Ok(())
    }
}

/// What [`secure`] changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tightened {
    /// Entries whose mode was changed to owner-only.
    pub entries: usize,
    /// Of those, files of personal data other accounts could actually read: readable by them,
    /// under folders all open to them (a return in a 0755 month folder inside a 0700 archive
    /// was not). Folders themselves, and the state lock (a process id), are not counted: a
    /// fresh state folder made by the lock before the ledger opened is no exposure.
    pub exposed: usize,
}

/// Once per run, before the ledger or the archive is touched: create the state folder (the
/// ledger's), the archive and its staging folder owner-only, and tighten one that others may
/// enter — every folder under it to 0700, every file to 0600 — logging a warning that names the folder where
/// personal data was reachable by other accounts. Symbolic links are not followed. Does
/// nothing on Windows (see the module's note). A folder that holds one of `shared` (the watch
/// root, the master: a plan that keeps its ledger beside them) is created but never walked.
pub fn secure(
    state_dir: &Path,
    archive_dir: &Path,
    staging_dir: &Path,
    shared: &[&Path],
) -> Tightened {
    let mut total = Tightened::default();
    for dir in [state_dir, archive_dir, staging_dir] {
        if let Err(e) = create_dir(dir) {
            tracing::warn!(folder = %dir.display(), error = %e, "cannot create the folder owner-only");
            continue;
        }
        if shared.iter().any(|s| s.starts_with(dir)) {
            continue;
        }
        // Under a folder no other account may enter nothing is reachable, whatever the modes
        // inside: the walk (seconds for a large archive, at every start) is needed only when
        // the folder itself was opened.
        if owner_only(dir) {
            continue;
        }
        let t = tighten(dir);
        if t.exposed > 0 {
            tracing::warn!(
                folder = %dir.display(),
                entries = t.exposed,
                "personal data was readable by other accounts: made owner-only (folders 0700, files 0600)"
            );
        } else if t.entries > 0 {
            tracing::debug!(folder = %dir.display(), entries = t.entries, "made owner-only");
        }
        total.entries += t.entries;
        total.exposed += t.exposed;
    }
    total
}

/// The plan's private folders, as [`register`]ed by the settings of this run.
struct Plan {
    state_dir: PathBuf,
    archive_dir: PathBuf,
    staging_dir: PathBuf,
    shared: Vec<PathBuf>,
}

static PLAN: std::sync::OnceLock<Plan> = std::sync::OnceLock::new();
static SECURED: std::sync::Once = std::sync::Once::new();

/// Name this run's private folders (settings load, once). Nothing is touched yet: a command
/// that never opens the ledger (`check`, `template`) writes nothing; the first
/// [`secure_registered`] (`Ledger::open`) creates and tightens them.
pub fn register(state_dir: &Path, archive_dir: &Path, staging_dir: &Path, shared: &[&Path]) {
    let _ = PLAN.set(Plan {
        state_dir: state_dir.to_path_buf(),
        archive_dir: archive_dir.to_path_buf(),
        staging_dir: staging_dir.to_path_buf(),
        shared: shared.iter().map(|p| p.to_path_buf()).collect(),
    });
}

/// [`secure`] the registered folders, once per process; nothing when none were registered
/// (a library caller, the `__read` child).
pub fn secure_registered() {
    SECURED.call_once(|| {
        if let Some(p) = PLAN.get() {
            let shared: Vec<&Path> = p.shared.iter().map(PathBuf::as_path).collect();
            secure(&p.state_dir, &p.archive_dir, &p.staging_dir, &shared);
        }
    });
}

/// Tighten `dir` and everything under it.
#[cfg(unix)]
fn tighten(dir: &Path) -> Tightened {
    use std::os::unix::fs::PermissionsExt;
    let mut t = Tightened::default();
    // (path, whether others can reach it: every folder above it open to them)
    let mut stack = vec![(dir.to_path_buf(), true)];
    while let Some((path, reachable)) = stack.pop() {
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let want = if meta.is_dir() {
            FOLDER_MODE
        } else if meta.is_file() {
            FILE_MODE
        } else {
            continue;
        };
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 || mode & want != want {
            match std::fs::set_permissions(&path, std::fs::Permissions::from_mode(want)) {
                Ok(()) => {
                    t.entries += 1;
                    if reachable && meta.is_file() && mode & 0o044 != 0 && !is_lock(&path) {
                        t.exposed += 1;
                    }
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot make owner-only")
                }
            }
        }
        if meta.is_dir()
            && let Ok(entries) = std::fs::read_dir(&path)
        {
            let open = reachable && mode & 0o011 != 0;
            stack.extend(entries.flatten().map(|e| (e.path(), open)));
        }
    }
    t
}

/// Whether `dir` is closed to other accounts (no group or other bits).
#[cfg(unix)]
fn owner_only(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir() && m.permissions().mode() & 0o077 == 0)
}

#[cfg(not(unix))]
fn owner_only(_dir: &Path) -> bool {
    true
}

/// The state lock beside the ledger (`ledger::lock`): holds a process id, no personal data.
#[cfg(unix)]
fn is_lock(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "lock")
}

#[cfg(not(unix))]
fn tighten(_dir: &Path) -> Tightened {
    Tightened::default()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_folders_and_files_are_owner_only_whatever_the_umask() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("a/b");
        create_dir(&d).unwrap();
        assert_eq!(mode(&d), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        let f = d.join("f.db");
        touch_file(&f).unwrap();
        assert_eq!(mode(&f), 0o600);
    }

    #[test]
    fn an_open_tree_is_tightened_and_counted_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (state, archive) = (tmp.path().join("state"), tmp.path().join("archive"));
        let month = archive.join("西兴街道/2020-05");
        std::fs::create_dir_all(&month).unwrap();
        std::fs::create_dir_all(&state).unwrap();
        for d in [&state, &archive, &archive.join("西兴街道"), &month] {
            std::fs::set_permissions(d, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        std::fs::write(state.join("tally.db"), b"x").unwrap();
        std::fs::write(month.join("r.xlsx"), b"x").unwrap();
        for f in [state.join("tally.db"), month.join("r.xlsx")] {
            std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        let staging = archive.join(".staging");
        let t = secure(&state, &archive, &staging, &[]);
        // state, tally.db, archive, the unit, the month, the return (.staging is new: 0700); of
        // those, the two files were readable by others.
        assert_eq!((t.entries, t.exposed), (6, 2));
        assert_eq!(mode(&month.join("r.xlsx")), 0o600);
        assert_eq!(mode(&month), 0o700);
        assert_eq!(mode(&staging), 0o700);
        assert_eq!(
            secure(&state, &archive, &staging, &[]),
            Tightened::default()
        );
        // A state folder that holds the watch root is never walked.
        std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = secure(&state, &archive, &staging, &[&state.join("watch-dirs")]);
        assert_eq!((t.entries, mode(&state)), (0, 0o755));
        // A month folder left 0755 inside a private archive is reachable by nobody: the
        // archive is not walked (its walk costs seconds at every start when it is large)...
        std::fs::create_dir(archive.join("西兴街道/2020-06")).unwrap();
        let m = archive.join("西兴街道/2020-06");
        std::fs::set_permissions(&m, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = secure(&state, &archive, &staging, &[&state.join("watch-dirs")]);
        assert_eq!((t.entries, t.exposed, mode(&m)), (0, 0, 0o755));
        // ...until the archive itself is opened: then all of it is tightened, and the month
        // folder was not reachable through the closed unit folder, so nothing was exposed.
        std::fs::set_permissions(&archive, std::fs::Permissions::from_mode(0o755)).unwrap();
        let t = secure(&state, &archive, &staging, &[&state.join("watch-dirs")]);
        assert_eq!((t.entries, t.exposed, mode(&m)), (2, 0, 0o700));
    }
}
