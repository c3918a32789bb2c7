//! Where tally meets the operating system, tested on the real binary on every platform and
//! with Windows' own semantics in the Windows run (tally.exe under Wine in CI): the reader
//! child's memory cap and time limit (rlimit on Unix, a Job Object on Windows), a master held
//! open without FILE_SHARE_DELETE (Excel's sharing violation), Chinese folder names with
//! absolute (drive-letter) and UNC paths in `[paths]`, `watch --once` in poll and native mode,
//! and the Windows service.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const XX: &str = "西兴街道";
const NOW: &str = "2020-06-02";
const P: &str = "企业主要负责人";

fn a_return(seed: u32) -> Vec<u8> {
    let people: Vec<Person> = (0..3)
        .map(|i| Person::new(seed * 10 + i, P, "2020-05-12"))
        .collect();
    return_xlsx(XX, "2020-05", &people)
}

/// The reference plan with `[limits]` lines replaced and files taken at once.
fn plan_with(replacements: &[(&str, &str)]) -> String {
    let mut plan = REFERENCE_PLAN.replacen("\nmin_age_secs = 1\n", "\nmin_age_secs = 0\n", 1);
    for (from, to) in replacements {
        assert!(plan.contains(from), "the reference plan has no {from:?}");
        plan = plan.replacen(from, to, 1);
    }
    plan
}

fn codes(v: &serde_json::Value) -> Vec<String> {
    v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

/// A sheet whose rows 2–1001 each end in column XFD: its workbook holds 1,000 rows of 16,384
/// cells (about 500 MB), far over a 256 MB cap, from a file of a few dozen kilobytes. The
/// reader child streams the cells; the parent refuses to hold more than the cap allows (on
/// every platform alike, Wine included, whose Job Objects do not enforce a memory limit).
fn sheet_needing_half_a_gigabyte() -> Vec<u8> {
    let mut wb = rust_xlsxwriter::Workbook::new();
    let ws = wb.add_worksheet();
    ws.set_name("培训台账").unwrap();
    ws.write_string(0, 0, "序号").unwrap();
    // One far cell alone no longer needs the memory: the sheet is streamed, not made into
    // one dense range, and only a row that reaches column XFD holds 16,384 cells.
    for row in 1..=1000 {
        ws.write_string(row, 16_383, "x").unwrap();
    }
    wb.save_to_buffer().unwrap()
}

#[test]
fn a_return_that_needs_more_than_the_memory_cap_is_too_large() {
    let w = Workdir::with_plan(&plan_with(&[(
        "reader_memory_mb = 2048",
        "reader_memory_mb = 256",
    )]));
    let file = drop_return(&w.join("in"), "大表.xlsx", &sheet_needing_half_a_gigabyte());
    let v = w.json(
        &[
            "--now",
            NOW,
            "check",
            file.to_str().unwrap(),
            "--unit",
            XX,
            "--json",
        ],
        1,
    );
    let found = codes(&v);
    assert_eq!(found, ["too-large"], "{v}");
    let message = v["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("内存超过了上限（256 MB）"), "{message}");
}

#[test]
fn a_reader_that_never_finishes_is_ended_at_the_time_limit() {
    let w = Workdir::with_plan(&plan_with(&[("reader_seconds = 60", "reader_seconds = 2")]));
    let file = drop_return(&w.join("in"), "慢.xlsx", &a_return(1));
    let started = Instant::now();
    let out = std::process::Command::new(BIN)
        .current_dir(w.path())
        .arg("--config")
        .arg(w.join("tally.toml"))
        .args(["--now", NOW, "check"])
        .arg(&file)
        .args(["--unit", XX, "--json"])
        .env("TALLY_FAULT_READER", "hang")
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "not JSON ({e}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(out.status.code(), Some(1), "{v}");
    assert_eq!(codes(&v), ["too-large"], "{v}");
    let message = v["findings"][0]["message"].as_str().unwrap();
    assert!(message.contains("2 秒的时间上限"), "{message}");
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(60),
        "{elapsed:?}"
    );
    // The same file without the fault goes through: nothing was left behind holding it.
    let v = w.json(
        &[
            "--now",
            NOW,
            "check",
            file.to_str().unwrap(),
            "--unit",
            XX,
            "--json",
        ],
        0,
    );
    assert_eq!(v["accepted"], true, "{v}");
}

/// `[paths]` all absolute (a drive letter on Windows), in folders with Chinese names.
fn plan_with_paths(root: &Path, state: &Path) -> String {
    let lit = |p: PathBuf| format!("'{}'", p.display());
    plan_with(&[
        (
            "watch_root = \"watch-dirs\"",
            &format!("watch_root = {}", lit(root.join("报表"))),
        ),
        (
            "archive = \"archive\"",
            &format!("archive = {}", lit(state.join("存档"))),
        ),
        (
            "state = \"state/tally.db\"",
            &format!("state = {}", lit(state.join("台账").join("tally.db"))),
        ),
        (
            "master = \"output/master.xlsx\"",
            &format!("master = {}", lit(root.join("汇总").join("总表.xlsx"))),
        ),
    ])
}

/// Drop a return under `root`\报表\西兴街道, take it with `watch --once --mode MODE`, and check
/// it was accepted, moved, and the master written beside, all through `root`.
fn once_takes_a_return_under(w: &Workdir, root: &Path, mode: &str) {
    let unit = root.join("报表").join(XX);
    drop_return(&unit, "五月 报表（终稿）.xlsx", &a_return(7));
    let out = w.stdout(
        &[
            "--now", NOW, "watch", "--once", "--settle", "0.3", "--mode", mode,
        ],
        0,
    );
    assert!(out.contains("已采用 1 份"), "{mode}: {out}");
    assert!(
        unit.join("已接收").join("五月 报表（终稿）.xlsx").is_file(),
        "{mode}: moved to 已接收"
    );
    assert!(
        root.join("汇总").join("总表.xlsx").is_file(),
        "{mode}: master"
    );
    let status = w.json(&["--now", "2020-07-01", "status", "--json"], 0);
    let xx = status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == XX)
        .unwrap();
    let completed = xx["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == P)
        .unwrap()["completed"]
        .clone();
    assert_eq!(completed, 3, "{mode}: {status}");
}

#[test]
fn chinese_folders_and_absolute_paths_in_paths_poll_and_native() {
    for mode in ["poll", "native"] {
        let w = Workdir::new();
        let root = w.join("共享盘").join("安全生产培训 2020");
        let state = w.join("本机").join("数据");
        std::fs::write(w.join("tally.toml"), plan_with_paths(&root, &state)).unwrap();
        once_takes_a_return_under(&w, &root, mode);
    }
}

/// Paths past Windows' old 260-character MAX_PATH, in the drop folder and the master's.
#[test]
fn paths_longer_than_260_characters() {
    let w = Workdir::new();
    let mut root = w.join("共享盘");
    while root.as_os_str().len() < 300 {
        root = root.join("杭州市滨江区安全生产培训计划报表文件夹");
    }
    let state = w.join("本机");
    std::fs::write(w.join("tally.toml"), plan_with_paths(&root, &state)).unwrap();
    once_takes_a_return_under(&w, &root, "poll");
}

/// A UNC root `\\server\share`: in the Windows run, .ci/run maps `\\localhost\tally` (Wine's
/// dosdevices/unc) to a folder and names it in `TALLY_TEST_UNC`.
#[cfg(windows)]
#[test]
fn a_unc_watch_root_and_master() {
    let Some(unc) = std::env::var_os("TALLY_TEST_UNC") else {
        if std::env::var_os("CI").is_some() {
            panic!(
                "TALLY_TEST_UNC (a UNC share such as \\\\localhost\\tally) is required under CI"
            );
        }
        skipped("a_unc_watch_root_and_master: no UNC share named in TALLY_TEST_UNC");
        return;
    };
    let w = Workdir::new();
    let mine = PathBuf::from(unc).join(format!("测试-{}", std::process::id()));
    assert!(
        mine.to_string_lossy().starts_with(r"\\"),
        "{}",
        mine.display()
    );
    let state = w.join("本机");
    std::fs::write(w.join("tally.toml"), plan_with_paths(&mine, &state)).unwrap();
    once_takes_a_return_under(&w, &mine, "poll");
    let _ = std::fs::remove_dir_all(&mine);
}

/// Excel holds an open workbook without FILE_SHARE_DELETE: replacing it fails with a sharing
/// violation, and the new master goes beside it as master.<time>.xlsx.
#[cfg(windows)]
#[test]
fn a_master_held_open_like_excel_gets_a_version_beside_it() {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_SHARE_READ: u32 = 1;
    let w = workdir_taking_at_once();
    drop_return(&w.unit_dir(XX), "2020-05.xlsx", &a_return(3));
    watch_once(&w, NOW);
    let master = w.join("output").join("master.xlsx");
    let before = std::fs::read(&master).unwrap();
    let held = std::fs::OpenOptions::new()
        .read(true)
        .share_mode(FILE_SHARE_READ)
        .open(&master)
        .unwrap();
    // Another clock: the master's content changes, so it must be replaced.
    let out = w.run(&["--now", "2020-07-01", "rebuild"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("文件被打开或只读"), "{stderr}");
    let beside: Vec<String> = w
        .files_in("output")
        .into_iter()
        .filter(|n| n.starts_with("master.2020") && n.ends_with(".xlsx"))
        .collect();
    assert_eq!(beside.len(), 1, "{:?}", w.files_in("output"));
    assert_eq!(
        std::fs::read(&master).unwrap(),
        before,
        "the held file is untouched"
    );
    drop(held);
    // Closed: the next rebuild replaces it and removes the stale copy.
    let out = w.run(&["--now", "2020-07-01", "rebuild"]);
    assert_eq!(out.status.code(), Some(0));
    assert_ne!(std::fs::read(&master).unwrap(), before);
    assert_eq!(w.files_in("output"), ["master.xlsx"]);
}

/// Unregisters the test's service whatever happens.
#[cfg(windows)]
struct ServiceGuard<'a> {
    w: &'a Workdir,
    name: String,
}

#[cfg(windows)]
impl Drop for ServiceGuard<'_> {
    fn drop(&mut self) {
        let _ = self.w.run(&["service", "uninstall", "--name", &self.name]);
    }
}

#[cfg(windows)]
#[test]
fn the_service_installs_starts_takes_a_return_stops_and_uninstalls() {
    let w = workdir_taking_at_once();
    let name = format!("tally-test-{}", std::process::id());
    let n = name.as_str();
    let status = |code: i32| w.stdout(&["service", "status", "--name", n], code);
    assert!(status(1).contains("未安装"));
    let out = w.run(&["service", "install", "--name", n]);
    let _guard = ServiceGuard {
        w: &w,
        name: name.clone(),
    };
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(stdout.contains("已安装服务"), "{stdout}");
    if stderr.contains("未能设置“失败后自动重启”") {
        // Wine's SCM has no SERVICE_CONFIG_FAILURE_ACTIONS; real Windows must take them.
        assert!(under_wine(), "{stderr}");
        reduced(&format!(
            "the_service_installs_starts_takes_a_return_stops_and_uninstalls (Wine): the recovery actions (restart on failure) were refused by Wine's service manager: {}",
            stderr.trim()
        ));
    }
    assert!(status(1).contains("已停止"));
    let again = w.run(&["service", "install", "--name", n]);
    assert_eq!(again.status.code(), Some(2), "a second install is refused");
    assert!(String::from_utf8_lossy(&again.stderr).contains("已经安装"));

    assert!(
        w.stdout(&["service", "start", "--name", n], 0)
            .contains("已启动")
    );
    assert!(status(0).contains("正在运行"));
    let logs = w.join("logs");
    let log_text = || -> String {
        std::fs::read_dir(&logs)
            .map(|rd| {
                rd.flatten()
                    .map(|e| std::fs::read_to_string(e.path()).unwrap_or_default())
                    .collect()
            })
            .unwrap_or_default()
    };
    wait_until("the service's log to say it runs", || {
        log_text().contains("running as a Windows service")
    });
    // The service has the wall clock, past the plan year: the return is taken in either way.
    drop_return(&w.unit_dir(XX), "2020-05.xlsx", &a_return(5));
    wait_until("the service to take the return", || {
        !w.unit_dir(XX).join("2020-05.xlsx").exists()
            && (!w.files_in(format!("watch-dirs/{XX}/已接收")).is_empty()
                || !w.files_in(format!("watch-dirs/{XX}/退回")).is_empty())
    });
    assert!(
        w.stdout(&["service", "stop", "--name", n], 0)
            .contains("已停止")
    );
    assert!(status(1).contains("已停止"));
    let log = log_text();
    assert!(
        log.contains("stop requested by the service manager"),
        "{log}"
    );
    assert!(log.contains("the service stopped"), "{log}");
    assert!(
        w.stdout(&["service", "uninstall", "--name", n], 0)
            .contains("已卸载")
    );
    assert!(status(1).contains("未安装"));
}

#[cfg(not(windows))]
#[test]
fn the_service_command_says_it_is_for_windows() {
    let w = Workdir::new();
    let out = w.run(&["service", "status"]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("只用于 Windows"), "{stderr}");
}
