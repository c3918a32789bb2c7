//! A return: raw cells → typed return plus every finding (DESIGN.md §3, §4, §4a). Sheets are
//! found by content, labels matched after folding, every rule applied and every problem
//! reported at once. Pure: no disk, no clock (`now` comes in the context).

use crate::core::FastMap;
use crate::core::calendar::YearMonth;
use crate::core::dates;
use crate::core::findings::{Code, Finding, a1};
use crate::core::fold::{fold, trim};
use crate::core::form::{self, Column};
use crate::core::ids;
use crate::core::plan::{Plan, Unit};
use crate::core::workbook::{Cell, Sheet, Workbook, format_number};
use chrono::{DateTime, NaiveDate};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};

/// What a check needs besides the cells.
pub struct Context<'a> {
    pub plan: &'a Plan,
    /// The unit whose folder the file came from (`--unit`); None: take the cover's word.
    pub unit: Option<&'a Unit>,
    pub now: DateTime<Tz>,
    /// Most roster rows in one return (`limits.max_rows`).
    pub max_rows: usize,
}

/// One counted person-training, as reported.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// 1-based row number in the roster sheet.
    pub line: u32,
    pub name: String,
    /// Upper-case, white space removed.
    pub id: String,
    pub enterprise: String,
    pub credit_code: String,
    /// Canonical category name.
    pub category: String,
    pub date: NaiveDate,
    pub hours: f64,
    pub passed: bool,
    pub certificate: String,
}

/// Where each part of the return was found (sheet names as in the file).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub cover: Option<String>,
    pub roster: Option<String>,
    /// Zero-based header row of the roster.
    pub header_row: Option<u32>,
    /// Zero-based column of each known roster column.
    pub columns: BTreeMap<String, u32>,
    pub summary: Option<String>,
}

/// A return after checking.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Return {
    /// Canonical unit name from the cover, when it names a configured unit.
    pub unit: Option<String>,
    pub month: Option<YearMonth>,
    pub reporter: String,
    pub phone: String,
    /// Rows that passed every check; complete when the return is accepted.
    pub rows: Vec<Row>,
    /// Non-blank roster rows read.
    pub row_count: usize,
    /// Non-blank roster rows per recognised category, valid or not (what 汇总 must state).
    pub category_rows: BTreeMap<String, u64>,
    pub layout: Layout,
    pub findings: Vec<Finding>,
}

impl Return {
    pub fn accepted(&self) -> bool {
        crate::core::findings::accepted(&self.findings)
    }
}

/// Roster header labels other than the template's own that mean the same column.
const COLUMN_ALIASES: &[(&str, Column)] = &[
    ("身份证号码", Column::Id),
    ("公民身份号码", Column::Id),
    ("身份证", Column::Id),
    ("单位名称", Column::Enterprise),
    ("企业(单位)名称", Column::Enterprise),
    ("所在企业", Column::Enterprise),
    ("信用代码", Column::CreditCode),
    ("类别", Column::Category),
    ("培训类别", Column::Category),
    ("培训时间", Column::Date),
    ("学时", Column::Hours),
    ("考试结果", Column::Result),
    ("考核情况", Column::Result),
    ("证书号", Column::Certificate),
    ("证书号码", Column::Certificate),
];

/// Folded header labels (template headers and aliases), computed once.
fn folded_columns() -> &'static [(String, Column)] {
    static FOLDED: std::sync::OnceLock<Vec<(String, Column)>> = std::sync::OnceLock::new();
    FOLDED.get_or_init(|| {
        Column::ALL
            .into_iter()
            .map(|c| (fold(c.header()), c))
            .chain(COLUMN_ALIASES.iter().map(|(a, c)| (fold(a), *c)))
            .collect()
    })
}

fn column_of(label: &str) -> Option<Column> {
    let f = fold(label);
    folded_columns()
        .iter()
        .find(|(l, _)| *l == f)
        .map(|(_, c)| *c)
}

const HEADER_SCAN_ROWS: u32 = 20;

/// Zero-based row of the roster header in `sheet`, if any: the first row in the first 20 with
/// at least three known headers, 姓名 or 身份证号 among them.
fn find_roster_header(sheet: &Sheet) -> Option<u32> {
    (0..sheet.height().min(HEADER_SCAN_ROWS)).find(|&r| is_roster_header(sheet, r))
}

/// Row `r` of `sheet` heads a roster: three known headers or more, 姓名 or 身份证号 among them.
fn is_roster_header(sheet: &Sheet, r: u32) -> bool {
    let cols: Vec<Column> = (0..sheet.width(r))
        .filter_map(|c| match sheet.get(r, c) {
            Cell::Text(s) => column_of(s),
            _ => None,
        })
        .collect();
    cols.len() >= 3 && (cols.contains(&Column::Name) || cols.contains(&Column::Id))
}

/// (row, category col, count col) of a summary header.
fn find_summary_header(sheet: &Sheet) -> Option<(u32, u32, u32)> {
    for r in 0..sheet.height().min(HEADER_SCAN_ROWS) {
        let mut cat = None;
        let mut count = None;
        for c in 0..sheet.width(r) {
            if let Cell::Text(s) = sheet.get(r, c) {
                let f = fold(s);
                if f == fold(form::SUMMARY_CATEGORY) && cat.is_none() {
                    cat = Some(c);
                } else if f == fold(form::SUMMARY_COUNT) && count.is_none() {
                    count = Some(c);
                }
            }
        }
        if let (Some(a), Some(b)) = (cat, count) {
            return Some((r, a, b));
        }
    }
    None
}

/// Where each cover label's value sits: label → (row, column of the value).
type CoverLabels = HashMap<&'static str, (u32, u32)>;

/// The cover labels found in `sheet`, each with where its value sits.
fn find_cover(sheet: &Sheet) -> CoverLabels {
    let mut found = HashMap::new();
    for r in 0..sheet.height().min(40) {
        for c in 0..sheet.width(r).min(10) {
            let Cell::Text(s) = sheet.get(r, c) else {
                continue;
            };
            let f = fold(s.trim_end_matches([':', '：']));
            let f = f.trim_end_matches(':');
            if let Some(label) = form::COVER_LABELS.into_iter().find(|l| fold(l) == f) {
                // The value sits in the next column (template: label in A, value in B).
                let value_col = c + 1;
                found.entry(label).or_insert((r, value_col));
            }
        }
    }
    found
}

/// Pick the sheet for a role: among the sheets that match by content, prefer the one whose
/// name folds to the expected name.
fn pick<'w, T>(
    sheets: &'w [Sheet],
    name: &str,
    mut probe: impl FnMut(&Sheet) -> Option<T>,
    exclude: Option<&str>,
) -> Option<(&'w Sheet, T)> {
    let mut hits: Vec<(&Sheet, T)> = sheets
        .iter()
        .filter(|s| Some(s.name.as_str()) != exclude)
        .filter_map(|s| probe(s).map(|t| (s, t)))
        .collect();
    let preferred = hits.iter().position(|(s, _)| fold(&s.name) == fold(name));
    match preferred {
        Some(i) => Some(hits.swap_remove(i)),
        None if !hits.is_empty() => Some(hits.remove(0)),
        None => None,
    }
}

fn text_of(cell: &Cell) -> String {
    text_in(cell).into_owned()
}

/// [`text_of`], borrowed from the cell when it holds text (the common case: no copy).
fn text_in(cell: &Cell) -> std::borrow::Cow<'_, str> {
    match cell {
        Cell::Text(s) => std::borrow::Cow::Borrowed(trim(s)),
        other => std::borrow::Cow::Owned(trim(&other.display()).to_string()),
    }
}

/// An ID or credit code as compared: NFKC (full-width digits and letters), no white space,
/// upper case. ASCII, as nearly every one is, is its own NFKC form.
fn normalized_code(raw: &str) -> String {
    if raw.is_ascii() {
        // As `char::is_whitespace` has it for ASCII (U+000B included).
        let space = |b: &u8| matches!(b, b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r');
        if raw.bytes().any(|b| space(&b)) {
            let kept: Vec<u8> = raw.bytes().filter(|b| !space(b)).collect();
            String::from_utf8_lossy(&kept).to_ascii_uppercase()
        } else {
            raw.to_ascii_uppercase()
        }
    } else {
        unicode_normalization::UnicodeNormalization::nfkc(raw)
            .filter(|c| !c.is_whitespace())
            .collect::<String>()
            .to_uppercase()
    }
}

fn number_of(cell: &Cell) -> Option<f64> {
    match cell {
        Cell::Number(n) => Some(*n),
        Cell::Text(s) => {
            let n: String = unicode_normalization::UnicodeNormalization::nfkc(s.as_str())
                .filter(|c| !c.is_whitespace())
                .collect();
            n.parse::<f64>().ok().filter(|v| v.is_finite())
        }
        _ => None,
    }
}

/// Check a workbook's cells against the plan.
pub fn check(wb: &Workbook, ctx: &Context<'_>) -> Return {
    check_with(wb, ctx, None)
}

/// [`check`], taking the rows of the roster checked while the workbook was read
/// ([`RowsAhead`]) where they stand.
pub fn check_with(wb: &Workbook, ctx: &Context<'_>, ahead: Option<RowsAhead>) -> Return {
    check_on(wb, ctx, ahead, || {
        std::thread::available_parallelism().map_or(1, usize::from)
    })
}

/// The cover sheet among `sheets`: the one named so, else the first with a 填报单位 label; never
/// the roster.
fn pick_cover<'w>(sheets: &'w [Sheet], roster: Option<&str>) -> Option<(&'w Sheet, CoverLabels)> {
    pick(
        sheets,
        form::COVER_SHEET,
        |s| {
            let f = find_cover(s);
            f.contains_key(form::COVER_UNIT).then_some(f)
        },
        roster,
    )
}

/// [`check_with`], a large roster's rows checked on up to `cores()` threads (asked only for a
/// large roster: finding out reads the system's settings).
fn check_on(
    wb: &Workbook,
    ctx: &Context<'_>,
    ahead: Option<RowsAhead>,
    cores: fn() -> usize,
) -> Return {
    let mut ret = Return::default();
    let mut out: Vec<Finding> = Vec::new();

    let roster = pick(&wb.sheets, form::ROSTER_SHEET, find_roster_header, None);
    let cover = pick_cover(&wb.sheets, roster.as_ref().map(|(s, _)| s.name.as_str()));
    let summary = pick(
        &wb.sheets,
        form::RETURN_SUMMARY_SHEET,
        find_summary_header,
        roster.as_ref().map(|(s, _)| s.name.as_str()),
    );

    match &cover {
        Some((sheet, labels)) => {
            ret.layout.cover = Some(sheet.name.clone());
            check_cover(sheet, labels, ctx, &mut ret, &mut out);
        }
        None => out.push(Finding::new(
            Code::SheetMissing,
            "",
            "",
            form::COVER_SHEET,
            format!(
                "未找到“{}”工作表（A列应有 填报单位、报送月份、填报人、联系电话，B列填写内容）。请使用区里下发的模板填报。",
                form::COVER_SHEET
            ),
        )),
    }

    match &roster {
        Some((sheet, header_row)) => {
            ret.layout.roster = Some(sheet.name.clone());
            ret.layout.header_row = Some(*header_row);
            check_roster(sheet, *header_row, ctx, ahead, cores, &mut ret, &mut out);
        }
        None => out.push(Finding::new(
            Code::SheetMissing,
            "",
            "",
            form::ROSTER_SHEET,
            format!(
                "未找到“{}”工作表（表头应为 序号、姓名、身份证号、企业名称、统一社会信用代码、人员类别、培训日期、培训学时、考核结果、证书编号）。请使用区里下发的模板填报。",
                form::ROSTER_SHEET
            ),
        )),
    }

    if let (Some((sheet, (r, cat_col, count_col))), Some(_)) = (&summary, &roster) {
        ret.layout.summary = Some(sheet.name.clone());
        check_summary(sheet, *r, *cat_col, *count_col, ctx, &ret, &mut out);
    }

    ret.findings = out;
    ret
}

fn check_cover(
    sheet: &Sheet,
    labels: &HashMap<&'static str, (u32, u32)>,
    ctx: &Context<'_>,
    ret: &mut Return,
    out: &mut Vec<Finding>,
) {
    let name = &sheet.name;
    let cell_at = |label: &str| labels.get(label).map(|&(r, c)| (sheet.get(r, c), a1(r, c)));

    for label in form::COVER_LABELS {
        if let Some((Cell::Error(e), at)) = cell_at(label) {
            out.push(Finding::new(
                Code::FormulaError,
                name,
                at,
                e.clone(),
                format!("“{label}”的值是错误值 {e}，请直接填写内容，不要使用公式。"),
            ));
        }
    }

    // 填报单位
    match cell_at(form::COVER_UNIT) {
        Some((Cell::Error(_), _)) => {}
        Some((cell, at)) if !cell.is_blank() => {
            let written = text_of(cell);
            match ctx.plan.find_unit(&written) {
                None => out.push(Finding::new(
                    Code::UnitUnknown,
                    name,
                    at,
                    written.clone(),
                    format!(
                        "填报单位“{written}”不在本计划的单位名单中，请填写本单位的全称：{}。",
                        ctx.plan.unit_names().join("、")
                    ),
                )),
                Some(unit) => {
                    ret.unit = Some(unit.name.clone());
                    if let Some(expected) = ctx.unit
                        && expected.name != unit.name
                    {
                        out.push(Finding::new(
                                Code::UnitMismatch,
                                name,
                                at,
                                written.clone(),
                                format!(
                                    "此文件放在“{}”的文件夹中，但填报单位写的是“{written}”。各单位只能报送本单位的数据：请改为“{}”，或把文件放到“{}”的文件夹。",
                                    expected.name, expected.name, unit.name
                                ),
                            ));
                    }
                }
            }
        }
        other => {
            let at = other.map(|(_, at)| at).unwrap_or_default();
            out.push(Finding::new(
                Code::MissingCell,
                name,
                at,
                "",
                "“填报单位”为空，请填写本单位名称。",
            ));
        }
    }

    // 报送月份
    let plan_year = ctx.plan.year;
    match cell_at(form::COVER_MONTH) {
        Some((Cell::Error(_), _)) => {}
        Some((cell, at)) => match dates::month_of(cell) {
            None => out.push(Finding::new(
                Code::PeriodInvalid,
                name,
                at,
                cell.display(),
                if cell.is_blank() {
                    format!("“报送月份”为空，请填写本次报送的月份，如 {plan_year}-05。")
                } else {
                    format!(
                        "无法识别报送月份“{}”，请按 {plan_year}-05 或 {plan_year}年5月 的格式填写。",
                        cell.display()
                    )
                },
            )),
            Some(m) => {
                ret.month = Some(m);
                if m.year != plan_year {
                    out.push(Finding::new(
                        Code::PeriodOutsidePlan,
                        name,
                        at.clone(),
                        m.to_string(),
                        format!(
                            "报送月份 {} 不在计划年度 {plan_year} 年内，请核对月份；本系统只接收 {plan_year} 年的月报。",
                            m.label_zh()
                        ),
                    ));
                } else if m.first_day() > ctx.now.date_naive() {
                    out.push(Finding::new(
                        Code::PeriodFuture,
                        name,
                        at,
                        m.to_string(),
                        format!(
                            "报送月份 {} 尚未开始（今天是 {}），不能提前报送，请核对月份。",
                            m.label_zh(),
                            dates::iso(ctx.now.date_naive())
                        ),
                    ));
                }
            }
        },
        None => out.push(Finding::new(
            Code::PeriodInvalid,
            name,
            "",
            "",
            "未找到“报送月份”一栏，请在A列写“报送月份”、B列填写月份（如 2020-05）。",
        )),
    }

    // 填报人, 联系电话
    for (label, slot) in [
        (form::COVER_REPORTER, &mut ret.reporter),
        (form::COVER_PHONE, &mut ret.phone),
    ] {
        match cell_at(label) {
            Some((Cell::Error(_), _)) => {}
            Some((cell, _)) if !cell.is_blank() => *slot = text_of(cell),
            other => {
                let at = other.map(|(_, at)| at).unwrap_or_default();
                out.push(Finding::new(
                    Code::MissingCell,
                    name,
                    at,
                    "",
                    format!("“{label}”为空，请填写，以便区里核对时联系。"),
                ));
            }
        }
    }
}

fn check_roster(
    sheet: &Sheet,
    header_row: u32,
    ctx: &Context<'_>,
    ahead: Option<RowsAhead>,
    cores: fn() -> usize,
    ret: &mut Return,
    out: &mut Vec<Finding>,
) {
    let name = &sheet.name;

    // Merged ranges below the header shift rows in some readers and hide cells: refuse them.
    const MERGED_REPORTED: usize = 50;
    let merged_count = sheet
        .merged
        .iter()
        .filter(|m| m.last_row > header_row)
        .count();
    for m in sheet
        .merged
        .iter()
        .filter(|m| m.last_row > header_row)
        .take(MERGED_REPORTED)
    {
        {
            out.push(Finding::new(
                Code::MergedCells,
                name,
                a1(m.first_row, m.first_col),
                m.a1(),
                format!(
                    "培训台账中有合并单元格 {}，请取消合并，并在每一行分别填写完整内容。",
                    m.a1()
                ),
            ));
        }
    }
    if merged_count > MERGED_REPORTED {
        out.push(Finding::new(
            Code::MergedCells,
            name,
            "",
            format!("{merged_count}"),
            format!(
                "培训台账中共有 {merged_count} 处合并单元格（以上只列出前 {MERGED_REPORTED} 处），请全部取消合并后逐行填写。"
            ),
        ));
    }

    // Header.
    let (columns, extra) = roster_columns(sheet, header_row, Some(&mut *out));
    ret.layout.columns = columns
        .iter()
        .map(|(k, v)| (k.header().to_string(), *v))
        .collect();

    // Rows checked while the workbook was read stand when they were checked on this very
    // basis (and no merged range hides a cell); the rest are checked now.
    let merged_below: Vec<&crate::core::workbook::Range> = sheet
        .merged
        .iter()
        .filter(|m| m.last_row > header_row)
        .collect();
    let basis = Basis {
        sheet: name.clone(),
        header_row,
        columns: columns.clone(),
        extra: extra.clone(),
        month: ret.month,
    };
    let ahead =
        ahead.filter(|a| merged_below.is_empty() && !a.spoiled && a.basis.as_ref() == Some(&basis));
    let from = ahead.as_ref().map_or(header_row + 1, |a| a.next);

    // Rows: those checked ahead are the non-blank ones before `from`.
    let data_rows: Vec<u32> = ahead
        .iter()
        .flat_map(|a| a.rows.iter().map(|(r, _, _)| *r))
        .chain((from..sheet.height()).filter(|&r| !is_blank_row(sheet, r, &columns, &extra)))
        .collect();
    ret.row_count = data_rows.len();
    if data_rows.len() > ctx.max_rows {
        out.push(Finding::file(
            Code::TooLarge,
            format!(
                "培训台账有 {} 行，超过单个文件 {} 行的上限，请分文件报送或联系区里。",
                data_rows.len(),
                ctx.max_rows
            ),
        ));
        return;
    }

    // A column holds a handful of distinct labels: fold each once, not once per row (those
    // checked ahead were counted then).
    let mut labels = Labels::default();
    let mut categories = ahead
        .as_ref()
        .map(|a| a.categories.clone())
        .unwrap_or_default();
    if let Some(c) = columns.get(&Column::Category) {
        let rest = &data_rows[data_rows.partition_point(|&r| r < from)..];
        for &r in rest {
            labels.count_category(ctx.plan, &text_in(sheet.get(r, *c)), &mut categories);
        }
    }
    ret.category_rows = categories.into_iter().collect();
    // Cells hidden under a merged range (all but its top-left) are reported once, as
    // merged-cells, not again as blank: looked up only for blank required cells.
    let covered = |r: u32, c: u32| {
        merged_below.iter().any(|m| {
            (m.first_row..=m.last_row).contains(&r)
                && (m.first_col..=m.last_col).contains(&c)
                && (m.first_row, m.first_col) != (r, c)
        })
    };
    let ahead = ahead.map_or_else(Vec::new, RowsAhead::into_rows);
    let rest = &data_rows[data_rows.partition_point(|&r| r < from)..];
    let checked = std::iter::once(ahead).chain(check_rows(
        sheet, rest, &columns, &extra, &covered, ctx, ret.month, &labels, cores,
    ));
    let mut seen = SeenIds::new(ctx.plan, data_rows.len());
    ret.rows.reserve(data_rows.len());
    // Run by run: each run's list is freed once taken, so the rows are held about once.
    for (r, row, findings) in checked.flatten() {
        out.extend(findings);
        if let Some(row) = row {
            if let Some(first) = seen.first(&row, r + 1) {
                let col = columns[&Column::Id];
                out.push(Finding::new(
                    Code::IdDuplicate,
                    name,
                    a1(r, col),
                    ids::mask_id(&row.id),
                    format!(
                        "该身份证号在第 {first} 行已填报过（同为“{}”）。同一人在本月报表中只需填一行；如确属两次培训可保留，但按人数统计只计一次。",
                        row.category
                    ),
                ));
            }
            ret.rows.push(row);
        }
    }
}

/// The roster's known columns (by their header) and its other headed columns, from its
/// header row; the header's findings to `out`, when given.
fn roster_columns(
    sheet: &Sheet,
    header_row: u32,
    mut out: Option<&mut Vec<Finding>>,
) -> (BTreeMap<Column, u32>, Vec<u32>) {
    let name = &sheet.name;
    let mut push = |f: Finding| {
        if let Some(out) = out.as_deref_mut() {
            out.push(f);
        }
    };
    let mut columns: BTreeMap<Column, u32> = BTreeMap::new();
    let mut extra: Vec<u32> = Vec::new();
    for c in 0..sheet.width(header_row) {
        let cell = sheet.get(header_row, c);
        if cell.is_blank() {
            continue;
        }
        let label = text_of(cell);
        match column_of(&label) {
            Some(col) => {
                if let Some(first) = columns.get(&col) {
                    push(Finding::new(
                        Code::HeaderDuplicate,
                        name,
                        a1(header_row, c),
                        label.clone(),
                        format!(
                            "表头“{label}”出现了两次（另一处在 {}），请删除多余的一列。",
                            a1(header_row, *first)
                        ),
                    ));
                } else {
                    columns.insert(col, c);
                }
            }
            None => {
                extra.push(c);
                push(Finding::new(
                    Code::ExtraColumn,
                    name,
                    a1(header_row, c),
                    label.clone(),
                    format!(
                        "表头“{label}”不是模板中的栏目，该列内容不会被统计；如无必要请删除该列。"
                    ),
                ));
            }
        }
    }
    for col in Column::ALL {
        if col.header_required() && !columns.contains_key(&col) {
            push(Finding::new(
                Code::HeaderMissing,
                name,
                "",
                col.header(),
                format!(
                    "培训台账缺少“{}”一列，请按模板在表头加上该列并逐行填写。",
                    col.header()
                ),
            ));
        }
    }
    (columns, extra)
}

/// What a roster's rows are checked on: its sheet, header row, columns and the return's month.
#[derive(Debug, Clone, PartialEq)]
struct Basis {
    sheet: String,
    header_row: u32,
    columns: BTreeMap<Column, u32>,
    extra: Vec<u32>,
    month: Option<YearMonth>,
}

/// A roster's rows checked while the workbook is still being read (the reader's answer comes
/// cell by cell, [`RowsAhead::observe`]): once a sheet's roster header is there (the month
/// taken from a cover read whole before it, if any), each row is checked as soon as the next
/// one begins. [`check_with`]
/// takes those rows where the whole workbook checks on the same basis (the same roster
/// sheet, header, columns and month, no merged range below the header), else checks every
/// row again: the return is the same either way.
#[derive(Default)]
pub struct RowsAhead {
    basis: Option<Basis>,
    /// The place of the basis's sheet in the workbook.
    sheet: usize,
    /// The sheet (by place) looked at for a header, and its rows looked at so far: each row
    /// once, and none past the first 20 (a sheet of a thousand columns costs no more).
    looked: (usize, u32),
    /// Every non-blank row from the header's next up to `next`, checked, in order. The first
    /// ones' rows are in `handed` instead.
    rows: Vec<CheckedRow>,
    /// The first rows, in runs as they were handed out ([`RowsAhead::hand_out`]): shared with
    /// whoever took them, not copied.
    handed: Vec<std::sync::Arc<Vec<Row>>>,
    next: u32,
    labels: Labels,
    /// Those rows per canonical category named, valid or not (`Return::category_rows`).
    categories: FastMap<String, u64>,
    /// Cells came out of order: nothing checked ahead is taken.
    spoiled: bool,
}

impl RowsAhead {
    /// Check what can be of the workbook read so far: `sheets`, the last one still being read
    /// (its last row may be incomplete); `ordered`, every cell so far came in the order of
    /// rows of its sheet.
    pub fn observe(&mut self, sheets: &[Sheet], ordered: bool, ctx: &Context<'_>) {
        self.observe_as(sheets, ordered, ctx, false);
    }

    /// [`RowsAhead::observe`] the whole workbook, read to its end: its last row is whole too.
    pub fn observe_ended(&mut self, sheets: &[Sheet], ordered: bool, ctx: &Context<'_>) {
        self.observe_as(sheets, ordered, ctx, true);
    }

    fn observe_as(&mut self, sheets: &[Sheet], ordered: bool, ctx: &Context<'_>, ended: bool) {
        if self.spoiled || !ordered {
            self.spoiled = true;
            self.rows = Vec::new();
            self.handed = Vec::new();
            return;
        }
        let Some(last) = sheets.len().checked_sub(1) else {
            return;
        };
        if self.basis.is_none() {
            let sheet = &sheets[last];
            if self.looked.0 != last {
                self.looked = (last, 0);
            }
            // The first header among the first rows, as `find_roster_header`; a row is whole
            // once a row after it has begun.
            let whole = sheet.height().saturating_sub(1).min(HEADER_SCAN_ROWS);
            let from = self.looked.1;
            self.looked.1 = self.looked.1.max(whole);
            let Some(header_row) = (from..whole).find(|&r| is_roster_header(sheet, r)) else {
                return;
            };
            let month = pick_cover(&sheets[..last], Some(&sheet.name)).and_then(|(s, labels)| {
                let mut ret = Return::default();
                check_cover(s, &labels, ctx, &mut ret, &mut Vec::new());
                ret.month
            });
            let (columns, extra) = roster_columns(sheet, header_row, None);
            self.basis = Some(Basis {
                sheet: sheet.name.clone(),
                header_row,
                columns,
                extra,
                month,
            });
            self.sheet = last;
            self.next = header_row + 1;
        }
        let Some(basis) = &self.basis else {
            return;
        };
        let sheet = &sheets[self.sheet];
        // Rows before the last one begun are whole; all of them once the sheet has ended.
        let whole = if self.sheet == last && !ended {
            sheet.height().saturating_sub(1)
        } else {
            sheet.height()
        };
        for r in self.next..whole {
            if is_blank_row(sheet, r, &basis.columns, &basis.extra) {
                continue;
            }
            if let Some(c) = basis.columns.get(&Column::Category) {
                self.labels.count_category(
                    ctx.plan,
                    &text_in(sheet.get(r, *c)),
                    &mut self.categories,
                );
            }
            let mut findings = Vec::new();
            let row = check_row(
                sheet,
                r,
                &basis.columns,
                &basis.extra,
                &|_, _| false,
                ctx,
                basis.month,
                &mut self.labels,
                &mut findings,
            );
            self.rows.push((r, row, findings));
        }
        self.next = self.next.max(whole);
    }

    /// How many rows are checked so far.
    pub fn checked(&self) -> usize {
        self.rows.len()
    }

    /// The rows checked so far from the `from`th on (none of them handed out yet), as each
    /// counts, or None when one of them does not (an error found in it: the return will not
    /// be accepted). Should the return be accepted with these rows taken ([`check_with`]),
    /// they are its rows in this order. They are shared, not copied: the return takes them
    /// back from the run (a copy only of a run still held elsewhere then).
    pub fn hand_out(&mut self, from: usize) -> Option<std::sync::Arc<Vec<Row>>> {
        let rest = self.rows.get_mut(from..)?;
        let counts = rest
            .iter()
            .all(|(_, row, findings)| row.is_some() && !findings.iter().any(Finding::is_error));
        if !counts || rest.is_empty() {
            return None;
        }
        let run: Vec<Row> = rest
            .iter_mut()
            .filter_map(|(_, row, _)| row.take())
            .collect();
        let run = std::sync::Arc::new(run);
        self.handed.push(std::sync::Arc::clone(&run));
        Some(run)
    }

    /// The rows checked, those handed out back in their places.
    fn into_rows(self) -> Vec<CheckedRow> {
        let mut rows = self.rows;
        let handed = self.handed.into_iter().flat_map(|run| {
            std::sync::Arc::try_unwrap(run).unwrap_or_else(|shared| shared.as_ref().clone())
        });
        for ((_, row, _), handed) in rows.iter_mut().zip(handed) {
            *row = Some(handed);
        }
        rows
    }
}

/// The persons of a return seen so far, per category: where each was first reported. An ID
/// that passed its check (17 digits and a digit or X) is packed in a number, the category is
/// the plan's own by its place (found among the plan's few by comparing): no text is copied or
/// hashed per row.
struct SeenIds<'p> {
    categories: Vec<&'p str>,
    packed: FastMap<(u64, u16), u32>,
    /// What cannot be packed (never, for a checked ID), by its text.
    other: FastMap<(String, String), u32>,
}

impl<'p> SeenIds<'p> {
    fn new(plan: &'p Plan, rows: usize) -> Self {
        SeenIds {
            categories: plan.categories.iter().map(|c| c.name.as_str()).collect(),
            packed: FastMap::with_capacity_and_hasher(rows, Default::default()),
            other: FastMap::default(),
        }
    }

    /// The line where `row`'s person was first reported in its category, or None when this
    /// (at `line`) is the first.
    fn first(&mut self, row: &Row, line: u32) -> Option<u32> {
        let category = self
            .categories
            .iter()
            .position(|&c| c == row.category)
            .and_then(|i| u16::try_from(i).ok());
        let packed = ids::pack_resident_id(&row.id).zip(category);
        let first = match packed {
            Some(key) => *self.packed.entry(key).or_insert(line),
            None => *self
                .other
                .entry((row.id.clone(), row.category.clone()))
                .or_insert(line),
        };
        (first != line).then_some(first)
    }
}

/// One data row checked: its number (0-based), what it counts as, its findings.
type CheckedRow = (u32, Option<Row>, Vec<Finding>);

/// Rows from this many on are checked on every core (`cores`), in as many runs of rows;
/// below it, on one (a thread costs more than a small return's check).
const PARALLEL_ROWS: usize = 4_096;

/// Each data row checked ([`check_row`]): its number, what it counts as, and its findings,
/// in the order of `data_rows`, in runs of rows. Rows do not depend on one another here
/// (duplicates within the return are found after), so a large roster is split into runs
/// checked side by side.
#[allow(clippy::too_many_arguments)]
fn check_rows(
    sheet: &Sheet,
    data_rows: &[u32],
    columns: &BTreeMap<Column, u32>,
    extra: &[u32],
    covered: &(dyn Fn(u32, u32) -> bool + Sync),
    ctx: &Context<'_>,
    month: Option<YearMonth>,
    labels: &Labels,
    cores: fn() -> usize,
) -> Vec<Vec<CheckedRow>> {
    let run = |rows: &[u32]| {
        let mut labels = labels.clone();
        rows.iter()
            .map(|&r| {
                let mut findings = Vec::new();
                let row = check_row(
                    sheet,
                    r,
                    columns,
                    extra,
                    covered,
                    ctx,
                    month,
                    &mut labels,
                    &mut findings,
                );
                (r, row, findings)
            })
            .collect::<Vec<_>>()
    };
    let cores = if data_rows.len() < PARALLEL_ROWS {
        1
    } else {
        cores()
    };
    if cores < 2 {
        return vec![run(data_rows)];
    }
    let size = data_rows.len().div_ceil(cores);
    std::thread::scope(|scope| {
        let handles: Vec<_> = data_rows
            .chunks(size)
            .map(|rows| scope.spawn(move || run(rows)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

fn is_blank_row(sheet: &Sheet, r: u32, columns: &BTreeMap<Column, u32>, extra: &[u32]) -> bool {
    let mut any = false;
    for (col, c) in columns {
        if *col == Column::Seq {
            continue;
        }
        if !sheet.get(r, *c).is_blank() {
            any = true;
        }
    }
    for c in extra {
        if !sheet.get(r, *c).is_blank() {
            any = true;
        }
    }
    if !any {
        return true;
    }
    // A 合计/小计 line under the roster is not a person.
    let id_blank = columns
        .get(&Column::Id)
        .is_none_or(|c| sheet.get(r, *c).is_blank());
    id_blank
        && (0..sheet.width(r)).any(|c| match sheet.get(r, c) {
            Cell::Text(s) => matches!(fold(s).as_str(), "合计" | "小计" | "总计"),
            _ => false,
        })
}

/// Folded labels of one roster, memoised by the text as written: a category or result column
/// holds a handful of distinct values over thousands of rows.
#[derive(Default, Clone)]
struct Labels {
    categories: FastMap<String, Option<String>>,
    results: FastMap<String, Option<bool>>,
}

impl Labels {
    /// The canonical category a label names (`Plan::find_category`).
    fn category(&mut self, plan: &Plan, written: &str) -> Option<&str> {
        if !self.categories.contains_key(written) {
            let found = plan.find_category(written).map(|c| c.name.clone());
            self.categories.insert(written.to_string(), found);
        }
        self.categories.get(written).and_then(|c| c.as_deref())
    }

    /// Count a row under the canonical category its label names, if any.
    fn count_category(&mut self, plan: &Plan, written: &str, counts: &mut FastMap<String, u64>) {
        let Some(cat) = self.category(plan, written) else {
            return;
        };
        match counts.get_mut(cat) {
            Some(n) => *n += 1,
            None => {
                counts.insert(cat.to_string(), 1);
            }
        }
    }

    /// 合格 → true, 不合格 → false, anything else → None.
    fn result(&mut self, written: &str) -> Option<bool> {
        if let Some(&r) = self.results.get(written) {
            return r;
        }
        let f = fold(written);
        let r = if f == fold(form::RESULT_PASS) {
            Some(true)
        } else if f == fold(form::RESULT_FAIL) {
            Some(false)
        } else {
            None
        };
        self.results.insert(written.to_string(), r);
        r
    }
}

#[allow(clippy::too_many_arguments)]
fn check_row(
    sheet: &Sheet,
    r: u32,
    columns: &BTreeMap<Column, u32>,
    extra: &[u32],
    covered: &(dyn Fn(u32, u32) -> bool + Sync),
    ctx: &Context<'_>,
    month: Option<YearMonth>,
    labels: &mut Labels,
    out: &mut Vec<Finding>,
) -> Option<Row> {
    let name = &sheet.name;
    let line = r + 1;
    let before = out.len();
    let mut push = |code: Code, c: u32, value: String, message: String| {
        out.push(Finding::new(code, name, a1(r, c), value, message));
    };

    // Error values anywhere in the row.
    let mut error_cols = Vec::new();
    for c in columns.values().chain(extra) {
        if let Cell::Error(e) = sheet.get(r, *c) {
            error_cols.push(*c);
            push(
                Code::FormulaError,
                *c,
                e.clone(),
                format!(
                    "第 {line} 行此单元格是错误值 {e}（公式出错），请直接填写正确的内容，不要使用公式。"
                ),
            );
        }
    }

    let cell = |col: Column| -> Option<(&Cell, u32)> {
        let c = *columns.get(&col)?;
        if error_cols.contains(&c) {
            return None;
        }
        Some((sheet.get(r, c), c))
    };
    // Required cells that are blank.
    let mut missing = |col: Column, c: u32| {
        out.push(Finding::new(
            Code::MissingCell,
            name,
            a1(r, c),
            "",
            format!("第 {line} 行“{}”为空，请补填。", col.header()),
        ));
    };
    let mut present = |col: Column| -> Option<(&Cell, u32)> {
        let (v, c) = cell(col)?;
        if v.is_blank() {
            if col.cell_required() && !covered(r, c) {
                missing(col, c);
            }
            return None;
        }
        Some((v, c))
    };

    let person = present(Column::Name).map(|(v, _)| text_of(v));
    let id_cell = present(Column::Id);
    let enterprise = present(Column::Enterprise).map(|(v, _)| text_of(v));
    let credit_cell = present(Column::CreditCode);
    let category_cell = present(Column::Category);
    let date_cell = present(Column::Date);
    let hours_cell = present(Column::Hours);
    let result_cell = present(Column::Result);
    let certificate = present(Column::Certificate).map(|(v, _)| text_of(v));

    let mut out_push = |code: Code, c: u32, value: String, message: String| {
        out.push(Finding::new(code, name, a1(r, c), value, message));
    };

    let id = id_cell.and_then(|(v, c)| match v {
        Cell::Number(n) => {
            out_push(
                Code::IdInvalid,
                c,
                format_number(*n),
                format!(
                    "第 {line} 行身份证号被存成了数字，Excel 只保留15位有效数字，末尾几位已丢失。请先把该列设为“文本”格式，再重新录入完整的18位身份证号。"
                ),
            );
            None
        }
        _ => {
            let raw = text_in(v);
            let id = normalized_code(&raw);
            match ids::check_resident_id(&id) {
                Ok(()) => Some(id),
                Err(problem) => {
                    out_push(
                        Code::IdInvalid,
                        c,
                        raw.into_owned(),
                        format!("第 {line} 行{}", problem.message_zh()),
                    );
                    None
                }
            }
        }
    });

    let credit_code = credit_cell.map_or(String::new(), |(v, c)| {
        let raw = text_in(v);
        let code = normalized_code(&raw);
        if let Err(problem) = ids::check_credit_code(&code) {
            out_push(
                Code::CreditCodeInvalid,
                c,
                raw.into_owned(),
                format!("第 {line} 行{}（仅提醒，不影响接收）", problem.message_zh()),
            );
        }
        code
    });

    let category = category_cell.and_then(|(v, c)| {
        let written = text_in(v);
        match labels.category(ctx.plan, &written) {
            Some(cat) => Some(cat.to_string()),
            None => {
                out_push(
                    Code::CategoryUnknown,
                    c,
                    written.to_string(),
                    format!(
                        "第 {line} 行人员类别“{written}”不在本计划中，请从下拉列表中选择：{}。",
                        ctx.plan.category_names().join("、")
                    ),
                );
                None
            }
        }
    });

    let plan_year = ctx.plan.year;
    let date = date_cell.and_then(|(v, c)| match dates::date_of(v) {
        None => {
            out_push(
                Code::DateInvalid,
                c,
                v.display(),
                format!(
                    "第 {line} 行培训日期“{}”无法识别，请按 {plan_year}-05-12 的格式填写。",
                    v.display()
                ),
            );
            None
        }
        Some(d) => {
            if chrono::Datelike::year(&d) != plan_year {
                out_push(
                    Code::DateOutsidePlan,
                    c,
                    dates::iso(d),
                    format!(
                        "第 {line} 行培训日期 {} 不在计划年度 {plan_year} 年内，不能计入本年度，请核对日期。",
                        dates::iso(d)
                    ),
                );
                None
            } else if d > ctx.now.date_naive() {
                out_push(
                    Code::DateInvalid,
                    c,
                    dates::iso(d),
                    format!(
                        "第 {line} 行培训日期 {} 晚于今天（{}），培训尚未发生，请核对日期。",
                        dates::iso(d),
                        dates::iso(ctx.now.date_naive())
                    ),
                );
                None
            } else {
                if let Some(m) = month
                    && m.year == plan_year && !m.contains(d) {
                        out_push(
                            Code::DateOutsidePeriod,
                            c,
                            dates::iso(d),
                            format!(
                                "第 {line} 行培训日期 {} 不在报送月份 {} 内。已按培训日期计入；如日期填错请更正（仅提醒）。",
                                dates::iso(d),
                                m.label_zh()
                            ),
                        );
                    }
                Some(d)
            }
        }
    });

    // A person cannot be trained before being born: the ID or the date is mistyped.
    if let (Some(id_text), Some(d), Some((_, c))) = (&id, date, id_cell)
        && let Some(birth) = id_text.get(6..14).and_then(dates::parse_compact)
        && birth > d
    {
        out_push(
            Code::IdInvalid,
            c,
            ids::mask_id(id_text),
            format!(
                "第 {line} 行身份证号中的出生日期 {} 晚于培训日期 {}，身份证号或培训日期有误，请核对。",
                dates::iso(birth),
                dates::iso(d)
            ),
        );
    }

    let hours = hours_cell.and_then(|(v, c)| match number_of(v) {
        Some(h) if h > 0.0 && h <= 200.0 => Some(h),
        _ => {
            out_push(
                Code::HoursInvalid,
                c,
                v.display(),
                format!(
                    "第 {line} 行培训学时“{}”不是有效的学时数，请填写大于0、不超过200的数字（如 8 或 1.5）。",
                    v.display()
                ),
            );
            None
        }
    });

    let passed = result_cell.and_then(|(v, c)| {
        let written = text_of(v);
        match labels.result(&written) {
            Some(passed) => Some(passed),
            None => {
                out_push(
                    Code::ResultInvalid,
                    c,
                    written.clone(),
                    format!("第 {line} 行考核结果“{written}”无效，请填写“合格”或“不合格”。"),
                );
                None
            }
        }
    });

    if out[before..].iter().any(Finding::is_error) {
        return None;
    }
    Some(Row {
        line,
        name: person?,
        id: id?,
        enterprise: enterprise?,
        credit_code,
        category: category?,
        date: date?,
        hours: hours?,
        passed: passed?,
        certificate: certificate.unwrap_or_default(),
    })
}

fn check_summary(
    sheet: &Sheet,
    header_row: u32,
    cat_col: u32,
    count_col: u32,
    ctx: &Context<'_>,
    ret: &Return,
    out: &mut Vec<Finding>,
) {
    let name = &sheet.name;
    let mut lines: Vec<(u32, Option<String>, &Cell)> = Vec::new();
    let mut total: Option<(u32, &Cell)> = None;
    for r in header_row + 1..sheet.height() {
        let label_cell = sheet.get(r, cat_col);
        if label_cell.is_blank() {
            continue;
        }
        let label = text_of(label_cell);
        let count = sheet.get(r, count_col);
        if matches!(fold(&label).as_str(), "合计" | "总计") {
            total = Some((r, count));
            continue;
        }
        let cat = ctx.plan.find_category(&label).map(|c| c.name.clone());
        if cat.is_none() {
            out.push(Finding::new(
                Code::CategoryUnknown,
                name,
                a1(r, cat_col),
                label.clone(),
                format!(
                    "汇总页中的人员类别“{label}”不在本计划中，应为：{}。",
                    ctx.plan.category_names().join("、")
                ),
            ));
        }
        lines.push((r, cat, count));
    }
    let filled =
        lines.iter().any(|(_, _, c)| !c.is_blank()) || total.is_some_and(|(_, c)| !c.is_blank());
    if !filled {
        return; // The summary is optional: blank means not filled.
    }

    // Roster rows per category, valid or not, as the clerk sees them.
    let roster_counts = &ret.category_rows;

    let mut stated_sum: f64 = 0.0;
    let mut stated_ok = true;
    let mut listed: Vec<String> = Vec::new();
    for (r, cat, cell) in &lines {
        let stated = match cell {
            Cell::Error(e) => {
                out.push(Finding::new(
                    Code::FormulaError,
                    name,
                    a1(*r, count_col),
                    e.clone(),
                    format!("汇总页此单元格是错误值 {e}，请直接填写人数。"),
                ));
                stated_ok = false;
                continue;
            }
            c if c.is_blank() => 0.0,
            c => match number_of(c) {
                Some(n) => n,
                None => {
                    out.push(Finding::new(
                        Code::SummaryMismatch,
                        name,
                        a1(*r, count_col),
                        c.display(),
                        format!("汇总页的人数“{}”不是数字，请填写人数。", c.display()),
                    ));
                    stated_ok = false;
                    continue;
                }
            },
        };
        stated_sum += stated;
        if let Some(cat) = cat {
            listed.push(cat.clone());
            let actual = roster_counts.get(cat).copied().unwrap_or(0);
            if stated != actual as f64 {
                out.push(Finding::new(
                    Code::SummaryMismatch,
                    name,
                    a1(*r, count_col),
                    format_number(stated),
                    format!(
                        "汇总页中“{cat}”填的是 {}，但培训台账中该类别有 {actual} 行。请按台账改正汇总数（或补全台账）。",
                        format_number(stated)
                    ),
                ));
            }
        }
    }
    for (cat, actual) in roster_counts {
        if *actual > 0 && !listed.contains(cat) {
            out.push(Finding::new(
                Code::SummaryMismatch,
                name,
                "",
                cat.clone(),
                format!(
                    "培训台账中有 {actual} 行“{cat}”，但汇总页中没有这一类别，请在汇总页中补上。"
                ),
            ));
        }
    }
    if let Some((r, cell)) = total {
        match cell {
            Cell::Error(e) => out.push(Finding::new(
                Code::FormulaError,
                name,
                a1(r, count_col),
                e.clone(),
                format!("汇总页合计是错误值 {e}，请直接填写合计人数。"),
            )),
            c if c.is_blank() => {}
            c => match number_of(c) {
                Some(stated) if stated_ok && stated != stated_sum => out.push(Finding::new(
                    Code::TotalMismatch,
                    name,
                    a1(r, count_col),
                    format_number(stated),
                    format!(
                        "汇总页合计填的是 {}，但各类别相加为 {}。请改正合计数。",
                        format_number(stated),
                        format_number(stated_sum)
                    ),
                )),
                Some(_) => {}
                None => out.push(Finding::new(
                    Code::TotalMismatch,
                    name,
                    a1(r, count_col),
                    c.display(),
                    format!("汇总页合计“{}”不是数字，请填写人数。", c.display()),
                )),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::workbook::Range;

    fn plan() -> Plan {
        crate::core::plan::reference()
    }

    fn t(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    fn id(seed: u32) -> String {
        let first17 = format!("3301081990010{:04}", 1000 + seed);
        let first17 = &first17[..17];
        format!("{first17}{}", ids::resident_id_check_char(first17).unwrap())
    }

    const HEADER: [&str; 10] = [
        "序号",
        "姓名",
        "身份证号",
        "企业名称",
        "统一社会信用代码",
        "人员类别",
        "培训日期",
        "培训学时",
        "考核结果",
        "证书编号",
    ];

    fn person(seed: u32) -> Vec<Cell> {
        vec![
            Cell::Number(f64::from(seed)),
            t("张伟"),
            t(&id(seed)),
            t("杭州某某科技有限公司"),
            Cell::Empty,
            t("企业主要负责人"),
            Cell::Date("2020-05-12T00:00:00".into()),
            Cell::Number(8.0),
            t("合格"),
            Cell::Empty,
        ]
    }

    fn workbook(unit: &str, month: Cell, rows: Vec<Vec<Cell>>) -> Workbook {
        let cover = Sheet {
            name: "填报信息".into(),
            rows: vec![
                vec![t("月报")],
                vec![t("填报单位"), t(unit)],
                vec![t("报送月份"), month],
                vec![t("填报人"), t("王芳")],
                vec![t("联系电话"), t("12345")],
            ],
            merged: vec![],
        };
        let mut roster_rows = vec![HEADER.iter().map(|h| t(h)).collect::<Vec<_>>()];
        roster_rows.extend(rows);
        let roster = Sheet {
            name: "培训台账".into(),
            rows: roster_rows,
            merged: vec![],
        };
        Workbook {
            sheets: vec![cover, roster],
        }
    }

    /// The plan, 西兴街道 and the day the tests check on.
    fn xixing() -> (Plan, Option<Unit>, DateTime<Tz>) {
        let c = plan();
        let now = crate::core::calendar::parse_now("2020-07-01", c.tz).unwrap();
        let unit = c.find_unit("西兴街道").cloned();
        (c, unit, now)
    }

    fn context<'a>(plan: &'a Plan, unit: Option<&'a Unit>, now: DateTime<Tz>) -> Context<'a> {
        Context {
            plan,
            unit,
            now,
            max_rows: 100_000,
        }
    }

    fn check_wb(wb: &Workbook) -> Return {
        let (c, unit, now) = xixing();
        check(wb, &context(&c, unit.as_ref(), now))
    }

    fn codes(r: &Return) -> Vec<(&'static str, String)> {
        r.findings
            .iter()
            .map(|f| (f.code.as_str(), f.cell.clone()))
            .collect()
    }

    fn with_cell(col: usize, value: Cell) -> Return {
        let mut p = person(1);
        p[col] = value;
        check_wb(&workbook("西兴街道", t("2020-05"), vec![p]))
    }

    /// A person twice in one category is a duplicate naming the first line (an ID ending in
    /// X, as the check upper-cases it, included); in another category, or another person, is
    /// not.
    #[test]
    fn a_person_twice_in_one_category_is_a_duplicate_of_the_first_line() {
        let x_id = (0..100)
            .map(id)
            .find(|i| i.ends_with('X'))
            .expect("an ID ending in X");
        let with_id = |seed: u32, id: &str, category: &str| {
            let mut p = person(seed);
            p[2] = t(id);
            p[5] = t(category);
            p
        };
        let lower_x = x_id.to_lowercase();
        let rows = vec![
            with_id(1, &x_id, "企业主要负责人"),
            with_id(2, &id(2), "企业主要负责人"),
            with_id(3, &x_id, "安全生产管理人员"),
            with_id(4, &lower_x, "企业主要负责人"),
            with_id(5, &id(2), "企业主要负责人"),
        ];
        let r = check_wb(&workbook("西兴街道", t("2020-05"), rows));
        let dups: Vec<(String, &str)> = r
            .findings
            .iter()
            .filter(|f| f.code == Code::IdDuplicate)
            .map(|f| (f.cell.clone(), f.message.split('行').next().unwrap_or("")))
            .collect();
        assert_eq!(
            dups,
            [
                ("C5".to_string(), "该身份证号在第 2 "),
                ("C6".to_string(), "该身份证号在第 3 ")
            ],
            "{:?}",
            r.findings
        );
        assert_eq!(r.rows.len(), 5);
        // Packed IDs differ wherever the IDs do, the check character X included.
        assert_ne!(
            ids::pack_resident_id(&x_id),
            ids::pack_resident_id(&format!("{}0", &x_id[..17]))
        );
        assert_eq!(ids::pack_resident_id("33010819900101100"), None);
        assert_eq!(ids::pack_resident_id(&lower_x), None);
    }

    /// A large roster checked in runs on several threads gives exactly what one thread gives:
    /// the same rows, and the same findings in the same order (a duplicate whose first row is
    /// in another run included).
    #[test]
    fn a_roster_checked_on_threads_is_checked_as_on_one() {
        let mut rows: Vec<Vec<Cell>> = (0..PARALLEL_ROWS as u32 + 1_000).map(person).collect();
        rows[10][2] = t("33010819900101000X");
        rows[3_000][7] = t("八小时");
        rows[4_500][2] = t(&id(20));
        rows[4_600][5] = t("企業主要負責人");
        rows[5_000][6] = Cell::Error("#REF!".into());
        let wb = workbook("西兴街道", t("2020-05"), rows);
        let (c, unit, now) = xixing();
        let ctx = context(&c, unit.as_ref(), now);
        let one = check_on(&wb, &ctx, None, || 1);
        let three = check_on(&wb, &ctx, None, || 3);
        assert_eq!(one.rows, three.rows);
        assert_eq!(one.findings, three.findings);
        assert_eq!(one.category_rows, three.category_rows);
        let found = codes(&three);
        for (code, cell) in [
            ("id-invalid", "C12"),
            ("hours-invalid", "H3002"),
            ("id-duplicate", "C4502"),
            ("formula-error", "G5002"),
        ] {
            assert!(
                found.contains(&(code, cell.to_string())),
                "{code} at {cell}: {found:?}"
            );
        }
        assert_eq!(three.rows.len(), PARALLEL_ROWS + 1_000 - 3, "{found:?}");
    }

    /// The workbook as a reader hands it over, row by row: every sheet up to `upto` (sheet,
    /// rows), the last of them with its rows so far.
    fn read_so_far(wb: &Workbook, sheet: usize, rows: usize) -> Vec<Sheet> {
        let mut sheets = wb.sheets[..sheet].to_vec();
        let mut partial = wb.sheets[sheet].clone();
        partial.rows.truncate(rows);
        sheets.push(partial);
        sheets
    }

    /// Rows checked as the workbook is read give the return a check of the whole gives: when
    /// they are taken (cover first), and when they are not (the roster read before the cover,
    /// merged cells below the header, cells out of order).
    #[test]
    fn rows_checked_ahead_give_the_same_return() {
        let mut rows: Vec<Vec<Cell>> = (0..300).map(person).collect();
        rows[10][2] = t("33010819900101000X");
        rows[40][2] = t(&id(20));
        rows[41] = vec![];
        rows[77][6] = Cell::Error("#REF!".into());
        rows[90][7] = t("八小时");
        let (c, unit, now) = xixing();
        let ctx = context(&c, unit.as_ref(), now);
        let cover_first = workbook("西兴街道", t("2020-05"), rows);
        let mut roster_first = cover_first.clone();
        roster_first.sheets.reverse();
        let mut merged = cover_first.clone();
        merged.sheets[1].merged.push(crate::core::workbook::Range {
            first_row: 5,
            first_col: 1,
            last_row: 6,
            last_col: 1,
        });
        for (wb, taken, ordered) in [
            (&cover_first, true, true),
            (&roster_first, false, true),
            (&merged, false, true),
            (&cover_first, false, false),
        ] {
            let observed = || {
                let mut ahead = RowsAhead::default();
                for sheet in 0..wb.sheets.len() {
                    for rows in (0..=wb.sheets[sheet].rows.len()).step_by(7) {
                        ahead.observe(&read_so_far(wb, sheet, rows), ordered, &ctx);
                    }
                    ahead.observe(&wb.sheets[..=sheet], ordered, &ctx);
                }
                ahead
            };
            let ahead = observed();
            let checked_ahead = ahead.rows.len();
            let ahead_taken = taken.then_some(ahead.next);
            let whole = check_on(wb, &ctx, None, || 1);
            let with = check_on(wb, &ctx, Some(ahead), || 1);
            assert_eq!(with, whole);
            assert_eq!(whole.rows.len(), 300 - 3 - 1, "{:?}", codes(&whole));
            if let Some(next) = ahead_taken {
                // All but the last row, which may not be whole until the workbook ends.
                assert_eq!(checked_ahead, 298, "rows checked ahead");
                assert_eq!(next, 300);
            }
            // A mark on a row checked ahead shows whether those rows were taken.
            let mut marked = observed();
            if let Some((_, _, findings)) = marked.rows.first_mut() {
                findings.push(Finding::file(Code::InternalError, "checked ahead"));
            }
            let with = check_on(wb, &ctx, Some(marked), || 1);
            let mark = with.findings.iter().any(|f| f.message == "checked ahead");
            assert_eq!(mark, taken, "rows checked ahead taken: {mark}");
        }
    }

    /// Rows handed out as they are checked are the return's first rows, shared: the return
    /// takes them back (a copy of a run still held elsewhere). None are handed out once a row
    /// does not count.
    #[test]
    fn rows_handed_out_are_the_returns_first_rows() {
        let (c, unit, now) = xixing();
        let ctx = context(&c, unit.as_ref(), now);
        for bad in [None, Some(150)] {
            let mut rows: Vec<Vec<Cell>> = (0..300).map(person).collect();
            if let Some(r) = bad {
                rows[r][2] = t("33010819900101000X");
            }
            let wb = workbook("西兴街道", t("2020-05"), rows);
            let mut ahead = RowsAhead::default();
            let (mut handed, mut kept) = (Vec::new(), None);
            for sheet in 0..wb.sheets.len() {
                for rows in (0..=wb.sheets[sheet].rows.len()).step_by(7) {
                    ahead.observe(&read_so_far(&wb, sheet, rows), true, &ctx);
                    let sent: usize = handed.iter().map(Vec::len).sum();
                    if ahead.checked() >= sent + 64 {
                        match ahead.hand_out(sent) {
                            Some(run) => {
                                handed.push(run.as_ref().clone());
                                // One run still held when the return takes its rows back.
                                kept.get_or_insert(run);
                            }
                            None => assert!(bad.is_some_and(|b| sent + 64 > b - 2)),
                        }
                    }
                }
            }
            // Read to its end: the rows after the last run go out too.
            ahead.observe_ended(&wb.sheets, true, &ctx);
            let sent: usize = handed.iter().map(Vec::len).sum();
            if let Some(run) = ahead.hand_out(sent) {
                handed.push(run.as_ref().clone());
            }
            let handed: Vec<Row> = handed.into_iter().flatten().collect();
            let whole = check_on(&wb, &ctx, None, || 1);
            let with = check_on(&wb, &ctx, Some(ahead), || 1);
            assert_eq!(with, whole);
            assert!(handed.len() >= 64, "{}", handed.len());
            match bad {
                // Never the row that does not count, nor one after it.
                Some(bad) => assert!(handed.len() < bad, "{}", handed.len()),
                None => assert_eq!(handed.len(), whole.rows.len()),
            }
            assert_eq!(handed[..], with.rows[..handed.len()]);
            assert!(kept.is_some());
        }
    }

    #[test]
    fn codes_are_normalized_alike_with_and_without_the_ascii_shortcut() {
        let slow = |raw: &str| -> String {
            unicode_normalization::UnicodeNormalization::nfkc(raw)
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_uppercase()
        };
        for raw in [
            "33010619850101001x",
            " 3301 0619850101001X\t",
            "３３０１０６１９８５０１０１００１ｘ",
            "91330108ma00000026",
            "91330108MA\u{3000}00000026",
            "\u{b}3301\u{c}06198501\r\n01001x\u{1f}",
            "",
        ] {
            assert_eq!(normalized_code(raw), slow(raw), "{raw:?}");
        }
    }

    #[test]
    fn a_clean_return_is_accepted_with_its_rows() {
        let r = check_wb(&workbook(
            "西兴街道",
            t("2020-05"),
            vec![person(1), person(2)],
        ));
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.rows.len(), 2);
        assert_eq!(r.unit.as_deref(), Some("西兴街道"));
        assert_eq!(r.month.unwrap().to_string(), "2020-05");
        assert_eq!(r.rows[0].line, 2);
    }

    #[test]
    fn each_cell_rule_names_its_cell() {
        let mut bad_id = id(1);
        bad_id.replace_range(17..18, if bad_id.ends_with('1') { "2" } else { "1" });
        for (col, value, code, cell) in [
            (2, t(&bad_id), "id-invalid", "C2"),
            (2, Cell::Number(330108199001011000.0), "id-invalid", "C2"),
            (4, t("91330108MA27XXXX01"), "credit-code-invalid", "E2"),
            (5, t("特种作业人员"), "category-unknown", "F2"),
            (6, t("五月十二日"), "date-invalid", "G2"),
            (6, t("2021-01-05"), "date-outside-plan", "G2"),
            (6, t("2020-04-30"), "date-outside-period", "G2"),
            (7, t("八"), "hours-invalid", "H2"),
            (7, Cell::Number(0.0), "hours-invalid", "H2"),
            (8, t("通过"), "result-invalid", "I2"),
            (1, Cell::Empty, "missing-cell", "B2"),
            (9, Cell::Error("#DIV/0!".into()), "formula-error", "J2"),
            (6, t("2020-07-02"), "date-invalid", "G2"),
        ] {
            let r = with_cell(col, value.clone());
            assert_eq!(codes(&r), [(code, cell.to_string())], "{value:?}");
        }
    }

    #[test]
    fn a_birth_date_after_the_training_is_refused() {
        let first17 = "33010820210101123";
        let born_2021 = format!("{first17}{}", ids::resident_id_check_char(first17).unwrap());
        let r = with_cell(2, t(&born_2021));
        assert_eq!(codes(&r), [("id-invalid", "C2".to_string())]);
        assert!(r.findings[0].message.contains("出生日期"));
    }

    #[test]
    fn id_stored_as_a_number_says_to_enter_it_as_text() {
        let r = with_cell(2, Cell::Number(330108199001011000.0));
        assert!(
            r.findings[0].message.contains("文本"),
            "{}",
            r.findings[0].message
        );
    }

    #[test]
    fn cover_rules() {
        let r = check_wb(&workbook("长河街道", t("2020-05"), vec![]));
        assert_eq!(codes(&r), [("unit-mismatch", "B2".to_string())]);
        let r = check_wb(&workbook("西湖街道", t("2020-05"), vec![]));
        assert_eq!(codes(&r), [("unit-unknown", "B2".to_string())]);
        let r = check_wb(&workbook("西興街道", t("五月"), vec![]));
        assert_eq!(codes(&r), [("period-invalid", "B3".to_string())]);
        let r = check_wb(&workbook("西兴街道", t("2020-08"), vec![]));
        assert_eq!(codes(&r), [("period-future", "B3".to_string())]);
        let r = check_wb(&workbook("西兴街道", t("2019-12"), vec![]));
        assert_eq!(codes(&r), [("period-outside-plan", "B3".to_string())]);
        let r = check_wb(&workbook("西兴街道", t("2020年7月"), vec![]));
        assert!(
            r.findings.is_empty(),
            "the current month may be reported: {:?}",
            r.findings
        );
    }

    #[test]
    fn header_rules() {
        let mut wb = workbook("西兴街道", t("2020-05"), vec![person(1)]);
        wb.sheets[1].rows[0][3] = t("备注");
        wb.sheets[1].rows[0].push(t("姓名"));
        let r = check_wb(&wb);
        let mut got: Vec<&str> = r.findings.iter().map(|f| f.code.as_str()).collect();
        got.sort();
        assert_eq!(got, ["extra-column", "header-duplicate", "header-missing"]);
        let missing = r
            .findings
            .iter()
            .find(|f| f.code == Code::HeaderMissing)
            .unwrap();
        assert_eq!(missing.value, "企业名称");
    }

    #[test]
    fn id_duplicate_is_a_warning_at_the_second_row() {
        let r = check_wb(&workbook(
            "西兴街道",
            t("2020-05"),
            vec![person(1), person(1)],
        ));
        assert_eq!(codes(&r), [("id-duplicate", "C3".to_string())]);
        assert!(r.accepted());
    }

    #[test]
    fn merged_ranges_below_the_header_are_refused_once() {
        let mut wb = workbook("西兴街道", t("2020-05"), vec![person(1), person(2)]);
        wb.sheets[1].rows[2][3] = Cell::Empty;
        wb.sheets[1].merged = vec![Range {
            first_row: 1,
            first_col: 3,
            last_row: 2,
            last_col: 3,
        }];
        let r = check_wb(&wb);
        assert_eq!(codes(&r), [("merged-cells", "D2".to_string())]);
        assert_eq!(r.findings[0].value, "D2:D3");
    }

    #[test]
    fn summary_and_total() {
        let mut wb = workbook("西兴街道", t("2020-05"), vec![person(1), person(2)]);
        wb.sheets.push(Sheet {
            name: "汇总".into(),
            rows: vec![
                vec![t("人员类别"), t("本月培训人数")],
                vec![t("企业主要负责人"), Cell::Number(3.0)],
                vec![t("安全生产管理人员"), Cell::Empty],
                vec![t("合计"), Cell::Number(4.0)],
            ],
            merged: vec![],
        });
        let r = check_wb(&wb);
        assert_eq!(
            codes(&r),
            [
                ("summary-mismatch", "B2".to_string()),
                ("total-mismatch", "B4".to_string())
            ]
        );
    }

    #[test]
    fn sheets_are_found_by_content_and_traditional_labels() {
        let mut wb = workbook("西興街道", t("2020-05"), vec![person(1)]);
        wb.sheets[0].name = "Sheet1".into();
        wb.sheets[1].name = "Sheet2".into();
        wb.sheets[1].rows[0][5] = t("人員類別");
        wb.sheets[1].rows[0][2] = t("身份證號");
        wb.sheets[1].rows.insert(0, vec![t("2020年5月培训台账")]);
        wb.sheets[1].rows.insert(2, vec![]);
        let r = check_wb(&wb);
        assert!(r.findings.is_empty(), "{:?}", r.findings);
        assert_eq!(r.rows.len(), 1);
        assert_eq!(r.rows[0].line, 4);
    }

    #[test]
    fn a_workbook_without_cover_or_roster_names_both() {
        let r = check_wb(&Workbook {
            sheets: vec![Sheet {
                name: "Sheet1".into(),
                rows: vec![vec![t("x")]],
                merged: vec![],
            }],
        });
        let got: Vec<&str> = r.findings.iter().map(|f| f.code.as_str()).collect();
        assert_eq!(got, ["sheet-missing", "sheet-missing"]);
    }
}
