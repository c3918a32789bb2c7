//! `tally targets import FILE`: its arguments, and the run that reads the quota table
//! ([`crate::targets`]), reports it and rewrites `[targets]` in tally.toml.

use crate::config::Config;
use crate::settings::{ExitStatus, UsageError};
use crate::targets::{
    Inconsistency, QuotaTable, Stated, apply, inconsistencies, parse, write_config,
};
use anyhow::Context as _;
use clap::Subcommand;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum TargetsCommand {
    /// Import a quota breakdown table (序号 | 单位 | categories… | 合计) into [targets].
    Import(ImportArgs),
}

/// `tally targets import FILE [--use-computed|--accept-stated]`.
#[derive(Debug, Clone, clap::Args)]
pub struct ImportArgs {
    /// The quota breakdown table (.xlsx, .xls, .ods), laid out like the plan's attachment:
    /// 序号 | 单位 | one column per category | 合计, and a 合计 row.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Import even though stated totals disagree with the figures; the totals computed from
    /// the figures are used.
    #[arg(long, conflicts_with = "accept_stated")]
    pub use_computed: bool,
    /// Import even though stated totals disagree with the figures; they are accepted as
    /// stated, for the record (tally computes every total from the figures).
    #[arg(long)]
    pub accept_stated: bool,
}

/// What the import decided, for the report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Inconsistent and no flag: nothing written.
    Refused,
    /// Consistent, or a flag said which figure wins.
    Imported,
}

/// Run `tally targets import`: exit 0 when imported (or nothing to change), 1 when the table
/// is refused, 2 (an `Err`) for a missing file or a configuration that cannot be used.
pub fn import(config_path: &Path, args: &ImportArgs) -> anyhow::Result<ExitStatus> {
    let config = Config::load(config_path).map_err(|e| UsageError(e.to_string()))?;
    let src = std::fs::read_to_string(config_path)
        .with_context(|| format!("{}：无法读取", config_path.display()))?;
    let file = &args.file;
    let meta = std::fs::metadata(file).map_err(|e| UsageError(cannot_open(file, &e)))?;
    if !meta.is_file() {
        return Err(UsageError(format!(
            "{}：不是文件；请指定年度指标分解表的文件（.xlsx、.xls、.ods）",
            file.display()
        ))
        .into());
    }
    let mut out = String::new();
    if meta.len() > config.limits.max_file_bytes {
        out.push_str(&format!(
            "{}：已拒绝，文件大小 {} 字节，超过 limits.max_file_bytes 的上限（{} 字节）；{} 未改动。\n\
             请删除无关的工作表或图片后重新保存，或在 tally.toml 的 [limits] 中调大 max_file_bytes。\n",
            file.display(),
            meta.len(),
            config.limits.max_file_bytes,
            config_path.display()
        ));
        print!("{out}");
        return Ok(ExitStatus::Failure);
    }
    // Read, check, write: a bar on a terminal while a large table is read and checked.
    let bar = crate::bars::bar(3, "导入年度指标");
    let bytes = std::fs::read(file).with_context(|| format!("{}：无法读取", file.display()))?;
    // Read in this process, not in the sandboxed child used for returns: the quota table is
    // the bureau's own file, imported by hand by its staff, not untrusted bytes from a unit's
    // drop folder. The size and zip-container checks of `read_in_process` still apply.
    let wb = match crate::read::read_in_process(&bytes, &config.limits) {
        Ok(wb) => wb,
        Err(finding) => {
            out.push_str(&format!(
                "{}：已拒绝，无法作为工作簿读取：{}\n{} 未改动。\n",
                file.display(),
                finding.message,
                config_path.display()
            ));
            bar.finish_and_clear();
            print!("{out}");
            return Ok(ExitStatus::Failure);
        }
    };
    bar.inc(1);
    let table = match parse(&wb, &config) {
        Ok(table) => table,
        Err(errors) => {
            out.push_str(&format!(
                "{}：已拒绝，表中有 {} 处问题：\n",
                file.display(),
                errors.len()
            ));
            for e in &errors {
                out.push_str(&format!("  {e}\n"));
            }
            out.push_str(&format!(
                "{} 未改动。请按以上提示改正后重新导入。\n",
                config_path.display()
            ));
            bar.finish_and_clear();
            print!("{out}");
            return Ok(ExitStatus::Failure);
        }
    };
    bar.inc(1);
    let found = inconsistencies(&table);
    out.push_str(&render_table(file, &table));
    let verdict = if found.is_empty() || args.use_computed || args.accept_stated {
        Verdict::Imported
    } else {
        Verdict::Refused
    };
    out.push_str(&render_inconsistencies(&found, args));
    if verdict == Verdict::Refused {
        out.push_str(&format!(
            "已拒绝：所写合计与各单位数字不符；{} 未改动。\n\
             导入的年度指标始终是上表中各单位的数字。请核对后选择一个参数重新运行：\n\
             --use-computed：导入这些数字，合计按数字相加得出；\n\
             --accept-stated：导入这些数字，所写合计按原样接受（仅作记录）。\n",
            config_path.display()
        ));
        bar.finish_and_clear();
        print!("{out}");
        return Ok(ExitStatus::Failure);
    }

    let (new_src, changes) =
        apply(&src, &table).map_err(|e| UsageError(format!("{}：{e}", config_path.display())))?;
    if changes.is_empty() {
        out.push_str(&format!(
            "{} 中已是这些年度指标，未写入。\n",
            config_path.display()
        ));
        bar.finish_and_clear();
        print!("{out}");
        return Ok(ExitStatus::Success);
    }
    // Prove the new text before it touches the disk; write_config proves the file again.
    let base = config.base_dir.clone();
    Config::parse(&new_src, config_path, &base).map_err(|e| {
        UsageError(format!(
            "{}：更新后的年度指标无法通过校验（{e}），未写入",
            config_path.display()
        ))
    })?;
    write_config(config_path, &src, &new_src)?;
    out.push_str(&format!(
        "已更新 {}：{} 个年度指标有变化\n",
        config_path.display(),
        changes.len()
    ));
    for c in &changes {
        let old = c
            .old
            .map_or_else(|| "（无）".to_string(), |v| v.to_string());
        out.push_str(&format!(
            "  {} / {}：{old} → {}\n",
            c.unit, c.category, c.new
        ));
    }
    bar.finish_and_clear();
    print!("{out}");
    Ok(ExitStatus::Success)
}

/// Column header and row label of the totals as the table states them.
const STATED_TOTAL: &str = "合计（表中所写）";
/// Column header and row label of the totals computed from the figures.
const COMPUTED_TOTAL: &str = "合计（按数字相加）";

/// `FILE：无法打开…`, in words for the common causes (the OS text is English).
fn cannot_open(file: &Path, e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("{}：文件不存在；请检查文件名和路径", file.display())
        }
        std::io::ErrorKind::PermissionDenied => {
            format!(
                "{}：没有读取权限，无法打开；请检查该文件的权限",
                file.display()
            )
        }
        _ => format!("{}：无法打开（{e}）", file.display()),
    }
}

/// The table as read: one line per unit with its figures, stated and computed totals.
fn render_table(file: &Path, table: &QuotaTable) -> String {
    let mut header: Vec<&str> = vec!["单位"];
    header.extend(table.categories.iter().map(String::as_str));
    header.extend([STATED_TOTAL, COMPUTED_TOTAL]);
    let stated = |s: &Option<Stated>| {
        s.as_ref()
            .map_or_else(|| "-".to_string(), |s| s.value.to_string())
    };
    let mut rows: Vec<Vec<String>> = table
        .units
        .iter()
        .map(|u| {
            let mut r = vec![u.unit.clone()];
            r.extend(u.figures.iter().map(|f| f.value.to_string()));
            r.push(stated(&u.total));
            r.push(u.computed_total().to_string());
            r
        })
        .collect();
    if table.total_row.is_some() {
        let mut r = vec![STATED_TOTAL.to_string()];
        r.extend(table.column_totals.iter().map(stated));
        r.push(stated(&table.grand_total));
        r.push(String::new());
        rows.push(r);
    }
    let mut r = vec![COMPUTED_TOTAL.to_string()];
    r.extend((0..table.categories.len()).map(|i| table.computed_column_total(i).to_string()));
    r.push(String::new());
    r.push(table.computed_grand_total().to_string());
    rows.push(r);
    format!(
        "{}：工作表 {}，表头在第 {} 行，共 {} 个单位\n{}",
        file.display(),
        table.sheet,
        table.header_row + 1,
        table.units.len(),
        crate::cmd::table::render(&header, &rows)
    )
}

fn render_inconsistencies(found: &[Inconsistency], args: &ImportArgs) -> String {
    if found.is_empty() {
        return "所写合计与各项数字全部相符。\n".to_string();
    }
    let mut out = format!("有 {} 处所写合计与数字不符：\n", found.len());
    for i in found {
        out.push_str(&format!("  {i}\n"));
    }
    if args.use_computed {
        out.push_str(
            "--use-computed：不采用上面所写的合计；导入各单位的数字，所有合计都按这些数字相加得出。\n",
        );
    } else if args.accept_stated {
        out.push_str(
            "--accept-stated：上面所写的合计按原样接受，仅作记录；导入各单位的数字，\
             tally 仍按这些数字自行计算合计。\n",
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Cmd {
        #[command(flatten)]
        args: ImportArgs,
    }

    #[test]
    fn import_flags_parse_and_conflict() {
        let c = Cmd::try_parse_from(["import", "a.xlsx", "--use-computed"]).unwrap();
        assert_eq!(c.args.file, PathBuf::from("a.xlsx"));
        assert!(c.args.use_computed && !c.args.accept_stated);
        let c = Cmd::try_parse_from(["import", "--accept-stated", "a.xlsx"]).unwrap();
        assert!(c.args.accept_stated);
        assert!(
            Cmd::try_parse_from(["import", "a.xlsx", "--use-computed", "--accept-stated"]).is_err()
        );
        assert!(Cmd::try_parse_from(["import"]).is_err());
    }
}
