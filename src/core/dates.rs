//! Dates and months as submitters write them: Excel date cells, serial numbers and the text
//! forms of DESIGN.md §3 (2020-05-12, 2020/5/12, 2020年5月12日, 20200512). Pure parsing only.

use crate::core::calendar::YearMonth;
use crate::core::workbook::Cell;
use chrono::{Datelike, NaiveDate};
use unicode_normalization::UnicodeNormalization;

/// A calendar date from a cell, or None when the cell holds no recognisable date.
pub fn date_of(cell: &Cell) -> Option<NaiveDate> {
    match cell {
        Cell::Date(s) => parse_iso_prefix(s),
        Cell::Number(n) => date_of_number(*n),
        Cell::Text(s) => parse_date_text(s),
        _ => None,
    }
}

/// A reporting month from a cell (a date cell, a serial, `2020-05`, `2020年5月`, `202005`).
pub fn month_of(cell: &Cell) -> Option<YearMonth> {
    match cell {
        Cell::Date(s) => parse_iso_prefix(s).map(YearMonth::of),
        Cell::Number(n) => {
            let n = *n;
            if n.fract() == 0.0 && (100_001.0..=999_912.0).contains(&n) {
                let n = n as i64;
                YearMonth::new((n / 100) as i32, (n % 100) as u32)
            } else if (1900.0..2100.0).contains(&n) && n.fract() > 0.0 {
                // 2020.05 typed into a number cell means year.month, not a date serial. The
                // cell keeps 2020.2 for "2020.2" (February); 2020.1 may be January or October
                // and is refused as ambiguous.
                let year = n.trunc() as i32;
                let frac = (n.fract() * 100.0).round() as u32;
                let month = match frac {
                    10 => return None,
                    f if f % 10 == 0 => f / 10,
                    f => f,
                };
                YearMonth::new(year, month)
            } else {
                date_of_number(n).map(YearMonth::of)
            }
        }
        Cell::Text(s) => parse_month_text(s),
        _ => None,
    }
}

/// Excel serial (1900 system; the reader has already converted 1904 workbooks' date cells)
/// or an 8-digit number 20200512.
fn date_of_number(n: f64) -> Option<NaiveDate> {
    if n.fract() == 0.0 && (10_000_101.0..=99_991_231.0).contains(&n) {
        return parse_compact(&format!("{}", n as i64));
    }
    if (1.0..2_958_466.0).contains(&n) {
        // Day 60 is Excel's phantom 1900-02-29; serials from 61 on are offset by it.
        let days = n.floor() as i64;
        let base = NaiveDate::from_ymd_opt(1899, 12, 30)?;
        if days < 61 {
            return base.checked_add_signed(chrono::Duration::days(days + 1));
        }
        return base.checked_add_signed(chrono::Duration::days(days));
    }
    None
}

/// `YYYY-MM-DD` at the start of `s` (a date cell as the reader gives it, `…T00:00:00`; a
/// stored row's date). By hand, not with a format string: this runs for every row.
pub fn parse_iso_prefix(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes().get(..10)?;
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(&b[..4])? as i32, digits(&b[5..7])?, digits(&b[8..])?)
}

/// The value of a run of ASCII digits (None when any byte is not one).
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + u32::from(d - b'0'))
    })
}

fn normalize(s: &str) -> String {
    s.nfkc().filter(|c| !c.is_whitespace()).collect::<String>()
}

/// `YYYYMMDD` (a compact date, or the birth date inside a 身份证号).
pub fn parse_compact(s: &str) -> Option<NaiveDate> {
    let b = s.as_bytes();
    if b.len() != 8 {
        return None;
    }
    NaiveDate::from_ymd_opt(digits(&b[..4])? as i32, digits(&b[4..6])?, digits(&b[6..])?)
}

/// Split `2020-5-12`, `2020/5/12`, `2020.5.12`, `2020年5月12日` into numeric parts.
fn numeric_parts(s: &str) -> Option<Vec<u32>> {
    let mut parts = Vec::new();
    let mut cur = String::new();
    for (i, c) in s.chars().enumerate() {
        if c.is_ascii_digit() {
            cur.push(c);
        } else if matches!(c, '-' | '/' | '.' | '年' | '月' | '日' | '号') {
            if cur.is_empty() {
                return None;
            }
            parts.push(cur.parse().ok()?);
            cur.clear();
            if matches!(c, '日' | '号') && i + 1 != s.chars().count() {
                return None;
            }
        } else {
            return None;
        }
    }
    if !cur.is_empty() {
        parts.push(cur.parse().ok()?);
    }
    Some(parts)
}

/// Text date in any accepted form; a trailing time (`2020-05-12 09:00`) is ignored.
pub fn parse_date_text(s: &str) -> Option<NaiveDate> {
    let s = s.trim();
    let date_part = match s.find([' ', 'T', '\u{3000}']) {
        Some(i) if i >= 8 => &s[..i],
        _ => s,
    };
    let n = normalize(date_part);
    if let Some(d) = parse_compact(&n) {
        return Some(d);
    }
    let parts = numeric_parts(&n)?;
    match parts.as_slice() {
        [y, m, d] if *y >= 1000 => NaiveDate::from_ymd_opt(*y as i32, *m, *d),
        _ => None,
    }
}

/// Text month: `2020-05`, `2020-5`, `2020/05`, `2020.5`, `2020年5月`, `202005`, or a whole date.
pub fn parse_month_text(s: &str) -> Option<YearMonth> {
    let n = normalize(s);
    if n.len() == 6 && n.bytes().all(|b| b.is_ascii_digit()) {
        return YearMonth::new(n[..4].parse().ok()?, n[4..].parse().ok()?);
    }
    if let Some(d) = parse_date_text(s) {
        return Some(YearMonth::of(d));
    }
    let n = n.strip_suffix("份").unwrap_or(&n);
    let parts = numeric_parts(n)?;
    match parts.as_slice() {
        [y, m] if *y >= 1000 => YearMonth::new(*y as i32, *m),
        _ => None,
    }
}

/// `2020-05-12`.
pub fn iso(d: NaiveDate) -> String {
    let (y, m, day) = (d.year(), d.month(), d.day());
    if !(0..=9999).contains(&y) {
        return d.to_string();
    }
    // By hand, not through a format string: every roster row and every stored row has one.
    let mut s = String::with_capacity(10);
    for (n, width) in [(y as u32, 4), (m, 2), (day, 2)] {
        if width == 2 {
            s.push('-');
        }
        for k in (0..width).rev() {
            s.push(char::from(b'0' + (n / 10u32.pow(k) % 10) as u8));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Days written as `NaiveDate`'s `Display` writes them, inside and outside four-digit years.
    #[test]
    fn iso_is_chronos_display() {
        for (y, m, d) in [
            (2020, 1, 1),
            (2020, 12, 31),
            (1999, 7, 9),
            (0, 1, 1),
            (9999, 12, 31),
            (10000, 1, 1),
            (-1, 3, 4),
            (33, 10, 10),
        ] {
            let day = NaiveDate::from_ymd_opt(y, m, d).unwrap();
            assert_eq!(iso(day), day.to_string());
        }
    }

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn every_text_form_of_the_design() {
        for s in [
            "2020-05-12",
            "2020/5/12",
            "2020年5月12日",
            "20200512",
            " 2020-5-12 ",
            "2020.05.12",
            "２０２０－０５－１２",
            "2020-05-12 09:30",
        ] {
            assert_eq!(parse_date_text(s), Some(d(2020, 5, 12)), "{s}");
        }
        for s in [
            "五月十二日",
            "2020-13-45",
            "2020-02-30",
            "12/05/2020",
            "",
            "2020年5月12日上午",
            "abc",
        ] {
            assert_eq!(parse_date_text(s), None, "{s}");
        }
    }

    #[test]
    fn cells_of_every_kind() {
        assert_eq!(
            date_of(&Cell::Date("2020-05-12T00:00:00".into())),
            Some(d(2020, 5, 12))
        );
        assert_eq!(date_of(&Cell::Number(43963.0)), Some(d(2020, 5, 12)));
        assert_eq!(date_of(&Cell::Number(20200512.0)), Some(d(2020, 5, 12)));
        assert_eq!(
            date_of(&Cell::Text("2020/5/12".into())),
            Some(d(2020, 5, 12))
        );
        assert_eq!(date_of(&Cell::Bool(true)), None);
        assert_eq!(date_of(&Cell::Number(-3.0)), None);
    }

    #[test]
    fn months() {
        let may = YearMonth::new(2020, 5);
        for s in [
            "2020-05",
            "2020-5",
            "2020年5月",
            "2020年05月份",
            "202005",
            "2020/05",
            "2020-05-01",
        ] {
            assert_eq!(parse_month_text(s), may, "{s}");
        }
        for s in ["五月份", "2020", "2020-13", "", "05-2020"] {
            assert_eq!(parse_month_text(s), None, "{s}");
        }
        assert_eq!(month_of(&Cell::Date("2020-05-01T00:00:00".into())), may);
        assert_eq!(month_of(&Cell::Number(202005.0)), may);
        assert_eq!(month_of(&Cell::Number(43952.0)), may);
        assert_eq!(month_of(&Cell::Number(2020.05)), may);
        assert_eq!(month_of(&Cell::Number(2020.2)), YearMonth::new(2020, 2));
        assert_eq!(month_of(&Cell::Number(2020.1)), None);
        assert_eq!(month_of(&Cell::Number(2020.11)), YearMonth::new(2020, 11));
    }
}
