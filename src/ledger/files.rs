//! The watcher's file states in the ledger: files seen in the drop folders, being taken,
//! failed, or lying outside a unit's folder; and whether the master is stale. Operations are
//! named by what they mean to the daemon, not by table: a second backend implements the same
//! calls. It never looks at the disk (the caller decides which files are gone). Tested for
//! both backends in `tests/ledger.rs`.

use super::db::args;
use super::{Ledger, LedgerError};
use crate::core::settle::Stat;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

/// The key of the one piece of daemon state kept besides the files: the master lags the
/// ledger (a crash came between a file taken and its rebuild).
const MASTER_STALE: &str = "master_stale";
/// The prefix of the keys of storage alarms the bureau was mailed about (one per folder).
const STORAGE_ALARM: &str = "storage_alarm:";

fn key(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

fn mtime_ns(stat: Stat) -> i64 {
    stat.mtime
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The advisory lock key under which one PostgreSQL client at a time writes the master.
const MASTER_LOCK: i64 = 0x7461_6c6c_7904;

impl Ledger {
    /// Claim `unit`'s dropped file `name` for the watcher `owner` until `expires` (unix
    /// seconds of the real clock `clock`): true when `owner` holds it now — it was free, its
    /// claim ran out (a watcher died holding it), or `owner` held it already. Watchers sharing
    /// a PostgreSQL ledger take a file only under its claim. An SQLite ledger has one writer
    /// (the state lock), so a claim there is always granted: one left by a killed run is stale.
    pub fn claim_file(
        &mut self,
        unit: &str,
        name: &str,
        owner: &str,
        expires: i64,
        clock: i64,
    ) -> Result<bool, LedgerError> {
        let single_writer = !self.location.shared();
        self.db
            .query_opt(
                "INSERT INTO file_claims (unit, name, owner, expires) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (unit, name) DO UPDATE SET owner = excluded.owner, expires = excluded.expires
                 WHERE file_claims.owner = excluded.owner OR file_claims.expires < ?5 OR ?6 = 1
                 RETURNING owner",
                args![unit, name, owner, expires, clock, single_writer],
                |_| Ok(()),
            )
            .map(|claimed| claimed.is_some())
            .map_err(|e| self.err(e))
    }

    /// `owner` is done with `unit`'s file `name` (taken, failed or gone): others may take it.
    pub fn release_file(&mut self, unit: &str, name: &str, owner: &str) -> Result<(), LedgerError> {
        self.db
            .execute(
                "DELETE FROM file_claims WHERE unit = ?1 AND name = ?2 AND owner = ?3",
                args![unit, name, owner],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Run `f` as the one writer of the master: with a PostgreSQL ledger, under a session
    /// lock of the server that every watcher's master writer takes in turn (so two never
    /// write it at once); with SQLite the state lock already makes this process the only one.
    pub fn as_master_writer<T>(&self, f: impl FnOnce() -> T) -> Result<T, LedgerError> {
        if !self.location.shared() {
            return Ok(f());
        }
        self.db
            .execute("SELECT pg_advisory_lock(?1)", args![MASTER_LOCK])
            .map_err(|e| self.err(e))?;
        let out = f();
        // The lock ends with the session anyway, should the server be gone by now.
        if let Err(e) = self
            .db
            .execute("SELECT pg_advisory_unlock(?1)", args![MASTER_LOCK])
        {
            tracing::warn!(error = %e, "could not release the master writer's lock");
        }
        Ok(out)
    }

    /// A candidate return was seen in `unit`'s folder (recorded the first time only).
    pub fn file_seen(
        &mut self,
        path: &Path,
        unit: Option<&str>,
        at: &str,
    ) -> Result<(), LedgerError> {
        self.db
            .execute(
                "INSERT INTO watch_files (path, unit, state, first_seen, updated_at) VALUES (?1, ?2, 'seen', ?3, ?3) ON CONFLICT DO NOTHING",
                args![&key(path), unit, at],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Taking `path` in begins. Returns how many times tally stopped abruptly while handling
    /// its content before: after the reader child had read it (see [`Ledger::file_read`]) and
    /// before the file was done. A stop while copying, hashing or reading it in the child is
    /// no sign of a file that kills tally (power loss, a kill) and is not counted.
    pub fn begin_taking(
        &mut self,
        path: &Path,
        unit: &str,
        stat: Stat,
        at: &str,
    ) -> Result<u32, LedgerError> {
        self.db
            .value(
                "INSERT INTO watch_files (path, unit, state, size, mtime_ns, first_seen, updated_at) VALUES (?1, ?2, 'taking', ?3, ?4, ?5, ?5)
                 ON CONFLICT(path) DO UPDATE SET
                    crashes = watch_files.crashes + CASE WHEN watch_files.state = 'taking' AND watch_files.read = 1 THEN 1 ELSE 0 END,
                    state = 'taking', read = 0, unit = ?2, size = ?3, mtime_ns = ?4, updated_at = ?5
                 RETURNING crashes",
                args![&key(path), unit, stat.size as i64, mtime_ns(stat), at],
            )
            .map_err(|e| self.err(e))
    }

    /// The reader child has read `path`: from now on tally itself handles what was in it, so
    /// a stop before the file is done counts against the file. No-op for a file the watcher
    /// is not taking (`tally ingest`).
    pub fn file_read(&mut self, path: &Path) -> Result<(), LedgerError> {
        // Rows written ahead hold the recording's transaction open: the mark goes in it and,
        // until its commit, beside the ledger (see `ledger::ahead`).
        if self.writing_ahead() {
            let noted = self.note_read_mark(&key(path));
            let marked = self.mark_read(&key(path));
            if noted.is_err() || marked.is_err() {
                // The rows' transaction may be gone with the error: undone, and the mark
                // written on its own (from beside the ledger, when it got there).
                self.discard_ahead();
                self.mark_read(&key(path))?;
            }
            return noted;
        }
        self.mark_read(&key(path))
    }

    pub(super) fn mark_read(&mut self, key: &str) -> Result<(), LedgerError> {
        self.db
            .execute(
                "UPDATE watch_files SET read = 1 WHERE path = ?1 AND state = 'taking'",
                args![key],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Intake could not take `path` in; it stays in its folder.
    pub fn file_failed(&mut self, path: &Path, detail: &str, at: &str) -> Result<(), LedgerError> {
        self.db
            .execute(
                "UPDATE watch_files SET state = 'failed', detail = ?2, updated_at = ?3 WHERE path = ?1",
                args![&key(path), detail, at],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// `path` has left its folder (taken, removed, renamed): it is forgotten.
    pub fn file_gone(&mut self, path: &Path) -> Result<(), LedgerError> {
        self.db
            .execute("DELETE FROM watch_files WHERE path = ?1", args![&key(path)])
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Something in the watch root lies outside any unit's folder. True when it was not
    /// noted before (the operator is told once).
    pub fn outside_file_noted(&mut self, path: &Path, at: &str) -> Result<bool, LedgerError> {
        self.db
            .execute(
                "INSERT INTO watch_files (path, state, first_seen, updated_at) VALUES (?1, 'outside', ?2, ?2) ON CONFLICT DO NOTHING",
                args![&key(path), at],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// Every path the watcher has noted and not forgotten, in any state.
    pub fn noted_files(&self) -> Result<Vec<PathBuf>, LedgerError> {
        self.query("SELECT path FROM watch_files", args![], |r| {
            r.get::<String>(0).map(PathBuf::from)
        })
    }

    /// Whether the master lags the ledger: files were taken after its last rebuild.
    pub fn master_stale(&self) -> Result<bool, LedgerError> {
        self.db
            .query_opt(
                "SELECT value FROM watch_state WHERE key = ?1",
                args![MASTER_STALE],
                |r| r.get::<String>(0),
            )
            .map(|v| v.is_some())
            .map_err(|e| self.err(e))
    }

    /// Note that the bureau is told of a storage fault under `folder`: true when it was not
    /// noted yet (so the alarm is mailed once, across restarts, until it is cleared).
    pub fn note_storage_alarm(&mut self, folder: &Path, at: &str) -> Result<bool, LedgerError> {
        self.db
            .execute(
                "INSERT INTO watch_state (key, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                args![&format!("{STORAGE_ALARM}{}", key(folder)), at],
            )
            .map(|n| n > 0)
            .map_err(|e| self.err(e))
    }

    /// The fault under `folder` is over.
    pub fn clear_storage_alarm(&mut self, folder: &Path) -> Result<(), LedgerError> {
        self.db
            .execute(
                "DELETE FROM watch_state WHERE key = ?1",
                args![&format!("{STORAGE_ALARM}{}", key(folder))],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// The folders with a storage alarm noted and not cleared.
    pub fn storage_alarms(&self) -> Result<Vec<PathBuf>, LedgerError> {
        let keys: Vec<String> = self.query(
            "SELECT key FROM watch_state WHERE key LIKE 'storage_alarm:%'",
            args![],
            |r| r.get(0),
        )?;
        Ok(keys
            .iter()
            .map(|k| PathBuf::from(&k[STORAGE_ALARM.len()..]))
            .collect())
    }

    /// Note that the master lags the ledger (`true`) or has caught up (`false`).
    pub fn set_master_stale(&mut self, stale: bool) -> Result<(), LedgerError> {
        let r = if stale {
            self.db.execute(
                "INSERT INTO watch_state (key, value) VALUES (?1, '1') ON CONFLICT(key) DO UPDATE SET value = '1'",
                args![MASTER_STALE],
            )
        } else {
            self.db.execute(
                "DELETE FROM watch_state WHERE key = ?1",
                args![MASTER_STALE],
            )
        };
        r.map(|_| ()).map_err(|e| self.err(e))
    }
}
