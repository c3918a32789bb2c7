//! The mail outbox in the ledger: messages stored with their cause, claimed under a lease,
//! marked sent or failed, re-queued; and the figures a receipt reports about its return. The
//! only SQL about mail. Reads no clock: lease times come in as arguments (the lease clock is
//! `mail`'s), and it never builds, sends or decides anything about a message.

use super::db::{Begin, Db, DbError, DbRow, Value, args};
use super::{Ledger, LedgerError};
use serde::{Deserialize, Serialize};

const SELECT_OUTBOX: &str = "SELECT id, idempotency_key, kind, unit, created_at, to_addrs, cc_addrs, subject, body, attachments, status, attempts, next_attempt_at, last_error, sent_at, lease_until, delivered_to FROM outbox";

/// A message nobody holds: no lease, or one that ran out by `?2` (the lease clock).
const FREE: &str = "(lease_until IS NULL OR lease_until <= ?2)";

/// One stored message, as the ledger returns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxRow {
    pub id: i64,
    pub key: String,
    pub kind: String,
    pub unit: Option<String>,
    pub created_at: String,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    pub attachments: Vec<(String, String)>,
    pub status: String,
    pub attempts: u32,
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    pub sent_at: Option<String>,
    /// While a sender holds the message (claimed, being sent): until when, unix seconds of
    /// the real clock. Nobody else sends or re-queues it before then; a lease that ran out
    /// (the sender died) may be claimed again.
    pub lease_until: Option<i64>,
    /// Recipients the server already accepted (when it had to go to them one by one).
    pub delivered_to: Vec<String>,
}

/// What `requeue` did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Requeued {
    /// Messages re-queued (failed before) or made due now.
    pub changed: usize,
    /// Messages left alone because a sender holds them right now.
    pub sending: Vec<i64>,
}

fn outbox_from_row(r: &DbRow<'_, '_>) -> Result<OutboxRow, DbError> {
    let json = |i: usize| -> Result<String, DbError> { r.get(i) };
    Ok(OutboxRow {
        id: r.get(0)?,
        key: r.get(1)?,
        kind: r.get(2)?,
        unit: r.get(3)?,
        created_at: r.get(4)?,
        to: serde_json::from_str(&json(5)?).unwrap_or_default(),
        cc: serde_json::from_str(&json(6)?).unwrap_or_default(),
        subject: r.get(7)?,
        body: r.get(8)?,
        attachments: serde_json::from_str(&json(9)?).unwrap_or_default(),
        status: r.get(10)?,
        attempts: r.get(11)?,
        next_attempt_at: r.get(12)?,
        last_error: r.get(13)?,
        sent_at: r.get(14)?,
        lease_until: r.get(15)?,
        delivered_to: serde_json::from_str(&json(16)?).unwrap_or_default(),
    })
}

impl Ledger {
    fn outbox_rows(&self, filter: &str, args: &[Value<'_>]) -> Result<Vec<OutboxRow>, LedgerError> {
        self.query(&format!("{SELECT_OUTBOX} {filter}"), args, outbox_from_row)
    }

    fn update_message(&mut self, sql: &str, args: &[Value<'_>]) -> Result<(), LedgerError> {
        self.db
            .execute(sql, args)
            .map(|_| ())
            .map_err(|e| self.err(e))
    }

    /// Messages in the outbox, oldest first; `include_sent` adds those already sent.
    pub fn outbox(&self, include_sent: bool) -> Result<Vec<OutboxRow>, LedgerError> {
        if include_sent {
            self.outbox_rows("ORDER BY id", args![])
        } else {
            self.outbox_rows("WHERE status != 'sent' ORDER BY id", args![])
        }
    }

    /// Messages waiting to be sent, oldest first: due or not, held by a sender or not.
    pub fn queued_messages(&self) -> Result<Vec<OutboxRow>, LedgerError> {
        self.outbox_rows("WHERE status = 'queued' ORDER BY id", args![])
    }

    /// Whether a message with this idempotency key is stored (whatever its status).
    pub fn message_stored(&self, key: &str) -> Result<bool, LedgerError> {
        message_stored(&self.db, key).map_err(|e| self.err(e))
    }

    /// Claim `row` for one more attempt: count it, push its next attempt to
    /// `next_attempt_at` and hold it until `lease_until` (lease clock), so that no other
    /// sender sends or re-queues it meanwhile. False when somebody else got there first: it
    /// is no longer queued, another attempt was counted since `row` was read, or a lease
    /// still live at `clock` holds it.
    pub fn claim_message(
        &mut self,
        row: &OutboxRow,
        next_attempt_at: &str,
        lease_until: i64,
        clock: i64,
    ) -> Result<bool, LedgerError> {
        let claimed = self
            .db
            .execute(
                "UPDATE outbox SET attempts = ?1, next_attempt_at = ?2, lease_until = ?3
                 WHERE id = ?4 AND status = 'queued' AND attempts = ?5 AND (lease_until IS NULL OR lease_until <= ?6)",
                args![
                    row.attempts + 1,
                    next_attempt_at,
                    lease_until,
                    row.id,
                    row.attempts,
                    clock
                ],
            )
            .map_err(|e| self.err(e))?;
        Ok(claimed > 0)
    }

    /// Record the recipients the server has accepted so far, when a message goes to its
    /// recipients one by one: a later attempt goes only to the others.
    /// Durable before it returns: a message is never sent twice, power cut or not.
    pub fn record_delivery(&mut self, id: i64, delivered_to: &[String]) -> Result<(), LedgerError> {
        self.durably(|me| {
            me.update_message(
                "UPDATE outbox SET delivered_to = ?1 WHERE id = ?2",
                args![&serde_json::to_string(delivered_to).unwrap_or_default(), id],
            )
        })
    }

    /// The server (or the outbox folder) took the message at `at`: it is sent, never again.
    /// Durable before it returns: a message is never sent twice, power cut or not.
    pub fn mark_sent(&mut self, id: i64, at: &str) -> Result<(), LedgerError> {
        self.durably(|me| me.mark_sent_lazily(id, at))
    }

    /// [`Ledger::mark_sent`] without waiting for the disk, for a delivery that tells by itself
    /// that it was made (a message written to the outbox folder, durably, under a name of its
    /// own, is not written again): a power cut that undoes the mark only has it found again.
    pub fn mark_sent_lazily(&mut self, id: i64, at: &str) -> Result<(), LedgerError> {
        self.update_message(
            "UPDATE outbox SET status = 'sent', sent_at = ?1, last_error = NULL, next_attempt_at = NULL, lease_until = NULL WHERE id = ?2",
            args![at, id],
        )
    }

    /// This attempt failed but another may succeed: the message stays queued (for the next
    /// attempt its claim set) with the error, and its lease ends.
    pub fn defer_message(&mut self, id: i64, error: &str) -> Result<(), LedgerError> {
        self.update_message(
            "UPDATE outbox SET status = 'queued', last_error = ?1, lease_until = NULL WHERE id = ?2",
            args![error, id],
        )
    }

    /// The message cannot be delivered (or has been tried often enough): it is kept as
    /// failed with the error, until `outbox retry` re-queues it; its lease ends.
    pub fn mark_failed(&mut self, id: i64, error: &str) -> Result<(), LedgerError> {
        self.update_message(
            "UPDATE outbox SET status = 'failed', last_error = ?1, lease_until = NULL WHERE id = ?2",
            args![error, id],
        )
    }

    /// Re-queue failed messages (all, or those with the given ids) and make every queued
    /// one that was tried before due at `at` — one transaction. A message held under a lease
    /// still live at `clock` is left alone and listed in `sending`.
    pub fn requeue(&mut self, ids: &[i64], at: &str, clock: i64) -> Result<Requeued, LedgerError> {
        self.in_transaction(Begin::Immediate(OUTBOX_LOCK), |tx| {
            let mut out = Requeued::default();
            if ids.is_empty() {
                out.changed += tx.execute(
                    &format!("UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = ?1 WHERE status = 'failed' AND {FREE}"),
                    args![at, clock],
                )? as usize;
                out.changed += tx.execute(
                    &format!("UPDATE outbox SET next_attempt_at = ?1 WHERE status = 'queued' AND attempts > 0 AND {FREE}"),
                    args![at, clock],
                )? as usize;
                out.sending = held(tx, clock, None)?;
            } else {
                for id in ids {
                    out.changed += tx.execute(
                        &format!("UPDATE outbox SET status = 'queued', attempts = CASE WHEN status = 'failed' THEN 0 ELSE attempts END, next_attempt_at = ?1 WHERE id = ?3 AND status != 'sent' AND {FREE}"),
                        args![at, clock, id],
                    )? as usize;
                    out.sending.extend(held(tx, clock, Some(*id))?);
                }
            }
            Ok(out)
        })
    }

    /// Queued receipts whose body still holds `marker` (their progress section is filled in
    /// once their return counts), oldest first.
    pub fn unfinished_receipts(&self, marker: &str) -> Result<Vec<OutboxRow>, LedgerError> {
        self.outbox_rows(
            self.db.pick(
                "WHERE status = 'queued' AND kind = 'receipt' AND instr(body, ?1) > 0 ORDER BY id",
                "WHERE status = 'queued' AND kind = 'receipt' AND strpos(body, ?1) > 0 ORDER BY id",
            ),
            args![marker],
        )
    }

    /// Replace the body of a receipt with its finished text.
    pub fn finish_receipt(&mut self, id: i64, body: &str) -> Result<(), LedgerError> {
        self.update_message("UPDATE outbox SET body = ?1 WHERE id = ?2", args![body, id])
    }

    /// The rows per category — (category, rows, passed) — of the counted (accepted or since
    /// superseded) return a receipt is about: `unit`'s return of these bytes that arrived at
    /// `arrival`'s time, preferring the one moved to `arrival`'s destination (a clash at the
    /// move may have renumbered it since). Without `arrival` (receipts stored before it was
    /// part of their key), the latest such return. Empty when there is none.
    pub fn receipt_figures(
        &self,
        unit: &str,
        sha256: &str,
        arrival: Option<(&str, &str)>,
    ) -> Result<Vec<(String, i64, i64)>, LedgerError> {
        let (received_at, destination) = arrival.unzip();
        let submission: Option<i64> = self
            .db
            .query_opt(
                "SELECT id FROM submissions
                 WHERE unit = ?1 AND sha256 = ?2 AND status IN ('accepted', 'superseded')
                   AND (CAST(?3 AS TEXT) IS NULL OR received_at = ?3)
                 ORDER BY destination = ?4 DESC, id DESC LIMIT 1",
                args![unit, sha256, received_at, destination],
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))?;
        let Some(submission) = submission else {
            return Ok(Vec::new());
        };
        self.query(
            "SELECT category, COUNT(*), CAST(SUM(passed) AS BIGINT) FROM rows WHERE submission_id = ?1 GROUP BY category",
            args![submission],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
    }
}

/// Queued messages held under a lease still live at `clock` (all, or the one with `id`).
fn held(db: &Db, clock: i64, id: Option<i64>) -> Result<Vec<i64>, DbError> {
    db.query(
        "SELECT id FROM outbox WHERE status = 'queued' AND lease_until > ?1 AND (CAST(?2 AS BIGINT) IS NULL OR id = ?2) ORDER BY id",
        args![clock, id],
        |r| r.get(0),
    )
}

/// Whether a message with this idempotency key is stored (also inside a transaction).
pub(super) fn message_stored(db: &Db, key: &str) -> Result<bool, DbError> {
    db.query_opt(
        "SELECT 1 FROM outbox WHERE idempotency_key = ?1",
        args![key],
        |_| Ok(()),
    )
    .map(|found| found.is_some())
}

/// How many messages are kept as failed (also inside a transaction).
pub(super) fn failed_messages(db: &Db) -> Result<i64, DbError> {
    db.value(
        "SELECT COUNT(*) FROM outbox WHERE status = 'failed'",
        args![],
    )
}

/// The advisory lock key under which PostgreSQL clients re-queue messages one at a time.
const OUTBOX_LOCK: i64 = 0x7461_6c6c_7902;

#[cfg(test)]
impl Ledger {
    /// Set a message's lease as a sender that died (or is sending right now) left it.
    pub(crate) fn set_lease(&mut self, id: i64, lease_until: Option<i64>) {
        self.db
            .execute(
                "UPDATE outbox SET lease_until = ?1 WHERE id = ?2",
                args![lease_until, id],
            )
            .expect("set a lease");
    }
}
