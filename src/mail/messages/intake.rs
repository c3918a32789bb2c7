//! The messages an intake stores with its submission, in the same ledger transaction: the
//! 回执 (receipt; its progress figures are filled in by the sender once the return counts),
//! the 退回 notice with every finding and the feedback workbook, and the 异常 alert to the
//! bureau when a return names another unit than its folder. Words only: nothing is stored or
//! sent here. It reads the ledger intake hands it, for a duplicate's original and for a month
//! already reported.

use super::{
    FindingView, PROGRESS_MARKER, collapse_blank_lines, file_name_of, finding_view, masked,
    month_label, month_labels, render, sender, show_now, show_time, split,
};
use crate::config::Config;
use crate::core::calendar::YearMonth;
use crate::core::count::Status;
use crate::core::findings::{Code, Finding};
use crate::core::plan::Unit;
use crate::core::remind::{self, Line};
use crate::ledger::{Ledger, NewMessage, Submission, SubmissionStatus};
use chrono::DateTime;
use serde::Serialize;

/// The composer intake calls with each provisional submission (id 0): receipt, rejection
/// notice, unit-mismatch alert.
pub fn composer(
    config: &Config,
) -> impl Fn(&Ledger, &Submission, &[Finding]) -> Vec<NewMessage> + '_ {
    move |ledger, s, findings| compose_intake(config, ledger, s, findings)
}

/// An earlier submission, looked up (read only) for the notice about a duplicate.
struct Earlier {
    received_at: String,
    feedback_path: Option<String>,
}

fn earlier(ledger: &Ledger, id: i64) -> Option<Earlier> {
    let s = ledger.submission(id).ok()??;
    Some(Earlier {
        received_at: s.received_at,
        feedback_path: s.feedback_path,
    })
}

/// Whether the unit already has an accepted return for this month (this one will replace it).
fn supersedes(ledger: &Ledger, unit: &str, month: Option<YearMonth>) -> bool {
    let Some(month) = month else { return false };
    ledger.has_accepted_month(unit, month).unwrap_or(false)
}

/// The idempotency key of a message about one intake:
/// `{kind}/{status}/{sha256}/{unit}/{received_at}/{destination}` (the sender, mail/outbox.rs,
/// reads receipts' keys back to find their submission). One message per intake: the same
/// bytes may come again (after a newer return replaced them, or rejected and sent again), each
/// time with its own arrival and destination.
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
pub fn compose_intake(
    config: &Config,
    ledger: &Ledger,
    s: &Submission,
    findings: &[Finding],
) -> Vec<NewMessage> {
    let mut out = Vec::new();
    let Some(unit) = config.plan.units.iter().find(|u| u.name == s.unit) else {
        return out;
    };
    match s.status {
        SubmissionStatus::Accepted => {
            let superseding = supersedes(ledger, &unit.name, s.month);
            out.extend(receipt(config, unit, s, findings, None, superseding))
        }
        SubmissionStatus::Rejected => out.extend(rejection(config, unit, s, findings, None)),
        SubmissionStatus::Duplicate => {
            // Intake records duplicates only of bytes that count now (rejected bytes are
            // checked again), so a duplicate always gets an "already counted" receipt.
            let original = s.duplicate_of.and_then(|id| earlier(ledger, id));
            out.extend(receipt(config, unit, s, &[], original.as_ref(), false))
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
    superseding: bool,
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
        superseding: !duplicate && superseding,
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
    Some(super::bureau_alert(
        config,
        format!("alert/unit-mismatch/{}/{}", s.sha256, unit.name),
        Some(&unit.name),
        "alert",
        &ctx,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::fixtures::config_in;
    use std::path::Path;

    fn config() -> Config {
        config_in(Path::new("/nonexistent-base"))
    }

    /// An empty ledger (a temporary file, removed when the test ends).
    fn ledger() -> Ledger {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("tally.db")).unwrap();
        std::mem::forget(dir);
        ledger
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
        let msgs = compose_intake(
            &c,
            &ledger(),
            &submission(SubmissionStatus::Rejected),
            &[bad],
        );
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

        let msgs = compose_intake(&c, &ledger(), &submission(SubmissionStatus::Accepted), &[]);
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
        let msgs = compose_intake(&c, &ledger(), &submission(SubmissionStatus::Rejected), &[f]);
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
            s.contains("已完成 0 人 / 年度指标 70 人（0.0%），按序时进度应完成 34.8 人，滞后"),
            "{s}"
        );
        assert!(s.contains("2020年5月"), "{s}");
    }
}
