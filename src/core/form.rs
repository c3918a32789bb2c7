//! The return form's fixed vocabulary: sheet names, roster headers, cover labels, results.
//! Shared by the template writer, the reader's sheet finder and the feedback workbook; holds
//! no logic beyond constants.

/// Cover sheet (label in column A, value in column B).
pub const COVER_SHEET: &str = "填报信息";
/// Roster sheet: one row per person trained.
pub const ROSTER_SHEET: &str = "培训台账";
/// Optional summary sheet: 人员类别 | 本月培训人数, then a 合计 row.
pub const RETURN_SUMMARY_SHEET: &str = "汇总";
/// Instructions sheet; ignored on read.
pub const INSTRUCTIONS_SHEET: &str = "填报说明";

pub const COVER_UNIT: &str = "填报单位";
pub const COVER_MONTH: &str = "报送月份";
pub const COVER_REPORTER: &str = "填报人";
pub const COVER_PHONE: &str = "联系电话";
/// Cover labels in template order (rows 2..=5 of the cover; row 1 is a title).
pub const COVER_LABELS: [&str; 4] = [COVER_UNIT, COVER_MONTH, COVER_REPORTER, COVER_PHONE];

/// One column of the roster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    Seq,
    Name,
    Id,
    Enterprise,
    CreditCode,
    Category,
    Date,
    Hours,
    Result,
    Certificate,
}

impl Column {
    /// All columns in template order.
    pub const ALL: [Column; 10] = [
        Column::Seq,
        Column::Name,
        Column::Id,
        Column::Enterprise,
        Column::CreditCode,
        Column::Category,
        Column::Date,
        Column::Hours,
        Column::Result,
        Column::Certificate,
    ];

    /// The header label (simplified Chinese) as the template writes it.
    pub const fn header(self) -> &'static str {
        match self {
            Column::Seq => "序号",
            Column::Name => "姓名",
            Column::Id => "身份证号",
            Column::Enterprise => "企业名称",
            Column::CreditCode => "统一社会信用代码",
            Column::Category => "人员类别",
            Column::Date => "培训日期",
            Column::Hours => "培训学时",
            Column::Result => "考核结果",
            Column::Certificate => "证书编号",
        }
    }

    /// Whether a header for this column must be present in the roster.
    pub fn header_required(self) -> bool {
        !matches!(self, Column::Seq | Column::CreditCode | Column::Certificate)
    }

    /// Whether every non-blank roster row must fill this cell.
    pub fn cell_required(self) -> bool {
        self.header_required()
    }
}

/// Summary sheet headers.
pub const SUMMARY_CATEGORY: &str = "人员类别";
pub const SUMMARY_COUNT: &str = "本月培训人数";
/// Label of the total row (summary and master).
pub const TOTAL_LABEL: &str = "合计";

/// Assessment results accepted in 考核结果.
pub const RESULT_PASS: &str = "合格";
pub const RESULT_FAIL: &str = "不合格";
pub const RESULTS: [&str; 2] = [RESULT_PASS, RESULT_FAIL];

// The unit's folder (DESIGN.md §5).

/// Sub-folder of a unit's folder for accepted (and duplicate) returns.
pub const ACCEPTED_DIR: &str = "已接收";
/// Sub-folder of a unit's folder for rejected returns and their feedback.
pub const REJECTED_DIR: &str = "退回";
/// Suffix of the feedback workbook: `X.xlsx` → `X.错误说明.xlsx`.
pub const FEEDBACK_SUFFIX: &str = ".错误说明.xlsx";

/// Whether a file name in a drop folder is our own feedback output.
pub fn is_feedback_name(name: &str) -> bool {
    name.ends_with(FEEDBACK_SUFFIX)
}
