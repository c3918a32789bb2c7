//! Lateness through the real binary: `status --json` gives each unit's months and on-time rate,
//! and `status` prints the same as a grid (DESIGN.md §6).

mod common;

use calamine::{Reader, Xlsx, open_workbook};
use common::*;
use serde_json::Value;

const P: &str = "企业主要负责人";

fn ingest(w: &Workdir, unit: &str, name: &str, month: &str, seed: u32, now: &str, code: i32) {
    let date = format!("{month}-10");
    let bytes = return_xlsx(unit, month, &[Person::new(seed, P, &date)]);
    let p = drop_return(&w.join("incoming"), name, &bytes);
    w.stdout(
        &["--now", now, "ingest", p.to_str().unwrap(), "--unit", unit],
        code,
    );
}

fn months(status: &Value, unit: &str) -> Vec<Value> {
    let u = status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == unit)
        .unwrap();
    u["months"].as_array().unwrap().clone()
}

#[test]
fn status_reports_each_month_on_time_late_missing_rejected_or_not_due() {
    let w = Workdir::new();
    // March: due Tuesday 7 April (清明 4–6 April); received on the 7th: on time.
    ingest(
        &w,
        "西兴街道",
        "三月.xlsx",
        "2020-03",
        1,
        "2020-04-07T16:00:00",
        0,
    );
    // April: due Wednesday 6 May (劳动节); received 8 May: late by 2.
    ingest(
        &w,
        "西兴街道",
        "四月.xlsx",
        "2020-04",
        2,
        "2020-05-08T09:00:00",
        0,
    );
    // May: on time, then a correction after the deadline: still on time.
    ingest(
        &w,
        "西兴街道",
        "五月.xlsx",
        "2020-05",
        3,
        "2020-06-01T09:00:00",
        0,
    );
    ingest(
        &w,
        "西兴街道",
        "五月更正.xlsx",
        "2020-05",
        4,
        "2020-06-20T09:00:00",
        0,
    );
    // June: only a rejected return so far (a training date outside the plan year).
    let bytes = return_xlsx("西兴街道", "2020-06", &[Person::new(5, P, "2019-06-10")]);
    let p = drop_return(&w.join("incoming"), "六月.xlsx", &bytes);
    w.stdout(
        &[
            "--now",
            "2020-07-02T09:00:00",
            "ingest",
            p.to_str().unwrap(),
            "--unit",
            "西兴街道",
        ],
        1,
    );

    let status = w.json(&["--now", "2020-07-10", "status", "--json"], 0);
    let m = months(&status, "西兴街道");
    assert_eq!(m.len(), 12);
    let state = |i: usize| {
        (
            m[i]["state"].as_str().unwrap(),
            m[i]["days_late"].as_u64().unwrap(),
        )
    };
    assert_eq!(state(0), ("missing", 0));
    assert_eq!(state(2), ("on-time", 0));
    assert_eq!(state(3), ("late", 2));
    assert_eq!(
        state(4),
        ("on-time", 0),
        "a correction does not make May late"
    );
    assert_eq!(
        m[4]["file"], "五月.xlsx",
        "the first accepted return decides"
    );
    assert_eq!(m[4]["received_at"], "2020-06-01T09:00:00+08:00");
    assert_eq!(state(5), ("rejected", 0));
    assert_eq!(state(6), ("not-due", 0));
    assert!(m[6]["received_at"].is_null());
    // Due: January–June (6); on time: March and May.
    let rate = status["units"][0]["on_time_rate"].as_f64().unwrap();
    assert!((rate - 2.0 / 6.0).abs() < 1e-9, "{rate}");
    // The figures are still there.
    assert!(status["units"][0]["categories"].is_array());

    // The master's 报送日历: the same states, one row per unit, the units reported per month.
    w.stdout(&["--now", "2020-07-10", "rebuild"], 0);
    let mut book: Xlsx<_> = open_workbook(w.join("output/master.xlsx")).unwrap();
    assert_eq!(
        book.sheet_names()[1],
        "报送日历",
        "right after 考核指标完成情况"
    );
    let sheet = book.worksheet_range("报送日历").unwrap();
    let rows: Vec<Vec<String>> = sheet
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect();
    let head = rows.iter().position(|r| r[0] == "单位").unwrap();
    assert_eq!(rows[head][1], "1月");
    assert_eq!(rows[head][13], "按时率");
    let xixing = &rows[head + 1];
    assert_eq!(xixing[0], "西兴街道");
    assert_eq!(
        xixing[1..13],
        [
            "未报",
            "未报",
            "按时",
            "逾期2天",
            "按时",
            "退回待改",
            "未到期",
            "未到期",
            "未到期",
            "未到期",
            "未到期",
            "未到期"
        ]
    );
    let rate: f64 = xixing[13].parse().unwrap();
    assert!((rate - 2.0 / 6.0).abs() < 1e-9, "{rate}");
    assert_eq!(rows[head + 2][0], "长河街道");
    assert_eq!(rows[head + 2][3], "未报");
    let reported = rows.iter().find(|r| r[0] == "已报单位数").unwrap();
    assert_eq!(reported[1..7], ["0", "0", "1", "1", "1", "0"]);

    let text = w.stdout(&["--now", "2020-07-10", "status"], 0);
    let line = text
        .lines()
        .find(|l| l.starts_with("西兴街道") && l.contains("逾2"))
        .unwrap();
    for cell in ["未报", "按时", "逾2", "退回", "·", "33%"] {
        assert!(line.contains(cell), "{cell} in {line}");
    }
}

#[test]
fn the_deadline_day_itself_is_on_time_and_the_day_after_late_by_one() {
    let w = Workdir::new();
    // June is due Monday 6 July 2020 (5 July is a Sunday).
    ingest(
        &w,
        "长河街道",
        "a.xlsx",
        "2020-06",
        1,
        "2020-07-06T23:59:00",
        0,
    );
    ingest(
        &w,
        "浦沿街道",
        "b.xlsx",
        "2020-06",
        2,
        "2020-07-07T00:01:00",
        0,
    );
    let status = w.json(&["--now", "2020-07-10", "status", "--json"], 0);
    assert_eq!(months(&status, "长河街道")[5]["state"], "on-time");
    let late = &months(&status, "浦沿街道")[5];
    assert_eq!(
        (late["state"].as_str(), late["days_late"].as_u64()),
        (Some("late"), Some(1))
    );
}
