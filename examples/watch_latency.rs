//! Benchmark of the daemon (run by scripts/watch-latency.sh): from the moment a return lands
//! in a unit's folder (an atomic rename, as a copy program finishes) to the moment the new
//! master is in place (the master's file replaced). Target: at most settle + 1 s.
//!
//! Usage: watch_latency [--runs N] [--rows N] [--settle SECS] [--mode auto|native|poll]
//!        [--poll-interval SECS] [--tally PATH]
//! It starts its own `tally watch` on a temp copy of the reference plan and prints one line
//! per run, then min / median / max and the daemon's own breakdown (ingest ms, master ms).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const PLAN: &str = include_str!("../tally.toml");
const UNITS: [&str; 4] = ["西兴街道", "长河街道", "浦沿街道", "江北科技园"];
const CATEGORIES: [&str; 3] = ["企业主要负责人", "安全生产管理人员", "其他从业人员"];

struct Args {
    runs: usize,
    rows: u32,
    settle: Option<String>,
    mode: Option<String>,
    poll_interval: Option<String>,
    tally: PathBuf,
}

fn parse_args() -> Args {
    let mut a = Args {
        runs: 10,
        rows: 500,
        settle: None,
        mode: None,
        poll_interval: None,
        tally: std::env::current_exe()
            .ok()
            .and_then(|p| Some(p.parent()?.parent()?.join("tally")))
            .unwrap_or_else(|| PathBuf::from("tally")),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| usage(&format!("{flag} needs a value")))
        };
        match flag.as_str() {
            "--runs" => a.runs = value().parse().unwrap_or_else(|_| usage("--runs N")),
            "--rows" => a.rows = value().parse().unwrap_or_else(|_| usage("--rows N")),
            "--settle" => a.settle = Some(value()),
            "--mode" => a.mode = Some(value()),
            "--poll-interval" => a.poll_interval = Some(value()),
            "--tally" => {
                let p = PathBuf::from(value());
                a.tally = std::path::absolute(&p).unwrap_or(p);
            }
            _ => usage(&format!("unknown argument {flag}")),
        }
    }
    a
}

fn usage(msg: &str) -> ! {
    eprintln!(
        "watch_latency: {msg}\nusage: watch_latency [--runs N] [--rows N] [--settle SECS] [--mode auto|native|poll] [--poll-interval SECS] [--tally PATH]"
    );
    std::process::exit(2)
}

/// A valid 身份证号 from a seed (Binjiang region code, born 1980–1999).
fn id(seed: u32) -> String {
    let first17 = format!(
        "330108{:04}{:02}{:02}{:03}",
        1980 + seed % 20,
        1 + (seed / 20) % 12,
        1 + (seed / 240) % 28,
        seed % 1000
    );
    let check = tally::core::ids::resident_id_check_char(&first17).expect("17 digits");
    format!("{first17}{check}")
}

fn credit_code() -> String {
    let first17 = "91330108MA0000007";
    let check = tally::core::ids::credit_code_check_char(first17).expect("17 characters");
    format!("{first17}{check}")
}

/// A return of `rows` rows in the template's layout.
fn return_xlsx(unit: &str, month: &str, rows: u32, seed: u32) -> Vec<u8> {
    use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
    let mut wb = Workbook::new();
    let cover = wb.add_worksheet();
    cover.set_name("填报信息").unwrap();
    for (i, (label, value)) in [
        ("填报单位", unit),
        ("报送月份", month),
        ("填报人", "王芳"),
        ("联系电话", "0571-87654321"),
    ]
    .iter()
    .enumerate()
    {
        cover.write_string(i as u32, 0, *label).unwrap();
        cover.write_string(i as u32, 1, *value).unwrap();
    }
    let roster = wb.add_worksheet();
    roster.set_name("培训台账").unwrap();
    let headers = tally::core::form::Column::ALL.map(|c| c.header());
    for (c, h) in headers.iter().enumerate() {
        roster.write_string(0, c as u16, *h).unwrap();
    }
    let date = ExcelDateTime::parse_from_str(&format!("{month}-12")).unwrap();
    let date_fmt = Format::new().set_num_format("yyyy-mm-dd");
    let code = credit_code();
    for i in 0..rows {
        let r = i + 1;
        roster.write_number(r, 0, r as f64).unwrap();
        roster
            .write_string(r, 1, format!("员工{}", seed + i))
            .unwrap();
        roster.write_string(r, 2, id(seed + i)).unwrap();
        roster
            .write_string(r, 3, "杭州滨江示例科技有限公司")
            .unwrap();
        roster.write_string(r, 4, &code).unwrap();
        roster
            .write_string(r, 5, CATEGORIES[(i % 3) as usize])
            .unwrap();
        roster
            .write_datetime_with_format(r, 6, &date, &date_fmt)
            .unwrap();
        roster.write_number(r, 7, 8.0).unwrap();
        roster.write_string(r, 8, "合格").unwrap();
        roster.write_string(r, 9, format!("ZS{r:06}")).unwrap();
    }
    wb.save_to_buffer().unwrap()
}

/// The master's identity: it is replaced by a rename, so its inode changes.
#[cfg(unix)]
fn identity(p: &Path) -> Option<(u64, std::time::SystemTime)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(p).ok()?;
    Some((m.ino(), m.modified().ok()?))
}

#[cfg(not(unix))]
fn identity(p: &Path) -> Option<(u64, std::time::SystemTime)> {
    let m = std::fs::metadata(p).ok()?;
    Some((m.len(), m.modified().ok()?))
}

fn log_lines(log: &Path, message: &str) -> Vec<serde_json::Value> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["message"] == message)
        .collect()
}

fn wait(what: &str, limit: Duration, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        if start.elapsed() > limit {
            eprintln!("watch_latency: gave up waiting for {what}");
            std::process::exit(1);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() {
    let args = parse_args();
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path();
    std::fs::write(root.join("tally.toml"), PLAN).unwrap();
    for u in UNITS {
        std::fs::create_dir_all(root.join("watch-dirs").join(u)).unwrap();
    }
    let staging = root.join("staging");
    std::fs::create_dir_all(&staging).unwrap();
    let log = root.join("daemon.log");
    let mut cmd = Command::new(&args.tally);
    cmd.current_dir(root)
        .args(["--config", "tally.toml", "--now", "2020-12-20", "watch"])
        .args(["--log-format", "json"])
        .env("RUST_LOG", "tally=info")
        .env_remove("TALLY_SMTP_URL")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap());
    for (flag, value) in [
        ("--settle", &args.settle),
        ("--mode", &args.mode),
        ("--poll-interval", &args.poll_interval),
    ] {
        if let Some(v) = value {
            cmd.args([flag, v]);
        }
    }
    let mut daemon = cmd.spawn().unwrap_or_else(|e| {
        eprintln!("watch_latency: cannot start {}: {e}", args.tally.display());
        std::process::exit(2)
    });
    wait("the daemon to start", Duration::from_secs(30), || {
        !log_lines(&log, "watching").is_empty()
    });
    let watching = &log_lines(&log, "watching")[0];
    let settle_ms = watching["settle_ms"].as_u64().unwrap_or(0);
    println!(
        "tally watch: mode {}, settle {} ms; {} runs of a {}-row return",
        watching["mode"].as_str().unwrap_or("?"),
        settle_ms,
        args.runs,
        args.rows
    );

    let master = root.join("output/master.xlsx");
    let mut latencies = Vec::new();
    for run in 0..args.runs {
        let unit = UNITS[run % 4];
        let month = format!("2020-{:02}", 1 + (run / 4) % 11);
        let bytes = return_xlsx(unit, &month, args.rows, 10_000 + run as u32 * args.rows);
        let staged = staging.join(format!("{run}.xlsx"));
        std::fs::write(&staged, &bytes).unwrap();
        // Let the staged file's mtime age as a finished copy's would (not counted).
        std::thread::sleep(Duration::from_millis(1_100));
        let before = identity(&master);
        let taken_before = log_lines(&log, "file taken").len();
        let landed = Instant::now();
        std::fs::rename(
            &staged,
            root.join("watch-dirs")
                .join(unit)
                .join(format!("{month}.xlsx")),
        )
        .unwrap();
        wait("the new master", Duration::from_secs(120), || {
            let now = identity(&master);
            now.is_some() && now != before
        });
        let latency = landed.elapsed();
        // The daemon's own figures for this file and this rebuild.
        wait("the log lines", Duration::from_secs(10), || {
            log_lines(&log, "file taken").len() > taken_before
        });
        let taken = log_lines(&log, "file taken");
        let t = &taken[taken.len() - 1];
        let written = log_lines(&log, "master written");
        let m = written.last().map_or(0, |w| w["ms"].as_u64().unwrap_or(0));
        println!(
            "run {:>2}: {:>5} ms  (ingest {} ms, master {} ms, {} {})",
            run + 1,
            latency.as_millis(),
            t["ms"],
            m,
            t["result"].as_str().unwrap_or("?"),
            t["rows"]
        );
        latencies.push(latency);
    }
    // SAFETY: kill(2) on our own child.
    #[cfg(unix)]
    unsafe {
        libc::kill(daemon.id() as i32, libc::SIGTERM);
    }
    #[cfg(not(unix))]
    let _ = daemon.kill();
    let _ = daemon.wait();

    latencies.sort();
    let ms = |d: Duration| d.as_millis();
    let median = latencies[latencies.len() / 2];
    // Polling adds up to one interval before the file is seen at all.
    let poll = match args.mode.as_deref() {
        Some("poll") => args
            .poll_interval
            .as_deref()
            .and_then(|s| s.parse::<f64>().ok())
            .map_or(Duration::from_secs(30), Duration::from_secs_f64),
        _ => Duration::ZERO,
    };
    let target = Duration::from_millis(settle_ms) + poll + Duration::from_secs(1);
    let what = if poll.is_zero() {
        "settle + 1 s"
    } else {
        "poll interval + settle + 1 s"
    };
    println!(
        "landed → new master: min {} ms, median {} ms, max {} ms; target {what} = {} ms: {}",
        ms(latencies[0]),
        ms(median),
        ms(latencies[latencies.len() - 1]),
        ms(target),
        if latencies[latencies.len() - 1] <= target {
            "met"
        } else {
            "NOT met"
        }
    );
}
