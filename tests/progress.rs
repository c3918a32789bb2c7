//! Each unit's own progress workbook (本单位进度.xlsx), written by the real binary after an
//! intake and read back with calamine: its own figures and calendar row, its returns and open
//! findings, its roster — and no name or 身份证号 of any other unit.

mod common;

use calamine::{Data, Reader, Xlsx, open_workbook};
use common::*;

const P: &str = "企业主要负责人";

fn ingest(w: &Workdir, unit: &str, name: &str, bytes: &[u8], now: &str, code: i32) {
    let p = drop_return(&w.join("incoming"), name, bytes);
    w.stdout(
        &["--now", now, "ingest", p.to_str().unwrap(), "--unit", unit],
        code,
    );
}

/// Every text cell of every sheet, by sheet.
fn sheets(path: &std::path::Path) -> Vec<(String, Vec<Vec<String>>)> {
    let mut book: Xlsx<_> = open_workbook(path).unwrap();
    let names = book.sheet_names().to_vec();
    names
        .into_iter()
        .map(|name| {
            let range = book.worksheet_range(&name).unwrap();
            let rows = range
                .rows()
                .map(|r| {
                    r.iter()
                        .map(|c| match c {
                            Data::Empty => String::new(),
                            other => other.to_string(),
                        })
                        .collect()
                })
                .collect();
            (name, rows)
        })
        .collect()
}

fn all_text(sheets: &[(String, Vec<Vec<String>>)]) -> String {
    let mut out = String::new();
    for (name, rows) in sheets {
        out.push_str(name);
        for r in rows {
            out.push('\n');
            out.push_str(&r.join("\t"));
        }
        out.push('\n');
    }
    out
}

#[test]
fn a_unit_sees_its_own_standing_and_nothing_of_any_other_unit() {
    let w = Workdir::new();
    let xixing = [
        Person::new(1, P, "2020-05-06"),
        Person::new(2, P, "2020-05-07"),
    ];
    let changhe = [Person::new(3, P, "2020-05-06")];
    // 西兴: May on time (due 5 June), June late (due Monday 6 July, received 8 July).
    ingest(
        &w,
        "西兴街道",
        "五月.xlsx",
        &return_xlsx("西兴街道", "2020-05", &xixing),
        "2020-06-03T10:00:00",
        0,
    );
    ingest(
        &w,
        "西兴街道",
        "六月.xlsx",
        &return_xlsx("西兴街道", "2020-06", &[Person::new(4, P, "2020-06-10")]),
        "2020-07-08T10:00:00",
        0,
    );
    // A rejected April return: the ID of its only person is wrong.
    let mut bad = Person::new(5, P, "2020-04-10");
    bad.id = "330106199001011234".into();
    ingest(
        &w,
        "西兴街道",
        "四月.xlsx",
        &return_xlsx("西兴街道", "2020-04", &[bad]),
        "2020-07-08T11:00:00",
        1,
    );
    ingest(
        &w,
        "长河街道",
        "长河五月.xlsx",
        &return_xlsx("长河街道", "2020-05", &changhe),
        "2020-06-04T10:00:00",
        0,
    );

    let path = w.unit_dir("西兴街道").join("本单位进度.xlsx");
    assert!(path.is_file(), "written after the intake");
    let sheets = sheets(&path);
    let names: Vec<&str> = sheets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["本单位进度", "报送日历", "报送记录", "待改问题", "培训台账"]
    );
    let text = all_text(&sheets);

    // Its figures: 3 principals counted (two in May, one in June).
    let summary = &sheets[0].1;
    let principal = summary.iter().find(|r| r[0] == P).unwrap();
    assert_eq!(principal[1], "70");
    assert_eq!(principal[2], "3");

    // Its calendar row: April rejected, May on time, June late by 2 days.
    let months = &sheets[1].1;
    let state = |label: &str| months.iter().find(|r| r[0] == label).unwrap()[1].clone();
    assert_eq!(state("2020年4月"), "退回待改");
    assert_eq!(state("2020年5月"), "按时");
    assert_eq!(state("2020年6月"), "逾期2天");
    assert_eq!(state("2020年3月"), "未报");
    assert_eq!(state("2020年8月"), "未到期");
    let june = months.iter().find(|r| r[0] == "2020年6月").unwrap();
    assert_eq!(
        june[2], "2020-07-06",
        "the deadline moved off Sunday 5 July"
    );

    // Every return it sent, and the open finding of the rejected one.
    for file in ["五月.xlsx", "六月.xlsx", "四月.xlsx"] {
        assert!(text.contains(file), "{file} listed:\n{text}");
    }
    assert!(
        sheets[3]
            .1
            .iter()
            .any(|r| r.iter().any(|c| c == "id-invalid")),
        "{text}"
    );

    // Its roster, IDs masked by default.
    let roster = &sheets[4].1;
    assert_eq!(roster.len(), 1 + 3, "header and three counted people");
    let id = &roster[1][2];
    assert!(id.contains("********"), "masked: {id}");

    // Nothing of any other unit: not its name, not its people's IDs (in any form).
    for other in ["长河街道", "浦沿街道", "江北科技园", "长河五月"] {
        assert!(
            !text.contains(other),
            "{other} in 西兴街道's workbook:\n{text}"
        );
    }
    let changhe_id = valid_id(3);
    let masked = format!("{}********{}", &changhe_id[..6], &changhe_id[14..]);
    assert!(
        !text.contains(&changhe_id) && !text.contains(&masked),
        "{text}"
    );
    assert!(text.contains(&format!(
        "{}********{}",
        &valid_id(1)[..6],
        &valid_id(1)[14..]
    )));

    // The other unit has its own.
    let theirs = all_text(&sheets_of(&w, "长河街道"));
    assert!(
        theirs.contains("长河五月.xlsx") && !theirs.contains("五月.xlsx\t2020年5月\t2020-06-03")
    );
    assert!(!theirs.contains("西兴街道"), "{theirs}");
}

fn sheets_of(w: &Workdir, unit: &str) -> Vec<(String, Vec<Vec<String>>)> {
    sheets(&w.unit_dir(unit).join("本单位进度.xlsx"))
}

#[test]
fn full_ids_by_setting_and_a_workbook_held_open_is_left_alone() {
    let plan = REFERENCE_PLAN.replace("ids = \"masked\"", "ids = \"full\"");
    assert_ne!(plan, REFERENCE_PLAN);
    let w = Workdir::with_plan(&plan);
    let people = [Person::new(7, P, "2020-05-06")];
    ingest(
        &w,
        "浦沿街道",
        "a.xlsx",
        &return_xlsx("浦沿街道", "2020-05", &people),
        "2020-06-03T10:00:00",
        0,
    );
    let path = w.unit_dir("浦沿街道").join("本单位进度.xlsx");
    let roster = &sheets(&path)[4].1;
    assert_eq!(roster[1][2], valid_id(7), "as the unit typed it");

    // A clerk opens it in Excel: its lock file appears beside it, and the next intake leaves
    // the workbook as it is.
    let before = std::fs::read(&path).unwrap();
    std::fs::write(w.unit_dir("浦沿街道").join("~$本单位进度.xlsx"), b"lock").unwrap();
    let more = [Person::new(8, P, "2020-06-06")];
    ingest(
        &w,
        "浦沿街道",
        "b.xlsx",
        &return_xlsx("浦沿街道", "2020-06", &more),
        "2020-07-03T10:00:00",
        0,
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "not rewritten while open"
    );
    std::fs::remove_file(w.unit_dir("浦沿街道").join("~$本单位进度.xlsx")).unwrap();
    w.stdout(&["--now", "2020-07-03T11:00:00", "rebuild"], 0);
    assert_eq!(sheets(&path)[4].1.len(), 1 + 2, "rewritten once closed");
    // No temporary file is left beside it.
    let litter: Vec<String> = w
        .files_in(w.unit_dir("浦沿街道"))
        .into_iter()
        .filter(|n| n.contains(".tally-") || n.ends_with(".tmp"))
        .collect();
    assert!(litter.is_empty(), "{litter:?}");
    // The same ledger and `--now` give the same bytes, a second later too (the workbook is
    // dated `--now`, not by the wall clock).
    let first = std::fs::read(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    w.stdout(&["--now", "2020-07-03T11:00:00", "rebuild"], 0);
    assert!(
        std::fs::read(&path).unwrap() == first,
        "rebuilt byte for byte"
    );
}

#[test]
fn the_daemon_writes_it_after_a_burst_and_never_takes_it_as_a_return() {
    let w = workdir_taking_at_once();
    let people = [Person::new(9, P, "2020-05-06")];
    drop_return(
        &w.unit_dir("江北科技园"),
        "2020-05.xlsx",
        &return_xlsx("江北科技园", "2020-05", &people),
    );
    let out = watch_once(&w, "2020-06-03T10:00:00");
    assert!(out.contains("已采用 1 份"), "{out}");
    let path = w.unit_dir("江北科技园").join("本单位进度.xlsx");
    assert!(path.is_file(), "written after the burst");
    // A second round sees the workbook in the unit's folder and leaves it there.
    let out = watch_once(&w, "2020-06-03T10:00:00");
    assert!(out.contains("已采用 0 份，退回 0 份"), "{out}");
    assert!(path.is_file());
    assert!(w.files_in(w.unit_dir("江北科技园").join("退回")).is_empty());
    let status = w.json(&["--now", "2020-06-03T10:00:00", "status", "--json"], 0);
    let months = status["units"][3]["months"].as_array().unwrap();
    assert_eq!(months[4]["file"], "2020-05.xlsx");
}

/// With the roster per unit, `tally rebuild` writes each unit's progress workbook from the rows
/// it reads for the unit's roster workbook: both hold the unit's rows, and the progress
/// workbook is stamped, so an intake of another unit that day leaves it as it is.
#[test]
fn a_rebuild_with_rosters_per_unit_writes_the_progress_workbook_from_the_same_rows() {
    let w =
        Workdir::with_plan(&REFERENCE_PLAN.replace("roster = \"auto\"", "roster = \"per-unit\""));
    let may: Vec<Person> = (1..4).map(|i| Person::new(i, P, "2020-05-06")).collect();
    let june: Vec<Person> = (4..6).map(|i| Person::new(i, P, "2020-06-06")).collect();
    let unit = "浦沿街道";
    ingest(
        &w,
        unit,
        "a.xlsx",
        &return_xlsx(unit, "2020-05", &may),
        "2020-07-02T09:00:00",
        0,
    );
    ingest(
        &w,
        unit,
        "b.xlsx",
        &return_xlsx(unit, "2020-06", &june),
        "2020-07-02T09:30:00",
        0,
    );
    let path = w.unit_dir(unit).join("本单位进度.xlsx");
    // A day later: every unit's workbook is due again.
    w.stdout(&["--now", "2020-07-03T10:00:00", "rebuild"], 0);

    let progress = &sheets(&path)[4].1;
    let roster_path = w
        .join("output")
        .join(tally::master::ROSTER_DIR)
        .join(format!("{unit}.xlsx"));
    let roster = &sheets(&roster_path)[0].1;
    assert_eq!(progress.len(), 1 + 5, "header and the unit's rows");
    assert_eq!(roster.len(), 1 + 5);
    // 姓名: column B of the progress roster, D of the roster workbook; in ledger order.
    let names = |rows: &[Vec<String>], col: usize| -> Vec<String> {
        rows[1..].iter().map(|r| r[col].clone()).collect()
    };
    assert_eq!(names(progress, 1), names(roster, 3));

    let before = std::fs::read(&path).unwrap();
    let other = [Person::new(9, P, "2020-06-06")];
    ingest(
        &w,
        "西兴街道",
        "c.xlsx",
        &return_xlsx("西兴街道", "2020-06", &other),
        "2020-07-03T11:00:00",
        0,
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        before,
        "stamped by the rebuild: left as it is"
    );
}
