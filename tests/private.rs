//! Personal data at rest (issue 12, item 5), on the real binary: after `init` and an `ingest`
//! run under umask 000, the ledger, the archive, its staging folder and the daemon's log file
//! are owner-only (folders 0700, files 0600); a plan folder opened up beforehand is tightened
//! at the next start, with a warning logged. Unix only: Windows relies on ACLs (src/private.rs).

#![cfg(unix)]

mod common;

use common::{BIN, Person, return_xlsx};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Run tally in `dir` under umask 000, so that only explicit modes can make anything private.
fn tally(dir: &Path, args: &[&str]) -> Output {
    let out = Command::new("sh")
        .arg("-c")
        .arg("umask 000; exec \"$0\" \"$@\"")
        .arg(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("TALLY_NOW")
        .env_remove("TALLY_SMTP_URL")
        .env("RUST_LOG", "tally=warn")
        .output()
        .expect("run tally");
    assert!(
        out.status.code().is_some_and(|c| c <= 1),
        "tally {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Every entry under `dir`, itself included.
fn tree(dir: &Path) -> Vec<PathBuf> {
    let mut out = vec![dir.to_path_buf()];
    let mut i = 0;
    while i < out.len() {
        if out[i].is_dir() {
            let mut children: Vec<PathBuf> = std::fs::read_dir(&out[i])
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            children.sort();
            out.extend(children);
        }
        i += 1;
    }
    out
}

/// A plan folder made by `tally init`, with one return taken in by `ingest`.
fn plan_with_a_return() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan");
    tally(tmp.path(), &["init", plan.to_str().unwrap()]);
    let people = [Person::new(1, "企业主要负责人", "2020-05-06")];
    let drop = common::drop_return(
        &plan.join("watch-dirs/西兴街道"),
        "2020-05.xlsx",
        &return_xlsx("西兴街道", "2020-05", &people),
    );
    let out = tally(
        &plan,
        &[
            "--now",
            "2020-07-01",
            "ingest",
            drop.to_str().unwrap(),
            "--unit",
            "西兴街道",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // A fresh plan had nothing readable by others, whatever the order folders were made in
    // (the state lock makes state/ before the ledger opens).
    assert!(!stderr.contains("readable by other accounts"), "{stderr}");
    tmp
}

/// The ledger and the archive's files, and the top folders, are owner-only.
fn assert_private(plan: &Path) {
    let state = plan.join("state");
    assert_eq!(mode(&state), 0o700, "state/");
    assert_eq!(mode(&state.join("tally.db")), 0o600, "state/tally.db");
    for side in ["tally.db-wal", "tally.db-shm"] {
        if state.join(side).exists() {
            assert_eq!(mode(&state.join(side)), 0o600, "{side}");
        }
    }
    let archive = plan.join("archive");
    assert_eq!(mode(&archive), 0o700, "archive/");
    assert_eq!(mode(&archive.join(".staging")), 0o700, "archive/.staging");
    let files: Vec<PathBuf> = tree(&archive).into_iter().filter(|p| p.is_file()).collect();
    assert!(!files.is_empty(), "the return was archived");
    for f in files {
        assert_eq!(mode(&f), 0o600, "{}", f.display());
    }
}

#[test]
fn init_and_ingest_leave_the_ledger_and_archive_owner_only() {
    let tmp = plan_with_a_return();
    let plan = tmp.path().join("plan");
    assert_private(&plan);
    // The next start makes every folder under them 0700 too, without a warning: nothing in
    // them was reachable by other accounts.
    let out = tally(&plan, &["--now", "2020-07-01", "status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("readable by other accounts"), "{stderr}");
    for p in tree(&plan.join("state"))
        .into_iter()
        .chain(tree(&plan.join("archive")))
    {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
}

#[test]
fn an_open_plan_folder_is_tightened_at_start_with_a_warning() {
    let tmp = plan_with_a_return();
    let plan = tmp.path().join("plan");
    for p in tree(&plan.join("state"))
        .into_iter()
        .chain(tree(&plan.join("archive")))
    {
        let open = if p.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(open)).unwrap();
    }
    let out = tally(&plan, &["--now", "2020-07-01", "status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("readable by other accounts"), "{stderr}");
    assert!(
        stderr.contains("archive"),
        "the warning names the folder: {stderr}"
    );
    assert_private(&plan);
    for p in tree(&plan.join("state"))
        .into_iter()
        .chain(tree(&plan.join("archive")))
    {
        let want = if p.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&p), want, "{}", p.display());
    }
    // Once tightened, the next start has nothing to say.
    let out = tally(&plan, &["--now", "2020-07-01", "status"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("readable by other accounts"), "{stderr}");
}

#[test]
fn the_daemons_log_file_is_owner_only() {
    let tmp = plan_with_a_return();
    let plan = tmp.path().join("plan");
    let logs = plan.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let file = logs.join("tally.log");
    tally(
        &plan,
        &[
            "--now",
            "2020-07-01",
            "watch",
            "--once",
            "--log-file",
            file.to_str().unwrap(),
        ],
    );
    let written = tree(&logs);
    assert!(written.len() > 1, "a log file was written: {written:?}");
    for f in written.iter().filter(|p| p.is_file()) {
        assert_eq!(mode(f), 0o600, "{}", f.display());
    }
}

#[test]
fn no_full_id_reaches_the_logs_or_the_terminal() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp.path().join("plan");
    tally(tmp.path(), &["init", plan.to_str().unwrap()]);
    // One accepted return, and one rejected for a 身份证号 whose check digit is wrong.
    let good = Person::new(11, "企业主要负责人", "2020-05-06");
    let mut bad = Person::new(12, "其他从业人员", "2020-06-06");
    let last = if bad.id.ends_with('0') { '1' } else { '0' };
    bad.id = format!("{}{last}", &bad.id[..17]);
    let ids = [good.id.clone(), bad.id.clone()];
    let dir = plan.join("watch-dirs/西兴街道");
    common::drop_return(
        &dir,
        "2020-05.xlsx",
        &return_xlsx("西兴街道", "2020-05", &[good]),
    );
    common::drop_return(
        &dir,
        "2020-06.xlsx",
        &return_xlsx("西兴街道", "2020-06", &[bad]),
    );
    let logs = plan.join("logs");
    std::fs::create_dir(&logs).unwrap();
    let out = Command::new(BIN)
        .current_dir(&plan)
        .args([
            "--now",
            "2020-07-02",
            "-v",
            "watch",
            "--once",
            "--settle",
            "0.1",
        ])
        .args(["--log-file", logs.join("tally.log").to_str().unwrap()])
        .env("RUST_LOG", "tally=trace")
        .env_remove("TALLY_NOW")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        dir.join("退回/2020-06.xlsx").is_file(),
        "the bad return is rejected"
    );
    // (`tally check` shows a clerk the value in their own file, to find it: not a log.)
    let mut texts = vec![
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ];
    for f in tree(&logs).iter().filter(|p| p.is_file()) {
        texts.push(std::fs::read_to_string(f).unwrap());
    }
    assert!(
        texts[2..].iter().any(|t| t.contains("file taken")),
        "the log was written"
    );
    for id in &ids {
        for t in &texts {
            assert!(!t.contains(id.as_str()), "full ID {id} in:\n{t}");
        }
    }
}
