//! The 报送日历 sheet: one row per unit, one column per month of the plan year, each cell
//! 按时 / 逾期N天 / 未报 / 退回待改 / 未到期 in its colour with the date received as a cell
//! note; per unit the on-time rate, per month how many units reported. It writes the states
//! `core::lateness` decides from the ledger's arrivals; it decides nothing itself.

use super::styles::{Styles, date_zh, print_setup};
use crate::config::Config;
use crate::core::calendar::{self, YearMonth};
use crate::core::lateness::{self, Arrivals, MonthEntry, MonthState};
use crate::excel;
use chrono::DateTime;
use chrono_tz::Tz;
use rust_xlsxwriter::{Note, Worksheet, XlsxError};
use std::collections::BTreeMap;

const TITLE_ROW: u32 = 0;
const SUBTITLE_ROW: u32 = 1;
const HEAD_ROW: u32 = 2;
/// The column of January; December is 11 to its right, the on-time rate after it.
const FIRST_MONTH: u16 = 1;
const RATE_COL: u16 = FIRST_MONTH + 12;

/// Write the 报送日历 sheet at `now` from each unit's arrivals.
pub fn write(
    ws: &mut Worksheet,
    config: &Config,
    now: DateTime<Tz>,
    arrivals: &BTreeMap<String, BTreeMap<YearMonth, Arrivals>>,
    s: &Styles,
) -> Result<(), XlsxError> {
    let plan = &config.plan;
    let colours = excel::MonthStateFormats::new(&s.cell);
    let none = BTreeMap::new();
    let rows: Vec<(String, Vec<MonthEntry>)> = plan
        .units
        .iter()
        .map(|u| {
            let months = lateness::unit_months(plan, now, arrivals.get(&u.name).unwrap_or(&none));
            (u.name.clone(), months)
        })
        .collect();

    ws.set_column_width(0, 14)?;
    ws.set_column_range_width(FIRST_MONTH, RATE_COL - 1, 9.5)?;
    ws.set_column_width(RATE_COL, 10)?;
    ws.merge_range(
        TITLE_ROW,
        0,
        TITLE_ROW,
        RATE_COL,
        &format!("{}报送日历", plan.title),
        &s.title,
    )?;
    ws.set_row_height(TITLE_ROW, 30)?;
    ws.merge_range(
        SUBTITLE_ROW,
        0,
        SUBTITLE_ROW,
        RATE_COL,
        &format!(
            "统计时点：{}　　每月月报应于次月{}日前报送，遇休息日顺延至下一个工作日；批注为收到时间。",
            date_zh(now),
            plan.deadline_day
        ),
        &s.subtitle,
    )?;
    ws.write_string_with_format(HEAD_ROW, 0, "单位", &s.header)?;
    for (i, m) in YearMonth::months_of(plan.year).enumerate() {
        let due = calendar::deadline_date(plan, m);
        let col = FIRST_MONTH + i as u16;
        ws.write_string_with_format(HEAD_ROW, col, format!("{}月", m.month), &s.header)?;
        let note = format!(
            "{}年{}月月报截止日：{}",
            m.year,
            m.month,
            due.format("%Y-%m-%d")
        );
        ws.insert_note(HEAD_ROW, col, &Note::new(note).set_author("tally"))?;
    }
    ws.write_string_with_format(HEAD_ROW, RATE_COL, "按时率", &s.header)?;

    for (r, (unit, months)) in rows.iter().enumerate() {
        let row = HEAD_ROW + 1 + r as u32;
        ws.write_string_with_format(row, 0, unit, &s.cell)?;
        for (i, m) in months.iter().enumerate() {
            let col = FIRST_MONTH + i as u16;
            ws.write_string_with_format(row, col, m.state.label(m.days_late), colours.of(m.state))?;
            if let (Some(at), Some(file)) = (&m.received_at, &m.file) {
                let when = calendar::show_stamp(at);
                let note = excel::clip(&format!("收到：{when}\n文件：{file}"), excel::MAX_NOTE)
                    .to_string();
                ws.insert_note(row, col, &Note::new(note).set_author("tally"))?;
            }
        }
        match lateness::on_time_rate(months) {
            Some(rate) => ws.write_number_with_format(row, RATE_COL, rate, &s.pct)?,
            None => ws.write_string_with_format(row, RATE_COL, "—", &s.cell)?,
        };
    }

    // Per month: how many units reported (on time or late).
    let total_row = HEAD_ROW + 1 + rows.len() as u32;
    ws.write_string_with_format(total_row, 0, "已报单位数", &s.total_label)?;
    for i in 0..12 {
        let reported = rows
            .iter()
            .filter(|(_, m)| matches!(m[i].state, MonthState::OnTime | MonthState::Late))
            .count();
        ws.write_number_with_format(
            total_row,
            FIRST_MONTH + i as u16,
            reported as f64,
            &s.total_int,
        )?;
    }
    ws.write_blank(total_row, RATE_COL, &s.total_label)?;
    let legend_row = total_row + 2;
    ws.merge_range(
        legend_row,
        0,
        legend_row,
        RATE_COL,
        "说明：按时 = 截止日前已报送并被接收；逾期N天 = 截止日后第N天才被接收；未报 = 已过截止日仍无被接收的月报；退回待改 = 报送的月报被退回、尚未改正；未到期 = 尚未到截止日。按时率 = 已到截止日或已报送的月份中按时报送的比例。以首次被接收的月报为准，之后的更正不改变按时与否。",
        &s.note,
    )?;
    ws.set_row_height(legend_row, 48)?;
    print_setup(ws, config, (HEAD_ROW, HEAD_ROW), 14.0 + 12.0 * 9.5 + 10.0)?;
    ws.set_freeze_panes(HEAD_ROW + 1, 1)?;
    Ok(())
}
