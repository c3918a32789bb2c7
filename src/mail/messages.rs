//! Composing mail from minijinja templates (templates/mail/*.txt, simplified Chinese): the
//! receipt, rejection notice and unit-mismatch alert stored with a submission, and the
//! reminder, deadline reminder and digest stored by the schedule. A template's first line is
//! the subject, the rest the body. The bureau may put edited copies in
//! `<config folder>/templates/mail/`; a copy that fails to render is reported and the built-in
//! one used. Composes only: storing and sending are `mail`'s.

use crate::config::Config;
use crate::core::calendar::YearMonth;
use crate::core::count::{Status, UnitStatus};
use crate::core::findings::{Code, Finding};
use crate::core::plan::Unit;
use crate::core::remind::{self, DeadlineDue, DigestDue, Line, Phase, Window};
use crate::ledger::{Ledger, NewMessage, Submission, SubmissionStatus};
use chrono::DateTime;
use chrono_tz::Tz;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Stands in a stored receipt for the progress section, filled in by the sender once the
/// return's rows are in the ledger.
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

/// Split a rendered template into subject (first line, with the kind's tag and the unit in
/// front) and body.
fn split(kind: &str, unit: Option<&str>, text: &str) -> (String, String) {
    let (first, rest) = text.split_once('\n').unwrap_or((text, ""));
    let mut subject = crate::mail::one_line(first);
    let t = tag(kind);
    if !subject.starts_with(t) {
        subject = match unit {
            Some(u) => format!("{t}{} {subject}", crate::mail::one_line(u)),
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
    let s = stamp.replace('T', " ");
    s.get(..16).unwrap_or(&s).to_string()
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

/// The composer intake calls with each provisional submission (id 0): receipt, rejection
/// notice, unit-mismatch alert.
pub fn composer(config: &Config) -> impl Fn(&Submission, &[Finding]) -> Vec<NewMessage> + '_ {
    move |s, findings| compose_intake(config, s, findings)
}

/// An earlier submission, looked up (read only) for the notice about a duplicate.
struct Earlier {
    received_at: String,
    feedback_path: Option<String>,
}

fn earlier(config: &Config, id: i64) -> Option<Earlier> {
    let ledger = Ledger::open(&config.state_path()).ok()?;
    let s = ledger.submission(id).ok()??;
    Some(Earlier {
        received_at: s.received_at,
        feedback_path: s.feedback_path,
    })
}

/// Whether the unit already has an accepted return for this month (this one will replace it).
fn supersedes(config: &Config, unit: &str, month: Option<YearMonth>) -> bool {
    let Some(month) = month else { return false };
    Ledger::open(&config.state_path())
        .ok()
        .and_then(|l| l.accepted_months().ok())
        .is_some_and(|months| months.contains(&(unit.to_string(), month)))
}

/// The idempotency key of a message about one intake:
/// `{kind}/{status}/{sha256}/{unit}/{received_at}/{destination}` (mail.rs reads receipts'
/// keys back to find their submission). One message per intake: the same bytes may come again
/// (after a newer return replaced them, or rejected and sent again), each time with its own
/// arrival and destination.
fn intake_key(kind: &str, s: &Submission, unit: &str) -> String {
    format!(
        "{kind}/{}/{}/{unit}/{}/{}",
        s.status.as_str(),
        s.sha256,
        s.received_at,
        s.destination
    )
}

/// Messages for one submission.
pub fn compose_intake(config: &Config, s: &Submission, findings: &[Finding]) -> Vec<NewMessage> {
    let mut out = Vec::new();
    let Some(unit) = config.plan.units.iter().find(|u| u.name == s.unit) else {
        return out;
    };
    match s.status {
        SubmissionStatus::Accepted => out.extend(receipt(config, unit, s, findings, None)),
        SubmissionStatus::Rejected => out.extend(rejection(config, unit, s, findings, None)),
        SubmissionStatus::Duplicate => {
            // Intake records duplicates only of bytes that count now (rejected bytes are
            // checked again), so a duplicate always gets an "already counted" receipt.
            let original = s.duplicate_of.and_then(|id| earlier(config, id));
            out.extend(receipt(config, unit, s, &[], original.as_ref()))
        }
        SubmissionStatus::Superseded => {}
    }
    if let Some(f) = findings.iter().find(|f| f.code == Code::UnitMismatch) {
        out.extend(unit_mismatch_alert(config, unit, s, f));
    }
    out
}

#[derive(Serialize)]
struct ReceiptContext<'a> {
    plan: &'a str,
    unit: &'a str,
    file_name: &'a str,
    month: String,
    received_at: String,
    rows: i64,
    duplicate: bool,
    original_received_at: String,
    superseding: bool,
    warnings: Vec<FindingView>,
    progress: &'static str,
    sender: String,
}

/// 回执: stored with the submission; its progress section is filled in before sending.
fn receipt(
    config: &Config,
    unit: &Unit,
    s: &Submission,
    findings: &[Finding],
    original: Option<&Earlier>,
) -> Option<NewMessage> {
    if unit.contacts.is_empty() {
        tracing::info!(unit = %unit.name, "no contact address: no receipt");
        return None;
    }
    let duplicate = s.status == SubmissionStatus::Duplicate;
    let ctx = ReceiptContext {
        plan: &config.plan.title,
        unit: &unit.name,
        file_name: &s.file_name,
        month: month_label(s.month),
        received_at: show_time(&s.received_at),
        rows: s.rows,
        duplicate,
        original_received_at: original
            .map(|o| show_time(&o.received_at))
            .unwrap_or_default(),
        superseding: !duplicate && supersedes(config, &unit.name, s.month),
        warnings: findings
            .iter()
            .filter(|f| !f.is_error())
            .map(|f| finding_view(config, f))
            .collect(),
        progress: PROGRESS_MARKER,
        sender: sender(config),
    };
    let (subject, body) = split(
        "receipt",
        Some(&unit.name),
        &render(config, "receipt", &ctx),
    );
    let key = intake_key("receipt", s, &unit.name);
    Some(NewMessage {
        idempotency_key: key,
        kind: "receipt".into(),
        unit: Some(unit.name.clone()),
        to: unit.contacts.clone(),
        cc: Vec::new(),
        subject,
        body,
        attachments: Vec::new(),
    })
}

#[derive(Serialize)]
struct ThisReturn {
    category: String,
    rows: i64,
    passed: i64,
}

#[derive(Serialize)]
struct ProgressContext {
    as_of: String,
    duplicate: bool,
    this_return: Vec<ThisReturn>,
    lines: Vec<Line>,
    missing_months: Vec<String>,
}

/// The progress section of a receipt: this return per category, and the unit's figures in
/// `status` (those of `status --json` at the same time).
pub fn progress_section(
    config: &Config,
    status: &Status,
    unit: &str,
    this_return: &[(String, i64, i64)],
    duplicate: bool,
) -> String {
    let Some(u) = status.units.iter().find(|u| u.unit == unit) else {
        return String::new();
    };
    let now = DateTime::parse_from_rfc3339(&status.as_of)
        .map(|t| t.with_timezone(&config.plan.tz))
        .unwrap_or_else(|_| chrono::Utc::now().with_timezone(&config.plan.tz));
    let ctx = ProgressContext {
        as_of: show_now(now),
        duplicate,
        this_return: if duplicate {
            Vec::new()
        } else {
            config
                .plan
                .categories
                .iter()
                .filter_map(|c| this_return.iter().find(|(cat, _, _)| cat == &c.name))
                .map(|(category, rows, passed)| ThisReturn {
                    category: category.clone(),
                    rows: *rows,
                    passed: *passed,
                })
                .collect()
        },
        lines: remind::lines(u, now, config.plan.year),
        missing_months: month_labels(&u.missing_months),
    };
    collapse_blank_lines(&render(config, "progress", &ctx))
        .trim_end()
        .to_string()
}

fn month_labels(months: &[String]) -> Vec<String> {
    months
        .iter()
        .map(|m| YearMonth::parse(m).map_or_else(|| m.clone(), |m| m.label_zh()))
        .collect()
}

#[derive(Serialize)]
struct RejectionContext<'a> {
    plan: &'a str,
    unit: &'a str,
    file_name: &'a str,
    month: String,
    received_at: String,
    duplicate: bool,
    original_received_at: String,
    errors: usize,
    warnings: usize,
    findings: Vec<FindingView>,
    feedback_name: Option<String>,
    sender: String,
}

/// 退回通知: every finding, the feedback workbook attached.
fn rejection(
    config: &Config,
    unit: &Unit,
    s: &Submission,
    findings: &[Finding],
    original: Option<&Earlier>,
) -> Option<NewMessage> {
    if unit.contacts.is_empty() {
        tracing::info!(unit = %unit.name, "no contact address: no rejection notice");
        return None;
    }
    let duplicate = original.is_some();
    let feedback = if duplicate {
        original.and_then(|o| o.feedback_path.clone())
    } else {
        s.feedback_path.clone()
    };
    let mut sorted: Vec<&Finding> = findings.iter().collect();
    sorted.sort_by_key(|f| !f.is_error()); // errors first, order kept within each
    let ctx = RejectionContext {
        plan: &config.plan.title,
        unit: &unit.name,
        file_name: &s.file_name,
        month: month_label(s.month),
        received_at: show_time(&s.received_at),
        duplicate,
        original_received_at: original
            .map(|o| show_time(&o.received_at))
            .unwrap_or_default(),
        errors: findings.iter().filter(|f| f.is_error()).count(),
        warnings: findings.iter().filter(|f| !f.is_error()).count(),
        findings: sorted
            .into_iter()
            .map(|f| finding_view(config, f))
            .collect(),
        feedback_name: feedback.as_deref().map(file_name_of),
        sender: sender(config),
    };
    let (subject, body) = split(
        "rejection",
        Some(&unit.name),
        &render(config, "rejection", &ctx),
    );
    let key = intake_key("rejection", s, &unit.name);
    Some(NewMessage {
        idempotency_key: key,
        kind: "rejection".into(),
        unit: Some(unit.name.clone()),
        to: unit.contacts.clone(),
        cc: Vec::new(),
        subject,
        body,
        attachments: feedback
            .map(|p| (file_name_of(&p), p))
            .into_iter()
            .collect(),
    })
}

#[derive(Serialize)]
struct AlertContext<'a> {
    plan: &'a str,
    unit: &'a str,
    file_name: &'a str,
    month: String,
    received_at: String,
    named: String,
    message: String,
}

/// 异常: a return names another unit than the folder it was dropped in.
fn unit_mismatch_alert(
    config: &Config,
    unit: &Unit,
    s: &Submission,
    f: &Finding,
) -> Option<NewMessage> {
    if config.mail.bureau.is_empty() {
        return None;
    }
    let ctx = AlertContext {
        plan: &config.plan.title,
        unit: &unit.name,
        file_name: &s.file_name,
        month: month_label(s.month),
        received_at: show_time(&s.received_at),
        named: masked(config, &f.value),
        message: masked(config, &f.message),
    };
    let (subject, body) = split("alert", Some(&unit.name), &render(config, "alert", &ctx));
    Some(NewMessage {
        idempotency_key: format!("alert/unit-mismatch/{}/{}", s.sha256, unit.name),
        kind: "alert".into(),
        unit: Some(unit.name.clone()),
        to: config.mail.bureau.clone(),
        cc: Vec::new(),
        subject,
        body,
        attachments: Vec::new(),
    })
}

/// Key of a unit's reminder in a window.
pub fn reminder_key(window_id: &str, unit: &str) -> String {
    format!("reminder/{window_id}/{unit}")
}

#[derive(Serialize)]
struct ReminderContext<'a> {
    plan: &'a str,
    unit: &'a str,
    as_of: String,
    window: String,
    lines: &'a [Line],
    missing_months: Vec<String>,
    deadline_day: u32,
    streak: u32,
    copy_leader: bool,
    sender: String,
}

/// 催办 to a lagging unit; the leader on copy when `copy_leader`.
#[allow(clippy::too_many_arguments)]
pub fn reminder(
    config: &Config,
    unit: &Unit,
    u: &UnitStatus,
    lines: &[Line],
    streak: u32,
    copy_leader: bool,
    window: &Window,
    now: DateTime<Tz>,
) -> NewMessage {
    let leader = unit.leader.clone().filter(|_| copy_leader);
    let ctx = ReminderContext {
        plan: &config.plan.title,
        unit: &unit.name,
        as_of: show_now(now),
        window: window.label(),
        lines,
        missing_months: month_labels(&u.missing_months),
        deadline_day: config.plan.deadline_day,
        streak,
        copy_leader: leader.is_some(),
        sender: sender(config),
    };
    let (subject, body) = split(
        "reminder",
        Some(&unit.name),
        &render(config, "reminder", &ctx),
    );
    NewMessage {
        idempotency_key: reminder_key(&window.id(), &unit.name),
        kind: "reminder".into(),
        unit: Some(unit.name.clone()),
        to: unit.contacts.clone(),
        cc: leader.into_iter().collect(),
        subject,
        body,
        attachments: Vec::new(),
    }
}

#[derive(Serialize)]
struct DeadlineContext<'a> {
    plan: &'a str,
    unit: &'a str,
    month: String,
    deadline: String,
    days_left: i64,
    sender: String,
}

/// 未报送提醒: a month's return is not in and its deadline is near.
pub fn deadline_reminder(
    config: &Config,
    unit: &Unit,
    due: &DeadlineDue,
    _now: DateTime<Tz>,
) -> NewMessage {
    let d = due.deadline;
    let ctx = DeadlineContext {
        plan: &config.plan.title,
        unit: &unit.name,
        month: due.month.label_zh(),
        deadline: format!(
            "{}年{}月{}日",
            chrono::Datelike::year(&d),
            chrono::Datelike::month(&d),
            chrono::Datelike::day(&d)
        ),
        days_left: due.days_left,
        sender: sender(config),
    };
    let (subject, body) = split(
        "deadline",
        Some(&unit.name),
        &render(config, "deadline", &ctx),
    );
    NewMessage {
        idempotency_key: format!("deadline/{}/{}/{}", due.month, due.today, unit.name),
        kind: "deadline".into(),
        unit: Some(unit.name.clone()),
        to: unit.contacts.clone(),
        cc: Vec::new(),
        subject,
        body,
        attachments: Vec::new(),
    }
}

/// What a digest reports besides the status.
pub struct DigestExtras<'a> {
    /// Start of the period the digest covers.
    pub since: Option<DateTime<Tz>>,
    /// Submissions received in that period.
    pub received: &'a [&'a Submission],
    /// Messages in the outbox that failed.
    pub failed_mail: i64,
    /// The master workbook, when it exists.
    pub master: Option<PathBuf>,
}

#[derive(Serialize)]
struct DigestUnit {
    unit: String,
    lagging: bool,
    missing_months: Vec<String>,
    lines: Vec<Line>,
}

#[derive(Serialize)]
struct Received {
    total: usize,
    accepted: usize,
    rejected: usize,
    duplicate: usize,
}

#[derive(Serialize)]
struct DigestContext<'a> {
    plan: &'a str,
    year: i32,
    as_of: String,
    last: bool,
    grace_last_day: Option<String>,
    units: Vec<DigestUnit>,
    lagging_units: Vec<String>,
    since: Option<String>,
    received: Received,
    failed_mail: i64,
    master_name: Option<String>,
}

/// 周报 to the bureau: the status table, the period's returns, the master attached.
pub fn digest(
    config: &Config,
    status: &Status,
    phase: Phase,
    due: &DigestDue,
    extras: &DigestExtras<'_>,
    now: DateTime<Tz>,
) -> NewMessage {
    let count = |st: SubmissionStatus| extras.received.iter().filter(|s| s.status == st).count();
    let ctx = DigestContext {
        plan: &config.plan.title,
        year: config.plan.year,
        as_of: show_now(now),
        last: due.last,
        grace_last_day: match phase {
            Phase::Grace { last_day } => Some(last_day.to_string()),
            _ => None,
        },
        units: status
            .units
            .iter()
            .map(|u| DigestUnit {
                unit: u.unit.clone(),
                lagging: u.lagging,
                missing_months: month_labels(&u.missing_months),
                lines: remind::lines(u, now, config.plan.year),
            })
            .collect(),
        lagging_units: status
            .units
            .iter()
            .filter(|u| u.lagging)
            .map(|u| u.unit.clone())
            .collect(),
        since: extras.since.map(show_now),
        received: Received {
            total: extras.received.len(),
            accepted: count(SubmissionStatus::Accepted) + count(SubmissionStatus::Superseded),
            rejected: count(SubmissionStatus::Rejected),
            duplicate: count(SubmissionStatus::Duplicate),
        },
        failed_mail: extras.failed_mail,
        master_name: extras
            .master
            .as_ref()
            .map(|p| file_name_of(&p.to_string_lossy())),
    };
    let (subject, body) = split("digest", None, &render(config, "digest", &ctx));
    NewMessage {
        idempotency_key: due.key.clone(),
        kind: "digest".into(),
        unit: None,
        to: config.mail.bureau.clone(),
        cc: Vec::new(),
        subject,
        body,
        attachments: extras
            .master
            .iter()
            .map(|p| {
                (
                    file_name_of(&p.to_string_lossy()),
                    p.to_string_lossy().to_string(),
                )
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::findings::Code;
    use crate::core::ids::mask_ids_in;

    fn config() -> Config {
        Config::parse(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml")),
            Path::new("tally.toml"),
            Path::new("/nonexistent-base"),
        )
        .unwrap()
    }

    fn submission(status: SubmissionStatus) -> Submission {
        Submission {
            id: 0,
            sha256: "ab".repeat(32),
            unit: "西兴街道".into(),
            month: YearMonth::parse("2020-05"),
            file_name: "2020-05.xlsx".into(),
            source_path: "/w/西兴街道/2020-05.xlsx".into(),
            archive_path: "西兴街道/2020-05/x.xlsx".into(),
            received_at: "2020-06-02T09:00:00+08:00".into(),
            status,
            duplicate_of: None,
            superseded_by: None,
            rows: 3,
            errors: 0,
            warnings: 0,
            reporter: "王芳".into(),
            phone: String::new(),
            destination: "/w/西兴街道/退回/2020-05.xlsx".into(),
            feedback_path: Some("/w/西兴街道/退回/2020-05.错误说明.xlsx".into()),
            moved: false,
        }
    }

    #[test]
    fn every_built_in_template_renders_with_a_tagged_subject() {
        let c = config();
        let id = "330108199001011234";
        let bad = Finding::new(
            Code::IdInvalid,
            "培训台账",
            "C7",
            id,
            format!("身份证号 {id} 校验位错误"),
        );
        let msgs = compose_intake(&c, &submission(SubmissionStatus::Rejected), &[bad]);
        assert_eq!(msgs.len(), 1);
        let m = &msgs[0];
        assert!(m.subject.starts_with("【退回】西兴街道"), "{}", m.subject);
        assert!(m.body.contains("培训台账!C7"), "{}", m.body);
        assert!(!m.body.contains(id), "IDs are masked: {}", m.body);
        assert!(m.body.contains("330108********1234"), "{}", m.body);
        assert_eq!(
            m.attachments,
            [(
                "2020-05.错误说明.xlsx".to_string(),
                "/w/西兴街道/退回/2020-05.错误说明.xlsx".to_string()
            )]
        );
        assert_eq!(m.to, ["xixing@example.org"]);

        let msgs = compose_intake(&c, &submission(SubmissionStatus::Accepted), &[]);
        assert!(
            msgs[0].subject.starts_with("【回执】西兴街道"),
            "{}",
            msgs[0].subject
        );
        assert!(msgs[0].body.contains(PROGRESS_MARKER));
        let s = submission(SubmissionStatus::Accepted);
        assert_eq!(
            msgs[0].idempotency_key,
            format!(
                "receipt/accepted/{}/西兴街道/{}/{}",
                "ab".repeat(32),
                s.received_at,
                s.destination
            )
        );
    }

    #[test]
    fn a_unit_mismatch_alerts_the_bureau() {
        let c = config();
        let f = Finding::new(
            Code::UnitMismatch,
            "填报信息",
            "B2",
            "长河街道",
            "填报单位与文件夹不符",
        );
        let msgs = compose_intake(&c, &submission(SubmissionStatus::Rejected), &[f]);
        let alert = msgs.iter().find(|m| m.kind == "alert").expect("alert");
        assert!(
            alert.subject.starts_with("【异常】西兴街道"),
            "{}",
            alert.subject
        );
        assert_eq!(alert.to, c.mail.bureau);
        assert!(alert.body.contains("长河街道"));
    }

    #[test]
    fn the_subject_keeps_its_tag_when_a_template_drops_it() {
        let (s, b) = split("reminder", Some("西兴\r\n街道"), "请加快进度\n\n\n\n正文\n");
        assert_eq!(s, "【催办】西兴 街道 请加快进度");
        assert_eq!(b, "正文\n");
    }

    #[test]
    fn the_bureau_s_copy_of_a_template_wins_and_a_broken_one_falls_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = config();
        c.base_dir = dir.path().to_path_buf();
        let folder = custom_dir(&c);
        std::fs::create_dir_all(&folder).unwrap();
        let due = DeadlineDue {
            month: YearMonth::parse("2020-06").unwrap(),
            deadline: chrono::NaiveDate::from_ymd_opt(2020, 7, 5).unwrap(),
            today: chrono::NaiveDate::from_ymd_opt(2020, 7, 3).unwrap(),
            days_left: 2,
        };
        let now = crate::core::calendar::parse_now("2020-07-03T10:00:00", c.plan.tz).unwrap();
        std::fs::write(
            folder.join("deadline.txt"),
            "请报送{{ month }}月报\n\n{{ unit }}：请于{{ deadline }}前报送。\n",
        )
        .unwrap();
        let m = deadline_reminder(&c, &c.plan.units[0], &due, now);
        assert_eq!(m.subject, "【未报送提醒】西兴街道 请报送2020年6月月报");
        assert_eq!(m.body, "西兴街道：请于2020年7月5日前报送。\n");
        std::fs::write(folder.join("deadline.txt"), "{% if %}broken").unwrap();
        let m = deadline_reminder(&c, &c.plan.units[0], &due, now);
        assert!(
            m.subject
                .starts_with("【未报送提醒】西兴街道 2020年6月月报"),
            "{}",
            m.subject
        );
        assert!(m.body.contains("还有 2 天"), "{}", m.body);
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

    #[test]
    fn progress_shows_this_return_and_the_status_figures() {
        let c = config();
        let now = crate::core::calendar::parse_now("2020-07-01", c.plan.tz).unwrap();
        let status = crate::core::count::status(&c.plan, now, &[], &Default::default());
        let s = progress_section(
            &c,
            &status,
            "西兴街道",
            &[("企业主要负责人".into(), 2, 1)],
            false,
        );
        assert!(s.contains("企业主要负责人：2 行，其中考核合格 1 行"), "{s}");
        assert!(
            s.contains("已完成 0 人 / 全年指标 70 人（0.0%），按序时进度应完成 34.8 人，滞后"),
            "{s}"
        );
        assert!(s.contains("2020年5月"), "{s}");
    }
}
