//! The form of the month due in each unit's 报表模板 folder (issue 15), on the real binary:
//! `tally init` makes the folders, an intake or a rebuild puts the form there pre-filled, a
//! form a clerk holds open or has saved over is left alone, and a new month replaces the old.

mod common;

use calamine::{Data, Reader, Xlsx};
use common::*;
use std::path::{Path, PathBuf};

const UNITS: [&str; 4] = ["西兴街道", "长河街道", "浦沿街道", "江北科技园"];
const FOLDER: &str = "报表模板";

fn form_dir(w: &Workdir, unit: &str) -> PathBuf {
    w.unit_dir(unit).join(FOLDER)
}

fn form_name(unit: &str, year: i32, month: u32) -> String {
    format!("{unit}_{year}年{month:02}月_培训台账.xlsx")
}

/// 填报单位 and 报送月份 as the cover holds them.
fn cover(path: &Path) -> (String, String) {
    let mut book: Xlsx<_> = calamine::open_workbook(path).unwrap();
    let cover = book
        .worksheet_range(tally::core::form::COVER_SHEET)
        .unwrap();
    let value = |row: u32, label: &str| {
        assert_eq!(cover.get_value((row, 0)), Some(&Data::String(label.into())));
        match cover.get_value((row, 1)) {
            Some(Data::String(s)) => s.clone(),
            other => panic!("{label}: {other:?}"),
        }
    };
    (value(1, "填报单位"), value(2, "报送月份"))
}

fn rebuild(w: &Workdir, now: &str) {
    w.stdout(&["--now", now, "rebuild"], 0);
}

#[test]
fn init_makes_the_folders_and_writes_no_form() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(BIN)
        .arg("init")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for unit in UNITS {
        let forms = dir.path().join("watch-dirs").join(unit).join(FOLDER);
        assert!(forms.is_dir(), "{}", forms.display());
        assert_eq!(std::fs::read_dir(&forms).unwrap().count(), 0);
    }
}

/// The release archive ships tally.toml beside tally.exe, and a clerk runs `tally init` there:
/// the plan already in the folder (edited, here) is kept byte for byte and its folders made.
#[test]
fn init_keeps_an_existing_plan_and_makes_its_folders() {
    let dir = tempfile::tempdir().unwrap();
    let plan = common::REFERENCE_PLAN.replace("folder = \"西兴街道\"", "folder = \"西兴\"");
    assert_ne!(plan, common::REFERENCE_PLAN);
    let path = dir.path().join("tally.toml");
    std::fs::write(&path, &plan).unwrap();
    let init = || {
        std::process::Command::new(BIN)
            .arg("init")
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
    for _ in 0..2 {
        let out = init();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("已有计划文件，保留不变"));
        assert_eq!(std::fs::read_to_string(&path).unwrap(), plan);
        let watch = dir.path().join("watch-dirs");
        assert!(watch.join("西兴").join(FOLDER).is_dir());
        assert!(!watch.join("西兴街道").exists());
        assert!(watch.join("长河街道").join(FOLDER).is_dir());
    }
    // A plan that does not load is reported, not replaced.
    std::fs::write(&path, "[plan\n").unwrap();
    let out = init();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("tally.toml"));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "[plan\n");
}

#[test]
fn after_an_intake_each_unit_finds_the_form_of_the_month_due() {
    let w = Workdir::new();
    let people = [Person::new(1, "企业主要负责人", "2020-05-06")];
    let p = drop_return(
        &w.join("incoming"),
        "a.xlsx",
        &return_xlsx("长河街道", "2020-05", &people),
    );
    w.stdout(
        &[
            "--now",
            "2020-06-03T10:00:00",
            "ingest",
            p.to_str().unwrap(),
            "--unit",
            "长河街道",
        ],
        0,
    );
    for unit in UNITS {
        let name = form_name(unit, 2020, 5);
        assert_eq!(w.files_in(form_dir(&w, unit)), [name.as_str()], "{unit}");
        let form = form_dir(&w, unit).join(&name);
        assert_eq!(cover(&form), (unit.to_string(), "2020-05".to_string()));
        // As it stands it is that unit's return of that month, only 填报人 and 联系电话 to fill.
        let verdict = w.json(
            &[
                "--now",
                "2020-06-03",
                "check",
                form.to_str().unwrap(),
                "--unit",
                unit,
                "--json",
            ],
            1,
        );
        assert_eq!(verdict["unit"], unit);
        assert_eq!(verdict["month"], "2020-05");
        let cells: Vec<(&str, &str)> = verdict["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["code"].as_str().unwrap(), f["cell"].as_str().unwrap()))
            .collect();
        assert_eq!(cells, [("missing-cell", "B4"), ("missing-cell", "B5")]);
    }
}

#[test]
fn a_new_month_replaces_the_old_form_but_never_one_held_open_or_saved_over() {
    let w = Workdir::new();
    rebuild(&w, "2020-06-10");
    let may = |unit| form_dir(&w, unit).join(form_name(unit, 2020, 5));
    let june = |unit| form_dir(&w, unit).join(form_name(unit, 2020, 6));
    assert!(UNITS.iter().all(|u| may(u).is_file()));

    // 西兴街道's clerk has May's form open; 长河街道's clerk filled it in place and saved it
    // (a spreadsheet program stamps the time of saving); a file of their own stays too.
    std::fs::write(
        form_dir(&w, "西兴街道").join(format!("~${}", form_name("西兴街道", 2020, 5))),
        b"",
    )
    .unwrap();
    let mut filled = rust_xlsxwriter::Workbook::new();
    filled
        .add_worksheet()
        .write_string(0, 0, "王芳填的")
        .unwrap();
    filled.save(may("长河街道")).unwrap();
    let theirs = std::fs::read(may("长河街道")).unwrap();
    std::fs::write(form_dir(&w, "浦沿街道").join("笔记.xlsx"), b"notes").unwrap();

    // Same month, same plan: nothing is rewritten.
    let before = std::fs::metadata(may("江北科技园"))
        .unwrap()
        .modified()
        .unwrap();
    rebuild(&w, "2020-06-30T23:00:00");
    assert_eq!(
        std::fs::metadata(may("江北科技园"))
            .unwrap()
            .modified()
            .unwrap(),
        before
    );
    assert_eq!(
        std::fs::read(may("长河街道")).unwrap(),
        theirs,
        "saved over: kept"
    );

    rebuild(&w, "2020-07-01T08:00:00");
    for unit in UNITS {
        assert!(june(unit).is_file(), "{unit}");
        assert_eq!(cover(&june(unit)).1, "2020-06");
    }
    assert!(!may("江北科技园").exists(), "the old month's form is gone");
    assert!(!may("浦沿街道").exists());
    assert!(may("西兴街道").exists(), "held open: left");
    assert_eq!(
        std::fs::read(may("长河街道")).unwrap(),
        theirs,
        "saved over: left"
    );
    assert!(form_dir(&w, "浦沿街道").join("笔记.xlsx").exists());
    let litter: Vec<String> = UNITS
        .iter()
        .flat_map(|u| w.files_in(form_dir(&w, u)))
        .filter(|n| n.starts_with(".tally-") || n.ends_with(".tmp"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
}

#[test]
fn a_changed_plan_rewrites_the_form_unless_a_clerk_holds_it_open() {
    let w = Workdir::new();
    rebuild(&w, "2020-06-10");
    let form = form_dir(&w, "浦沿街道").join(form_name("浦沿街道", 2020, 5));
    let before = std::fs::read(&form).unwrap();
    let lock = form_dir(&w, "浦沿街道").join(format!(".~lock.{}#", form_name("浦沿街道", 2020, 5)));
    std::fs::write(&lock, b"").unwrap();
    let plan = REFERENCE_PLAN.replace("2020年度安全生产培训计划", "2020年度安全生产教育培训计划");
    std::fs::write(w.join("tally.toml"), plan).unwrap();
    rebuild(&w, "2020-06-11");
    assert_eq!(
        std::fs::read(&form).unwrap(),
        before,
        "held open: not rewritten"
    );
    std::fs::remove_file(&lock).unwrap();
    rebuild(&w, "2020-06-12");
    assert_ne!(std::fs::read(&form).unwrap(), before, "closed: rewritten");
}

#[test]
fn no_forms_when_disabled() {
    let on = "[forms]\nenabled = true";
    assert!(REFERENCE_PLAN.contains(on));
    let plan = REFERENCE_PLAN.replace(on, "[forms]\nenabled = false");
    let w = Workdir::with_plan(&plan);
    rebuild(&w, "2020-06-10");
    assert!(UNITS.iter().all(|u| !form_dir(&w, u).exists()));
}

#[test]
fn the_daemon_keeps_the_form_and_never_takes_it_as_a_return() {
    let w = workdir_taking_at_once();
    // A start with nothing dropped: the form of the month due (May, on 3 June) is written.
    let out = watch_once(&w, "2020-06-03T10:00:00");
    assert!(out.contains("已采用 0 份，退回 0 份"), "{out}");
    for unit in UNITS {
        assert_eq!(
            w.files_in(form_dir(&w, unit)),
            [form_name(unit, 2020, 5)],
            "{unit}"
        );
    }
    // A clerk drops a filled copy into the unit's folder; the form itself stays and is not
    // taken, and the next round takes nothing more.
    let people = [Person::new(3, "企业主要负责人", "2020-05-06")];
    drop_return(
        &w.unit_dir("浦沿街道"),
        "五月.xlsx",
        &return_xlsx("浦沿街道", "2020-05", &people),
    );
    let out = watch_once(&w, "2020-06-03T10:00:00");
    assert!(out.contains("已采用 1 份，退回 0 份"), "{out}");
    let out = watch_once(&w, "2020-06-03T10:00:00");
    assert!(out.contains("已采用 0 份，退回 0 份"), "{out}");
    assert!(
        form_dir(&w, "浦沿街道")
            .join(form_name("浦沿街道", 2020, 5))
            .is_file()
    );
    // A new month: the daemon brings June's form.
    watch_once(&w, "2020-07-01T08:00:00");
    assert_eq!(
        w.files_in(form_dir(&w, "西兴街道")),
        [form_name("西兴街道", 2020, 6)]
    );
}
