//! `tally check` on fixture returns written by LibreOffice (tests/fixtures/make_fixtures.py),
//! driven by tests/fixtures/manifest.toml: each fixture's verdict, row count, exact set of
//! finding codes and the cells they must name.

mod common;

use common::*;
use serde::Deserialize;
use std::collections::BTreeSet;
use std::path::Path;
use tally::core::findings::Code;

#[derive(Debug, Deserialize)]
struct Manifest {
    fixture: Vec<Fixture>,
}

#[derive(Debug, Deserialize)]
struct Fixture {
    file: String,
    unit: String,
    now: String,
    accepted: bool,
    rows: Option<u64>,
    codes: Vec<String>,
    #[serde(default)]
    cells: Vec<(String, String, String)>,
    #[serde(default)]
    note: String,
}

fn fixtures_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures"))
}

fn manifest() -> Manifest {
    let text =
        std::fs::read_to_string(fixtures_dir().join("manifest.toml")).expect("manifest.toml");
    toml::from_str(&text).expect("manifest parses")
}

fn check_json(w: &Workdir, file: &Path, unit: &str, now: &str) -> (i32, serde_json::Value) {
    let out = w.run(&[
        "--now",
        now,
        "check",
        file.to_str().unwrap(),
        "--unit",
        unit,
        "--json",
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{}: not JSON ({e}): {stdout}\n{}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), v)
}

#[test]
fn every_fixture_gets_exactly_its_findings() {
    let w = Workdir::new();
    let mut failures = Vec::new();
    for f in manifest().fixture {
        let path = fixtures_dir().join(&f.file);
        let (code, v) = check_json(&w, &path, &f.unit, &f.now);
        let found: BTreeSet<String> = v["findings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["code"].as_str().unwrap().to_string())
            .collect();
        let expected: BTreeSet<String> = f.codes.iter().cloned().collect();
        let mut problems = Vec::new();
        if v["accepted"] != f.accepted {
            problems.push(format!(
                "accepted {} (expected {})",
                v["accepted"], f.accepted
            ));
        }
        if code != if f.accepted { 0 } else { 1 } {
            problems.push(format!("exit code {code}"));
        }
        if found != expected {
            problems.push(format!("codes {found:?}, expected {expected:?}"));
        }
        if let Some(rows) = f.rows
            && v["rows"] != rows
        {
            problems.push(format!("rows {} (expected {rows})", v["rows"]));
        }
        for (code, sheet, cell) in &f.cells {
            let hit = v["findings"].as_array().unwrap().iter().any(|x| {
                x["code"] == code.as_str()
                    && x["sheet"] == sheet.as_str()
                    && x["cell"] == cell.as_str()
            });
            if !hit {
                problems.push(format!("no {code} at {sheet}!{cell}"));
            }
        }
        for x in v["findings"].as_array().unwrap() {
            let msg = x["message"].as_str().unwrap();
            if msg.is_empty() || !msg.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c)) {
                problems.push(format!("finding without a Chinese message: {x}"));
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{} ({}): {}\n  got: {}",
                f.file,
                f.note,
                problems.join("; "),
                v["findings"]
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// Every finding code of the contract is made to fire by some test: by a fixture in the
/// manifest, or by the named test elsewhere.
#[test]
fn every_finding_code_fires_somewhere() {
    let by_fixtures: BTreeSet<String> = manifest()
        .fixture
        .iter()
        .flat_map(|f| f.codes.clone())
        .collect();
    let elsewhere = [
        (
            "double-reported",
            "tests/ingest.rs: persons_count_once_across_months_and_person_times_twice",
        ),
        (
            "internal-error",
            "tests/check.rs: a_reader_crash_becomes_internal_error",
        ),
        (
            "too-large",
            "tests/check.rs: a_file_over_the_size_limit_is_too_large",
        ),
    ];
    for code in Code::ALL {
        let name = code.as_str();
        assert!(
            by_fixtures.contains(name) || elsewhere.iter().any(|(c, _)| *c == name),
            "no test makes {name} fire"
        );
    }
}

/// Readers that stay up for the next files (a burst) give every fixture the answer a read
/// of its own gives, each file's SHA-256 too: read one after another, twice over, good files
/// after damaged, encrypted and bomb ones. One reader reads many files, and one that refused
/// a file reads no other.
#[test]
fn readers_that_stay_up_answer_every_fixture_as_a_read_of_its_own() {
    use tally::read::{Limits, Reading, read_in_process};
    let limits = Limits::default();
    let mut files_by_reader = std::collections::HashMap::<u32, usize>::new();
    let mut refused_by = None;
    for _ in 0..2 {
        for f in manifest().fixture {
            let path = fixtures_dir().join(&f.file);
            let bytes = std::fs::read(&path).unwrap();
            // This test runs beside others (threads): never a copy of this process.
            let answer = Reading::start(Path::new(BIN), None, &path, &limits).finish();
            assert_eq!(
                answer.result,
                read_in_process(&bytes, &limits),
                "{}",
                f.file
            );
            let sha = <sha2::Sha256 as sha2::Digest>::digest(&bytes);
            assert_eq!(answer.sha256, Some(hex::encode(sha)), "{}", f.file);
            let reader = answer.reader.expect("read in a child");
            assert_ne!(
                Some(reader),
                refused_by,
                "{}: read by the reader that refused the file before",
                f.file
            );
            *files_by_reader.entry(reader).or_default() += 1;
            refused_by = answer.result.is_err().then_some(reader);
        }
    }
    assert!(
        files_by_reader.values().any(|&n| n >= 5),
        "no reader read five files: {files_by_reader:?}"
    );
}

#[test]
fn a_reader_crash_becomes_internal_error() {
    let w = Workdir::new();
    let file = fixtures_dir().join("clean.xlsx");
    let out = std::process::Command::new(BIN)
        .args([
            "--config",
            w.join("tally.toml").to_str().unwrap(),
            "--now",
            "2020-07-01",
            "check",
            file.to_str().unwrap(),
            "--unit",
            "西兴街道",
            "--json",
        ])
        .env("TALLY_FAULT_READER", "panic")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["findings"][0]["code"], "internal-error");
    assert!(file.exists(), "the file is kept");
}

#[test]
fn a_file_over_the_size_limit_is_too_large() {
    let plan = REFERENCE_PLAN.replace("max_file_bytes = 20971520", "max_file_bytes = 1000");
    let w = Workdir::with_plan(&plan);
    let (code, v) = check_json(
        &w,
        &fixtures_dir().join("clean.xlsx"),
        "西兴街道",
        "2020-07-01",
    );
    assert_eq!(code, 1);
    assert_eq!(v["findings"][0]["code"], "too-large");
}

#[test]
fn the_blank_template_is_read_back_and_names_what_to_fill() {
    let w = Workdir::new();
    let out = w.join("t.xlsx");
    w.stdout(
        &[
            "template",
            "--unit",
            "西兴街道",
            "-o",
            out.to_str().unwrap(),
        ],
        0,
    );
    let (code, v) = check_json(&w, &out, "西兴街道", "2020-07-01");
    assert_eq!(code, 1);
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert_eq!(
        codes,
        ["period-invalid", "missing-cell", "missing-cell"],
        "{v}"
    );
    assert_eq!(v["unit"], "西兴街道");
    assert_eq!(v["rows"], 0);
}

#[test]
fn the_check_table_names_file_cell_and_fix() {
    let w = Workdir::new();
    let mut bad = Person::new(1, "企业主要负责人", "2020-05-06");
    bad.id
        .replace_range(17..18, if bad.id.ends_with('1') { "2" } else { "1" });
    let p = drop_return(
        w.path(),
        "r.xlsx",
        &return_xlsx("西兴街道", "2020-05", &[bad]),
    );
    let out = w.stdout(
        &[
            "--now",
            "2020-07-01",
            "check",
            p.to_str().unwrap(),
            "--unit",
            "西兴街道",
        ],
        1,
    );
    assert!(out.contains("将被退回"), "{out}");
    assert!(out.contains("培训台账!C2"), "{out}");
    assert!(out.contains("id-invalid"), "{out}");
    assert!(out.contains("校验"), "{out}");
}

#[test]
fn check_writes_nothing() {
    let w = Workdir::new();
    let p = drop_return(
        &w.unit_dir("西兴街道"),
        "r.xlsx",
        &return_xlsx(
            "西兴街道",
            "2020-05",
            &[Person::new(1, "企业主要负责人", "2020-05-06")],
        ),
    );
    let before = walk(w.path());
    w.stdout(&["--now", "2020-07-01", "check", p.to_str().unwrap()], 0);
    assert_eq!(walk(w.path()), before);
}

#[test]
fn check_infers_the_unit_from_its_folder() {
    let w = Workdir::new();
    let p = drop_return(
        &w.unit_dir("长河街道"),
        "r.xlsx",
        &return_xlsx("西兴街道", "2020-05", &[]),
    );
    let (code, v) = {
        let out = w.run(&[
            "--now",
            "2020-07-01",
            "check",
            p.to_str().unwrap(),
            "--json",
        ]);
        (
            out.status.code().unwrap(),
            serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap(),
        )
    };
    assert_eq!(code, 1);
    assert_eq!(v["findings"][0]["code"], "unit-mismatch");
}

#[test]
fn usage_and_config_errors_exit_2_and_name_the_culprit() {
    let w = Workdir::new();
    let out = w.run(&["check", "nope.xlsx"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.xlsx"));
    let out = w.run(&["--now", "yesterday", "status"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--now"));
    let out = w.run(&["check", "x.xlsx", "--unit", "西湖街道"]);
    assert_eq!(out.status.code(), Some(2));
    std::fs::write(
        w.join("tally.toml"),
        REFERENCE_PLAN.replace("deadline_day = 5", "deadline_day = 40"),
    )
    .unwrap();
    let out = w.run(&["status"]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("plan.deadline_day") && err.contains("tally.toml:"),
        "{err}"
    );
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p.clone());
            }
            out.push(p.to_string_lossy().to_string());
        }
    }
    out.sort();
    out
}

/// Regression: hundreds of huge (overlapping) merged ranges in a tiny file once made the
/// parent spend minutes after the reader had finished. Now each range is reported (up to 50,
/// then a count) and nothing is expanded cell by cell.
#[test]
fn hundreds_of_huge_merged_ranges_are_reported_not_expanded() {
    use std::io::{Read, Write};
    let w = Workdir::new();
    let clean = return_xlsx(
        "西兴街道",
        "2020-05",
        &[Person::new(1, "企业主要负责人", "2020-05-06")],
    );
    let mut zin = zip::ZipArchive::new(std::io::Cursor::new(clean)).unwrap();
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut zout = zip::ZipWriter::new(&mut out);
        for i in 0..zin.len() {
            let mut f = zin.by_index(i).unwrap();
            let name = f.name().unwrap().to_string();
            let mut data = Vec::new();
            f.read_to_end(&mut data).unwrap();
            if name == "xl/worksheets/sheet2.xml" {
                let merges: String = (0..300)
                    .map(|_| "<mergeCell ref=\"K2:DA10002\"/>")
                    .collect();
                let xml = String::from_utf8(data).unwrap().replace(
                    "</sheetData>",
                    &format!("</sheetData><mergeCells count=\"300\">{merges}</mergeCells>"),
                );
                data = xml.into_bytes();
            }
            zout.start_file(name, zip::write::SimpleFileOptions::default())
                .unwrap();
            zout.write_all(&data).unwrap();
        }
        zout.finish().unwrap();
    }
    let p = drop_return(w.path(), "merged.xlsx", out.get_ref());
    let (code, v) = check_json(&w, &p, "西兴街道", "2020-07-01");
    assert_eq!(code, 1);
    let merged: Vec<_> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "merged-cells")
        .collect();
    assert_eq!(merged.len(), 51, "50 ranges and a count");
    assert!(merged[50]["message"].as_str().unwrap().contains("300"));
}

#[test]
fn the_template_instructions_carry_the_plans_deadline_day() {
    use calamine::Reader;
    let w = Workdir::with_plan(&REFERENCE_PLAN.replace("deadline_day = 5", "deadline_day = 8"));
    let out = w.join("t.xlsx");
    w.stdout(&["template", "-o", out.to_str().unwrap()], 0);
    let mut wb: calamine::Xlsx<_> = calamine::open_workbook(&out).unwrap();
    let text: String = wb
        .worksheet_range("填报说明")
        .unwrap()
        .rows()
        .flat_map(|r| r.iter().map(|c| c.to_string()))
        .collect();
    assert!(
        text.contains("每月8日（含）前") && text.contains("6月8日前"),
        "{text}"
    );
    assert!(!text.contains("{deadline_day}"));
}
