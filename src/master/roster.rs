//! The 培训台账 sheets: every counted row as it streams from the ledger, whether it counts and
//! why not, on constant-memory sheets that continue on 培训台账(2), … past a sheet's rows. It
//! only writes: whether a row counts is `core::count`'s answer, passed in.

use super::ROSTER_SHEET;
use super::lists::{Col, col, list_labels, list_widths};
use super::styles::Styles;
use crate::config::Config;
use crate::core::calendar::KeptMonthText;
use crate::core::count::{CountedRow, Eligibility};
use crate::core::form::{COVER_MONTH, Column, RESULT_FAIL, RESULT_PASS};
use crate::core::ids::mask_id;
use crate::excel;
use rust_xlsxwriter::{Workbook, Worksheet, XlsxError};

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
    /// The last month written, and its text.
    month: KeptMonthText,
    /// 否：非<year>年度, once made.
    outside_year: Option<String>,
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
            month: KeptMonthText::default(),
            outside_year: None,
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
        // The widths follow the sheet's last row (`finish`).
        list_labels(ws, config, &ROSTER_COLUMNS, s)?;
        self.next_row = 1;
        Ok(())
    }

    /// Write one counted row and whether it counts; a new sheet when this one is full. The
    /// row's text is moved into the sheet's cells, not copied.
    pub fn write(
        &mut self,
        book: &mut Workbook,
        config: &Config,
        r: CountedRow,
        e: Eligibility,
        s: &Styles,
    ) -> Result<(), XlsxError> {
        if self.next_row >= self.limit {
            self.add_sheet(book, config, s)?;
        }
        self.seq += 1;
        let row = self.next_row;
        let month = self.month.of(r.month, |m| m.to_string());
        let counts = self.counts_label(e, config.plan.year);
        let ws = book.worksheet_from_index(self.sheet)?;
        let p = r.row;
        ws.write_number(row, 0, self.seq as f64)?;
        write_text_owned(ws, row, 1, r.unit)?;
        write_text_owned(ws, row, 2, month)?;
        write_text_owned(ws, row, 3, p.name)?;
        let id = if config.plan.mask_ids {
            mask_id(&p.id)
        } else {
            p.id
        };
        write_text_owned(ws, row, 4, id)?;
        write_text_owned(ws, row, 5, p.enterprise)?;
        write_text_owned(ws, row, 6, p.credit_code)?;
        write_text_owned(ws, row, 7, p.category)?;
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
        write_text_owned(ws, row, 11, p.certificate)?;
        write_text_owned(ws, row, 12, counts)?;
        ws.write_number(row, 13, r.submission as f64)?;
        ws.write_number(row, 14, f64::from(p.line))?;
        self.next_row += 1;
        Ok(())
    }

    /// The 是否计入 column: 是, or 否 and why.
    fn counts_label(&mut self, e: Eligibility, year: i32) -> String {
        match e {
            Eligibility::Counts => "是".into(),
            Eligibility::UnknownCategory => "否：类别未列入".into(),
            Eligibility::OutsideYear => self
                .outside_year
                .get_or_insert_with(|| format!("否：非{year}年度"))
                .clone(),
            Eligibility::Failed => "否：不合格".into(),
        }
    }

    /// Set the current sheet's column widths and put the filter buttons on its header.
    pub fn finish(&mut self, book: &mut Workbook) -> Result<(), XlsxError> {
        let ws = book.worksheet_from_index(self.sheet)?;
        list_widths(ws, &ROSTER_COLUMNS)?;
        ws.autofilter(
            0,
            0,
            self.next_row.saturating_sub(1),
            ROSTER_COLUMNS.len() as u16 - 1,
        )?;
        Ok(())
    }
}

/// `excel::write_text` of text the row owns: clipped alike, then handed to the worksheet as it
/// is, without the copy a borrowed string costs. (Not in `excel`, whose source is part of the
/// forms' stamp: a change there rewrites every unit's form.)
fn write_text_owned(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    mut s: String,
) -> Result<(), XlsxError> {
    let kept = excel::clip(&s, excel::MAX_TEXT).len();
    s.truncate(kept);
    ws.write_string(row, col, s)?;
    Ok(())
}
