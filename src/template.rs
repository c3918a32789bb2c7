//! The blank return workbook (DESIGN §3): renders the cover, roster, summary and instructions
//! sheets, with drop-down lists, text/date formats and input messages, into .xlsx bytes; the
//! cover, roster and summary are protected without a password (labels and headers locked, the
//! cells a clerk fills unlocked, rows may be inserted and deleted) and every sheet prints on A4.
//! It must not do file I/O or read the clock: the caller reads the instructions and writes the
//! bytes, and the same spec always renders byte-identical output.

use rust_xlsxwriter::{
    DataValidation, DataValidationRule, DocProperties, ExcelDateTime, Format, FormatAlign, Formula,
    ProtectionOptions, Workbook, Worksheet, XlsxError, column_number_to_name,
    worksheet_range_absolute,
};

use crate::core::calendar::YearMonth;
use crate::core::form::{
    COVER_LABELS, COVER_MONTH, COVER_PHONE, COVER_REPORTER, COVER_SHEET, COVER_UNIT, Column,
    INSTRUCTIONS_SHEET, RESULTS, RETURN_SUMMARY_SHEET, ROSTER_SHEET, SUMMARY_CATEGORY,
    SUMMARY_COUNT, TOTAL_LABEL,
};
use crate::excel;

/// The instructions shipped with the crate (`templates/填报说明.txt`).
pub const DEFAULT_INSTRUCTIONS: &str = include_str!("../templates/填报说明.txt");

/// Number of roster data rows prepared with formats and validations (rows 2..=1001).
pub const ROSTER_ROWS: u32 = 1000;

/// Hidden sheet holding drop-down lists too long (or containing commas) for an inline list.
/// Only added when needed.
pub const LISTS_SHEET: &str = "下拉选项";

/// Upper bound of 培训学时 accepted by the template's validation.
const MAX_HOURS: u32 = 200;

/// What varies between generated templates.
pub struct TemplateSpec<'a> {
    /// Plan title, e.g. "杭州高新区（滨江）2020年度安全生产培训计划".
    pub plan_title: &'a str,
    /// Plan year: bounds of the 培训日期 validation.
    pub year: i32,
    /// Pre-fills 填报单位 when `Some`.
    pub unit: Option<&'a str>,
    /// Pre-fills 报送月份 when `Some`, as the text `2020-05`.
    pub month: Option<YearMonth>,
    /// All unit names: the drop-down list on 填报单位.
    pub units: &'a [String],
    /// Canonical category names: the drop-down on 人员类别 and the rows of 汇总.
    pub categories: &'a [String],
    /// Instructions text (normally [`DEFAULT_INSTRUCTIONS`]), one paragraph per line.
    pub instructions: &'a str,
}

/// Render the blank return workbook.
pub fn render(spec: &TemplateSpec) -> Result<Vec<u8>, XlsxError> {
    render_stamped(spec, None)
}

/// [`render`], with `stamp` kept as the custom document property `name` (what the form was
/// made from, so that an unchanged one need not be rendered again; see `forms`).
pub fn render_stamped(
    spec: &TemplateSpec,
    stamp: Option<(&str, &str)>,
) -> Result<Vec<u8>, XlsxError> {
    let year = u16::try_from(spec.year)
        .map_err(|_| XlsxError::ParameterError(format!("plan year {} out of range", spec.year)))?;
    let year_start = ExcelDateTime::from_ymd(year, 1, 1)?;
    let year_end = ExcelDateTime::from_ymd(year, 12, 31)?;

    let styles = Styles::new();
    let mut lists = Lists::default();
    let mut workbook = Workbook::new();
    let title = format!("{} 培训情况月报", spec.plan_title);
    let mut properties = DocProperties::new()
        .set_title(&title)
        .set_creation_datetime(&excel::fixed_created()?);
    if let Some((name, value)) = stamp {
        properties = properties.set_custom_property(name, value);
    }
    workbook.set_properties(&properties);

    write_cover(
        workbook.add_worksheet(),
        spec,
        &title,
        year,
        &styles,
        &mut lists,
    )?;
    write_roster(
        workbook.add_worksheet(),
        spec,
        (&title, &year_start, &year_end),
        &styles,
        &mut lists,
    )?;
    write_summary(workbook.add_worksheet(), spec, &title, &styles)?;
    write_instructions(workbook.add_worksheet(), spec.instructions, &title, &styles)?;
    if !lists.columns.is_empty() {
        let sheet = workbook.add_worksheet().set_name(LISTS_SHEET)?;
        for (col, items) in (0u16..).zip(&lists.columns) {
            for (row, item) in (0u32..).zip(items) {
                sheet.write_string(row, col, item)?;
            }
        }
        sheet.set_hidden(true);
    }

    workbook.save_to_buffer()
}

/// The formats shared by the sheets. Cells are locked unless their format says otherwise:
/// only what a clerk fills (`input`, `text`, `date`) is unlocked.
struct Styles {
    title: Format,
    label: Format,
    header: Format,
    input: Format,
    text: Format,
    date: Format,
    hint: Format,
    para: Format,
    heading: Format,
}

impl Styles {
    fn new() -> Styles {
        let input = Format::new().set_unlocked();
        Styles {
            title: Format::new().set_bold().set_font_size(14),
            label: Format::new().set_bold(),
            header: excel::header_format(Format::new()),
            text: input.clone().set_num_format("@"),
            date: input.clone().set_num_format(excel::DATE_FORMAT),
            input,
            hint: Format::new().set_font_color(excel::GREY_FONT),
            para: Format::new().set_text_wrap().set_align(FormatAlign::Top),
            heading: Format::new()
                .set_bold()
                .set_text_wrap()
                .set_align(FormatAlign::Top),
        }
    }
}

/// Drop-down lists: inline when Excel allows it, otherwise a column of the hidden
/// [`LISTS_SHEET`].
#[derive(Default)]
struct Lists {
    columns: Vec<Vec<String>>,
}

impl Lists {
    /// A list validation over the non-blank `items`; `None` when there are none.
    fn validation(&mut self, items: &[impl AsRef<str>]) -> Option<DataValidation> {
        let items: Vec<&str> = items
            .iter()
            .map(|s| s.as_ref().trim())
            .filter(|s| !s.is_empty())
            .collect();
        if items.is_empty() {
            return None;
        }
        // An inline list is comma-separated and limited to 255 characters.
        if !items.iter().any(|s| s.contains(','))
            && let Ok(validation) = DataValidation::new().allow_list_strings(&items)
        {
            return Some(validation);
        }
        let col = u16::try_from(self.columns.len()).unwrap_or(u16::MAX);
        let last_row = u32::try_from(items.len() - 1).unwrap_or(u32::MAX);
        self.columns
            .push(items.iter().map(|s| (*s).to_string()).collect());
        let range = worksheet_range_absolute(LISTS_SHEET, 0, col, last_row, col);
        Some(DataValidation::new().allow_list_formula(Formula::new(format!("={range}"))))
    }
}

/// Protection without a password, so that a clerk cannot overwrite a label or header by a slip
/// of the mouse yet can unprotect the sheet on purpose: unlocked cells are edited, rows
/// inserted and deleted, columns widened, the filter used; formats stay (身份证号 as text).
fn protect(sheet: &mut Worksheet) {
    sheet.protect_with_options(&ProtectionOptions {
        select_locked_cells: true,
        select_unlocked_cells: true,
        format_columns: true,
        format_rows: true,
        insert_rows: true,
        delete_rows: true,
        sort: true,
        use_autofilter: true,
        ..ProtectionOptions::default()
    });
}

/// The page set-up of the template's sheets: `widths` printed, `repeat` on every page.
fn page(
    sheet: &mut Worksheet,
    title: &str,
    widths: &[f64],
    repeat: Option<(u32, u32)>,
) -> Result<(), XlsxError> {
    excel::set_up_page(
        sheet,
        &excel::Page {
            title,
            width: widths.iter().sum(),
            repeat_rows: repeat,
        },
    )
}

/// Attach an input message (title ≤ 32, message ≤ 255 characters) to a validation.
fn prompt(
    validation: DataValidation,
    title: &str,
    message: &str,
) -> Result<DataValidation, XlsxError> {
    validation
        .set_input_title(title)?
        .set_input_message(message)
}

/// Attach an error message to a validation.
fn error(
    validation: DataValidation,
    title: &str,
    message: &str,
) -> Result<DataValidation, XlsxError> {
    validation
        .set_error_title(title)?
        .set_error_message(message)
}

/// Widths of the cover's label, value and hint columns.
const COVER_WIDTHS: [f64; 3] = [12.0, 36.0, 40.0];
/// Widths of the summary's columns: 人员类别, 本月培训人数, a gap, the note.
const SUMMARY_WIDTHS: [f64; 4] = [20.0, 14.0, 8.43, 50.0];
/// Width of the instructions' one column.
const INSTRUCTIONS_WIDTH: f64 = 100.0;

fn write_cover(
    sheet: &mut Worksheet,
    spec: &TemplateSpec,
    title: &str,
    year: u16,
    styles: &Styles,
    lists: &mut Lists,
) -> Result<(), XlsxError> {
    sheet.set_name(COVER_SHEET)?;
    for (col, width) in (0u16..).zip(COVER_WIDTHS) {
        sheet.set_column_width(col, width)?;
    }
    sheet.write_string_with_format(0, 0, title, &styles.title)?;
    sheet.set_row_height(0, 24)?;

    let month_example = format!("{year}-05");
    for (row, label) in (1u32..).zip(COVER_LABELS) {
        sheet.write_string_with_format(row, 0, label, &styles.label)?;
        let hint = match label {
            COVER_UNIT => "从下拉列表中选择本单位名称".to_string(),
            COVER_MONTH => format!("培训所属月份，格式如 {month_example}"),
            COVER_REPORTER => "经办人姓名".to_string(),
            COVER_PHONE => "经办人手机或办公电话".to_string(),
            _ => String::new(),
        };
        sheet.write_string_with_format(row, 2, &hint, &styles.hint)?;
        let (value, format) = match label {
            COVER_UNIT => (spec.unit.map(str::to_string), &styles.input),
            COVER_MONTH => (spec.month.map(|m| m.to_string()), &styles.text),
            COVER_PHONE => (None, &styles.text),
            _ => (None, &styles.input),
        };
        match value {
            Some(value) => sheet.write_string_with_format(row, 1, value, format)?,
            None => sheet.write_blank(row, 1, format)?,
        };
        match label {
            COVER_UNIT => {
                if let Some(list) = lists.validation(spec.units) {
                    let list = prompt(list, COVER_UNIT, "请从下拉列表中选择本单位名称。")?;
                    let list = error(list, "填报单位有误", "请从下拉列表中选择本单位名称。")?;
                    sheet.add_data_validation(row, 1, row, 1, &list)?;
                }
            }
            COVER_MONTH => {
                let message = format!("填写培训所属的月份，格式如 {month_example}。");
                let validation = prompt(DataValidation::new(), COVER_MONTH, &message)?;
                sheet.add_data_validation(row, 1, row, 1, &validation)?;
            }
            _ => {}
        }
    }
    protect(sheet);
    page(sheet, title, &COVER_WIDTHS, None)
}

/// Width of a roster column, in characters.
fn roster_width(column: Column) -> f64 {
    match column {
        Column::Seq => 6.0,
        Column::Name => 10.0,
        Column::Id => 22.0,
        Column::Enterprise => 30.0,
        Column::CreditCode => 22.0,
        Column::Category => 18.0,
        Column::Date => 12.0,
        Column::Hours => 10.0,
        Column::Result => 10.0,
        Column::Certificate => 20.0,
    }
}

fn write_roster(
    sheet: &mut Worksheet,
    spec: &TemplateSpec,
    (title, year_start, year_end): (&str, &ExcelDateTime, &ExcelDateTime),
    styles: &Styles,
    lists: &mut Lists,
) -> Result<(), XlsxError> {
    sheet.set_name(ROSTER_SHEET)?;
    let year = spec.year;
    let (first, last) = (1, ROSTER_ROWS);

    for (col, column) in (0u16..).zip(Column::ALL) {
        let header = column.header();
        sheet.write_string_with_format(0, col, header, &styles.header)?;
        sheet.set_column_width(col, roster_width(column))?;
        // Below the locked header every cell of the column is open to the clerk.
        let format = match column {
            Column::Id | Column::CreditCode | Column::Certificate => &styles.text,
            Column::Date => &styles.date,
            _ => &styles.input,
        };
        sheet.set_column_format(col, format)?;

        let any = DataValidation::new;
        let validation = match column {
            Column::Seq => prompt(any(), header, "可不填。")?,
            Column::Name => prompt(any(), header, "填写参训人员姓名，每人每次培训一行。")?,
            Column::Id => prompt(
                any(),
                header,
                "18位身份证号，以文本录入（本列已设为文本格式）。切勿以数字录入，否则最后几位会变成0；末位X请大写。",
            )?,
            Column::Enterprise => prompt(any(), header, "填写营业执照上的企业全称。")?,
            Column::CreditCode => prompt(
                any(),
                header,
                "18位统一社会信用代码，以文本录入；没有的可不填。",
            )?,
            Column::Category => match lists.validation(spec.categories) {
                Some(list) => {
                    let list = prompt(list, header, "请从下拉列表中选择人员类别。")?;
                    error(list, "人员类别有误", "请从下拉列表中选择人员类别。")?
                }
                None => prompt(any(), header, "填写人员类别。")?,
            },
            Column::Date => {
                let rule = DataValidationRule::Between(year_start.clone(), year_end.clone());
                let message = format!("培训当天的日期，格式如 {year}-05-12。");
                let validation = prompt(any().allow_date(rule), header, &message)?;
                let message =
                    format!("培训日期须为 {year} 年内的日期，请按 {year}-05-12 的格式填写。");
                error(validation, "培训日期有误", &message)?
            }
            Column::Hours => {
                // A custom rule, because a decimal rule cannot exclude 0 exactly.
                let cell = format!("{}{}", column_number_to_name(col), first + 1);
                let formula = format!("=AND(ISNUMBER({cell}),{cell}>0,{cell}<={MAX_HOURS})");
                let validation = any().allow_custom(Formula::new(formula));
                let message = format!("只填数字，如 8 或 1.5；须大于0且不超过{MAX_HOURS}。");
                let validation = prompt(validation, header, &message)?;
                error(validation, "培训学时有误", &message)?
            }
            Column::Result => {
                let list = any().allow_list_strings(RESULTS.as_slice())?;
                let message = format!("请从下拉列表中选择“{}”。", RESULTS.join("”或“"));
                let list = prompt(list, header, &message)?;
                error(list, "考核结果有误", &message)?
            }
            Column::Certificate => prompt(any(), header, "培训合格证书编号；没有的可不填。")?,
        };
        sheet.add_data_validation(first, col, last, col, &validation)?;
    }

    let columns = u16::try_from(Column::ALL.len()).unwrap_or(excel::LAST_COL);
    // Columns right of the form are open too: a row can only be deleted when none of its
    // cells is locked.
    sheet.set_column_range_format(columns, excel::LAST_COL, &styles.input)?;
    sheet.set_freeze_panes(1, 0)?;
    sheet.autofilter(0, 0, last, columns - 1)?;
    sheet.set_row_height(0, 20)?;
    protect(sheet);
    let widths: Vec<f64> = Column::ALL.into_iter().map(roster_width).collect();
    page(sheet, title, &widths, Some((0, 0)))
}

fn write_summary(
    sheet: &mut Worksheet,
    spec: &TemplateSpec,
    title: &str,
    styles: &Styles,
) -> Result<(), XlsxError> {
    sheet.set_name(RETURN_SUMMARY_SHEET)?;
    for (col, width) in (0u16..).zip(SUMMARY_WIDTHS) {
        sheet.set_column_width(col, width)?;
    }
    sheet.write_string_with_format(0, 0, SUMMARY_CATEGORY, &styles.header)?;
    sheet.write_string_with_format(0, 1, SUMMARY_COUNT, &styles.header)?;
    sheet.write_string_with_format(
        0,
        3,
        "本页可填可不填。填写的，各类别人数应等于“培训台账”中该类别的行数，合计应等于各类别之和，须与培训台账一致。",
        &styles.para,
    )?;

    let mut row = 1u32;
    for category in spec.categories {
        sheet.write_string(row, 0, category)?;
        sheet.write_blank(row, 1, &styles.input)?;
        row += 1;
    }
    sheet.write_string_with_format(row, 0, TOTAL_LABEL, &styles.label)?;
    sheet.write_blank(row, 1, &styles.input)?;

    let validation = DataValidation::new()
        .allow_whole_number(DataValidationRule::GreaterThanOrEqualTo(0))
        .set_input_title(SUMMARY_COUNT)?
        .set_input_message("可不填。填写的，须等于培训台账中该类别的行数（合计行为各类别之和）。")?
        .set_error_title("人数有误")?
        .set_error_message("请填写不小于0的整数。")?;
    sheet.add_data_validation(1, 1, row, 1, &validation)?;
    protect(sheet);
    page(sheet, title, &SUMMARY_WIDTHS, Some((0, 0)))
}

fn write_instructions(
    sheet: &mut Worksheet,
    instructions: &str,
    title: &str,
    styles: &Styles,
) -> Result<(), XlsxError> {
    sheet.set_name(INSTRUCTIONS_SHEET)?;
    sheet.set_column_width(0, INSTRUCTIONS_WIDTH)?;
    let mut first = true;
    for (row, line) in (0u32..).zip(instructions.lines()) {
        let line = line.trim_end();
        if line.trim().is_empty() {
            continue;
        }
        let format = if first {
            &styles.title
        } else if is_heading(line) {
            &styles.heading
        } else {
            &styles.para
        };
        first = false;
        sheet.write_string_with_format(row, 0, line, format)?;
    }
    page(sheet, title, &[INSTRUCTIONS_WIDTH], None)
}

/// Section headings of the instructions: "一、报送要求" and the like.
fn is_heading(line: &str) -> bool {
    let mut chars = line.chars();
    matches!(
        (chars.next(), chars.next()),
        (
            Some('一' | '二' | '三' | '四' | '五' | '六' | '七' | '八' | '九' | '十'),
            Some('、')
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Data, Reader, SheetVisible, Xlsx, open_workbook_from_rs};
    use std::io::Cursor;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_string()).collect()
    }

    fn with_spec<T>(unit: Option<&str>, units: &[String], f: impl FnOnce(&TemplateSpec) -> T) -> T {
        let categories = names(&["企业主要负责人", "安全生产管理人员", "其他从业人员"]);
        let spec = TemplateSpec {
            plan_title: "杭州高新区（滨江）2020年度安全生产培训计划",
            year: 2020,
            unit,
            month: None,
            units,
            categories: &categories,
            instructions: DEFAULT_INSTRUCTIONS,
        };
        f(&spec)
    }

    fn open(bytes: Vec<u8>) -> Xlsx<Cursor<Vec<u8>>> {
        open_workbook_from_rs(Cursor::new(bytes)).expect("readable xlsx")
    }

    fn text(range: &calamine::Range<Data>, row: u32, col: u32) -> Option<String> {
        match range.get_value((row, col)) {
            Some(Data::String(s)) => Some(s.clone()),
            Some(Data::Empty) | None => None,
            Some(other) => panic!("unexpected cell ({row},{col}): {other:?}"),
        }
    }

    fn units() -> Vec<String> {
        names(&["西兴街道", "长河街道", "浦沿街道", "江北科技园"])
    }

    #[test]
    fn sheets_headers_cover_summary() {
        let units = units();
        let bytes = with_spec(Some("长河街道"), &units, |spec| render(spec).unwrap());
        let mut book = open(bytes);
        assert_eq!(
            book.sheet_names(),
            names(&[
                COVER_SHEET,
                ROSTER_SHEET,
                RETURN_SUMMARY_SHEET,
                INSTRUCTIONS_SHEET
            ])
        );

        let cover = book.worksheet_range(COVER_SHEET).unwrap();
        let title = text(&cover, 0, 0).unwrap();
        assert!(title.ends_with("培训情况月报"), "{title}");
        assert!(title.starts_with("杭州高新区（滨江）2020年度"), "{title}");
        for (row, label) in (1u32..).zip(COVER_LABELS) {
            assert_eq!(text(&cover, row, 0).as_deref(), Some(label));
        }
        assert_eq!(text(&cover, 1, 1).as_deref(), Some("长河街道"));
        for row in 2..=4 {
            assert_eq!(text(&cover, row, 1), None, "cover B{}", row + 1);
        }

        let roster = book.worksheet_range(ROSTER_SHEET).unwrap();
        let headers: Vec<Option<String>> = (0u32..)
            .zip(Column::ALL)
            .map(|(col, _)| text(&roster, 0, col))
            .collect();
        let expected: Vec<Option<String>> = Column::ALL
            .iter()
            .map(|c| Some(c.header().to_string()))
            .collect();
        assert_eq!(headers, expected);
        // Blank rows are truly blank: the used range is the header row alone.
        assert_eq!(roster.start(), Some((0, 0)));
        assert_eq!(roster.end(), Some((0, 9)));
        assert!(roster.rows().skip(1).flatten().all(|c| *c == Data::Empty));

        let summary = book.worksheet_range(RETURN_SUMMARY_SHEET).unwrap();
        assert_eq!(text(&summary, 0, 0).as_deref(), Some(SUMMARY_CATEGORY));
        assert_eq!(text(&summary, 0, 1).as_deref(), Some(SUMMARY_COUNT));
        let rows: Vec<(Option<String>, Option<String>)> = (1..=4)
            .map(|r| (text(&summary, r, 0), text(&summary, r, 1)))
            .collect();
        assert_eq!(
            rows,
            vec![
                (Some("企业主要负责人".into()), None),
                (Some("安全生产管理人员".into()), None),
                (Some("其他从业人员".into()), None),
                (Some(TOTAL_LABEL.into()), None),
            ]
        );
        assert!(text(&summary, 0, 3).unwrap().contains("可不填"));

        let instructions = book.worksheet_range(INSTRUCTIONS_SHEET).unwrap();
        let first = DEFAULT_INSTRUCTIONS.lines().next().unwrap();
        assert_eq!(text(&instructions, 0, 0).as_deref(), Some(first));
        let paragraphs = DEFAULT_INSTRUCTIONS
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        let cells = instructions
            .used_cells()
            .filter(|(_, _, c)| **c != Data::Empty)
            .count();
        assert_eq!(cells, paragraphs);
    }

    #[test]
    fn unit_not_prefilled_when_none() {
        let units = units();
        let bytes = with_spec(None, &units, |spec| render(spec).unwrap());
        let mut book = open(bytes);
        let cover = book.worksheet_range(COVER_SHEET).unwrap();
        assert_eq!(text(&cover, 1, 0).as_deref(), Some(COVER_UNIT));
        assert_eq!(text(&cover, 1, 1), None);
    }

    #[test]
    fn renders_are_byte_identical() {
        let units = units();
        let a = with_spec(Some("西兴街道"), &units, |spec| render(spec).unwrap());
        let b = with_spec(Some("西兴街道"), &units, |spec| render(spec).unwrap());
        assert!(a == b, "two renders differ");
    }

    #[test]
    fn validations_and_formats_are_written() {
        let units = units();
        let bytes = with_spec(None, &units, |spec| render(spec).unwrap());
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut xml = String::new();
        std::io::Read::read_to_string(
            &mut zip.by_name("xl/worksheets/sheet2.xml").unwrap(),
            &mut xml,
        )
        .unwrap();
        assert!(xml.contains(r#"type="date""#), "date validation");
        assert!(xml.contains("2020"), "date bounds");
        assert!(xml.contains("合格,不合格"), "results list");
        assert!(xml.contains("企业主要负责人,安全生产管理人员,其他从业人员"));
        assert!(
            xml.contains(r#"sqref="G2:G1001""#),
            "validation rows 2..=1001"
        );
        assert!(!xml.contains("<row r=\"2\""), "no data rows written");
        let mut styles = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("xl/styles.xml").unwrap(), &mut styles)
            .unwrap();
        assert!(styles.contains("yyyy-mm-dd"));
        let mut core = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("docProps/core.xml").unwrap(), &mut core)
            .unwrap();
        assert!(core.contains("2020-01-01T00:00:00Z"), "fixed creation time");
    }

    /// One part of the .xlsx package, as text.
    fn part(bytes: &[u8], name: &str) -> String {
        let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).unwrap();
        let mut xml = String::new();
        std::io::Read::read_to_string(&mut zip.by_name(name).unwrap(), &mut xml).unwrap();
        xml
    }

    /// Whether cell format `index` of styles.xml leaves its cells unlocked.
    fn unlocked(styles: &str, index: usize) -> bool {
        let xfs = styles.split("<cellXfs").nth(1).unwrap();
        let xfs = xfs.split("</cellXfs>").next().unwrap();
        xfs.split("<xf ")
            .nth(index + 1)
            .unwrap()
            .contains(r#"locked="0""#)
    }

    /// The `s="N"` of `<c r="{cell}" …>` in a sheet's XML.
    fn style_of(sheet: &str, cell: &str) -> usize {
        let c = sheet.split(&format!(r#"<c r="{cell}""#)).nth(1).unwrap();
        let s = c.split(r#"s=""#).nth(1).unwrap();
        s[..s.find('"').unwrap()].parse().unwrap()
    }

    #[test]
    fn labels_and_headers_are_locked_and_the_inputs_open() {
        let units = units();
        let bytes = with_spec(Some("长河街道"), &units, |spec| render(spec).unwrap());
        let styles = part(&bytes, "xl/styles.xml");
        let (cover, roster, summary, instructions) = (
            part(&bytes, "xl/worksheets/sheet1.xml"),
            part(&bytes, "xl/worksheets/sheet2.xml"),
            part(&bytes, "xl/worksheets/sheet3.xml"),
            part(&bytes, "xl/worksheets/sheet4.xml"),
        );
        for sheet in [&cover, &roster, &summary] {
            let protection = sheet.split("<sheetProtection ").nth(1).expect("protected");
            let protection = &protection[..protection.find("/>").unwrap()];
            assert!(!protection.contains("password"), "{protection}");
            // In OOXML "0" means "not prevented".
            for allowed in ["insertRows", "deleteRows", "formatColumns", "autoFilter"] {
                assert!(
                    protection.contains(&format!(r#"{allowed}="0""#)),
                    "{protection}"
                );
            }
            assert!(
                !protection.contains("formatCells"),
                "formats stay: {protection}"
            );
        }
        assert!(!instructions.contains("<sheetProtection"));

        for label in ["A1", "A2", "A3", "A4", "A5", "C2"] {
            assert!(!unlocked(&styles, style_of(&cover, label)), "cover {label}");
        }
        for value in ["B2", "B3", "B4", "B5"] {
            assert!(unlocked(&styles, style_of(&cover, value)), "cover {value}");
        }
        for header in ["A1", "C1", "G1", "J1"] {
            assert!(
                !unlocked(&styles, style_of(&roster, header)),
                "roster {header}"
            );
        }
        // Every column below the header is open, those right of the form too (a row with a
        // locked cell could not be deleted).
        let cols: Vec<&str> = roster.split("<col ").skip(1).collect();
        assert_eq!(
            cols.last().map(|c| c.contains(r#"max="16384""#)),
            Some(true)
        );
        for col in cols {
            let s = col.split(r#"style=""#).nth(1).unwrap();
            let index: usize = s[..s.find('"').unwrap()].parse().unwrap();
            assert!(unlocked(&styles, index), "<col {col}");
        }
        assert!(
            roster.contains(r#"<pane ySplit="1""#),
            "frozen under the header"
        );
        for header in ["A1", "B1"] {
            assert!(
                !unlocked(&styles, style_of(&summary, header)),
                "汇总 {header}"
            );
        }
        for count in ["B2", "B3", "B4", "B5"] {
            assert!(unlocked(&styles, style_of(&summary, count)), "汇总 {count}");
        }
    }

    #[test]
    fn every_sheet_prints_on_a4_one_page_wide() {
        let units = units();
        let bytes = with_spec(None, &units, |spec| render(spec).unwrap());
        for (n, orientation) in [
            (1, "portrait"),
            (2, "landscape"),
            (3, "portrait"),
            (4, "portrait"),
        ] {
            let sheet = part(&bytes, &format!("xl/worksheets/sheet{n}.xml"));
            assert!(
                sheet.contains(r#"<pageSetUpPr fitToPage="1"/>"#),
                "sheet {n}"
            );
            assert!(sheet.contains(r#"paperSize="9""#), "sheet {n}");
            assert!(sheet.contains(r#"fitToHeight="0""#), "sheet {n}");
            assert!(
                sheet.contains(&format!(r#"orientation="{orientation}""#)),
                "sheet {n}"
            );
            assert!(sheet.contains("第 &amp;P 页，共 &amp;N 页"), "sheet {n}");
        }
        let workbook = part(&bytes, "xl/workbook.xml");
        assert!(
            workbook.contains("培训台账!$1:$1"),
            "the roster's header on every page"
        );
    }

    #[test]
    fn month_prefilled_as_text() {
        let units = units();
        let categories = names(&["企业主要负责人"]);
        let spec = TemplateSpec {
            plan_title: "计划",
            year: 2020,
            unit: Some("西兴街道"),
            month: YearMonth::new(2020, 5),
            units: &units,
            categories: &categories,
            instructions: "",
        };
        let mut book = open(render(&spec).unwrap());
        let cover = book.worksheet_range(COVER_SHEET).unwrap();
        assert_eq!(text(&cover, 1, 1).as_deref(), Some("西兴街道"));
        assert_eq!(text(&cover, 2, 0).as_deref(), Some(COVER_MONTH));
        assert_eq!(text(&cover, 2, 1).as_deref(), Some("2020-05"));
    }

    #[test]
    fn long_unit_list_goes_to_hidden_sheet() {
        let units: Vec<String> = (1..=40)
            .map(|i| format!("第{i}号很长名字的街道办事处"))
            .collect();
        let bytes = with_spec(None, &units, |spec| render(spec).unwrap());
        let mut book = open(bytes);
        let meta = book.sheets_metadata().to_vec();
        assert_eq!(meta.len(), 5);
        assert_eq!(meta[4].name, LISTS_SHEET);
        assert_eq!(meta[4].visible, SheetVisible::Hidden);
        let lists = book.worksheet_range(LISTS_SHEET).unwrap();
        assert_eq!(text(&lists, 39, 0).as_deref(), Some(units[39].as_str()));
    }

    #[test]
    fn no_units_no_categories_still_renders() {
        let spec = TemplateSpec {
            plan_title: "计划",
            year: 2021,
            unit: None,
            month: None,
            units: &[],
            categories: &[],
            instructions: "",
        };
        let mut book = open(render(&spec).unwrap());
        let summary = book.worksheet_range(RETURN_SUMMARY_SHEET).unwrap();
        assert_eq!(text(&summary, 1, 0).as_deref(), Some(TOTAL_LABEL));
    }

    #[test]
    fn bad_year_is_an_error() {
        let spec = TemplateSpec {
            plan_title: "计划",
            year: -1,
            unit: None,
            month: None,
            units: &[],
            categories: &[],
            instructions: "",
        };
        assert!(render(&spec).is_err());
    }
}
