//! Storage faults (issue 12), each on the real daemon with a real small file system: a tmpfs
//! mounted over the plan's archive, state or output folder, filled up or remounted read-only
//! while `tally watch` runs. The drop stays where it was, the fault is logged, the bureau is
//! mailed once, and the file goes through when space returns. Needs root (mount); without it
//! each test says it is skipped.

#![cfg(target_os = "linux")]

mod common;

use common::daemon::{Daemon, wait_until};
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;

const P: &str = "企业主要负责人";
const XX: &str = "西兴街道";
const CH: &str = "长河街道";
const NOW: &str = "2020-06-02";

/// A tmpfs of a few hundred KiB mounted over a folder of the plan; unmounted when dropped
/// (declare it after the `Workdir`, so it goes first).
struct SmallDisk {
    at: PathBuf,
}

impl SmallDisk {
    /// Mount one over `at` (made if missing), or None (with the reason printed) where this
    /// process may not mount.
    fn mount(at: &Path, kib: u32) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={kib}k,mode=0700"),
                "tmpfs",
            ])
            .arg(at)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk {
                at: at.to_path_buf(),
            }),
            Ok(o) => {
                println!(
                    "skipped: cannot mount a small tmpfs here (needs root with CAP_SYS_ADMIN): {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                println!("skipped: no mount command: {e}");
                None
            }
        }
    }

    fn filler(&self) -> PathBuf {
        self.at.join("filler")
    }

    /// Use up every free byte.
    fn fill(&self) {
        use std::io::Write;
        let mut f = std::fs::File::create(self.filler()).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }

    /// Space returns.
    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }

    fn remount(&self, how: &str) {
        let out = Command::new("mount")
            .args(["-o", &format!("remount,{how}")])
            .arg(&self.at)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "remount {how}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

fn a_return(unit: &str, month: &str, seed: u32) -> Vec<u8> {
    return_xlsx(
        unit,
        month,
        &[Person::new(seed * 1000, P, &format!("{month}-06"))],
    )
}

/// The alerts in the outbox (file transport): subject and body of each.
fn alerts(w: &Workdir) -> Vec<String> {
    w.files_in("outbox")
        .into_iter()
        .filter(|n| n.contains("-异常-"))
        .map(|n| {
            let bytes = std::fs::read(w.join("outbox").join(n)).unwrap();
            let m = mail_parser::MessageParser::default().parse(&bytes).unwrap();
            format!(
                "{}\n{}",
                m.subject().unwrap_or_default(),
                m.body_text(0).unwrap_or_default()
            )
        })
        .collect()
}

fn failures(d: &Daemon) -> usize {
    d.lines("file not taken in; it stays where it is and is retried when it changes or in 0.3 s")
}

fn start(w: &Workdir) -> Daemon {
    Daemon::spawn(w, NOW, &["--failed-retry", "0.3"], &[])
}

/// The drops stay, one alert naming `folder_label` and `fault`, still one after more retries.
fn held_with_one_alert(w: &Workdir, d: &Daemon, drops: &[(&str, &str)], expect: &[&str]) {
    d.wait_for("both files to fail", |d| failures(d) >= 2);
    for (unit, name) in drops {
        assert!(w.unit_dir(unit).join(name).is_file(), "{unit}/{name} kept");
    }
    wait_until("the alert", || !alerts(w).is_empty());
    d.wait_for("more retries", |d| failures(d) >= 6);
    let alerts = alerts(w);
    assert_eq!(
        alerts.len(),
        1,
        "one alert, whatever the retries: {alerts:?}"
    );
    for e in expect {
        assert!(alerts[0].contains(e), "{e:?} in the alert:\n{}", alerts[0]);
    }
    assert!(
        d.lines(
            "storage fault: files stay where they are and are tried again; the bureau is told once"
        ) == 1
    );
}

fn drop_two(w: &Workdir) -> [(&'static str, &'static str); 2] {
    drop_return(&w.unit_dir(XX), "2020-05.xlsx", &a_return(XX, "2020-05", 1));
    drop_return(&w.unit_dir(CH), "2020-05.xlsx", &a_return(CH, "2020-05", 2));
    [(XX, "2020-05.xlsx"), (CH, "2020-05.xlsx")]
}

fn taken_once_space_returns(w: &Workdir, d: Daemon) {
    d.wait_for("both files taken", |d| d.taken().len() == 2);
    d.wait_for("the episode to end", |d| {
        d.lines("the storage fault is over") >= 1
    });
    for unit in [XX, CH] {
        assert!(w.unit_dir(unit).join("已接收/2020-05.xlsx").is_file());
        assert!(!w.unit_dir(unit).join("2020-05.xlsx").exists());
    }
    let status = w.json(&["--now", NOW, "status", "--json"], 0);
    let counted: i64 = status["units"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["categories"][0]["completed"].as_i64().unwrap())
        .sum();
    assert_eq!(counted, 2, "each return counted once: {status}");
    assert_eq!(d.terminate().0, 0);
    // One archive copy per file: no copy left from the failed tries.
    let mut archived = 0;
    for unit in [XX, CH] {
        archived += w.files_in(format!("archive/{unit}/2020-05")).len();
    }
    assert_eq!(archived, 2);
}

/// A small disk over the plan's `folder` under the running daemon: `fault` befalls it, two
/// returns are dropped and held with one alert saying `expect` (`also` checks more then),
/// `mend` undoes the fault and both returns are taken.
fn held_then_taken(
    folder: &str,
    kib: u32,
    fault: fn(&SmallDisk),
    expect: &[&str],
    also: fn(&Workdir),
    mend: fn(&SmallDisk),
) {
    let w = Workdir::with_plan(&fast_plan());
    let Some(disk) = SmallDisk::mount(&w.join(folder), kib) else {
        return;
    };
    let d = start(&w);
    fault(&disk);
    let drops = drop_two(&w);
    held_with_one_alert(&w, &d, &drops, expect);
    also(&w);
    mend(&disk);
    taken_once_space_returns(&w, d);
}

#[test]
fn the_archive_disk_full_keeps_the_drops_mails_the_bureau_once_and_takes_them_later() {
    held_then_taken(
        "archive",
        512,
        SmallDisk::fill,
        &[
            "【异常】存档磁盘空间已满，报表暂停入账",
            "不会丢失",
            "清理该磁盘",
        ],
        |_| {},
        SmallDisk::free,
    );
}

#[test]
fn the_ledger_disk_full_keeps_the_drops_and_mails_the_bureau_around_the_outbox() {
    held_then_taken(
        "state",
        1024,
        SmallDisk::fill,
        &["【异常】数据库磁盘空间已满，报表暂停入账"],
        // The outbox is in the ledger, which cannot be written: the alert went around it.
        |w| {
            let outbox = w.files_in("outbox");
            assert!(
                outbox.iter().any(|n| n.starts_with("未入账-")),
                "{outbox:?}"
            );
        },
        SmallDisk::free,
    );
}

#[test]
fn the_master_disk_full_takes_the_returns_mails_once_and_writes_the_master_later() {
    let w = Workdir::with_plan(&fast_plan());
    let Some(disk) = SmallDisk::mount(&w.join("output"), 512) else {
        return;
    };
    let d = start(&w);
    disk.fill();
    drop_two(&w);
    d.wait_for("both files taken", |d| d.taken().len() == 2);
    d.wait_for("the master to fail", |d| {
        d.log_text().contains("the master could not be written")
    });
    wait_until("the alert", || !alerts(&w).is_empty());
    let alert = &alerts(&w)[0];
    assert!(
        alert.contains("【异常】总表输出文件夹磁盘空间已满，总表暂停更新"),
        "{alert}"
    );
    assert!(alert.contains("报表照常入账"), "{alert}");
    assert!(!w.join("output/master.xlsx").exists());
    disk.free();
    // Another return ends another burst: the master is written then (or at the retry).
    drop_return(&w.unit_dir(XX), "2020-06.xlsx", &a_return(XX, "2020-06", 3));
    d.wait_for("the master", |d| {
        d.lines("the storage fault is over") == 1 && d.lines("burst finished") >= 1
    });
    assert!(w.join("output/master.xlsx").is_file());
    assert_eq!(alerts(&w).len(), 1);
    let litter: Vec<String> = w
        .files_in("output")
        .into_iter()
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
    assert_eq!(d.terminate().0, 0);
}

#[test]
fn the_archive_read_only_keeps_the_drops_and_they_go_through_when_writable_again() {
    held_then_taken(
        "archive",
        4096,
        |disk| disk.remount("ro"),
        &["【异常】存档磁盘为只读状态，报表暂停入账", "恢复为可写"],
        |_| {},
        |disk| disk.remount("rw"),
    );
}

#[test]
fn a_read_only_state_folder_is_a_clear_error_at_start_and_loses_nothing() {
    let w = Workdir::with_plan(&fast_plan());
    let Some(disk) = SmallDisk::mount(&w.join("state"), 4096) else {
        return;
    };
    drop_return(&w.unit_dir(XX), "2020-05.xlsx", &a_return(XX, "2020-05", 1));
    w.stdout(&["--now", NOW, "watch", "--once", "--settle", "0.1"], 0);
    drop_return(&w.unit_dir(CH), "2020-05.xlsx", &a_return(CH, "2020-05", 2));
    disk.remount("ro");
    let out = w.run(&["--now", NOW, "watch", "--once", "--settle", "0.1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("只读"),
        "the error says read-only: {stderr}"
    );
    assert!(stderr.contains("state"), "and names the folder: {stderr}");
    // Nothing was taken or lost.
    assert!(w.unit_dir(CH).join("2020-05.xlsx").is_file());
    disk.remount("rw");
    w.stdout(&["--now", NOW, "watch", "--once", "--settle", "0.1"], 0);
    assert!(w.unit_dir(CH).join("已接收/2020-05.xlsx").is_file());
}
