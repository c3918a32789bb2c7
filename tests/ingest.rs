//! End-to-end tests of `tally ingest` and `tally status` on the real binary and real files.

mod common;

use common::*;
use serde_json::Value;

const P: &str = "企业主要负责人";
const M: &str = "安全生产管理人员";
const O: &str = "其他从业人员";

fn completed(status: &Value, unit: &str, category: &str) -> u64 {
    let u = status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == unit)
        .unwrap();
    let c = u["categories"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["category"] == category)
        .unwrap();
    c["completed"].as_u64().unwrap()
}

fn unit<'a>(status: &'a Value, name: &str) -> &'a Value {
    status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == name)
        .unwrap()
}

fn ingest(w: &Workdir, unit: &str, name: &str, bytes: &[u8], now: &str, code: i32) -> String {
    let dir = w.join("incoming");
    let p = drop_return(&dir, name, bytes);
    w.stdout(
        &["--now", now, "ingest", p.to_str().unwrap(), "--unit", unit],
        code,
    )
}

#[test]
fn an_accepted_return_is_counted_archived_and_moved() {
    let w = Workdir::new();
    let people = vec![
        Person::new(1, P, "2020-05-06"),
        Person::new(2, M, "2020-05-07"),
        Person::new(3, O, "2020-05-08"),
    ];
    let src = drop_return(
        &w.unit_dir("西兴街道"),
        "2020-05.xlsx",
        &return_xlsx("西兴街道", "2020-05", &people),
    );
    let out = w.stdout(
        &[
            "--now",
            "2020-06-02",
            "ingest",
            src.to_str().unwrap(),
            "--unit",
            "西兴街道",
        ],
        0,
    );
    assert!(out.contains("accepted"), "{out}");
    assert!(!src.exists(), "the dropped file is moved");
    assert_eq!(w.files_in("watch-dirs/西兴街道/已接收"), ["2020-05.xlsx"]);
    let archived = w.files_in("archive/西兴街道/2020-05");
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert!(archived[0].ends_with("2020-05.xlsx"));
    let s = w.json(&["--now", "2020-06-02", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 1);
    assert_eq!(completed(&s, "西兴街道", M), 1);
    assert_eq!(completed(&s, "西兴街道", O), 1);
    assert_eq!(completed(&s, "长河街道", P), 0);
}

#[test]
fn the_same_bytes_twice_count_once() {
    let w = Workdir::new();
    let bytes = return_xlsx("西兴街道", "2020-05", &[Person::new(1, P, "2020-05-06")]);
    ingest(&w, "西兴街道", "a.xlsx", &bytes, "2020-06-02", 0);
    let out = ingest(&w, "西兴街道", "a.xlsx", &bytes, "2020-06-03", 0);
    assert!(out.contains("duplicate") && out.contains("重复"), "{out}");
    assert_eq!(
        w.files_in("watch-dirs/西兴街道/已接收"),
        ["a (2).xlsx", "a.xlsx"]
    );
    let s = w.json(&["--now", "2020-06-03", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 1);
}

#[test]
fn a_resubmission_supersedes_the_earlier_return_of_the_month() {
    let w = Workdir::new();
    let first = return_xlsx(
        "西兴街道",
        "2020-05",
        &[
            Person::new(1, P, "2020-05-06"),
            Person::new(2, P, "2020-05-06"),
        ],
    );
    let second = return_xlsx("西兴街道", "2020-05", &[Person::new(3, P, "2020-05-06")]);
    ingest(&w, "西兴街道", "2020-05.xlsx", &first, "2020-06-02", 0);
    let s = w.json(&["--now", "2020-06-02", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 2);
    ingest(&w, "西兴街道", "2020-05.xlsx", &second, "2020-06-03", 0);
    let s = w.json(&["--now", "2020-06-03", "status", "--json"], 0);
    assert_eq!(
        completed(&s, "西兴街道", P),
        1,
        "only the newer return counts"
    );
    // Both stay on record: two files in 已接收/, two archive copies.
    assert_eq!(
        w.files_in("watch-dirs/西兴街道/已接收"),
        ["2020-05 (2).xlsx", "2020-05.xlsx"]
    );
    assert_eq!(w.files_in("archive/西兴街道/2020-05").len(), 2);
}

#[test]
fn a_nil_return_stops_the_month_from_being_missing() {
    let w = Workdir::new();
    let s = w.json(&["--now", "2020-02-06", "status", "--json"], 0);
    assert_eq!(
        unit(&s, "西兴街道")["missing_months"],
        serde_json::json!(["2020-01"])
    );
    ingest(
        &w,
        "西兴街道",
        "2020-01.xlsx",
        &return_xlsx("西兴街道", "2020-01", &[]),
        "2020-02-06",
        0,
    );
    let s = w.json(&["--now", "2020-02-06", "status", "--json"], 0);
    assert_eq!(
        unit(&s, "西兴街道")["missing_months"],
        serde_json::json!([])
    );
    assert_eq!(
        unit(&s, "长河街道")["missing_months"],
        serde_json::json!(["2020-01"])
    );
}

#[test]
fn a_failed_person_is_not_counted() {
    let w = Workdir::new();
    let bytes = return_xlsx(
        "西兴街道",
        "2020-05",
        &[
            Person::new(1, P, "2020-05-06").failed(),
            Person::new(2, P, "2020-05-06"),
        ],
    );
    ingest(&w, "西兴街道", "a.xlsx", &bytes, "2020-06-02", 0);
    let s = w.json(&["--now", "2020-06-02", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 1);
}

#[test]
fn persons_count_once_across_months_and_person_times_twice() {
    for (rule, expected) in [("persons", 1), ("person-times", 2)] {
        let plan = REFERENCE_PLAN.replacen(
            "name = \"企业主要负责人\"\naliases = [\"主要负责人\"]\ncounting = \"persons\"",
            &format!(
                "name = \"企业主要负责人\"\naliases = [\"主要负责人\"]\ncounting = \"{rule}\""
            ),
            1,
        );
        assert!(plan.contains(&format!(
            "name = \"企业主要负责人\"\naliases = [\"主要负责人\"]\ncounting = \"{rule}\""
        )));
        let w = Workdir::with_plan(&plan);
        ingest(
            &w,
            "西兴街道",
            "05.xlsx",
            &return_xlsx("西兴街道", "2020-05", &[Person::new(1, P, "2020-05-06")]),
            "2020-07-01",
            0,
        );
        let out = ingest(
            &w,
            "西兴街道",
            "06.xlsx",
            &return_xlsx("西兴街道", "2020-06", &[Person::new(1, P, "2020-06-06")]),
            "2020-07-01",
            0,
        );
        assert!(
            out.contains("提醒 1 处"),
            "double-reported warning expected: {out}"
        );
        let s = w.json(&["--now", "2020-07-01", "status", "--json"], 0);
        assert_eq!(completed(&s, "西兴街道", P), expected, "{rule}");
    }
}

#[test]
fn a_person_in_two_units_is_flagged_and_counted_by_each() {
    let w = Workdir::new();
    ingest(
        &w,
        "西兴街道",
        "a.xlsx",
        &return_xlsx("西兴街道", "2020-05", &[Person::new(1, P, "2020-05-06")]),
        "2020-06-02",
        0,
    );
    let out = ingest(
        &w,
        "长河街道",
        "b.xlsx",
        &return_xlsx("长河街道", "2020-05", &[Person::new(1, P, "2020-05-07")]),
        "2020-06-02",
        0,
    );
    assert!(out.contains("提醒 1 处"), "{out}");
    let s = w.json(&["--now", "2020-06-02", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 1);
    assert_eq!(completed(&s, "长河街道", P), 1);
}

#[test]
fn status_before_and_after_a_deadline() {
    let w = Workdir::new();
    for m in 1..=4 {
        let month = format!("2020-{m:02}");
        ingest(
            &w,
            "西兴街道",
            &format!("{month}.xlsx"),
            &return_xlsx("西兴街道", &month, &[]),
            "2020-06-01",
            0,
        );
    }
    // May's return is due by the end of 5 June.
    let s = w.json(
        &["--now", "2020-06-05T23:59:59+08:00", "status", "--json"],
        0,
    );
    assert_eq!(
        unit(&s, "西兴街道")["missing_months"],
        serde_json::json!([])
    );
    let s = w.json(&["--now", "2020-06-06", "status", "--json"], 0);
    assert_eq!(
        unit(&s, "西兴街道")["missing_months"],
        serde_json::json!(["2020-05"])
    );
    assert_eq!(unit(&s, "西兴街道")["lagging"], true);
}

#[test]
fn status_json_has_the_design_shape() {
    let w = Workdir::new();
    let people: Vec<Person> = (0..12)
        .map(|i| Person::new(100 + i, P, "2020-05-10"))
        .collect();
    ingest(
        &w,
        "西兴街道",
        "a.xlsx",
        &return_xlsx("西兴街道", "2020-05", &people),
        "2020-06-02",
        0,
    );
    let s = w.json(&["--now", "2020-07-01", "status", "--json"], 0);
    assert_eq!(s["as_of"], "2020-07-01T00:00:00+08:00");
    assert_eq!(s["year"], 2020);
    assert!(s["plan"].as_str().unwrap().contains("2020"));
    let x = unit(&s, "西兴街道");
    assert_eq!(
        x["missing_months"],
        serde_json::json!(["2020-01", "2020-02", "2020-03", "2020-04"])
    );
    let c = &x["categories"][0];
    assert_eq!(c["category"], P);
    assert_eq!(c["target"], 70);
    assert_eq!(c["completed"], 12);
    assert_eq!(c["expected"], 34.8);
    assert_eq!(c["lagging"], true);
}

#[test]
fn a_rejected_return_goes_to_tui_hui_with_its_feedback_and_counts_nothing() {
    let w = Workdir::new();
    let mut bad = Person::new(1, P, "2020-05-06");
    bad.id
        .replace_range(17..18, if bad.id.ends_with('1') { "2" } else { "1" });
    let bytes = return_xlsx(
        "西兴街道",
        "2020-05",
        &[bad, Person::new(2, P, "2020-05-06")],
    );
    let out = ingest(&w, "西兴街道", "2020-05.xlsx", &bytes, "2020-06-02", 1);
    assert!(out.contains("rejected"), "{out}");
    assert_eq!(
        w.files_in("watch-dirs/西兴街道/退回"),
        ["2020-05.xlsx", "2020-05.错误说明.xlsx"]
    );
    let s = w.json(&["--now", "2020-06-02", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 0);
    // A second rejected file of the same name never overwrites the first.
    let mut bad2 = Person::new(3, P, "2020-05-06");
    bad2.date = "五月".into();
    ingest(
        &w,
        "西兴街道",
        "2020-05.xlsx",
        &return_xlsx("西兴街道", "2020-05", &[bad2]),
        "2020-06-03",
        1,
    );
    assert_eq!(
        w.files_in("watch-dirs/西兴街道/退回"),
        [
            "2020-05 (2).xlsx",
            "2020-05 (2).错误说明.xlsx",
            "2020-05.xlsx",
            "2020-05.错误说明.xlsx"
        ]
    );
}

#[test]
fn rejected_bytes_sent_again_are_checked_again() {
    // A rejection may have had a passing cause (a reader crash, a month not yet begun):
    // the same bytes are checked anew, never waved through as "already received".
    let w = Workdir::new();
    let bytes = return_xlsx("西兴街道", "2020-07", &[Person::new(1, P, "2020-07-01")]);
    let out = ingest(&w, "西兴街道", "r.xlsx", &bytes, "2020-06-30", 1);
    assert!(out.contains("rejected"), "period-future: {out}");
    let out = ingest(&w, "西兴街道", "r.xlsx", &bytes, "2020-07-02", 0);
    assert!(out.contains("accepted"), "{out}");
    assert_eq!(w.files_in("watch-dirs/西兴街道/已接收"), ["r.xlsx"]);
    assert_eq!(
        w.files_in("watch-dirs/西兴街道/退回"),
        ["r.xlsx", "r.错误说明.xlsx"]
    );
    let s = w.json(&["--now", "2020-07-02", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 1);
}

#[test]
fn an_older_return_sent_again_after_a_newer_one_counts_again() {
    // A, then B for the same month, then A again: the clerk means A. It is taken anew (not a
    // duplicate of bytes that no longer count) and supersedes B; nothing counts twice.
    let w = Workdir::new();
    let a = return_xlsx(
        "西兴街道",
        "2020-05",
        &[
            Person::new(1, P, "2020-05-06"),
            Person::new(2, P, "2020-05-06"),
        ],
    );
    let b = return_xlsx("西兴街道", "2020-05", &[Person::new(3, P, "2020-05-06")]);
    ingest(&w, "西兴街道", "a.xlsx", &a, "2020-06-02", 0);
    ingest(&w, "西兴街道", "b.xlsx", &b, "2020-06-03", 0);
    let out = ingest(&w, "西兴街道", "a.xlsx", &a, "2020-06-04", 0);
    assert!(out.contains("accepted"), "{out}");
    let s = w.json(&["--now", "2020-06-04", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 2);
    // And the same A once more is now a duplicate.
    let out = ingest(&w, "西兴街道", "a.xlsx", &a, "2020-06-05", 0);
    assert!(out.contains("duplicate"), "{out}");
}

#[test]
fn a_drop_replaced_before_its_move_is_not_moved_under_the_old_record() {
    // Simulate a crash after the ledger transaction: record, then replace the dropped file
    // with a corrected one before the move is finished.
    let w = Workdir::new();
    in_process(&w, |ctx, ledger| take_replaced_before_move(&w, ctx, ledger));
}

/// Intake called in this process (no mail composed) on the workdir's plan and ledger, at
/// 2020-06-02.
fn in_process(
    w: &Workdir,
    f: impl FnOnce(&tally::intake::IntakeContext<'_>, &mut tally::ledger::Ledger),
) {
    let config_path = w.join("tally.toml");
    let config = tally::config::Config::load(&config_path).unwrap();
    let compose = |_: &tally::ledger::Ledger,
                   _: &tally::ledger::Submission,
                   _: &[tally::core::findings::Finding]| Vec::new();
    let ctx = tally::intake::IntakeContext {
        config: &config,
        plan: &std::sync::Arc::new(config.plan.clone()),
        config_path: &config_path,
        exe: std::path::Path::new(BIN),
        now: tally::core::calendar::parse_now("2020-06-02", config.plan.tz).unwrap(),
        compose: &compose,
    };
    let mut ledger = tally::ledger::Ledger::open(&config.state_path()).unwrap();
    f(&ctx, &mut ledger);
}

fn take_replaced_before_move(
    w: &Workdir,
    ctx: &tally::intake::IntakeContext<'_>,
    ledger: &mut tally::ledger::Ledger,
) {
    use tally::intake;
    let unit = ctx.config.plan.find_unit("西兴街道").unwrap();
    let drop = w.unit_dir("西兴街道").join("may.xlsx");
    // Block the move by making 已接收 a file, so the intake stops after recording.
    std::fs::write(w.unit_dir("西兴街道").join("已接收"), b"not a folder").unwrap();
    std::fs::write(
        &drop,
        return_xlsx("西兴街道", "2020-05", &[Person::new(1, P, "2020-05-06")]),
    )
    .unwrap();
    assert!(intake::ingest(ctx, ledger, unit, &drop).is_err());
    std::fs::remove_file(w.unit_dir("西兴街道").join("已接收")).unwrap();
    // The clerk replaces the file; the next run must not move it under the old record.
    let corrected = return_xlsx(
        "西兴街道",
        "2020-05",
        &[
            Person::new(1, P, "2020-05-06"),
            Person::new(2, P, "2020-05-06"),
        ],
    );
    std::fs::write(&drop, &corrected).unwrap();
    intake::resume_pending(ctx, ledger, None).unwrap();
    assert!(drop.exists(), "the replaced file stays for its own intake");
    let out = intake::ingest(ctx, ledger, unit, &drop).unwrap();
    assert_eq!(
        out.submission.status,
        tally::ledger::SubmissionStatus::Accepted
    );
    let counted = ledger.counted_rows().unwrap();
    assert_eq!(
        counted.len(),
        2,
        "the corrected return counts, the first is superseded"
    );
}

#[test]
fn a_group_of_files_is_moved_only_once_its_records_are_durable() {
    // A burst records several files, then makes their records durable with one wait and
    // moves them; a stop before the moves loses none and counts none twice.
    let w = Workdir::new();
    in_process(&w, |ctx, ledger| {
        use tally::intake;
        ledger.defer_durability();
        let unit = ctx.config.plan.find_unit("西兴街道").unwrap();
        let mut group = Vec::new();
        for (i, month) in ["2020-03", "2020-04", "2020-05"].into_iter().enumerate() {
            let drop = w.unit_dir("西兴街道").join(format!("{month}.xlsx"));
            let day = format!("{month}-06");
            std::fs::write(
                &drop,
                return_xlsx("西兴街道", month, &[Person::new(i as u32 + 1, P, &day)]),
            )
            .unwrap();
            let recorded = intake::record(ctx, ledger, unit, &drop, None).unwrap();
            assert!(drop.exists(), "recorded, not moved yet");
            assert!(!ledger.records_durable(), "the record waits for its group");
            group.push((drop, recorded));
        }
        assert_eq!(ledger.unmoved().unwrap().len(), 3);
        // The last is left as a stop before its move would leave it.
        let (last_drop, last) = group.pop().unwrap();
        for (drop, recorded) in group {
            let out = intake::complete(ctx, ledger, recorded).unwrap();
            assert!(ledger.records_durable(), "made durable before the move");
            assert!(!drop.exists());
            assert!(std::path::Path::new(&out.submission.destination).exists());
        }
        std::mem::drop(last);
        assert!(last_drop.exists());
        intake::resume_pending(ctx, ledger, None).unwrap();
        assert!(!last_drop.exists(), "the next start moves it");
        assert!(ledger.unmoved().unwrap().is_empty());
        assert_eq!(ledger.counted_rows().unwrap().len(), 3, "each counted once");
    });
}

#[test]
fn the_feedback_workbook_marks_the_offending_cell() {
    use calamine::Reader;
    let w = Workdir::new();
    let mut bad = Person::new(1, P, "2020-05-06");
    bad.result = "通过".into();
    ingest(
        &w,
        "西兴街道",
        "r.xlsx",
        &return_xlsx(
            "西兴街道",
            "2020-05",
            &[Person::new(2, P, "2020-05-06"), bad],
        ),
        "2020-06-02",
        1,
    );
    let fb = w.join("watch-dirs/西兴街道/退回/r.错误说明.xlsx");
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&fb).unwrap();
    let names = wb.sheet_names();
    assert_eq!(names[0], "错误说明");
    assert!(names.contains(&"培训台账".to_string()), "{names:?}");
    let summary = wb.worksheet_range("错误说明").unwrap();
    let text: Vec<String> = summary
        .rows()
        .flat_map(|r| r.iter().map(|c| c.to_string()))
        .collect();
    assert!(
        text.iter().any(|t| t == "I3"),
        "the finding names cell I3: {text:?}"
    );
    assert!(
        text.iter().any(|t| t.contains("result-invalid")),
        "{text:?}"
    );
    let roster = wb.worksheet_range("培训台账").unwrap();
    assert_eq!(
        roster.get_value((2, 8)).map(|v| v.to_string()),
        Some("通过".to_string())
    );
    // The comment on I3 carries the code and how to fix it.
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&fb).unwrap()).unwrap();
    let mut comments = String::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        if f.name().map(|n| n.contains("comments")).unwrap_or(false) {
            std::io::Read::read_to_string(&mut f, &mut comments).unwrap();
        }
    }
    assert!(
        comments.contains("result-invalid") && comments.contains("合格"),
        "{comments}"
    );
    assert!(comments.contains("ref=\"I3\""), "{comments}");
}

#[test]
fn recorded_paths_are_absolute_even_with_a_relative_config() {
    // Destinations and feedback paths stored in the ledger must resolve from any folder
    // (mail attachments are read later, by whatever process sends them).
    let w = Workdir::new();
    let mut bad = Person::new(1, P, "2020-05-06");
    bad.result = "通过".into();
    let p = drop_return(
        &w.unit_dir("西兴街道"),
        "r.xlsx",
        &return_xlsx("西兴街道", "2020-05", &[bad]),
    );
    let out = std::process::Command::new(BIN)
        .current_dir(w.path())
        .args(["--config", "tally.toml", "--now", "2020-06-02", "ingest"])
        .arg(p.strip_prefix(w.path()).unwrap())
        .args(["--unit", "西兴街道"])
        .env("RUST_LOG", "tally=warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    let dest = stdout
        .split("→ ")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim();
    assert!(std::path::Path::new(dest).is_absolute(), "{stdout}");
    let feedback = stdout
        .split("错误说明：")
        .nth(1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .trim();
    assert!(std::path::Path::new(feedback).is_absolute(), "{stdout}");
    assert!(std::path::Path::new(feedback).exists());
}

/// A read started ahead on a dropped file (the daemon's, while it records the file before)
/// stands for the file only when the child read the very bytes intake stages: a file replaced
/// after its read began is read again, and what counts is the replacement.
#[test]
fn a_read_ahead_counts_only_for_the_bytes_it_read() {
    let w = Workdir::new();
    in_process(&w, |ctx, ledger| take_read_ahead(&w, ctx, ledger));
    let s = w.json(&["--now", "2020-06-02", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 4);
}

fn take_read_ahead(
    w: &Workdir,
    ctx: &tally::intake::IntakeContext<'_>,
    ledger: &mut tally::ledger::Ledger,
) {
    use tally::intake;
    use tally::read::Reading;
    let unit = ctx.config.plan.find_unit("西兴街道").unwrap();
    let read_ahead = |path: &std::path::Path| {
        let r = Reading::start(ctx.exe, Some(ctx.config_path), path, &ctx.config.limits);
        let ahead = intake::Ahead::start(ctx.config, path, r);
        // Let the child finish its read of what is there now, and the staging its copy.
        std::thread::sleep(std::time::Duration::from_millis(300));
        ahead
    };

    // Unchanged: the answer read ahead is the return taken in.
    let april = w.unit_dir("西兴街道").join("april.xlsx");
    std::fs::write(
        &april,
        return_xlsx("西兴街道", "2020-04", &[Person::new(1, P, "2020-04-06")]),
    )
    .unwrap();
    let ahead = read_ahead(&april);
    let out = intake::ingest_read_ahead(ctx, ledger, unit, &april, ahead).unwrap();
    assert_eq!(out.submission.rows, 1);

    // Replaced after its read began: the replacement (three people) counts, not the one read.
    let may = w.unit_dir("西兴街道").join("may.xlsx");
    std::fs::write(
        &may,
        return_xlsx("西兴街道", "2020-05", &[Person::new(2, P, "2020-05-06")]),
    )
    .unwrap();
    let ahead = read_ahead(&may);
    std::fs::write(
        &may,
        return_xlsx(
            "西兴街道",
            "2020-05",
            &[
                Person::new(3, P, "2020-05-06"),
                Person::new(4, P, "2020-05-06"),
                Person::new(5, P, "2020-05-06"),
            ],
        ),
    )
    .unwrap();
    let out = intake::ingest_read_ahead(ctx, ledger, unit, &may, ahead).unwrap();
    assert_eq!(out.submission.rows, 3, "{:?}", out.submission);
}

/// A file read ahead is checked as soon as it is read (beside the recording of the file
/// before it); intake takes that check for the very unit and day it was made for, and checks
/// again otherwise. Here the check made ahead allows no roster row at all, so where it is
/// taken the return is refused, and where it is not the return counts.
#[test]
fn a_check_made_ahead_counts_only_for_its_unit_and_day() {
    let w = Workdir::new();
    in_process(&w, |ctx, ledger| take_prechecked(&w, ctx, ledger));
}

fn take_prechecked(
    w: &Workdir,
    ctx: &tally::intake::IntakeContext<'_>,
    ledger: &mut tally::ledger::Ledger,
) {
    use tally::intake;
    use tally::ledger::SubmissionStatus;
    use tally::read::{Precheck, Reading};
    let plan = std::sync::Arc::new(ctx.config.plan.clone());
    let xixing = ctx.config.plan.find_unit("西兴街道").unwrap();
    let changhe = ctx.config.plan.find_unit("长河街道").unwrap();
    let yesterday = tally::core::calendar::parse_now("2020-06-01", ctx.config.plan.tz).unwrap();
    let mut take = |month: &str, unit: &tally::core::plan::Unit, now| {
        let path = w.unit_dir("西兴街道").join(format!("{month}.xlsx"));
        let day = format!("{month}-06");
        std::fs::write(
            &path,
            return_xlsx(
                "西兴街道",
                month,
                &[Person::new(month.len() as u32, P, &day)],
            ),
        )
        .unwrap();
        let ahead = Reading::start_checked(
            ctx.exe,
            Some(ctx.config_path),
            &path,
            &ctx.config.limits,
            Precheck {
                plan: plan.clone(),
                unit: unit.clone(),
                now,
                max_rows: 0,
            },
        );
        let ahead = intake::Ahead::start(ctx.config, &path, ahead);
        intake::ingest_read_ahead(ctx, ledger, xixing, &path, ahead)
            .unwrap()
            .submission
            .status
    };
    assert_eq!(take("2020-03", xixing, ctx.now), SubmissionStatus::Rejected);
    assert_eq!(
        take("2020-04", xixing, yesterday),
        SubmissionStatus::Accepted
    );
    assert_eq!(
        take("2020-05", changhe, ctx.now),
        SubmissionStatus::Accepted
    );
}

/// `tally ingest` of many returns reads them in readers that stay up for the next ones. A
/// return that crashes its reader, or holds it past the time limit, is judged alone: it is
/// refused with its own finding, and the returns after it are read anew and counted.
#[test]
fn a_return_that_fails_its_reader_in_a_burst_fails_alone() {
    assert!(REFERENCE_PLAN.contains("reader_seconds = 60"));
    let w =
        Workdir::with_plan(&REFERENCE_PLAN.replace("reader_seconds = 60", "reader_seconds = 2"));
    let dir = w.join("incoming");
    let files: Vec<String> = (1..=8u32)
        .map(|m| {
            let month = format!("2020-{m:02}");
            let name = format!("m{m:02}.xlsx");
            let people = [Person::new(100 + m, P, &format!("{month}-06"))];
            drop_return(&dir, &name, &return_xlsx("西兴街道", &month, &people))
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let mut args = vec!["-v", "--now", "2020-09-02", "ingest"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--unit", "西兴街道"]);
    let out = w
        .command(&args)
        .env("TALLY_FAULT_READER", "panic@m03,hang@m06")
        .env("RUST_LOG", "tally=debug")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let s = w.json(&["--now", "2020-09-02", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", P), 6, "{stderr}");
    let ledger = rusqlite::Connection::open(w.join("state/tally.db")).unwrap();
    let codes = |file: &str| -> Vec<String> {
        let mut stmt = ledger
            .prepare("SELECT f.code FROM findings f JOIN submissions s ON s.id = f.submission_id WHERE s.file_name = ?1")
            .unwrap();
        stmt.query_map([file], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    };
    assert_eq!(codes("m03.xlsx"), ["internal-error"]);
    assert_eq!(codes("m06.xlsx"), ["too-large"]);
    // At most three at once (the return taken and the two read ahead), and one more after
    // each failed read: never one for each return.
    let started = stderr.matches("reader started, to stay up").count();
    assert!(
        (1..=5).contains(&started),
        "{started} readers for 8 files: {stderr}"
    );
}

/// A large return's rows are written to the ledger while it is still being read (in runs of
/// 2,048): accepted, every row counts once; rejected by its last row, none of the rows
/// written before it stays; corrected, it counts in full.
#[test]
fn a_large_return_counts_once_and_a_late_error_leaves_none_of_its_rows() {
    let w = Workdir::new();
    let people = |from: u32| -> Vec<Person> {
        (from..from + 5_000)
            .map(|s| Person::new(s, O, "2020-05-06"))
            .collect()
    };
    let dropped = drop_return(
        &w.join("incoming"),
        "2020-05.xlsx",
        &return_xlsx("西兴街道", "2020-05", &people(0)),
    );
    let out = w
        .command(&[
            "--now",
            "2020-06-02",
            "ingest",
            dropped.to_str().unwrap(),
            "--unit",
            "西兴街道",
        ])
        .env("RUST_LOG", "tally=debug")
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{log}");
    assert!(
        log.contains("recording with the rows written ahead"),
        "the rows were written while the return was read: {log}"
    );

    let mut late = people(5_000);
    let last = late.last_mut().unwrap();
    last.id
        .replace_range(17..18, if last.id.ends_with('1') { "2" } else { "1" });
    let out = ingest(
        &w,
        "长河街道",
        "2020-05.xlsx",
        &return_xlsx("长河街道", "2020-05", &late),
        "2020-06-02",
        1,
    );
    assert!(out.contains("rejected"), "{out}");
    let s = w.json(&["--now", "2020-06-02", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", O), 5_000);
    assert_eq!(completed(&s, "长河街道", O), 0);
    let rows: i64 = rusqlite::Connection::open(w.join("state/tally.db"))
        .unwrap()
        .query_row("SELECT COUNT(*) FROM rows", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        rows, 5_000,
        "no row of the rejected return is in the ledger"
    );

    let out = ingest(
        &w,
        "长河街道",
        "2020-05 更正.xlsx",
        &return_xlsx("长河街道", "2020-05", &people(5_000)),
        "2020-06-03",
        0,
    );
    assert!(out.contains("accepted"), "{out}");
    let s = w.json(&["--now", "2020-06-03", "status", "--json"], 0);
    assert_eq!(completed(&s, "西兴街道", O), 5_000);
    assert_eq!(completed(&s, "长河街道", O), 5_000);
    // The read marks noted beside the ledger while the rows were written are in it now.
    assert!(!w.join("state/tally.db-read").exists());
}
