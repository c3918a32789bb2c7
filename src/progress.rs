//! Each unit's own progress workbook (本单位进度.xlsx) in its folder: its figures against its
//!年度指标 and 序时进度, its row of the 报送日历, every return it sent with the outcome, its
//! open findings and its counted roster — and nothing of any other unit. Rendering is a pure
//! function of (plan, the unit's records, now), every sheet set up to print on A4;
//! [`publish_all`] writes it atomically beside the unit's returns (`durable::publish`) and
//! leaves a copy the clerk holds open alone.

use crate::config::Config;
use crate::core::calendar::{self, KeptMonthText, YearMonth};
use crate::core::count::{CountedRow, Status, UnitStatus};
use crate::core::findings::{Finding, Severity};
use crate::core::ids::mask_id;
use crate::core::lateness::{Arrivals, MonthEntry, MonthState};
use crate::core::plan::Unit;
use crate::durable::{self, PublishError, Published};
use crate::excel;
use crate::ledger::{Ledger, LedgerError, Submission, SubmissionStatus};
use chrono::DateTime;
use chrono_tz::Tz;
use rust_xlsxwriter::{Format, FormatBorder, Workbook, Worksheet, XlsxError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `[progress]` in tally.toml: the unit's progress workbook.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProgressSettings {
    /// Write the workbook into each unit's folder after every burst.
    pub enabled: bool,
    /// Its file name in the unit's folder.
    pub file_name: String,
    /// 身份证号 in its roster: "masked" (330108********123X) or "full" (as the unit typed them).
    pub ids: IdDisplay,
}

impl Default for ProgressSettings {
    fn default() -> Self {
        ProgressSettings {
            enabled: true,
            file_name: "本单位进度.xlsx".into(),
            ids: IdDisplay::Masked,
        }
    }
}

impl ProgressSettings {
    /// Every value that cannot be used, with its key under `[progress]`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let name = &self.file_name;
        let plain = !name.is_empty()
            && !name.contains(['/', '\\'])
            && !name.starts_with(['.', '~'])
            && name.to_lowercase().ends_with(".xlsx");
        if plain {
            Vec::new()
        } else {
            vec![(
                "file_name",
                format!("{name:?} must be a plain file name ending in .xlsx"),
            )]
        }
    }
}

/// How 身份证号 are shown in the unit's roster.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdDisplay {
    #[default]
    Masked,
    Full,
}

/// A progress workbook that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ProgressError {
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// rust_xlsxwriter refused the workbook.
    #[error("{unit}: cannot build the progress workbook: {source}")]
    Xlsx { unit: String, source: XlsxError },
    /// A file step failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// What one unit's workbook shows.
pub struct UnitRecords<'a> {
    pub unit: &'a Unit,
    pub status: &'a UnitStatus,
    /// The twelve months of the plan year (`core::lateness`).
    pub months: &'a [MonthEntry],
    pub on_time_rate: Option<f64>,
    /// Every return the unit sent, in the order received.
    pub submissions: Vec<&'a Submission>,
    /// Open findings: (month, file, finding).
    pub findings: Vec<(String, String, Finding)>,
}

const TITLE: &str = "本单位进度";
const MONTHS_SHEET: &str = "报送日历";
const RETURNS_SHEET: &str = "报送记录";
const FINDINGS_SHEET: &str = "待改问题";
const ROSTER_SHEET: &str = "培训台账";
/// The roster is the last of the five sheets.
const ROSTER_INDEX: usize = 4;

/// One unit's workbook while its counted rows stream into the roster sheet, its last (a
/// unit's roster can hold tens of thousands of rows: never all in memory). Rendering is a pure
/// function of (plan, the unit's records, the rows, now): [`UnitBook::start`] writes every
/// sheet but the roster's rows, [`UnitBook::write`] adds a row, [`UnitBook::finish`] gives the
/// bytes.
pub struct UnitBook<'c> {
    config: &'c Config,
    book: Workbook,
    title: String,
    /// The last roster row written.
    row: u32,
    /// The last roster row's 报送月份.
    month: KeptMonthText,
}

impl<'c> UnitBook<'c> {
    /// The unit's workbook up to its roster's header.
    fn start(
        config: &'c Config,
        records: &UnitRecords<'_>,
        now: DateTime<Tz>,
    ) -> Result<UnitBook<'c>, XlsxError> {
        let plan = &config.plan;
        let s = Styles::new();
        let mut book = Workbook::new();
        book.set_zip_compression_level(crate::excel::ZIP_LEVEL);
        let title = format!("{}　{}", plan.title, records.unit.name);
        // Dated `now`, not by the wall clock: the same ledger and `now` give the same bytes, and
        // an unchanged workbook is left as it is.
        book.set_properties(&crate::master::properties(
            &format!("{title}　{TITLE}"),
            now,
        )?);

        let ws = book.add_worksheet().set_name(TITLE)?;
        ws.write_string_with_format(0, 0, &title, &s.title)?;
        ws.write_string(
            1,
            0,
            format!(
                "统计时点：{}　　本表只含本单位的数据，由 tally 自动生成，请勿修改后报送。",
                now.format("%Y-%m-%d %H:%M")
            ),
        )?;
        let headers = crate::core::count::CATEGORY_COLUMNS;
        for (c, h) in headers.iter().enumerate() {
            ws.write_string_with_format(3, c as u16, *h, &s.header)?;
        }
        for (i, c) in records.status.categories.iter().enumerate() {
            let r = 4 + i as u32;
            let rate = if c.target == 0 {
                0.0
            } else {
                c.completed as f64 / f64::from(c.target)
            };
            ws.write_string_with_format(r, 0, &c.category, &s.cell)?;
            ws.write_number_with_format(r, 1, f64::from(c.target), &s.cell)?;
            ws.write_number_with_format(r, 2, c.completed as f64, &s.cell)?;
            ws.write_number_with_format(r, 3, rate, &s.percent)?;
            ws.write_number_with_format(r, 4, c.expected, &s.decimal)?;
            let (text, fmt) = if c.lagging {
                ("滞后", &s.lagging)
            } else {
                ("正常", &s.cell)
            };
            ws.write_string_with_format(r, 5, text, fmt)?;
        }
        let width = column_widths(ws, &[18.0, 11.0, 11.0, 11.0, 11.0, 11.0])?;
        page(ws, &title, width, (3, 3))?;

        let ws = book.add_worksheet().set_name(MONTHS_SHEET)?;
        ws.write_string_with_format(0, 0, "报送月份", &s.header)?;
        ws.write_string_with_format(0, 1, "状态", &s.header)?;
        ws.write_string_with_format(0, 2, "截止日", &s.header)?;
        ws.write_string_with_format(0, 3, "收到时间", &s.header)?;
        ws.write_string_with_format(0, 4, "文件", &s.header)?;
        for (i, m) in records.months.iter().enumerate() {
            let r = 1 + i as u32;
            let Some(month) = YearMonth::parse(&m.month) else {
                continue;
            };
            ws.write_string_with_format(r, 0, month.label_zh(), &s.cell)?;
            ws.write_string_with_format(r, 1, m.state.label(m.days_late), s.state(m.state))?;
            let due = calendar::deadline_date(plan, month);
            ws.write_string_with_format(r, 2, due.format("%Y-%m-%d").to_string(), &s.cell)?;
            let received = m.received_at.as_deref().map(calendar::show_stamp);
            ws.write_string_with_format(r, 3, received.unwrap_or_default(), &s.cell)?;
            ws.write_string_with_format(r, 4, m.file.as_deref().unwrap_or(""), &s.cell)?;
        }
        let rate = records
            .on_time_rate
            .map_or_else(|| "—".to_string(), |r| format!("{:.0}%", r * 100.0));
        ws.write_string(
            14,
            0,
            format!("按时报送率：{rate}（已到截止日或已报送的月份中按时的比例）"),
        )?;
        let width = column_widths(ws, &[12.0, 12.0, 12.0, 26.0, 36.0])?;
        page(ws, &title, width, (0, 0))?;

        let ws = book.add_worksheet().set_name(RETURNS_SHEET)?;
        let headers = [
            "文件",
            "报送月份",
            "收到时间",
            "结果",
            "台账行数",
            "错误",
            "提醒",
        ];
        header_row(ws, &headers, &s)?;
        for (i, sub) in records.submissions.iter().enumerate() {
            let r = 1 + i as u32;
            ws.write_string_with_format(r, 0, &sub.file_name, &s.cell)?;
            let month = sub.month.map(|m| m.label_zh()).unwrap_or_default();
            ws.write_string_with_format(r, 1, month, &s.cell)?;
            ws.write_string_with_format(r, 2, calendar::show_stamp(&sub.received_at), &s.cell)?;
            ws.write_string_with_format(r, 3, sub.status.label_zh(), &s.cell)?;
            ws.write_number_with_format(r, 4, sub.rows as f64, &s.cell)?;
            ws.write_number_with_format(r, 5, sub.errors as f64, &s.cell)?;
            ws.write_number_with_format(r, 6, sub.warnings as f64, &s.cell)?;
        }
        let width = column_widths(ws, &[36.0, 12.0, 26.0, DEFAULT, DEFAULT, DEFAULT, DEFAULT])?;
        page(ws, &title, width, (0, 0))?;

        let ws = book.add_worksheet().set_name(FINDINGS_SHEET)?;
        let headers = ["报送月份", "文件", "级别", "位置", "代码", "说明"];
        header_row(ws, &headers, &s)?;
        for (i, (month, file, f)) in records.findings.iter().enumerate() {
            let r = 1 + i as u32;
            ws.write_string_with_format(r, 0, month, &s.cell)?;
            ws.write_string_with_format(r, 1, file, &s.cell)?;
            let fmt = if f.severity == Severity::Error {
                &s.lagging
            } else {
                &s.cell
            };
            ws.write_string_with_format(r, 2, f.severity.label(), fmt)?;
            ws.write_string_with_format(r, 3, f.location(), &s.cell)?;
            ws.write_string_with_format(r, 4, f.code.to_string(), &s.cell)?;
            ws.write_string_with_format(r, 5, &f.message, &s.wrap)?;
        }
        let width = column_widths(ws, &[DEFAULT, 30.0, DEFAULT, 16.0, 20.0, 60.0])?;
        page(ws, &title, width, (0, 0))?;

        // Streamed to a temporary file row by row: an in-memory sheet would hold every cell
        // (and shared string) of the roster until saved.
        let ws = book
            .add_worksheet_with_constant_memory()?
            .set_name(ROSTER_SHEET)?;
        let headers = [
            "报送月份",
            "姓名",
            "身份证号",
            "企业名称",
            "人员类别",
            "培训日期",
            "培训学时",
            "考核结果",
            "证书编号",
        ];
        header_row(ws, &headers, &s)?;
        Ok(UnitBook {
            config,
            book,
            title,
            row: 0,
            month: KeptMonthText::default(),
        })
    }

    /// One counted row of the unit, in ledger order, into the roster sheet. The row is only
    /// read: the same row may go on into the unit's roster workbook (`master`).
    pub fn write(&mut self, c: &CountedRow) -> Result<(), XlsxError> {
        self.row += 1;
        let r = self.row;
        let row = &c.row;
        let id = match self.config.progress.ids {
            IdDisplay::Masked => mask_id(&row.id),
            IdDisplay::Full => row.id.clone(),
        };
        let label = self.month.of(c.month, YearMonth::label_zh);
        let ws = self.book.worksheet_from_index(ROSTER_INDEX)?;
        ws.write_string(r, 0, label)?;
        ws.write_string(r, 1, &row.name)?;
        ws.write_string(r, 2, id)?;
        ws.write_string(r, 3, &row.enterprise)?;
        ws.write_string(r, 4, &row.category)?;
        ws.write_string(r, 5, crate::core::dates::iso(row.date))?;
        ws.write_number(r, 6, row.hours)?;
        ws.write_string(r, 7, if row.passed { "合格" } else { "不合格" })?;
        ws.write_string(r, 8, &row.certificate)?;
        Ok(())
    }

    /// The workbook's bytes, its roster sheet set up after its last row.
    fn finish(mut self) -> Result<Vec<u8>, XlsxError> {
        let ws = self.book.worksheet_from_index(ROSTER_INDEX)?;
        let widths = [
            DEFAULT, DEFAULT, 22.0, 30.0, 18.0, 12.0, DEFAULT, DEFAULT, DEFAULT,
        ];
        let width = column_widths(ws, &widths)?;
        page(ws, &self.title, width, (0, 0))?;
        self.book.save_to_buffer()
    }
}

/// Excel's default column width, in characters.
const DEFAULT: f64 = 8.43;

/// Set the widths of the first columns; returns their sum (the printed width).
fn column_widths(ws: &mut Worksheet, widths: &[f64]) -> Result<f64, XlsxError> {
    for (col, width) in (0u16..).zip(widths) {
        ws.set_column_width(col, *width)?;
    }
    Ok(widths.iter().sum())
}

/// Every sheet prints on A4 with the plan's title and the unit above, `repeat` on each page.
fn page(ws: &mut Worksheet, title: &str, width: f64, repeat: (u32, u32)) -> Result<(), XlsxError> {
    excel::set_up_page(
        ws,
        &excel::Page {
            title,
            width,
            repeat_rows: Some(repeat),
        },
    )
}

fn header_row(ws: &mut Worksheet, headers: &[&str], s: &Styles) -> Result<(), XlsxError> {
    for (c, h) in headers.iter().enumerate() {
        ws.write_string_with_format(0, c as u16, *h, &s.header)?;
    }
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

struct Styles {
    title: Format,
    header: Format,
    cell: Format,
    wrap: Format,
    percent: Format,
    decimal: Format,
    lagging: Format,
    states: excel::MonthStateFormats,
}

impl Styles {
    fn new() -> Styles {
        let cell = Format::new().set_border(FormatBorder::Thin);
        Styles {
            title: Format::new().set_bold().set_font_size(14),
            header: excel::header_format(Format::new()),
            wrap: cell.clone().set_text_wrap(),
            percent: cell.clone().set_num_format("0.0%"),
            decimal: cell.clone().set_num_format("0.0"),
            lagging: cell.clone().set_font_color(excel::ERROR_FONT),
            states: excel::MonthStateFormats::new(&cell),
            cell,
        }
    }

    fn state(&self, state: MonthState) -> &Format {
        self.states.of(state)
    }
}

/// The unit's open findings: every finding of the latest rejected return of a month still
/// without an accepted one, and the warnings of its counted returns.
fn open_findings(
    ledger: &Ledger,
    subs: &[&Submission],
    months: &[MonthEntry],
) -> Result<Vec<(String, String, Finding)>, LedgerError> {
    let mut out = Vec::new();
    for sub in subs {
        let month = sub.month.map(|m| m.to_string()).unwrap_or_default();
        let open_rejection = sub.status == SubmissionStatus::Rejected
            && months.iter().any(|m| {
                m.month == month
                    && m.state == MonthState::Rejected
                    && m.file.as_deref() == Some(&sub.file_name)
            });
        let counted = sub.status == SubmissionStatus::Accepted;
        if !(open_rejection || counted) {
            continue;
        }
        for f in ledger.findings(sub.id)? {
            if open_rejection || f.severity == Severity::Warning {
                let label = sub.month.map(|m| m.label_zh()).unwrap_or_default();
                out.push((label, sub.file_name.clone(), f));
            }
        }
    }
    Ok(out)
}

/// One unit's name and what became of its workbook.
pub type UnitOutcome = (String, Result<Published, ProgressError>);

/// `watch_state` key prefix of what each unit's workbook was last written from.
const PROGRESS_STAMP: &str = "progress:";

/// Write every unit's workbook into its folder; a failure for one unit is logged and the
/// others still get theirs. Unless `full`, a unit's workbook is rewritten only when its
/// submissions changed, on a new day (in the plan's time zone) or under another plan since it
/// was last written: the cost of a burst follows the units it touched, not the ledger.
pub fn publish_all(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    full: bool,
) -> Result<Vec<UnitOutcome>, LedgerError> {
    let Some(prepared) = prepare(config, ledger, now, full)? else {
        return Ok(Vec::new());
    };
    // Rendered and written on both cores, each with its own reader of the ledger.
    let results = ledger.in_parallel(prepared.due(), |reader, unit| {
        let mut pending = prepared.start(reader, unit)?;
        let read = reader.for_each_counted_row_of(Some(&unit.name), |row| {
            pending.write(&row);
            Ok(())
        });
        if let Err(e) = read {
            pending.failed(e);
        }
        Some(prepared.finish(pending))
    })?;
    prepared.record(ledger, results.into_iter().flatten().collect())
}

/// What the units' workbooks are rendered from, read from the ledger once for all of them,
/// and the units whose workbook is due ([`publish_all`] in steps: `tally rebuild` feeds each
/// unit's rows to its workbook and its roster workbook in one pass over the ledger).
pub struct Prepared<'a> {
    config: &'a Config,
    now: DateTime<Tz>,
    /// What the stamps were made under besides the unit's submissions.
    made_under: String,
    stamps: BTreeMap<String, String>,
    due: Vec<&'a Unit>,
    status: Status,
    arrivals: BTreeMap<String, BTreeMap<YearMonth, Arrivals>>,
    submissions: Vec<Submission>,
}

/// One unit's workbook while its rows stream in, or why it cannot be written.
pub struct Pending<'a> {
    unit: &'a Unit,
    book: Result<UnitBook<'a>, ProgressError>,
}

impl Pending<'_> {
    /// One counted row of the unit, in ledger order (the first refusal is kept; later rows are
    /// ignored).
    pub fn write(&mut self, row: &CountedRow) {
        if let Ok(book) = &mut self.book
            && let Err(source) = book.write(row)
        {
            self.book = Err(ProgressError::Xlsx {
                unit: self.unit.name.clone(),
                source,
            });
        }
    }

    /// The unit's rows could not be read: its workbook is not written.
    pub fn failed(&mut self, e: LedgerError) {
        if self.book.is_ok() {
            self.book = Err(ProgressError::Ledger(e));
        }
    }
}

/// The units whose workbook is due and what they are rendered from; `None` when the
/// workbooks are off or none is due. Unless `full`, only units whose submissions, day or plan
/// changed since their workbook was last written, or whose workbook is gone, are due.
pub fn prepare<'a>(
    config: &'a Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    full: bool,
) -> Result<Option<Prepared<'a>>, LedgerError> {
    if !config.progress.enabled {
        return Ok(None);
    }
    let plan = &config.plan;
    let now = now.with_timezone(&plan.tz);
    let stamps = ledger.submission_stamps()?;
    let made_under = format!(
        "{};{};{:?};{}",
        now.format("%Y-%m-%d"),
        crate::core::count::tally_fingerprint(plan),
        config.progress.ids,
        config.progress.file_name
    );
    let due: Vec<&Unit> = plan
        .units
        .iter()
        .filter(|u| {
            full || ledger
                .state_value(&format!("{PROGRESS_STAMP}{}", u.name))
                .ok()
                .flatten()
                != Some(format!(
                    "{};{made_under}",
                    stamps.get(&u.name).map(String::as_str).unwrap_or("")
                ))
                || !config
                    .unit_dir(u)
                    .join(&config.progress.file_name)
                    .is_file()
        })
        .collect();
    if due.is_empty() {
        return Ok(None);
    }
    let accepted = ledger.accepted_months()?;
    let status = crate::core::count::status_from(plan, now, &ledger.completed(plan)?, &accepted);
    Ok(Some(Prepared {
        config,
        now,
        made_under,
        stamps,
        due,
        status,
        arrivals: ledger.arrivals(plan.tz)?,
        submissions: ledger.submissions()?,
    }))
}

impl<'a> Prepared<'a> {
    /// The units whose workbook is due, in the plan's order.
    pub fn due(&self) -> &[&'a Unit] {
        &self.due
    }

    /// Start `unit`'s workbook (its open findings read through `reader`): every sheet but its
    /// roster's rows. `None` when its workbook is not due or it has no figures.
    pub fn start(&self, reader: &Ledger, unit: &Unit) -> Option<Pending<'a>> {
        let unit = *self.due.iter().find(|u| u.name == unit.name)?;
        let config = self.config;
        let unit_status = self.status.units.iter().find(|u| u.unit == unit.name)?;
        let months = crate::core::lateness::unit_months(
            &config.plan,
            self.now,
            self.arrivals.get(&unit.name).unwrap_or(&Default::default()),
        );
        let subs: Vec<&Submission> = self
            .submissions
            .iter()
            .filter(|s| s.unit == unit.name)
            .collect();
        let book = open_findings(reader, &subs, &months)
            .map_err(ProgressError::from)
            .and_then(|findings| {
                let records = UnitRecords {
                    unit,
                    status: unit_status,
                    on_time_rate: crate::core::lateness::on_time_rate(&months),
                    months: &months,
                    submissions: subs,
                    findings,
                };
                UnitBook::start(config, &records, self.now).map_err(|source| ProgressError::Xlsx {
                    unit: unit.name.clone(),
                    source,
                })
            });
        Some(Pending { unit, book })
    }

    /// Put the unit's workbook in place, after its last row.
    pub fn finish(&self, pending: Pending<'_>) -> UnitOutcome {
        let Pending { unit, book } = pending;
        let result = book.and_then(|book| {
            let bytes = book.finish().map_err(|source| ProgressError::Xlsx {
                unit: unit.name.clone(),
                source,
            })?;
            let target = self
                .config
                .unit_dir(unit)
                .join(&self.config.progress.file_name);
            Ok(durable::publish(&target, &bytes)?)
        });
        (unit.name.clone(), result)
    }

    /// Log what became of each unit's workbook and stamp those in place, so that the next run
    /// leaves them be until their unit, the day or the plan changes.
    pub fn record(
        &self,
        ledger: &Ledger,
        outcomes: Vec<UnitOutcome>,
    ) -> Result<Vec<UnitOutcome>, LedgerError> {
        for (unit, result) in &outcomes {
            match result {
                Ok(Published::Written(path)) => {
                    tracing::debug!(unit = %unit, path = %path.display(), "progress workbook written")
                }
                Ok(Published::Unchanged(_)) => {}
                Ok(Published::Kept(path)) => {
                    tracing::info!(unit = %unit, path = %path.display(), "progress workbook held open; left as it is");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(unit = %unit, error = %e, "progress workbook not written");
                    continue;
                }
            }
            ledger.set_state_value(
                &format!("{PROGRESS_STAMP}{unit}"),
                &format!(
                    "{};{}",
                    self.stamps.get(unit).map(String::as_str).unwrap_or(""),
                    self.made_under
                ),
            )?;
        }
        Ok(outcomes)
    }
}
