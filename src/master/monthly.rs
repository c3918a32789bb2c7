//! The 月度进度 sheet: per unit and category the cumulative completed figure at the end of each
//! month that has ended, 小计 per unit, cumulative rates against the schedule, and a line chart.
//! It writes `core::count::Figures::monthly` and live formulas over them; it counts nothing
//! itself.

use super::styles::{
    Styles, date_zh, formula, print_setup, ratio, schedule_line, style_rate_chart,
};
use super::{COMPLETION_SHEET, MONTHLY_SHEET};
use crate::config::Config;
use crate::core::calendar::{self, YearMonth};
use crate::core::count::Figures;
use crate::core::findings::a1;
use crate::excel;
use chrono::DateTime;
use chrono_tz::Tz;
use rust_xlsxwriter::{
    Chart, ChartMarker, ChartMarkerType, ChartType, Format, Worksheet, XlsxError,
};

/// Rows of the sheet (zero-based): title, subtitle, then the header of the first block.
const TITLE_ROW: u32 = 0;
const SUBTITLE_ROW: u32 = 1;
const HEAD_ROW: u32 = 2;
/// The column of January; December is 11 to its right.
const FIRST_MONTH: u16 = 3;
const LAST_MONTH: u16 = FIRST_MONTH + 11;
/// Widths of 单位, the second column and 年度指标; of each month.
const LEAD_WIDTHS: [f64; 3] = [13.0, 17.0, 9.0];
const MONTH_WIDTH: f64 = 7.5;

/// A unit's 小计 row: where it is, the unit's target and its completed figures per month.
struct Subtotal {
    row: u32,
    target: f64,
    months: [f64; 12],
}

/// Write the 月度进度 sheet from the figures, months that have ended by `now` filled in.
pub fn write(
    ws: &mut Worksheet,
    config: &Config,
    now: DateTime<Tz>,
    figures: &Figures,
    s: &Styles,
) -> Result<(), XlsxError> {
    // Months shown: those that have ended by `now` (the month under way is on 考核指标完成情况).
    let shown = YearMonth::months_of(config.plan.year)
        .filter(|m| calendar::start_of_day(config.plan.tz, m.next().first_day()) <= now)
        .count();
    write_head(ws, config, now, shown, s)?;
    let subtotals = write_cumulative(ws, config, figures, shown, s)?;
    let rates_head = subtotals.last().map_or(HEAD_ROW + 1, |t| t.row + 1) + 1;
    let schedule_row = write_rates(ws, config, &subtotals, rates_head, shown, s)?;
    insert_chart(ws, rates_head, schedule_row)?;
    let width = LEAD_WIDTHS.iter().sum::<f64>() + 12.0 * MONTH_WIDTH;
    print_setup(ws, config, (HEAD_ROW, HEAD_ROW), width)?;
    ws.set_freeze_panes(HEAD_ROW + 1, 2)?;
    Ok(())
}

/// Column widths, title and subtitle.
fn write_head(
    ws: &mut Worksheet,
    config: &Config,
    now: DateTime<Tz>,
    shown: usize,
    s: &Styles,
) -> Result<(), XlsxError> {
    for (col, width) in (0u16..).zip(LEAD_WIDTHS) {
        ws.set_column_width(col, width)?;
    }
    for m in 0..12 {
        ws.set_column_width(FIRST_MONTH + m, MONTH_WIDTH)?;
    }
    ws.set_row_height(TITLE_ROW, 30)?;
    ws.merge_range(
        TITLE_ROW,
        0,
        TITLE_ROW,
        LAST_MONTH,
        &format!(
            "{}月度累计完成情况（截至{}）",
            config.plan.title,
            date_zh(now)
        ),
        &s.title,
    )?;
    let pending = if shown < 12 {
        format!(
            "{}月起尚未结束，留空（当月进度见“{COMPLETION_SHEET}”）。",
            shown + 1
        )
    } else {
        String::new()
    };
    ws.merge_range(
        SUBTITLE_ROW,
        0,
        SUBTITLE_ROW,
        LAST_MONTH,
        &format!("按培训日期逐月累计的完成数（口径同“{COMPLETION_SHEET}”）；{pending}下方为累计完成率与序时进度，并附折线图。"),
        &s.subtitle,
    )?;
    Ok(())
}

/// The header row of a block: 单位, `second`, 年度指标, 1月 … 12月.
fn month_header(ws: &mut Worksheet, row: u32, second: &str, s: &Styles) -> Result<(), XlsxError> {
    ws.write_string_with_format(row, 0, "单位", &s.header)?;
    ws.write_string_with_format(row, 1, second, &s.header)?;
    ws.write_string_with_format(row, 2, "年度指标", &s.header)?;
    for m in 0..12u16 {
        ws.write_string_with_format(row, FIRST_MONTH + m, format!("{}月", m + 1), &s.header)?;
    }
    Ok(())
}

/// The twelve month cells of `row`: `cell(ws, column, month index)` for the months shown,
/// blank in `blank` after them.
fn each_month(
    ws: &mut Worksheet,
    row: u32,
    shown: usize,
    blank: &Format,
    mut cell: impl FnMut(&mut Worksheet, u16, usize) -> Result<(), XlsxError>,
) -> Result<(), XlsxError> {
    for m in 0..12usize {
        let col = FIRST_MONTH + m as u16;
        if m < shown {
            cell(ws, col, m)?;
        } else {
            ws.write_blank(row, col, blank)?;
        }
    }
    Ok(())
}

/// The first block: cumulative completed per unit and category, and a 小计 per unit.
fn write_cumulative(
    ws: &mut Worksheet,
    config: &Config,
    figures: &Figures,
    shown: usize,
    s: &Styles,
) -> Result<Vec<Subtotal>, XlsxError> {
    month_header(ws, HEAD_ROW, "人员类别", s)?;
    let k = config.plan.categories.len() as u32;
    let mut row = HEAD_ROW + 1;
    let mut subtotals = Vec::new();
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
            excel::write_text(ws, row, 0, &u.name, Some(&s.cell))?;
            excel::write_text(ws, row, 1, &c.name, Some(&s.cell))?;
            ws.write_number_with_format(row, 2, target, &s.int)?;
            each_month(ws, row, shown, &s.int, |ws, col, m| {
                let v = months[m] as f64;
                unit_months[m] += v;
                ws.write_number_with_format(row, col, v, &s.int)?;
                Ok(())
            })?;
            row += 1;
        }
        excel::write_text(ws, row, 0, &u.name, Some(&s.total_label))?;
        ws.write_string_with_format(row, 1, "小计", &s.total_label)?;
        let sum = |col: u16| {
            format!(
                "=SUM({}:{})",
                a1(first, u32::from(col)),
                a1(first + k - 1, u32::from(col))
            )
        };
        formula(ws, row, 2, &sum(2), unit_target, &s.total_int)?;
        each_month(ws, row, shown, &s.total_int, |ws, col, m| {
            formula(ws, row, col, &sum(col), unit_months[m], &s.total_int)
        })?;
        subtotals.push(Subtotal {
            row,
            target: unit_target,
            months: unit_months,
        });
        row += 1;
    }
    Ok(subtotals)
}

/// The second block, from `head`: cumulative rate per unit and for the district, and the
/// schedule's expected rate. Returns the schedule's row.
fn write_rates(
    ws: &mut Worksheet,
    config: &Config,
    subtotals: &[Subtotal],
    head: u32,
    shown: usize,
    s: &Styles,
) -> Result<u32, XlsxError> {
    month_header(ws, head, "项目", s)?;
    let mut row = head + 1;
    for (u, sub) in config.plan.units.iter().zip(subtotals) {
        excel::write_text(ws, row, 0, &u.name, Some(&s.cell))?;
        ws.write_string_with_format(row, 1, "累计完成率", &s.cell)?;
        formula(
            ws,
            row,
            2,
            &format!("={}", a1(sub.row, 2)),
            sub.target,
            &s.int,
        )?;
        each_month(ws, row, shown, &s.pct, |ws, col, m| {
            let f = format!("=IFERROR({}/$C{},0)", a1(sub.row, u32::from(col)), row + 1);
            formula(ws, row, col, &f, ratio(sub.months[m], sub.target), &s.pct)
        })?;
        row += 1;
    }
    ws.write_string_with_format(row, 0, "全区", &s.total_label)?;
    ws.write_string_with_format(row, 1, "累计完成率", &s.total_label)?;
    let all_target: f64 = subtotals.iter().map(|t| t.target).sum();
    let refs = |col: u16| {
        subtotals
            .iter()
            .map(|t| a1(t.row, u32::from(col)))
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
    each_month(ws, row, shown, &s.total_pct, |ws, col, m| {
        let done: f64 = subtotals.iter().map(|t| t.months[m]).sum();
        let f = format!("=IFERROR(SUM({})/$C{},0)", refs(col), row + 1);
        formula(ws, row, col, &f, ratio(done, all_target), &s.total_pct)
    })?;
    row += 1;
    ws.write_string_with_format(row, 0, "序时进度", &s.total_label)?;
    ws.write_string_with_format(row, 1, "计划应完成", &s.total_label)?;
    ws.write_blank(row, 2, &s.total_label)?;
    for (m, ym) in YearMonth::months_of(config.plan.year).enumerate() {
        let end = calendar::start_of_day(config.plan.tz, ym.next().first_day());
        ws.write_number_with_format(
            row,
            FIRST_MONTH + m as u16,
            calendar::expected_fraction(&config.plan, end),
            &s.total_pct,
        )?;
    }
    Ok(row)
}

/// The line chart below the rates: each unit's cumulative rate and the district's (the rows
/// between `head` and `schedule_row`), against the schedule.
fn insert_chart(ws: &mut Worksheet, head: u32, schedule_row: u32) -> Result<(), XlsxError> {
    let mut chart = Chart::new(ChartType::Line);
    let months = (MONTHLY_SHEET, head, FIRST_MONTH, head, LAST_MONTH);
    for r in head + 1..schedule_row {
        chart
            .add_series()
            .set_name((MONTHLY_SHEET, r, 0))
            .set_categories(months)
            .set_values((MONTHLY_SHEET, r, FIRST_MONTH, r, LAST_MONTH))
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
            LAST_MONTH,
        ))
        .set_format(&mut schedule_line());
    style_rate_chart(&mut chart, "累计完成率与序时进度");
    ws.insert_chart_with_offset(schedule_row + 2, 0, &chart, 10, 0)?;
    Ok(())
}
