//! Reminder windows in the ledger: which scheduled mail (reminders, deadline reminders,
//! digests) was already decided for which window, and one evaluation of the schedule as a
//! single write transaction over those records and the outbox. Stores and reads only: what
//! is due is decided by `core::remind` and `mail`.

use super::db::{Begin, Db, DbError, Tx, args};
use super::outbox::{failed_messages, message_stored};
use super::{Ledger, LedgerError, NewMessage, queue_message};
use crate::core::remind::Record;
use std::path::Path;

/// The advisory lock key under which PostgreSQL clients evaluate the schedule one at a time.
const SCHEDULE_LOCK: i64 = 0x7461_6c6c_7903;

impl Ledger {
    /// Begin one evaluation of the schedule: a write transaction taken at once, so that two
    /// processes evaluating the same window (the daemon and `tally remind`) take turns. Its
    /// changes count only once [`ScheduleRound::commit`]ted; dropped, they are undone.
    pub fn schedule_round(&mut self) -> Result<ScheduleRound<'_>, LedgerError> {
        let tx = self
            .db
            .begin(Begin::Immediate(SCHEDULE_LOCK))
            .map_err(|e| self.err(e))?;
        Ok(ScheduleRound {
            tx,
            db: &self.db,
            path: &self.path,
        })
    }
}

/// One evaluation of the schedule, in progress (see [`Ledger::schedule_round`]).
pub struct ScheduleRound<'l> {
    tx: Tx<'l>,
    db: &'l Db,
    path: &'l Path,
}

impl ScheduleRound<'_> {
    fn err(&self, source: DbError) -> LedgerError {
        LedgerError::Sql {
            path: self.path.to_path_buf(),
            error: source,
        }
    }

    /// What is recorded about `unit` in reminder window `window`.
    pub fn window_record(&self, unit: &str, window: &str) -> Result<Option<Record>, LedgerError> {
        self.record(
            "SELECT window_id, lagging, streak FROM reminder_windows WHERE unit = ?1 AND window_id = ?2",
            unit,
            window,
        )
    }

    /// The latest record of `unit` in a window before `window`.
    pub fn previous_window_record(
        &self,
        unit: &str,
        window: &str,
    ) -> Result<Option<Record>, LedgerError> {
        self.record(
            "SELECT window_id, lagging, streak FROM reminder_windows WHERE unit = ?1 AND window_id < ?2 ORDER BY window_id DESC LIMIT 1",
            unit,
            window,
        )
    }

    fn record(&self, sql: &str, unit: &str, window: &str) -> Result<Option<Record>, LedgerError> {
        self.db
            .query_opt(sql, args![unit, window], |r| {
                Ok(Record {
                    window: r.get(0)?,
                    lagging: r.get(1)?,
                    streak: r.get(2)?,
                })
            })
            .map_err(|e| self.err(e))
    }

    /// Record that `unit` was found not lagging at the first evaluation of `window` (a
    /// record already there stays as it is).
    pub fn record_not_lagging(
        &self,
        unit: &str,
        window: &str,
        at: &str,
    ) -> Result<(), LedgerError> {
        self.db
            .execute(
                "INSERT INTO reminder_windows (unit, window_id, evaluated_at, lagging, streak) VALUES (?1, ?2, ?3, 0, 0) ON CONFLICT DO NOTHING",
                args![unit, window, at],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Record that `unit` was reminded in `window`, the `streak`-th time in a row — unless
    /// the window's record already says it lagged.
    pub fn record_reminded(
        &self,
        unit: &str,
        window: &str,
        at: &str,
        streak: u32,
    ) -> Result<(), LedgerError> {
        self.db
            .execute(
                "INSERT INTO reminder_windows (unit, window_id, evaluated_at, lagging, streak) VALUES (?1, ?2, ?3, 1, ?4)
                 ON CONFLICT (unit, window_id) DO UPDATE SET lagging = 1, streak = excluded.streak, evaluated_at = excluded.evaluated_at
                 WHERE reminder_windows.lagging = 0",
                args![unit, window, at, streak],
            )
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Whether a message with this idempotency key is stored.
    pub fn message_stored(&self, key: &str) -> Result<bool, LedgerError> {
        message_stored(self.db, key).map_err(|e| self.err(e))
    }

    /// How many messages are kept as failed.
    pub fn failed_messages(&self) -> Result<i64, LedgerError> {
        failed_messages(self.db).map_err(|e| self.err(e))
    }

    /// Store a message unless one with its idempotency key is stored.
    pub fn queue(&self, message: &NewMessage, at: &str) -> Result<(), LedgerError> {
        queue_message(self.db, message, at)
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Keep everything this round recorded and stored.
    pub fn commit(self) -> Result<(), LedgerError> {
        let path = self.path.to_path_buf();
        self.tx.commit().map_err(|source| LedgerError::Sql {
            path,
            error: source,
        })
    }

    /// Undo everything this round recorded and stored (a dry run).
    pub fn discard(self) -> Result<(), LedgerError> {
        let path = self.path.to_path_buf();
        self.tx.rollback().map_err(|source| LedgerError::Sql {
            path,
            error: source,
        })
    }
}
