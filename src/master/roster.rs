//! The 培训台账 sheets: every counted row as it streams from the ledger, whether it counts and
//! why not, on constant-memory sheets that continue on 培训台账(2), … past a sheet's rows. It
//! only writes: whether a row counts is `core::count`'s answer, passed in.

use super::ROSTER_SHEET;
use super::lists::{Col, col, list_header};
use super::styles::Styles;
use crate::config::Config;
use crate::core::count::{CountedRow, Eligibility};
use crate::core::form::{COVER_MONTH, Column, RESULT_FAIL, RESULT_PASS};
use crate::core::ids::mask_id;
use crate::excel;
use rust_xlsxwriter::{Workbook, XlsxError};

const ROSTER_COLUMNS: [Col; 15] = [
    col(Column::Seq.header(), 8.0, false),
    col("单位", 11.0, false),
    col(COVER_MONTH, 8.0, false),
    col(Column::Name.header(), 9.0, false),
    col(Column::Id.header(), 20.0, false),
    col(Column::Enterprise.header(), 28.0, false),
    col(Column::CreditCode.header(), 20.0, false),
    col(Column::Category.header(), 17.0, false),
    col(Column::Date.header(), 11.0, false),
    col(Column::Hours.header(), 8.0, false),
    col(Column::Result.header(), 8.0, false),
    col(Column::Certificate.header(), 14.0, false),
    col("是否计入", 16.0, false),
    col("报送编号", 8.0, false),
    col("原表行号", 8.0, false),
];

/// The streamed roster: constant-memory sheets of at most `limit` rows each.
pub struct Roster {
    limit: u32,
    sheet: usize,
    sheets: u32,
    next_row: u32,
    seq: u64,
}

impl Roster {
    /// The first roster sheet, added at `index` of the workbook's sheets.
    pub fn start(
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

    /// Write one counted row and whether it counts; a new sheet when this one is full.
    pub fn write(
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
        excel::write_text(ws, row, 1, &r.unit, None)?;
        excel::write_text(ws, row, 2, &r.month.to_string(), None)?;
        excel::write_text(ws, row, 3, &p.name, None)?;
        if config.plan.mask_ids {
            excel::write_text(ws, row, 4, &mask_id(&p.id), None)?;
        } else {
            excel::write_text(ws, row, 4, &p.id, None)?;
        }
        excel::write_text(ws, row, 5, &p.enterprise, None)?;
        excel::write_text(ws, row, 6, &p.credit_code, None)?;
        excel::write_text(ws, row, 7, &p.category, None)?;
        match excel::date(p.date) {
            Some(d) => ws.write_datetime_with_format(row, 8, &d, &s.date)?,
            None => ws.write_string(row, 8, p.date.to_string())?,
        };
        ws.write_number(row, 9, p.hours)?;
        excel::write_text(
            ws,
            row,
            10,
            if p.passed { RESULT_PASS } else { RESULT_FAIL },
            None,
        )?;
        excel::write_text(ws, row, 11, &p.certificate, None)?;
        excel::write_text(ws, row, 12, &counts_label(e, config.plan.year), None)?;
        ws.write_number(row, 13, r.submission as f64)?;
        ws.write_number(row, 14, f64::from(p.line))?;
        self.next_row += 1;
        Ok(())
    }

    /// Put the filter buttons on the current sheet's header.
    pub fn finish(&mut self, book: &mut Workbook) -> Result<(), XlsxError> {
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

/// The 是否计入 column: 是, or 否 and why.
fn counts_label(e: Eligibility, year: i32) -> String {
    match e {
        Eligibility::Counts => "是".into(),
        Eligibility::UnknownCategory => "否：类别未列入".into(),
        Eligibility::OutsideYear => format!("否：非{year}年度"),
        Eligibility::Failed => "否：不合格".into(),
    }
}
