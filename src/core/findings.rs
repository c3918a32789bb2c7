//! Findings: every problem found in a return, as data (code, severity, sheet, cell, value,
//! message). Codes are a public contract (DESIGN.md §4): add, never rename.

use serde::{Deserialize, Serialize};
use std::fmt;

/// Whether a finding rejects the return.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Rejects the whole return.
    Error,
    /// Accepted and reported.
    Warning,
}

impl Severity {
    /// Chinese label for workbooks and mail.
    pub fn label(self) -> &'static str {
        match self {
            Severity::Error => "错误",
            Severity::Warning => "提醒",
        }
    }
}

/// Stable kebab-case finding codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Code {
    FileUnreadable,
    TooLarge,
    SheetMissing,
    HeaderMissing,
    HeaderDuplicate,
    UnitUnknown,
    UnitMismatch,
    PeriodInvalid,
    PeriodFuture,
    PeriodOutsidePlan,
    IdInvalid,
    IdDuplicate,
    CreditCodeInvalid,
    CategoryUnknown,
    DateInvalid,
    DateOutsidePeriod,
    DateOutsidePlan,
    HoursInvalid,
    ResultInvalid,
    MissingCell,
    SummaryMismatch,
    TotalMismatch,
    FormulaError,
    ExtraColumn,
    DoubleReported,
    MergedCells,
    InternalError,
}

impl Code {
    /// Every code, in contract order.
    pub const ALL: [Code; 27] = [
        Code::FileUnreadable,
        Code::TooLarge,
        Code::SheetMissing,
        Code::HeaderMissing,
        Code::HeaderDuplicate,
        Code::UnitUnknown,
        Code::UnitMismatch,
        Code::PeriodInvalid,
        Code::PeriodFuture,
        Code::PeriodOutsidePlan,
        Code::IdInvalid,
        Code::IdDuplicate,
        Code::CreditCodeInvalid,
        Code::CategoryUnknown,
        Code::DateInvalid,
        Code::DateOutsidePeriod,
        Code::DateOutsidePlan,
        Code::HoursInvalid,
        Code::ResultInvalid,
        Code::MissingCell,
        Code::SummaryMismatch,
        Code::TotalMismatch,
        Code::FormulaError,
        Code::ExtraColumn,
        Code::DoubleReported,
        Code::MergedCells,
        Code::InternalError,
    ];

    /// The contract's kebab-case spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::FileUnreadable => "file-unreadable",
            Code::TooLarge => "too-large",
            Code::SheetMissing => "sheet-missing",
            Code::HeaderMissing => "header-missing",
            Code::HeaderDuplicate => "header-duplicate",
            Code::UnitUnknown => "unit-unknown",
            Code::UnitMismatch => "unit-mismatch",
            Code::PeriodInvalid => "period-invalid",
            Code::PeriodFuture => "period-future",
            Code::PeriodOutsidePlan => "period-outside-plan",
            Code::IdInvalid => "id-invalid",
            Code::IdDuplicate => "id-duplicate",
            Code::CreditCodeInvalid => "credit-code-invalid",
            Code::CategoryUnknown => "category-unknown",
            Code::DateInvalid => "date-invalid",
            Code::DateOutsidePeriod => "date-outside-period",
            Code::DateOutsidePlan => "date-outside-plan",
            Code::HoursInvalid => "hours-invalid",
            Code::ResultInvalid => "result-invalid",
            Code::MissingCell => "missing-cell",
            Code::SummaryMismatch => "summary-mismatch",
            Code::TotalMismatch => "total-mismatch",
            Code::FormulaError => "formula-error",
            Code::ExtraColumn => "extra-column",
            Code::DoubleReported => "double-reported",
            Code::MergedCells => "merged-cells",
            Code::InternalError => "internal-error",
        }
    }

    /// Parse the kebab-case spelling.
    pub fn parse(s: &str) -> Option<Code> {
        Code::ALL.into_iter().find(|c| c.as_str() == s)
    }

    /// The fixed severity of a code (DESIGN.md §4).
    pub fn severity(self) -> Severity {
        match self {
            Code::CreditCodeInvalid
            | Code::DateOutsidePeriod
            | Code::IdDuplicate
            | Code::ExtraColumn
            | Code::DoubleReported => Severity::Warning,
            _ => Severity::Error,
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem in a return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    pub code: Code,
    pub severity: Severity,
    /// Sheet name as found in the file; empty for file-level findings.
    pub sheet: String,
    /// A1 reference; empty when the finding has no single cell.
    pub cell: String,
    /// The value found, as text; empty when nothing was there.
    pub value: String,
    /// Chinese message: what is wrong and how to fix it.
    pub message: String,
}

impl Finding {
    /// A finding with the code's own severity.
    pub fn new(
        code: Code,
        sheet: impl Into<String>,
        cell: impl Into<String>,
        value: impl Into<String>,
        message: impl Into<String>,
    ) -> Finding {
        Finding {
            code,
            severity: code.severity(),
            sheet: sheet.into(),
            cell: cell.into(),
            value: value.into(),
            message: message.into(),
        }
    }

    /// A finding about the whole file.
    pub fn file(code: Code, message: impl Into<String>) -> Finding {
        Finding::new(code, "", "", "", message)
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// `培训台账!C7` or the sheet alone or nothing.
    pub fn location(&self) -> String {
        match (self.sheet.is_empty(), self.cell.is_empty()) {
            (true, _) => String::new(),
            (false, true) => self.sheet.clone(),
            (false, false) => format!("{}!{}", self.sheet, self.cell),
        }
    }
}

/// Whether a list of findings lets the return be accepted.
pub fn accepted(findings: &[Finding]) -> bool {
    !findings.iter().any(Finding::is_error)
}

/// A1 reference from zero-based row and column.
pub fn a1(row: u32, col: u32) -> String {
    format!("{}{}", column_letters(col), u64::from(row) + 1)
}

/// Column letters from a zero-based index: 0 → A, 25 → Z, 26 → AA.
pub fn column_letters(col: u32) -> String {
    let mut n = u64::from(col) + 1;
    let mut out = Vec::new();
    while n > 0 {
        let rem = (n - 1) % 26;
        out.push(b'A' + rem as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_through_serde_and_parse() {
        for code in Code::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert_eq!(Code::parse(code.as_str()), Some(code));
        }
    }

    #[test]
    fn warnings_are_exactly_the_five_of_the_design() {
        let warnings: Vec<_> = Code::ALL
            .into_iter()
            .filter(|c| c.severity() == Severity::Warning)
            .map(Code::as_str)
            .collect();
        assert_eq!(
            warnings,
            [
                "id-duplicate",
                "credit-code-invalid",
                "date-outside-period",
                "extra-column",
                "double-reported"
            ]
        );
    }

    #[test]
    fn a1_references() {
        assert_eq!(a1(0, 0), "A1");
        assert_eq!(a1(6, 2), "C7");
        assert_eq!(column_letters(25), "Z");
        assert_eq!(column_letters(26), "AA");
        assert_eq!(column_letters(701), "ZZ");
        assert_eq!(column_letters(702), "AAA");
    }
}
