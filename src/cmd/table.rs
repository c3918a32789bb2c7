//! Plain-text tables for the terminal, aligned by display width (CJK characters are two
//! columns wide). Formatting only; the caller prints.

use unicode_width::UnicodeWidthStr;

/// Render rows under a header, columns separated by two spaces; the last column is not padded.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut widths: Vec<usize> = header.iter().map(|h| h.width()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate().take(n) {
            widths[i] = widths[i].max(cell.width());
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        for (i, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < cells.len() {
                out.push_str(&" ".repeat(widths[i] - cell.width() + 2));
            }
        }
        let trimmed = out.trim_end().len();
        out.truncate(trimmed);
        out.push('\n');
    };
    line(header.to_vec(), &mut out);
    for row in rows {
        line(row.iter().map(String::as_str).collect(), &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn aligns_by_display_width() {
        let s = super::render(
            &["a", "b"],
            &[
                vec!["西兴".into(), "x".into()],
                vec!["ab".into(), "y".into()],
            ],
        );
        assert_eq!(s, "a     b\n西兴  x\nab    y\n");
    }
}
