//! The SQLite ledger's write-ahead log copied back into the database file, after a large
//! commit on a thread of its own. SQLite's own auto-checkpoint copies it inside the commit that
//! fills it past 1,000 pages: a large return's commit (~2,800 pages for 50,000 rows) then
//! waits ~30 ms for the copy and its fsyncs. Here a commit that alone wrote 1,000 pages or more
//! wakes the checkpointer, which copies with a connection of its own while the writer goes on
//! (the feedback, the move, the next file: the other core). Small commits filling the log are
//! copied back inside the commit as SQLite would, so a burst of small returns checkpoints as
//! often as before, not once a commit.
//!
//! Durability is unchanged: a checkpoint copies only committed pages, and with
//! `synchronous = NORMAL` SQLite fsyncs the log before it and the database file after it,
//! before the log is ever reused ([`super::Ledger::make_durable`] fsyncs what the log holds).

use rusqlite::Connection;
use std::ffi::c_int;
use std::path::PathBuf;
use std::sync::mpsc;

/// Pages in the log from which it is copied back (SQLite's own default), and pages one commit
/// must have written for the copy to go to the checkpointer.
const PAGES: c_int = 1000;

/// Copy the log of `conn` (the ledger at `path`) back from its commits, in place of SQLite's
/// auto-checkpoint.
pub(super) fn install(conn: &mut Connection, path: PathBuf) -> rusqlite::Result<()> {
    let mut checkpointer = Checkpointer {
        path,
        thread: None,
        failed: false,
    };
    // Pages in the log after the commit before (fewer now: the log has begun again).
    let mut before: c_int = 0;
    conn.wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: c_int| {
        let written = if pages >= before {
            pages - before
        } else {
            pages
        };
        before = pages;
        if pages >= PAGES && !(written >= PAGES && checkpointer.wake()) {
            // A failed checkpoint here (another one running) is a later one's work, as with
            // SQLite's own.
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
    /// It could not be started: the commits copy the log back themselves from then on.
    failed: bool,
}

impl Checkpointer {
    /// Ask for a checkpoint; false when there is no thread to do it.
    fn wake(&mut self) -> bool {
        if self.thread.is_none() && !self.failed {
            self.thread = self.start();
            self.failed = self.thread.is_none();
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
