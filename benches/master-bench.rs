//! master-bench: wall time and peak memory of `tally rebuild` on a ledger of N counted roster
//! rows (default: 20,600 — the reference plan's whole year — and 1,100,000, past one sheet's
//! 1,048,576 rows). Not a test: it builds the ledger through `Ledger::record` (no return files)
//! and runs the real binary under `/usr/bin/time -v`.
//!
//!     cargo bench --bench master-bench                # both sizes
//!     cargo bench --bench master-bench -- 2000000     # any sizes

use std::path::Path;
use std::process::Command;
use std::time::Instant;
use tally::config::Config;
use tally::core::calendar::YearMonth;
use tally::core::returns::Row;
use tally::ledger::{Ledger, NewSubmission, Submission, SubmissionStatus};

const PLAN: &str = include_str!("../tally.toml");
const UNITS: [&str; 4] = ["西兴街道", "长河街道", "浦沿街道", "江北科技园"];
const CATEGORIES: [&str; 3] = ["企业主要负责人", "安全生产管理人员", "其他从业人员"];

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![20_600, 1_100_000]
    } else {
        sizes
    };
    for rows in sizes {
        bench(rows);
    }
}

/// A well-formed 18-character 身份证号 for person `n` (distinct for every n below 10^11).
fn id(n: u64) -> String {
    let first17 = format!("330108{:011}", n);
    let check = tally::core::ids::resident_id_check_char(&first17).expect("17 digits");
    format!("{first17}{check}")
}

fn bench(rows: u64) {
    let dir = tempfile::tempdir().expect("temp dir");
    let config_path = dir.path().join("tally.toml");
    std::fs::write(&config_path, PLAN).expect("write tally.toml");
    let config = Config::load(&config_path).expect("reference plan");

    // 4 units × 12 months of accepted returns; one person in ten is reported twice (once in
    // each of two months) so distinct counting and the double-reporting list have work to do.
    let started = Instant::now();
    let mut ledger = Ledger::open(&config.state_path()).expect("ledger");
    let returns = (UNITS.len() * 12) as u64;
    let mut person = 0u64;
    let mut written = 0u64;
    for (r, (unit, month)) in UNITS
        .iter()
        .flat_map(|u| (1..=12).map(move |m| (*u, m)))
        .enumerate()
    {
        let n = rows / returns + u64::from((r as u64) < rows % returns);
        let ym = YearMonth::new(2020, month).expect("month");
        let counted_rows: Vec<Row> = (0..n)
            .map(|i| {
                let repeat = i % 10 == 9 && person > 100;
                let who = if repeat { person - 100 } else { person };
                if !repeat {
                    person += 1;
                }
                let category = match i % 20 {
                    0 => CATEGORIES[0],
                    1 => CATEGORIES[1],
                    _ => CATEGORIES[2],
                };
                Row {
                    line: i as u32 + 2,
                    name: format!("员工{who}"),
                    id: id(who),
                    enterprise: format!("杭州滨江示例科技有限公司{}", who % 500),
                    credit_code: "91330108MA0000007X".into(),
                    category: category.into(),
                    date: ym.first_day() + chrono::Days::new(i % 28),
                    hours: 8.0,
                    passed: i % 50 != 7,
                    certificate: format!("ZS{who:08}"),
                }
            })
            .collect();
        written += n;
        let submission = Submission {
            id: 0,
            sha256: format!("{r:064x}"),
            unit: unit.into(),
            month: Some(ym),
            file_name: format!("{ym}.xlsx"),
            source_path: format!("watch-dirs/{unit}/{ym}.xlsx"),
            archive_path: format!("{unit}/{ym}/{ym}.xlsx"),
            received_at: format!("{}T09:00:00+08:00", ym.next().first_day()),
            status: SubmissionStatus::Accepted,
            duplicate_of: None,
            superseded_by: None,
            rows: n as i64,
            errors: 0,
            warnings: 0,
            reporter: "王芳".into(),
            phone: "0571-87654321".into(),
            destination: format!("watch-dirs/{unit}/已接收/{ym}.xlsx"),
            feedback_path: None,
            moved: false,
        };
        let new = NewSubmission::new(submission, counted_rows, Vec::new());
        ledger.record(&config.plan, &new, &[]).expect("record");
    }
    drop(ledger);
    let db_mb = std::fs::metadata(config.state_path()).map_or(0, |m| m.len()) / 1_000_000;
    println!(
        "ledger: {written} roster rows in {returns} returns ({db_mb} MB), built in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_tally"))
        .arg("--config")
        .arg(&config_path)
        .args(["--now", "2021-01-10", "-q", "rebuild"])
        .output()
        .expect("run /usr/bin/time -v tally rebuild (install GNU time)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tally rebuild failed:\n{stderr}");
    let field = |name: &str| {
        stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix(name).map(|v| v.trim().to_string()))
            .unwrap_or_else(|| "?".into())
    };
    let rss_kb: f64 = field("Maximum resident set size (kbytes):")
        .parse()
        .unwrap_or(0.0);
    let master = config.master_path();
    let size_mb = std::fs::metadata(&master).map_or(0.0, |m| m.len() as f64 / 1e6);
    println!(
        "rebuild: {written} rows: wall {}, user {} s, peak RSS {:.0} MB, master {size_mb:.1} MB",
        field("Elapsed (wall clock) time (h:mm:ss or m:ss):"),
        field("User time (seconds):"),
        rss_kb / 1024.0,
    );
    print_sheets(&master);
}

/// The sheet names of the written master (workbook.xml only; the sheets are not parsed).
fn print_sheets(master: &Path) {
    use calamine::Reader;
    let file = std::fs::File::open(master).expect("open master");
    let book: calamine::Xlsx<_> =
        calamine::Xlsx::new(std::io::BufReader::new(file)).expect("read master");
    println!("sheets: {}", book.sheet_names().join(", "));
}
