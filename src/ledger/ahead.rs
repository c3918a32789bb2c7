//! A large return's rows written while the return is still being read (issue 11). Intake
//! hands the ledger the rows checked ahead as they come ([`Ledger::write_ahead`], in runs of
//! thousands); the first run opens the recording's transaction and the rows go in under the
//! id the submission will take. [`Ledger::record`] goes on with that transaction when the
//! return is accepted with exactly those rows first, and writes only the rest; otherwise
//! (rejected, checked on another basis, another record) it is undone first and the record
//! made as always. Nothing is committed before the record, so a stop meanwhile leaves no
//! trace of the rows.
//!
//! SQLite in write-ahead-log mode only: a PostgreSQL transaction held across a read would keep
//! every other watcher from recording meanwhile, and elsewhere the rows are written by the
//! record as before.
//!
//! The file's read mark ([`Ledger::file_read`], the guard against a file that stops tally)
//! keeps its moment: once the whole return is read. With the transaction open it goes into
//! the transaction and, until the transaction ends, into a small file beside the ledger
//! (`-read`), which the end of the transaction or (after a stop) the next start of intake
//! carries into the ledger ([`Ledger::settle_read_mark`]).

use super::db::{Begin, DbError, args};
use super::{
    Ledger, LedgerError, Location, NewSubmission, RECORD_LOCK, SubmissionStatus, beside,
    insert_rows,
};
use crate::core::returns::Row;
use std::hash::{BuildHasher, Hasher};
use std::path::PathBuf;

/// Rows written ahead between two flushes of the write-ahead log meanwhile (a few megabytes
/// of it).
const LOG_FLUSH_ROWS: usize = 8_192;

/// The rows of one return written ahead, in the open transaction.
pub(super) struct WrittenAhead {
    /// The submission's id to be: the next one (nobody else writes while this transaction
    /// holds the write lock).
    pub(super) id: i64,
    /// How many rows are written: the return's first.
    pub(super) rows: usize,
    /// What they hold ([`feed`]).
    fingerprint: foldhash::fast::FoldHasher<'static>,
}

/// Feed each of `rows`, field by field, to `h`: two lists of rows feed the same bytes only
/// when they are the same (a text ends with 0xff, a byte no UTF-8 text holds).
fn feed(h: &mut impl Hasher, rows: &[Row]) {
    for r in rows {
        h.write_u32(r.line);
        for text in [
            &r.name,
            &r.id,
            &r.enterprise,
            &r.credit_code,
            &r.category,
            &r.certificate,
        ] {
            h.write(text.as_bytes());
            h.write_u8(0xff);
        }
        h.write_i32(chrono::Datelike::num_days_from_ce(&r.date));
        h.write_u64(r.hours.to_bits());
        h.write_u8(u8::from(r.passed));
    }
}

impl Ledger {
    /// Write `rows`, the next rows of a return still being read, ahead of its record (see the
    /// module). A ledger that does not write ahead takes them as a no-op. On an error nothing
    /// is left written ahead; the record writes every row then.
    pub fn write_ahead(&mut self, rows: &[Row]) -> Result<(), LedgerError> {
        if self.ahead_undone() {
            return Err(self.err(DbError::Value {
                column: 0,
                message: "the transaction of the rows written ahead was undone".into(),
            }));
        }
        if self.ahead.is_none() {
            if self.db.sqlite().is_none() || !self.in_wal_mode() {
                return Ok(());
            }
            let begun = self.db.begin(Begin::Immediate(RECORD_LOCK)).and_then(|tx| {
                // The rows go in before their submission: its key is checked at the commit
                // (SQLite ends this with the transaction).
                self.db.batch("PRAGMA defer_foreign_keys = ON")?;
                let id = next_submission_id(&self.db)?;
                tx.keep();
                Ok(id)
            });
            let id = begun.map_err(|e| self.err(e))?;
            tracing::debug!(submission = id, "writing a return's rows while it is read");
            self.ahead = Some(WrittenAhead {
                id,
                rows: 0,
                fingerprint: self.fingerprints.build_hasher(),
            });
        }
        let Some(ahead) = &mut self.ahead else {
            unreachable!("begun above")
        };
        match insert_rows(&self.db, ahead.id, rows) {
            Ok(()) => {
                feed(&mut ahead.fingerprint, rows);
                let flush =
                    ahead.rows / LOG_FLUSH_ROWS != (ahead.rows + rows.len()) / LOG_FLUSH_ROWS;
                ahead.rows += rows.len();
                if flush {
                    self.flush_log_meanwhile();
                }
                Ok(())
            }
            Err(e) => {
                self.discard_ahead();
                Err(self.err(e))
            }
        }
    }

    /// Start flushing the write-ahead log to disk on a thread of its own, unless a flush is
    /// still at it. SQLite writes the pages of a large transaction to the log as its cache
    /// fills (ignored until their commit, should a stop come first); flushed meanwhile, they
    /// are not waited for after the commit ([`Ledger::make_durable`] waits for this flush,
    /// then for the rest).
    fn flush_log_meanwhile(&mut self) {
        if self.log_flush.as_ref().is_some_and(|f| !f.is_finished()) {
            return;
        }
        let Location::Sqlite(path) = &self.location else {
            return;
        };
        let wal = beside(path, "-wal");
        let flush = move || {
            if let Err(e) = crate::durable::sync_file(&wal) {
                tracing::debug!(error = %e, "the write-ahead log could not be flushed meanwhile");
            }
        };
        self.wait_for_log_flush();
        self.log_flush = std::thread::Builder::new().spawn(flush).ok();
    }

    /// Wait for a flush of the write-ahead log still at it ([`Ledger::flush_log_meanwhile`]).
    pub(super) fn wait_for_log_flush(&mut self) {
        if let Some(flush) = self.log_flush.take() {
            let _ = flush.join();
        }
    }

    /// Rows of a return are written ahead, in a transaction left open for its record.
    pub fn writing_ahead(&self) -> bool {
        self.ahead.is_some()
    }

    /// Undo the rows written ahead, if any (the return is not recorded with them); a read
    /// mark noted meanwhile goes into the ledger.
    pub fn discard_ahead(&mut self) {
        if self.ahead.take().is_none() {
            return;
        }
        if let Err(e) = self.db.resume().rollback() {
            tracing::warn!(error = %e, "could not undo the rows written ahead");
        }
        self.settle_read_mark_or_warn();
    }

    /// [`Ledger::settle_read_mark`], a failure only logged: the mark stays beside the ledger
    /// for the next start.
    pub fn settle_read_mark_or_warn(&mut self) {
        if let Err(e) = self.settle_read_mark() {
            tracing::warn!(error = %e, "cannot carry a read mark into the ledger");
        }
    }

    /// Whether SQLite undid the rows' transaction by itself (a full disk, an I/O error): then
    /// nothing of it stands, and nothing is written ahead any more.
    fn ahead_undone(&mut self) -> bool {
        let undone = self.ahead.is_some() && self.db.sqlite().is_some_and(|c| c.is_autocommit());
        if undone {
            self.ahead = None;
        }
        undone
    }

    /// Where a read mark waits while rows written ahead hold the transaction open.
    fn read_mark(&self) -> Option<PathBuf> {
        match &self.location {
            Location::Sqlite(path) => Some(beside(path, "-read")),
            Location::Postgres { .. } => None,
        }
    }

    /// Note beside the ledger that the file at `key` was read (rows are written ahead).
    pub(super) fn note_read_mark(&self, key: &str) -> Result<(), LedgerError> {
        let Some(mark) = self.read_mark() else {
            return Ok(());
        };
        std::fs::write(&mark, key).map_err(|source| LedgerError::Io { path: mark, source })
    }

    /// Carry a read mark noted beside the ledger into it (no transaction open), and remove it:
    /// after the rows' transaction ends, and at the start of intake (a mark a stop left).
    fn settle_read_mark(&mut self) -> Result<(), LedgerError> {
        let Some(mark) = self.read_mark() else {
            return Ok(());
        };
        let key = match std::fs::read_to_string(&mark) {
            Ok(key) => key,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => return Err(LedgerError::Io { path: mark, source }),
        };
        self.mark_read(&key)?;
        std::fs::remove_file(&mark).map_err(|source| LedgerError::Io { path: mark, source })
    }

    /// The rows written ahead, when `new` is accepted with exactly them first: its record goes
    /// on with their transaction. Otherwise they are undone.
    pub(super) fn take_ahead(&mut self, new: &NewSubmission) -> Option<WrittenAhead> {
        if self.ahead_undone() {
            // The record writes every row, in a transaction of its own.
            tracing::warn!("the rows written ahead were undone by the ledger; writing them all");
        }
        let ahead = self.ahead.as_ref()?;
        let same =
            new.status == SubmissionStatus::Accepted && new.counted_rows.len() >= ahead.rows && {
                let mut h = self.fingerprints.build_hasher();
                feed(&mut h, &new.counted_rows[..ahead.rows]);
                h.finish() == ahead.fingerprint.finish()
            };
        if !same {
            self.discard_ahead();
        }
        self.ahead.take()
    }
}

/// The id the next submission takes.
fn next_submission_id(db: &super::db::Db) -> Result<i64, DbError> {
    db.value("SELECT COALESCE(MAX(id), 0) + 1 FROM submissions", args![])
}
