//! The 考核指标完成情况 sheet, the master's first: per unit and category the target, completed
//! figure and rate as live formulas, expected progress, a state (正常/滞后/未报送) and remarks,
//! red where a category lags, notes on how each figure is made, and a chart. It writes what
//! `core::count::Status` says; it counts nothing itself.

use super::styles::{
    Styles, date_zh, formula, lines_in, print_setup, ratio, schedule_line, style_rate_chart,
};
use super::{COMPLETION_SHEET, FINDINGS_SHEET, ROSTER_SHEET, SUBMISSIONS_SHEET};
use crate::config::Config;
use crate::core::calendar::{self, YearMonth};
use crate::core::count::{Status, UnitStatus};
use crate::core::findings::{a1, column_letters};
use crate::core::form::TOTAL_LABEL;
use crate::core::plan::{Counting, ScheduleKind};
use crate::excel;
use chrono::{DateTime, Timelike};
use chrono_tz::Tz;
use rust_xlsxwriter::{
    Chart, ChartMarker, ChartMarkerType, ChartType, ConditionalFormatCell,
    ConditionalFormatCellRule, ConditionalFormatDataBar, ConditionalFormatFormula,
    ConditionalFormatType, Format, Worksheet, XlsxError,
};

/// Data bars of completion rates.
const BAR_COLOR: &str = "63BE7B";
/// Rows of the completion table (zero-based): title, subtitle, two header rows, then units.
const TITLE_ROW: u32 = 0;
const SUBTITLE_ROW: u32 = 1;
const HEAD_ROW: u32 = 2;
const FIRST_ROW: u32 = 4;
/// Widths of 序号 and 单位; of each group's 指标, 完成 and 完成率; of 序时进度 and 状态.
const LEAD_WIDTHS: [f64; 2] = [5.0, 13.0];
const GROUP_WIDTHS: [f64; 3] = [7.5, 7.5, 8.5];
const TAIL_WIDTHS: [f64; 2] = [9.0, 8.0];
/// Width of the 备注 column.
const NOTE_WIDTH: f64 = 34.0;

/// Where things are on the sheet: three columns (指标, 完成, 完成率) per category and for 合计,
/// then 序时进度, 状态 and 备注; a row per unit, then the 合计 row.
struct Layout {
    /// Categories.
    k: u16,
    /// Units.
    n: u32,
    total: u16,
    prog: u16,
    state: u16,
    note: u16,
    totals_row: u32,
}

impl Layout {
    fn new(config: &Config, status: &Status) -> Layout {
        let k = config.plan.categories.len() as u16;
        let n = status.units.len() as u32;
        let total = Layout::target_col(k);
        Layout {
            k,
            n,
            total,
            prog: total + 3,
            state: total + 4,
            note: total + 5,
            totals_row: FIRST_ROW + n,
        }
    }

    /// The 指标 column of category `c` (of 合计 for `c` = k).
    fn target_col(c: u16) -> u16 {
        2 + 3 * c
    }

    /// The table's width in characters, as printed.
    fn width(&self) -> f64 {
        let group: f64 = GROUP_WIDTHS.iter().sum();
        LEAD_WIDTHS.iter().sum::<f64>()
            + group * f64::from(self.k + 1)
            + TAIL_WIDTHS.iter().sum::<f64>()
            + NOTE_WIDTH
    }
}

/// Write the 考核指标完成情况 sheet from the status at `now`.
pub fn write(
    ws: &mut Worksheet,
    config: &Config,
    now: DateTime<Tz>,
    status: &Status,
    s: &Styles,
) -> Result<(), XlsxError> {
    let at = Layout::new(config, status);
    let fraction = calendar::expected_fraction(&config.plan, now);
    write_head(ws, config, now, fraction, &at, s)?;
    let states = write_units(ws, status, fraction, &at, s)?;
    write_totals(ws, status, fraction, states, &at, s)?;
    highlight(ws, config.plan.tolerance, &at, s)?;
    let below = write_notes(ws, config, &at, s)?;
    if at.n > 0 {
        insert_chart(ws, &at, below)?;
    }
    print_setup(ws, config, (HEAD_ROW, HEAD_ROW + 1), at.width())?;
    ws.set_freeze_panes(FIRST_ROW, 2)?;
    Ok(())
}

/// How expected progress is scheduled, in words.
fn schedule_label(config: &Config) -> &'static str {
    match config.plan.schedule {
        ScheduleKind::Linear => "全年均衡进度",
        ScheduleKind::Milestones => "计划节点进度",
    }
}

/// Column widths, title, subtitle and the two header rows (laid out like the plan's
/// attachment).
fn write_head(
    ws: &mut Worksheet,
    config: &Config,
    now: DateTime<Tz>,
    fraction: f64,
    at: &Layout,
    s: &Styles,
) -> Result<(), XlsxError> {
    for (col, width) in (0u16..).zip(LEAD_WIDTHS) {
        ws.set_column_width(col, width)?;
    }
    for c in 0..=at.k {
        for (col, width) in (Layout::target_col(c)..).zip(GROUP_WIDTHS) {
            ws.set_column_width(col, width)?;
        }
    }
    for (col, width) in (at.prog..).zip(TAIL_WIDTHS) {
        ws.set_column_width(col, width)?;
    }
    ws.set_column_width(at.note, NOTE_WIDTH)?;

    ws.set_row_height(TITLE_ROW, 30)?;
    ws.merge_range(
        TITLE_ROW,
        0,
        TITLE_ROW,
        at.note,
        &format!(
            "{}{COMPLETION_SHEET}（截至{}）",
            config.plan.title,
            date_zh(now)
        ),
        &s.title,
    )?;
    ws.merge_range(
        SUBTITLE_ROW,
        0,
        SUBTITLE_ROW,
        at.note,
        &format!(
            "统计时点：{} {:02}:{:02}　　序时进度：{:.1}%（{}）　　滞后标准：完成数低于 年度指标×序时进度×(1−{}%)",
            date_zh(now),
            now.hour(),
            now.minute(),
            fraction * 100.0,
            schedule_label(config),
            config.plan.tolerance * 100.0
        ),
        &s.subtitle,
    )?;

    let head2 = HEAD_ROW + 1;
    ws.set_row_height(HEAD_ROW, 20)?;
    ws.set_row_height(head2, 20)?;
    for (col, label) in [
        (0, "序号"),
        (1, "单位"),
        (at.prog, "序时进度"),
        (at.state, "状态"),
        (at.note, "备注"),
    ] {
        ws.merge_range(HEAD_ROW, col, head2, col, label, &s.header)?;
    }
    let groups = config
        .plan
        .categories
        .iter()
        .map(|c| c.name.as_str())
        .chain(std::iter::once(TOTAL_LABEL));
    for (c, name) in groups.enumerate() {
        let col = Layout::target_col(c as u16);
        ws.merge_range(HEAD_ROW, col, HEAD_ROW, col + 2, name, &s.header)?;
        for (i, label) in ["指标", "完成", "完成率"].iter().enumerate() {
            ws.write_string_with_format(head2, col + i as u16, *label, &s.header)?;
        }
    }
    Ok(())
}

/// `=IFERROR(完成/指标,0)` beside the target (`col`) and completed (`col + 1`) of `row`.
fn rate(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    (target, done): (f64, f64),
    format: &Format,
) -> Result<(), XlsxError> {
    let f = format!(
        "=IFERROR({}/{},0)",
        a1(row, u32::from(col) + 1),
        a1(row, u32::from(col))
    );
    formula(ws, row, col + 2, &f, ratio(done, target), format)
}

/// A row per unit: figures, rates and sums as formulas, expected progress, state and remarks.
/// Returns how many units are 正常, 滞后 and 未报送.
fn write_units(
    ws: &mut Worksheet,
    status: &Status,
    fraction: f64,
    at: &Layout,
    s: &Styles,
) -> Result<[usize; 3], XlsxError> {
    let mut states = [0usize; 3];
    for (i, u) in status.units.iter().enumerate() {
        let row = FIRST_ROW + i as u32;
        ws.write_number_with_format(row, 0, (i + 1) as f64, &s.cell)?;
        excel::write_text(ws, row, 1, &u.unit, Some(&s.cell))?;
        let (mut sum_target, mut sum_done) = (0.0, 0.0);
        for (c, cat) in u.categories.iter().enumerate() {
            let col = Layout::target_col(c as u16);
            let (t, d) = (f64::from(cat.target), cat.completed as f64);
            sum_target += t;
            sum_done += d;
            ws.write_number_with_format(row, col, t, &s.int)?;
            ws.write_number_with_format(row, col + 1, d, &s.int)?;
            rate(ws, row, col, (t, d), &s.pct)?;
        }
        let cells = |offset: u16| {
            (0..at.k)
                .map(|c| a1(row, u32::from(Layout::target_col(c) + offset)))
                .collect::<Vec<_>>()
                .join(",")
        };
        let total = at.total;
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
        rate(ws, row, total, (sum_target, sum_done), &s.pct)?;
        ws.write_number_with_format(row, at.prog, fraction, &s.pct)?;
        let (label, idx) = if !u.missing_months.is_empty() {
            ("未报送", 2)
        } else if u.lagging {
            ("滞后", 1)
        } else {
            ("正常", 0)
        };
        states[idx] += 1;
        ws.write_string_with_format(row, at.state, label, &s.cell)?;
        let remarks = remarks(u);
        excel::write_text(ws, row, at.note, &remarks, Some(&s.cell_left))?;
        let lines = lines_in(&remarks, NOTE_WIDTH);
        if lines > 1 {
            ws.set_row_height(row, 13.5 * lines as f64 + 3.0)?;
        }
    }
    Ok(states)
}

/// 备注 of a unit: the months it has not reported and the categories that lag.
fn remarks(u: &UnitStatus) -> String {
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
    remarks.join("；")
}

/// The 合计 row: column sums and rates as formulas, and how many units are in each state.
fn write_totals(
    ws: &mut Worksheet,
    status: &Status,
    fraction: f64,
    states: [usize; 3],
    at: &Layout,
    s: &Styles,
) -> Result<(), XlsxError> {
    let row = at.totals_row;
    ws.merge_range(row, 0, row, 1, TOTAL_LABEL, &s.total_label)?;
    let column_sum = |col: u16| {
        format!(
            "=SUM({}:{})",
            a1(FIRST_ROW, u32::from(col)),
            a1(row - 1, u32::from(col))
        )
    };
    let (mut all_target, mut all_done) = (0.0, 0.0);
    for c in 0..at.k {
        let col = Layout::target_col(c);
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
        formula(ws, row, col, &column_sum(col), t, &s.total_int)?;
        formula(ws, row, col + 1, &column_sum(col + 1), d, &s.total_int)?;
        rate(ws, row, col, (t, d), &s.total_pct)?;
    }
    let total = at.total;
    formula(ws, row, total, &column_sum(total), all_target, &s.total_int)?;
    formula(
        ws,
        row,
        total + 1,
        &column_sum(total + 1),
        all_done,
        &s.total_int,
    )?;
    rate(ws, row, total, (all_target, all_done), &s.total_pct)?;
    ws.write_number_with_format(row, at.prog, fraction, &s.total_pct)?;
    ws.write_blank(row, at.state, &s.total_label)?;
    let overview = format!(
        "正常 {} 个，滞后 {} 个，未报送 {} 个",
        states[0], states[1], states[2]
    );
    ws.write_string_with_format(row, at.note, &overview, &s.total_label)?;
    Ok(())
}

/// Red where a category lags (the same rule as `count`, live in the sheet), red states, and
/// data bars on every rate.
fn highlight(ws: &mut Worksheet, tolerance: f64, at: &Layout, s: &Styles) -> Result<(), XlsxError> {
    if at.n > 0 {
        let last = at.totals_row - 1;
        for c in 0..at.k {
            let col = Layout::target_col(c);
            // Columns absolute: the rule covers both 完成 and 完成率 and must test 完成 in each.
            let rule = format!(
                "=${done}{r}<${target}{r}*${prog}{r}*(1-{tolerance})",
                done = column_letters(u32::from(col) + 1),
                target = column_letters(u32::from(col)),
                prog = column_letters(u32::from(at.prog)),
                r = FIRST_ROW + 1
            );
            let cf = ConditionalFormatFormula::new()
                .set_rule(rule.as_str())
                .set_format(&s.lagging);
            ws.add_conditional_format(FIRST_ROW, col + 1, last, col + 2, &cf)?;
        }
        for (value, format) in [("滞后", &s.lagging), ("未报送", &s.missing)] {
            let cf = ConditionalFormatCell::new()
                .set_rule(ConditionalFormatCellRule::EqualTo(value))
                .set_format(format);
            ws.add_conditional_format(FIRST_ROW, at.state, last, at.state, &cf)?;
        }
    }
    for c in 0..=at.k {
        let col = Layout::target_col(c) + 2;
        let bar = ConditionalFormatDataBar::new()
            .set_minimum(ConditionalFormatType::Number, 0)
            .set_maximum(ConditionalFormatType::Number, 1)
            .set_fill_color(BAR_COLOR)
            .set_border_color(BAR_COLOR)
            .set_solid_fill(true);
        ws.add_conditional_format(FIRST_ROW, col, at.totals_row, col, &bar)?;
    }
    Ok(())
}

/// Notes under the table: how each figure is made, so a reader can audit it. Returns the
/// first row below them.
fn write_notes(
    ws: &mut Worksheet,
    config: &Config,
    at: &Layout,
    s: &Styles,
) -> Result<u32, XlsxError> {
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
            "2. 序时进度为截至统计时点按{}应完成的比例；某类别完成数低于 年度指标×序时进度×(1−{}%) 为“滞后”，标红；任一月份月报超过次月{}日（遇休息日顺延，见“报送日历”）仍未采用为“未报送”。",
            schedule_label(config),
            config.plan.tolerance * 100.0,
            config.plan.deadline_day
        ),
        format!(
            "3. 合计与完成率均为公式，可点击单元格查看；每个完成数可在“{ROSTER_SHEET}”按单位、人员类别筛选“是否计入”=是核对，报表来源见“{SUBMISSIONS_SHEET}”，报表问题和重复报送见“{FINDINGS_SHEET}”。"
        ),
        "4. 本表由 tally 根据报送台账自动生成，请勿手工修改；如需更正，请由报送单位重新报送。"
            .to_string(),
    ];
    let first = at.totals_row + 2;
    for (i, line) in notes.iter().enumerate() {
        let row = first + i as u32;
        ws.set_row_height(row, 27)?;
        ws.merge_range(row, 0, row, at.note, line, &s.note)?;
    }
    Ok(first + notes.len() as u32)
}

/// The chart at `below`: completion rate per unit and category against the expected rate.
fn insert_chart(ws: &mut Worksheet, at: &Layout, below: u32) -> Result<(), XlsxError> {
    let last = at.totals_row - 1;
    let mut columns = Chart::new(ChartType::Column);
    for c in 0..at.k {
        let col = Layout::target_col(c);
        columns
            .add_series()
            .set_name((COMPLETION_SHEET, HEAD_ROW, col))
            .set_categories((COMPLETION_SHEET, FIRST_ROW, 1, last, 1))
            .set_values((COMPLETION_SHEET, FIRST_ROW, col + 2, last, col + 2));
    }
    let mut line = Chart::new(ChartType::Line);
    line.add_series()
        .set_name((COMPLETION_SHEET, HEAD_ROW, at.prog))
        .set_categories((COMPLETION_SHEET, FIRST_ROW, 1, last, 1))
        .set_values((COMPLETION_SHEET, FIRST_ROW, at.prog, last, at.prog))
        .set_format(&mut schedule_line())
        .set_marker(
            ChartMarker::new()
                .set_type(ChartMarkerType::Diamond)
                .set_size(7),
        );
    columns.combine(&line);
    style_rate_chart(&mut columns, "各单位分类别完成率与序时进度");
    ws.insert_chart_with_offset(below + 1, 1, &columns, 10, 0)?;
    Ok(())
}
