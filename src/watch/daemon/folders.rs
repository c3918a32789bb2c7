//! The daemon's view of the drop folders: which watcher runs (native, falling back to polling,
//! or rescans alone), the root and unit folders kept watched and present (recreated, waited
//! for, watched anew when replaced), listing them, and what each path found means (a candidate
//! for the settle machine, a folder to look into, something outside to note once). It takes
//! no file in (that is `take`) and decides no burst.

use super::Daemon;
use crate::core::plan::Unit;
use crate::core::settle::{Class, Outside};
use crate::watch::Mode;
use crate::watch::source::{WatchError, Watcher, identity};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// While a folder is missing, look for it this often.
const FOLDER_RETRY: Duration = Duration::from_secs(5);

impl<'a> Daemon<'a> {
    pub(super) fn start_watching(&mut self) {
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

    /// Native events hit the system's limit: poll instead.
    pub(super) fn fall_back_to_polling(&mut self) {
        self.source = None;
        if let Err(e) = self.watch_with(Watcher::Poll(self.opts.poll_interval)) {
            tracing::error!(error = %e, "cannot poll either; relying on rescans");
        }
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
                self.fall_back_to_polling();
            } else {
                tracing::warn!(error = %e, "cannot watch; relying on rescans");
            }
            self.next_rescan
                .get_or_insert(Instant::now() + self.opts.rescan);
        }
    }

    /// Make sure the root and every unit folder exist: unit folders are recreated, a missing
    /// root (an unmounted share) is waited for.
    pub(super) fn check_folders(&mut self, now: Instant) {
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

    /// One path from an event or a listing.
    pub(super) fn consider(&mut self, path: PathBuf, now: Instant) {
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
                    if let Err(e) = self.ledger.file_seen(&path, unit.as_deref(), &at) {
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
        match self.ledger.outside_file_noted(path, &at) {
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
    pub(super) fn scan(&mut self, now: Instant) {
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
        if let Err(e) = self.forget_vanished() {
            tracing::warn!(error = %e, "cannot tidy the listing");
        }
        self.known.retain(|p| p.exists());
        if self.next_rescan.is_some() {
            self.next_rescan = Some(now + self.opts.rescan);
        }
    }

    /// Forget the listing rows of paths that no longer exist (taken, removed, renamed).
    fn forget_vanished(&mut self) -> Result<(), crate::ledger::LedgerError> {
        for path in self.ledger.noted_files()? {
            if !path.exists() {
                self.ledger.file_gone(&path)?;
            }
        }
        Ok(())
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

    pub(super) fn unit_of(&self, folder: &str) -> Option<&'a Unit> {
        let config: &'a crate::config::Config = self.config;
        config.plan.units.iter().find(|u| u.folder() == folder)
    }
}
