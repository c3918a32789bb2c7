//! The sender: the outbox's messages — listed, re-queued, and sent when due, each claimed
//! under a lease first (so no other sender, nor `outbox retry`, touches it meanwhile) and
//! marked sent only after the server or the file system took it; receipts get their progress
//! figures just before their first attempt. Every read and write of the outbox goes through
//! the ledger's API; no SQL here. What a message says is `messages`', how it is built
//! `compose`'s, where it goes `transport`'s.

use crate::config::Config;
use crate::core::calendar::stamp;
use crate::core::count::Status;
use crate::ledger::{Ledger, LedgerError, OutboxRow, Requeued};
use crate::mail::MailError;
use crate::mail::compose::{build, one_line};
use crate::mail::messages::{PROGRESS_MARKER, progress_section};
use crate::mail::transport::{Failure, Transport};
use crate::settings::Environment;
use chrono::DateTime;
use chrono_tz::Tz;
use serde::Serialize;

impl OutboxRow {
    /// Whether a sender holds this message right now.
    pub fn sending(&self) -> bool {
        self.status == "queued" && self.lease_until.is_some_and(|t| t > lease_clock())
    }
}

/// How long a claim holds a message: far longer than one delivery may take (`[mail]
/// timeout_secs`, at most 120 s, per exchange), short enough that mail held by a sender that died goes
/// out soon after.
pub const LEASE_SECONDS: i64 = 10 * 60;

/// The clock of leases: the real one, also under `--now`, because a lease is about which
/// process is sending now, not about the plan's time.
pub fn lease_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// A timestamp of the ledger (RFC 3339) in the plan's zone.
pub(super) fn parse_stamp(s: &str, tz: Tz) -> Option<DateTime<Tz>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&tz))
}

/// Messages in the outbox, oldest first; `all` includes those already sent.
pub fn list(ledger: &Ledger, all: bool) -> Result<Vec<OutboxRow>, MailError> {
    Ok(ledger.outbox(all)?)
}

/// Whether a message with this idempotency key is stored.
pub fn exists(ledger: &Ledger, key: &str) -> Result<bool, MailError> {
    Ok(ledger.message_stored(key)?)
}

/// Re-queue failed messages (all, or those with the given ids) and make every queued one due
/// now. A message another sender holds right now (under a live lease) is left alone: it is
/// being sent, and making it due again would let it be sent twice.
pub fn requeue(ledger: &mut Ledger, ids: &[i64], now: DateTime<Tz>) -> Result<Requeued, MailError> {
    Ok(ledger.requeue(ids, &stamp(now), lease_clock())?)
}

/// What one sending round did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct SendReport {
    /// Where mail went.
    pub transport: String,
    pub sent: Vec<i64>,
    /// Transient failures: queued again for later.
    pub deferred: Vec<(i64, String)>,
    /// Permanent failures (or the attempt cap reached): kept as failed.
    pub failed: Vec<(i64, String)>,
    /// Queued messages not yet due or not tried because the server was unreachable.
    pub waiting: usize,
    /// Queued messages another sender holds right now (left to it).
    pub sending_elsewhere: Vec<i64>,
}

impl SendReport {
    /// One line for the terminal.
    pub fn summary(&self) -> String {
        let mut s = format!("邮件：已发送 {} 封", self.sent.len());
        if !self.deferred.is_empty() {
            s.push_str(&format!("，待重试 {} 封", self.deferred.len()));
        }
        if !self.failed.is_empty() {
            s.push_str(&format!("，失败 {} 封", self.failed.len()));
        }
        if self.waiting > 0 {
            s.push_str(&format!("，未到发送时间 {} 封", self.waiting));
        }
        if !self.sending_elsewhere.is_empty() {
            s.push_str(&format!(
                "，另一进程正在发送 {} 封",
                self.sending_elsewhere.len()
            ));
        }
        s.push_str(&format!("（{}）", self.transport));
        if let Some((_, e)) = self.deferred.first().or(self.failed.first()) {
            s.push_str(&format!("— {e}"));
        }
        s
    }
}

/// Send every queued message that is due at `now`, through the configured transport.
pub fn send_due(
    config: &Config,
    env: &Environment,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
) -> Result<SendReport, MailError> {
    // Receipts get their figures now, right after their returns, even when the transport
    // cannot be used yet.
    finish_receipts(config, ledger, now)?;
    let transport = Transport::configured(config, env)?;
    send_due_with(config, ledger, now, &transport)
}

/// Send every queued message that is due at `now` through `transport`.
pub fn send_due_with(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
    transport: &Transport,
) -> Result<SendReport, MailError> {
    finish_receipts(config, ledger, now)?;
    let mut report = SendReport {
        transport: transport.describe(),
        ..SendReport::default()
    };
    let queued = ledger.queued_messages()?;
    let retry = &config.mail.retry;
    let mut stop = false;
    // Messages written to the outbox folder, marked sent once the folder is fsync'd for all
    // of them (one wait for the disk, not one each). Killed before, they are found there
    // and marked by the next round; a power cut undoes only unmarked writes.
    let mut written: Vec<i64> = Vec::new();
    for row in queued {
        if row.sending() {
            report.sending_elsewhere.push(row.id);
            continue;
        }
        let due = row
            .next_attempt_at
            .as_deref()
            .and_then(|s| parse_stamp(s, config.plan.tz))
            .is_none_or(|t| t <= now);
        if !due || stop {
            report.waiting += 1;
            continue;
        }
        // Claim: count the attempt, take a lease (nobody else sends or re-queues the message
        // while it runs) and push the next attempt out by the backoff, so that a crash
        // mid-send is retried only after both.
        let attempts = row.attempts + 1;
        let next = stamp(now + retry.backoff(attempts));
        let clock = lease_clock();
        if !ledger.claim_message(&row, &next, clock + LEASE_SECONDS, clock)? {
            continue; // another sender took it since it was read
        }
        let eight_bit = matches!(transport, Transport::Files(_));
        let outcome = {
            let mut served = row.delivered_to.clone();
            let mut record = |addr: &str| -> Result<(), String> {
                served.push(addr.to_string());
                ledger
                    .record_delivery(row.id, &served)
                    .map_err(|e| match e {
                        LedgerError::Sql {
                            path,
                            error: source,
                        } => {
                            format!("{}: cannot record a delivery: {source}", path.display())
                        }
                        e => format!("cannot record a delivery: {e}"),
                    })
            };
            build(config, &row, now, eight_bit)
                .and_then(|m| transport.deliver(&row, &m, &mut record))
        };
        match outcome {
            Ok(()) => {
                if transport.finds_its_deliveries() {
                    written.push(row.id);
                } else {
                    ledger.mark_sent(row.id, &stamp(now))?;
                }
                tracing::info!(id = row.id, kind = %row.kind, unit = row.unit.as_deref().unwrap_or(""), "mail sent");
                report.sent.push(row.id);
            }
            Err(failure) => {
                let give_up =
                    matches!(failure, Failure::Permanent(_)) || attempts >= retry.max_attempts;
                let text = one_line(failure.text());
                let status = if give_up {
                    ledger.mark_failed(row.id, &text)?;
                    "failed"
                } else {
                    ledger.defer_message(row.id, &text)?;
                    "queued"
                };
                tracing::warn!(id = row.id, kind = %row.kind, attempts, error = %text, status, "mail not sent");
                if give_up {
                    report.failed.push((row.id, text));
                } else {
                    report.deferred.push((row.id, text));
                }
                if matches!(failure, Failure::Unreachable(_)) {
                    stop = true;
                }
            }
        }
    }
    if !written.is_empty() {
        transport.settle();
        for id in written {
            ledger.mark_sent_lazily(id, &stamp(now))?;
        }
    }
    Ok(report)
}

/// Send `message` at once, around the outbox: for the one alert that must reach the bureau
/// while the ledger itself cannot be written (its disk full or read-only). It is not
/// recorded nor retried; the caller sends it once.
pub fn send_unrecorded(
    config: &Config,
    transport: &Transport,
    message: &crate::ledger::NewMessage,
    now: DateTime<Tz>,
) -> Result<(), String> {
    let row = OutboxRow {
        id: 0,
        key: message.idempotency_key.clone(),
        kind: message.kind.clone(),
        unit: message.unit.clone(),
        created_at: stamp(now),
        to: message.to.clone(),
        cc: message.cc.clone(),
        subject: message.subject.clone(),
        body: message.body.clone(),
        attachments: message.attachments.clone(),
        status: "queued".into(),
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        sent_at: None,
        lease_until: None,
        delivered_to: Vec::new(),
    };
    let eight_bit = matches!(transport, Transport::Files(_));
    build(config, &row, now, eight_bit)
        .and_then(|m| transport.deliver(&row, &m, &mut |_| Ok(())))
        .map_err(|f| one_line(f.text()))?;
    transport.settle();
    Ok(())
}

/// Receipts are stored with the submission, before its rows count; the progress section is
/// filled in here, from the ledger that now holds the return, before the first attempt.
fn finish_receipts(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
) -> Result<(), MailError> {
    let pending = ledger.unfinished_receipts(PROGRESS_MARKER)?;
    if pending.is_empty() {
        return Ok(());
    }
    let status = current_status(config, ledger, now)?;
    for receipt in pending {
        let Some(unit) = receipt.unit else { continue };
        let this_return = match receipt_key_parts(&receipt.key, &unit) {
            Some((sha, arrival)) => ledger.receipt_figures(&unit, sha, arrival)?,
            None => Vec::new(),
        };
        let duplicate = receipt.key.starts_with("receipt/duplicate/");
        let section = progress_section(config, &status, &unit, &this_return, duplicate);
        let body = receipt.body.replace(PROGRESS_MARKER, &section);
        ledger.finish_receipt(receipt.id, &body)?;
    }
    Ok(())
}

/// The parts of a receipt's idempotency key
/// `receipt/{status}/{sha256}/{unit}/{received_at}/{destination}`: (sha256, (received_at,
/// destination)); the last two are None in keys written before they were part of it. They
/// name the one submission the receipt is about: the same bytes may be on record more than
/// once (taken, replaced by a newer return, then sent again), so the bytes alone do not say
/// which.
fn receipt_key_parts<'k>(
    key: &'k str,
    unit: &str,
) -> Option<(&'k str, Option<(&'k str, &'k str)>)> {
    let rest = key.strip_prefix("receipt/")?;
    let (_status, rest) = rest.split_once('/')?;
    let (sha, rest) = rest.split_once('/').unwrap_or((rest, ""));
    let at_dest = rest
        .strip_prefix(unit)
        .and_then(|r| r.strip_prefix('/'))
        .and_then(|r| r.split_once('/'));
    Some((sha, at_dest))
}

/// Progress at `now` from the ledger, exactly as `status --json` computes it.
pub fn current_status(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
) -> Result<Status, MailError> {
    let accepted = ledger.accepted_months()?;
    Ok(crate::core::count::status_from(
        &config.plan,
        now,
        &ledger.completed(&config.plan)?,
        &accepted,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::NewMessage;
    use crate::mail::fixtures::{config_in, now};
    use chrono::Duration;

    fn queue(ledger: &mut Ledger, key: &str) -> i64 {
        let m = NewMessage {
            idempotency_key: key.into(),
            kind: "receipt".into(),
            unit: Some("西兴街道".into()),
            to: vec!["xixing@example.org".into()],
            cc: Vec::new(),
            subject: "【回执】西兴街道".into(),
            body: "正文\n".into(),
            attachments: Vec::new(),
        };
        assert_eq!(ledger.queue(&[m], &stamp(now())).unwrap(), 1);
        let rows = ledger.outbox(true).unwrap();
        rows.iter().find(|r| r.key == key).unwrap().id
    }

    #[test]
    fn receipt_keys_name_the_arrival_and_destination() {
        let key =
            "receipt/accepted/abc/西兴街道/2020-06-02T10:00:00+08:00//w/西兴街道/已接收/a.xlsx";
        assert_eq!(
            receipt_key_parts(key, "西兴街道"),
            Some((
                "abc",
                Some(("2020-06-02T10:00:00+08:00", "/w/西兴街道/已接收/a.xlsx"))
            ))
        );
        assert_eq!(
            receipt_key_parts("receipt/accepted/abc/西兴街道", "西兴街道"),
            Some(("abc", None))
        );
        assert_eq!(receipt_key_parts("reminder/x/西兴街道", "西兴街道"), None);
    }

    #[test]
    fn a_message_being_sent_is_neither_requeued_nor_sent_again_until_its_lease_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let c = config_in(dir.path());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        let id = queue(&mut ledger, "k1");
        let files = Transport::Files(c.outbox_dir());
        // Another sender has claimed it (its second attempt) and is sending it right now.
        let queued = ledger.queued_messages().unwrap();
        let clock = lease_clock();
        let next = stamp(now() + Duration::minutes(1));
        assert!(
            ledger
                .claim_message(&queued[0], &next, clock + LEASE_SECONDS, clock)
                .unwrap()
        );
        assert!(
            !ledger
                .claim_message(&queued[0], &next, clock + LEASE_SECONDS, clock)
                .unwrap(),
            "claimed once only"
        );
        assert!(list(&ledger, false).unwrap()[0].sending());
        for ids in [&[][..], &[id][..]] {
            let r = requeue(&mut ledger, ids, now()).unwrap();
            assert_eq!((r.changed, r.sending.clone()), (0, vec![id]), "{ids:?}");
        }
        // Not even a --now far past its next attempt makes it due while the lease holds.
        let later = now() + Duration::hours(5);
        let report = send_due_with(&c, &mut ledger, later, &files).unwrap();
        assert!(report.sent.is_empty(), "{report:?}");
        assert_eq!(report.sending_elsewhere, [id]);
        assert!(report.summary().contains("另一进程正在发送 1 封"));
        assert!(!c.outbox_dir().exists() || c.outbox_dir().read_dir().unwrap().count() == 0);

        // The sender died: once its lease has run out, the message may be claimed again.
        ledger.set_lease(id, Some(lease_clock() - 1));
        let r = requeue(&mut ledger, &[id], now()).unwrap();
        assert_eq!((r.changed, r.sending.len()), (1, 0));
        let report = send_due_with(&c, &mut ledger, now(), &files).unwrap();
        assert_eq!(report.sent, [id]);
        let row = &list(&ledger, true).unwrap()[0];
        assert_eq!((row.status.as_str(), row.attempts), ("sent", 2));
        assert_eq!(row.lease_until, None);
        assert_eq!(c.outbox_dir().read_dir().unwrap().count(), 1);
        // Nothing more to send, and a sent message is never re-queued.
        let r = requeue(&mut ledger, &[id], now()).unwrap();
        assert_eq!(r.changed, 0);
        let report = send_due_with(&c, &mut ledger, later, &files).unwrap();
        assert!(report.sent.is_empty());
    }

    #[test]
    fn a_sender_s_claim_holds_a_lease_that_ends_with_the_outcome() {
        let dir = tempfile::tempdir().unwrap();
        let c = config_in(dir.path());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        let id = queue(&mut ledger, "k2");
        // The outbox folder is a file: the message cannot be written (unreachable).
        std::fs::write(c.outbox_dir(), b"not a folder").unwrap();
        let report =
            send_due_with(&c, &mut ledger, now(), &Transport::Files(c.outbox_dir())).unwrap();
        assert_eq!(report.deferred.len(), 1, "{report:?}");
        let row = &list(&ledger, false).unwrap()[0];
        assert_eq!((row.id, row.attempts, row.lease_until), (id, 1, None));
        assert!(!row.sending());
        // `outbox retry` may make it due again at once.
        assert_eq!(requeue(&mut ledger, &[], now()).unwrap().changed, 1);
    }
}
