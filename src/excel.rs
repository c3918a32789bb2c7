//! What every workbook tally writes shares (master, feedback, template, a unit's progress):
//! Excel's limits, the one rule for the length of text, how a date becomes an Excel date, the
//! house colours, and the one page set-up every sheet prints with (A4, one page wide). It holds
//! no workbook of its own and does no I/O.
//!
//! Text is measured as Excel measures it, in UTF-16 code units: rust_xlsxwriter 0.102 refuses a
//! cell with `utf16_len(&string) > MAX_STRING_LEN` (32,767) with `MaxStringLengthExceeded`
//! (worksheet.rs:15513), a note over 32,767 − 54 (worksheet.rs:5878) and a sheet name over 31
//! (utility.rs:1119). A character outside the Basic Multilingual Plane (𠮷, most emoji) takes
//! two units, so counting characters would let such text through to a failed write.

use crate::core::lateness::MonthState;
use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
use rust_xlsxwriter::{ExcelDateTime, Format, FormatAlign, FormatBorder, Worksheet, XlsxError};

/// Rows in one worksheet.
/// The zip (deflate) level of the workbooks tally writes in bulk (master, rosters, progress):
/// 1 of 9, the fastest that still compresses — rows of text deflate ~3 × faster than at the
/// default 6, for files ~30 % larger.
pub const ZIP_LEVEL: u8 = 1;

pub const MAX_ROWS: u32 = 1_048_576;
/// Columns in one worksheet (A to XFD).
pub const MAX_COLS: u16 = 16_384;
/// The last zero-based row of a worksheet.
pub const LAST_ROW: u32 = MAX_ROWS - 1;
/// The last zero-based column of a worksheet.
pub const LAST_COL: u16 = MAX_COLS - 1;
/// Text in one cell, in UTF-16 code units.
pub const MAX_TEXT: usize = 32_767;
/// Text of a note: a cell's limit less the room Excel keeps for an author prefix.
pub const MAX_NOTE: usize = MAX_TEXT - 54;
/// A sheet name, in UTF-16 code units.
pub const MAX_SHEET_NAME: usize = 31;

/// `set_paper_size` for A4.
pub const PAPER_A4: u8 = 9;
/// Number format of a date without a time.
pub const DATE_FORMAT: &str = "yyyy-mm-dd";

/// Fill of header rows.
pub const HEADER_FILL: &str = "DDEBF7";
/// An error, a lagging figure: fill and font (Excel's "light red fill with dark red text").
pub const ERROR_FILL: &str = "FFC7CE";
pub const ERROR_FONT: &str = "9C0006";
/// A warning: fill and font (Excel's "yellow fill with dark yellow text").
pub const WARNING_FILL: &str = "FFEB9C";
pub const WARNING_FONT: &str = "9C5700";
/// Text that matters less: hints, returns that no longer count.
pub const GREY_FONT: &str = "808080";

/// Creation time written into workbooks that must render the same bytes every time.
const FIXED_CREATED: (u16, u8, u8) = (2020, 1, 1);

/// Length of `s` in UTF-16 code units, Excel's measure.
pub fn utf16_len(s: &str) -> usize {
    s.chars().map(char::len_utf16).sum()
}

/// `s` cut to at most `max` UTF-16 code units, never inside a character: what fits where Excel
/// allows `max` (a cell: [`MAX_TEXT`], a note: [`MAX_NOTE`], a sheet name: [`MAX_SHEET_NAME`]).
pub fn clip(s: &str, max: usize) -> &str {
    // UTF-8 never takes fewer bytes than UTF-16 units, so short strings need no count.
    if s.len() <= max || utf16_len(s) <= max {
        return s;
    }
    let mut units = 0;
    let end = s
        .char_indices()
        .find(|(_, ch)| {
            units += ch.len_utf16();
            units > max
        })
        .map_or(s.len(), |(i, _)| i);
    &s[..end]
}

/// Write text from a return or the ledger: always a string cell (never a formula, whatever it
/// starts with), clipped to [`MAX_TEXT`] so the write cannot fail on its length. Returns the
/// text written.
pub fn write_text<'s>(
    ws: &mut Worksheet,
    row: u32,
    col: u16,
    s: &'s str,
    format: Option<&Format>,
) -> Result<&'s str, XlsxError> {
    let s = clip(s, MAX_TEXT);
    match format {
        Some(f) => ws.write_string_with_format(row, col, s, f)?,
        None => ws.write_string(row, col, s)?,
    };
    Ok(s)
}

/// A day as an Excel date; `None` outside Excel's years (1900–9999).
pub fn date(d: NaiveDate) -> Option<ExcelDateTime> {
    let year = u16::try_from(d.year()).ok()?;
    ExcelDateTime::from_ymd(year, d.month() as u8, d.day() as u8).ok()
}

/// A time of day as an Excel date and time (to the second); `None` outside Excel's years.
pub fn datetime(t: NaiveDateTime) -> Option<ExcelDateTime> {
    date(t.date())?
        .and_hms(t.hour() as u16, t.minute() as u8, t.second())
        .ok()
}

/// The fixed creation time of workbooks rendered reproducibly (feedback, template).
pub fn fixed_created() -> Result<ExcelDateTime, XlsxError> {
    let (y, m, d) = FIXED_CREATED;
    ExcelDateTime::from_ymd(y, m, d)
}

/// [`fixed_created`] as docProps/core.xml holds it (`dcterms:created` and `dcterms:modified`,
/// until a spreadsheet program saves the file).
pub fn fixed_created_stamp() -> String {
    let (y, m, d) = FIXED_CREATED;
    format!("{y:04}-{m:02}-{d:02}T00:00:00Z")
}

/// `base` made into a header cell: bold on [`HEADER_FILL`], boxed, centred both ways.
pub fn header_format(base: Format) -> Format {
    base.set_bold()
        .set_background_color(HEADER_FILL)
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::Center)
        .set_align(FormatAlign::VerticalCenter)
}

/// `base` tinted as an error ([`ERROR_FILL`], [`ERROR_FONT`]).
pub fn error_tint(base: Format) -> Format {
    base.set_background_color(ERROR_FILL)
        .set_font_color(ERROR_FONT)
}

/// `base` in the colour of a month's standing in the 报送日历: green on time, amber late
/// (as a warning), red missing (as an error, bold), orange rejected, grey not due.
pub fn month_state_format(base: &Format, state: MonthState) -> Format {
    let base = base.clone();
    match state {
        MonthState::OnTime => base.set_background_color("C6EFCE").set_font_color("006100"),
        MonthState::Late => warning_tint(base),
        MonthState::Missing => error_tint(base).set_bold(),
        MonthState::Rejected => base.set_background_color("F8CBAD").set_font_color("833C0B"),
        MonthState::NotDue => base.set_font_color(GREY_FONT),
    }
}

/// The five month-state formats over `base`, looked up by state.
pub struct MonthStateFormats([Format; 5]);

impl MonthStateFormats {
    pub fn new(base: &Format) -> Self {
        MonthStateFormats(MonthState::ALL.map(|s| month_state_format(base, s)))
    }

    pub fn of(&self, state: MonthState) -> &Format {
        &self.0[MonthState::ALL
            .iter()
            .position(|s| *s == state)
            .unwrap_or(0)]
    }
}

/// `base` tinted as a warning ([`WARNING_FILL`], [`WARNING_FONT`]).
pub fn warning_tint(base: Format) -> Format {
    base.set_background_color(WARNING_FILL)
        .set_font_color(WARNING_FONT)
}

/// The widest sheet, in Excel characters of its printed columns, that prints on A4 portrait at
/// about full size within [`set_up_page`]'s margins (190 mm ≈ 718 px ≈ 100 characters of 7 px);
/// a wider one prints landscape.
pub const PORTRAIT_MAX_WIDTH: f64 = 100.0;
/// The title's share of the page header: Excel refuses a header over 255 characters, codes
/// and escaped `&&` included.
const MAX_HEADER_TITLE: usize = 100;

/// How one sheet prints.
pub struct Page<'a> {
    /// Left of the page header: the plan's title, or what the workbook is about.
    pub title: &'a str,
    /// Sum of the printed columns' widths, in Excel characters: portrait up to
    /// [`PORTRAIT_MAX_WIDTH`], landscape beyond.
    pub width: f64,
    /// Rows printed at the top of every page (first, last; zero-based): the header.
    pub repeat_rows: Option<(u32, u32)>,
}

/// The page set-up of every sheet tally writes: A4, portrait or landscape by its width, one
/// page wide and as many long as it takes, the title and the sheet's name in the page header,
/// "第 N 页，共 M 页" in the footer, the header rows repeated on every page. No print area is
/// set: spreadsheet programs print the used range, which grows with what a clerk types (a
/// fixed area would cut a long roster off, or print blank pages of an empty one).
pub fn set_up_page(ws: &mut Worksheet, page: &Page) -> Result<(), XlsxError> {
    // Cut before escaping, so that no `&&` is cut in two.
    let title: String = page.title.chars().take(MAX_HEADER_TITLE).collect();
    let title = title.replace('&', "&&");
    ws.set_paper_size(PAPER_A4)
        .set_print_fit_to_pages(1, 0)
        .set_margins(0.4, 0.4, 0.6, 0.6, 0.3, 0.3)
        .set_print_center_horizontally(true)
        .set_header(format!("&L&9{title}&R&9&A"))
        .set_footer("&C&9第 &P 页，共 &N 页");
    if page.width > PORTRAIT_MAX_WIDTH {
        ws.set_landscape();
    } else {
        ws.set_portrait();
    }
    if let Some((first, last)) = page.repeat_rows {
        ws.set_repeat_rows(first, last)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_xlsxwriter::Workbook;

    #[test]
    fn clip_counts_utf16_units_and_keeps_characters_whole() {
        assert_eq!(clip("abc", 3), "abc");
        assert_eq!(clip("长河街道", 2), "长河");
        // 𠮷 is two UTF-16 units: it fits whole or not at all.
        assert_eq!(clip("a𠮷b", 2), "a");
        assert_eq!(clip("a𠮷b", 3), "a𠮷");
        assert_eq!(utf16_len("a𠮷b"), 4);
    }

    /// What clip lets through, rust_xlsxwriter writes: text over the limit in characters
    /// (32,767 of them, half outside the BMP) and in UTF-16 units alike.
    #[test]
    fn clipped_text_is_always_written() {
        let mut book = Workbook::new();
        let ws = book.add_worksheet();
        let long = "𠮷长".repeat(MAX_TEXT / 2 + 1);
        let written = write_text(ws, 0, 0, &long, None).unwrap();
        assert!(utf16_len(written) <= MAX_TEXT && utf16_len(written) > MAX_TEXT - 2);
        assert!(ws.write_string(1, 0, &long[..written.len() + 4]).is_err());
        book.save_to_buffer().unwrap();
    }

    #[test]
    fn the_page_is_a4_one_page_wide_with_an_escaped_title() {
        let mut book = Workbook::new();
        let narrow = book.add_worksheet();
        let title = format!("{}&研发", "长".repeat(MAX_HEADER_TITLE - 1));
        set_up_page(
            narrow,
            &Page {
                title: &title,
                width: PORTRAIT_MAX_WIDTH,
                repeat_rows: None,
            },
        )
        .unwrap();
        let wide = book.add_worksheet();
        let page = Page {
            title: "a&b",
            width: PORTRAIT_MAX_WIDTH + 1.0,
            repeat_rows: Some((0, 1)),
        };
        set_up_page(wide, &page).unwrap();
        let bytes = book.save_to_buffer().unwrap();
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        let mut sheet = |n: usize| {
            let mut xml = String::new();
            let name = format!("xl/worksheets/sheet{n}.xml");
            std::io::Read::read_to_string(&mut zip.by_name(&name).unwrap(), &mut xml).unwrap();
            xml
        };
        let (narrow, wide) = (sheet(1), sheet(2));
        assert!(narrow.contains(r#"orientation="portrait""#), "{narrow}");
        // The cut falls on the `&`: it is escaped whole, never left as a lone code.
        let header = format!(
            "&amp;L&amp;9{}&amp;&amp;&amp;R",
            "长".repeat(MAX_HEADER_TITLE - 1)
        );
        assert!(narrow.contains(&header), "{narrow}");
        assert!(wide.contains(r#"orientation="landscape""#), "{wide}");
        assert!(wide.contains("a&amp;&amp;b&amp;R&amp;9&amp;A"), "{wide}");
        for xml in [&narrow, &wide] {
            assert!(xml.contains(r#"paperSize="9""#) && xml.contains(r#"fitToHeight="0""#));
            assert!(xml.contains("第 &amp;P 页，共 &amp;N 页"));
        }
    }
}
