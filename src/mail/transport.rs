//! Where mail goes: an SMTP server (lettre, TLS unless this machine) or one .eml file per
//! message in the outbox folder; how a refusal counts (transient, permanent, unreachable).
//! Delivers a built message and says what happened; it never reads or writes the outbox —
//! the sender (`outbox`) records the outcome — and never reads the environment itself.

use crate::config::Config;
use crate::mail::compose::one_line;
use crate::mail::url::{Security, SmtpUrl};
use crate::mail::{MailError, OutboxRow, kind_label};
use crate::settings::Environment;
use lettre::transport::smtp::SmtpTransport;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{Message, Transport as _};
use std::path::PathBuf;

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
            .timeout(Some(std::time::Duration::from_secs(mail.timeout_secs)));
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
            Transport::Files(dir) => format!("写入文件夹 {}", dir.display()),
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
    pub(super) fn text(&self) -> &str {
        match self {
            Failure::Transient(s) | Failure::Permanent(s) | Failure::Unreachable(s) => s,
        }
    }
}

impl Transport {
    /// Whether a delivery already made is found again and not made twice (the outbox folder:
    /// a message's file is written durably under a name of its own, and one that is there is
    /// not written again), so that its sent mark need not be on disk before the next message.
    pub fn finds_its_deliveries(&self) -> bool {
        matches!(self, Transport::Files(_))
    }

    /// The deliveries made so far on disk: the outbox folder's new names fsync'd, once for
    /// all the messages written into it (each message's bytes were before its name was
    /// made). A message is marked sent only after this.
    pub(super) fn settle(&self) {
        if let Transport::Files(dir) = self {
            crate::durable::sync_dir(dir);
        }
    }

    /// Deliver one built message. Over SMTP it goes to all its recipients in one
    /// transaction; when the server refuses that (lettre gives up on the first recipient it
    /// refuses, so nobody gets the message) and there are several recipients, it goes to each
    /// recipient not yet served on its own, so one bad address (a leader's on Cc) does not keep
    /// the message from the others. `delivered` records each recipient served that way as soon
    /// as the server took it, so that a later attempt goes only to the rest.
    pub(super) fn deliver(
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
                // Its name is made durable with the others' by `settle`.
                crate::intake::write_synced(&path, &message.formatted())
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
    if row.id == 0 {
        // Sent around the outbox (`send_unrecorded`): no number; named by when it was sent.
        let at: String = row
            .created_at
            .chars()
            .filter(char::is_ascii_digit)
            .take(14)
            .collect();
        return format!("未入账-{at}-{}-{}.eml", kind_label(&row.kind), unit);
    }
    format!("{:06}-{}-{}.eml", row.id, kind_label(&row.kind), unit)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::fixtures::{config, row};
    use std::path::Path;
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
    fn eml_names_are_safe_file_names() {
        let mut r = row("x", &["a@example.org"]);
        r.unit = Some("西兴/街道\r\n".into());
        assert_eq!(eml_name(&r), "000007-回执-西兴_街道__.eml");
    }
}
