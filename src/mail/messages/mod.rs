//! Composing mail from minijinja templates (templates/mail/*.txt, simplified Chinese): the
//! words of every message tally sends — those stored with a submission (`intake`) and those
//! stored by the schedule (`scheduled`). A template's first line is the subject, the rest the
//! body. The bureau may put edited copies in `<config folder>/templates/mail/`; a copy that
//! fails to render is reported and the built-in one used. Composes only: storing and sending
//! are the outbox's, building the MIME message `compose`'s.

mod alarm;
mod intake;
mod scheduled;

pub use alarm::{StorageAlarm, storage_alert};
pub use intake::{compose_intake, composer, progress_section};
pub use scheduled::{DigestExtras, deadline_reminder, digest, reminder, reminder_key};

use crate::config::Config;
use crate::core::calendar::YearMonth;
use crate::core::findings::Finding;
use chrono::DateTime;
use chrono_tz::Tz;
use serde::Serialize;
use std::path::{Path, PathBuf};

pub const PROGRESS_MARKER: &str = "[[tally:progress]]";

/// The built-in templates, as shipped in templates/mail/.
const BUILT_IN: &[(&str, &str)] = &[
    (
        "receipt",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/mail/receipt.txt"
        )),
    ),
    (
        "rejection",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/mail/rejection.txt"
        )),
    ),
    (
        "alert",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/mail/alert.txt"
        )),
    ),
    (
        "storage",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/mail/storage.txt"
        )),
    ),
    (
        "reminder",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/mail/reminder.txt"
        )),
    ),
    (
        "deadline",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/mail/deadline.txt"
        )),
    ),
    (
        "digest",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/mail/digest.txt"
        )),
    ),
    (
        "progress",
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/templates/mail/progress.txt"
        )),
    ),
];

/// Subject tags (DESIGN.md §4a), so clerks can filter.
pub fn tag(kind: &str) -> &'static str {
    match kind {
        "receipt" => "【回执】",
        "rejection" => "【退回】",
        "reminder" => "【催办】",
        "deadline" => "【未报送提醒】",
        "digest" => "【周报】",
        _ => "【异常】",
    }
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

/// The folder of the bureau's own copies of the templates.
pub fn custom_dir(config: &Config) -> PathBuf {
    config.base_dir.join("templates").join("mail")
}

fn render_source(source: &str, ctx: &minijinja::Value) -> Result<String, minijinja::Error> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    env.set_syntax(
        minijinja::syntax::SyntaxConfig::builder()
            .trim_blocks(true)
            .lstrip_blocks(true)
            .keep_trailing_newline(true)
            .build()?,
    );
    env.add_template("mail", source)?;
    env.get_template("mail")?.render(ctx.clone())
}

/// Render template `name` (the bureau's copy when there is one) with `ctx`.
pub fn render(config: &Config, name: &str, ctx: &impl Serialize) -> String {
    let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
    let custom = custom_dir(config).join(format!("{name}.txt"));
    if let Ok(source) = std::fs::read_to_string(&custom) {
        match render_source(&source, &ctx) {
            Ok(text) => return text,
            Err(e) => tracing::warn!(
                template = %custom.display(),
                error = %format!("{e:#}"),
                "mail template does not render; the built-in one is used"
            ),
        }
    }
    let built_in = BUILT_IN
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |(_, s)| s);
    render_source(built_in, &ctx).unwrap_or_else(|e| format!("（邮件模板 {name} 出错：{e}）\n"))
}

/// An 【异常】 alert to the bureau: template `template` rendered with `ctx`, about `unit` (if
/// any), stored under `key`.
fn bureau_alert(
    config: &Config,
    key: String,
    unit: Option<&str>,
    template: &str,
    ctx: &impl Serialize,
) -> crate::ledger::NewMessage {
    let (subject, body) = split("alert", unit, &render(config, template, ctx));
    crate::ledger::NewMessage {
        idempotency_key: key,
        kind: "alert".into(),
        unit: unit.map(str::to_string),
        to: config.mail.bureau.clone(),
        cc: Vec::new(),
        subject,
        body,
        attachments: Vec::new(),
    }
}

/// Split a rendered template into subject (first line, with the kind's tag and the unit in
/// front) and body.
fn split(kind: &str, unit: Option<&str>, text: &str) -> (String, String) {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let mut subject = crate::mail::compose::one_line(first);
    let t = tag(kind);
    if !subject.starts_with(t) {
        subject = match unit {
            Some(u) => format!("{t}{} {subject}", crate::mail::compose::one_line(u)),
            None => format!("{t}{subject}"),
        };
    }
    let body = rest.trim_start_matches(['\r', '\n']);
    let mut body = collapse_blank_lines(body);
    if !body.ends_with('\n') {
        body.push('\n');
    }
    (subject, body)
}

/// At most one empty line in a row, none at the end.
fn collapse_blank_lines(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut blank = 0;
    for line in s.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            blank += 1;
            if blank > 1 {
                continue;
            }
        } else {
            blank = 0;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

fn masked(config: &Config, s: &str) -> String {
    if config.plan.mask_ids {
        crate::core::ids::mask_ids_in(s)
    } else {
        s.to_string()
    }
}

/// `2020-07-01 09:00` from a stored RFC 3339 stamp.
fn show_time(stamp: &str) -> String {
    crate::core::calendar::show_stamp(stamp)
}

fn show_now(now: DateTime<Tz>) -> String {
    now.format("%Y-%m-%d %H:%M").to_string()
}

fn month_label(m: Option<YearMonth>) -> String {
    m.map_or_else(|| "（月份未识别）".to_string(), |m| m.label_zh())
}

fn sender(config: &Config) -> String {
    config
        .mail
        .from_mailbox()
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "tally".into())
}

fn file_name_of(path: &str) -> String {
    Path::new(path)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| path.to_string())
}

#[derive(Serialize)]
struct FindingView {
    location: String,
    code: String,
    severity: String,
    value: String,
    message: String,
}

fn finding_view(config: &Config, f: &Finding) -> FindingView {
    FindingView {
        location: f.location(),
        code: f.code.as_str().to_string(),
        severity: f.severity.label().to_string(),
        value: masked(config, &f.value),
        message: masked(config, &f.message),
    }
}

fn month_labels(months: &[String]) -> Vec<String> {
    months
        .iter()
        .map(|m| YearMonth::parse(m).map_or_else(|| m.clone(), |m| m.label_zh()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::ids::mask_ids_in;

    #[test]
    fn the_subject_keeps_its_tag_when_a_template_drops_it() {
        let (s, b) = split("reminder", Some("西兴\r\n街道"), "请加快进度\n\n\n\n正文\n");
        assert_eq!(s, "【催办】西兴 街道 请加快进度");
        assert_eq!(b, "正文\n");
    }

    #[test]
    fn id_like_runs_are_masked_and_nothing_else() {
        assert_eq!(
            mask_ids_in("号 33010819900101123X 错"),
            "号 330108********123X 错"
        );
        assert_eq!(
            mask_ids_in("code 91330108MA0000007X, 2020-05-06"),
            "code 91330108MA0000007X, 2020-05-06"
        );
        assert_eq!(mask_ids_in("330108900101123"), "330108*****1123");
    }

    #[test]
    fn ids_of_15_to_18_digits_are_masked_whatever_their_length() {
        // A 17-digit ID (one digit lost) is still a person's ID.
        let seventeen = "33010819900101123";
        let masked = mask_ids_in(&format!("身份证号 {seventeen} 位数不对"));
        assert!(!masked.contains(seventeen), "{masked}");
        assert_eq!(masked, "身份证号 330108*******1123 位数不对");
        // 16 digits, and IDs glued to Chinese text or letters.
        for id in [
            "3301081990010112",
            "33010819900101123",
            "330108199001011234",
        ] {
            for text in [format!("号{id}有误"), format!("ID{id}"), format!("{id}号")] {
                let m = mask_ids_in(&text);
                assert!(!m.contains(id), "{text} -> {m}");
                assert!(m.contains(&crate::core::ids::mask_id(id)), "{text} -> {m}");
            }
        }
        // 18 digits and an X, as the master masks a 17-digit run with an X.
        assert_eq!(
            mask_ids_in("33010819900101123X"),
            crate::core::ids::mask_id("33010819900101123X")
        );
        assert!(!mask_ids_in("号 330108199001011234X").contains("199001011234"));
        // Shorter and longer numbers stay: phone numbers, dates, a 20-digit account.
        for keep in [
            "057187654321",
            "13912345678",
            "20200506",
            "12345678901234567890",
        ] {
            assert_eq!(mask_ids_in(keep), keep);
        }
    }
}
