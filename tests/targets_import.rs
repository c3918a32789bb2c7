//! End to end: `tally targets import FILE [--use-computed|--accept-stated]`, run as the real
//! binary in a temp dir holding a copy of the repository's tally.toml. Fixtures come from
//! tests/fixtures/targets/make_targets.py (LibreOffice).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tally::config::Config;

const REFERENCE: &str = include_str!("../tally.toml");

/// A temp dir with a copy of tally.toml, and the binary run inside it.
struct Workdir {
    dir: tempfile::TempDir,
}

impl Workdir {
    fn new() -> Workdir {
        Workdir::with_config(REFERENCE)
    }

    fn with_config(text: &str) -> Workdir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tally.toml"), text).unwrap();
        Workdir { dir }
    }

    fn config_path(&self) -> PathBuf {
        self.dir.path().join("tally.toml")
    }

    fn config_text(&self) -> String {
        std::fs::read_to_string(self.config_path()).unwrap()
    }

    /// `tally targets import tests/fixtures/targets/<fixture> <flags>`.
    fn import(&self, fixture: &str, flags: &[&str]) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tally"));
        cmd.current_dir(self.dir.path())
            .env_remove("TALLY_NOW")
            .env_remove("RUST_LOG")
            .args(["targets", "import"])
            .arg(fixture_path(fixture))
            .args(flags);
        Run(cmd.output().unwrap())
    }

    /// Names in the dir: nothing but tally.toml may be left behind (no temp files).
    fn entries(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn targets(&self) -> BTreeMap<String, BTreeMap<String, u32>> {
        Config::load(&self.config_path()).unwrap().plan.targets
    }
}

fn fixture_path(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/targets")
        .join(name)
}

struct Run(Output);

impl Run {
    fn code(&self) -> Option<i32> {
        self.0.status.code()
    }
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.0.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.0.stderr).into_owned()
    }
    fn expect_code(&self, code: i32) -> &Run {
        assert_eq!(
            self.code(),
            Some(code),
            "stdout:\n{}\nstderr:\n{}",
            self.stdout(),
            self.stderr()
        );
        self
    }
}

/// targets as a map, from (unit, [three figures in config category order]).
fn targets_of(rows: &[(&str, [u32; 3])]) -> BTreeMap<String, BTreeMap<String, u32>> {
    let categories = ["企业主要负责人", "安全生产管理人员", "其他从业人员"];
    rows.iter()
        .map(|(unit, figures)| {
            let per: BTreeMap<String, u32> = categories
                .iter()
                .zip(figures)
                .map(|(c, f)| (c.to_string(), *f))
                .collect();
            (unit.to_string(), per)
        })
        .collect()
}

fn reference_targets() -> BTreeMap<String, BTreeMap<String, u32>> {
    targets_of(&[
        ("西兴街道", [70, 80, 5000]),
        ("长河街道", [70, 80, 5000]),
        ("浦沿街道", [70, 80, 5000]),
        ("江北科技园", [70, 80, 5000]),
    ])
}

/// The reference plan with two targets changed, so that importing the attachment writes.
fn drifted_config() -> String {
    let from = "[targets.\"西兴街道\"]\n\"企业主要负责人\" = 70\n\"安全生产管理人员\" = 80\n\"其他从业人员\" = 5000\n";
    let to = "[targets.\"西兴街道\"]\n\"企业主要负责人\" = 1\n\"安全生产管理人员\" = 80\n\"其他从业人员\" = 2\n";
    assert!(REFERENCE.contains(from));
    REFERENCE.replacen(from, to, 1)
}

#[test]
fn the_reference_attachment_is_refused_naming_the_grand_total_cell() {
    let wd = Workdir::new();
    let run = wd.import("reference-attachment.xlsx", &[]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(
        out.contains("附件!F7：合计写的是 26000，但各列相加为 20600"),
        "{out}"
    );
    assert!(
        out.contains("已拒绝：所写合计与各单位数字不符；tally.toml 未改动。"),
        "{out}"
    );
    assert!(
        out.contains("--use-computed") && out.contains("--accept-stated"),
        "{out}"
    );
    assert_eq!(wd.config_text().as_bytes(), REFERENCE.as_bytes());
    assert_eq!(wd.entries(), ["tally.toml"]);
}

#[test]
fn the_reference_attachment_with_accept_stated_is_imported() {
    let wd = Workdir::with_config(&drifted_config());
    let run = wd.import("reference-attachment.xlsx", &["--accept-stated"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("附件!F7：合计写的是 26000，但各列相加为 20600"),
        "{out}"
    );
    assert!(
        out.contains("--accept-stated：上面所写的合计按原样接受"),
        "{out}"
    );
    assert!(
        out.contains("已更新 tally.toml：2 个年度指标有变化"),
        "{out}"
    );
    assert_eq!(wd.targets(), reference_targets());
    // The only bytes that changed are the two drifted values.
    assert_eq!(wd.config_text(), REFERENCE);
    assert_eq!(wd.entries(), ["tally.toml"]);
}

#[test]
fn the_reference_attachment_with_use_computed_is_imported() {
    let wd = Workdir::with_config(&drifted_config());
    let run = wd.import("reference-attachment.xlsx", &["--use-computed"]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(
        out.contains("附件!F7：合计写的是 26000，但各列相加为 20600"),
        "{out}"
    );
    assert!(
        out.contains("--use-computed：不采用上面所写的合计"),
        "{out}"
    );
    assert_eq!(wd.targets(), reference_targets());
    assert_eq!(wd.config_text(), REFERENCE);
}

#[test]
fn the_reference_attachment_over_the_reference_plan_changes_nothing() {
    let wd = Workdir::new();
    let run = wd.import("reference-attachment.xlsx", &["--use-computed"]);
    run.expect_code(0);
    assert!(
        run.stdout()
            .contains("tally.toml 中已是这些年度指标，未写入。"),
        "{}",
        run.stdout()
    );
    assert_eq!(wd.config_text().as_bytes(), REFERENCE.as_bytes());
}

#[test]
fn a_consistent_table_is_imported_keeping_comments_and_layout() {
    let wd = Workdir::new();
    let run = wd.import("consistent.xlsx", &[]);
    run.expect_code(0);
    let out = run.stdout();
    assert!(out.contains("所写合计与各项数字全部相符"), "{out}");
    assert!(
        out.contains("已更新 tally.toml：12 个年度指标有变化"),
        "{out}"
    );

    let expected = targets_of(&[
        ("西兴街道", [60, 90, 4000]),
        ("长河街道", [65, 85, 4500]),
        ("浦沿街道", [75, 70, 5200]),
        ("江北科技园", [50, 60, 3000]),
    ]);
    // Re-loaded through the library, independently of any other subcommand.
    assert_eq!(wd.targets(), expected);

    let text = wd.config_text();
    for figure in [
        "= 60", "= 90", "= 4000", "= 65", "= 85", "= 4500", "= 5200", "= 3000",
    ] {
        assert!(text.contains(figure), "{figure} missing:\n{text}");
    }
    let new_lines: Vec<&str> = text.lines().collect();
    for line in REFERENCE
        .lines()
        .filter(|l| l.trim_start().starts_with('#'))
    {
        assert!(new_lines.contains(&line), "comment line lost: {line}");
    }
    // Line for line the same file, except the target values.
    let old_lines: Vec<&str> = REFERENCE.lines().collect();
    assert_eq!(old_lines.len(), new_lines.len(), "{text}");
    for (old, new) in old_lines.iter().zip(&new_lines) {
        if old != new {
            let key = |l: &str| l.split(" = ").next().unwrap_or_default().to_string();
            assert_eq!(key(old), key(new), "{old} → {new}");
            assert!(
                new.starts_with('"') && new.split(" = ").nth(1).unwrap().parse::<u32>().is_ok(),
                "{new}"
            );
        }
    }
    assert_eq!(wd.entries(), ["tally.toml"]);

    // A second import of the same table has nothing to do.
    let again = wd.import("consistent.xlsx", &[]);
    again.expect_code(0);
    assert!(
        again
            .stdout()
            .contains("tally.toml 中已是这些年度指标，未写入。"),
        "{}",
        again.stdout()
    );
    assert_eq!(wd.config_text(), text);
}

#[test]
fn an_unknown_unit_is_refused_naming_its_cell() {
    let wd = Workdir::new();
    let run = wd.import("unknown-unit.xlsx", &["--use-computed"]);
    run.expect_code(1);
    let out = run.stdout();
    assert!(
        out.contains("附件!B5：“西湖街道”不是培训计划中的单位"),
        "{out}"
    );
    assert!(out.contains("tally.toml 未改动"), "{out}");
    assert_eq!(wd.config_text().as_bytes(), REFERENCE.as_bytes());
    assert_eq!(wd.entries(), ["tally.toml"]);
}

#[test]
fn both_flags_at_once_are_a_usage_error() {
    let wd = Workdir::new();
    wd.import(
        "reference-attachment.xlsx",
        &["--use-computed", "--accept-stated"],
    )
    .expect_code(2);
    assert_eq!(wd.config_text().as_bytes(), REFERENCE.as_bytes());
}

#[test]
fn a_missing_file_is_a_usage_error() {
    let wd = Workdir::new();
    let run = wd.import("no-such-table.xlsx", &[]);
    run.expect_code(2);
    assert!(
        run.stderr().contains("no-such-table.xlsx：文件不存在"),
        "{}",
        run.stderr()
    );
}

#[test]
fn a_broken_config_is_a_usage_error_and_left_alone() {
    let broken = REFERENCE.replacen("deadline_day = 5", "deadline_day = 31", 1);
    let wd = Workdir::with_config(&broken);
    let run = wd.import("consistent.xlsx", &[]);
    run.expect_code(2);
    assert!(run.stderr().contains("deadline_day"), "{}", run.stderr());
    assert_eq!(wd.config_text(), broken);
}

#[test]
fn a_file_that_is_not_a_workbook_is_refused() {
    let wd = Workdir::new();
    let run = wd.import("make_targets.py", &[]);
    run.expect_code(1);
    assert!(
        run.stdout().contains("已拒绝，无法作为工作簿读取"),
        "{}",
        run.stdout()
    );
    assert_eq!(wd.config_text().as_bytes(), REFERENCE.as_bytes());
}
