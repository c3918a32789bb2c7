//! Every workbook tally writes prints as a form (issue 15): the template, a 错误说明, the master
//! and a unit's 本单位进度 are converted to PDF by LibreOffice and their pages counted per
//! sheet (each page's header names its sheet), checked A4, portrait or landscape, with the
//! plan's title above and "第 N 页，共 M 页" below; and LibreOffice keeps the template's sheet
//! protection and its drop-down lists and date check. Skipped with a notice without LibreOffice
//! and poppler-utils, except under CI, where they must be installed.

mod common;

use common::*;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

const TITLE: &str = "杭州高新区（滨江）2020年度安全生产培训计划";
const P: &str = "企业主要负责人";
const O: &str = "其他从业人员";

/// LibreOffice and pdfinfo, or None with a notice (a failure under CI, where they must exist).
fn printing_tools() -> Option<()> {
    let runs = |cmd: &str, arg: &str| {
        std::process::Command::new(cmd)
            .arg(arg)
            .output()
            .is_ok_and(|o| o.status.success())
    };
    let found = runs("soffice", "--version") && runs("pdfinfo", "-v");
    common::require(
        "the printing tests",
        "soffice (libreoffice-calc) and pdfinfo (poppler-utils)",
        found,
    )
    .then_some(())
}

/// One printed page: the sheet its header names, its text, and whether it lies landscape.
#[derive(Debug)]
struct Page {
    sheet: String,
    text: String,
    landscape: bool,
}

/// Print `xlsx` to PDF with LibreOffice and read the pages back.
fn print(xlsx: &Path) -> Vec<Page> {
    let out = tempfile::tempdir().unwrap();
    let pdf = soffice_convert(xlsx, "pdf", out.path(), |_| {});
    let info = std::process::Command::new("pdfinfo")
        .args(["-f", "1", "-l", "9999"])
        .arg(&pdf)
        .output()
        .unwrap();
    let info = String::from_utf8(info.stdout).unwrap();
    // "Page    1 size: 841.89 x 595.276 pts (A4)"
    let sizes: Vec<(f64, f64)> = info
        .lines()
        .filter(|l| l.starts_with("Page") && l.contains(" size: "))
        .map(|l| {
            assert!(l.ends_with("(A4)"), "not A4: {l}");
            let dims = l.split(" size: ").nth(1).unwrap();
            let mut it = dims.split_whitespace();
            let w: f64 = it.next().unwrap().parse().unwrap();
            it.next();
            let h: f64 = it.next().unwrap().parse().unwrap();
            (w, h)
        })
        .collect();
    let text = std::process::Command::new("pdftotext")
        .arg("-layout")
        .arg(&pdf)
        .arg("-")
        .output()
        .unwrap();
    let text = String::from_utf8(text.stdout).unwrap();
    let pages: Vec<&str> = text
        .split('\u{c}')
        .filter(|p| !p.trim().is_empty())
        .collect();
    assert_eq!(pages.len(), sizes.len(), "{info}");
    pages
        .iter()
        .zip(sizes)
        .map(|(text, (w, h))| {
            let header = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            let sheet = header.split_whitespace().last().unwrap_or("").to_string();
            Page {
                sheet,
                text: text.to_string(),
                landscape: w > h,
            }
        })
        .collect()
}

/// Pages per sheet, in the order printed.
fn count(pages: &[Page]) -> Vec<(String, usize)> {
    let mut out: Vec<(String, usize)> = Vec::new();
    for p in pages {
        match out.last_mut() {
            Some((sheet, n)) if *sheet == p.sheet => *n += 1,
            _ => out.push((p.sheet.clone(), 1)),
        }
    }
    out
}

/// Every page names the plan (or what the workbook is) above and its number below.
fn assert_headed(pages: &[Page], title: &str) {
    let total = pages.len();
    for (i, p) in pages.iter().enumerate() {
        assert!(
            p.text.contains(title),
            "page {}: no title\n{}",
            i + 1,
            p.text
        );
        let footer = format!("第 {} 页，共 {total} 页", i + 1);
        assert!(
            p.text.contains(&footer),
            "page {}: no {footer}\n{}",
            i + 1,
            p.text
        );
    }
}

fn pages_of<'a>(pages: &'a [Page], sheet: &str) -> Vec<&'a Page> {
    pages.iter().filter(|p| p.sheet == sheet).collect()
}

/// A blank styled cell of the template's sheet XML (`<c r="B4" s="3"/>`) given a text.
fn type_into(xml: &str, cell: &str, text: &str) -> String {
    let start = xml
        .find(&format!(r#"<c r="{cell}" "#))
        .unwrap_or_else(|| panic!("{cell} not in the sheet"));
    let end = start + xml[start..].find("/>").unwrap();
    format!(
        r#"{} t="inlineStr"><is><t>{text}</t></is></c>{}"#,
        &xml[..end],
        &xml[end + 2..]
    )
}

/// The template with 填报人, 联系电话 and `people` typed in, as a clerk fills it: cells added
/// to the template's own sheets, its page set-up, protection and validations untouched.
fn fill_template(template: &[u8], people: &[Person]) -> Vec<u8> {
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(template)).unwrap();
    let mut out = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let cell = |r: usize, c: char, s: &str| {
        format!(r#"<c r="{c}{r}" t="inlineStr"><is><t>{s}</t></is></c>"#)
    };
    let mut rows = String::new();
    for (i, p) in people.iter().enumerate() {
        let r = i + 2;
        rows.push_str(&format!(r#"<row r="{r}"><c r="A{r}"><v>{}</v></c>"#, i + 1));
        rows.push_str(&cell(r, 'B', &p.name));
        rows.push_str(&cell(r, 'C', &p.id));
        rows.push_str(&cell(r, 'D', "杭州滨江示例科技有限公司"));
        rows.push_str(&cell(r, 'E', &valid_credit_code(7)));
        rows.push_str(&cell(r, 'F', &p.category));
        rows.push_str(&cell(r, 'G', &p.date));
        rows.push_str(&format!(r#"<c r="H{r}"><v>{}</v></c>"#, p.hours));
        rows.push_str(&cell(r, 'I', &p.result));
        rows.push_str(&cell(r, 'J', &format!("ZS{:06}", i + 1)));
        rows.push_str("</row>");
    }
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let name = f.name().unwrap().to_string();
        let mut xml = String::new();
        f.read_to_string(&mut xml).unwrap();
        match name.as_str() {
            "xl/worksheets/sheet1.xml" => {
                xml = type_into(&type_into(&xml, "B4", "王芳"), "B5", "0571-87654321");
            }
            "xl/worksheets/sheet2.xml" => {
                xml = xml.replacen(
                    "</row></sheetData>",
                    &format!("</row>{rows}</sheetData>"),
                    1,
                );
            }
            _ => {}
        }
        out.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(xml.as_bytes()).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn template(w: &Workdir, unit: &str, month: &str) -> PathBuf {
    let path = w.join(format!("{unit}-{month}.xlsx"));
    w.stdout(
        &[
            "template",
            "--unit",
            unit,
            "--month",
            month,
            "-o",
            path.to_str().unwrap(),
        ],
        0,
    );
    path
}

#[test]
fn the_empty_template_prints_a_page_a_sheet() {
    let Some(()) = printing_tools() else { return };
    let w = Workdir::new();
    let pages = print(&template(&w, "长河街道", "2020-05"));
    let counts = count(&pages);
    eprintln!("empty template: {counts:?}");
    assert_eq!(
        counts[..3],
        [
            ("填报信息".to_string(), 1),
            ("培训台账".to_string(), 1),
            ("汇总".to_string(), 1)
        ]
    );
    assert_eq!(counts[3].0, "填报说明");
    assert!(counts[3].1 <= 2, "{counts:?}");
    assert_headed(&pages, TITLE);

    // The cover: portrait, its title whole on one line, the unit and the month filled in.
    let cover = pages_of(&pages, "填报信息")[0];
    assert!(!cover.landscape);
    let body: Vec<&str> = cover.text.lines().skip(1).collect();
    assert!(
        body.iter()
            .any(|l| l.contains(&format!("{TITLE} 培训情况月报"))),
        "title cut:\n{}",
        cover.text
    );
    assert!(body.iter().any(|l| l.contains("长河街道")));
    assert!(body.iter().any(|l| l.contains("2020-05")));
    // The roster: landscape, all ten headers on one line.
    let roster = pages_of(&pages, "培训台账")[0];
    assert!(roster.landscape);
    let headers = tally::core::form::Column::ALL.map(|c| c.header());
    assert!(
        roster
            .text
            .lines()
            .any(|l| headers.iter().all(|h| l.contains(h))),
        "columns split:\n{}",
        roster.text
    );
}

#[test]
fn a_roster_of_200_prints_on_at_most_6_pages_with_its_header_on_each() {
    let Some(()) = printing_tools() else { return };
    let w = Workdir::new();
    let blank = std::fs::read(template(&w, "西兴街道", "2020-05")).unwrap();
    let people: Vec<Person> = (0..200)
        .map(|i| Person::new(i, if i % 4 == 0 { P } else { O }, "2020-05-06"))
        .collect();
    let filled = w.join("西兴街道-2020-05-已填.xlsx");
    std::fs::write(&filled, fill_template(&blank, &people)).unwrap();
    // Filled in, the protected template is still a valid return.
    let verdict = w.json(
        &[
            "--now",
            "2020-06-02",
            "check",
            filled.to_str().unwrap(),
            "--unit",
            "西兴街道",
            "--json",
        ],
        0,
    );
    assert_eq!(verdict["accepted"], true, "{verdict}");
    assert_eq!(verdict["rows"], 200);

    let pages = print(&filled);
    let roster = pages_of(&pages, "培训台账");
    eprintln!("200-row roster: {} pages", roster.len());
    assert!((2..=6).contains(&roster.len()), "{:?}", count(&pages));
    for p in &roster {
        assert!(p.landscape);
        assert!(p.text.contains("身份证号") && p.text.contains("证书编号"));
    }
    // Every person printed, once.
    let printed: usize = roster
        .iter()
        .map(|p| p.text.matches("杭州滨江示例科技有限公司").count())
        .sum();
    assert_eq!(printed, 200);
    assert_eq!(pages_of(&pages, "填报信息").len(), 1);
}

fn ingest(w: &Workdir, unit: &str, name: &str, bytes: &[u8], now: &str) {
    let p = drop_return(&w.join("incoming"), name, bytes);
    let out = w.run(&["--now", now, "ingest", p.to_str().unwrap(), "--unit", unit]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "ingest {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn people(seeds: std::ops::Range<u32>, category: &str, date: &str) -> Vec<Person> {
    seeds.map(|s| Person::new(s, category, date)).collect()
}

#[test]
fn master_progress_and_feedback_print_as_forms() {
    let Some(()) = printing_tools() else { return };
    let w = Workdir::new();
    let mut may = people(0..20, P, "2020-05-06");
    may.extend(people(20..80, O, "2020-05-07"));
    ingest(
        &w,
        "西兴街道",
        "2020-05.xlsx",
        &return_xlsx("西兴街道", "2020-05", &may),
        "2020-06-02",
    );
    ingest(
        &w,
        "长河街道",
        "2020-05.xlsx",
        &return_xlsx("长河街道", "2020-05", &people(100..130, O, "2020-05-08")),
        "2020-06-03",
    );
    // A rejected return: two bad IDs and an unknown category.
    let mut bad = people(200..210, O, "2020-05-08");
    bad[1].id = "330108198001011234".into();
    bad[3].id = "33010819800101123".into();
    bad[5].category = "特种作业人员".into();
    ingest(
        &w,
        "浦沿街道",
        "五月.xlsx",
        &return_xlsx("浦沿街道", "2020-05", &bad),
        "2020-06-04",
    );
    w.stdout(&["--now", "2020-07-01", "rebuild"], 0);

    let master = print(&w.join("output/master.xlsx"));
    let counts = count(&master);
    eprintln!("master: {counts:?}");
    assert_eq!(counts[0], (tally::master::COMPLETION_SHEET.to_string(), 1));
    for sheet in [
        tally::master::MONTHLY_SHEET,
        tally::master::SUBMISSIONS_SHEET,
        tally::master::FINDINGS_SHEET,
        tally::master::ROSTER_SHEET,
    ] {
        assert!(
            counts.iter().any(|(s, _)| s == sheet),
            "{sheet}: {counts:?}"
        );
    }
    assert!(master.iter().all(|p| p.landscape));
    assert_headed(&master, TITLE);
    // Each roster page repeats the header row.
    for p in pages_of(&master, tally::master::ROSTER_SHEET) {
        assert!(p.text.contains("身份证号"), "{}", p.text);
    }

    let progress = print(&w.unit_dir("西兴街道").join("本单位进度.xlsx"));
    let counts = count(&progress);
    eprintln!("本单位进度: {counts:?}");
    assert_eq!(counts.len(), 5, "{counts:?}");
    assert!(counts[..4].iter().all(|(_, n)| *n == 1), "{counts:?}");
    assert!(!progress[0].landscape, "the figures fit portrait");
    assert_headed(&progress, TITLE);
    assert!(
        progress[0]
            .text
            .lines()
            .next()
            .unwrap()
            .contains("西兴街道")
    );
    for p in pages_of(&progress, "培训台账") {
        assert!(p.text.contains("身份证号"), "{}", p.text);
    }

    let feedback = w
        .unit_dir("浦沿街道")
        .join(tally::core::form::REJECTED_DIR)
        .join("五月.错误说明.xlsx");
    let pages = print(&feedback);
    let counts = count(&pages);
    eprintln!("错误说明: {counts:?}");
    assert_eq!(
        counts[0],
        (tally::feedback::FEEDBACK_SHEET.to_string(), 1),
        "{counts:?}"
    );
    assert!(pages[0].landscape);
    assert_headed(&pages, "报表退回说明：五月.xlsx");
}

/// What LibreOffice makes of the template: every protected sheet still protected (rows may be
/// inserted and deleted), every drop-down list and the date check still there.
#[test]
fn libreoffice_keeps_the_protection_the_lists_and_the_date_check() {
    let Some(()) = printing_tools() else { return };
    let w = Workdir::new();
    let out = tempfile::tempdir().unwrap();
    let ods = soffice_convert(
        &template(&w, "长河街道", "2020-05"),
        "ods",
        out.path(),
        |_| {},
    );
    let mut zip = zip::ZipArchive::new(std::fs::File::open(&ods).unwrap()).unwrap();
    let mut xml = String::new();
    zip.by_name("content.xml")
        .unwrap()
        .read_to_string(&mut xml)
        .unwrap();
    assert_eq!(xml.matches(r#"table:protected="true""#).count(), 3);
    let allowed = r#"loext:insert-rows="true" loext:delete-rows="true""#;
    assert_eq!(
        xml.matches(allowed).count(),
        3,
        "rows may be inserted and deleted"
    );
    let q = |s: &str| format!("&quot;{s}&quot;");
    for condition in [
        format!(
            "cell-content-is-in-list({})",
            ["西兴街道", "长河街道", "浦沿街道", "江北科技园"]
                .map(q)
                .join(";")
        ),
        format!(
            "cell-content-is-in-list({})",
            [P, "安全生产管理人员", O].map(q).join(";")
        ),
        format!(
            "cell-content-is-in-list({})",
            ["合格", "不合格"].map(q).join(";")
        ),
        // 2020-01-01 and 2020-12-31 as serial numbers.
        "cell-content-is-date() and cell-content-is-between(43831,44196)".to_string(),
    ] {
        assert!(xml.contains(&condition), "{condition}");
    }
}
