//! The master assessment workbook (issue 4): one .xlsx built from the ledger as a pure function
//! of (config, ledger, now) — the plan's table with live formulas, monthly progress, the
//! submissions, every finding and the streamed roster — and its durable replacement on disk.
//! Rendering never reads the wall clock and never edits a workbook; only `rebuild` touches files.

pub mod settings;

use crate::config::Config;
use crate::core::calendar::{self, YearMonth};
use crate::core::count::{self, CountedRow, Status};
use crate::core::findings::{Finding, Severity, a1, column_letters};
use crate::core::ids::mask_id;
use crate::core::plan::{Counting, ScheduleKind};
use crate::durable::sync_dir;
use crate::ledger::{Ledger, LedgerError, Submission, SubmissionStatus};
use chrono::{DateTime, Datelike, Timelike};
use chrono_tz::Tz;
use rust_xlsxwriter::{
    Chart, ChartFont, ChartFormat, ChartLegendPosition, ChartLine, ChartLineDashType, ChartMarker,
    ChartMarkerType, ChartType, ConditionalFormatCell, ConditionalFormatCellRule,
    ConditionalFormatDataBar, ConditionalFormatFormula, ConditionalFormatType, DocProperties,
    ExcelDateTime, Format, FormatAlign, FormatBorder, Formula, Workbook, Worksheet, XlsxError,
};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;
use unicode_width::UnicodeWidthStr;

/// Rows in one Excel worksheet; past it the roster continues on 培训台账(2), ….
pub const EXCEL_MAX_ROWS: u32 = 1_048_576;
/// Folder under the configured archive that holds earlier versions of the master.
pub const ARCHIVE_SUBDIR: &str = "master";

pub const SUMMARY_SHEET: &str = "考核指标完成情况";
pub const MONTHLY_SHEET: &str = "月度进度";
pub const SUBMISSIONS_SHEET: &str = "报送记录";
pub const FINDINGS_SHEET: &str = "问题清单";
/// The first roster sheet; the next ones are `培训台账(2)`, `培训台账(3)`, ….
pub const ROSTER_SHEET: &str = "培训台账";

/// Waits between attempts to rename the new master over a file someone holds open (1.5 s in
/// all), before writing `master.<timestamp>.xlsx` beside it instead.
const RENAME_BACKOFF_MS: [u64; 4] = [100, 200, 400, 800];
/// Stale temporary files of an interrupted rebuild older than this are removed.
const STALE_TEMP: Duration = Duration::from_secs(3600);
const TEMP_PREFIX: &str = ".master.";
const TEMP_SUFFIX: &str = ".tmp";

/// A CJK font every Chinese Windows, WPS and Excel has; LibreOffice substitutes its own.
const FONT: &str = "宋体";
/// 宋体 11 in Excel: 18 px rows, 72 px (8.38 characters) columns.
const DEFAULT_ROW_PX: u32 = 18;
const DEFAULT_COL_PX: u32 = 72;
/// Excel's limit on the text of one cell.
const MAX_STRING: usize = 32_767;

const HEADER_FILL: &str = "DDEBF7";
const RED_FILL: &str = "FFC7CE";
const RED_FONT: &str = "9C0006";
const GREY_FONT: &str = "808080";

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
    #[error("rows per roster sheet must be within 2..={EXCEL_MAX_ROWS}, found {0}")]
    RowsPerSheet(u32),
}

fn io_err<'a>(
    path: &'a Path,
    what: &'static str,
) -> impl FnOnce(std::io::Error) -> MasterError + 'a {
    move |source| MasterError::Io {
        path: path.to_path_buf(),
        what,
        source,
    }
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
            rows_per_sheet: EXCEL_MAX_ROWS,
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

/// Render the master into `out`. Roster and findings rows stream from the ledger through
/// constant-memory worksheets; what stays in memory is one compact record per counted row
/// (32 bytes) and one per distinct person, which distinct counting needs.
pub fn render_to<W: Write + Send>(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
    options: &RenderOptions,
    out: W,
) -> Result<(), MasterError> {
    if !(2..=EXCEL_MAX_ROWS).contains(&options.rows_per_sheet) {
        return Err(MasterError::RowsPerSheet(options.rows_per_sheet));
    }
    let now = now.with_timezone(&config.plan.tz);
    let styles = Styles::new();
    let mut book = Workbook::new();
    book.set_default_format(&base_format(), DEFAULT_ROW_PX, DEFAULT_COL_PX)?;
    let utc = now.naive_utc();
    let created = ExcelDateTime::from_ymd(
        u16::try_from(utc.year()).unwrap_or(2000),
        utc.month() as u8,
        utc.day() as u8,
    )?
    .and_hms(utc.hour() as u16, utc.minute() as u8, utc.second())?;
    book.set_properties(
        &DocProperties::new()
            .set_title(format!("{}考核指标完成情况", config.plan.title))
            .set_subject(format!("截至{}", date_zh(now)))
            .set_author("tally")
            .set_comment(
                "由 tally 根据台账自动生成，可随时用 tally rebuild 重新生成；请勿手工修改。",
            )
            .set_creation_datetime(&created),
    );

    // Sheets in their final order; the roster sheets are added as its rows stream.
    book.add_worksheet().set_name(SUMMARY_SHEET)?;
    book.add_worksheet().set_name(MONTHLY_SHEET)?;
    book.add_worksheet().set_name(SUBMISSIONS_SHEET)?;
    book.add_worksheet_with_constant_memory()?
        .set_name(FINDINGS_SHEET)?;
    const SUMMARY: usize = 0;
    const MONTHLY: usize = 1;
    const SUBMISSIONS: usize = 2;
    const FINDINGS: usize = 3;

    let submissions = ledger.submissions()?;
    let mut roster = Roster::start(
        &mut book,
        config,
        options.rows_per_sheet,
        FINDINGS + 1,
        &styles,
    )?;
    let mut tally = Tally::new(config);
    // Every row of an accepted return counts: reserve once rather than grow by doubling.
    tally.reserve(
        submissions
            .iter()
            .filter(|s| s.status == SubmissionStatus::Accepted)
            .map(|s| usize::try_from(s.rows).unwrap_or(0))
            .sum(),
    );
    let mut failed: Option<XlsxError> = None;
    ledger.for_each_counted_row(|r| {
        if failed.is_none() {
            let e = eligibility(config, &r);
            tally.add(&r, e);
            if let Err(err) = roster.write(&mut book, config, &r, e, &styles) {
                failed = Some(err);
            }
        }
        Ok(())
    })?;
    if let Some(err) = failed {
        return Err(err.into());
    }
    roster.finish(&mut book)?;

    let figures = tally.finish();
    let accepted = ledger.accepted_months()?;
    let status = status_of(config, now, &figures, &accepted);
    let findings = ledger.all_findings()?;

    write_summary(
        book.worksheet_from_index(SUMMARY)?,
        config,
        now,
        &status,
        &styles,
    )?;
    write_monthly(
        book.worksheet_from_index(MONTHLY)?,
        config,
        now,
        &figures,
        &styles,
    )?;
    write_submissions(
        book.worksheet_from_index(SUBMISSIONS)?,
        config,
        &submissions,
        &styles,
    )?;
    write_findings(
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

/// Progress at `now` from streamed figures, the same as `count::status` over the same rows.
fn status_of(
    config: &Config,
    now: DateTime<Tz>,
    figures: &Figures,
    accepted: &std::collections::BTreeSet<(String, YearMonth)>,
) -> Status {
    // Everything but the counts comes from count::status itself (missing months, expected).
    let mut status = count::status(&config.plan, now, &[], accepted);
    let fraction = calendar::expected_fraction(&config.plan, now);
    for u in &mut status.units {
        for c in &mut u.categories {
            c.completed = figures
                .completed
                .get(&(u.unit.clone(), c.category.clone()))
                .copied()
                .unwrap_or(0);
            c.lagging =
                calendar::is_lagging(&config.plan, c.completed, f64::from(c.target) * fraction);
        }
        u.lagging = !u.missing_months.is_empty() || u.categories.iter().any(|c| c.lagging);
    }
    status
}

// ---------------------------------------------------------------------------------------------
// Counting in one streaming pass.

/// Whether a counted row counts toward its category's figure, and if not, why (the same test
/// as `count`'s: a configured category, a training date in the plan year, 合格 where required).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Eligibility {
    Counts,
    UnknownCategory,
    OutsideYear,
    Failed,
}

fn eligibility(config: &Config, r: &CountedRow) -> Eligibility {
    let Some(cat) = config
        .plan
        .categories
        .iter()
        .find(|c| c.name == r.row.category)
    else {
        return Eligibility::UnknownCategory;
    };
    if r.row.date.year() != config.plan.year {
        Eligibility::OutsideYear
    } else if !r.row.passed && cat.require_pass {
        Eligibility::Failed
    } else {
        Eligibility::Counts
    }
}

impl Eligibility {
    fn label(self, year: i32) -> String {
        match self {
            Eligibility::Counts => "是".into(),
            Eligibility::UnknownCategory => "否：类别未列入".into(),
            Eligibility::OutsideYear => format!("否：非{year}年度"),
            Eligibility::Failed => "否：不合格".into(),
        }
    }
}

/// One counted row, compactly (32 bytes): enough to count persons, months and doubles.
#[derive(Debug, Clone, Copy)]
struct Report {
    person: u32,
    unit: u32,
    category: u32,
    /// Reporting month as year × 12 + month − 1.
    month: u32,
    line: u32,
    date_month0: u8,
    counts: bool,
    submission: i64,
}

#[derive(Debug, Default)]
struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

/// An 18-character 身份证号 (17 digits, then a digit or X) packed into a u64; other text is
/// kept as a string and keyed with the top bit set.
fn pack_id(id: &str) -> Option<u64> {
    let b = id.as_bytes();
    if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
        return None;
    }
    let last = match b[17] {
        c @ b'0'..=b'9' => u64::from(c - b'0'),
        b'X' => 10,
        _ => return None,
    };
    let digits = b[..17]
        .iter()
        .fold(0u64, |v, c| v * 10 + u64::from(c - b'0'));
    Some(digits * 11 + last)
}

fn unpack_id(v: u64) -> String {
    let last = v % 11;
    let digits = v / 11;
    let check = if last == 10 {
        'X'
    } else {
        char::from(b'0' + last as u8)
    };
    format!("{digits:017}{check}")
}

const ODD: u64 = 1 << 63;

/// Accumulates the counted rows as they stream by.
struct Tally<'c> {
    config: &'c Config,
    units: Interner,
    categories: Interner,
    person_of: HashMap<u64, u32>,
    odd_person_of: HashMap<Box<str>, u32>,
    /// Per person: the packed ID, or ODD | index into `odd_ids`.
    keys: Vec<u64>,
    odd_ids: Vec<Box<str>>,
    /// Per person: the name of their first report, as a span of `names`.
    names: String,
    name_spans: Vec<(u32, u32)>,
    reports: Vec<Report>,
    /// Qualifying rows of person-times categories per (unit, category) and training month.
    times: HashMap<(u32, u32), [u64; 12]>,
}

/// What the summary sheets need from the counted rows.
#[derive(Debug, Clone, Default, PartialEq)]
struct Figures {
    /// Per configured (unit, category), as `count::completed`.
    completed: BTreeMap<(String, String), u64>,
    /// Per configured (unit, category), as `count::monthly_cumulative`.
    monthly: BTreeMap<(String, String), [u64; 12]>,
    /// As `count::doubles`, with the roster line of every report.
    doubles: Vec<DoubleReport>,
}

#[derive(Debug, Clone, PartialEq)]
struct DoubleReport {
    id: String,
    name: String,
    across_units: bool,
    reports: Vec<DoubleEntry>,
}

#[derive(Debug, Clone, PartialEq)]
struct DoubleEntry {
    unit: String,
    month: YearMonth,
    category: String,
    submission: i64,
    line: u32,
}

impl<'c> Tally<'c> {
    fn new(config: &'c Config) -> Tally<'c> {
        let mut units = Interner::default();
        for u in &config.plan.units {
            units.get(&u.name);
        }
        let mut categories = Interner::default();
        for c in &config.plan.categories {
            categories.get(&c.name);
        }
        Tally {
            config,
            units,
            categories,
            person_of: HashMap::new(),
            odd_person_of: HashMap::new(),
            keys: Vec::new(),
            odd_ids: Vec::new(),
            names: String::new(),
            name_spans: Vec::new(),
            reports: Vec::new(),
            times: HashMap::new(),
        }
    }

    /// Room for `rows` counted rows (and as many persons, at most).
    fn reserve(&mut self, rows: usize) {
        self.reports.reserve_exact(rows);
        self.person_of.reserve(rows);
        self.keys.reserve_exact(rows);
        self.name_spans.reserve_exact(rows);
    }

    fn person(&mut self, id: &str, name: &str) -> u32 {
        let next = self.keys.len() as u32;
        let (index, new_key) = match pack_id(id) {
            Some(packed) => match self.person_of.get(&packed) {
                Some(&i) => (i, None),
                None => {
                    self.person_of.insert(packed, next);
                    (next, Some(packed))
                }
            },
            None => match self.odd_person_of.get(id) {
                Some(&i) => (i, None),
                None => {
                    self.odd_person_of.insert(id.into(), next);
                    self.odd_ids.push(id.into());
                    (next, Some(ODD | (self.odd_ids.len() as u64 - 1)))
                }
            },
        };
        if let Some(key) = new_key {
            self.keys.push(key);
            let start = self.names.len() as u32;
            self.names.push_str(name);
            self.name_spans.push((start, self.names.len() as u32));
        }
        index
    }

    fn add(&mut self, r: &CountedRow, e: Eligibility) {
        let unit = self.units.get(&r.unit);
        let category = self.categories.get(&r.row.category);
        let person = self.person(&r.row.id, &r.row.name);
        let date_month0 = r.row.date.month0() as u8;
        let counts = e == Eligibility::Counts;
        if counts && self.rule(category) == Some(Counting::PersonTimes) {
            self.times.entry((unit, category)).or_insert([0; 12])[date_month0 as usize] += 1;
        }
        self.reports.push(Report {
            person,
            unit,
            category,
            month: (r.month.year.max(0) as u32) * 12 + r.month.month - 1,
            line: r.row.line,
            date_month0,
            counts,
            submission: r.submission,
        });
    }

    /// The counting rule of an interned category (configured categories come first).
    fn rule(&self, category: u32) -> Option<Counting> {
        self.config
            .plan
            .categories
            .get(category as usize)
            .map(|c| c.counting)
    }

    fn id_text(&self, person: u32) -> String {
        let key = self.keys[person as usize];
        if key & ODD != 0 {
            self.odd_ids[(key & !ODD) as usize].to_string()
        } else {
            unpack_id(key)
        }
    }

    fn finish(mut self) -> Figures {
        let mut reports = std::mem::take(&mut self.reports);
        // Within a person, ledger order (submission, line); in place, no scratch buffer.
        reports.sort_unstable_by_key(|r| (r.person, r.submission, r.line));
        let mut firsts: HashMap<(u32, u32), [u64; 12]> = HashMap::new();
        let mut doubles = Vec::new();
        let mut seen: Vec<((u32, u32), u8)> = Vec::new();
        for group in reports.chunk_by(|a, b| a.person == b.person) {
            seen.clear();
            for r in group {
                if r.counts && self.rule(r.category) == Some(Counting::Persons) {
                    let key = (r.unit, r.category);
                    match seen.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, m)) => *m = (*m).min(r.date_month0),
                        None => seen.push((key, r.date_month0)),
                    }
                }
            }
            for (key, m) in &seen {
                firsts.entry(*key).or_insert([0; 12])[*m as usize] += 1;
            }
            if group.len() > 1 {
                let across_units = group.iter().any(|r| r.unit != group[0].unit);
                let mut pairs: Vec<(u32, u32, i64)> = group
                    .iter()
                    .map(|r| (r.unit, r.category, r.submission))
                    .collect();
                pairs.sort_unstable();
                pairs.dedup();
                let repeated = pairs
                    .windows(2)
                    .any(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1));
                if across_units || repeated {
                    doubles.push(self.double(group, across_units));
                }
            }
        }
        doubles.sort_by(|a: &DoubleReport, b| a.id.cmp(&b.id));

        let mut completed = BTreeMap::new();
        let mut monthly = BTreeMap::new();
        for (ui, u) in self.config.plan.units.iter().enumerate() {
            for (ci, c) in self.config.plan.categories.iter().enumerate() {
                let key = (ui as u32, ci as u32);
                let mut months = match c.counting {
                    Counting::Persons => firsts.get(&key),
                    Counting::PersonTimes => self.times.get(&key),
                }
                .copied()
                .unwrap_or([0; 12]);
                for i in 1..12 {
                    months[i] += months[i - 1];
                }
                completed.insert((u.name.clone(), c.name.clone()), months[11]);
                monthly.insert((u.name.clone(), c.name.clone()), months);
            }
        }
        Figures {
            completed,
            monthly,
            doubles,
        }
    }

    fn double(&self, group: &[Report], across_units: bool) -> DoubleReport {
        let person = group[0].person;
        let (start, end) = self.name_spans[person as usize];
        DoubleReport {
            id: self.id_text(person),
            name: self.names[start as usize..end as usize].to_string(),
            across_units,
            reports: group
                .iter()
                .map(|r| DoubleEntry {
                    unit: self.units.names[r.unit as usize].clone(),
                    month: YearMonth {
                        year: (r.month / 12) as i32,
                        month: r.month % 12 + 1,
                    },
                    category: self.categories.names[r.category as usize].clone(),
                    submission: r.submission,
                    line: r.line,
                })
                .collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Formats and small writing helpers.

/// The workbook's default: 宋体 11, vertically centred (rows of wrapped text read well).
fn base_format() -> Format {
    Format::new()
        .set_font_name(FONT)
        .set_font_size(11)
        .set_align(FormatAlign::VerticalCenter)
}

struct Styles {
    title: Format,
    subtitle: Format,
    header: Format,
    cell: Format,
    cell_left: Format,
    int: Format,
    pct: Format,
    total_label: Format,
    total_int: Format,
    total_pct: Format,
    note: Format,
    list_header: Format,
    date: Format,
    datetime: Format,
    wrap: Format,
    red_text: Format,
    grey_text: Format,
    lagging: Format,
    missing: Format,
}

impl Styles {
    fn new() -> Styles {
        let base = base_format();
        let boxed = base
            .clone()
            .set_border(FormatBorder::Thin)
            .set_align(FormatAlign::Center);
        let total = boxed.clone().set_bold().set_background_color("F2F2F2");
        Styles {
            title: base
                .clone()
                .set_bold()
                .set_font_size(16)
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter),
            subtitle: base.clone().set_font_size(10).set_font_color("404040"),
            header: boxed
                .clone()
                .set_bold()
                .set_text_wrap()
                .set_background_color(HEADER_FILL),
            cell: boxed.clone(),
            cell_left: boxed.clone().set_align(FormatAlign::Left).set_text_wrap(),
            int: boxed.clone().set_num_format("0"),
            pct: boxed.clone().set_num_format("0.0%"),
            total_label: total.clone(),
            total_int: total.clone().set_num_format("0"),
            total_pct: total.set_num_format("0.0%"),
            note: base
                .clone()
                .set_font_size(10)
                .set_align(FormatAlign::Left)
                .set_align(FormatAlign::Top)
                .set_text_wrap(),
            list_header: base
                .clone()
                .set_bold()
                .set_background_color(HEADER_FILL)
                .set_border(FormatBorder::Thin)
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter)
                .set_text_wrap(),
            date: base.clone().set_num_format("yyyy-mm-dd"),
            datetime: base.clone().set_num_format("yyyy-mm-dd hh:mm"),
            wrap: base.clone().set_text_wrap(),
            red_text: base.clone().set_font_color(RED_FONT),
            grey_text: base.set_font_color(GREY_FONT),
            lagging: Format::new()
                .set_background_color(RED_FILL)
                .set_font_color(RED_FONT),
            missing: Format::new()
                .set_background_color(RED_FILL)
                .set_font_color(RED_FONT)
                .set_bold(),
        }
    }
}

/// Text from a return or the ledger: always a string cell (never a formula, whatever it
/// starts with), clipped to Excel's 32,767 characters.
fn text(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    s: &str,
    format: Option<&Format>,
) -> Result<(), XlsxError> {
    let s = clip(s);
    match format {
        Some(f) => ws.write_string_with_format(row, col, s, f)?,
        None => ws.write_string(row, col, s)?,
    };
    Ok(())
}

fn clip(s: &str) -> &str {
    match s.char_indices().nth(MAX_STRING) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// `2020年7月1日`.
fn date_zh(now: DateTime<Tz>) -> String {
    format!("{}年{}月{}日", now.year(), now.month(), now.day())
}

/// A formula whose computed value is stored too, so the file is right before any recalculation.
fn formula(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    f: &str,
    result: f64,
    format: &Format,
) -> Result<(), XlsxError> {
    ws.write_formula_with_format(
        row,
        col,
        Formula::new(f).set_result(result.to_string()),
        format,
    )?;
    Ok(())
}

fn ratio(done: f64, target: f64) -> f64 {
    if target == 0.0 { 0.0 } else { done / target }
}

/// A4 landscape, one page wide, a header naming the sheet and page numbers in the footer.
fn print_setup(ws: &mut Worksheet, config: &Config, repeat: (u32, u32)) -> Result<(), XlsxError> {
    let title: String = config
        .plan
        .title
        .replace('&', "&&")
        .chars()
        .take(100)
        .collect();
    ws.set_landscape()
        .set_paper_size(9)
        .set_print_fit_to_pages(1, 0)
        .set_margins(0.4, 0.4, 0.6, 0.6, 0.3, 0.3)
        .set_print_center_horizontally(true)
        .set_header(format!("&L&9{title}&R&9&A"))
        .set_footer("&C&9第 &P 页，共 &N 页");
    ws.set_repeat_rows(repeat.0, repeat.1)?;
    Ok(())
}

/// Title, percent axis, legend below and size shared by the master's rate charts.
fn style_rate_chart(chart: &mut Chart, title: &str) {
    chart
        .title()
        .set_name(title)
        .set_font(chart_font().set_size(12).set_bold());
    chart.x_axis().set_font(&chart_font());
    chart
        .y_axis()
        .set_num_format("0%")
        .set_min(0)
        .set_font(&chart_font())
        .set_major_gridlines(true);
    chart
        .legend()
        .set_position(ChartLegendPosition::Bottom)
        .set_font(&chart_font());
    chart.set_width(860).set_height(340);
}

fn chart_font() -> ChartFont {
    let mut f = ChartFont::new();
    f.set_name(FONT);
    f
}

// ---------------------------------------------------------------------------------------------
// 考核指标完成情况.

/// Rows of the summary table (zero-based).
const SUM_TITLE: u32 = 0;
const SUM_SUBTITLE: u32 = 1;
const SUM_HEAD: u32 = 2;
const SUM_FIRST: u32 = 4;
/// Width of the 备注 column.
const NOTE_WIDTH: f64 = 34.0;

fn write_summary(
    ws: &mut Worksheet,
    config: &Config,
    now: DateTime<Tz>,
    status: &Status,
    s: &Styles,
) -> Result<(), XlsxError> {
    let k = config.plan.categories.len() as u16;
    let n = status.units.len() as u32;
    let target_col = |c: u16| 2 + 3 * c;
    let total = 2 + 3 * k;
    let prog = total + 3;
    let state = total + 4;
    let note = total + 5;
    let totals_row = SUM_FIRST + n;
    let fraction = calendar::expected_fraction(&config.plan, now);
    let tolerance = config.plan.tolerance;

    ws.set_column_width(0, 5)?;
    ws.set_column_width(1, 13)?;
    for c in 0..=k {
        let col = target_col(c);
        ws.set_column_width(col, 7.5)?;
        ws.set_column_width(col + 1, 7.5)?;
        ws.set_column_width(col + 2, 8.5)?;
    }
    ws.set_column_width(prog, 9)?;
    ws.set_column_width(state, 8)?;
    ws.set_column_width(note, NOTE_WIDTH)?;

    ws.set_row_height(SUM_TITLE, 30)?;
    ws.merge_range(
        SUM_TITLE,
        0,
        SUM_TITLE,
        note,
        &format!(
            "{}考核指标完成情况（截至{}）",
            config.plan.title,
            date_zh(now)
        ),
        &s.title,
    )?;
    let schedule = match config.plan.schedule {
        ScheduleKind::Linear => "全年均衡进度",
        ScheduleKind::Milestones => "计划节点进度",
    };
    ws.merge_range(
        SUM_SUBTITLE,
        0,
        SUM_SUBTITLE,
        note,
        &format!(
            "统计时点：{} {:02}:{:02}　　序时进度：{:.1}%（{schedule}）　　滞后标准：完成数低于 指标×序时进度×(1−{}%)",
            date_zh(now),
            now.hour(),
            now.minute(),
            fraction * 100.0,
            tolerance * 100.0
        ),
        &s.subtitle,
    )?;

    // Two header rows, laid out like the plan's attachment.
    let head2 = SUM_HEAD + 1;
    ws.set_row_height(SUM_HEAD, 20)?;
    ws.set_row_height(head2, 20)?;
    for (col, label) in [
        (0, "序号"),
        (1, "单位"),
        (prog, "序时进度"),
        (state, "状态"),
        (note, "备注"),
    ] {
        ws.merge_range(SUM_HEAD, col, head2, col, label, &s.header)?;
    }
    let groups = config
        .plan
        .categories
        .iter()
        .map(|c| c.name.as_str())
        .chain(std::iter::once("合计"));
    for (c, name) in groups.enumerate() {
        let col = target_col(c as u16);
        ws.merge_range(SUM_HEAD, col, SUM_HEAD, col + 2, name, &s.header)?;
        for (i, label) in ["指标", "完成", "完成率"].iter().enumerate() {
            ws.write_string_with_format(head2, col + i as u16, *label, &s.header)?;
        }
    }

    let mut counts = [0usize; 3];
    for (i, u) in status.units.iter().enumerate() {
        let row = SUM_FIRST + i as u32;
        ws.write_number_with_format(row, 0, (i + 1) as f64, &s.cell)?;
        text(ws, row, 1, &u.unit, Some(&s.cell))?;
        let (mut sum_target, mut sum_done) = (0.0, 0.0);
        for (c, cat) in u.categories.iter().enumerate() {
            let col = target_col(c as u16);
            let (t, d) = (f64::from(cat.target), cat.completed as f64);
            sum_target += t;
            sum_done += d;
            ws.write_number_with_format(row, col, t, &s.int)?;
            ws.write_number_with_format(row, col + 1, d, &s.int)?;
            let f = format!(
                "=IFERROR({}/{},0)",
                a1(row, u32::from(col) + 1),
                a1(row, u32::from(col))
            );
            formula(ws, row, col + 2, &f, ratio(d, t), &s.pct)?;
        }
        let cells = |offset: u16| {
            (0..k)
                .map(|c| a1(row, u32::from(target_col(c) + offset)))
                .collect::<Vec<_>>()
                .join(",")
        };
        formula(
            ws,
            row,
            total,
            &format!("=SUM({})", cells(0)),
            sum_target,
            &s.int,
        )?;
        formula(
            ws,
            row,
            total + 1,
            &format!("=SUM({})", cells(1)),
            sum_done,
            &s.int,
        )?;
        let f = format!(
            "=IFERROR({}/{},0)",
            a1(row, u32::from(total) + 1),
            a1(row, u32::from(total))
        );
        formula(ws, row, total + 2, &f, ratio(sum_done, sum_target), &s.pct)?;
        ws.write_number_with_format(row, prog, fraction, &s.pct)?;
        let (label, idx) = if !u.missing_months.is_empty() {
            ("未报送", 2)
        } else if u.lagging {
            ("滞后", 1)
        } else {
            ("正常", 0)
        };
        counts[idx] += 1;
        ws.write_string_with_format(row, state, label, &s.cell)?;
        let mut remarks = Vec::new();
        if !u.missing_months.is_empty() {
            let months: Vec<String> = u
                .missing_months
                .iter()
                .filter_map(|m| YearMonth::parse(m))
                .map(|m| format!("{}月", m.month))
                .collect();
            remarks.push(format!("未报送：{}", months.join("、")));
        }
        let lagging: Vec<&str> = u
            .categories
            .iter()
            .filter(|c| c.lagging)
            .map(|c| c.category.as_str())
            .collect();
        if !lagging.is_empty() {
            remarks.push(format!("滞后：{}", lagging.join("、")));
        }
        let remarks = remarks.join("；");
        text(ws, row, note, &remarks, Some(&s.cell_left))?;
        let lines = lines_in(&remarks, NOTE_WIDTH);
        if lines > 1 {
            ws.set_row_height(row, 13.5 * lines as f64 + 3.0)?;
        }
    }

    // 合计.
    ws.merge_range(totals_row, 0, totals_row, 1, "合计", &s.total_label)?;
    let column_sum = |col: u16| {
        format!(
            "=SUM({}:{})",
            a1(SUM_FIRST, u32::from(col)),
            a1(totals_row - 1, u32::from(col))
        )
    };
    let (mut all_target, mut all_done) = (0.0, 0.0);
    for c in 0..k {
        let col = target_col(c);
        let t: f64 = status
            .units
            .iter()
            .map(|u| f64::from(u.categories[c as usize].target))
            .sum();
        let d: f64 = status
            .units
            .iter()
            .map(|u| u.categories[c as usize].completed as f64)
            .sum();
        all_target += t;
        all_done += d;
        formula(ws, totals_row, col, &column_sum(col), t, &s.total_int)?;
        formula(
            ws,
            totals_row,
            col + 1,
            &column_sum(col + 1),
            d,
            &s.total_int,
        )?;
        let f = format!(
            "=IFERROR({}/{},0)",
            a1(totals_row, u32::from(col) + 1),
            a1(totals_row, u32::from(col))
        );
        formula(ws, totals_row, col + 2, &f, ratio(d, t), &s.total_pct)?;
    }
    formula(
        ws,
        totals_row,
        total,
        &column_sum(total),
        all_target,
        &s.total_int,
    )?;
    formula(
        ws,
        totals_row,
        total + 1,
        &column_sum(total + 1),
        all_done,
        &s.total_int,
    )?;
    let f = format!(
        "=IFERROR({}/{},0)",
        a1(totals_row, u32::from(total) + 1),
        a1(totals_row, u32::from(total))
    );
    formula(
        ws,
        totals_row,
        total + 2,
        &f,
        ratio(all_done, all_target),
        &s.total_pct,
    )?;
    ws.write_number_with_format(totals_row, prog, fraction, &s.total_pct)?;
    ws.write_blank(totals_row, state, &s.total_label)?;
    let overview = format!(
        "正常 {} 个，滞后 {} 个，未报送 {} 个",
        counts[0], counts[1], counts[2]
    );
    ws.write_string_with_format(totals_row, note, &overview, &s.total_label)?;

    // Red where a category lags: the same rule as `count`, live in the sheet.
    if n > 0 {
        let last = totals_row - 1;
        for c in 0..k {
            let col = target_col(c);
            // Columns absolute: the rule covers both 完成 and 完成率 and must test 完成 in each.
            let rule = format!(
                "=${done}{r}<${target}{r}*${prog}{r}*(1-{tolerance})",
                done = column_letters(u32::from(col) + 1),
                target = column_letters(u32::from(col)),
                prog = column_letters(u32::from(prog)),
                r = SUM_FIRST + 1
            );
            let cf = ConditionalFormatFormula::new()
                .set_rule(rule.as_str())
                .set_format(&s.lagging);
            ws.add_conditional_format(SUM_FIRST, col + 1, last, col + 2, &cf)?;
        }
        for (value, format) in [("滞后", &s.lagging), ("未报送", &s.missing)] {
            let cf = ConditionalFormatCell::new()
                .set_rule(ConditionalFormatCellRule::EqualTo(value))
                .set_format(format);
            ws.add_conditional_format(SUM_FIRST, state, last, state, &cf)?;
        }
    }
    for c in 0..=k {
        let col = target_col(c) + 2;
        let bar = ConditionalFormatDataBar::new()
            .set_minimum(ConditionalFormatType::Number, 0)
            .set_maximum(ConditionalFormatType::Number, 1)
            .set_fill_color("63BE7B")
            .set_border_color("63BE7B")
            .set_solid_fill(true);
        ws.add_conditional_format(SUM_FIRST, col, totals_row, col, &bar)?;
    }

    // Notes: how each figure is made, so a reader can audit it.
    let rules: Vec<String> = config
        .plan
        .categories
        .iter()
        .map(|c| {
            let how = match c.counting {
                Counting::Persons => "按身份证号计人数（同一人全年只计一次）",
                Counting::PersonTimes => "按人次计（每条培训记录计一次）",
            };
            let pass = if c.require_pass {
                "，只计考核合格者"
            } else {
                ""
            };
            format!("{}{how}{pass}", c.name)
        })
        .collect();
    let notes = [
        format!(
            "说明：1. 完成数取自已采用且未被替代的报表，只计培训日期在{}年内的人员：{}。",
            config.plan.year,
            rules.join("；")
        ),
        format!(
            "2. 序时进度为截至统计时点按{schedule}应完成的比例；某类别完成数低于 指标×序时进度×(1−{}%) 为“滞后”，标红；任一月份报表超过次月{}日仍未采用为“未报送”。",
            tolerance * 100.0,
            config.plan.deadline_day
        ),
        "3. 合计与完成率均为公式，可点击单元格查看；每个完成数可在“培训台账”按单位、人员类别筛选“是否计入”=是核对，报表来源见“报送记录”，报表问题和重复报送见“问题清单”。".to_string(),
        "4. 本表由 tally 根据报送台账自动生成，请勿手工修改；如需更正，请由报送单位重新报送。".to_string(),
    ];
    let first_note = totals_row + 2;
    for (i, line) in notes.iter().enumerate() {
        let row = first_note + i as u32;
        ws.set_row_height(row, 27)?;
        ws.merge_range(row, 0, row, note, line, &s.note)?;
    }

    // The chart: completion rate per unit and category against the expected rate.
    if n > 0 {
        let last = totals_row - 1;
        let mut columns = Chart::new(ChartType::Column);
        for c in 0..k {
            let col = target_col(c);
            columns
                .add_series()
                .set_name((SUMMARY_SHEET, SUM_HEAD, col))
                .set_categories((SUMMARY_SHEET, SUM_FIRST, 1, last, 1))
                .set_values((SUMMARY_SHEET, SUM_FIRST, col + 2, last, col + 2));
        }
        let mut line = Chart::new(ChartType::Line);
        line.add_series()
            .set_name((SUMMARY_SHEET, SUM_HEAD, prog))
            .set_categories((SUMMARY_SHEET, SUM_FIRST, 1, last, 1))
            .set_values((SUMMARY_SHEET, SUM_FIRST, prog, last, prog))
            .set_format(
                ChartFormat::new().set_line(
                    ChartLine::new()
                        .set_color("C00000")
                        .set_width(2.25)
                        .set_dash_type(ChartLineDashType::Dash),
                ),
            )
            .set_marker(
                ChartMarker::new()
                    .set_type(ChartMarkerType::Diamond)
                    .set_size(7),
            );
        columns.combine(&line);
        style_rate_chart(&mut columns, "各单位分类别完成率与序时进度");
        ws.insert_chart_with_offset(first_note + notes.len() as u32 + 1, 1, &columns, 10, 0)?;
    }

    print_setup(ws, config, (SUM_HEAD, head2))?;
    ws.set_freeze_panes(SUM_FIRST, 2)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 月度进度.

fn write_monthly(
    ws: &mut Worksheet,
    config: &Config,
    now: DateTime<Tz>,
    figures: &Figures,
    s: &Styles,
) -> Result<(), XlsxError> {
    const HEAD: u32 = 2;
    const FIRST_MONTH: u16 = 3;
    let last_col = FIRST_MONTH + 11;
    let year = config.plan.year;
    // Months shown: those that have ended by `now` (the month under way is in the summary).
    let shown = YearMonth::months_of(year)
        .filter(|m| calendar::start_of_day(config.plan.tz, m.next().first_day()) <= now)
        .count() as u32;
    let k = config.plan.categories.len() as u32;

    ws.set_column_width(0, 13)?;
    ws.set_column_width(1, 17)?;
    ws.set_column_width(2, 9)?;
    for m in 0..12 {
        ws.set_column_width(FIRST_MONTH + m, 7.5)?;
    }
    ws.set_row_height(0, 30)?;
    ws.merge_range(
        0,
        0,
        0,
        last_col,
        &format!(
            "{}月度累计完成情况（截至{}）",
            config.plan.title,
            date_zh(now)
        ),
        &s.title,
    )?;
    let pending = if shown < 12 {
        format!(
            "{}月起尚未结束，留空（当月进度见“{SUMMARY_SHEET}”）。",
            shown + 1
        )
    } else {
        String::new()
    };
    ws.merge_range(
        1,
        0,
        1,
        last_col,
        &format!("按培训日期逐月累计的完成数（口径同“{SUMMARY_SHEET}”）；{pending}下方为累计完成率与序时进度，并附折线图。"),
        &s.subtitle,
    )?;
    let header = |ws: &mut Worksheet, row: u32, second: &str| -> Result<(), XlsxError> {
        ws.write_string_with_format(row, 0, "单位", &s.header)?;
        ws.write_string_with_format(row, 1, second, &s.header)?;
        ws.write_string_with_format(row, 2, "年度指标", &s.header)?;
        for m in 0..12u16 {
            ws.write_string_with_format(row, FIRST_MONTH + m, format!("{}月", m + 1), &s.header)?;
        }
        Ok(())
    };
    header(ws, HEAD, "人员类别")?;

    // Block A: cumulative completed per unit and category, and a 小计 per unit.
    let mut row = HEAD + 1;
    let mut subtotals = Vec::new(); // (row, unit target, per-month totals)
    for u in &config.plan.units {
        let first = row;
        let mut unit_target = 0.0;
        let mut unit_months = [0.0f64; 12];
        for c in &config.plan.categories {
            let target = f64::from(config.plan.target(&u.name, &c.name).unwrap_or(0));
            unit_target += target;
            let months = figures
                .monthly
                .get(&(u.name.clone(), c.name.clone()))
                .copied()
                .unwrap_or([0; 12]);
            text(ws, row, 0, &u.name, Some(&s.cell))?;
            text(ws, row, 1, &c.name, Some(&s.cell))?;
            ws.write_number_with_format(row, 2, target, &s.int)?;
            for m in 0..12u16 {
                if u32::from(m) < shown {
                    let v = months[m as usize] as f64;
                    unit_months[m as usize] += v;
                    ws.write_number_with_format(row, FIRST_MONTH + m, v, &s.int)?;
                } else {
                    ws.write_blank(row, FIRST_MONTH + m, &s.int)?;
                }
            }
            row += 1;
        }
        text(ws, row, 0, &u.name, Some(&s.total_label))?;
        ws.write_string_with_format(row, 1, "小计", &s.total_label)?;
        let sum = |col: u16| {
            format!(
                "=SUM({}:{})",
                a1(first, u32::from(col)),
                a1(first + k - 1, u32::from(col))
            )
        };
        formula(ws, row, 2, &sum(2), unit_target, &s.total_int)?;
        for m in 0..12u16 {
            if u32::from(m) < shown {
                formula(
                    ws,
                    row,
                    FIRST_MONTH + m,
                    &sum(FIRST_MONTH + m),
                    unit_months[m as usize],
                    &s.total_int,
                )?;
            } else {
                ws.write_blank(row, FIRST_MONTH + m, &s.total_int)?;
            }
        }
        subtotals.push((row, unit_target, unit_months));
        row += 1;
    }

    // Block B: cumulative rate per unit and for the district, against the schedule.
    let head_b = row + 1;
    header(ws, head_b, "项目")?;
    row = head_b + 1;
    let first_rate = row;
    for (u, (sub_row, target, months)) in config.plan.units.iter().zip(&subtotals) {
        text(ws, row, 0, &u.name, Some(&s.cell))?;
        ws.write_string_with_format(row, 1, "累计完成率", &s.cell)?;
        formula(
            ws,
            row,
            2,
            &format!("={}", a1(*sub_row, 2)),
            *target,
            &s.int,
        )?;
        for m in 0..12u16 {
            let col = FIRST_MONTH + m;
            if u32::from(m) < shown {
                let f = format!("=IFERROR({}/$C{},0)", a1(*sub_row, u32::from(col)), row + 1);
                formula(ws, row, col, &f, ratio(months[m as usize], *target), &s.pct)?;
            } else {
                ws.write_blank(row, col, &s.pct)?;
            }
        }
        row += 1;
    }
    let district = row;
    ws.write_string_with_format(row, 0, "全区", &s.total_label)?;
    ws.write_string_with_format(row, 1, "累计完成率", &s.total_label)?;
    let all_target: f64 = subtotals.iter().map(|t| t.1).sum();
    let refs = |col: u16| {
        subtotals
            .iter()
            .map(|t| a1(t.0, u32::from(col)))
            .collect::<Vec<_>>()
            .join(",")
    };
    formula(
        ws,
        row,
        2,
        &format!("=SUM({})", refs(2)),
        all_target,
        &s.total_int,
    )?;
    for m in 0..12u16 {
        let col = FIRST_MONTH + m;
        if u32::from(m) < shown {
            let done: f64 = subtotals.iter().map(|t| t.2[m as usize]).sum();
            let f = format!("=IFERROR(SUM({})/$C{},0)", refs(col), row + 1);
            formula(ws, row, col, &f, ratio(done, all_target), &s.total_pct)?;
        } else {
            ws.write_blank(row, col, &s.total_pct)?;
        }
    }
    row += 1;
    let schedule_row = row;
    ws.write_string_with_format(row, 0, "序时进度", &s.total_label)?;
    ws.write_string_with_format(row, 1, "计划应完成", &s.total_label)?;
    ws.write_blank(row, 2, &s.total_label)?;
    for (m, ym) in YearMonth::months_of(year).enumerate() {
        let end = calendar::start_of_day(config.plan.tz, ym.next().first_day());
        ws.write_number_with_format(
            row,
            FIRST_MONTH + m as u16,
            calendar::expected_fraction(&config.plan, end),
            &s.total_pct,
        )?;
    }

    // The line chart: each unit's cumulative rate and the district's, against the schedule.
    let mut chart = Chart::new(ChartType::Line);
    let months = (MONTHLY_SHEET, head_b, FIRST_MONTH, head_b, last_col);
    for r in first_rate..=district {
        chart
            .add_series()
            .set_name((MONTHLY_SHEET, r, 0))
            .set_categories(months)
            .set_values((MONTHLY_SHEET, r, FIRST_MONTH, r, last_col))
            .set_marker(
                ChartMarker::new()
                    .set_type(ChartMarkerType::Circle)
                    .set_size(5),
            );
    }
    chart
        .add_series()
        .set_name((MONTHLY_SHEET, schedule_row, 0))
        .set_categories(months)
        .set_values((
            MONTHLY_SHEET,
            schedule_row,
            FIRST_MONTH,
            schedule_row,
            last_col,
        ))
        .set_format(
            ChartFormat::new().set_line(
                ChartLine::new()
                    .set_color("C00000")
                    .set_width(2.25)
                    .set_dash_type(ChartLineDashType::Dash),
            ),
        );
    style_rate_chart(&mut chart, "累计完成率与序时进度");
    ws.insert_chart_with_offset(schedule_row + 2, 0, &chart, 10, 0)?;

    print_setup(ws, config, (HEAD, HEAD))?;
    ws.set_freeze_panes(HEAD + 1, 2)?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// 报送记录, 问题清单 and 培训台账: lists with a header row, frozen and repeated.

/// A column of a list sheet: header, width in characters, and whether long text wraps.
struct Col {
    label: &'static str,
    width: f64,
    wrap: bool,
}

const fn col(label: &'static str, width: f64, wrap: bool) -> Col {
    Col { label, width, wrap }
}

fn list_header(
    ws: &mut Worksheet,
    config: &Config,
    columns: &[Col],
    s: &Styles,
) -> Result<(), XlsxError> {
    for (c, column) in columns.iter().enumerate() {
        ws.set_column_width(c as u16, column.width)?;
        ws.write_string_with_format(0, c as u16, column.label, &s.list_header)?;
    }
    ws.set_row_height(0, 30)?;
    print_setup(ws, config, (0, 0))?;
    ws.set_print_gridlines(true);
    ws.set_freeze_panes(1, 0)?;
    Ok(())
}

/// Lines a text takes in a wrapped column (a CJK character is two characters wide).
fn lines_in(s: &str, width: f64) -> usize {
    let per_line = (width - 1.0).max(1.0) as usize;
    s.split('\n')
        .map(|l| UnicodeWidthStr::width(l).div_ceil(per_line).max(1))
        .sum()
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
                let t = clip(t);
                if let Some(k) = wrap {
                    lines = lines.max(lines_in(t, k.width));
                    ws.write_string_with_format(row, col, t, format.unwrap_or(&s.wrap))?;
                } else {
                    text(ws, row, col, t, *format)?;
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
    col("报送月份", 8.0, false),
    col("文件名", 18.0, true),
    col("接收时间", 15.0, false),
    col("状态", 8.0, false),
    col("行数", 6.0, false),
    col("错误", 5.0, false),
    col("提醒", 5.0, false),
    col("填报人", 8.0, false),
    col("联系电话", 13.0, false),
    col("说明", 22.0, true),
    col("存放位置", 22.0, true),
    col("归档副本", 24.0, true),
    col("SHA-256", 33.0, true),
];

fn write_submissions(
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
            .map(|t| t.with_timezone(&config.plan.tz).naive_local())
            .and_then(|t| {
                ExcelDateTime::from_ymd(
                    u16::try_from(t.year()).ok()?,
                    t.month() as u8,
                    t.day() as u8,
                )
                .and_then(|d| d.and_hms(t.hour() as u16, t.minute() as u8, t.second()))
                .ok()
            });
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
    col("报送月份", 8.0, true),
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

fn write_findings(
    ws: &mut Worksheet,
    config: &Config,
    subs: &[Submission],
    findings: &[(i64, Finding)],
    doubles: &[DoubleReport],
    s: &Styles,
) -> Result<(), XlsxError> {
    list_header(ws, config, &FINDING_COLUMNS, s)?;
    let by_id: HashMap<i64, &Submission> = subs.iter().map(|s| (s.id, s)).collect();
    let masked = |t: &str| {
        if config.plan.mask_ids {
            crate::core::ids::mask_ids_in(t)
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
            t(crate::core::findings::Code::DoubleReported.as_str()),
            t(ROSTER_SHEET),
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

const ROSTER_COLUMNS: [Col; 15] = [
    col("序号", 8.0, false),
    col("单位", 11.0, false),
    col("报送月份", 8.0, false),
    col("姓名", 9.0, false),
    col("身份证号", 20.0, false),
    col("企业名称", 28.0, false),
    col("统一社会信用代码", 20.0, false),
    col("人员类别", 17.0, false),
    col("培训日期", 11.0, false),
    col("培训学时", 8.0, false),
    col("考核结果", 8.0, false),
    col("证书编号", 14.0, false),
    col("是否计入", 16.0, false),
    col("报送编号", 8.0, false),
    col("原表行号", 8.0, false),
];

/// The streamed roster: constant-memory sheets of at most `limit` rows each.
struct Roster {
    limit: u32,
    sheet: usize,
    sheets: u32,
    next_row: u32,
    seq: u64,
}

impl Roster {
    fn start(
        book: &mut Workbook,
        config: &Config,
        limit: u32,
        index: usize,
        s: &Styles,
    ) -> Result<Roster, XlsxError> {
        let mut r = Roster {
            limit,
            sheet: index,
            sheets: 0,
            next_row: 0,
            seq: 0,
        };
        r.add_sheet(book, config, s)?;
        Ok(r)
    }

    fn add_sheet(
        &mut self,
        book: &mut Workbook,
        config: &Config,
        s: &Styles,
    ) -> Result<(), XlsxError> {
        if self.sheets > 0 {
            self.finish(book)?;
            self.sheet += 1;
        }
        self.sheets += 1;
        let name = if self.sheets == 1 {
            ROSTER_SHEET.to_string()
        } else {
            format!("{ROSTER_SHEET}({})", self.sheets)
        };
        let ws = book.add_worksheet_with_constant_memory()?;
        ws.set_name(&name)?;
        list_header(ws, config, &ROSTER_COLUMNS, s)?;
        self.next_row = 1;
        Ok(())
    }

    fn write(
        &mut self,
        book: &mut Workbook,
        config: &Config,
        r: &CountedRow,
        e: Eligibility,
        s: &Styles,
    ) -> Result<(), XlsxError> {
        if self.next_row >= self.limit {
            self.add_sheet(book, config, s)?;
        }
        self.seq += 1;
        let row = self.next_row;
        let ws = book.worksheet_from_index(self.sheet)?;
        let p = &r.row;
        ws.write_number(row, 0, self.seq as f64)?;
        text(ws, row, 1, &r.unit, None)?;
        text(ws, row, 2, &r.month.to_string(), None)?;
        text(ws, row, 3, &p.name, None)?;
        if config.plan.mask_ids {
            text(ws, row, 4, &mask_id(&p.id), None)?;
        } else {
            text(ws, row, 4, &p.id, None)?;
        }
        text(ws, row, 5, &p.enterprise, None)?;
        text(ws, row, 6, &p.credit_code, None)?;
        text(ws, row, 7, &p.category, None)?;
        match u16::try_from(p.date.year())
            .ok()
            .and_then(|y| ExcelDateTime::from_ymd(y, p.date.month() as u8, p.date.day() as u8).ok())
        {
            Some(d) => ws.write_datetime_with_format(row, 8, &d, &s.date)?,
            None => ws.write_string(row, 8, p.date.to_string())?,
        };
        ws.write_number(row, 9, p.hours)?;
        text(ws, row, 10, if p.passed { "合格" } else { "不合格" }, None)?;
        text(ws, row, 11, &p.certificate, None)?;
        text(ws, row, 12, &e.label(config.plan.year), None)?;
        ws.write_number(row, 13, r.submission as f64)?;
        ws.write_number(row, 14, f64::from(p.line))?;
        self.next_row += 1;
        Ok(())
    }

    /// Put the filter buttons on the current sheet's header.
    fn finish(&mut self, book: &mut Workbook) -> Result<(), XlsxError> {
        let ws = book.worksheet_from_index(self.sheet)?;
        ws.autofilter(
            0,
            0,
            self.next_row.saturating_sub(1),
            ROSTER_COLUMNS.len() as u16 - 1,
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Writing the master on disk.

/// Write the master at `config.master_path()`: render into a temporary file in the same
/// folder, fsync, keep the previous version under `<archive>/master/` (the newest
/// `master.versions_kept`), then rename over the old file. When the old file cannot be replaced
/// — held open (Excel on a Windows share) or read-only — retry with backoff, then write
/// `master.<timestamp>.xlsx` beside it and log a warning: the new content is never lost.
/// Returns where the master was written. An unchanged master is left untouched.
pub fn rebuild(
    config: &Config,
    ledger: &Ledger,
    now: DateTime<Tz>,
) -> Result<PathBuf, MasterError> {
    let target = config.master_path();
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    std::fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the master's folder"))?;
    remove_stale_temps(&dir);
    let started = std::time::Instant::now();
    let mut tmp = tempfile::Builder::new()
        .prefix(TEMP_PREFIX)
        .suffix(TEMP_SUFFIX)
        .tempfile_in(&dir)
        .map_err(io_err(&dir, "cannot create a temporary file"))?;
    let tmp_path = tmp.path().to_path_buf();
    {
        let mut out = std::io::BufWriter::new(tmp.as_file_mut());
        render_to(config, ledger, now, &RenderOptions::default(), &mut out)?;
        out.flush().map_err(io_err(&tmp_path, "cannot write"))?;
    }
    shared_mode(tmp.as_file(), &target);
    tmp.as_file()
        .sync_all()
        .map_err(io_err(tmp.path(), "cannot fsync"))?;

    if target.is_file() && same_content(tmp.path(), &target) {
        tracing::info!(path = %target.display(), "master unchanged");
        return Ok(target);
    }
    let stamp = now.format("%Y%m%dT%H%M%S").to_string();
    let stem = target
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("master")
        .to_string();
    if target.is_file() {
        // A full or missing archive must not hold the bureau's view back: warn and go on.
        if let Err(e) = archive_previous(config, &target, &stem, &stamp) {
            tracing::warn!(error = %e, "the previous master was not archived");
        }
    }

    let mut tmp = tmp;
    let mut last_error = None;
    for (attempt, wait) in std::iter::once(0).chain(RENAME_BACKOFF_MS).enumerate() {
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait));
        }
        if is_read_only(&target) {
            last_error = Some(std::io::Error::new(
                std::io::ErrorKind::PermissionDenied,
                "the file is read-only",
            ));
            continue;
        }
        match tmp.persist(&target) {
            Ok(_) => {
                sync_dir(&dir);
                // Versions written beside it while it was held open are stale now.
                remove_all(&versions(&dir, &stem), "a stale copy of the master");
                tracing::info!(path = %target.display(), ms = started.elapsed().as_millis() as u64, "master written");
                return Ok(target);
            }
            Err(e) => {
                tracing::debug!(attempt, error = %e.error, path = %target.display(), "cannot replace the master yet");
                last_error = Some(e.error);
                tmp = e.file;
            }
        }
    }

    // Held open: write the new version beside it under a name nobody holds.
    let earlier = versions(&dir, &stem);
    let name = format!("{stem}.{stamp}.xlsx");
    let fallback = crate::intake::free_name(&dir, &name, |p| p.exists());
    tmp.persist_noclobber(&fallback)
        .map_err(|e| MasterError::Io {
            path: fallback.clone(),
            what: "cannot write the master beside the one held open",
            source: e.error,
        })?;
    sync_dir(&dir);
    // Only the newest version beside it is kept (one still held open stays too).
    remove_all(&earlier, "an earlier copy of the master");
    tracing::warn!(
        path = %target.display(),
        written = %fallback.display(),
        error = %last_error.map(|e| e.to_string()).unwrap_or_default(),
        "the master is held open or read-only and could not be replaced; the new version was written beside it — close the file and run `tally rebuild`"
    );
    Ok(fallback)
}

/// Temporary files are private (0600); the master is for everyone on the share: keep the old
/// file's mode, or 0644 for a first master.
fn shared_mode(file: &std::fs::File, like: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(like)
            .map(|m| m.permissions().mode() & 0o777)
            .ok()
            .filter(|m| m & 0o200 != 0)
            .unwrap_or(0o644);
        let _ = file.set_permissions(std::fs::Permissions::from_mode(mode));
    }
    #[cfg(not(unix))]
    let _ = (file, like);
}

fn is_read_only(path: &Path) -> bool {
    std::fs::metadata(path)
        .map(|m| m.permissions().readonly())
        .unwrap_or(false)
}

/// Whether two files hold the same bytes (streamed).
fn same_content(a: &Path, b: &Path) -> bool {
    let (Ok(fa), Ok(fb)) = (std::fs::File::open(a), std::fs::File::open(b)) else {
        return false;
    };
    match (fa.metadata(), fb.metadata()) {
        (Ok(ma), Ok(mb)) if ma.len() == mb.len() => {}
        _ => return false,
    }
    let (mut ra, mut rb) = (std::io::BufReader::new(fa), std::io::BufReader::new(fb));
    let (mut ba, mut bb) = (vec![0u8; 64 * 1024], vec![0u8; 64 * 1024]);
    loop {
        let Ok(n) = read_full(&mut ra, &mut ba) else {
            return false;
        };
        let Ok(m) = read_full(&mut rb, &mut bb) else {
            return false;
        };
        if n != m || ba[..n] != bb[..m] {
            return false;
        }
        if n == 0 {
            return true;
        }
    }
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Copy the current master to `<archive>/master/<stem>.<stamp>.xlsx` — unless the newest copy
/// there already holds these bytes (a master held open for a while) — and prune the oldest.
fn archive_previous(
    config: &Config,
    current: &Path,
    stem: &str,
    stamp: &str,
) -> Result<(), MasterError> {
    let dir = config.archive_dir().join(ARCHIVE_SUBDIR);
    std::fs::create_dir_all(&dir).map_err(io_err(&dir, "cannot create the archive folder"))?;
    if let Some(newest) = versions(&dir, stem).pop()
        && same_content(&newest, current)
    {
        return Ok(());
    }
    let dest = crate::intake::free_name(&dir, &format!("{stem}.{stamp}.xlsx"), |p| p.exists());
    crate::intake::copy_durable(current, &dest).map_err(|e| MasterError::Io {
        path: dest.clone(),
        what: "cannot archive the previous master",
        source: std::io::Error::other(e.to_string()),
    })?;
    let old = versions(&dir, stem);
    let excess = old.len().saturating_sub(config.master.versions_kept);
    remove_all(&old[..excess], "an old archived master");
    Ok(())
}

/// (timestamp, sequence) of `<stem>.<YYYYMMDDTHHMMSS>.xlsx` or `<stem>.<stamp> (n).xlsx`.
fn version_key(stem: &str, name: &str) -> Option<(String, u32)> {
    let rest = name
        .strip_prefix(stem)?
        .strip_prefix('.')?
        .strip_suffix(".xlsx")?;
    let (stamp, n) = match rest.split_once(" (") {
        Some((stamp, n)) => (stamp, n.strip_suffix(')')?.parse().ok()?),
        None => (rest, 1),
    };
    let b = stamp.as_bytes();
    let is_stamp = b.len() == 15
        && b[8] == b'T'
        && b.iter()
            .enumerate()
            .all(|(i, c)| i == 8 || c.is_ascii_digit());
    is_stamp.then(|| (stamp.to_string(), n))
}

/// Versions of a master in a folder (archived copies, or fallbacks beside it), oldest first.
fn versions(dir: &Path, stem: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<((String, u32), PathBuf)> = entries
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((version_key(stem, e.file_name().to_str()?)?, e.path())))
        .collect();
    found.sort();
    found.into_iter().map(|(_, p)| p).collect()
}

/// Remove derived files (old masters; they can always be rebuilt); one held open stays.
fn remove_all(paths: &[PathBuf], what: &str) {
    for path in paths {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove {what}");
        }
    }
}

/// Remove temporary files that an interrupted rebuild left behind (older than an hour).
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.filter_map(|e| e.ok()) {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE_TEMP);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::returns::Row;
    use chrono::NaiveDate;

    fn config() -> Config {
        Config::parse(
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml")),
            Path::new("tally.toml"),
            Path::new("."),
        )
        .unwrap()
    }

    /// A deterministic spread of rows: repeated persons, other units, failed results,
    /// dates outside the year, an unknown category and malformed IDs.
    fn rows(config: &Config, n: u32) -> Vec<CountedRow> {
        let units = ["西兴街道", "长河街道", "浦沿街道", "江北科技园", "旧单位"];
        let mut cats = config.plan.category_names();
        cats.push("未知类别".into());
        let mut x: u64 = 0x2545_f491;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|i| {
                let p = next() % 40;
                let id = match p {
                    0 => "12345".to_string(),
                    1 => "33010819800101001x".to_string(),
                    _ => format!(
                        "3301081980010{:04}{}",
                        p,
                        if p % 3 == 0 { "X" } else { "7" }
                    ),
                };
                let month = 1 + (next() % 12) as u32;
                let year = if next() % 10 == 0 { 2019 } else { 2020 };
                CountedRow {
                    submission: i64::from(i / 7 + 1),
                    unit: units[(next() % 5) as usize].to_string(),
                    month: YearMonth::new(2020, month).unwrap(),
                    row: Row {
                        line: 2 + i % 7,
                        name: format!("人员{p}"),
                        id,
                        enterprise: "某公司".into(),
                        credit_code: String::new(),
                        category: cats[(next() % cats.len() as u64) as usize].clone(),
                        date: NaiveDate::from_ymd_opt(year, month, 1 + (next() % 28) as u32)
                            .unwrap(),
                        hours: 8.0,
                        passed: next() % 5 != 0,
                        certificate: String::new(),
                    },
                }
            })
            .collect()
    }

    fn figures(config: &Config, rows: &[CountedRow]) -> Figures {
        let mut t = Tally::new(config);
        for r in rows {
            t.add(r, eligibility(config, r));
        }
        t.finish()
    }

    #[test]
    fn streamed_figures_equal_count_on_the_same_rows() {
        for rule in [Counting::Persons, Counting::PersonTimes] {
            let mut c = config();
            c.plan.categories[1].counting = rule;
            c.plan.categories[2].require_pass = false;
            for n in [0, 1, 50, 400] {
                let rows = rows(&c, n);
                let f = figures(&c, &rows);
                assert_eq!(f.completed, count::completed(&c.plan, &rows), "{n} rows");
                assert_eq!(
                    f.monthly,
                    count::monthly_cumulative(&c.plan, &rows),
                    "{n} rows"
                );
                let expected: Vec<_> = count::doubles(&rows)
                    .into_iter()
                    .map(|d| (d.id, d.name, d.across_units, d.reports))
                    .collect();
                let got: Vec<_> = f
                    .doubles
                    .into_iter()
                    .map(|d| {
                        let reports = d
                            .reports
                            .into_iter()
                            .map(|e| (e.unit, e.month, e.category, e.submission))
                            .collect::<Vec<_>>();
                        (d.id, d.name, d.across_units, reports)
                    })
                    .collect();
                assert_eq!(got, expected, "{n} rows");
            }
        }
    }

    #[test]
    fn status_from_figures_equals_count_status() {
        let c = config();
        let rows = rows(&c, 300);
        let accepted = [("西兴街道".to_string(), YearMonth::new(2020, 1).unwrap())].into();
        for now in ["2020-03-01", "2020-07-01", "2021-01-10"] {
            let now = calendar::parse_now(now, c.plan.tz).unwrap();
            let expected = count::status(&c.plan, now, &rows, &accepted);
            assert_eq!(status_of(&c, now, &figures(&c, &rows), &accepted), expected);
        }
    }

    #[test]
    fn ids_pack_both_ways() {
        for id in [
            "33010819800101001X",
            "110101190001010000",
            "99999999999999999X",
        ] {
            assert_eq!(unpack_id(pack_id(id).unwrap()), id);
        }
        assert!(pack_id("33010819800101001x").is_none());
        assert!(pack_id("3301081980010100").is_none());
        assert!(pack_id("3301081980010100١X").is_none());
    }

    #[test]
    fn free_text_is_masked() {
        assert_eq!(
            crate::core::ids::mask_ids_in(
                "第 3 行身份证号 33010819800101001X 有误，电话 057187654321"
            ),
            "第 3 行身份证号 330108********001X 有误，电话 057187654321"
        );
        assert_eq!(
            crate::core::ids::mask_ids_in("330108198001010"),
            "330108*****1010"
        );
        assert_eq!(crate::core::ids::mask_ids_in("值 12"), "值 12");
    }

    #[test]
    fn versions_sort_by_stamp_then_number() {
        let mut keys: Vec<_> = [
            "master.20200702T000000.xlsx",
            "master.20200701T000000 (2).xlsx",
            "master.20200701T000000.xlsx",
            "master.20200701T000000 (10).xlsx",
        ]
        .iter()
        .map(|n| version_key("master", n).unwrap())
        .collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                ("20200701T000000".to_string(), 1),
                ("20200701T000000".to_string(), 2),
                ("20200701T000000".to_string(), 10),
                ("20200702T000000".to_string(), 1)
            ]
        );
        for other in [
            "notes.txt",
            "master.xlsx",
            "master.backup.xlsx",
            "master.2020.xlsx",
        ] {
            assert!(version_key("master", other).is_none(), "{other}");
        }
        assert!(version_key("考核汇总", "考核汇总.20200701T000000.xlsx").is_some());
    }

    #[test]
    fn roster_limit_must_leave_room_for_a_row() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("t.db")).unwrap();
        let c = config();
        let now = calendar::parse_now("2020-07-01", c.plan.tz).unwrap();
        let err = render_with(&c, &ledger, now, &RenderOptions { rows_per_sheet: 1 }).unwrap_err();
        assert!(matches!(err, MasterError::RowsPerSheet(1)), "{err}");
        assert!(render_with(&c, &ledger, now, &RenderOptions { rows_per_sheet: 2 }).is_ok());
    }
}
