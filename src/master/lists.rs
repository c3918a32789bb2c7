//! The list sheets 报送记录 (every submission) and 问题清单 (every finding, and the persons
//! reported more than once), and what every list sheet shares — the roster's too: a header row
//! frozen and repeated on each page, columns that wrap, rows tall enough for their text. Text
//! from returns is written as text, never as a formula.

use super::FINDINGS_SHEET;
use super::styles::{Styles, lines_in, print_setup};
use crate::config::Config;
use crate::core::count::Double;
use crate::core::findings::{Code, Finding, Severity};
use crate::core::form::{self, COVER_MONTH, COVER_PHONE, COVER_REPORTER};
use crate::core::ids::{mask_id, mask_ids_in};
use crate::excel;
use crate::ledger::{Submission, SubmissionStatus};
use chrono::DateTime;
use rust_xlsxwriter::{ExcelDateTime, Format, Worksheet, XlsxError};
use std::collections::HashMap;
use std::path::Path;

/// A column of a list sheet: header, width in characters, and whether long text wraps.
pub struct Col {
    label: &'static str,
    width: f64,
    wrap: bool,
}

pub const fn col(label: &'static str, width: f64, wrap: bool) -> Col {
    Col { label, width, wrap }
}

/// The header row of a list sheet: labels, widths, frozen, repeated on every printed page.
pub fn list_header(
    ws: &mut Worksheet,
    config: &Config,
    columns: &[Col],
    s: &Styles,
) -> Result<(), XlsxError> {
    list_widths(ws, columns)?;
    list_labels(ws, config, columns, s)
}

/// The columns' widths. A streamed sheet sets them after its last row: set before, they have
/// rust_xlsxwriter look the column up for every cell written (the file is the same).
pub fn list_widths(ws: &mut Worksheet, columns: &[Col]) -> Result<(), XlsxError> {
    for (c, column) in columns.iter().enumerate() {
        ws.set_column_width(c as u16, column.width)?;
    }
    Ok(())
}

/// [`list_header`] but the columns' widths ([`list_widths`]).
pub fn list_labels(
    ws: &mut Worksheet,
    config: &Config,
    columns: &[Col],
    s: &Styles,
) -> Result<(), XlsxError> {
    for (c, column) in columns.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, column.label, &s.header)?;
    }
    ws.set_row_height(0, 30)?;
    let width = columns.iter().map(|c| c.width).sum();
    print_setup(ws, config, (0, 0), width)?;
    ws.set_print_gridlines(true);
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// Write one list row: text (wrapped where its column wraps), numbers, dates; then make the
/// row tall enough for its wrapped text, since not every spreadsheet program fits it on load.
fn list_row(
    ws: &mut Worksheet,
    row: u32,
    columns: &[Col],
    cells: &[Cell<'_>],
    s: &Styles,
) -> Result<(), XlsxError> {
    let mut lines = 1;
    for (c, cell) in cells.iter().enumerate() {
        let col = c as u16;
        let wrap = columns.get(c).filter(|k| k.wrap);
        match cell {
            Cell::Text(t, format) => {
                if let Some(k) = wrap {
                    let t = excel::write_text(ws, row, col, t, Some(format.unwrap_or(&s.wrap)))?;
                    lines = lines.max(lines_in(t, k.width));
                } else {
                    excel::write_text(ws, row, col, t, *format)?;
                }
            }
            Cell::Number(n) => {
                ws.write_number(row, col, *n)?;
            }
            Cell::Date(d, format) => {
                ws.write_datetime_with_format(row, col, d, format)?;
            }
        }
    }
    if lines > 1 {
        ws.set_row_height(row, 13.5 * lines.min(30) as f64 + 1.5)?;
    }
    Ok(())
}

enum Cell<'a> {
    Text(&'a str, Option<&'a Format>),
    Number(f64),
    Date(ExcelDateTime, &'a Format),
}

fn t(s: &str) -> Cell<'_> {
    Cell::Text(s, None)
}

/// A path under the config's folder, shown relative to it.
fn shown_path(config: &Config, p: &str) -> String {
    Path::new(p)
        .strip_prefix(&config.base_dir)
        .map(|r| r.display().to_string())
        .unwrap_or_else(|_| p.to_string())
}

const SUBMISSION_COLUMNS: [Col; 15] = [
    col("编号", 5.0, false),
    col("单位", 10.0, false),
    col(COVER_MONTH, 8.0, false),
    col("文件名", 18.0, true),
    col("接收时间", 15.0, false),
    col("状态", 8.0, false),
    col("行数", 6.0, false),
    col("错误", 5.0, false),
    col("提醒", 5.0, false),
    col(COVER_REPORTER, 8.0, false),
    col(COVER_PHONE, 13.0, false),
    col("说明", 22.0, true),
    col("存放位置", 22.0, true),
    col("归档副本", 24.0, true),
    col("SHA-256", 33.0, true),
];

/// The 报送记录 sheet: one row per submission, newest last, with what became of it.
pub fn write_submissions(
    ws: &mut Worksheet,
    config: &Config,
    subs: &[Submission],
    s: &Styles,
) -> Result<(), XlsxError> {
    list_header(ws, config, &SUBMISSION_COLUMNS, s)?;
    let archive = config.paths.archive.display().to_string();
    for (i, sub) in subs.iter().enumerate() {
        let row = i as u32 + 1;
        let month = sub.month.map(|m| m.to_string()).unwrap_or_default();
        let received = DateTime::parse_from_rfc3339(&sub.received_at)
            .ok()
            .and_then(|t| excel::datetime(t.with_timezone(&config.plan.tz).naive_local()));
        let status_format = match sub.status {
            SubmissionStatus::Accepted => None,
            SubmissionStatus::Rejected => Some(&s.red_text),
            SubmissionStatus::Duplicate | SubmissionStatus::Superseded => Some(&s.grey_text),
        };
        let remark = match sub.status {
            SubmissionStatus::Accepted if sub.rows == 0 => "零报告".to_string(),
            SubmissionStatus::Accepted => String::new(),
            SubmissionStatus::Rejected => format!(
                "有 {} 个错误，已退回，未计入；详见“{FINDINGS_SHEET}”",
                sub.errors
            ),
            SubmissionStatus::Duplicate => match sub.duplicate_of {
                Some(id) => format!("与编号 {id} 的文件内容相同，未重复计入"),
                None => "与此前收到的文件内容相同，未重复计入".to_string(),
            },
            SubmissionStatus::Superseded => match sub.superseded_by {
                Some(id) => format!("已被编号 {id} 的同月报表替代，不再计入"),
                None => "已被同月的新报表替代，不再计入".to_string(),
            },
        };
        let destination = shown_path(config, &sub.destination);
        let archived = if sub.archive_path.is_empty() {
            String::new()
        } else {
            format!("{archive}/{}", sub.archive_path)
        };
        let cells = [
            Cell::Number(sub.id as f64),
            t(&sub.unit),
            t(&month),
            t(&sub.file_name),
            match received {
                Some(d) => Cell::Date(d, &s.datetime),
                None => t(&sub.received_at),
            },
            Cell::Text(sub.status.label_zh(), status_format),
            Cell::Number(sub.rows as f64),
            Cell::Number(sub.errors as f64),
            Cell::Number(sub.warnings as f64),
            t(&sub.reporter),
            t(&sub.phone),
            t(&remark),
            t(&destination),
            t(&archived),
            t(&sub.sha256),
        ];
        list_row(ws, row, &SUBMISSION_COLUMNS, &cells, s)?;
    }
    ws.autofilter(0, 0, subs.len() as u32, SUBMISSION_COLUMNS.len() as u16 - 1)?;
    Ok(())
}

const FINDING_COLUMNS: [Col; 12] = [
    col("序号", 5.0, false),
    col("单位", 10.0, true),
    col(COVER_MONTH, 8.0, true),
    col("报送编号", 6.0, true),
    col("文件名", 16.0, true),
    col("报表状态", 8.0, false),
    col("级别", 5.0, false),
    col("问题代码", 17.0, false),
    col("工作表", 9.0, false),
    col("单元格", 7.0, false),
    col("填写内容", 20.0, true),
    col("说明", 62.0, true),
];

/// The 问题清单 sheet: every finding of every return, then every person reported twice.
pub fn write_findings(
    ws: &mut Worksheet,
    config: &Config,
    subs: &[Submission],
    findings: &[(i64, Finding)],
    doubles: &[Double],
    s: &Styles,
) -> Result<(), XlsxError> {
    list_header(ws, config, &FINDING_COLUMNS, s)?;
    let by_id: HashMap<i64, &Submission> = subs.iter().map(|s| (s.id, s)).collect();
    let masked = |t: &str| {
        if config.plan.mask_ids {
            mask_ids_in(t)
        } else {
            t.to_string()
        }
    };
    let mut row = 1;
    for (sub_id, f) in findings {
        let sub = by_id.get(sub_id);
        let month = sub
            .and_then(|s| s.month)
            .map(|m| m.to_string())
            .unwrap_or_default();
        let level = if f.severity == Severity::Error {
            Some(&s.red_text)
        } else {
            None
        };
        let (value, message) = (masked(&f.value), masked(&f.message));
        let id = sub_id.to_string();
        let cells = [
            Cell::Number(f64::from(row)),
            t(sub.map_or("", |s| s.unit.as_str())),
            t(&month),
            t(&id),
            t(sub.map_or("", |s| s.file_name.as_str())),
            t(sub.map_or("", |s| s.status.label_zh())),
            Cell::Text(f.severity.label(), level),
            t(f.code.as_str()),
            t(&f.sheet),
            t(&f.cell),
            t(&value),
            t(&message),
        ];
        list_row(ws, row, &FINDING_COLUMNS, &cells, s)?;
        row += 1;
    }
    for d in doubles {
        let id = if config.plan.mask_ids {
            mask_id(&d.id)
        } else {
            d.id.clone()
        };
        let mut units: Vec<&str> = Vec::new();
        let mut months: Vec<String> = Vec::new();
        let mut ids: Vec<String> = Vec::new();
        let mut files: Vec<&str> = Vec::new();
        for e in &d.reports {
            if !units.contains(&e.unit.as_str()) {
                units.push(&e.unit);
            }
            if !months.contains(&e.month.to_string()) {
                months.push(e.month.to_string());
            }
            if !ids.contains(&e.submission.to_string()) {
                ids.push(e.submission.to_string());
                files.push(
                    by_id
                        .get(&e.submission)
                        .map_or("", |s| s.file_name.as_str()),
                );
            }
        }
        let list: Vec<String> = d
            .reports
            .iter()
            .map(|e| {
                format!(
                    "{}{}报表（编号 {}，第 {} 行，{}）",
                    e.unit,
                    e.month.label_zh(),
                    e.submission,
                    e.line,
                    e.category
                )
            })
            .collect();
        let message = if d.across_units {
            format!(
                "{}（身份证号 {id}）被 {} 个单位重复报送：{}。同一人应只由其所属单位报送，请核实后由其他单位在下次报表中删除。",
                d.name,
                units.len(),
                list.join("；")
            )
        } else {
            format!(
                "{}（身份证号 {id}）被{}在 {} 份报表中报送为同一类别：{}。按人数统计时只计一次，请核实是否重复录入。",
                d.name,
                units.join("、"),
                ids.len(),
                list.join("；")
            )
        };
        let (units, months, ids, files) = (
            units.join("、"),
            months.join("、"),
            ids.join("、"),
            files.join("；"),
        );
        let cells = [
            Cell::Number(f64::from(row)),
            t(&units),
            t(&months),
            t(&ids),
            t(&files),
            t(SubmissionStatus::Accepted.label_zh()),
            t(Severity::Warning.label()),
            t(Code::DoubleReported.as_str()),
            t(form::ROSTER_SHEET),
            t(""),
            t(&id),
            t(&message),
        ];
        list_row(ws, row, &FINDING_COLUMNS, &cells, s)?;
        row += 1;
    }
    ws.autofilter(0, 0, row - 1, FINDING_COLUMNS.len() as u16 - 1)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 问题清单 masks IDs inside the free text of findings, not only in the ID column.
    #[test]
    fn free_text_is_masked() {
        assert_eq!(
            mask_ids_in("第 3 行身份证号 33010819800101001X 有误，电话 057187654321"),
            "第 3 行身份证号 330108********001X 有误，电话 057187654321"
        );
        assert_eq!(mask_ids_in("330108198001010"), "330108*****1010");
        assert_eq!(mask_ids_in("值 12"), "值 12");
    }
}
