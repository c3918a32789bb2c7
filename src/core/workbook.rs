//! Raw cells of a return as read from any spreadsheet format: the boundary type between the
//! reader (calamine, in a child process) and validation. Plain data, serializable, no I/O.

use serde::{Deserialize, Serialize};

/// One cell value, converted once from calamine's `Data`. Serialized externally tagged (serde's
/// default), which the reader child's compact binary framing (postcard) can carry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub enum Cell {
    #[default]
    Empty,
    Text(String),
    Number(f64),
    Bool(bool),
    /// A date-formatted cell, already converted from the workbook's date system (1900/1904)
    /// to `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS`.
    Date(String),
    /// An error value such as `#DIV/0!`.
    Error(String),
}

impl Cell {
    /// Blank after trimming.
    pub fn is_blank(&self) -> bool {
        match self {
            Cell::Empty => true,
            Cell::Text(s) => crate::core::fold::trim(s).is_empty(),
            _ => false,
        }
    }

    /// The value as a user would read it in the cell.
    pub fn display(&self) -> String {
        match self {
            Cell::Empty => String::new(),
            Cell::Text(s) => s.clone(),
            Cell::Number(n) => format_number(*n),
            Cell::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Cell::Date(d) => d.strip_suffix("T00:00:00").unwrap_or(d).to_string(),
            Cell::Error(e) => e.clone(),
        }
    }
}

/// A number without a spurious `.0`; large integers in full.
pub fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e21 {
        format!("{n:.0}")
    } else {
        format!("{n}")
    }
}

/// A rectangular range, zero-based and inclusive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub first_row: u32,
    pub first_col: u32,
    pub last_row: u32,
    pub last_col: u32,
}

impl Range {
    /// `D3:D4`.
    pub fn a1(&self) -> String {
        format!(
            "{}:{}",
            crate::core::findings::a1(self.first_row, self.first_col),
            crate::core::findings::a1(self.last_row, self.last_col)
        )
    }
}

/// One worksheet: cells addressed from A1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Sheet {
    pub name: String,
    /// rows[r][c] is the cell at zero-based row r, column c; rows may be ragged.
    pub rows: Vec<Vec<Cell>>,
    /// Merged ranges, when the format reports them.
    pub merged: Vec<Range>,
}

static EMPTY: Cell = Cell::Empty;

impl Sheet {
    pub fn get(&self, row: u32, col: u32) -> &Cell {
        self.rows
            .get(row as usize)
            .and_then(|r| r.get(col as usize))
            .unwrap_or(&EMPTY)
    }

    pub fn height(&self) -> u32 {
        self.rows.len() as u32
    }

    pub fn width(&self, row: u32) -> u32 {
        self.rows.get(row as usize).map_or(0, |r| r.len() as u32)
    }
}

/// All sheets of a workbook, in file order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Workbook {
    pub sheets: Vec<Sheet>,
}
