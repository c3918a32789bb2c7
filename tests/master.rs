//! End-to-end tests of the master workbook (`tally rebuild`, issue 4): the written file read back
//! cell by cell against `status --json`, its formulas, a recalculation in LibreOffice, the roster
//! split, text that looks like a formula, determinism, archived versions and a master held open.

mod common;

use calamine::{Data, Reader, Xlsx};
use common::*;
use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

const P: &str = "企业主要负责人";
const M: &str = "安全生产管理人员";
const O: &str = "其他从业人员";
const NOW: &str = "2020-07-01";
const SUMMARY: &str = tally::master::COMPLETION_SHEET;
/// First unit row of the summary table (zero-based), after title, subtitle and two header rows.
const FIRST: u32 = 4;

fn ingest(w: &Workdir, unit: &str, name: &str, bytes: &[u8], now: &str) -> String {
    let p = drop_return(&w.join("incoming"), name, bytes);
    let out = w.run(&["--now", now, "ingest", p.to_str().unwrap(), "--unit", unit]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "ingest {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One May return of 西兴街道 with `rows`, taken in on 2 June.
fn may_return(w: &Workdir, rows: &[Person]) {
    ingest(
        w,
        "西兴街道",
        "a.xlsx",
        &return_xlsx("西兴街道", "2020-05", rows),
        "2020-06-02",
    );
}

fn people(seeds: std::ops::Range<u32>, category: &str, date: &str) -> Vec<Person> {
    seeds.map(|s| Person::new(s, category, date)).collect()
}

/// A plausible half year: 长河街道 on schedule, 西兴街道 behind with a resubmission and a person
/// reported twice, 浦沿街道 missing two months plus a rejected return, 江北科技园 silent; a
/// person reported by two units, failed results, a duplicate file, formula-looking names.
fn realistic(w: &Workdir) {
    // 西兴街道: a nil return in January, then Feb–May; May is resubmitted.
    ingest(
        w,
        "西兴街道",
        "2020-01.xlsx",
        &return_xlsx("西兴街道", "2020-01", &[]),
        "2020-02-03",
    );
    let mut feb = people(0..10, P, "2020-02-10");
    feb.extend(people(10..22, M, "2020-02-11"));
    feb.extend(people(22..62, O, "2020-02-12"));
    ingest(
        w,
        "西兴街道",
        "2020-02.xlsx",
        &return_xlsx("西兴街道", "2020-02", &feb),
        "2020-03-02",
    );
    let mut mar = people(62..67, P, "2020-03-05");
    mar.extend(people(67..97, O, "2020-03-06"));
    mar.push(Person::new(97, O, "2020-03-06").failed());
    let mut formulaic = Person::new(98, O, "2020-03-07");
    formulaic.name = "=HYPERLINK(\"x\")".into();
    mar.push(formulaic);
    let mut plus = Person::new(99, O, "2020-03-07");
    plus.name = "+1".into();
    mar.push(plus);
    ingest(
        w,
        "西兴街道",
        "2020-03.xlsx",
        &return_xlsx("西兴街道", "2020-03", &mar),
        "2020-04-02",
    );
    // The same principal again in April: counted once, listed as a double.
    let apr = vec![
        Person::new(0, P, "2020-04-08"),
        Person::new(100, M, "2020-04-08"),
    ];
    ingest(
        w,
        "西兴街道",
        "2020-04.xlsx",
        &return_xlsx("西兴街道", "2020-04", &apr),
        "2020-05-03",
    );
    ingest(
        w,
        "西兴街道",
        "2020-05.xlsx",
        &return_xlsx("西兴街道", "2020-05", &people(101..121, O, "2020-05-09")),
        "2020-06-02",
    );
    ingest(
        w,
        "西兴街道",
        "2020-05.xlsx",
        &return_xlsx("西兴街道", "2020-05", &people(101..126, O, "2020-05-09")),
        "2020-06-04",
    );

    // 长河街道: on schedule in every category; one person also reported by 西兴街道.
    for (m, range_p, range_m, range_o) in [
        (1, 1000..1008, 1100..1110, 2000..2500),
        (2, 1008..1016, 1110..1120, 2500..3000),
        (3, 1016..1024, 1120..1130, 3000..3500),
        (4, 1024..1032, 1130..1140, 3500..4000),
        (5, 1032..1040, 1140..1150, 4000..4400),
    ] {
        let month = format!("2020-{m:02}");
        let date = format!("2020-{m:02}-15");
        let mut rows = people(range_p, P, &date);
        rows.extend(people(range_m, M, &date));
        rows.extend(people(range_o, O, &date));
        if m == 3 {
            rows.push(Person::new(5, P, &date)); // also 西兴街道's
        }
        let bytes = return_xlsx("长河街道", &month, &rows);
        let deadline = format!("2020-{:02}-03", m + 1);
        ingest(w, "长河街道", &format!("{month}.xlsx"), &bytes, &deadline);
        if m == 2 {
            ingest(w, "长河街道", "2020-02 副本.xlsx", &bytes, "2020-03-04");
        }
    }

    // 浦沿街道: January to March only, and a rejected March attempt first.
    let mut bad = Person::new(5000, P, "2020-03-03");
    bad.id
        .replace_range(17..18, if bad.id.ends_with('1') { "2" } else { "1" });
    ingest(
        w,
        "浦沿街道",
        "三月.xlsx",
        &return_xlsx("浦沿街道", "2020-03", &[bad]),
        "2020-04-01",
    );
    for m in 1..=3 {
        let month = format!("2020-{m:02}");
        let date = format!("2020-{m:02}-20");
        let mut rows = people(5000 + m * 100..5000 + m * 100 + 6, P, &date);
        rows.extend(people(5500 + m * 100..5500 + m * 100 + 30, O, &date));
        ingest(
            w,
            "浦沿街道",
            &format!("{month}.xlsx"),
            &return_xlsx("浦沿街道", &month, &rows),
            "2020-04-02",
        );
    }
}

fn open(path: &Path) -> Xlsx<Cursor<Vec<u8>>> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Xlsx::new(Cursor::new(bytes)).unwrap()
}

fn num(r: &calamine::Range<Data>, row: u32, col: u32) -> f64 {
    match r.get_value((row, col)) {
        Some(Data::Float(f)) => *f,
        Some(Data::Int(i)) => *i as f64,
        other => panic!(
            "{SUMMARY}!{}{}: expected a number, found {other:?}",
            col,
            row + 1
        ),
    }
}

fn string(r: &calamine::Range<Data>, row: u32, col: u32) -> String {
    match r.get_value((row, col)) {
        Some(Data::String(s)) => s.clone(),
        Some(Data::Empty) | None => String::new(),
        other => panic!("row {row} col {col}: expected text, found {other:?}"),
    }
}

fn rebuild(w: &Workdir, now: &str) -> PathBuf {
    let out = w.stdout(&["--now", now, "rebuild"], 0);
    PathBuf::from(out.trim())
}

fn zip_text(path: &Path, entry: &str) -> String {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut s = String::new();
    zip.by_name(entry).unwrap().read_to_string(&mut s).unwrap();
    s
}

/// Number of categories in the reference plan and the column layout of the summary.
const K: u32 = 3;
fn target_col(c: u32) -> u32 {
    2 + 3 * c
}
const TOTAL: u32 = 2 + 3 * K;

#[test]
fn the_master_matches_status_cell_by_cell() {
    let w = Workdir::new();
    realistic(&w);
    let path = rebuild(&w, NOW);
    // To look at this master: TALLY_TEST_KEEP_MASTER=/tmp/m.xlsx cargo test --test master
    if let Some(keep) = std::env::var_os("TALLY_TEST_KEEP_MASTER") {
        std::fs::copy(&path, keep).unwrap();
    }
    assert_eq!(path, w.join("output/master.xlsx"));
    let status = w.json(&["--now", NOW, "status", "--json"], 0);
    let mut book = open(&path);
    let names = book.sheet_names();
    assert_eq!(
        names,
        [
            SUMMARY,
            "报送日历",
            "月度进度",
            "报送记录",
            "问题清单",
            "培训台账"
        ]
    );

    let s = book.worksheet_range(SUMMARY).unwrap();
    let title = string(&s, 0, 0);
    assert_eq!(
        title,
        "杭州高新区（滨江）2020年度安全生产培训计划考核指标完成情况（截至2020年7月1日）"
    );
    assert_eq!(string(&s, 2, 0), "序号");
    assert_eq!(string(&s, 2, 1), "单位");
    for (c, cat) in [P, M, O, "合计"].iter().enumerate() {
        assert_eq!(string(&s, 2, target_col(c as u32)), *cat);
        assert_eq!(string(&s, 3, target_col(c as u32)), "指标");
        assert_eq!(string(&s, 3, target_col(c as u32) + 1), "完成");
        assert_eq!(string(&s, 3, target_col(c as u32) + 2), "完成率");
    }
    assert_eq!(string(&s, 2, TOTAL + 3), "序时进度");
    assert_eq!(string(&s, 2, TOTAL + 4), "状态");

    let units = status["units"].as_array().unwrap();
    let fraction = 182.0 / 366.0;
    let mut sums = vec![(0.0, 0.0); K as usize];
    for (i, u) in units.iter().enumerate() {
        let row = FIRST + i as u32;
        assert_eq!(num(&s, row, 0), (i + 1) as f64);
        assert_eq!(string(&s, row, 1), u["unit"].as_str().unwrap());
        let (mut t_all, mut d_all) = (0.0, 0.0);
        for (c, cat) in u["categories"].as_array().unwrap().iter().enumerate() {
            let col = target_col(c as u32);
            let t = cat["target"].as_f64().unwrap();
            let d = cat["completed"].as_f64().unwrap();
            assert_eq!(num(&s, row, col), t, "{} {}", u["unit"], cat["category"]);
            assert_eq!(
                num(&s, row, col + 1),
                d,
                "{} {}",
                u["unit"],
                cat["category"]
            );
            assert!((num(&s, row, col + 2) - d / t).abs() < 1e-12);
            t_all += t;
            d_all += d;
            sums[c].0 += t;
            sums[c].1 += d;
        }
        assert_eq!(num(&s, row, TOTAL), t_all);
        assert_eq!(num(&s, row, TOTAL + 1), d_all);
        assert!((num(&s, row, TOTAL + 2) - d_all / t_all).abs() < 1e-12);
        assert!((num(&s, row, TOTAL + 3) - fraction).abs() < 1e-12);
        let missing = !u["missing_months"].as_array().unwrap().is_empty();
        let expected_state = if missing {
            "未报送"
        } else if u["lagging"].as_bool().unwrap() {
            "滞后"
        } else {
            "正常"
        };
        assert_eq!(string(&s, row, TOTAL + 4), expected_state, "{}", u["unit"]);
    }
    let totals = FIRST + units.len() as u32;
    assert_eq!(string(&s, totals, 0), "合计");
    let (mut t_all, mut d_all) = (0.0, 0.0);
    for (c, (t, d)) in sums.iter().enumerate() {
        let col = target_col(c as u32);
        assert_eq!(num(&s, totals, col), *t);
        assert_eq!(num(&s, totals, col + 1), *d);
        assert!((num(&s, totals, col + 2) - d / t).abs() < 1e-12);
        t_all += t;
        d_all += d;
    }
    assert_eq!(num(&s, totals, TOTAL), 20600.0);
    assert_eq!(num(&s, totals, TOTAL), t_all);
    assert_eq!(num(&s, totals, TOTAL + 1), d_all);

    // The figures this data set was built to produce.
    let states: Vec<String> = (0..4).map(|i| string(&s, FIRST + i, TOTAL + 4)).collect();
    assert_eq!(states, ["滞后", "正常", "未报送", "未报送"]);
    assert_eq!(
        num(&s, FIRST, target_col(0) + 1),
        15.0,
        "西兴街道 principals: 16 rows, one twice"
    );
    assert_eq!(
        num(&s, FIRST, target_col(2) + 1),
        97.0,
        "西兴街道 employees: failed one out, May resubmitted with 25"
    );
    assert_eq!(num(&s, FIRST + 1, target_col(0) + 1), 41.0);

    // Totals and rates are formulas, with their results stored.
    let f = book.worksheet_formula(SUMMARY).unwrap();
    let formula = |row: u32, col: u32| f.get_value((row, col)).cloned().unwrap_or_default();
    assert_eq!(formula(FIRST, target_col(0) + 2), "IFERROR(D5/C5,0)");
    assert_eq!(formula(FIRST, TOTAL), "SUM(C5,F5,I5)");
    assert_eq!(formula(FIRST, TOTAL + 1), "SUM(D5,G5,J5)");
    assert_eq!(formula(totals, target_col(0)), "SUM(C5:C8)");
    assert_eq!(formula(totals, TOTAL + 2), "IFERROR(M9/L9,0)");
    assert_eq!(
        formula(FIRST, target_col(0) + 1),
        "",
        "completed counts are values"
    );

    // Conditional formats and a native chart.
    let sheet1 = zip_text(&path, "xl/worksheets/sheet1.xml");
    assert!(sheet1.contains("<dataBar"), "data bars on the rates");
    assert!(
        sheet1.contains("$D5&lt;$C5*$O5*(1-0.1)"),
        "lagging rule: {sheet1}"
    );
    assert!(
        sheet1.contains("<formula>\"未报送\"</formula>"),
        "未报送 in red"
    );
    assert!(
        sheet1.contains("<pageSetup paperSize=\"9\" fitToHeight=\"0\" orientation=\"landscape\""),
        "A4 landscape, one page wide"
    );
    assert!(
        sheet1.contains("<pane xSplit=\"2\" ySplit=\"4\""),
        "frozen header"
    );
    let workbook = zip_text(&path, "xl/workbook.xml");
    assert!(
        workbook.contains("_xlnm.Print_Titles"),
        "repeated header rows"
    );
    let chart = zip_text(&path, "xl/charts/chart1.xml");
    assert!(
        chart.contains("<c:barChart>") && chart.contains("<c:lineChart>"),
        "columns with the expected-rate line"
    );
    assert!(chart.contains("考核指标完成情况"));
    let chart2 = zip_text(&path, "xl/charts/chart2.xml");
    assert!(chart2.contains("月度进度"));
    let styles = zip_text(&path, "xl/styles.xml");
    assert!(styles.contains("宋体"), "a CJK font");

    // 月度进度: the last month shown (June, the last that ended) equals the completed figures.
    let m = book.worksheet_range("月度进度").unwrap();
    let mut row = 3;
    for u in units {
        for cat in u["categories"].as_array().unwrap() {
            assert_eq!(string(&m, row, 0), u["unit"].as_str().unwrap());
            assert_eq!(string(&m, row, 1), cat["category"].as_str().unwrap());
            assert_eq!(num(&m, row, 2), cat["target"].as_f64().unwrap());
            assert_eq!(
                num(&m, row, 3 + 5),
                cat["completed"].as_f64().unwrap(),
                "June"
            );
            assert!(
                matches!(m.get_value((row, 3 + 6)), None | Some(Data::Empty)),
                "July is blank"
            );
            row += 1;
        }
        assert_eq!(string(&m, row, 1), "小计");
        row += 1;
    }
    // January's cumulative for 长河街道 principals: 8.
    assert_eq!(num(&m, 3 + 4, 3), 8.0);

    // 报送记录: every submission with its status.
    let r = book.worksheet_range("报送记录").unwrap();
    assert_eq!(string(&r, 0, 0), "编号");
    let statuses: Vec<String> = (1..r.height() as u32)
        .map(|row| string(&r, row, 5))
        .collect();
    assert_eq!(statuses.len(), 16, "{statuses:?}");
    for (label, n) in [("已采用", 13), ("已被替代", 1), ("重复", 1), ("已退回", 1)] {
        assert_eq!(
            statuses.iter().filter(|s| *s == label).count(),
            n,
            "{label}: {statuses:?}"
        );
    }
    assert!(
        (1..r.height() as u32).all(|row| string(&r, row, 14).len() == 64),
        "sha256"
    );

    // 问题清单: the rejected return's error, the ingest warnings and both kinds of doubles.
    let q = book.worksheet_range("问题清单").unwrap();
    let rows: Vec<Vec<String>> = (1..q.height() as u32)
        .map(|row| {
            (1..12)
                .map(|c| {
                    q.get_value((row, c))
                        .map(|d| d.to_string())
                        .unwrap_or_default()
                })
                .collect()
        })
        .collect();
    assert!(
        rows.iter()
            .any(|r| r[0] == "浦沿街道" && r[6] == "id-invalid" && r[5] == "错误"),
        "{rows:?}"
    );
    let doubles: Vec<&Vec<String>> = rows
        .iter()
        .filter(|r| r[6] == "double-reported" && r[7] == "培训台账" && r[8].is_empty())
        .collect();
    assert_eq!(doubles.len(), 2, "{rows:?}");
    assert!(
        doubles.iter().any(|r| r[0] == "西兴街道、长河街道"),
        "{doubles:?}"
    );
    assert!(
        doubles
            .iter()
            .any(|r| r[0] == "西兴街道" && r[10].contains("只计一次")),
        "{doubles:?}"
    );
    for r in &rows {
        for cell in r {
            assert!(
                !cell.contains(&valid_id(0)) && !cell.contains(&valid_id(5)),
                "unmasked ID: {r:?}"
            );
        }
    }
    assert!(
        doubles
            .iter()
            .any(|r| r[9] == format!("{}********{}", &valid_id(0)[..6], &valid_id(0)[14..]))
    );

    // 培训台账: every counted row, IDs masked, dates as dates.
    let t = book.worksheet_range("培训台账").unwrap();
    let counted = t.height() - 1;
    // 西兴街道 62 + 38 + 2 + 25, 长河街道 4 × 518 + 418 + 1, 浦沿街道 3 × 36.
    assert_eq!(counted, 127 + 2491 + 108);
    assert_eq!(string(&t, 0, 4), "身份证号");
    let id = string(&t, 1, 4);
    assert_eq!(id.len(), 18);
    assert_eq!(&id[6..14], "********");
    assert!(
        matches!(t.get_value((1, 8)), Some(Data::DateTime(_))),
        "{:?}",
        t.get_value((1, 8))
    );
    let yes = (1..=counted as u32)
        .filter(|&r| string(&t, r, 12) == "是")
        .count();
    let sum_completed: u64 = units
        .iter()
        .flat_map(|u| u["categories"].as_array().unwrap())
        .map(|c| c["completed"].as_u64().unwrap())
        .sum();
    assert_eq!(
        yes as u64,
        sum_completed + 1,
        "all but the failed row count; 西兴街道's repeated principal once"
    );
}

#[test]
fn formula_looking_names_stay_text() {
    let w = Workdir::new();
    let names = ["=HYPERLINK(\"x\")", "+1", "-2", "@SUM(A1)", "=1+1"];
    let rows: Vec<Person> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            let mut p = Person::new(i as u32, P, "2020-05-06");
            p.name = n.to_string();
            p
        })
        .collect();
    may_return(&w, &rows);
    let path = rebuild(&w, NOW);
    let mut book = open(&path);
    let t = book.worksheet_range("培训台账").unwrap();
    for (i, n) in names.iter().enumerate() {
        assert_eq!(
            t.get_value((i as u32 + 1, 3)),
            Some(&Data::String(n.to_string()))
        );
    }
    let f = book.worksheet_formula("培训台账").unwrap();
    assert!(
        f.used_cells().next().is_none(),
        "no formulas in the roster: {:?}",
        f.used_cells().collect::<Vec<_>>()
    );
}

#[test]
fn the_roster_continues_on_numbered_sheets() {
    let w = Workdir::new();
    let rows = people(0..23, O, "2020-05-06");
    may_return(&w, &rows);
    let config = tally::config::Config::load(&w.join("tally.toml")).unwrap();
    let ledger = tally::ledger::Ledger::open(&config.state_path()).unwrap();
    let now = tally::core::calendar::parse_now(NOW, config.plan.tz).unwrap();
    let options = tally::master::RenderOptions { rows_per_sheet: 10 };
    let bytes = tally::master::render_with(&config, &ledger, now, &options).unwrap();
    let mut book = Xlsx::new(Cursor::new(bytes)).unwrap();
    let names = book.sheet_names();
    assert_eq!(&names[5..], ["培训台账", "培训台账(2)", "培训台账(3)"]);
    let mut seq = Vec::new();
    for (name, data_rows) in [("培训台账", 9), ("培训台账(2)", 9), ("培训台账(3)", 5)] {
        let t = book.worksheet_range(name).unwrap();
        assert_eq!(t.height(), data_rows + 1, "{name}");
        assert_eq!(string(&t, 0, 0), "序号", "{name} has its own header");
        for r in 1..=data_rows as u32 {
            seq.push(num(&t, r, 0) as u32);
            assert_eq!(num(&t, r, 14) as u32, seq.len() as u32 + 1, "original line");
        }
    }
    assert_eq!(seq, (1..=23).collect::<Vec<_>>());
    // The default is Excel's own limit.
    assert_eq!(
        tally::master::RenderOptions::default().rows_per_sheet,
        1_048_576
    );
}

#[test]
fn the_same_ledger_and_now_give_the_same_bytes() {
    let w = Workdir::new();
    let rows = people(0..30, O, "2020-05-06");
    may_return(&w, &rows);
    let path = rebuild(&w, NOW);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o644, "readable by everyone on the share");
    }
    let first = std::fs::read(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let again = rebuild(&w, NOW);
    assert_eq!(again, path);
    assert!(std::fs::read(&path).unwrap() == first, "byte-identical");
    let core = zip_text(&path, "docProps/core.xml");
    assert!(
        core.contains("2020-06-30T16:00:00Z"),
        "creation time is --now: {core}"
    );
    // A different clock is a different master (the title names the date).
    rebuild(&w, "2020-07-02");
    assert!(std::fs::read(&path).unwrap() != first);
}

/// `[master] roster`: inline in the master, one workbook per unit beside it (rewritten only
/// when that unit's returns changed), or nowhere; the master stays byte-identical per mode.
#[test]
fn the_roster_goes_where_the_plan_says() {
    let plan =
        |mode: &str| REFERENCE_PLAN.replace("roster = \"auto\"", &format!("roster = \"{mode}\""));
    for mode in ["inline", "per-unit", "none", "auto"] {
        let w = Workdir::with_plan(&plan(mode));
        may_return(&w, &people(0..30, O, "2020-05-06"));
        let path = rebuild(&w, NOW);
        let first = std::fs::read(&path).unwrap();
        let names = open(&path).sheet_names();
        let dir = w.join("output").join(tally::master::ROSTER_DIR);
        let inline = matches!(mode, "inline" | "auto");
        assert_eq!(
            names.contains(&"培训台账".to_string()),
            inline,
            "{mode}: {names:?}"
        );
        assert_eq!(dir.exists(), mode == "per-unit", "{mode}");
        if mode == "per-unit" {
            let files = w.files_in(&dir);
            assert_eq!(files.len(), 4, "one per unit: {files:?}");
            let mut book = open(&dir.join("西兴街道.xlsx"));
            let t = book.worksheet_range("培训台账").unwrap();
            assert_eq!(t.height(), 31, "header and 30 rows");
            assert_eq!(string(&t, 1, 1), "西兴街道");
            let empty = open(&dir.join("长河街道.xlsx"))
                .worksheet_range("培训台账")
                .unwrap();
            assert_eq!(empty.height(), 1, "a unit without returns: the header only");
            // A return of another unit rewrites that unit's file only.
            let before = std::fs::metadata(dir.join("西兴街道.xlsx"))
                .unwrap()
                .modified()
                .unwrap();
            std::thread::sleep(std::time::Duration::from_millis(20));
            ingest(
                &w,
                "长河街道",
                "b.xlsx",
                &return_xlsx("长河街道", "2020-05", &people(100..105, O, "2020-05-06")),
                "2020-06-02",
            );
            let after = std::fs::metadata(dir.join("西兴街道.xlsx"))
                .unwrap()
                .modified()
                .unwrap();
            assert_eq!(before, after, "西兴街道's roster untouched");
            let t = open(&dir.join("长河街道.xlsx"))
                .worksheet_range("培训台账")
                .unwrap();
            assert_eq!(t.height(), 6);
            rebuild(&w, NOW);
        } else {
            // The same ledger and clock: the same bytes.
            std::fs::remove_file(&path).unwrap();
            rebuild(&w, NOW);
            assert!(
                std::fs::read(&path).unwrap() == first,
                "{mode}: byte-identical"
            );
        }
    }
}

#[test]
fn previous_versions_are_archived_and_bounded() {
    let w = Workdir::new();
    for day in 1..=13 {
        rebuild(&w, &format!("2020-07-{day:02}"));
    }
    // Unchanged content is not rewritten, so not archived either.
    rebuild(&w, "2020-07-13");
    let archived = w.files_in("archive/master");
    assert_eq!(archived.len(), 10, "{archived:?}");
    assert_eq!(archived[0], "master.20200704T000000.xlsx");
    assert_eq!(archived[9], "master.20200713T000000.xlsx");
    // The newest archived copy is the master as it was before the last rebuild (12 July's).
    let mut old = open(&w.join("archive/master/master.20200713T000000.xlsx"));
    let s = old.worksheet_range(SUMMARY).unwrap();
    assert!(string(&s, 0, 0).ends_with("（截至2020年7月12日）"));
}

#[test]
fn the_number_of_archived_versions_is_configurable() {
    let w = Workdir::with_plan(&REFERENCE_PLAN.replace("versions_kept = 10", "versions_kept = 3"));
    for day in 1..=6 {
        rebuild(&w, &format!("2020-07-{day:02}"));
    }
    let archived = w.files_in("archive/master");
    assert_eq!(archived.len(), 3, "{archived:?}");
    assert_eq!(archived[2], "master.20200706T000000.xlsx");
}

#[test]
fn a_master_held_open_or_read_only_gets_a_new_file_beside_it() {
    let w = Workdir::new();
    let master = rebuild(&w, NOW);
    let before = std::fs::read(&master).unwrap();

    // Read-only: the clerk protected the delivered file.
    let mut perms = std::fs::metadata(&master).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(&master, perms.clone()).unwrap();
    let out = w.run(&["--now", "2020-07-02", "rebuild"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(written, w.join("output/master.20200702T000000.xlsx"));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("read-only"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&master).unwrap(),
        before,
        "the protected file is untouched"
    );
    let mut book = open(&written);
    assert!(
        string(&book.worksheet_range(SUMMARY).unwrap(), 0, 0).ends_with("（截至2020年7月2日）")
    );
    #[allow(clippy::permissions_set_readonly_false)]
    perms.set_readonly(false);
    std::fs::set_permissions(&master, perms).unwrap();

    // Held open: something that a rename cannot replace (a folder stands in for Excel's lock).
    std::fs::remove_file(&master).unwrap();
    std::fs::create_dir(&master).unwrap();
    std::fs::write(master.join("lock"), b"").unwrap();
    let out = w.run(&["--now", "2020-07-02", "rebuild"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(
        written,
        w.join("output/master.20200702T000000 (2).xlsx"),
        "never overwrites an earlier fallback"
    );
    assert!(written.is_file());
    assert_eq!(
        w.files_in("output"),
        ["master.20200702T000000 (2).xlsx"],
        "only the newest copy beside it is kept"
    );

    // Released: the master is replaced and the stale copy beside it goes.
    std::fs::remove_dir_all(&master).unwrap();
    assert_eq!(rebuild(&w, "2020-07-03"), master);
    assert_eq!(w.files_in("output"), ["master.xlsx"]);
    assert!(
        w.files_in("output").iter().all(|f| !f.ends_with(".tmp")),
        "no temporary file left"
    );
}

// ---------------------------------------------------------------------------------------------
// LibreOffice.

/// The LibreOffice binary, or None with a notice (a failure under CI, where it must exist).
fn soffice() -> Option<&'static str> {
    let found = std::process::Command::new("soffice")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    require(
        "the recalculation test",
        "soffice (LibreOffice: install libreoffice-calc)",
        found,
    )
    .then_some("soffice")
}

/// Convert `input` with LibreOffice in its own profile, set to recalculate formulas on load.
fn convert(input: &Path, to: &str, outdir: &Path) {
    soffice_convert(input, to, outdir, |user| {
        std::fs::write(
            user.join("registrymodifications.xcu"),
            r#"<?xml version="1.0" encoding="UTF-8"?>
<oor:items xmlns:oor="http://openoffice.org/2001/registry" xmlns:xs="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="OOXMLRecalcMode" oor:op="fuse"><value>0</value></prop></item>
<item oor:path="/org.openoffice.Office.Calc/Formula/Load"><prop oor:name="ODFRecalcMode" oor:op="fuse"><value>0</value></prop></item>
</oor:items>
"#,
        )
        .unwrap();
    });
}

/// A copy of the master with every stored formula result removed, so that any number the
/// spreadsheet program shows for a formula is one it computed itself.
fn without_cached_results(master: &Path, out: &Path) {
    let mut zip = zip::ZipArchive::new(std::fs::File::open(master).unwrap()).unwrap();
    let mut writer = zip::ZipWriter::new(std::fs::File::create(out).unwrap());
    let re_cached = |xml: &str| -> String {
        // <c r="E5" s="7"><f>IFERROR(D5/C5,0)</f><v>0.17</v></c> → drop the <v>…</v>.
        let mut s = String::with_capacity(xml.len());
        let mut rest = xml;
        while let Some(i) = rest.find("</f><v>") {
            s.push_str(&rest[..i + 4]);
            let after = &rest[i + 4..];
            let end = after.find("</v>").unwrap() + 4;
            rest = &after[end..];
        }
        s.push_str(rest);
        s
    };
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        if name.starts_with("xl/worksheets/sheet") {
            bytes = re_cached(std::str::from_utf8(&bytes).unwrap()).into_bytes();
        }
        writer
            .start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        std::io::Write::write_all(&mut writer, &bytes).unwrap();
    }
    writer.finish().unwrap();
}

fn csv_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(|line| {
            // Cells are quoted only when they hold commas or quotes; numbers never are.
            let mut cells = Vec::new();
            let mut cur = String::new();
            let mut quoted = false;
            let mut chars = line.chars().peekable();
            while let Some(c) = chars.next() {
                match c {
                    '"' if quoted && chars.peek() == Some(&'"') => {
                        cur.push('"');
                        chars.next();
                    }
                    '"' => quoted = !quoted,
                    ',' if !quoted => cells.push(std::mem::take(&mut cur)),
                    c => cur.push(c),
                }
            }
            cells.push(cur);
            cells
        })
        .collect()
}

#[test]
fn libreoffice_recalculates_the_same_totals() {
    if soffice().is_none() {
        return;
    }
    let w = Workdir::new();
    realistic(&w);
    let master = rebuild(&w, NOW);
    let status = w.json(&["--now", NOW, "status", "--json"], 0);
    let bare = w.join("bare.xlsx");
    without_cached_results(&master, &bare);
    let out = w.join("lo");
    std::fs::create_dir_all(&out).unwrap();
    convert(
        &bare,
        "csv:Text - txt - csv (StarCalc):44,34,76,1,,0,false,false,false,false,false,-1",
        &out,
    );
    let rows = csv_rows(&out.join(format!("bare-{SUMMARY}.csv")));
    let cell = |row: u32, col: u32| -> f64 {
        let s = &rows[row as usize][col as usize];
        let (digits, scale) = match s.strip_suffix('%') {
            Some(p) => (p, 100.0),
            None => (s.as_str(), 1.0),
        };
        let v: f64 = digits
            .parse()
            .unwrap_or_else(|_| panic!("{SUMMARY} row {row} col {col}: {s:?} is not a number"));
        v / scale
    };
    let units = status["units"].as_array().unwrap();
    let totals = FIRST + units.len() as u32;
    let (mut t_all, mut d_all) = (0.0, 0.0);
    for (c, _) in [P, M, O].iter().enumerate() {
        let col = target_col(c as u32);
        let t: f64 = units
            .iter()
            .map(|u| u["categories"][c]["target"].as_f64().unwrap())
            .sum();
        let d: f64 = units
            .iter()
            .map(|u| u["categories"][c]["completed"].as_f64().unwrap())
            .sum();
        assert_eq!(cell(totals, col), t);
        assert_eq!(cell(totals, col + 1), d);
        assert!((cell(totals, col + 2) - d / t).abs() < 1e-9);
        t_all += t;
        d_all += d;
    }
    assert_eq!(cell(totals, TOTAL), t_all);
    assert_eq!(cell(totals, TOTAL + 1), d_all);
    assert!((cell(totals, TOTAL + 2) - d_all / t_all).abs() < 1e-9);
    for (i, u) in units.iter().enumerate() {
        let row = FIRST + i as u32;
        let d: f64 = u["categories"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["completed"].as_f64().unwrap())
            .sum();
        assert_eq!(cell(row, TOTAL + 1), d, "{}", u["unit"]);
        let c0 = &u["categories"][0];
        let rate = c0["completed"].as_f64().unwrap() / c0["target"].as_f64().unwrap();
        assert!(
            (cell(row, target_col(0) + 2) - rate).abs() < 1e-9,
            "{}",
            u["unit"]
        );
    }
    // The monthly sheet's formulas too: 长河街道's subtotal in May.
    let monthly = csv_rows(&out.join("bare-月度进度.csv"));
    let changhe = &units[1]["categories"];
    let done: f64 = (0..3)
        .map(|c| changhe[c]["completed"].as_f64().unwrap())
        .sum();
    let subtotal = monthly
        .iter()
        .find(|r| r[0] == "长河街道" && r[1] == "小计")
        .unwrap();
    assert_eq!(subtotal[3 + 4].parse::<f64>().unwrap(), done);
}
