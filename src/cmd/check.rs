//! `tally check FILE`: read (sandboxed) and validate one return; print the findings as a
//! table or as the JSON of DESIGN.md §4. Writes nothing anywhere.

use crate::core::findings::{Finding, Severity};
use crate::core::returns::{self, Context, Return};
use crate::read::{Limits, Reading};
use crate::settings::{ExitStatus, Settings};
use clap::Args;
use serde::Serialize;
use std::path::Path;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The return (.xlsx, .xlsm, .xls, .ods).
    pub file: PathBuf,
    /// The unit whose folder the return belongs to (default: the unit folder it sits in).
    #[arg(long, value_name = "U")]
    pub unit: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The `check --json` object (DESIGN.md §4).
#[derive(Debug, Serialize)]
pub struct CheckReport<'a> {
    pub file: String,
    pub unit: Option<String>,
    pub month: Option<String>,
    pub accepted: bool,
    pub rows: usize,
    pub findings: &'a [Finding],
}

/// A read of `file` started before the plan is loaded, under the plan file's `[limits]`
/// read on their own ([`check_file`] takes it when they are the plan's). None: no such file.
pub fn start_reading(config_path: &Path, file: &Path) -> Option<(Limits, Reading)> {
    if !file.is_file() {
        return None;
    }
    let limits = crate::config::Config::reader_limits(config_path);
    let exe = std::env::current_exe().unwrap_or_else(|_| "tally".into());
    let reading = Reading::start(&exe, Some(config_path), file, &limits);
    Some((limits, reading))
}

/// Read and check one file as the daemon would, for a given folder unit; `early`, a read of
/// it started already ([`start_reading`]).
pub fn check_file(
    settings: &Settings,
    file: &Path,
    unit: Option<&crate::core::plan::Unit>,
    early: Option<(Limits, Reading)>,
) -> Return {
    let limits = &settings.config.limits;
    let read = match early {
        Some((early_limits, reading)) if early_limits == *limits => reading.finish().result,
        _ => {
            let exe = std::env::current_exe().unwrap_or_else(|_| "tally".into());
            crate::read::read_sandboxed(&exe, Some(&settings.config_path), file, limits)
        }
    };
    match read {
        Ok(wb) => {
            let ret = returns::check(
                &wb,
                &Context {
                    plan: &settings.config.plan,
                    unit,
                    now: settings.now,
                    max_rows: settings.config.limits.max_rows,
                },
            );
            // `check` ends after its report: the cells need not be freed one by one.
            std::mem::forget(wb);
            ret
        }
        Err(finding) => Return {
            findings: vec![finding],
            ..Return::default()
        },
    }
}

pub fn run(
    settings: &Settings,
    args: &CheckArgs,
    early: Option<(Limits, Reading)>,
) -> anyhow::Result<ExitStatus> {
    let unit = match &args.unit {
        Some(u) => Some(settings.unit_arg(u)?),
        None => settings.unit_of_folder(&args.file),
    };
    if !args.file.is_file() {
        return Err(
            crate::settings::UsageError(format!("{}：文件不存在", args.file.display())).into(),
        );
    }
    let ret = check_file(settings, &args.file, unit, early);
    let accepted = ret.accepted();
    let report = CheckReport {
        file: args.file.display().to_string(),
        unit: unit.map(|u| u.name.clone()).or_else(|| ret.unit.clone()),
        month: ret.month.map(|m| m.to_string()),
        accepted,
        rows: ret.row_count,
        findings: &ret.findings,
    };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", render_text(&report));
    }
    // As the cells above: the command ends here.
    std::mem::forget(ret);
    Ok(if accepted {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}

/// The human-readable report: a verdict line, then one line per finding.
pub fn render_text(report: &CheckReport<'_>) -> String {
    let errors = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    let warnings = report.findings.len() - errors;
    let mut out = format!(
        "{}：{} — 台账 {} 行，单位 {}，月份 {}；错误 {} 处，警告 {} 处\n",
        report.file,
        if report.accepted {
            "可以接收"
        } else {
            "将被退回"
        },
        report.rows,
        report.unit.as_deref().unwrap_or("?"),
        report.month.as_deref().unwrap_or("?"),
        errors,
        warnings,
    );
    if !report.findings.is_empty() {
        let rows: Vec<Vec<String>> = report
            .findings
            .iter()
            .map(|f| {
                vec![
                    f.severity.label().to_string(),
                    f.location(),
                    f.code.to_string(),
                    shorten(&f.value, 24),
                    f.message.clone(),
                ]
            })
            .collect();
        out.push('\n');
        out.push_str(&crate::cmd::table::render(
            &["级别", "位置", "代码", "内容", "说明"],
            &rows,
        ));
    }
    out
}

fn shorten(s: &str, max: usize) -> String {
    let s = s.replace(['\n', '\r'], " ");
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max - 1).collect();
        t.push('…');
        t
    }
}
