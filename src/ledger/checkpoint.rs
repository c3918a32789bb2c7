//! The SQLite ledger's write-ahead log copied back into the database file on a thread of its
//! own. SQLite's own auto-checkpoint does it inside the commit that fills the log past 1,000
//! pages: a large return's commit then waits ~30 ms for the copy (and its fsyncs). Here that
//! commit only wakes the checkpointer, which copies with a connection of its own while the
//! writer goes on (the feedback, the move, the next file: the other core).
//!
//! Durability is unchanged: a checkpoint copies only committed pages, and with
//! `synchronous = NORMAL` SQLite fsyncs the log before it and the database file after it,
//! before the log is ever reused ([`super::Ledger::make_durable`] fsyncs what the log holds).
//! A log far past the threshold (the checkpointer cannot keep up, or has no connection) is
//! copied inside the commit, as SQLite would.

use rusqlite::Connection;
use std::ffi::c_int;
use std::path::PathBuf;
use std::sync::mpsc;

/// Pages in the log from which it is copied back (SQLite's own default).
const PAGES: c_int = 1000;

/// Pages in the log from which the commit copies them itself.
const CATCH_UP: c_int = 16 * PAGES;

/// Wake the checkpointer of `conn` (the ledger at `path`) from its commits: installed in place
/// of SQLite's auto-checkpoint.
pub(super) fn install(conn: &mut Connection, path: PathBuf) -> rusqlite::Result<()> {
    let mut checkpointer = Checkpointer { path, thread: None };
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: c_int| {
        if pages >= CATCH_UP || (pages >= PAGES && !checkpointer.wake()) {
            // A failed checkpoint here is a later one's work, as with SQLite's own.
            let _ = wal.checkpoint();
        }
        Ok(())
    }))
}

/// The thread and its wake-up channel, made at the first wake-up (most commands never fill
/// the log). Dropped with the writer's connection: the thread finishes its checkpoint and
/// ends.
struct Checkpointer {
    path: PathBuf,
    thread: Option<(mpsc::SyncSender<()>, std::thread::JoinHandle<()>)>,
}

impl Checkpointer {
    /// Ask for a checkpoint; false when there is no thread to do it.
    fn wake(&mut self) -> bool {
        if self.thread.is_none() {
            self.thread = self.start();
        }
        match &self.thread {
            // Full: a wake-up is waiting already, which will see these pages too.
            Some((wake, _)) => {
                !matches!(wake.try_send(()), Err(mpsc::TrySendError::Disconnected(_)))
            }
            None => false,
        }
    }

    fn start(&self) -> Option<(mpsc::SyncSender<()>, std::thread::JoinHandle<()>)> {
        let conn = Connection::open_with_flags(
            &self.path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .and_then(|c| {
            c.busy_timeout(std::time::Duration::from_secs(30))?;
            // A connection knows the database is in WAL mode once it has read it.
            let mode: String = c.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
            Ok((c, mode))
        });
        let conn = match conn {
            Ok((c, mode)) if mode.eq_ignore_ascii_case("wal") => c,
            Ok((_, mode)) => {
                tracing::debug!(%mode, "no checkpointer: the ledger keeps no log");
                return None;
            }
            Err(e) => {
                tracing::debug!(error = %e, "no checkpointer: the log is copied back by the commits");
                return None;
            }
        };
        let (wake, woken) = mpsc::sync_channel::<()>(1);
        let thread = std::thread::Builder::new()
            .name("checkpoint".into())
            .spawn(move || {
                for () in woken {
                    let passive = rusqlite::wal::CheckpointMode::PASSIVE;
                    if let Err(e) = conn.wal_checkpoint_v2(None::<&str>, passive) {
                        tracing::debug!(error = %e, "checkpoint failed; the next one retries");
                    }
                }
            })
            .ok()?;
        Some((wake, thread))
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        if let Some((wake, thread)) = self.thread.take() {
            drop(wake);
            let _ = thread.join();
        }
    }
}
