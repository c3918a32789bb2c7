//! Deterministic returns and plans for `scripts/bench.sh` (issue 11): the same arguments give
//! the same bytes. Not a test; writes only where it is told.
//!
//! ```text
//! bench_returns plan DIR UNITS               DIR/tally.toml with UNITS units, and their folders
//! bench_returns returns DIR UNITS MONTHS ROWS [FIRST_UNIT]   DIR/<unit>/<unit>-2020-MM.xlsx
//! bench_returns one FILE UNIT MONTH ROWS SEED   one return (MONTH as 2020-05)
//! ```
//!
//! Units are named 单位0001, 单位0002, …; persons are distinct per unit, month and row, except
//! one row in two hundred that reports a person of the unit before (a double report), one in
//! fifty fails its assessment, and categories are 1 : 1 : 18.

use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use std::path::{Path, PathBuf};

const CATEGORIES: [&str; 3] = ["企业主要负责人", "安全生产管理人员", "其他从业人员"];

fn unit_name(i: usize) -> String {
    format!("单位{:04}", i + 1)
}

/// A valid 18-character 身份证号 for every seed below 1.3 × 10⁹ (Zhejiang regions, born
/// 1960–1999), distinct per seed.
fn id(seed: u64) -> String {
    let seq = seed % 1000;
    let mut s = seed / 1000;
    let day = 1 + s % 28;
    s /= 28;
    let month = 1 + s % 12;
    s /= 12;
    let year = 1960 + s % 40;
    s /= 40;
    let region = 330100 + s % 100;
    let first17 = format!("{region:06}{year:04}{month:02}{day:02}{seq:03}");
    let check = tally::core::ids::resident_id_check_char(&first17).expect("17 digits");
    format!("{first17}{check}")
}

fn credit_code(seed: u64) -> String {
    let first17 = format!("91330108MA{:07}", seed % 10_000_000);
    let check = tally::core::ids::credit_code_check_char(&first17).expect("17 characters");
    format!("{first17}{check}")
}

/// One return: cover and roster in the template's layout, `rows` persons from `seed`.
fn write_return(path: &Path, unit: &str, month: u32, rows: u64, seed: u64) {
    let mut wb = Workbook::new();
    let date_fmt = Format::new().set_num_format("yyyy-mm-dd");
    let cover = wb.add_worksheet();
    cover.set_name("填报信息").expect("name");
    cover.write_string(0, 0, "培训情况月报").expect("cell");
    let month_text = format!("2020-{month:02}");
    for (i, (label, value)) in [
        ("填报单位", unit),
        ("报送月份", month_text.as_str()),
        ("填报人", "王芳"),
        ("联系电话", "0571-87654321"),
    ]
    .iter()
    .enumerate()
    {
        cover.write_string(i as u32 + 1, 0, *label).expect("cell");
        cover.write_string(i as u32 + 1, 1, *value).expect("cell");
    }
    let roster = wb
        .add_worksheet_with_constant_memory()
        .expect("sheet")
        .set_name("培训台账")
        .expect("name");
    for (c, h) in tally::core::form::Column::ALL
        .map(|c| c.header())
        .iter()
        .enumerate()
    {
        roster.write_string(0, c as u16, *h).expect("cell");
    }
    for i in 0..rows {
        let r = i as u32 + 1;
        // One row in two hundred: a person this unit reported the month before.
        let who = if i % 200 == 199 && seed >= 100_000 {
            seed - 100_000 + i
        } else {
            seed + i
        };
        let category = match i % 20 {
            0 => CATEGORIES[0],
            1 => CATEGORIES[1],
            _ => CATEGORIES[2],
        };
        let date = ExcelDateTime::from_ymd(2020, month as u8, 1 + (i % 28) as u8).expect("date");
        roster.write_number(r, 0, (i + 1) as f64).expect("cell");
        roster
            .write_string(r, 1, format!("员工{who}"))
            .expect("cell");
        roster.write_string(r, 2, id(who)).expect("cell");
        roster
            .write_string(r, 3, format!("杭州示例科技有限公司{}", who % 997))
            .expect("cell");
        roster
            .write_string(r, 4, credit_code(who % 997))
            .expect("cell");
        roster.write_string(r, 5, category).expect("cell");
        roster
            .write_datetime_with_format(r, 6, &date, &date_fmt)
            .expect("cell");
        roster.write_number(r, 7, 8.0).expect("cell");
        roster
            .write_string(r, 8, if i % 50 == 49 { "不合格" } else { "合格" })
            .expect("cell");
        roster
            .write_string(r, 9, format!("ZS{who:09}"))
            .expect("cell");
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).expect("folder");
    }
    wb.save(path).expect("save");
}

/// The seed of a unit's month: distinct persons per (unit, month, row) up to 100,000 rows.
fn seed_of(unit: usize, month: u32) -> u64 {
    (unit as u64 * 13 + u64::from(month)) * 100_000
}

/// The reference plan with `units` generated units (targets per unit 70 / 80 / 5000) and
/// files taken at once (no settle age): what the benchmark runs against.
fn write_plan(dir: &Path, units: usize) {
    let reference = include_str!("../tally.toml");
    let start = reference.find("[[units]]").expect("units");
    let end = reference.find("[paths]").expect("paths");
    let mut plan = reference[..start].to_string();
    for i in 0..units {
        let name = unit_name(i);
        plan.push_str(&format!(
            "[[units]]\nname = \"{name}\"\nfolder = \"{name}\"\ncontacts = [\"u{i}@example.org\"]\n\n"
        ));
        std::fs::create_dir_all(dir.join("watch-dirs").join(&name)).expect("unit folder");
    }
    for i in 0..units {
        plan.push_str(&format!(
            "[targets.\"{}\"]\n\"企业主要负责人\" = 70\n\"安全生产管理人员\" = 80\n\"其他从业人员\" = 5000\n\n",
            unit_name(i)
        ));
    }
    plan.push_str(&reference[end..]);
    let plan = plan.replacen("\nmin_age_secs = 1\n", "\nmin_age_secs = 0\n", 1);
    // `roster = "auto"` is the default: left out, an older tally (a baseline) reads the plan too.
    let plan: String = plan
        .lines()
        .filter(|l| !l.starts_with("roster ="))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::create_dir_all(dir).expect("plan folder");
    std::fs::write(dir.join("tally.toml"), plan).expect("tally.toml");
}

fn arg<T: std::str::FromStr>(args: &[String], i: usize, what: &str) -> T {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("argument {i}: {what}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("plan") => write_plan(Path::new(&args[1]), arg(&args, 2, "units")),
        Some("returns") => {
            let dir = PathBuf::from(&args[1]);
            let units: usize = arg(&args, 2, "units");
            let months: u32 = arg(&args, 3, "months");
            let rows: u64 = arg(&args, 4, "rows");
            let first: usize = args.get(5).and_then(|a| a.parse().ok()).unwrap_or(0);
            for u in first..first + units {
                let name = unit_name(u);
                for m in 1..=months {
                    let path = dir.join(&name).join(format!("{name}-2020-{m:02}.xlsx"));
                    write_return(&path, &name, m, rows, seed_of(u, m));
                }
            }
        }
        Some("one") => {
            let month: String = arg(&args, 3, "month");
            let m: u32 = month
                .strip_prefix("2020-")
                .and_then(|m| m.parse().ok())
                .expect("month as 2020-MM");
            write_return(
                Path::new(&args[1]),
                &args[2],
                m,
                arg(&args, 4, "rows"),
                arg(&args, 5, "seed"),
            );
        }
        _ => {
            eprintln!(
                "usage: bench_returns plan DIR UNITS | returns DIR UNITS MONTHS ROWS [FIRST_UNIT] | one FILE UNIT MONTH ROWS SEED"
            );
            std::process::exit(2);
        }
    }
}
