//! The lettre `Message` for an outbox row, at send time: typed headers only (so no text —
//! a subject, a unit's name, a file name — can add a header), a Message-ID derived from the
//! idempotency key, the body as 8-bit UTF-8 or base64, the attachments read from disk.
//! Builds only: the words come from `messages`, and nothing here stores or sends.

use crate::config::Config;
use crate::mail::OutboxRow;
use crate::mail::transport::Failure;
use chrono::DateTime;
use chrono_tz::Tz;
use lettre::Message;
use lettre::message::header::{
    ContentTransferEncoding, ContentType, Header, HeaderName, HeaderValue,
};
use lettre::message::{Attachment, Body, Mailbox, MultiPart, SinglePart};
use sha2::{Digest, Sha256};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::fixtures::{config, now, row};
    use chrono::Duration;
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
}
