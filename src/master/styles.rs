//! The master's look: its font and default cell, the formats its sheets share, the page set-up
//! and the rate charts' style, and small helpers for formulas and wrapped rows. Colours and
//! Excel's limits come from `crate::excel`; nothing here knows a sheet's layout or content.

use crate::config::Config;
use crate::excel::{self, ERROR_FONT, GREY_FONT};
use chrono::{DateTime, Datelike};
use chrono_tz::Tz;
use rust_xlsxwriter::{
    Chart, ChartFont, ChartFormat, ChartLegendPosition, ChartLine, ChartLineDashType, Format,
    FormatAlign, FormatBorder, Formula, Workbook, Worksheet, XlsxError,
};
use unicode_width::UnicodeWidthStr;

/// A CJK font every Chinese Windows, WPS and Excel has; LibreOffice substitutes its own.
const FONT: &str = "宋体";
/// 宋体 11 in Excel: 18 px rows, 72 px (8.38 characters) columns.
const DEFAULT_ROW_PX: u32 = 18;
const DEFAULT_COL_PX: u32 = 72;
/// The line of expected progress (序时进度) in the charts: dark red, dashed.
const SCHEDULE_LINE: &str = "C00000";

/// The workbook's default: 宋体 11, vertically centred (rows of wrapped text read well).
fn base_format() -> Format {
    Format::new()
        .set_font_name(FONT)
        .set_font_size(11)
        .set_align(FormatAlign::VerticalCenter)
}

/// Make [`base_format`] the workbook's default, with the row and column sizes it implies.
pub fn set_default_format(book: &mut Workbook) -> Result<(), XlsxError> {
    book.set_default_format(&base_format(), DEFAULT_ROW_PX, DEFAULT_COL_PX)?;
    Ok(())
}

/// The formats of the master, made once.
pub struct Styles {
    pub title: Format,
    pub subtitle: Format,
    /// Header cells of tables and lists: bold, filled, boxed, wrapped.
    pub header: Format,
    pub cell: Format,
    pub cell_left: Format,
    pub int: Format,
    pub pct: Format,
    pub total_label: Format,
    pub total_int: Format,
    pub total_pct: Format,
    pub note: Format,
    pub date: Format,
    pub datetime: Format,
    pub wrap: Format,
    pub red_text: Format,
    pub grey_text: Format,
    pub lagging: Format,
    pub missing: Format,
}

impl Styles {
    pub fn new() -> Styles {
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
            header: excel::header_format(base.clone()).set_text_wrap(),
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
            date: base.clone().set_num_format(excel::DATE_FORMAT),
            datetime: base.clone().set_num_format("yyyy-mm-dd hh:mm"),
            wrap: base.clone().set_text_wrap(),
            red_text: base.clone().set_font_color(ERROR_FONT),
            grey_text: base.set_font_color(GREY_FONT),
            lagging: excel::error_tint(Format::new()),
            missing: excel::error_tint(Format::new()).set_bold(),
        }
    }
}

/// `2020年7月1日`.
pub fn date_zh(now: DateTime<Tz>) -> String {
    format!("{}年{}月{}日", now.year(), now.month(), now.day())
}

/// A formula whose computed value is stored too, so the file is right before any recalculation.
pub fn formula(
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

/// `done / target`, 0 for no target (as the sheets' `IFERROR(…,0)`).
pub fn ratio(done: f64, target: f64) -> f64 {
    if target == 0.0 { 0.0 } else { done / target }
}

/// Lines a text takes in a wrapped column (a CJK character is two characters wide).
pub fn lines_in(s: &str, width: f64) -> usize {
    let per_line = (width - 1.0).max(1.0) as usize;
    s.split('\n')
        .map(|l| UnicodeWidthStr::width(l).div_ceil(per_line).max(1))
        .sum()
}

/// The master's page set-up (`excel::set_up_page`): the plan's title in the page header,
/// `repeat` rows on every page, portrait or landscape by the printed `width` in characters.
pub fn print_setup(
    ws: &mut Worksheet,
    config: &Config,
    repeat: (u32, u32),
    width: f64,
) -> Result<(), XlsxError> {
    excel::set_up_page(
        ws,
        &excel::Page {
            title: &config.plan.title,
            width,
            repeat_rows: Some(repeat),
        },
    )
}

/// The line of expected progress in a chart: dark red, dashed.
pub fn schedule_line() -> ChartFormat {
    let mut format = ChartFormat::new();
    format.set_line(
        ChartLine::new()
            .set_color(SCHEDULE_LINE)
            .set_width(2.25)
            .set_dash_type(ChartLineDashType::Dash),
    );
    format
}

/// Title, percent axis, legend below and size shared by the master's rate charts.
pub fn style_rate_chart(chart: &mut Chart, title: &str) {
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
