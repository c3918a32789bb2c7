//! `tally targets import FILE`: read the bureau's quota breakdown table (序号 | 单位 | one column
//! per category | 合计, with a 合计 row) into `[targets]` of tally.toml, reporting every total
//! that disagrees with its figures. `parse`, `inconsistencies` and `apply` are pure; `run` is
//! the edge that reads the table and rewrites the config in place, keeping its comments and
//! layout. It touches nothing but tally.toml: no ledger, no drop folder, no master.
//!
//! Which figure wins (the issue's `--use-computed` / `--accept-stated`): the per-unit,
//! per-category cells are always what is written, because tally.toml has no place for a stated
//! total — tally computes every total (status, master, reminders) from those figures. A table
//! whose stated totals disagree with its figures is refused until the user says how to read
//! it: `--use-computed` imports and says the totals computed from the figures are used (the
//! stated ones were slips); `--accept-stated` imports and records in the report that the
//! stated totals were accepted as the table's own figures — informational only, since nothing
//! in tally reads them. Either way the targets written are the same; the flags record the
//! user's decision, so an inconsistent table is never imported silently.

use crate::config::Config;
use crate::core::findings::a1;
use crate::core::fold::fold;
use crate::core::workbook::{Cell, Sheet, Workbook};
use anyhow::{Context as _, bail};
use std::fmt;
use std::io::Write as _;
use std::path::Path;
use toml_edit::{DocumentMut, InlineTable, Item, Table, Value};

/// The header row is looked for in this many rows from the top (title rows may sit above it).
pub const HEADER_SCAN_ROWS: u32 = 20;

/// Header labels of the unit column (after folding).
const UNIT_LABELS: [&str; 2] = ["单位", "单位名称"];
/// Header labels of the total column, and labels of the total row (after folding).
const TOTAL_LABELS: [&str; 3] = ["合计", "总计", "小计"];
/// Header labels of columns that are read past (after folding).
const IGNORED_LABELS: [&str; 3] = ["序号", "编号", "备注"];

/// A whole number read from one cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stated {
    /// A1 address in the table's sheet.
    pub cell: String,
    pub value: u64,
}

/// One unit's row of the table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitRow {
    /// Canonical unit name (the table may use an alias or traditional characters).
    pub unit: String,
    /// A1 address of the unit's label.
    pub label_cell: String,
    /// One figure per category, parallel to [`QuotaTable::categories`].
    pub figures: Vec<Stated>,
    /// The row's 合计, when the table has a 合计 column and the cell is filled.
    pub total: Option<Stated>,
}

impl UnitRow {
    /// The row's total computed from its figures.
    pub fn computed_total(&self) -> u64 {
        self.figures.iter().map(|f| f.value).sum()
    }
}

/// A quota breakdown table as read: every stated figure, with the cell it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaTable {
    pub sheet: String,
    /// Zero-based row of the header.
    pub header_row: u32,
    /// Canonical category names, in the table's column order.
    pub categories: Vec<String>,
    /// Unit rows, in table order.
    pub units: Vec<UnitRow>,
    /// Zero-based row of the 合计 row, if the table has one.
    pub total_row: Option<u32>,
    /// The 合计 row's figure per category, parallel to `categories` (all `None` without a
    /// 合计 row or where its cell is blank).
    pub column_totals: Vec<Option<Stated>>,
    /// The 合计 row's figure in the 合计 column.
    pub grand_total: Option<Stated>,
}

impl QuotaTable {
    /// A column's total computed from the unit rows.
    pub fn computed_column_total(&self, category: usize) -> u64 {
        self.units.iter().map(|u| u.figures[category].value).sum()
    }

    /// The grand total computed from every figure.
    pub fn computed_grand_total(&self) -> u64 {
        self.units.iter().map(UnitRow::computed_total).sum()
    }

    /// The figure for a unit and category (canonical names).
    pub fn figure(&self, unit: &str, category: &str) -> Option<u64> {
        let c = self.categories.iter().position(|c| c == category)?;
        let row = self.units.iter().find(|u| u.unit == unit)?;
        Some(row.figures[c].value)
    }
}

/// Which stated total disagrees with the figures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Total {
    /// A unit's 合计 against the sum of its row.
    Row { unit: String },
    /// The 合计 row's figure for a category against the sum of its column.
    Column { category: String },
    /// The 合计 row's 合计 against the sum of every figure.
    Grand,
}

/// A stated total that differs from the sum of the figures it totals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inconsistency {
    pub sheet: String,
    pub cell: String,
    pub total: Total,
    pub stated: u64,
    pub computed: u64,
}

impl fmt::Display for Inconsistency {
    /// `附件!F7：合计写的是 26000，但各列相加为 20600`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, parts) = match &self.total {
            Total::Row { unit } => (format!("{unit}的合计"), "该单位各项"),
            Total::Column { category } => (format!("{category}的合计"), "各单位"),
            Total::Grand => ("合计".to_string(), "各列"),
        };
        write!(
            f,
            "{}!{}：{what}写的是 {}，但{parts}相加为 {}",
            self.sheet, self.cell, self.stated, self.computed
        )
    }
}

/// A cell's text in Chinese quotation marks, with control characters escaped (a header label
/// may hold a line break) so that one message stays on one line.
fn quoted(text: &str) -> String {
    let debug = format!("{text:?}");
    format!("“{}”", &debug[1..debug.len() - 1])
}

/// A table that cannot be imported; each names the sheet and cell at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TableError {
    /// No sheet has a row with 单位 in its first [`HEADER_SCAN_ROWS`] rows.
    #[error(
        "没有哪个工作表在前 {HEADER_SCAN_ROWS} 行内有表头行（同一行写有“单位”和至少一个人员类别：{categories}）；请检查表头是否写了这些名称"
    )]
    HeaderMissing { categories: String },
    /// A header label that is no category, no 单位, 合计, 序号 or 备注.
    #[error(
        "{at}：{}不是培训计划中的人员类别（人员类别：{known}）；如果它指的是其中之一，请在 tally.toml 中把它加到该人员类别的 aliases 里",
        quoted(.label)
    )]
    CategoryUnknown {
        at: String,
        label: String,
        known: String,
    },
    /// Two header columns name the same category, or 单位 / 合计 twice.
    #[error("{at}：{}是重复的{what}列（已有一列在 {first}）；请只保留一列", quoted(.label))]
    ColumnDuplicate {
        at: String,
        label: String,
        what: String,
        first: String,
    },
    /// A category of the plan has no column in the table.
    #[error("{at}：表头中没有人员类别“{category}”这一列；请补上这一列")]
    CategoryMissing { at: String, category: String },
    /// A unit label that names no unit of the plan.
    #[error(
        "{at}：{}不是培训计划中的单位（单位：{known}）；如果它指的是其中之一，请在 tally.toml 中把它加到该单位的 aliases 里",
        quoted(.label)
    )]
    UnitUnknown {
        at: String,
        label: String,
        known: String,
    },
    /// A row with figures but no unit label.
    #[error("{at}：这一行有数字，但没有填写单位；请填写单位名称")]
    UnitBlank { at: String },
    /// The same unit in two rows.
    #[error("{at}：{unit}出现了第二次（第一次在 {first}）；请只保留一行")]
    UnitDuplicate {
        at: String,
        unit: String,
        first: String,
    },
    /// A unit of the plan has no row in the table.
    #[error("{at}：表中没有单位“{unit}”这一行；请补上这一行")]
    UnitMissing { at: String, unit: String },
    /// A second 合计 row.
    #[error("{at}：出现了第二个合计行（第一个在第 {first} 行）；请只保留一个合计行")]
    TotalRowDuplicate { at: String, first: u32 },
    /// A unit's figure for a category is blank.
    #[error("{at}：{unit} / {category} 没有填写数字；该单位此类人员没有年度指标的，请填 0")]
    FigureBlank {
        at: String,
        unit: String,
        category: String,
    },
    /// A figure or total that is not a whole number in 0..=4294967295.
    #[error("{at}：{}不是人数（应为 0 或以上的整数）", quoted(.value))]
    NotANumber { at: String, value: String },
}

/// Find the quota table in a workbook and read every figure, or say what is wrong with it.
///
/// The header row is the first row, within [`HEADER_SCAN_ROWS`] of the top of a sheet, that
/// holds 单位 and at least one category label (names and aliases match after folding); if no
/// row has a category label, the first row with 单位 is taken so that its labels can be named
/// as unknown. Unit rows follow it; the table ends at the first blank row after them, or at the
/// first row without figures after the 合计 row (notes below the table).
pub fn parse(wb: &Workbook, config: &Config) -> Result<QuotaTable, Vec<TableError>> {
    let (sheet, header_row) = find_header(wb, config).ok_or_else(|| {
        vec![TableError::HeaderMissing {
            categories: config.plan.category_names().join("、"),
        }]
    })?;
    let at = |row: u32, col: u32| format!("{}!{}", sheet.name, a1(row, col));
    let mut errors = Vec::new();

    // The header: which column holds what.
    let mut unit_col: Option<u32> = None;
    let mut total_col: Option<u32> = None;
    let mut cat_cols: Vec<(u32, String)> = Vec::new();
    for col in 0..sheet.width(header_row) {
        let cell = sheet.get(header_row, col);
        if cell.is_blank() {
            continue;
        }
        let label = cell.display();
        let folded = fold(&label);
        let place = |slot: &mut Option<u32>, what: &str, errors: &mut Vec<TableError>| match slot {
            Some(first) => errors.push(TableError::ColumnDuplicate {
                at: at(header_row, col),
                label: label.clone(),
                what: what.to_string(),
                first: a1(header_row, *first),
            }),
            None => *slot = Some(col),
        };
        if UNIT_LABELS.contains(&folded.as_str()) {
            place(&mut unit_col, "单位", &mut errors);
        } else if TOTAL_LABELS.contains(&folded.as_str()) {
            place(&mut total_col, "合计", &mut errors);
        } else if IGNORED_LABELS.contains(&folded.as_str()) {
            // 序号, 备注: read past.
        } else if let Some(category) = config.plan.find_category(&label) {
            match cat_cols.iter().find(|(_, name)| *name == category.name) {
                Some((first, _)) => errors.push(TableError::ColumnDuplicate {
                    at: at(header_row, col),
                    label: label.clone(),
                    what: format!("人员类别“{}”", category.name),
                    first: a1(header_row, *first),
                }),
                None => cat_cols.push((col, category.name.clone())),
            }
        } else {
            errors.push(TableError::CategoryUnknown {
                at: at(header_row, col),
                label: label.clone(),
                known: config.plan.category_names().join("、"),
            });
        }
    }
    for category in config.plan.category_names() {
        if !cat_cols.iter().any(|(_, name)| *name == category) {
            errors.push(TableError::CategoryMissing {
                at: format!("{}!{}:{}", sheet.name, header_row + 1, header_row + 1),
                category,
            });
        }
    }
    // find_header only returns rows with a 单位 cell.
    let Some(unit_col) = unit_col else {
        return Err(errors);
    };

    // The body.
    let figure_cols: Vec<u32> = cat_cols.iter().map(|(c, _)| *c).chain(total_col).collect();
    let mut units: Vec<UnitRow> = Vec::new();
    let mut total_row: Option<u32> = None;
    let mut column_totals: Vec<Option<Stated>> = vec![None; cat_cols.len()];
    let mut grand_total: Option<Stated> = None;
    let number = |row: u32, col: u32, errors: &mut Vec<TableError>| -> Option<Stated> {
        let cell = sheet.get(row, col);
        match count(cell) {
            Ok(value) => value.map(|value| Stated {
                cell: a1(row, col),
                value,
            }),
            Err(()) => {
                errors.push(TableError::NotANumber {
                    at: at(row, col),
                    value: cell.display(),
                });
                None
            }
        }
    };
    for row in header_row + 1..sheet.height() {
        let unit_cell = sheet.get(row, unit_col);
        let no_figures = figure_cols.iter().all(|&c| sheet.get(row, c).is_blank());
        if no_figures && (unit_cell.is_blank() || total_row.is_some()) {
            if units.is_empty() && total_row.is_none() {
                continue; // blank rows between header and body
            }
            break;
        }
        let is_total_row = (0..sheet.width(row))
            .filter(|c| !figure_cols.contains(c))
            .any(|c| TOTAL_LABELS.contains(&fold(&sheet.get(row, c).display()).as_str()));
        if is_total_row {
            if let Some(first) = total_row {
                errors.push(TableError::TotalRowDuplicate {
                    at: format!("{}!{}:{}", sheet.name, row + 1, row + 1),
                    first: first + 1,
                });
                continue;
            }
            total_row = Some(row);
            for (i, (col, _)) in cat_cols.iter().enumerate() {
                column_totals[i] = number(row, *col, &mut errors);
            }
            grand_total = total_col.and_then(|c| number(row, c, &mut errors));
            continue;
        }
        if unit_cell.is_blank() {
            errors.push(TableError::UnitBlank {
                at: at(row, unit_col),
            });
            continue;
        }
        let label = unit_cell.display();
        let Some(unit) = config.plan.find_unit(&label) else {
            errors.push(TableError::UnitUnknown {
                at: at(row, unit_col),
                label,
                known: config.plan.unit_names().join("、"),
            });
            continue;
        };
        if let Some(first) = units.iter().find(|u| u.unit == unit.name) {
            errors.push(TableError::UnitDuplicate {
                at: at(row, unit_col),
                unit: unit.name.clone(),
                first: first.label_cell.clone(),
            });
            continue;
        }
        let mut figures = Vec::with_capacity(cat_cols.len());
        for (col, category) in &cat_cols {
            let cell = sheet.get(row, *col);
            if cell.is_blank() {
                errors.push(TableError::FigureBlank {
                    at: at(row, *col),
                    unit: unit.name.clone(),
                    category: category.clone(),
                });
                continue;
            }
            let Some(figure) = number(row, *col, &mut errors) else {
                continue;
            };
            if u32::try_from(figure.value).is_err() {
                errors.push(TableError::NotANumber {
                    at: at(row, *col),
                    value: cell.display(),
                });
                continue;
            }
            figures.push(figure);
        }
        let total = total_col.and_then(|c| number(row, c, &mut errors));
        if figures.len() == cat_cols.len() {
            units.push(UnitRow {
                unit: unit.name.clone(),
                label_cell: a1(row, unit_col),
                figures,
                total,
            });
        } else {
            // Its errors are recorded; keep the unit from being reported as missing too.
            units.push(UnitRow {
                unit: unit.name.clone(),
                label_cell: a1(row, unit_col),
                figures: Vec::new(),
                total: None,
            });
        }
    }
    for unit in config.plan.unit_names() {
        if !units.iter().any(|u| u.unit == unit) {
            errors.push(TableError::UnitMissing {
                at: sheet.name.clone(),
                unit,
            });
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(QuotaTable {
        sheet: sheet.name.clone(),
        header_row,
        categories: cat_cols.into_iter().map(|(_, name)| name).collect(),
        units,
        total_row,
        column_totals,
        grand_total,
    })
}

/// The first sheet and row that look like the quota table's header.
fn find_header<'a>(wb: &'a Workbook, config: &Config) -> Option<(&'a Sheet, u32)> {
    let has = |sheet: &Sheet, row: u32, pred: &dyn Fn(&Cell) -> bool| {
        (0..sheet.width(row)).any(|c| pred(sheet.get(row, c)))
    };
    let is_unit = |cell: &Cell| UNIT_LABELS.contains(&fold(&cell.display()).as_str());
    let is_category =
        |cell: &Cell| !cell.is_blank() && config.plan.find_category(&cell.display()).is_some();
    let rows = |sheet: &Sheet| 0..sheet.height().min(HEADER_SCAN_ROWS);
    let full = wb.sheets.iter().find_map(|sheet| {
        rows(sheet)
            .find(|&r| has(sheet, r, &is_unit) && has(sheet, r, &is_category))
            .map(|r| (sheet, r))
    });
    full.or_else(|| {
        wb.sheets.iter().find_map(|sheet| {
            rows(sheet)
                .find(|&r| has(sheet, r, &is_unit))
                .map(|r| (sheet, r))
        })
    })
}

/// A count of people: blank → `None`; a whole number ≥ 0 (also as text, with full-width
/// digits or thousands separators) → its value; anything else → `Err`.
fn count(cell: &Cell) -> Result<Option<u64>, ()> {
    const MAX_EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
    match cell {
        _ if cell.is_blank() => Ok(None),
        Cell::Number(n) => {
            let rounded = n.round();
            if n.is_finite() && (n - rounded).abs() < 1e-6 && (0.0..MAX_EXACT).contains(&rounded) {
                Ok(Some(rounded as u64))
            } else {
                Err(())
            }
        }
        Cell::Text(s) => {
            let digits: String = fold(s).chars().filter(|&c| c != ',').collect();
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(());
            }
            digits.parse().map(Some).map_err(|_| ())
        }
        _ => Err(()),
    }
}

/// Every stated total of the table that differs from the sum of what it totals: each unit's
/// 合计, each category's figure in the 合计 row, and the 合计 row's 合计.
pub fn inconsistencies(table: &QuotaTable) -> Vec<Inconsistency> {
    let mut out = Vec::new();
    let mut push = |stated: &Stated, total: Total, computed: u64| {
        if stated.value != computed {
            out.push(Inconsistency {
                sheet: table.sheet.clone(),
                cell: stated.cell.clone(),
                total,
                stated: stated.value,
                computed,
            });
        }
    };
    for row in &table.units {
        if let Some(stated) = &row.total {
            push(
                stated,
                Total::Row {
                    unit: row.unit.clone(),
                },
                row.computed_total(),
            );
        }
    }
    for (i, stated) in table.column_totals.iter().enumerate() {
        if let Some(stated) = stated {
            push(
                stated,
                Total::Column {
                    category: table.categories[i].clone(),
                },
                table.computed_column_total(i),
            );
        }
    }
    if let Some(stated) = &table.grand_total {
        push(stated, Total::Grand, table.computed_grand_total());
    }
    out
}

/// One target that the import changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub unit: String,
    pub category: String,
    /// The value in tally.toml before, if there was one.
    pub old: Option<i64>,
    pub new: u32,
}

/// tally.toml cannot take the targets where they belong.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    /// The text is not TOML.
    #[error("不是有效的 TOML（{0}）")]
    Syntax(#[from] toml_edit::TomlError),
    /// A key on the way to a target holds something other than a table or an integer;
    /// `expected` is said in words (表, 整数).
    #[error("{key} 不是{expected}，tally 无法在此写入年度指标；请在 tally.toml 中改正这一项")]
    Shape { key: String, expected: &'static str },
}

/// Set `targets."<unit>"."<category>"` in config text to every figure of the table, in place:
/// values that change keep their key, position and comments; missing tables and keys are
/// created; everything else is left byte for byte. Returns the new text and what changed.
pub fn apply(src: &str, table: &QuotaTable) -> Result<(String, Vec<Change>), ApplyError> {
    let mut doc: DocumentMut = src.parse()?;
    let targets = child(doc.as_item_mut(), "targets", "targets")?;
    let mut changes = Vec::new();
    for row in &table.units {
        let path = format!("targets.{:?}", row.unit);
        let unit_item = child(targets, &row.unit, &path)?;
        let unit_table = unit_item
            .as_table_like_mut()
            .ok_or_else(|| shape(&path, TABLE))?;
        for (category, figure) in table.categories.iter().zip(&row.figures) {
            let new = u32::try_from(figure.value).map_err(|_| shape(&path, SMALL_INTEGER))?;
            match unit_table.get_mut(category) {
                Some(item) => {
                    let key = format!("{path}.{category:?}");
                    let value = item.as_value_mut().ok_or_else(|| shape(&key, INTEGER))?;
                    let old = value.as_integer();
                    if old == Some(i64::from(new)) {
                        continue;
                    }
                    let decor = value.decor().clone();
                    *value = Value::from(i64::from(new));
                    *value.decor_mut() = decor;
                    changes.push(Change {
                        unit: row.unit.clone(),
                        category: category.clone(),
                        old,
                        new,
                    });
                }
                None => {
                    unit_table.insert(category, toml_edit::value(i64::from(new)));
                    changes.push(Change {
                        unit: row.unit.clone(),
                        category: category.clone(),
                        old: None,
                        new,
                    });
                }
            }
        }
    }
    Ok((doc.to_string(), changes))
}

/// What a key must hold, in words for [`ApplyError::Shape`].
const TABLE: &str = "表（TOML table）";
const INTEGER: &str = "整数";
const SMALL_INTEGER: &str = "0 到 4294967295 之间的整数";

fn shape(key: &str, expected: &'static str) -> ApplyError {
    ApplyError::Shape {
        key: key.to_string(),
        expected,
    }
}

/// The table under `key` in `parent`, created if missing (inline inside an inline table).
fn child<'a>(parent: &'a mut Item, key: &str, path: &str) -> Result<&'a mut Item, ApplyError> {
    let inline = parent.is_inline_table();
    let table = parent
        .as_table_like_mut()
        .ok_or_else(|| shape(path, TABLE))?;
    if table.get(key).is_none() {
        let new = if inline {
            Item::Value(Value::InlineTable(InlineTable::new()))
        } else {
            Item::Table(Table::new())
        };
        table.insert(key, new);
    }
    let item = table.get_mut(key).ok_or_else(|| shape(path, TABLE))?;
    if item.is_table_like() {
        Ok(item)
    } else {
        Err(shape(path, TABLE))
    }
}

/// Replace tally.toml with `new` atomically (temp file in the same folder, then rename), if it
/// still holds `original`; then load it, and put `original` back if it does not validate.
pub fn write_config(path: &Path, original: &str, new: &str) -> anyhow::Result<()> {
    // Follow a symbolic link so that the rename replaces the file, not the link.
    let real = std::fs::canonicalize(path)
        .with_context(|| format!("{}：无法确定文件的实际位置", path.display()))?;
    let current =
        std::fs::read_to_string(&real).with_context(|| format!("{}：无法读取", real.display()))?;
    if current != original {
        bail!(
            "{}：导入期间文件被改动过，未写入；请重新运行导入",
            path.display()
        );
    }
    replace(&real, new)?;
    if let Err(e) = Config::load(path) {
        replace(&real, original).with_context(|| {
            format!(
                "{}：写入后的文件无法加载（{e}），且未能恢复原文件；请手工检查该文件",
                path.display()
            )
        })?;
        bail!(
            "{}：写入后的文件无法加载（{e}），已恢复原文件",
            path.display()
        );
    }
    Ok(())
}

/// Write `text` to a temp file beside `path` (same permissions) and rename it over `path`.
fn replace(path: &Path, text: &str) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    // tally's one temporary-file shape: a killed import's is removed at the next start of the
    // daemon, `rebuild` or `ingest`.
    let mut tmp = crate::durable::temp_file_in(dir)
        .with_context(|| format!("{}：无法创建临时文件", dir.display()))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.as_file().sync_all())
        .with_context(|| format!("{}：无法写入", tmp.path().display()))?;
    if let Ok(meta) = std::fs::metadata(path) {
        std::fs::set_permissions(tmp.path(), meta.permissions())
            .with_context(|| format!("{}：无法设置文件权限", tmp.path().display()))?;
    }
    tmp.persist(path)
        .map_err(|e| e.error)
        .with_context(|| format!("{}：无法替换原文件", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const REFERENCE: &str = include_str!("../tally.toml");

    fn config() -> Config {
        Config::parse(REFERENCE, Path::new("tally.toml"), Path::new("/base")).unwrap()
    }

    fn t(s: &str) -> Cell {
        Cell::Text(s.into())
    }
    fn n(v: f64) -> Cell {
        Cell::Number(v)
    }

    /// The plan's attachment as published, in traditional characters, with a title row.
    fn reference_sheet() -> Sheet {
        let mut rows = vec![
            vec![t("附件：2020年度安全生产培训考核指标分解表")],
            vec![
                t("序號"),
                t("單位"),
                t("企業主要負責人"),
                t("安全生產管理人員"),
                t("其他從業人員"),
                t("合計"),
            ],
        ];
        for (i, u) in ["西興街道", "長河街道", "浦沿街道", "江北科技園"]
            .iter()
            .enumerate()
        {
            rows.push(vec![
                n(i as f64 + 1.0),
                t(u),
                n(70.0),
                n(80.0),
                n(5000.0),
                n(5150.0),
            ]);
        }
        rows.push(vec![
            Cell::Empty,
            t("合計"),
            n(280.0),
            n(320.0),
            n(20000.0),
            n(26000.0),
        ]);
        Sheet {
            name: "附件".into(),
            rows,
            merged: Vec::new(),
        }
    }

    fn wb(sheet: Sheet) -> Workbook {
        Workbook {
            sheets: vec![sheet],
        }
    }

    #[test]
    fn the_reference_attachment_is_read_in_traditional_characters() {
        let table = parse(&wb(reference_sheet()), &config()).unwrap();
        assert_eq!(table.sheet, "附件");
        assert_eq!(table.header_row, 1);
        assert_eq!(table.categories, config().plan.category_names());
        assert_eq!(
            table
                .units
                .iter()
                .map(|u| u.unit.as_str())
                .collect::<Vec<_>>(),
            ["西兴街道", "长河街道", "浦沿街道", "江北科技园"]
        );
        assert_eq!(table.figure("长河街道", "其他从业人员"), Some(5000));
        assert_eq!(table.units[0].figures[0].cell, "C3");
        assert_eq!(table.units[0].total.as_ref().map(|s| s.value), Some(5150));
        assert_eq!(table.total_row, Some(6));
        assert_eq!(
            table
                .column_totals
                .iter()
                .map(|s| s.as_ref().unwrap().value)
                .collect::<Vec<_>>(),
            [280, 320, 20000]
        );
        assert_eq!(
            table.grand_total,
            Some(Stated {
                cell: "F7".into(),
                value: 26000
            })
        );
        assert_eq!(table.computed_grand_total(), 20600);
    }

    #[test]
    fn the_reference_attachment_grand_total_is_the_one_inconsistency() {
        let table = parse(&wb(reference_sheet()), &config()).unwrap();
        let found = inconsistencies(&table);
        assert_eq!(
            found,
            [Inconsistency {
                sheet: "附件".into(),
                cell: "F7".into(),
                total: Total::Grand,
                stated: 26000,
                computed: 20600,
            }]
        );
        assert_eq!(
            found[0].to_string(),
            "附件!F7：合计写的是 26000，但各列相加为 20600"
        );
    }

    #[test]
    fn row_and_column_totals_are_checked() {
        let mut sheet = reference_sheet();
        sheet.rows[3][5] = n(5100.0); // 長河街道 合計
        sheet.rows[6][3] = n(300.0); // 合計 row, 安全生產管理人員
        let found = inconsistencies(&parse(&wb(sheet), &config()).unwrap());
        let lines: Vec<String> = found.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "附件!F4：长河街道的合计写的是 5100，但该单位各项相加为 5150",
                "附件!D7：安全生产管理人员的合计写的是 300，但各单位相加为 320",
                "附件!F7：合计写的是 26000，但各列相加为 20600",
            ]
        );
    }

    #[test]
    fn an_unknown_unit_names_its_cell() {
        let mut sheet = reference_sheet();
        sheet.rows[4][1] = t("西湖街道");
        let errors = parse(&wb(sheet), &config()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, TableError::UnitUnknown { at, label, .. }
                if at == "附件!B5" && label == "西湖街道")),
            "{errors:?}"
        );
        // 浦沿街道 was the row replaced: reported missing as well.
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, TableError::UnitMissing { unit, .. } if unit == "浦沿街道"))
        );
        assert!(
            errors[0]
                .to_string()
                .starts_with("附件!B5：“西湖街道”不是培训计划中的单位"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn an_unknown_category_label_names_its_cell() {
        let mut sheet = reference_sheet();
        sheet.rows[1][4] = t("一般员工");
        let errors = parse(&wb(sheet), &config()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, TableError::CategoryUnknown { at, .. } if at == "附件!E2")),
            "{errors:?}"
        );
        assert!(errors.iter().any(|e| matches!(e, TableError::CategoryMissing { category, .. } if category == "其他从业人员")));
    }

    #[test]
    fn a_label_with_a_line_break_is_quoted_on_one_line() {
        let mut sheet = reference_sheet();
        sheet.rows[1][4] = t("一般\n员工");
        let errors = parse(&wb(sheet), &config()).unwrap_err();
        let text = errors
            .iter()
            .find(|e| matches!(e, TableError::CategoryUnknown { .. }))
            .map(ToString::to_string)
            .unwrap_or_default();
        assert!(
            text.starts_with(
                "附件!E2：“一般\\n员工”不是培训计划中的人员类别（人员类别：企业主要负责人、"
            ),
            "{text}"
        );
        assert!(!text.contains('\n'), "{text}");
    }

    #[test]
    fn a_header_with_no_known_category_still_names_the_unknown_labels() {
        let sheet = Sheet {
            name: "S".into(),
            rows: vec![vec![t("单位"), t("负责人")], vec![t("西兴街道"), n(1.0)]],
            merged: Vec::new(),
        };
        let errors = parse(&wb(sheet), &config()).unwrap_err();
        assert!(
            errors
                .iter()
                .any(|e| matches!(e, TableError::CategoryUnknown { at, .. } if at == "S!B1")),
            "{errors:?}"
        );
    }

    #[test]
    fn no_header_in_the_first_twenty_rows_is_an_error() {
        let mut sheet = reference_sheet();
        let mut rows = vec![vec![t("说明")]; 20];
        rows.append(&mut sheet.rows);
        sheet.rows = rows;
        let errors = parse(&wb(sheet), &config()).unwrap_err();
        assert!(
            matches!(errors[..], [TableError::HeaderMissing { .. }]),
            "{errors:?}"
        );
    }

    #[test]
    fn bad_and_blank_figures_name_their_cells() {
        let mut sheet = reference_sheet();
        sheet.rows[2][2] = t("七十");
        sheet.rows[3][3] = Cell::Empty;
        sheet.rows[4][4] = n(12.5);
        sheet.rows[5][5] = Cell::Error("#REF!".into());
        let errors = parse(&wb(sheet), &config()).unwrap_err();
        let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            text,
            [
                "附件!C3：“七十”不是人数（应为 0 或以上的整数）",
                "附件!D4：长河街道 / 安全生产管理人员 没有填写数字；该单位此类人员没有年度指标的，请填 0",
                "附件!E5：“12.5”不是人数（应为 0 或以上的整数）",
                "附件!F6：“#REF!”不是人数（应为 0 或以上的整数）",
            ]
        );
    }

    #[test]
    fn numbers_as_text_aliases_merged_total_label_and_notes_below_are_read() {
        let sheet = Sheet {
            name: "Sheet1".into(),
            rows: vec![
                vec![t("2021年度分解表")],
                vec![],
                vec![
                    t("序号"),
                    t("单 位"),
                    t("主要负责人"),
                    t("安全管理人员"),
                    t("从业人员"),
                    t("备注"),
                ],
                vec![],
                vec![n(1.0), t("西兴街道"), t("６０"), n(90.0), t("4,000")],
                vec![n(2.0), t("长河街道"), n(65.0), n(85.0), n(4500.0), t("新")],
                vec![n(3.0), t("浦沿街道"), n(75.0), n(70.0), n(5200.0)],
                vec![n(4.0), t("江北园区"), n(50.0), n(60.0), n(3000.0)],
                vec![t("合计"), Cell::Empty, n(250.0), n(305.0), n(16700.0)],
                vec![Cell::Empty, t("注：以上为年度指标。")],
            ],
            merged: Vec::new(),
        };
        let table = parse(&wb(sheet), &config()).unwrap();
        assert_eq!(table.header_row, 2);
        assert_eq!(table.figure("西兴街道", "企业主要负责人"), Some(60));
        assert_eq!(table.figure("西兴街道", "其他从业人员"), Some(4000));
        assert_eq!(table.figure("江北科技园", "安全生产管理人员"), Some(60));
        assert_eq!(table.total_row, Some(8));
        assert_eq!(table.grand_total, None);
        assert!(inconsistencies(&table).is_empty());
    }

    #[test]
    fn a_unit_twice_is_an_error() {
        let mut sheet = reference_sheet();
        sheet.rows[5][1] = t("西兴街道");
        let errors = parse(&wb(sheet), &config()).unwrap_err();
        assert!(
            errors.iter().any(|e| matches!(e, TableError::UnitDuplicate { at, first, .. } if at == "附件!B6" && first == "B3")),
            "{errors:?}"
        );
    }

    #[test]
    fn apply_changes_values_in_place_and_keeps_everything_else() {
        let mut sheet = reference_sheet();
        sheet.rows[2][4] = n(4000.0);
        let table = parse(&wb(sheet), &config()).unwrap();
        let (out, changes) = apply(REFERENCE, &table).unwrap();
        assert_eq!(
            changes,
            [Change {
                unit: "西兴街道".into(),
                category: "其他从业人员".into(),
                old: Some(5000),
                new: 4000,
            }]
        );
        let expected = REFERENCE.replacen("\"其他从业人员\" = 5000", "\"其他从业人员\" = 4000", 1);
        assert_eq!(out, expected);
        let c = Config::parse(&out, Path::new("tally.toml"), Path::new("/base")).unwrap();
        assert_eq!(c.plan.target("西兴街道", "其他从业人员"), Some(4000));
        assert_eq!(c.plan.target("长河街道", "其他从业人员"), Some(5000));
    }

    #[test]
    fn apply_with_the_same_figures_changes_nothing() {
        let table = parse(&wb(reference_sheet()), &config()).unwrap();
        let (out, changes) = apply(REFERENCE, &table).unwrap();
        assert!(changes.is_empty());
        assert_eq!(out, REFERENCE);
    }

    #[test]
    fn apply_keeps_a_trailing_comment_and_creates_missing_tables_and_keys() {
        let src = "# plan\n[targets.\"西兴街道\"]\n\"企业主要负责人\" = 1 # set in May\n\n[paths]\nstate = \"s.db\"\n";
        let table = QuotaTable {
            sheet: "S".into(),
            header_row: 0,
            categories: vec!["企业主要负责人".into(), "其他从业人员".into()],
            units: vec![
                UnitRow {
                    unit: "西兴街道".into(),
                    label_cell: "A2".into(),
                    figures: vec![
                        Stated {
                            cell: "B2".into(),
                            value: 7,
                        },
                        Stated {
                            cell: "C2".into(),
                            value: 9,
                        },
                    ],
                    total: None,
                },
                UnitRow {
                    unit: "长河街道".into(),
                    label_cell: "A3".into(),
                    figures: vec![
                        Stated {
                            cell: "B3".into(),
                            value: 3,
                        },
                        Stated {
                            cell: "C3".into(),
                            value: 4,
                        },
                    ],
                    total: None,
                },
            ],
            total_row: None,
            column_totals: vec![None, None],
            grand_total: None,
        };
        let (out, changes) = apply(src, &table).unwrap();
        assert_eq!(changes.len(), 4);
        assert!(out.starts_with("# plan\n[targets.\"西兴街道\"]\n\"企业主要负责人\" = 7 # set in May\n\"其他从业人员\" = 9\n"), "{out}");
        let doc: DocumentMut = out.parse().unwrap();
        assert_eq!(
            doc["targets"]["长河街道"]["其他从业人员"].as_integer(),
            Some(4)
        );
        assert_eq!(doc["paths"]["state"].as_str(), Some("s.db"));
        // The new unit table comes with the other targets, before [paths].
        assert!(
            out.find("长河街道").unwrap() < out.find("[paths]").unwrap(),
            "{out}"
        );
    }

    #[test]
    fn apply_writes_into_inline_tables() {
        let src = "targets = { \"西兴街道\" = { \"企业主要负责人\" = 1 } }\n";
        let mut table = parse(&wb(reference_sheet()), &config()).unwrap();
        table.units.truncate(1);
        let (out, _) = apply(src, &table).unwrap();
        let doc: DocumentMut = out.parse().unwrap();
        assert_eq!(
            doc["targets"]["西兴街道"]["其他从业人员"].as_integer(),
            Some(5000)
        );
        assert!(out.starts_with("targets = {"), "{out}");
    }

    #[test]
    fn apply_refuses_a_target_that_is_not_a_table() {
        let src = "targets = 3\n";
        let table = parse(&wb(reference_sheet()), &config()).unwrap();
        let err = apply(src, &table).unwrap_err();
        assert!(matches!(err, ApplyError::Shape { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "targets 不是表（TOML table），tally 无法在此写入年度指标；请在 tally.toml 中改正这一项"
        );
    }

    fn fixture(name: &str) -> Workbook {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/targets")
            .join(name);
        let bytes = std::fs::read(&path).unwrap();
        crate::read::read_in_process(&bytes, &crate::read::Limits::default()).unwrap()
    }

    #[test]
    fn the_fixture_of_the_reference_attachment_reads_as_the_plan() {
        let table = parse(&fixture("reference-attachment.xlsx"), &config()).unwrap();
        assert_eq!(table, parse(&wb(reference_sheet()), &config()).unwrap());
    }

    #[test]
    fn the_consistent_fixture_reads_with_formulas_aliases_and_a_merged_total_label() {
        let table = parse(&fixture("consistent.xlsx"), &config()).unwrap();
        assert_eq!(table.sheet, "Sheet1");
        assert_eq!(table.header_row, 2);
        assert_eq!(table.figure("江北科技园", "企业主要负责人"), Some(50));
        assert_eq!(table.figure("浦沿街道", "其他从业人员"), Some(5200));
        assert_eq!(table.total_row, Some(7));
        assert_eq!(table.grand_total.as_ref().map(|s| s.value), Some(17255));
        assert!(inconsistencies(&table).is_empty());
    }

    #[test]
    fn the_unknown_unit_fixture_names_its_cell() {
        let errors = parse(&fixture("unknown-unit.xlsx"), &config()).unwrap_err();
        assert!(
            errors[0]
                .to_string()
                .starts_with("附件!B5：“西湖街道”不是培训计划中的单位"),
            "{errors:?}"
        );
    }
}
