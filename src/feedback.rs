//! The feedback workbook `<stem>.错误说明.xlsx` a unit gets beside a rejected return (DESIGN
//! §4a, §5): a 错误说明 sheet listing every finding, then a copy of the return's own sheets with
//! each flagged cell tinted and annotated. It only builds bytes: no file I/O (hence no
//! constant-memory worksheets, which spill to temp files), no clock (fixed document time), so
//! the same input always renders the same bytes. Text from the return is written as text, never
//! as a formula.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate, NaiveTime};
use rust_xlsxwriter::{
    DocProperties, ExcelDateTime, Format, FormatAlign, FormatBorder, FormatUnderline, Note, Url,
    Workbook, Worksheet, XlsxError,
};
use unicode_width::UnicodeWidthStr;

use crate::core::findings::{Finding, Severity, a1};
use crate::core::form::{COVER_MONTH, COVER_UNIT};
use crate::core::workbook::{Cell, Sheet, Workbook as RawWorkbook, format_number};
use crate::excel::{
    self, ERROR_FILL, ERROR_FONT, LAST_COL, LAST_ROW, MAX_NOTE, MAX_SHEET_NAME, WARNING_FILL, clip,
    utf16_len, write_text,
};

/// Name of the first sheet, the list of findings.
pub const FEEDBACK_SHEET: &str = "错误说明";
/// Title on the first sheet.
pub const TITLE: &str = "报表退回说明";
/// The one-line instruction under the counts.
pub const INSTRUCTION: &str =
    "改正标红的单元格后，将改好的文件重新放入本单位文件夹即可；提醒（黄色）不影响接收。";
/// Headers of the findings table.
pub const TABLE_HEADERS: [&str; 7] = [
    "序号",
    "级别",
    "工作表",
    "单元格",
    "问题代码",
    "填写内容",
    "说明及改正方法",
];
/// Zero-based row of the findings table's header on the first sheet.
pub const TABLE_HEADER_ROW: u32 = 8;

const TABLE_WIDTHS: [f64; 7] = [6.0, 6.0, 12.0, 9.0, 20.0, 26.0, 64.0];
const HINT: &str = "后面各工作表是您报送的原表：有问题的单元格已标红（错误）或标黄（提醒），\
                    鼠标移到单元格上可看到说明；点击下表“单元格”一栏可直接跳到该单元格。";
const UNKNOWN: &str = "未能识别";
const NOTE_AUTHOR: &str = "报表审核";

/// Text of links to a cell.
const LINK_FONT: &str = "0563C1";

/// Excel refuses more hyperlinks than 65,530 in one worksheet; stay below.
const MAX_LINKS: usize = 65_000;
/// Column widths of copied sheets: Excel's default and our cap.
const DEFAULT_WIDTH: f64 = 8.43;
const MAX_WIDTH: f64 = 40.0;

/// What the feedback workbook is about.
pub struct FeedbackInput<'a> {
    /// The plan's title, for the page header.
    pub plan: &'a str,
    /// The rejected file's name, e.g. "2020-05.xlsx".
    pub file_name: &'a str,
    /// Canonical unit name, if known.
    pub unit: Option<&'a str>,
    /// Reported month ("2020-05"), if known.
    pub month: Option<&'a str>,
    /// When the file was received, formatted by the caller ("2020-06-03 14:05").
    pub received_at: &'a str,
    /// The raw cells as read; `None` when the file could not be read.
    pub workbook: Option<&'a RawWorkbook>,
    pub findings: &'a [Finding],
}

/// Render the feedback workbook to .xlsx bytes.
pub fn render(input: &FeedbackInput) -> Result<Vec<u8>, XlsxError> {
    let styles = Styles::new();
    let sheets: &[Sheet] = input.workbook.map_or(&[], |w| w.sheets.as_slice());
    let names = copy_names(sheets);

    // Original sheet name → index of its copy (the first, should a name repeat).
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (i, sheet) in sheets.iter().enumerate() {
        index.entry(sheet.name.as_str()).or_insert(i);
    }
    // Per copied sheet: flagged cell → its mark. Built once, so writing stays linear.
    let mut marks: Vec<HashMap<(u32, u16), Mark>> = vec![HashMap::new(); sheets.len()];
    let mut targets: Vec<Option<(usize, u32, u16)>> = Vec::with_capacity(input.findings.len());
    for finding in input.findings {
        let target = locate(finding, &index);
        if let Some((i, row, col)) = target {
            marks[i].entry((row, col)).or_default().add(finding);
        }
        targets.push(target);
    }

    let mut book = Workbook::new();
    book.set_properties(
        &DocProperties::new()
            .set_title(TITLE)
            .set_creation_datetime(&excel::fixed_created()?),
    );

    let title = page_title(input);
    let summary = book.add_worksheet().set_name(FEEDBACK_SHEET)?;
    write_summary(
        summary,
        input,
        &targets,
        &names,
        !sheets.is_empty(),
        &title,
        &styles,
    )?;
    for ((sheet, name), marks) in sheets.iter().zip(&names).zip(&marks) {
        let copy = book.add_worksheet().set_name(name)?;
        write_copy(copy, sheet, marks, &title, &styles)?;
    }

    book.save_to_buffer()
}

/// The copy's sheet index and the zero-based cell a finding names, if it names one there.
fn locate(finding: &Finding, index: &HashMap<&str, usize>) -> Option<(usize, u32, u16)> {
    if finding.sheet.is_empty() || finding.cell.is_empty() {
        return None;
    }
    let i = *index.get(finding.sheet.as_str())?;
    let (row, col) = parse_a1(&finding.cell)?;
    Some((i, row, col))
}

/// What is wrong with one cell: the worst severity and one note line per finding.
#[derive(Debug, Clone, Default)]
struct Mark {
    error: bool,
    lines: Vec<String>,
}

impl Mark {
    fn add(&mut self, finding: &Finding) {
        self.error |= finding.severity == Severity::Error;
        self.lines
            .push(format!("[{}] {}", finding.code, finding.message));
    }

    fn tone(&self) -> Tone {
        if self.error {
            Tone::Error
        } else {
            Tone::Warning
        }
    }

    fn note(&self) -> Note {
        let text = self.lines.join("\n");
        // Roughly 46 half-width characters (23 Chinese) per line at 300 px.
        let lines: usize = self
            .lines
            .iter()
            .map(|l| l.width().div_ceil(46).max(1))
            .sum();
        let height = (lines * 16 + 12).clamp(60, 400);
        Note::new(clip(&text, MAX_NOTE))
            .set_author(NOTE_AUTHOR)
            .add_author_prefix(false)
            .set_font_size(10)
            .set_width(300)
            .set_height(u32::try_from(height).unwrap_or(400))
    }
}

/// The tint of a cell or table row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tone {
    Plain = 0,
    Error = 1,
    Warning = 2,
}

/// How a value cell of a copied sheet is formatted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    General = 0,
    Date = 1,
    DateTime = 2,
    /// An integer too long for General (it would show as 1.1E+17): all digits.
    Integer = 3,
}

/// The formats of the workbook, made once.
struct Styles {
    title: Format,
    count: Format,
    instruction: Format,
    hint: Format,
    header: Format,
    /// Findings table: [error, warning] × [left, center, link].
    rows: [[Format; 3]; 2],
    /// Copied cells: [kind] × [plain, error, warning].
    cells: [[Format; 3]; 4],
}

impl Styles {
    fn new() -> Styles {
        let row = |fill: &str| {
            Format::new()
                .set_background_color(fill)
                .set_border(FormatBorder::Thin)
                .set_text_wrap()
                .set_align(FormatAlign::Top)
        };
        let rows = [ERROR_FILL, WARNING_FILL].map(|fill| {
            [
                row(fill),
                row(fill).set_align(FormatAlign::Center),
                row(fill)
                    .set_align(FormatAlign::Center)
                    .set_font_color(LINK_FONT)
                    .set_underline(FormatUnderline::Single),
            ]
        });
        let kind = |k: usize| match k {
            1 => Format::new().set_num_format(excel::DATE_FORMAT),
            2 => Format::new().set_num_format("yyyy-mm-dd hh:mm:ss"),
            3 => Format::new().set_num_format("0"),
            _ => Format::new(),
        };
        let cells = [0, 1, 2, 3].map(|k| {
            [
                kind(k),
                excel::error_tint(kind(k)),
                excel::warning_tint(kind(k)),
            ]
        });
        Styles {
            title: Format::new().set_bold().set_font_size(16),
            count: Format::new()
                .set_bold()
                .set_font_size(12)
                .set_font_color(ERROR_FONT),
            instruction: Format::new().set_bold(),
            hint: Format::new().set_font_color("595959"),
            header: excel::header_format(Format::new()).set_text_wrap(),
            rows,
            cells,
        }
    }

    fn row(&self, severity: Severity, align: usize) -> &Format {
        let tone = usize::from(severity != Severity::Error);
        &self.rows[tone][align]
    }

    /// `None` for a plain General cell: written without a format.
    fn cell(&self, kind: Kind, tone: Tone) -> Option<&Format> {
        (kind != Kind::General || tone != Tone::Plain)
            .then(|| &self.cells[kind as usize][tone as usize])
    }
}

/// The 错误说明 sheet: header block, then one row per finding.
fn write_summary(
    ws: &mut Worksheet,
    input: &FeedbackInput,
    targets: &[Option<(usize, u32, u16)>],
    names: &[String],
    has_copies: bool,
    title: &str,
    st: &Styles,
) -> Result<(), XlsxError> {
    let errors = input.findings.iter().filter(|f| f.is_error()).count();
    let warnings = input.findings.len() - errors;

    ws.set_tab_color(ERROR_FONT);
    ws.write_string_with_format(0, 0, TITLE, &st.title)?;
    ws.set_row_height(0, 24)?;
    let info = [
        ("文件名", input.file_name),
        (COVER_UNIT, input.unit.unwrap_or(UNKNOWN)),
        (COVER_MONTH, input.month.unwrap_or(UNKNOWN)),
        ("接收时间", input.received_at),
    ];
    for (row, (label, value)) in (1u32..).zip(info) {
        let value = if value.trim().is_empty() {
            UNKNOWN
        } else {
            value
        };
        write_text(ws, row, 0, &format!("{label}：{value}"), None)?;
    }
    ws.write_string_with_format(
        5,
        0,
        format!("共 {errors} 处错误、{warnings} 处提醒"),
        &st.count,
    )?;
    ws.write_string_with_format(6, 0, INSTRUCTION, &st.instruction)?;
    if has_copies {
        ws.write_string_with_format(7, 0, HINT, &st.hint)?;
    }

    let header = TABLE_HEADER_ROW;
    for (col, (label, width)) in (0u16..).zip(TABLE_HEADERS.iter().zip(TABLE_WIDTHS)) {
        ws.write_string_with_format(header, col, *label, &st.header)?;
        ws.set_column_width(col, width)?;
    }

    let mut links = 0;
    for ((n, finding), target) in (1u32..).zip(input.findings).zip(targets) {
        let Some(row) = header.checked_add(n).filter(|r| *r <= LAST_ROW) else {
            break;
        };
        let sev = finding.severity;
        ws.write_number_with_format(row, 0, n, st.row(sev, 1))?;
        ws.write_string_with_format(row, 1, sev.label(), st.row(sev, 1))?;
        write_text(ws, row, 2, &finding.sheet, Some(st.row(sev, 0)))?;
        let cell = clip(&finding.cell, excel::MAX_TEXT);
        match target {
            Some((i, r, c)) if links < MAX_LINKS => {
                links += 1;
                let anchor = format!(
                    "internal:'{}'!{}",
                    names[*i].replace('\'', "''"),
                    a1(*r, (*c).into())
                );
                let url = Url::new(anchor).set_text(cell);
                ws.write_url_with_format(row, 3, url, st.row(sev, 2))?;
            }
            _ => {
                ws.write_string_with_format(row, 3, cell, st.row(sev, 1))?;
            }
        }
        ws.write_string_with_format(row, 4, finding.code.as_str(), st.row(sev, 0))?;
        write_text(ws, row, 5, &finding.value, Some(st.row(sev, 0)))?;
        write_text(ws, row, 6, &finding.message, Some(st.row(sev, 0)))?;
        // Spreadsheet programs do not grow a row for wrapped text on their own: size it.
        let message_width = UnicodeWidthStr::width(finding.message.as_str());
        let lines = message_width.div_ceil((TABLE_WIDTHS[6] as usize).saturating_sub(2).max(1));
        if lines > 1 {
            ws.set_row_height(row, 15.0 * lines.min(20) as f64)?;
        }
    }
    let last = header + u32::try_from(input.findings.len()).unwrap_or(LAST_ROW);
    ws.autofilter(header, 0, last.min(LAST_ROW), 6)?;

    ws.set_freeze_panes(header + 1, 0)?;
    excel::set_up_page(
        ws,
        &excel::Page {
            title,
            width: TABLE_WIDTHS.iter().sum(),
            repeat_rows: Some((header, header)),
        },
    )
}

/// The page header of every sheet: the plan, what the workbook is and the file it is about.
fn page_title(input: &FeedbackInput) -> String {
    format!("{}　{TITLE}：{}", input.plan, input.file_name)
}

/// One sheet of the return, cell for cell, flagged cells tinted and annotated.
fn write_copy(
    ws: &mut Worksheet,
    sheet: &Sheet,
    marks: &HashMap<(u32, u16), Mark>,
    title: &str,
    st: &Styles,
) -> Result<(), XlsxError> {
    let mut widths: Vec<usize> = Vec::new();
    for (r, cells) in sheet.rows.iter().enumerate() {
        let Some(r) = u32::try_from(r).ok().filter(|r| *r <= LAST_ROW) else {
            break;
        };
        for (c, cell) in cells.iter().enumerate() {
            let Some(c) = u16::try_from(c).ok().filter(|c| *c <= LAST_COL) else {
                break;
            };
            let tone = marks.get(&(r, c)).map_or(Tone::Plain, Mark::tone);
            let width = write_cell(ws, r, c, cell, tone, st)?;
            let c = usize::from(c);
            if widths.len() <= c {
                widths.resize(c + 1, 0);
            }
            widths[c] = widths[c].max(width);
        }
    }

    // Notes, in cell order; flagged cells outside the data still get their tint.
    let mut flagged: Vec<(&(u32, u16), &Mark)> = marks.iter().collect();
    flagged.sort_unstable_by_key(|(pos, _)| **pos);
    for (&(r, c), mark) in flagged {
        let inside = sheet
            .rows
            .get(r as usize)
            .is_some_and(|cells| usize::from(c) < cells.len());
        if !inside && let Some(format) = st.cell(Kind::General, mark.tone()) {
            ws.write_blank(r, c, format)?;
        }
        ws.insert_note(r, c, &mark.note())?;
    }

    let mut printed = 0.0;
    for (c, width) in (0u16..).zip(widths) {
        let width = (width as f64 * 1.1 + 2.0).min(MAX_WIDTH);
        if width > DEFAULT_WIDTH {
            ws.set_column_width(c, width)?;
        }
        printed += width.max(DEFAULT_WIDTH);
    }
    ws.set_print_gridlines(true);
    // The first row of a return's sheet is its header (the template's layout) or a title.
    let repeat = (sheet.rows.len() > 1).then_some((0, 0));
    excel::set_up_page(
        ws,
        &excel::Page {
            title,
            width: printed,
            repeat_rows: repeat,
        },
    )
}

/// Write one cell as it was read; returns its display width (for the column width).
fn write_cell(
    ws: &mut Worksheet,
    r: u32,
    c: u16,
    cell: &Cell,
    tone: Tone,
    st: &Styles,
) -> Result<usize, XlsxError> {
    let string = |ws: &mut Worksheet, s: &str| -> Result<usize, XlsxError> {
        let s = write_text(ws, r, c, s, st.cell(Kind::General, tone))?;
        Ok(s.lines().map(UnicodeWidthStr::width).max().unwrap_or(0))
    };
    match cell {
        Cell::Empty => {
            if let Some(f) = st.cell(Kind::General, tone) {
                ws.write_blank(r, c, f)?;
            }
            Ok(0)
        }
        // Always a string, whatever it starts with: text from a return is never a formula.
        Cell::Text(s) | Cell::Error(s) => string(ws, s),
        Cell::Number(n) if n.is_finite() => {
            let big = n.fract() == 0.0 && n.abs() >= 1e11 && n.abs() < 1e21;
            let (kind, shown) = if big {
                (Kind::Integer, format!("{n:.0}"))
            } else {
                (Kind::General, format_number(*n))
            };
            match st.cell(kind, tone) {
                Some(f) => ws.write_number_with_format(r, c, *n, f)?,
                None => ws.write_number(r, c, *n)?,
            };
            Ok(shown.len())
        }
        Cell::Number(_) => string(ws, &cell.display()),
        Cell::Bool(b) => {
            match st.cell(Kind::General, tone) {
                Some(f) => ws.write_boolean_with_format(r, c, *b, f)?,
                None => ws.write_boolean(r, c, *b)?,
            };
            Ok(5)
        }
        Cell::Date(iso) => match excel_date(iso) {
            Some((dt, kind)) => {
                let f = &st.cells[kind as usize][tone as usize];
                ws.write_datetime_with_format(r, c, &dt, f)?;
                Ok(if kind == Kind::Date { 10 } else { 19 })
            }
            None => string(ws, &cell.display()),
        },
    }
}

/// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS` as an Excel date; `None` when Excel cannot hold it.
fn excel_date(iso: &str) -> Option<(ExcelDateTime, Kind)> {
    let date = NaiveDate::parse_from_str(iso.get(..10)?, "%Y-%m-%d").ok()?;
    let time = iso
        .get(11..19)
        .and_then(|t| NaiveTime::parse_from_str(t, "%H:%M:%S").ok())
        .filter(|t| *t != NaiveTime::MIN);
    // Excel's dates begin on 1900-01-01 (serial 1); 0 would show as 1900-01-00.
    if date.year() < 1900 {
        return None;
    }
    match time {
        None => Some((excel::date(date)?, Kind::Date)),
        Some(t) => Some((excel::datetime(date.and_time(t))?, Kind::DateTime)),
    }
}

/// Zero-based (row, column) of an A1 reference such as `C7`, `$C$7`, `D3:D4` (its first cell)
/// or `培训台账!C7`; `None` when it is not one or lies beyond Excel's grid.
fn parse_a1(reference: &str) -> Option<(u32, u16)> {
    let cell = reference.rsplit('!').next()?.split(':').next()?.trim();
    let cell: String = cell.chars().filter(|ch| *ch != '$').collect();
    let letters = cell.bytes().take_while(u8::is_ascii_alphabetic).count();
    let (col, row) = cell.split_at(letters);
    if !(1..=3).contains(&col.len())
        || !(1..=7).contains(&row.len())
        || !row.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let col = col.bytes().fold(0u32, |n, b| {
        n * 26 + u32::from(b.to_ascii_uppercase() - b'A' + 1)
    }) - 1;
    let row = row.parse::<u32>().ok()?.checked_sub(1)?;
    if row > LAST_ROW || col > u32::from(LAST_COL) {
        return None;
    }
    Some((row, u16::try_from(col).ok()?))
}

/// Legal, distinct names for the copied sheets, none clashing with [`FEEDBACK_SHEET`]: the
/// original name where Excel allows it; `(原)` or `(2)`, `(3)`… appended on a clash.
fn copy_names(sheets: &[Sheet]) -> Vec<String> {
    let mut used: HashSet<String> = HashSet::from([FEEDBACK_SHEET.to_lowercase()]);
    let mut out = Vec::with_capacity(sheets.len());
    for (i, sheet) in sheets.iter().enumerate() {
        let base = legal_sheet_name(&sheet.name, i);
        let mut name = base.clone();
        let mut n = 1;
        while used.contains(&name.to_lowercase()) || name.eq_ignore_ascii_case("history") {
            n += 1;
            let suffix = if n == 2 {
                "(原)".to_string()
            } else {
                format!("({})", n - 1)
            };
            name = with_suffix(&base, &suffix);
        }
        used.insert(name.to_lowercase());
        out.push(name);
    }
    out
}

/// A name Excel accepts: no `[]:*?/\` or control characters, no leading or trailing
/// apostrophe, at most 31 UTF-16 units, not blank.
fn legal_sheet_name(name: &str, index: usize) -> String {
    let cleaned: String = name
        .chars()
        .map(|ch| {
            if matches!(ch, '[' | ']' | ':' | '*' | '?' | '/' | '\\') || ch.is_control() {
                '_'
            } else {
                ch
            }
        })
        .collect();
    let cleaned = clip(cleaned.trim_matches('\''), MAX_SHEET_NAME)
        .trim_end_matches('\'')
        .to_string();
    if cleaned.trim().is_empty() {
        format!("Sheet{}", index + 1)
    } else {
        cleaned
    }
}

fn with_suffix(base: &str, suffix: &str) -> String {
    let room = MAX_SHEET_NAME.saturating_sub(utf16_len(suffix));
    let base = clip(base, room);
    format!("{}{suffix}", base.trim_end_matches('\''))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::findings::Code;
    use crate::core::form::Column;
    use calamine::{Data, Reader, Xlsx, open_workbook_from_rs};
    use std::io::{Cursor, Read};

    fn text(s: &str) -> Cell {
        Cell::Text(s.to_string())
    }

    fn num(n: f64) -> Cell {
        Cell::Number(n)
    }

    fn sample() -> RawWorkbook {
        let cover = Sheet {
            name: "填报信息".into(),
            rows: vec![
                vec![text("培训情况月报")],
                vec![text("填报单位"), text("西兴街道")],
                vec![text("报送月份"), Cell::Date("2020-05-01T00:00:00".into())],
                vec![text("填报人"), text("=1+1")],
                vec![text("联系电话"), text("+86 123")],
            ],
            merged: vec![],
        };
        let header = Column::ALL.map(|c| text(c.header())).to_vec();
        let roster = Sheet {
            name: "培训台账".into(),
            rows: vec![
                header,
                vec![
                    num(1.0),
                    text("张三"),
                    text("11010519491231002X"),
                    text("杭州某某科技有限公司"),
                    text("91330108MA2XXXXX0Q"),
                    text("企业主要负责人"),
                    Cell::Date("2020-05-12T00:00:00".into()),
                    num(8.0),
                    text("合格"),
                    text("@SUM(A1)"),
                ],
                vec![
                    num(2.0),
                    text("李四"),
                    num(110101199001011000.0),
                    text("杭州某某物流有限公司"),
                    Cell::Empty,
                    text("其他从业人员"),
                    Cell::Date("2020-05-13T08:30:00".into()),
                    num(2.5),
                    Cell::Bool(true),
                    Cell::Error("#DIV/0!".into()),
                ],
                vec![num(3.0), text("王五")],
            ],
            merged: vec![],
        };
        let clash = Sheet {
            name: FEEDBACK_SHEET.into(),
            rows: vec![vec![text("原表自带的说明")]],
            merged: vec![],
        };
        RawWorkbook {
            sheets: vec![cover, roster, clash],
        }
    }

    fn findings() -> Vec<Finding> {
        vec![
            Finding::new(
                Code::IdInvalid,
                "培训台账",
                "C3",
                "110101199001011000",
                "身份证号以数字形式保存，末几位已丢失。请把该列设为文本后重新输入。",
            ),
            Finding::new(
                Code::DoubleReported,
                "培训台账",
                "C3",
                "110101199001011000",
                "该身份证号已由长河街道报送。",
            ),
            Finding::new(
                Code::CreditCodeInvalid,
                "培训台账",
                "E2",
                "91330108MA2XXXXX0Q",
                "统一社会信用代码校验位不符，请核对。",
            ),
            Finding::new(
                Code::MissingCell,
                "培训台账",
                "F4",
                "",
                "人员类别未填写，请从下拉列表中选择。",
            ),
            Finding::new(
                Code::MergedCells,
                "培训台账",
                "H12",
                "H12:H13",
                "培训台账中有合并单元格 H12:H13，请取消合并。",
            ),
            Finding::new(
                Code::HeaderMissing,
                "培训台账",
                "",
                "",
                "缺少表头“考核结果”。",
            ),
            Finding::new(
                Code::PeriodInvalid,
                FEEDBACK_SHEET,
                "A1",
                "",
                "原表的说明页。",
            ),
            Finding::file(Code::UnitMismatch, "报送单位与所在文件夹不符。"),
        ]
    }

    fn input<'a>(wb: Option<&'a RawWorkbook>, findings: &'a [Finding]) -> FeedbackInput<'a> {
        FeedbackInput {
            plan: "杭州高新区（滨江）2020年度安全生产培训计划",
            file_name: "2020-05.xlsx",
            unit: Some("西兴街道"),
            month: Some("2020-05"),
            received_at: "2020-06-03 14:05",
            workbook: wb,
            findings,
        }
    }

    fn open(bytes: Vec<u8>) -> Xlsx<Cursor<Vec<u8>>> {
        open_workbook_from_rs(Cursor::new(bytes)).expect("readable xlsx")
    }

    fn string_at(range: &calamine::Range<Data>, row: u32, col: u32) -> String {
        match range.get_value((row, col)) {
            Some(Data::String(s)) => s.clone(),
            other => panic!("({row},{col}) is not a string: {other:?}"),
        }
    }

    fn date_at(range: &calamine::Range<Data>, row: u32, col: u32) -> (u16, u8, u8, u8, u8, u8) {
        match range.get_value((row, col)) {
            Some(Data::DateTime(dt)) if !dt.is_duration() => {
                let (y, mo, d, h, mi, s, _) = dt.to_ymd_hms_milli();
                (y, mo, d, h, mi, s)
            }
            other => panic!("({row},{col}) is not a date: {other:?}"),
        }
    }

    /// Concatenated text of all `xl/comments*.xml` parts.
    fn comments(bytes: &[u8]) -> String {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let names: Vec<String> = zip
            .file_names()
            .filter_map(Result::ok)
            .filter(|n| n.starts_with("xl/comments"))
            .map(|n| n.into_owned())
            .collect();
        let mut out = String::new();
        for name in names {
            zip.by_name(&name)
                .unwrap()
                .read_to_string(&mut out)
                .unwrap();
        }
        out
    }

    #[test]
    fn sheets_in_order_with_the_clash_renamed() {
        let wb = sample();
        let f = findings();
        let book = open(render(&input(Some(&wb), &f)).unwrap());
        assert_eq!(
            book.sheet_names(),
            [FEEDBACK_SHEET, "填报信息", "培训台账", "错误说明(原)"]
        );
    }

    #[test]
    fn summary_lists_every_finding_in_order() {
        let wb = sample();
        let f = findings();
        let mut book = open(render(&input(Some(&wb), &f)).unwrap());
        let s = book.worksheet_range(FEEDBACK_SHEET).unwrap();
        assert_eq!(string_at(&s, 0, 0), TITLE);
        assert_eq!(string_at(&s, 1, 0), "文件名：2020-05.xlsx");
        assert_eq!(string_at(&s, 2, 0), "填报单位：西兴街道");
        assert_eq!(string_at(&s, 3, 0), "报送月份：2020-05");
        assert_eq!(string_at(&s, 4, 0), "接收时间：2020-06-03 14:05");
        assert_eq!(string_at(&s, 5, 0), "共 6 处错误、2 处提醒");
        assert_eq!(string_at(&s, 6, 0), INSTRUCTION);
        for (col, label) in (0u32..).zip(TABLE_HEADERS) {
            assert_eq!(string_at(&s, TABLE_HEADER_ROW, col), label);
        }
        for (i, finding) in f.iter().enumerate() {
            let row = TABLE_HEADER_ROW + 1 + i as u32;
            assert_eq!(
                s.get_value((row, 0)),
                Some(&Data::Float((i + 1) as f64)),
                "序号 of row {row}"
            );
            let texts: Vec<String> = (1..7)
                .map(|c| match s.get_value((row, c)) {
                    Some(Data::String(v)) => v.clone(),
                    _ => String::new(),
                })
                .collect();
            assert_eq!(
                texts,
                [
                    finding.severity.label(),
                    &finding.sheet,
                    &finding.cell,
                    finding.code.as_str(),
                    &finding.value,
                    &finding.message
                ]
            );
        }
        let below = TABLE_HEADER_ROW + 1 + f.len() as u32;
        assert!(matches!(s.get_value((below, 0)), None | Some(Data::Empty)));
    }

    #[test]
    fn original_values_at_original_positions_and_text_never_a_formula() {
        let wb = sample();
        let f = findings();
        let mut book = open(render(&input(Some(&wb), &f)).unwrap());

        let cover = book.worksheet_range("填报信息").unwrap();
        assert_eq!(string_at(&cover, 1, 1), "西兴街道");
        assert_eq!(date_at(&cover, 2, 1), (2020, 5, 1, 0, 0, 0));
        assert_eq!(string_at(&cover, 3, 1), "=1+1");
        assert_eq!(string_at(&cover, 4, 1), "+86 123");

        let roster = book.worksheet_range("培训台账").unwrap();
        assert_eq!(string_at(&roster, 0, 2), "身份证号");
        assert_eq!(string_at(&roster, 1, 2), "11010519491231002X");
        assert_eq!(string_at(&roster, 1, 9), "@SUM(A1)");
        assert_eq!(roster.get_value((1, 0)), Some(&Data::Float(1.0)));
        assert_eq!(
            roster.get_value((2, 2)),
            Some(&Data::Float(110101199001011000.0))
        );
        assert_eq!(roster.get_value((2, 7)), Some(&Data::Float(2.5)));
        assert_eq!(roster.get_value((2, 8)), Some(&Data::Bool(true)));
        assert_eq!(string_at(&roster, 2, 9), "#DIV/0!");
        assert_eq!(date_at(&roster, 1, 6), (2020, 5, 12, 0, 0, 0));
        assert_eq!(date_at(&roster, 2, 6), (2020, 5, 13, 8, 30, 0));
        assert_eq!(string_at(&roster, 3, 1), "王五");

        let clash = book.worksheet_range("错误说明(原)").unwrap();
        assert_eq!(string_at(&clash, 0, 0), "原表自带的说明");

        for (sheet, row, col) in [("填报信息", 3, 1), ("填报信息", 4, 1), ("培训台账", 1, 9)]
        {
            let formulas = book.worksheet_formula(sheet).unwrap();
            let formula = formulas.get_value((row, col)).cloned().unwrap_or_default();
            assert!(
                formula.is_empty(),
                "{sheet} ({row},{col}) has formula {formula:?}"
            );
        }
    }

    #[test]
    fn flagged_cells_carry_notes() {
        let wb = sample();
        let f = findings();
        let bytes = render(&input(Some(&wb), &f)).unwrap();
        let xml = comments(&bytes);
        for (cell, msg) in [
            ("C3", "[id-invalid] 身份证号以数字形式保存"),
            ("C3", "[double-reported] 该身份证号已由长河街道报送。"),
            ("E2", "[credit-code-invalid]"),
            ("F4", "[missing-cell]"),
            ("H12", "[merged-cells]"),
            ("A1", "[period-invalid] 原表的说明页。"),
        ] {
            assert!(
                xml.contains(&format!("ref=\"{cell}\"")),
                "no note on {cell}"
            );
            assert!(xml.contains(msg), "no note text {msg}");
        }
        // Two findings on C3 make one note; no note for findings without a cell.
        assert_eq!(xml.matches("ref=\"C3\"").count(), 1);
        assert!(!xml.contains("缺少表头"));
        assert!(!xml.contains("报送单位与所在文件夹不符"));
    }

    #[test]
    fn unreadable_file_gets_the_summary_alone() {
        let f = vec![Finding::file(
            Code::FileUnreadable,
            "文件无法打开，请用 Excel 另存为 .xlsx 后重新报送。",
        )];
        let mut inp = input(None, &f);
        inp.unit = None;
        inp.month = None;
        let bytes = render(&inp).unwrap();
        assert!(comments(&bytes).is_empty());
        let mut book = open(bytes);
        assert_eq!(book.sheet_names(), [FEEDBACK_SHEET]);
        let s = book.worksheet_range(FEEDBACK_SHEET).unwrap();
        assert_eq!(string_at(&s, 2, 0), "填报单位：未能识别");
        assert_eq!(string_at(&s, 5, 0), "共 1 处错误、0 处提醒");
        assert_eq!(string_at(&s, TABLE_HEADER_ROW + 1, 4), "file-unreadable");
    }

    #[test]
    fn same_input_same_bytes() {
        let wb = sample();
        let f = findings();
        let a = render(&input(Some(&wb), &f)).unwrap();
        let b = render(&input(Some(&wb), &f)).unwrap();
        assert!(a == b, "two renders differ");
    }

    #[test]
    fn sheet_names_are_made_legal_and_distinct() {
        let sheet = |name: &str| Sheet {
            name: name.into(),
            ..Sheet::default()
        };
        let long = "很长的工作表名称".repeat(5);
        let names = copy_names(&[
            sheet(FEEDBACK_SHEET),
            sheet("a/b:c"),
            sheet("'quoted'"),
            sheet(""),
            sheet(&long),
            sheet(&long),
            sheet("History"),
            sheet("DATA"),
            sheet("data"),
        ]);
        assert_eq!(names[0], "错误说明(原)");
        assert_eq!(names[1], "a_b_c");
        assert_eq!(names[2], "quoted");
        assert_eq!(names[3], "Sheet4");
        assert_eq!(utf16_len(&names[4]), 31);
        assert_ne!(names[4], names[5]);
        assert!(names[5].ends_with("(原)") && utf16_len(&names[5]) <= 31);
        assert_eq!(names[6], "History(原)");
        assert_eq!(names[7], "DATA");
        assert_eq!(names[8], "data(原)");
        // And rust_xlsxwriter accepts them all.
        let mut book = Workbook::new();
        for name in &names {
            book.add_worksheet().set_name(name).unwrap();
        }
        book.save_to_buffer().unwrap();
    }

    #[test]
    fn a1_references_parse() {
        assert_eq!(parse_a1("A1"), Some((0, 0)));
        assert_eq!(parse_a1("C7"), Some((6, 2)));
        assert_eq!(parse_a1("$AA$10"), Some((9, 26)));
        assert_eq!(parse_a1("D3:D4"), Some((2, 3)));
        assert_eq!(parse_a1("培训台账!C7"), Some((6, 2)));
        assert_eq!(parse_a1("XFD1048576"), Some((1_048_575, 16_383)));
        for bad in [
            "", "A0", "7", "C", "XFE1", "A1048577", "ABCD1", "C7x", "中1",
        ] {
            assert_eq!(parse_a1(bad), None, "{bad}");
        }
    }

    #[test]
    fn hostile_values_never_panic() {
        let wb = RawWorkbook {
            sheets: vec![Sheet {
                name: "x".into(),
                rows: vec![vec![
                    text(&"长".repeat(40_000)),
                    Cell::Number(f64::NAN),
                    Cell::Date("1899-12-31T00:00:00".into()),
                    Cell::Date("垃圾".into()),
                    Cell::Date("2020-13-01".into()),
                ]],
                merged: vec![],
            }],
        };
        let f = vec![Finding::new(Code::DateInvalid, "x", "XFD1048576", "", "m")];
        let mut book = open(render(&input(Some(&wb), &f)).unwrap());
        let s = book.worksheet_range("x").unwrap();
        assert_eq!(string_at(&s, 0, 0).chars().count(), excel::MAX_TEXT);
        assert_eq!(string_at(&s, 0, 2), "1899-12-31");
        assert_eq!(string_at(&s, 0, 3), "垃圾");
    }

    /// Writes `$TMPDIR/feedback-example.xlsx` for a look in a spreadsheet program:
    /// `cargo test --lib feedback::tests::example -- --ignored`.
    #[test]
    #[ignore]
    fn example() {
        let wb = sample();
        let f = findings();
        let path = std::env::temp_dir().join("feedback-example.xlsx");
        std::fs::write(&path, render(&input(Some(&wb), &f)).unwrap()).unwrap();
        eprintln!("wrote {}", path.display());
    }
}
