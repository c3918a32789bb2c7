//! The master assessment workbook (issue 4): one .xlsx built from the ledger as a pure function
//! of (config, ledger, now) — the plan's table with live formulas, monthly progress, the
//! submissions, every finding and the streamed roster — and its durable replacement on disk.
//! Rendering never reads the wall clock and never edits a workbook; only `rebuild` touches files.
//!
//! Here: the entry points and the order of the sheets. Each sheet has its file (`completion`,
//! `calendar`, `monthly`, `lists`, `roster`), `styles` holds the formats they share, `publish` puts the
//! rendered bytes in place; the counting is `core::count`'s. Nothing here counts or writes a
//! cell itself.

mod calendar;
mod completion;
mod lists;
mod monthly;
mod publish;
mod roster;
pub mod settings;
mod styles;

pub use publish::{ARCHIVE_SUBDIR, Beside, ROSTER_DIR, Rebuilt, rebuild, rebuild_full};

use crate::config::Config;
use crate::core::count::{self, CountedRow};
use crate::excel;
use crate::ledger::{Ledger, LedgerError};
use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use indicatif::ProgressBar;
use rust_xlsxwriter::{DocProperties, ExcelDateTime, Workbook, XlsxError};
use settings::RosterMode;
use std::io::Write;
use std::path::PathBuf;
use styles::Styles;

/// 考核指标完成情况: each unit's completed figures against its targets, the master's first
/// sheet (not the return's 汇总, `form::RETURN_SUMMARY_SHEET`).
pub const COMPLETION_SHEET: &str = "考核指标完成情况";
/// 报送日历: who reported each month, on time, late or not at all.
pub const CALENDAR_SHEET: &str = "报送日历";
/// 月度进度: cumulative completed and rates month by month.
pub const MONTHLY_SHEET: &str = "月度进度";
/// 报送记录: every submission received.
pub const SUBMISSIONS_SHEET: &str = "报送记录";
/// 问题清单: every finding, and the persons reported more than once.
pub const FINDINGS_SHEET: &str = "问题清单";
/// The first roster sheet, named as the returns' roster (`form::ROSTER_SHEET`) whose rows it
/// gathers; the next ones are `培训台账(2)`, `培训台账(3)`, ….
pub const ROSTER_SHEET: &str = crate::core::form::ROSTER_SHEET;

/// Why the master could not be built or written.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// rust_xlsxwriter refused the workbook: an Excel limit (31-character sheet names,
    /// 32,767-character cells, 1,048,576 rows) or its temporary files for streamed sheets.
    #[error("cannot build the master workbook: {0}")]
    Xlsx(#[from] XlsxError),
    /// A file or folder of the master could not be written.
    #[error("{path}: {what}: {source}")]
    Io {
        path: PathBuf,
        what: &'static str,
        source: std::io::Error,
    },
    /// `RenderOptions::rows_per_sheet` outside 2..=1,048,576 (a header row and at least one
    /// data row, at most Excel's sheet).
    #[error("rows per roster sheet must be within 2..={max}, found {0}", max = excel::MAX_ROWS)]
    RowsPerSheet(u32),
}

/// Knobs of rendering that only tests and benchmarks turn.
#[derive(Debug, Clone, Copy)]
pub struct RenderOptions {
    /// Rows of one roster sheet, its header row included (Excel: 1,048,576).
    pub rows_per_sheet: u32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            rows_per_sheet: excel::MAX_ROWS,
        }
    }
}

/// The master as .xlsx bytes: a pure function of (config, ledger, now).
pub fn render(config: &Config, ledger: &Ledger, now: DateTime<Tz>) -> Result<Vec<u8>, MasterError> {
    render_with(config, ledger, now, &RenderOptions::default())
}

/// `render` with explicit options (a small roster sheet, to test the split).
pub fn render_with(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    options: &RenderOptions,
) -> Result<Vec<u8>, MasterError> {
    let mut buf = Vec::new();
    render_to(config, ledger, now, options, &mut buf)?;
    Ok(buf)
}

/// Render the master into `out`. The figures come from the ledger's kept tallies; the roster
/// (when `[master] roster` puts it here) and findings rows stream from the ledger through
/// constant-memory worksheets.
pub fn render_to<W: Write + Send>(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    options: &RenderOptions,
    out: W,
) -> Result<(), MasterError> {
    render_with_bar(config, ledger, now, options, out, &ProgressBar::hidden())
}

/// [`render_to`], advancing `bar` by each roster row written.
fn render_with_bar<W: Write + Send>(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    options: &RenderOptions,
    out: W,
    bar: &ProgressBar,
) -> Result<(), MasterError> {
    if !(2..=excel::MAX_ROWS).contains(&options.rows_per_sheet) {
        return Err(MasterError::RowsPerSheet(options.rows_per_sheet));
    }
    let now = now.with_timezone(&config.plan.tz);
    let styles = Styles::new();
    let mut book = new_book(&format!("{}{COMPLETION_SHEET}", config.plan.title), now)?;

    // Sheets in their final order; the roster sheets are added as its rows stream.
    book.add_worksheet().set_name(COMPLETION_SHEET)?;
    book.add_worksheet().set_name(CALENDAR_SHEET)?;
    book.add_worksheet().set_name(MONTHLY_SHEET)?;
    book.add_worksheet().set_name(SUBMISSIONS_SHEET)?;
    book.add_worksheet_with_constant_memory()?
        .set_name(FINDINGS_SHEET)?;
    const COMPLETION: usize = 0;
    const CALENDAR: usize = 1;
    const MONTHLY: usize = 2;
    const SUBMISSIONS: usize = 3;
    const FINDINGS: usize = 4;

    let submissions = ledger.submissions()?;
    let mode = config.master.roster.resolve(ledger.counted_total()?);
    if mode == RosterMode::Inline {
        let at = (options.rows_per_sheet, FINDINGS + 1);
        stream_roster(&mut book, config, ledger, None, at, &styles, bar)?;
    }

    // Counted from the kept tallies: the cost follows the plan's size, not the ledger's.
    let figures = ledger.figures(&config.plan)?;
    let accepted = ledger.accepted_months()?;
    let status = count::status_from(&config.plan, now, &figures.completed, &accepted);
    let findings = ledger.all_findings()?;

    completion::write(
        book.worksheet_from_index(COMPLETION)?,
        config,
        now,
        &status,
        &styles,
    )?;
    calendar::write(
        book.worksheet_from_index(CALENDAR)?,
        config,
        now,
        &ledger.arrivals(config.plan.tz)?,
        &styles,
    )?;
    monthly::write(
        book.worksheet_from_index(MONTHLY)?,
        config,
        now,
        &figures,
        &styles,
    )?;
    lists::write_submissions(
        book.worksheet_from_index(SUBMISSIONS)?,
        config,
        &submissions,
        &styles,
    )?;
    lists::write_findings(
        book.worksheet_from_index(FINDINGS)?,
        config,
        &submissions,
        &findings,
        &figures.doubles,
        &styles,
    )?;
    book.save_to_writer(out)?;
    Ok(())
}

/// The workbook's properties, dated `now` (never the wall clock: the same ledger and `now`
/// give the same bytes). Also each unit's 本单位进度.xlsx's.
pub(crate) fn properties(title: &str, now: DateTime<Tz>) -> Result<DocProperties, XlsxError> {
    let utc = now.naive_utc();
    let created = ExcelDateTime::from_ymd(
        u16::try_from(utc.year()).unwrap_or(2000),
        utc.month() as u8,
        utc.day() as u8,
    )?
    .and_hms(utc.hour() as u16, utc.minute() as u8, utc.second())?;
    Ok(DocProperties::new()
        .set_title(title)
        .set_subject(format!("截至{}", styles::date_zh(now)))
        .set_author("tally")
        .set_comment("由 tally 根据台账自动生成，可随时用 tally rebuild 重新生成；请勿手工修改。")
        .set_creation_datetime(&created))
}

/// One unit's counted roster as a workbook of its own (`[master] roster = "per-unit"`): the
/// master's 培训台账 columns, that unit's rows only, written as they stream from the ledger.
struct UnitRoster<'c> {
    config: &'c Config,
    book: Workbook,
    roster: roster::Roster,
    styles: Styles,
}

impl<'c> UnitRoster<'c> {
    /// The workbook and its first roster sheet, headed.
    fn start(config: &'c Config, unit: &str, now: DateTime<Tz>) -> Result<Self, MasterError> {
        let now = now.with_timezone(&config.plan.tz);
        let styles = Styles::new();
        let mut book = new_book(&format!("{}{unit}{ROSTER_SHEET}", config.plan.title), now)?;
        let roster = roster::Roster::start(&mut book, config, excel::MAX_ROWS, 0, &styles)?;
        Ok(UnitRoster {
            config,
            book,
            roster,
            styles,
        })
    }

    /// One counted row of the unit, in ledger order, and whether it counts.
    fn write(&mut self, r: CountedRow) -> Result<(), XlsxError> {
        let e = count::eligibility(&self.config.plan, &r.row);
        self.roster
            .write(&mut self.book, self.config, r, e, &self.styles)
    }

    /// The workbook's bytes, after its last row.
    fn finish(mut self) -> Result<Vec<u8>, MasterError> {
        self.roster.finish(&mut self.book)?;
        Ok(self.book.save_to_buffer()?)
    }
}

/// A workbook with the house zip level, default format and properties (`title`, as of `now`).
fn new_book(title: &str, now: DateTime<Tz>) -> Result<Workbook, MasterError> {
    let mut book = Workbook::new();
    book.set_zip_compression_level(crate::excel::ZIP_LEVEL);
    styles::set_default_format(&mut book)?;
    book.set_properties(&properties(title, now)?);
    Ok(book)
}

/// Stream the counted rows (of `unit`, or all) into roster sheets of `book`: at most
/// `at.0` rows a sheet, the first sheet added at index `at.1`.
fn stream_roster(
    book: &mut Workbook,
    config: &Config,
    ledger: &Ledger,
    unit: Option<&str>,
    at: (u32, usize),
    styles: &Styles,
    bar: &ProgressBar,
) -> Result<(), MasterError> {
    let mut roster = roster::Roster::start(book, config, at.0, at.1, styles)?;
    let mut failed: Option<XlsxError> = None;
    ledger.for_each_counted_row_of(unit, |r| {
        if failed.is_none() {
            let e = count::eligibility(&config.plan, &r.row);
            if let Err(err) = roster.write(book, config, r, e, styles) {
                failed = Some(err);
            }
            bar.inc(1);
        }
        Ok(())
    })?;
    if let Some(err) = failed {
        return Err(err.into());
    }
    roster.finish(book)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::calendar;
    use std::path::Path;

    #[test]
    fn roster_limit_must_leave_room_for_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("t.db")).unwrap();
        let c = Config::parse(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml")),
            Path::new("tally.toml"),
            Path::new("."),
        )
        .unwrap();
        let now = calendar::parse_now("2020-07-01", c.plan.tz).unwrap();
        let err = render_with(&c, &ledger, now, &RenderOptions { rows_per_sheet: 1 }).unwrap_err();
        assert!(matches!(err, MasterError::RowsPerSheet(1)), "{err}");
        assert!(render_with(&c, &ledger, now, &RenderOptions { rows_per_sheet: 2 }).is_ok());
    }
}
