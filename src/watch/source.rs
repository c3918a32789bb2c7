//! What the file system tells the daemon: notify wrapped as [`Watcher`] `{ Native, Poll }`,
//! notify's events converted once into tally's [`FsEvent`], watcher failures as [`WatchError`]
//! (with help text), and one look at a path ([`look_at`]) for the settle machine. It decides
//! nothing: what an event or a look means is the daemon's and the settle machine's business.

use crate::core::settle::{self, Look, Stat};
use std::path::{Path, PathBuf};
use std::sync::mpsc::Sender;
use std::time::{Duration, SystemTime};

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

/// inotify's errors when its per-user limits are reached (Linux errno values). Windows'
/// ReadDirectoryChangesW has no such limits: there these never match (Win32 error codes are
/// another numbering).
#[cfg(unix)]
const NO_WATCHES_LEFT: Option<i32> = Some(libc::ENOSPC);
#[cfg(unix)]
const NO_INSTANCES_LEFT: Option<i32> = Some(libc::EMFILE);
#[cfg(not(unix))]
const NO_WATCHES_LEFT: Option<i32> = None;
#[cfg(not(unix))]
const NO_INSTANCES_LEFT: Option<i32> = None;

fn errno_is(io: &std::io::Error, errno: Option<i32>) -> bool {
    errno.is_some() && io.raw_os_error() == errno
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
            notify::ErrorKind::Io(io) if errno_is(io, NO_WATCHES_LEFT) => {
                WatchError::limit_watches(path)
            }
            notify::ErrorKind::Io(io) if errno_is(io, NO_INSTANCES_LEFT) => WatchError::Limit {
                path,
                what: "inotify instances",
                sysctl: "fs.inotify.max_user_instances",
            },
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

/// A folder's (device, inode), where the platform has them: a folder replaced under the same
/// path (recreated, a share remounted) has another.
pub fn identity(dir: &Path) -> Option<(u64, u64)> {
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

/// Look at one path: size, mtime, whether an office program holds it, whether it opens.
/// The test hook `TALLY_FAULT_WATCH=locked:MARKER`: while the file MARKER exists, every
/// dropped file looks locked by its writer (for tests run as root, whom `chmod 000` does not
/// stop).
pub fn locked_by_fault(fault: Option<&str>) -> bool {
    fault
        .and_then(|f| f.strip_prefix("locked:"))
        .is_some_and(|marker| Path::new(marker).exists())
}

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
        let e = WatchError::from_notify(notify::Error::path_not_found(), None);
        assert!(!e.is_limit());
    }

    #[cfg(unix)]
    #[test]
    fn inotify_errnos_name_their_sysctl() {
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
