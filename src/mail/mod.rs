//! Mail (DESIGN.md §8): the `[mail]` configuration, the outbox kept in the ledger, the
//! schedule applied to the ledger (reminders, deadline reminders, digest) and the sender that
//! delivers through lettre — SMTP, or one .eml file per message when no server is configured.
//! Headers are built only through lettre's typed builders; a message is claimed before it is
//! sent — under a lease that keeps every other sender, and `outbox retry`, off it until the
//! lease runs out — and marked sent only after the server (or the file system) accepted it.

pub mod messages;
pub mod settings;
pub mod url;

use crate::config::Config;
use crate::core::count::Status;
use crate::core::remind::{self, Closed, Phase};
use crate::ledger::{Ledger, LedgerError, NewMessage};
use crate::mail::url::{Security, SmtpUrl};
use crate::settings::Environment;
use chrono::DateTime;
use chrono_tz::Tz;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, Transport as _};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
pub use settings::MailSettings;
use sha2::{Digest, Sha256};
use std::path::PathBuf;

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// Mail failures that stop a command (a single message's failure is recorded, not raised).
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The SMTP settings cannot be used: bad `TALLY_SMTP_URL`, unreadable password file, a
    /// user without a password.
    #[error("{0}")]
    Config(String),
    /// The ledger refused an outbox operation.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// SQLite refused an outbox query.
    #[error("{path}: outbox: {source}")]
    Sql {
        path: PathBuf,
        source: rusqlite::Error,
    },
}

fn sql(ledger: &Ledger) -> impl Fn(rusqlite::Error) -> MailError + '_ {
    move |source| MailError::Sql {
        path: ledger.path().to_path_buf(),
        source,
    }
}

// ---------------------------------------------------------------------------------------------
// Transports
// ---------------------------------------------------------------------------------------------

/// Where mail goes.
pub enum Transport {
    /// An SMTP server; `describe` is its URL without secrets.
    Smtp {
        transport: Box<SmtpTransport>,
        describe: String,
    },
    /// One .eml file per message in this folder.
    Files(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl Transport {
    /// The transport configured for `config`, with the environment's `TALLY_SMTP_URL` and
    /// `TALLY_SMTP_PASSWORD` (read once, in [`crate::settings`]).
    pub fn configured(config: &Config, env: &Environment) -> Result<Transport, MailError> {
        Transport::resolve(config, env.smtp_url.clone(), env.smtp_password.clone())
    }

    /// The transport for `config` given the environment's URL and password.
    pub fn resolve(
        config: &Config,
        env_url: Option<String>,
        env_password: Option<String>,
    ) -> Result<Transport, MailError> {
        let mail = &config.mail;
        let (url, source) = match (env_url, &mail.smtp_url) {
            (Some(u), _) => (u, crate::settings::env::SMTP_URL.to_string()),
            (None, Some(u)) => (u.clone(), "mail.smtp_url".to_string()),
            (None, None) => return Ok(Transport::Files(config.outbox_dir())),
        };
        let parsed = SmtpUrl::parse(url.trim())
            .and_then(|u| u.check_plain(mail.allow_plain).map(|_| u))
            .map_err(|e| MailError::Config(format!("{source}: {e}")))?;
        let password = match (&parsed.user, env_password) {
            (None, _) => None,
            (Some(_), Some(p)) if !p.is_empty() => Some(p),
            (Some(user), _) => match &mail.smtp_password_file {
                Some(file) => {
                    let path = config.resolve(file);
                    let text = std::fs::read_to_string(&path).map_err(|e| {
                        MailError::Config(format!(
                            "{}: mail.smtp_password_file: cannot read the SMTP password: {e}",
                            path.display()
                        ))
                    })?;
                    Some(text.trim_end_matches(['\r', '\n']).to_string())
                }
                None => {
                    return Err(MailError::Config(format!(
                        "{source}: SMTP user {user:?} needs a password: set env {} or mail.smtp_password_file",
                        crate::settings::env::SMTP_PASSWORD
                    )));
                }
            },
        };
        let builder = match parsed.security {
            Security::Plain => SmtpTransport::builder_dangerous(parsed.host.clone()),
            Security::StartTls => SmtpTransport::starttls_relay(&parsed.host)
                .map_err(|e| MailError::Config(format!("{source}: {e}")))?,
            Security::Tls => SmtpTransport::relay(&parsed.host)
                .map_err(|e| MailError::Config(format!("{source}: {e}")))?,
        };
        let mut builder = builder
            .port(parsed.port)
            .timeout(Some(std::time::Duration::from_secs(30)));
        if let (Some(user), Some(password)) = (&parsed.user, password) {
            builder = builder.credentials(Credentials::new(user.clone(), password));
        }
        Ok(Transport::Smtp {
            transport: Box::new(builder.build()),
            describe: parsed.display(),
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Transport::Smtp { describe, .. } => describe.clone(),
            Transport::Files(dir) => format!("files in {}", dir.display()),
        }
    }
}

/// Why one message was not delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The server answered 4xx: try this message again later.
    Transient(String),
    /// The server answered 5xx, or the message cannot be built: keep it as failed.
    Permanent(String),
    /// The server (or the outbox folder) could not be reached: try again later, and stop
    /// this round — the other messages would fail the same way.
    Unreachable(String),
}

impl Failure {
    fn text(&self) -> &str {
        match self {
            Failure::Transient(s) | Failure::Permanent(s) | Failure::Unreachable(s) => s,
        }
    }
}

impl Transport {
    /// Deliver one built message. Over SMTP it goes to all its recipients in one
    /// transaction; when the server refuses that (lettre gives up on the first recipient it
    /// refuses, so nobody gets the message) and there are several recipients, it goes to each
    /// recipient not yet served on its own, so one bad address (a leader's on Cc) does not keep
    /// the message from the others. `delivered` records each recipient served that way as soon
    /// as the server took it, so that a later attempt goes only to the rest.
    fn deliver(
        &self,
        row: &OutboxRow,
        message: &Message,
        delivered: &mut dyn FnMut(&str) -> Result<(), String>,
    ) -> Result<(), Failure> {
        match self {
            Transport::Smtp { transport, .. } => {
                let envelope = message.envelope();
                let done: std::collections::BTreeSet<String> = row
                    .delivered_to
                    .iter()
                    .map(|a| a.to_ascii_lowercase())
                    .collect();
                let remaining: Vec<lettre::Address> = envelope
                    .to()
                    .iter()
                    .filter(|a| !done.contains(&a.to_string().to_ascii_lowercase()))
                    .cloned()
                    .collect();
                if remaining.is_empty() {
                    return Ok(());
                }
                if done.is_empty() {
                    match transport.send(message) {
                        Ok(_) => return Ok(()),
                        Err(e) => {
                            let failure = smtp_failure(&e);
                            if remaining.len() < 2 || matches!(failure, Failure::Unreachable(_)) {
                                return Err(failure);
                            }
                            tracing::info!(id = row.id, error = %one_line(failure.text()), "refused as a whole; sending to each recipient on its own");
                        }
                    }
                }
                let bytes = message.formatted();
                let mut served: Vec<String> = row.delivered_to.clone();
                let mut refused: Vec<(String, Failure)> = Vec::new();
                for rcpt in remaining {
                    let one = lettre::address::Envelope::new(
                        envelope.from().cloned(),
                        vec![rcpt.clone()],
                    )
                    .map_err(|e| Failure::Permanent(format!("cannot address {rcpt}: {e}")))?;
                    match transport.send_raw(&one, &bytes) {
                        Ok(_) => {
                            delivered(rcpt.as_ref()).map_err(Failure::Unreachable)?;
                            served.push(rcpt.to_string());
                        }
                        Err(e) => match smtp_failure(&e) {
                            Failure::Unreachable(t) => return Err(Failure::Unreachable(t)),
                            f => refused.push((rcpt.to_string(), f)),
                        },
                    }
                }
                if refused.is_empty() {
                    return Ok(());
                }
                let mut text = refused
                    .iter()
                    .map(|(a, f)| format!("not delivered to {a}: {}", one_line(f.text())))
                    .collect::<Vec<_>>()
                    .join("; ");
                if !served.is_empty() {
                    text.push_str(&format!("; delivered to {}", served.join(", ")));
                }
                if refused
                    .iter()
                    .all(|(_, f)| matches!(f, Failure::Permanent(_)))
                {
                    Err(Failure::Permanent(text))
                } else {
                    Err(Failure::Transient(text))
                }
            }
            Transport::Files(dir) => {
                let path = dir.join(eml_name(row));
                if path.exists() {
                    // Written before a crash kept it from being marked: delivered already.
                    return Ok(());
                }
                crate::intake::write_durable(&path, &message.formatted())
                    .map_err(|e| Failure::Unreachable(e.to_string()))
            }
        }
    }
}

/// How an SMTP error counts: 5xx permanent, 4xx transient, anything else (connection, TLS,
/// timeout) the server unreachable.
fn smtp_failure(e: &lettre::transport::smtp::Error) -> Failure {
    if e.is_permanent() {
        Failure::Permanent(e.to_string())
    } else if e.is_transient() {
        Failure::Transient(e.to_string())
    } else {
        Failure::Unreachable(e.to_string())
    }
}

/// File name of a message in the outbox folder: `000012-回执-西兴街道.eml`.
pub fn eml_name(row: &OutboxRow) -> String {
    let unit: String = row
        .unit
        .as_deref()
        .unwrap_or("区局")
        .chars()
        .map(|c| {
            if c.is_control() || "/\\:*?\"<>|".contains(c) {
                '_'
            } else {
                c
            }
        })
        .take(40)
        .collect();
    format!("{:06}-{}-{}.eml", row.id, kind_label(&row.kind), unit)
}

/// Chinese label of a message kind, as in its subject tag.
pub fn kind_label(kind: &str) -> &'static str {
    match kind {
        "receipt" => "回执",
        "rejection" => "退回",
        "reminder" => "催办",
        "deadline" => "未报送提醒",
        "digest" => "周报",
        "alert" => "异常",
        _ => "邮件",
    }
}

// ---------------------------------------------------------------------------------------------
// Building messages (typed headers only)
// ---------------------------------------------------------------------------------------------

/// `Auto-Submitted: auto-generated` (RFC 3834): keeps auto-responders from answering.
#[derive(Debug, Clone, PartialEq, Eq)]
struct AutoSubmitted;

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(AutoSubmitted)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "auto-generated".into())
    }
}

/// The Message-ID of a message: derived from its idempotency key, so every retry carries the
/// same one and a receiving system can tell a repeat.
pub fn message_id(key: &str, from: &Mailbox) -> String {
    let hash = hex::encode(Sha256::digest(key.as_bytes()));
    format!("<{}.tally@{}>", &hash[..32], from.email.domain())
}

/// Text fit for one header line: control characters (CR, LF, tabs) become spaces.
pub fn one_line(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    while out.contains("  ") {
        out = out.replace("  ", " ");
    }
    out.trim().to_string()
}

/// Build the message for an outbox row. Attachments missing on disk are left off with a note
/// at the end of the body (a unit may have taken its feedback file away).
/// `eight_bit`: the text as 8-bit UTF-8 (for .eml files) rather than base64.
pub fn build(
    config: &Config,
    row: &OutboxRow,
    now: DateTime<Tz>,
    eight_bit: bool,
) -> Result<Message, Failure> {
    let mail = &config.mail;
    let from = mail.from_mailbox();
    let mut b = Message::builder()
        .from(from.clone())
        .subject(one_line(&row.subject))
        .message_id(Some(message_id(&row.key, &from)))
        .date(std::time::SystemTime::from(now.with_timezone(&chrono::Utc)))
        .header(AutoSubmitted);
    if let Some(r) = mail
        .reply_to
        .as_deref()
        .and_then(|r| r.parse::<Mailbox>().ok())
    {
        b = b.reply_to(r);
    }
    let parse = |a: &str| {
        a.parse::<Mailbox>()
            .map_err(|e| Failure::Permanent(format!("{a:?} is not an e-mail address: {e}")))
    };
    if row.to.is_empty() {
        return Err(Failure::Permanent("the message has no recipient".into()));
    }
    for a in &row.to {
        b = b.to(parse(a)?);
    }
    for a in &row.cc {
        b = b.cc(parse(a)?);
    }
    let mut body = row.body.clone();
    let mut parts = Vec::new();
    for (name, path) in &row.attachments {
        match std::fs::read(path) {
            Ok(bytes) => {
                let ct = content_type_for(name);
                parts.push(Attachment::new(one_line(name)).body(bytes, ct));
            }
            Err(e) => {
                tracing::warn!(id = row.id, file = %path, error = %e, "attachment left off");
                body.push_str(&format!("\n\n（附件“{name}”未能附上：{e}。）\n"));
            }
        }
    }
    // An .eml file is written as 8-bit UTF-8, readable even in a text editor; over SMTP the
    // text goes base64 (no 8BITMIME needed).
    let text = match eight_bit_body(&body).filter(|_| eight_bit) {
        Some(b) => SinglePart::plain(b),
        None => SinglePart::plain(body),
    };
    let result = if parts.is_empty() {
        b.singlepart(text)
    } else {
        let boundary = format!(
            "tally-{}",
            &hex::encode(Sha256::digest(row.key.as_bytes()))[..24]
        );
        let mut mp = MultiPart::mixed().boundary(boundary).singlepart(text);
        for p in parts {
            mp = mp.singlepart(p);
        }
        b.multipart(mp)
    };
    result.map_err(|e| Failure::Permanent(format!("cannot build the message: {e}")))
}

/// The text as an 8-bit body (CRLF lines) when RFC 5322 allows it: no NUL, no bare CR, no
/// line over 998 octets. Otherwise None, and lettre picks base64 or quoted-printable.
fn eight_bit_body(text: &str) -> Option<Body> {
    if text.contains(['\0', '\r']) || text.lines().any(|l| l.len() > 998) {
        return None;
    }
    let mut crlf = text.replace('\n', "\r\n");
    if !crlf.ends_with("\r\n") {
        crlf.push_str("\r\n");
    }
    Some(Body::dangerous_pre_encoded(
        crlf.into_bytes(),
        ContentTransferEncoding::EightBit,
    ))
}

fn content_type_for(name: &str) -> ContentType {
    let lower = name.to_lowercase();
    let mime = if lower.ends_with(".xlsx") {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    } else if lower.ends_with(".xls") {
        "application/vnd.ms-excel"
    } else {
        "application/octet-stream"
    };
    ContentType::parse(mime).unwrap_or(ContentType::TEXT_PLAIN)
}

// ---------------------------------------------------------------------------------------------
// The outbox
// ---------------------------------------------------------------------------------------------

/// One stored message.
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

impl OutboxRow {
    /// Whether a sender holds this message right now.
    pub fn sending(&self) -> bool {
        self.status == "queued" && self.lease_until.is_some_and(|t| t > lease_clock())
    }
}

const SELECT_OUTBOX: &str = "SELECT id, idempotency_key, kind, unit, created_at, to_addrs, cc_addrs, subject, body, attachments, status, attempts, next_attempt_at, last_error, sent_at, lease_until, delivered_to FROM outbox";

/// How long a claim holds a message: far longer than one delivery may take (lettre's SMTP
/// timeout is 30 s per exchange), short enough that mail held by a sender that died goes
/// out soon after.
pub const LEASE_SECONDS: i64 = 10 * 60;

/// The clock of leases: the real one, also under `--now`, because a lease is about which
/// process is sending now, not about the plan's time.
pub fn lease_clock() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn outbox_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<OutboxRow> {
    let json = |i: usize| -> rusqlite::Result<String> { r.get(i) };
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

/// Timestamps in the outbox: RFC 3339 in the plan's zone, as the ledger writes them.
pub use crate::core::calendar::stamp;

fn parse_stamp(s: &str, tz: Tz) -> Option<DateTime<Tz>> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&tz))
}

/// Messages in the outbox, oldest first; `all` includes those already sent.
pub fn list(ledger: &mut Ledger, all: bool) -> Result<Vec<OutboxRow>, MailError> {
    let q = if all {
        format!("{SELECT_OUTBOX} ORDER BY id")
    } else {
        format!("{SELECT_OUTBOX} WHERE status != 'sent' ORDER BY id")
    };
    let conn = ledger.conn();
    let rows = conn.prepare(&q).and_then(|mut s| {
        s.query_map([], outbox_from_row)?
            .collect::<Result<Vec<_>, _>>()
    });
    rows.map_err(sql(ledger))
}

/// Whether a message with this idempotency key is stored.
pub fn exists(ledger: &mut Ledger, key: &str) -> Result<bool, MailError> {
    let found: Option<i64> = ledger
        .conn()
        .query_row(
            "SELECT id FROM outbox WHERE idempotency_key = ?1",
            params![key],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql(ledger))?;
    Ok(found.is_some())
}

/// What `requeue` did.
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
pub struct Requeued {
    /// Messages re-queued (failed before) or made due now.
    pub changed: usize,
    /// Messages left alone because a sender holds them right now.
    pub sending: Vec<i64>,
}

/// Re-queue failed messages (all, or those with the given ids) and make every queued one due
/// now. A message another sender holds right now (under a live lease) is left alone: it is
/// being sent, and making it due again would let it be sent twice.
pub fn requeue(ledger: &mut Ledger, ids: &[i64], now: DateTime<Tz>) -> Result<Requeued, MailError> {
    let at = stamp(now);
    let clock = lease_clock();
    let path = ledger.path().to_path_buf();
    let conn = ledger.conn();
    const FREE: &str = "(lease_until IS NULL OR lease_until <= ?2)";
    let mut run = || -> rusqlite::Result<Requeued> {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = Requeued::default();
        let busy = |tx: &rusqlite::Transaction<'_>,
                    id: Option<i64>|
         -> rusqlite::Result<Vec<i64>> {
            let mut st = tx.prepare(
                "SELECT id FROM outbox WHERE status = 'queued' AND lease_until > ?1 AND (?2 IS NULL OR id = ?2) ORDER BY id",
            )?;
            st.query_map(params![clock, id], |r| r.get(0))?.collect()
        };
        if ids.is_empty() {
            out.changed += tx.execute(
                &format!("UPDATE outbox SET status = 'queued', attempts = 0, next_attempt_at = ?1 WHERE status = 'failed' AND {FREE}"),
                params![at, clock],
            )?;
            out.changed += tx.execute(
                &format!("UPDATE outbox SET next_attempt_at = ?1 WHERE status = 'queued' AND attempts > 0 AND {FREE}"),
                params![at, clock],
            )?;
            out.sending = busy(&tx, None)?;
        } else {
            for id in ids {
                let n = tx.execute(
                    &format!("UPDATE outbox SET status = 'queued', attempts = CASE WHEN status = 'failed' THEN 0 ELSE attempts END, next_attempt_at = ?1 WHERE id = ?3 AND status != 'sent' AND {FREE}"),
                    params![at, clock, id],
                )?;
                out.changed += n;
                out.sending.extend(busy(&tx, Some(*id))?);
            }
        }
        tx.commit()?;
        Ok(out)
    };
    run().map_err(|source| MailError::Sql { path, source })
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
        let mut s = format!("mail: {} sent", self.sent.len());
        if !self.deferred.is_empty() {
            s.push_str(&format!(", {} to retry", self.deferred.len()));
        }
        if !self.failed.is_empty() {
            s.push_str(&format!(", {} failed", self.failed.len()));
        }
        if self.waiting > 0 {
            s.push_str(&format!(", {} waiting", self.waiting));
        }
        if !self.sending_elsewhere.is_empty() {
            s.push_str(&format!(
                ", {} being sent by another process",
                self.sending_elsewhere.len()
            ));
        }
        s.push_str(&format!(" ({})", self.transport));
        if let Some((_, e)) = self.deferred.first().or(self.failed.first()) {
            s.push_str(&format!(" — {e}"));
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
    let queued: Vec<OutboxRow> = {
        let conn = ledger.conn();
        conn.prepare(&format!(
            "{SELECT_OUTBOX} WHERE status = 'queued' ORDER BY id"
        ))
        .and_then(|mut s| {
            s.query_map([], outbox_from_row)?
                .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql(ledger))?
    };
    let retry = &config.mail.retry;
    let mut stop = false;
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
        let claimed = ledger
            .conn()
            .execute(
                "UPDATE outbox SET attempts = ?1, next_attempt_at = ?2, lease_until = ?3
                 WHERE id = ?4 AND status = 'queued' AND attempts = ?5 AND (lease_until IS NULL OR lease_until <= ?6)",
                params![attempts, next, clock + LEASE_SECONDS, row.id, row.attempts, clock],
            )
            .map_err(sql(ledger))?;
        if claimed == 0 {
            continue; // another sender took it since it was read
        }
        let eight_bit = matches!(transport, Transport::Files(_));
        let outcome = {
            let path = ledger.path().to_path_buf();
            let conn = ledger.conn();
            let mut served = row.delivered_to.clone();
            let mut record = |addr: &str| -> Result<(), String> {
                served.push(addr.to_string());
                conn.execute(
                    "UPDATE outbox SET delivered_to = ?1 WHERE id = ?2",
                    params![serde_json::to_string(&served).unwrap_or_default(), row.id],
                )
                .map(|_| ())
                .map_err(|e| format!("{}: cannot record a delivery: {e}", path.display()))
            };
            build(config, &row, now, eight_bit)
                .and_then(|m| transport.deliver(&row, &m, &mut record))
        };
        match outcome {
            Ok(()) => {
                ledger
                    .conn()
                    .execute(
                        "UPDATE outbox SET status = 'sent', sent_at = ?1, last_error = NULL, next_attempt_at = NULL, lease_until = NULL WHERE id = ?2",
                        params![stamp(now), row.id],
                    )
                    .map_err(sql(ledger))?;
                tracing::info!(id = row.id, kind = %row.kind, unit = row.unit.as_deref().unwrap_or(""), "mail sent");
                report.sent.push(row.id);
            }
            Err(failure) => {
                let give_up =
                    matches!(failure, Failure::Permanent(_)) || attempts >= retry.max_attempts;
                let status = if give_up { "failed" } else { "queued" };
                let text = one_line(failure.text());
                ledger
                    .conn()
                    .execute(
                        "UPDATE outbox SET status = ?1, last_error = ?2, lease_until = NULL WHERE id = ?3",
                        params![status, text, row.id],
                    )
                    .map_err(sql(ledger))?;
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
    Ok(report)
}

/// Receipts are stored with the submission, before its rows count; the progress section is
/// filled in here, from the ledger that now holds the return, before the first attempt.
fn finish_receipts(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
) -> Result<(), MailError> {
    let pending: Vec<(i64, String, Option<String>, String)> = {
        let conn = ledger.conn();
        conn.prepare("SELECT id, idempotency_key, unit, body FROM outbox WHERE status = 'queued' AND kind = 'receipt' AND instr(body, ?1) > 0")
            .and_then(|mut s| {
                s.query_map(params![crate::mail::messages::PROGRESS_MARKER], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
                })?
                .collect::<Result<Vec<_>, _>>()
            })
            .map_err(sql(ledger))?
    };
    if pending.is_empty() {
        return Ok(());
    }
    let status = current_status(config, ledger, now)?;
    for (id, key, unit, body) in pending {
        let Some(unit) = unit else { continue };
        let this_return = receipt_rows(ledger, &key, &unit)?;
        let duplicate = key.starts_with("receipt/duplicate/");
        let section = crate::mail::messages::progress_section(
            config,
            &status,
            &unit,
            &this_return,
            duplicate,
        );
        let body = body.replace(crate::mail::messages::PROGRESS_MARKER, &section);
        ledger
            .conn()
            .execute(
                "UPDATE outbox SET body = ?1 WHERE id = ?2",
                params![body, id],
            )
            .map_err(sql(ledger))?;
    }
    Ok(())
}

/// The parts of a receipt's idempotency key
/// `receipt/{status}/{sha256}/{unit}/{received_at}/{destination}`: (sha256, received_at,
/// destination); the last two are None in keys written before they were part of it.
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

/// The rows per category (rows, passed) of the one submission a receipt is about: the one
/// with the key's bytes, unit and arrival time (and destination, which a clash at the move
/// may have renumbered since). The same bytes may be on record more than once (taken,
/// replaced by a newer return, then sent again), so the bytes alone do not say which. Keys
/// of older ledgers (without arrival and destination) take the latest submission of those
/// bytes.
fn receipt_rows(
    ledger: &mut Ledger,
    key: &str,
    unit: &str,
) -> Result<Vec<(String, i64, i64)>, MailError> {
    let Some((sha, at_dest)) = receipt_key_parts(key, unit) else {
        return Ok(Vec::new());
    };
    let (received_at, destination) = at_dest.unzip();
    let submission: Option<i64> = ledger
        .conn()
        .query_row(
            "SELECT id FROM submissions
             WHERE unit = ?1 AND sha256 = ?2 AND status IN ('accepted', 'superseded')
               AND (?3 IS NULL OR received_at = ?3)
             ORDER BY destination = ?4 DESC, id DESC LIMIT 1",
            params![unit, sha, received_at, destination],
            |r| r.get(0),
        )
        .optional()
        .map_err(sql(ledger))?;
    let Some(submission) = submission else {
        return Ok(Vec::new());
    };
    ledger
        .conn()
        .prepare(
            "SELECT category, COUNT(*), SUM(passed) FROM rows WHERE submission_id = ?1 GROUP BY category",
        )
        .and_then(|mut s| {
            s.query_map(params![submission], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?
            .collect::<Result<Vec<_>, _>>()
        })
        .map_err(sql(ledger))
}

/// Progress at `now` from the ledger, exactly as `status --json` computes it.
pub fn current_status(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
) -> Result<Status, MailError> {
    let rows = ledger.counted_rows()?;
    let accepted = ledger.accepted_months()?;
    Ok(crate::core::count::status(
        &config.plan,
        now,
        &rows,
        &accepted,
    ))
}

/// Status and received time of an earlier submission (for the receipt of a duplicate).
pub fn submission_status(config: &Config, id: i64) -> Option<(String, String)> {
    let conn = rusqlite::Connection::open_with_flags(
        config.state_path(),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .ok()?;
    conn.query_row(
        "SELECT status, received_at FROM submissions WHERE id = ?1",
        params![id],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )
    .ok()
}

// ---------------------------------------------------------------------------------------------
// Scheduled mail: reminders, deadline reminders, digest
// ---------------------------------------------------------------------------------------------

/// One scheduled message, planned or stored.
#[derive(Debug, Clone)]
pub struct Planned {
    pub message: NewMessage,
    /// False when a message with its key was stored before (this window is done).
    pub new: bool,
}

/// A unit passed over by the reminder schedule, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passed {
    pub unit: String,
    pub reason: String,
}

/// What the schedule decided at `now`.
#[derive(Debug, Clone)]
pub struct ScheduleReport {
    pub status: Status,
    pub phase: Phase,
    /// Why scheduled mail may not go now (quiet hours, skipped date).
    pub closed: Option<Closed>,
    /// The reminder window `now` falls in (local start, end).
    pub window: Option<remind::Window>,
    pub planned: Vec<Planned>,
    pub passed: Vec<Passed>,
}

/// Who asks the schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The daemon, on its own: a 催办 it missed at the window's scheduled instant (it was not
    /// running) goes out later in the window, but only from the configured time of day on.
    Daemon,
    /// `tally remind`: bureau staff ask to send what is due now, at whatever time of day
    /// (quiet hours and skipped dates still hold).
    Request,
}

/// Evaluate the schedule at `now` as the daemon does: which reminders, deadline reminders and
/// digest are due. Unless `dry_run`, store them in the outbox together with the reminder
/// record, in one transaction; a key already stored is not stored again (at most one per unit
/// and window). A unit gets its 催办 when the first evaluation of a window finds it lagging
/// (at the window's weekday and time, or later in the window when nothing ran then) — not at
/// the moment it falls behind during the window.
pub fn schedule(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
    dry_run: bool,
) -> Result<ScheduleReport, MailError> {
    schedule_for(config, ledger, now, dry_run, Trigger::Daemon)
}

/// `schedule`, for `trigger`.
pub fn schedule_for(
    config: &Config,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
    dry_run: bool,
    trigger: Trigger,
) -> Result<ScheduleReport, MailError> {
    let status = current_status(config, ledger, now)?;
    let accepted = ledger.accepted_months()?;
    let submissions = ledger.submissions()?;
    let eval = remind::evaluate(&config.plan, &config.mail.schedule(), now);
    let mut report = ScheduleReport {
        status: status.clone(),
        phase: eval.phase,
        closed: eval.closed.clone(),
        window: eval.reminder_window.clone(),
        planned: Vec::new(),
        passed: Vec::new(),
    };
    if eval.closed.is_some() {
        return Ok(report);
    }
    let at = stamp(now);
    let path = ledger.path().to_path_buf();
    let conn = ledger.conn();
    let err = |source| MailError::Sql {
        path: path.clone(),
        source,
    };
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(err)?;
    let key_stored = |tx: &rusqlite::Transaction<'_>, key: &str| -> rusqlite::Result<bool> {
        tx.query_row(
            "SELECT 1 FROM outbox WHERE idempotency_key = ?1",
            params![key],
            |_| Ok(()),
        )
        .optional()
        .map(|o| o.is_some())
    };

    // 催办: one per lagging unit and window. The daemon catches up on a window it missed only
    // from the configured time of day on (not at 03:00 because it was restarted then).
    let reminder_hour =
        trigger == Trigger::Request || now.naive_local().time() >= config.mail.reminders.time.0;
    if let Some(window) = eval.reminder_window.as_ref().filter(|_| reminder_hour) {
        let wid = window.id();
        for u in &status.units {
            let Some(unit) = config.plan.units.iter().find(|x| x.name == u.unit) else {
                continue;
            };
            let current = window_record(&tx, &u.unit, Some(&wid), true).map_err(err)?;
            let previous = window_record(&tx, &u.unit, Some(&wid), false).map_err(err)?;
            let history = remind::UnitHistory { current, previous };
            match remind::decide_reminder(
                u,
                !unit.contacts.is_empty(),
                &history,
                config.mail.reminders.leader_after,
            ) {
                remind::ReminderDecision::NotLagging => {
                    if !dry_run {
                        tx.execute(
                            "INSERT OR IGNORE INTO reminder_windows (unit, window_id, evaluated_at, lagging, streak) VALUES (?1, ?2, ?3, 0, 0)",
                            params![u.unit, wid, at],
                        )
                        .map_err(err)?;
                    }
                }
                remind::ReminderDecision::NoContacts => report.passed.push(Passed {
                    unit: u.unit.clone(),
                    reason: "滞后，但 units.contacts 中没有邮箱，无法催办".into(),
                }),
                remind::ReminderDecision::AlreadySent => {
                    let key = crate::mail::messages::reminder_key(&wid, &u.unit);
                    report.passed.push(Passed {
                        unit: u.unit.clone(),
                        reason: format!(
                            "本轮（{} 起）已催办过{}",
                            window.label(),
                            if key_stored(&tx, &key).map_err(err)? {
                                ""
                            } else {
                                "（记录在案）"
                            }
                        ),
                    });
                }
                remind::ReminderDecision::NotLaggingAtWindowStart => {
                    report.passed.push(Passed {
                        unit: u.unit.clone(),
                        reason: format!(
                            "本轮（{} 起）开始时未滞后，本轮不再催办；下一轮 {} 起仍滞后则催办",
                            window.label(),
                            window.end.format("%Y-%m-%d %H:%M")
                        ),
                    });
                }
                remind::ReminderDecision::Send {
                    streak,
                    copy_leader,
                } => {
                    let lines = remind::lines(u, now, config.plan.year);
                    let message = crate::mail::messages::reminder(
                        config,
                        unit,
                        u,
                        &lines,
                        streak,
                        copy_leader,
                        window,
                        now,
                    );
                    let new = !key_stored(&tx, &message.idempotency_key).map_err(err)?;
                    if !dry_run {
                        crate::ledger::queue_message(&tx, &message, &at).map_err(err)?;
                        tx.execute(
                            "INSERT INTO reminder_windows (unit, window_id, evaluated_at, lagging, streak) VALUES (?1, ?2, ?3, 1, ?4)
                             ON CONFLICT (unit, window_id) DO UPDATE SET lagging = 1, streak = excluded.streak, evaluated_at = excluded.evaluated_at
                             WHERE reminder_windows.lagging = 0",
                            params![u.unit, wid, at, streak],
                        )
                        .map_err(err)?;
                    }
                    report.planned.push(Planned { message, new });
                }
            }
        }
    }

    // 未报送提醒: daily on the last days before a month's deadline.
    for due in &eval.deadlines {
        for unit in &config.plan.units {
            if accepted.contains(&(unit.name.clone(), due.month)) {
                continue;
            }
            if unit.contacts.is_empty() {
                report.passed.push(Passed {
                    unit: unit.name.clone(),
                    reason: format!("{} 未报送，但没有联系邮箱", due.month.label_zh()),
                });
                continue;
            }
            let message = crate::mail::messages::deadline_reminder(config, unit, due, now);
            let new = !key_stored(&tx, &message.idempotency_key).map_err(err)?;
            if !dry_run {
                crate::ledger::queue_message(&tx, &message, &at).map_err(err)?;
            }
            report.planned.push(Planned { message, new });
        }
    }

    // 周报 to the bureau.
    if let Some(digest) = &eval.digest
        && !config.mail.bureau.is_empty()
    {
        let since = digest
            .since
            .and_then(|t| remind::local_to_tz(config.plan.tz, t));
        let failed: i64 = tx
            .query_row(
                "SELECT COUNT(*) FROM outbox WHERE status = 'failed'",
                [],
                |r| r.get(0),
            )
            .map_err(err)?;
        let received: Vec<&crate::ledger::Submission> = submissions
            .iter()
            .filter(|s| {
                let t = parse_stamp(&s.received_at, config.plan.tz);
                match (since, t) {
                    (Some(since), Some(t)) => t >= since && t <= now,
                    (None, Some(t)) => t <= now,
                    _ => false,
                }
            })
            .collect();
        let extras = crate::mail::messages::DigestExtras {
            since,
            received: &received,
            failed_mail: failed,
            master: Some(config.master_path()).filter(|p| p.exists()),
        };
        let message =
            crate::mail::messages::digest(config, &status, eval.phase, digest, &extras, now);
        let new = !key_stored(&tx, &message.idempotency_key).map_err(err)?;
        if !dry_run {
            crate::ledger::queue_message(&tx, &message, &at).map_err(err)?;
        }
        report.planned.push(Planned { message, new });
    }
    if dry_run {
        tx.rollback().map_err(err)?;
    } else {
        tx.commit().map_err(err)?;
    }
    Ok(report)
}

/// The reminder record of a unit in window `wid` (`current`), or the latest one before it.
fn window_record(
    tx: &rusqlite::Transaction<'_>,
    unit: &str,
    wid: Option<&str>,
    current: bool,
) -> rusqlite::Result<Option<remind::Record>> {
    let q = if current {
        "SELECT window_id, lagging, streak FROM reminder_windows WHERE unit = ?1 AND window_id = ?2"
    } else {
        "SELECT window_id, lagging, streak FROM reminder_windows WHERE unit = ?1 AND window_id < ?2 ORDER BY window_id DESC LIMIT 1"
    };
    tx.query_row(q, params![unit, wid.unwrap_or("")], |r| {
        Ok(remind::Record {
            window: r.get(0)?,
            lagging: r.get(1)?,
            streak: r.get(2)?,
        })
    })
    .optional()
}

/// What the daemon does on each tick: store what the schedule says is due, then send.
pub fn tick(
    config: &Config,
    env: &Environment,
    ledger: &mut Ledger,
    now: DateTime<Tz>,
) -> Result<(ScheduleReport, SendReport), MailError> {
    let report = schedule(config, ledger, now, false)?;
    let sent = send_due(config, env, ledger, now)?;
    Ok((report, sent))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::remind::QuietHours;
    use crate::mail::settings::{ClockTime, Day, RetrySettings};
    use crate::mail::url::redact;
    use chrono::{Duration, NaiveDate, NaiveTime, Weekday};
    use std::path::Path;

    fn config() -> Config {
        Config::parse(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml")),
            Path::new("tally.toml"),
            Path::new("/base"),
        )
        .unwrap()
    }

    fn row(subject: &str, to: &[&str]) -> OutboxRow {
        OutboxRow {
            id: 7,
            key: "receipt/accepted/abc/西兴街道".into(),
            kind: "receipt".into(),
            unit: Some("西兴街道".into()),
            created_at: "2020-07-01T00:00:00+08:00".into(),
            to: to.iter().map(|s| s.to_string()).collect(),
            cc: Vec::new(),
            subject: subject.into(),
            body: "正文".into(),
            attachments: Vec::new(),
            status: "queued".into(),
            attempts: 0,
            next_attempt_at: None,
            last_error: None,
            sent_at: None,
            lease_until: None,
            delivered_to: Vec::new(),
        }
    }

    fn now() -> DateTime<Tz> {
        crate::core::calendar::parse_now("2020-07-01T09:00:00", chrono_tz::Asia::Shanghai).unwrap()
    }

    #[test]
    fn smtp_urls_parse_with_their_security() {
        let u = SmtpUrl::parse("smtps://tally%40example.org@mail.example.org").unwrap();
        assert_eq!(
            (u.security, u.port, u.user.as_deref()),
            (Security::Tls, 465, Some("tally@example.org"))
        );
        let u = SmtpUrl::parse("smtp+starttls://mail.example.org").unwrap();
        assert_eq!((u.security, u.port), (Security::StartTls, 587));
        let u = SmtpUrl::parse("smtp://mail.example.org:587").unwrap();
        assert_eq!(u.security, Security::StartTls);
        let u = SmtpUrl::parse("smtp://127.0.0.1:2525").unwrap();
        assert_eq!((u.security, u.port), (Security::Plain, 2525));
        assert!(u.check_plain(false).is_ok());
        let u = SmtpUrl::parse("smtp://[::1]:2525").unwrap();
        assert_eq!(u.host, "::1");
        assert!(u.is_local());
        assert_eq!(u.display(), "smtp://[::1]:2525");
    }

    #[test]
    fn plain_smtp_to_another_host_needs_allow_plain() {
        let u = SmtpUrl::parse("smtp://mail.example.org").unwrap();
        let e = u.check_plain(false).unwrap_err();
        assert!(e.contains("allow_plain"), "{e}");
        assert!(u.check_plain(true).is_ok());
    }

    #[test]
    fn a_password_in_the_url_is_refused() {
        let e = SmtpUrl::parse("smtps://tally:secret@mail.example.org").unwrap_err();
        assert!(e.contains("TALLY_SMTP_PASSWORD"), "{e}");
        assert!(SmtpUrl::parse("http://x").is_err());
        assert!(SmtpUrl::parse("smtp://x:99999").is_err());
        assert!(SmtpUrl::parse("smtp://x/path").is_err());
    }

    #[test]
    fn a_user_without_password_is_a_config_error_and_the_env_url_wins() {
        let c = config();
        let e =
            Transport::resolve(&c, Some("smtps://u@mail.example.org".into()), None).unwrap_err();
        assert!(e.to_string().contains("TALLY_SMTP_PASSWORD"), "{e}");
        let t = Transport::resolve(
            &c,
            Some("smtps://u@mail.example.org".into()),
            Some("pw".into()),
        )
        .unwrap();
        assert_eq!(t.describe(), "smtps://u@mail.example.org:465");
        assert!(!format!("{t:?}").contains("pw"));
        let t = Transport::resolve(&c, None, None).unwrap();
        assert!(matches!(t, Transport::Files(ref d) if d == Path::new("/base/outbox")));
    }

    #[test]
    fn crlf_in_a_subject_cannot_add_a_header() {
        let c = config();
        let m = build(
            &c,
            &row(
                "【回执】西兴街道\r\nBcc: evil@example.org\r\nX-Evil: 1",
                &["a@example.org"],
            ),
            now(),
            false,
        )
        .unwrap();
        let text = String::from_utf8(m.formatted()).unwrap();
        for line in text.lines() {
            assert!(!line.to_ascii_lowercase().starts_with("bcc:"), "{text}");
            assert!(!line.starts_with("X-Evil"), "{text}");
        }
        assert!(
            m.envelope()
                .to()
                .iter()
                .all(|a| a.to_string() == "a@example.org")
        );
    }

    #[test]
    fn message_id_is_stable_and_from_the_key() {
        let c = config();
        let a = build(&c, &row("x", &["a@example.org"]), now(), false).unwrap();
        let b = build(
            &c,
            &row("x", &["a@example.org"]),
            now() + Duration::hours(3),
            true,
        )
        .unwrap();
        let id = |m: &Message| m.headers().get_raw("Message-ID").unwrap().to_string();
        assert_eq!(id(&a), id(&b));
        assert!(id(&a).starts_with('<') && id(&a).ends_with('>'));
        assert!(a.headers().get_raw("Auto-Submitted").is_some());
    }

    #[test]
    fn a_missing_attachment_is_noted_not_fatal() {
        let c = config();
        let mut r = row("x", &["a@example.org"]);
        r.attachments = vec![("x.错误说明.xlsx".into(), "/nonexistent/x.xlsx".into())];
        let m = build(&c, &r, now(), true).unwrap();
        let text = String::from_utf8_lossy(&m.formatted()).to_string();
        assert!(!text.contains("Content-Disposition: attachment"), "{text}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let r = RetrySettings::default();
        assert_eq!(r.backoff(1), Duration::seconds(60));
        assert_eq!(r.backoff(2), Duration::seconds(120));
        assert_eq!(r.backoff(7), Duration::seconds(3600));
        assert_eq!(r.backoff(200), Duration::seconds(3600));
    }

    #[test]
    fn schedule_values_parse() {
        assert_eq!(Day::try_from("周五".to_string()).unwrap().0, Weekday::Fri);
        assert_eq!(Day::try_from("Monday".to_string()).unwrap().0, Weekday::Mon);
        assert!(Day::try_from("someday".to_string()).is_err());
        let q = QuietHours::try_from("20:00-08:00".to_string()).unwrap();
        assert!(q.contains(NaiveTime::from_hms_opt(23, 0, 0).unwrap()));
        assert!(q.contains(NaiveTime::from_hms_opt(7, 59, 0).unwrap()));
        assert!(!q.contains(NaiveTime::from_hms_opt(8, 0, 0).unwrap()));
        let s =
            crate::core::remind::DateSpan::try_from("2020-10-01..2020-10-08".to_string()).unwrap();
        assert!(s.contains(NaiveDate::from_ymd_opt(2020, 10, 8).unwrap()));
        assert!(
            crate::core::remind::DateSpan::try_from("2020-10-08..2020-10-01".to_string()).is_err()
        );
        assert!(ClockTime::try_from("25:00".to_string()).is_err());
    }

    /// Replace `from` by `to` in the reference plan; the error must point at the line that
    /// holds `at`.
    fn invalid(from: &str, to: &str, at: &str) -> (String, usize, String) {
        let reference = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml"));
        assert!(reference.contains(from), "{from}");
        let src = reference.replacen(from, to, 1);
        match Config::parse(&src, Path::new("tally.toml"), Path::new("/base")) {
            Err(crate::config::ConfigError::Invalid {
                key, line, message, ..
            }) => {
                let expected = src.lines().position(|l| l.starts_with(at)).unwrap() + 1;
                assert_eq!(line, expected, "{key}: {message}");
                (key, line, message)
            }
            Err(e) => (String::new(), 0, e.to_string()),
            Ok(_) => panic!("{to:?} was accepted"),
        }
    }

    #[test]
    fn mail_settings_are_checked_with_key_and_line() {
        let (key, _, _) = invalid(
            "bureau = [\"anquan@example.org\"]",
            "bureau = [\"anquan at example.org\"]",
            "bureau",
        );
        assert_eq!(key, "mail.bureau");
        let to = "smtp_url = \"smtps://tally:secret@mail.example.org\"\nfrom = \"";
        let (key, _, msg) = invalid("from = \"", to, "smtp_url");
        assert_eq!(key, "mail.smtp_url");
        assert!(msg.contains("TALLY_SMTP_PASSWORD"), "{msg}");
        assert!(
            !msg.contains("secret"),
            "the password is never echoed: {msg}"
        );
        let (key, _, msg) = invalid(
            "from = \"",
            "smtp_url = \"smtp://mail.example.org\"\nfrom = \"",
            "smtp_url",
        );
        assert_eq!(key, "mail.smtp_url");
        assert!(msg.contains("allow_plain"), "{msg}");
        let to = "every_days = 7\nweekday = \"monday\" # 催办";
        let (key, _, _) = invalid(
            "weekday = \"monday\"                   # 催办",
            to,
            "weekday",
        );
        assert_eq!(key, "mail.reminders.weekday");
        let from = "from = \"滨江区应急管理局安全培训 <tally@example.org>\"";
        let (key, _, _) = invalid(from, "from = \"tally at example\"", "from");
        assert_eq!(key, "mail.from");
    }

    #[test]
    fn bad_schedule_values_name_the_key_and_line() {
        let reference = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml"));
        for (from, to, needle) in [
            ("time = \"09:00\"", "time = \"9点\"", "time"),
            (
                "weekday = \"monday\"                   # 催办",
                "weekday = \"someday\"",
                "weekday",
            ),
            (
                "grace_days = 31",
                "grace_days = 31\nquiet_hours = \"20:00\"",
                "quiet_hours",
            ),
            ("leader_after = 2", "leader_after = 2\ncolour = 1", "colour"),
        ] {
            assert!(reference.contains(from), "{from}");
            let err = Config::parse(
                &reference.replacen(from, to, 1),
                Path::new("tally.toml"),
                Path::new("/b"),
            )
            .unwrap_err()
            .to_string();
            assert!(err.contains(needle) && err.contains("line"), "{err}");
        }
    }

    #[test]
    fn only_loopback_addresses_and_localhost_are_this_machine() {
        for url in [
            "smtp://127.0.0.1:2525",
            "smtp://127.1.2.3",
            "smtp://localhost:25",
            "smtp://LocalHost.",
            "smtp://[::1]:2525",
            "smtp://[::ffff:127.0.0.1]:25",
        ] {
            let u = SmtpUrl::parse(url).unwrap();
            assert!(u.is_local(), "{url}");
            assert!(u.check_plain(false).is_ok(), "{url}");
        }
        for url in [
            "smtp://127.attacker.example",
            "smtp://127.0.0.1.attacker.example:25",
            "smtp://localhost.attacker.example",
            "smtp://mail.localhost.example",
            "smtp://10.0.0.1",
            "smtp://[::2]",
            "smtp://0x7f.example",
        ] {
            let u = SmtpUrl::parse(url).unwrap();
            assert!(!u.is_local(), "{url}");
            let e = u.check_plain(false).unwrap_err();
            assert!(e.contains("allow_plain"), "{url}: {e}");
        }
    }

    #[test]
    fn a_password_is_never_shown_whatever_the_form_of_the_url() {
        for url in [
            "tally:s3cret@mail.example.org:465",
            "smtps://tally:s3cret@mail.example.org:465",
            "smtps://tally:s3c@ret@mail.example.org",
            "smtp:tally:s3cret@mail.example.org",
            "tally:s3cret@mail.example.org/path",
        ] {
            let shown = redact(url);
            assert!(
                !shown.contains("s3cret") && !shown.contains("ret@"),
                "{url} -> {shown}"
            );
            let e = SmtpUrl::parse(url).unwrap_err();
            assert!(!e.contains("s3cret"), "{url}: {e}");
            let e = Transport::resolve(&config(), Some(url.into()), None).unwrap_err();
            assert!(!e.to_string().contains("s3cret"), "{url}: {e}");
        }
        assert_eq!(
            redact("tally:s3cret@mail.example.org:465"),
            "tally:***@mail.example.org:465"
        );
        assert_eq!(redact("smtp://mail.example.org"), "smtp://mail.example.org");
        assert_eq!(
            redact("smtps://tally@mail.example.org"),
            "smtps://tally@mail.example.org"
        );
        // In tally.toml too.
        let to = "smtp_url = \"tally:s3cret@mail.example.org:465\"\nfrom = \"";
        let (key, _, msg) = invalid("from = \"", to, "smtp_url");
        assert_eq!(key, "mail.smtp_url");
        assert!(!msg.contains("s3cret"), "{msg}");
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

    /// The reference plan with its folders (ledger, outbox) under `dir`.
    fn config_in(dir: &Path) -> Config {
        Config::parse(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml")),
            Path::new("tally.toml"),
            dir,
        )
        .unwrap()
    }

    fn queue(ledger: &mut Ledger, key: &str) -> i64 {
        let tx = ledger.conn().transaction().unwrap();
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
        crate::ledger::queue_message(&tx, &m, &stamp(now())).unwrap();
        tx.commit().unwrap();
        ledger
            .conn()
            .query_row(
                "SELECT id FROM outbox WHERE idempotency_key = ?1",
                params![key],
                |r| r.get(0),
            )
            .unwrap()
    }

    #[test]
    fn a_message_being_sent_is_neither_requeued_nor_sent_again_until_its_lease_runs_out() {
        let dir = tempfile::tempdir().unwrap();
        let c = config_in(dir.path());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        let id = queue(&mut ledger, "k1");
        let files = Transport::Files(c.outbox_dir());
        // Another sender has claimed it (its second attempt) and is sending it right now.
        ledger
            .conn()
            .execute(
                "UPDATE outbox SET attempts = 1, next_attempt_at = ?1, lease_until = ?2 WHERE id = ?3",
                params![
                    stamp(now() + Duration::minutes(1)),
                    lease_clock() + LEASE_SECONDS,
                    id
                ],
            )
            .unwrap();
        assert!(list(&mut ledger, false).unwrap()[0].sending());
        for ids in [&[][..], &[id][..]] {
            let r = requeue(&mut ledger, ids, now()).unwrap();
            assert_eq!((r.changed, r.sending.clone()), (0, vec![id]), "{ids:?}");
        }
        // Not even a --now far past its next attempt makes it due while the lease holds.
        let later = now() + Duration::hours(5);
        let report = send_due_with(&c, &mut ledger, later, &files).unwrap();
        assert!(report.sent.is_empty(), "{report:?}");
        assert_eq!(report.sending_elsewhere, [id]);
        assert!(report.summary().contains("being sent by another process"));
        assert!(!c.outbox_dir().exists() || c.outbox_dir().read_dir().unwrap().count() == 0);

        // The sender died: once its lease has run out, the message may be claimed again.
        ledger
            .conn()
            .execute(
                "UPDATE outbox SET lease_until = ?1 WHERE id = ?2",
                params![lease_clock() - 1, id],
            )
            .unwrap();
        let r = requeue(&mut ledger, &[id], now()).unwrap();
        assert_eq!((r.changed, r.sending.len()), (1, 0));
        let report = send_due_with(&c, &mut ledger, now(), &files).unwrap();
        assert_eq!(report.sent, [id]);
        let row = &list(&mut ledger, true).unwrap()[0];
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
        let row = &list(&mut ledger, false).unwrap()[0];
        assert_eq!((row.id, row.attempts, row.lease_until), (id, 1, None));
        assert!(!row.sending());
        // `outbox retry` may make it due again at once.
        assert_eq!(requeue(&mut ledger, &[], now()).unwrap().changed, 1);
    }

    /// The reference plan where no category lags (tolerance 1): units lag only when a month's
    /// return is overdue.
    fn lag_only_when_overdue(dir: &Path) -> Config {
        let mut c = config_in(dir);
        c.plan.tolerance = 1.0;
        c
    }

    fn at(s: &str) -> DateTime<Tz> {
        crate::core::calendar::parse_now(s, chrono_tz::Asia::Shanghai).unwrap()
    }

    fn reminded(r: &ScheduleReport) -> Vec<String> {
        r.planned
            .iter()
            .filter(|p| p.new && p.message.kind == "reminder")
            .filter_map(|p| p.message.unit.clone())
            .collect()
    }

    #[test]
    fn a_unit_that_falls_behind_mid_window_is_reminded_when_the_next_window_opens() {
        let dir = tempfile::tempdir().unwrap();
        let c = lag_only_when_overdue(dir.path());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        // Monday 2020-02-03 09:00 opens a window; January is due by 5 February: nobody lags.
        let r = schedule(&c, &mut ledger, at("2020-02-03T09:00:00"), false).unwrap();
        assert!(r.status.units.iter().all(|u| !u.lagging));
        assert!(reminded(&r).is_empty());
        // Thursday 00:00: January is overdue, every unit lags — no 催办 at midnight, from
        // the daemon nor from `tally remind`, nor later that day.
        for (t, trigger) in [
            ("2020-02-06T00:00:00", Trigger::Daemon),
            ("2020-02-06T00:00:00", Trigger::Request),
            ("2020-02-06T10:00:00", Trigger::Daemon),
            ("2020-02-09T23:00:00", Trigger::Request),
        ] {
            let r = schedule_for(&c, &mut ledger, at(t), false, trigger).unwrap();
            assert!(r.status.units.iter().all(|u| u.lagging), "{t}");
            assert!(
                reminded(&r).is_empty(),
                "{t} {trigger:?}: {:?}",
                reminded(&r)
            );
            if t.ends_with("10:00:00") {
                assert_eq!(r.passed.len(), 4, "{:?}", r.passed);
                assert!(
                    r.passed[0].reason.contains("2020-02-10 09:00"),
                    "{:?}",
                    r.passed
                );
            }
        }
        // The next window opens at its weekday and time: all four are reminded, once.
        let r = schedule(&c, &mut ledger, at("2020-02-10T09:00:00"), false).unwrap();
        assert_eq!(reminded(&r).len(), 4, "{:?}", r.passed);
        let r = schedule(&c, &mut ledger, at("2020-02-10T15:00:00"), false).unwrap();
        assert!(reminded(&r).is_empty());
    }

    #[test]
    fn a_window_the_daemon_missed_is_caught_up_from_the_configured_time_of_day() {
        let dir = tempfile::tempdir().unwrap();
        let c = lag_only_when_overdue(dir.path());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        // Nothing ran at Monday 09:00. Restarted on Thursday at 00:30, the daemon waits for
        // 09:00; `tally remind` (staff asking) sends at once.
        let r = schedule(&c, &mut ledger, at("2020-02-06T00:30:00"), false).unwrap();
        assert!(reminded(&r).is_empty());
        let r = schedule(&c, &mut ledger, at("2020-02-06T09:00:00"), false).unwrap();
        assert_eq!(reminded(&r).len(), 4);

        let dir = tempfile::tempdir().unwrap();
        let c = lag_only_when_overdue(dir.path());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        let r = schedule_for(
            &c,
            &mut ledger,
            at("2020-02-06T00:30:00"),
            false,
            Trigger::Request,
        )
        .unwrap();
        assert_eq!(reminded(&r).len(), 4);
        // Quiet hours hold for both.
        let dir = tempfile::tempdir().unwrap();
        let mut c = lag_only_when_overdue(dir.path());
        c.mail.quiet_hours = Some(QuietHours::try_from("20:00-08:00".to_string()).unwrap());
        let mut ledger = Ledger::open(&c.state_path()).unwrap();
        let r = schedule_for(
            &c,
            &mut ledger,
            at("2020-02-06T00:30:00"),
            false,
            Trigger::Request,
        )
        .unwrap();
        assert!(r.closed.is_some() && r.planned.is_empty());
    }

    #[test]
    fn eml_names_are_safe_file_names() {
        let mut r = row("x", &["a@example.org"]);
        r.unit = Some("西兴/街道\r\n".into());
        assert_eq!(eml_name(&r), "000007-回执-西兴_街道__.eml");
    }
}
