//! End-to-end mail tests: the real binary sending to a real SMTP server (aiosmtpd on
//! 127.0.0.1, started here on a free port), and the file transport of the shipped reference
//! plan. What arrives is parsed (mail-parser) and read as a clerk would read it.

mod common;
mod smtp;

use common::*;
use serde_json::Value;
use smtp::{Mail, Server};
use std::collections::BTreeSet;

const P: &str = "企业主要负责人";
const M: &str = "安全生产管理人员";
const O: &str = "其他从业人员";
const UNITS: [&str; 4] = ["西兴街道", "长河街道", "浦沿街道", "江北科技园"];

/// The reference plan sending through `url`.
fn plan_with_smtp(url: &str) -> String {
    assert!(REFERENCE_PLAN.contains("[mail]\n"));
    REFERENCE_PLAN.replacen("[mail]\n", &format!("[mail]\nsmtp_url = \"{url}\"\n"), 1)
}

fn ingest(w: &Workdir, unit: &str, name: &str, bytes: &[u8], now: &str) -> std::process::Output {
    let p = drop_return(&w.join("incoming"), name, bytes);
    w.run(&["--now", now, "ingest", p.to_str().unwrap(), "--unit", unit])
}

fn ok(out: &std::process::Output, code: i32) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// A resident ID whose check character is wrong.
fn bad_id(seed: u32) -> String {
    let good = valid_id(seed);
    let last = if good.ends_with('0') { '1' } else { '0' };
    format!("{}{last}", &good[..17])
}

fn unit_status<'a>(status: &'a Value, unit: &str) -> &'a Value {
    status["units"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["unit"] == unit)
        .unwrap()
}

fn tagged<'a>(mails: &'a [Mail], tag: &str) -> Vec<&'a Mail> {
    mails
        .iter()
        .filter(|m| m.subject.starts_with(tag))
        .collect()
}

/// The unit named right after a subject's tag.
fn subject_unit(subject: &str) -> String {
    let rest = subject.split_once('】').unwrap().1;
    UNITS
        .iter()
        .find(|u| rest.starts_with(*u))
        .unwrap_or(&"")
        .to_string()
}

/// The number after `label` and before the next `人` in `line`.
fn figure(line: &str, label: &str) -> Option<String> {
    let rest = line.split_once(label)?.1;
    Some(rest.split_once(" 人")?.0.trim().to_string())
}

/// (category → (target, completed, expected)) as a reminder states them.
fn reminder_figures(body: &str) -> Vec<(String, String, String, String)> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in body.lines() {
        if let Some(cat) = [P, M, O].iter().find(|c| line.starts_with(**c)) {
            current = Some(cat.to_string());
            continue;
        }
        if let (Some(cat), Some(target)) = (&current, figure(line, "年度指标 ")) {
            let completed = figure(line, "已完成 ").unwrap();
            let expected = figure(line, "应完成 ").unwrap();
            out.push((cat.clone(), target, completed, expected));
            current = None;
        }
    }
    out
}

fn assert_figures_match_status(body: &str, status: &Value, unit: &str) {
    let figures = reminder_figures(body);
    let cats = unit_status(status, unit)["categories"].as_array().unwrap();
    assert_eq!(figures.len(), cats.len(), "{body}");
    for c in cats {
        let name = c["category"].as_str().unwrap();
        let (_, target, completed, expected) = figures.iter().find(|f| f.0 == name).unwrap();
        assert_eq!(target, &c["target"].to_string(), "{unit} {name}: {body}");
        assert_eq!(
            completed,
            &c["completed"].to_string(),
            "{unit} {name}: {body}"
        );
        assert_eq!(
            expected,
            &c["expected"].to_string(),
            "{unit} {name}: {body}"
        );
    }
}

#[test]
fn receipt_and_rejection_arrive_with_progress_and_the_feedback_workbook() {
    if !smtp::available("receipt_and_rejection_arrive_with_progress_and_the_feedback_workbook") {
        return;
    }
    let server = Server::start();
    let w = Workdir::with_plan(&plan_with_smtp(&server.url()));
    let now = "2020-06-02T10:00:00";
    let people = vec![
        Person::new(1, P, "2020-05-06"),
        Person::new(2, P, "2020-05-06").failed(),
        Person::new(3, M, "2020-05-07"),
        Person::new(4, O, "2020-05-08"),
    ];
    let out = ok(
        &ingest(
            &w,
            "西兴街道",
            "2020-05.xlsx",
            &return_xlsx("西兴街道", "2020-05", &people),
            now,
        ),
        0,
    );
    assert!(out.contains("邮件：已发送 1 封"), "{out}");

    let mails = server.received();
    assert_eq!(mails.len(), 1);
    let r = &mails[0];
    assert!(r.subject.starts_with("【回执】西兴街道"), "{}", r.subject);
    assert_eq!(r.to, ["xixing@example.org"]);
    assert_eq!(r.from, "tally@example.org");
    assert!(
        r.body.contains("2020-05.xlsx") && r.body.contains("已通过校验并采用"),
        "{}",
        r.body
    );
    assert!(
        r.body.contains(&format!("{P}：2 行，其中考核合格 1 行")),
        "{}",
        r.body
    );
    // Cumulative progress equals `status --json` at the same time.
    let status = w.json(&["--now", now, "status", "--json"], 0);
    for c in unit_status(&status, "西兴街道")["categories"]
        .as_array()
        .unwrap()
    {
        let line = format!(
            "{}：已完成 {} 人 / 年度指标 {} 人",
            c["category"].as_str().unwrap(),
            c["completed"],
            c["target"]
        );
        assert!(r.body.contains(&line), "{line}\n{}", r.body);
        assert!(
            r.body
                .contains(&format!("按序时进度应完成 {} 人", c["expected"])),
            "{}",
            r.body
        );
    }
    assert!(!r.body.contains("[[tally:"), "{}", r.body);

    // A rejected return: every finding, the feedback workbook attached, IDs masked.
    let id = bad_id(5);
    let bad = return_xlsx(
        "浦沿街道",
        "2020-05",
        &[Person {
            id: id.clone(),
            ..Person::new(5, P, "2020-05-06")
        }],
    );
    ok(&ingest(&w, "浦沿街道", "五月.xlsx", &bad, now), 1);
    let mails = server.received();
    assert_eq!(mails.len(), 2);
    let n = &mails[1];
    assert!(n.subject.starts_with("【退回】浦沿街道"), "{}", n.subject);
    assert_eq!(n.to, ["puyan@example.org"]);
    assert!(n.body.contains("培训台账!C2"), "{}", n.body);
    assert!(
        !n.body.contains(&id) && !n.subject.contains(&id),
        "IDs are masked in mail: {}",
        n.body
    );
    assert_eq!(
        n.attachments.len(),
        1,
        "{:?}",
        n.attachments.iter().map(|a| &a.0).collect::<Vec<_>>()
    );
    let (name, bytes) = &n.attachments[0];
    assert_eq!(name, "五月.错误说明.xlsx");
    let on_disk = std::fs::read(
        w.unit_dir("浦沿街道")
            .join("退回")
            .join("五月.错误说明.xlsx"),
    )
    .unwrap();
    assert_eq!(bytes, &on_disk, "the attachment is the feedback workbook");
    assert_ne!(r.message_id, n.message_id);
    assert!(
        r.header_names.iter().any(|h| h == "Auto-Submitted"),
        "{:?}",
        r.header_names
    );

    let outbox = w.json(&["outbox", "list", "--all", "--json"], 0);
    let rows = outbox.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert!(
        rows.iter()
            .all(|r| r["status"] == "sent" && r["attempts"] == 1),
        "{outbox}"
    );
}

#[test]
fn reminders_match_status_copy_the_leader_after_n_and_come_once_per_window() {
    if !smtp::available("reminders_match_status_copy_the_leader_after_n_and_come_once_per_window") {
        return;
    }
    let server = Server::start();
    let w = Workdir::with_plan(&plan_with_smtp(&server.url()));
    let people: Vec<Person> = (0..5)
        .map(|i| Person::new(10 + i, P, "2020-05-06"))
        .collect();
    ok(
        &ingest(
            &w,
            "西兴街道",
            "2020-05.xlsx",
            &return_xlsx("西兴街道", "2020-05", &people),
            "2020-06-02T10:00:00",
        ),
        0,
    );
    let receipts = server.received().len();

    // Monday 2020-07-06 09:30: every unit lags (months not reported), one reminder each; the
    // digest; and June's return is due today (5 July is a Sunday, so the deadline moved to
    // Monday): one 未报送提醒 per unit.
    let now = "2020-07-06T09:30:00";
    let dry = w.stdout(&["--now", now, "remind", "--dry-run"], 0);
    assert!(dry.contains("将发送 9 封邮件"), "{dry}");
    assert_eq!(server.received().len(), receipts, "--dry-run sends nothing");
    ok(&w.run(&["--now", now, "remind"]), 0);
    let mails = server.received();
    let reminders = tagged(&mails, "【催办】");
    assert_eq!(
        reminders.len(),
        4,
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    let status = w.json(&["--now", now, "status", "--json"], 0);
    for r in &reminders {
        let unit = subject_unit(&r.subject);
        assert!(unit_status(&status, &unit)["lagging"].as_bool().unwrap());
        assert_figures_match_status(&r.body, &status, &unit);
        assert!(
            r.cc.is_empty(),
            "no leader on the first reminder: {:?}",
            r.cc
        );
        assert!(
            r.body.contains("2020年1月"),
            "missing months are listed: {}",
            r.body
        );
    }
    let dry_body = dry.split("【催办】西兴街道").nth(1).unwrap();
    let sent_body = &reminders
        .iter()
        .find(|r| r.subject.contains("西兴街道"))
        .unwrap()
        .body;
    assert!(dry_body.contains(sent_body.lines().find(|l| l.contains("年度指标")).unwrap()));

    // The digest: to the bureau, the status table, the master workbook attached.
    let digests = tagged(&mails, "【周报】");
    assert_eq!(digests.len(), 1);
    let d = digests[0];
    assert_eq!(d.to, ["anquan@example.org"]);
    assert!(UNITS.iter().all(|u| d.body.contains(u)), "{}", d.body);
    // Each unit's row of the 报送日历: 西兴街道 sent May on 2 June (on time), nothing else.
    assert!(
        d.body
            .contains("报送日历：1月未报 2月未报 3月未报 4月未报 5月按时（按时率 20%）"),
        "{}",
        d.body
    );
    assert_eq!(d.attachments.len(), 1, "the master is attached");
    assert_eq!(d.attachments[0].0, "master.xlsx");
    assert!(
        d.attachments[0].1.starts_with(b"PK"),
        "an xlsx (zip) workbook"
    );

    // A second run in the same window sends nothing new.
    let again = w.stdout(&["--now", "2020-07-08T15:00:00", "remind"], 0);
    assert!(
        again.contains("本轮已发过") || again.contains("已催办过"),
        "{again}"
    );
    assert_eq!(
        server.received().len(),
        mails.len(),
        "one reminder per unit and window"
    );

    // Two more weekly windows: the third reminder in a row copies the leader.
    ok(&w.run(&["--now", "2020-07-13T09:30:00", "remind"]), 0);
    ok(&w.run(&["--now", "2020-07-20T09:30:00", "remind"]), 0);
    let mails = server.received();
    let xixing: Vec<&Mail> = tagged(&mails, "【催办】西兴街道");
    assert_eq!(xixing.len(), 3);
    assert!(
        xixing[0].cc.is_empty() && xixing[1].cc.is_empty(),
        "{:?}",
        xixing[1].cc
    );
    assert_eq!(xixing[2].cc, ["xixing-leader@example.org"]);
    assert!(
        xixing[2].body.contains("连续第 3 次催办"),
        "{}",
        xixing[2].body
    );
    let status = w.json(&["--now", "2020-07-20T09:30:00", "status", "--json"], 0);
    assert_figures_match_status(&xixing[2].body, &status, "西兴街道");
}

#[test]
fn a_server_that_is_down_delays_mail_and_loses_none_nor_sends_twice() {
    if !smtp::available("a_server_that_is_down_delays_mail_and_loses_none_nor_sends_twice") {
        return;
    }
    let port = smtp::free_port();
    let w = Workdir::with_plan(&plan_with_smtp(&format!("smtp://127.0.0.1:{port}")));
    let bytes = return_xlsx("西兴街道", "2020-05", &[Person::new(1, P, "2020-05-06")]);
    let out = ok(
        &ingest(
            &w,
            "西兴街道",
            "2020-05.xlsx",
            &bytes,
            "2020-06-02T10:00:00",
        ),
        0,
    );
    assert!(
        out.contains("待重试 1 封"),
        "the return is taken in all the same: {out}"
    );
    let queued = w.json(&["outbox", "list", "--json"], 0);
    let row = &queued.as_array().unwrap()[0];
    assert_eq!(row["status"], "queued");
    assert_eq!(row["attempts"], 1);
    assert!(!row["last_error"].as_str().unwrap().is_empty());
    let table = w.stdout(&["outbox"], 0);
    assert!(
        table.contains("待发送") && table.contains("【回执】西兴街道"),
        "{table}"
    );
    // Still down: retry says so and keeps it.
    ok(
        &w.run(&["--now", "2020-06-02T10:01:00", "outbox", "retry"]),
        1,
    );

    let server = Server::start_on(port);
    let out = ok(
        &w.run(&["--now", "2020-06-02T10:02:00", "outbox", "retry"]),
        0,
    );
    assert!(out.contains("已发送 1 封"), "{out}");
    assert_eq!(server.received().len(), 1);
    ok(
        &w.run(&["--now", "2020-06-02T10:03:00", "outbox", "retry"]),
        0,
    );
    // A later intake sends its own receipt, and not the first one again.
    let second = return_xlsx("长河街道", "2020-05", &[Person::new(2, P, "2020-05-06")]);
    ok(
        &ingest(
            &w,
            "长河街道",
            "2020-05.xlsx",
            &second,
            "2020-06-02T11:00:00",
        ),
        0,
    );
    let mails = server.received();
    assert_eq!(
        mails.len(),
        2,
        "{:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(mails[0].subject.starts_with("【回执】西兴街道"));
    assert!(mails[1].subject.starts_with("【回执】长河街道"));
    let all = w.json(&["outbox", "list", "--all", "--json"], 0);
    assert!(
        all.as_array()
            .unwrap()
            .iter()
            .all(|r| r["status"] == "sent"),
        "{all}"
    );
    assert_eq!(
        w.stdout(&["outbox"], 0).trim(),
        "发件箱中没有待发送或发送失败的邮件。"
    );
}

#[test]
fn cr_lf_in_a_unit_name_or_a_file_name_cannot_add_a_header() {
    if !smtp::available("cr_lf_in_a_unit_name_or_a_file_name_cannot_add_a_header") {
        return;
    }
    let server = Server::start();
    let evil = "西兴街道\r\nBcc: evil@example.org";
    let plan = plan_with_smtp(&server.url())
        .replacen(
            "name = \"西兴街道\"",
            "name = \"西兴街道\\r\\nBcc: evil@example.org\"",
            1,
        )
        .replacen(
            "[targets.\"西兴街道\"]",
            "[targets.\"西兴街道\\r\\nBcc: evil@example.org\"]",
            1,
        );
    let w = Workdir::with_plan(&plan);
    let now = "2020-06-02T10:00:00";
    let loads = w.run(&["--now", now, "status", "--json"]);
    if loads.status.code() == Some(0) {
        let bytes = return_xlsx(evil, "2020-05", &[Person::new(1, P, "2020-05-06")]);
        ok(&ingest(&w, evil, "2020-05.xlsx", &bytes, now), 0);
    } else {
        // A config that refuses such a name is just as safe.
        let err = String::from_utf8_lossy(&loads.stderr);
        assert!(err.contains("units[0].name"), "{err}");
    }
    // Windows file names cannot hold CR, LF or ':' at all: there only the unit name can try.
    let name = if cfg!(windows) {
        common::reduced(
            "cr_lf_in_a_unit_name_or_a_file_name_cannot_add_a_header (Windows): a file name cannot hold CR/LF there; the unit-name half runs",
        );
        "五月.xlsx"
    } else {
        "五月\r\nBcc: evil@example.org.xlsx"
    };
    let bad = return_xlsx(
        "长河街道",
        "2020-05",
        &[Person {
            id: bad_id(3),
            ..Person::new(3, P, "2020-05-06")
        }],
    );
    ok(
        &ingest(
            &Workdir::with_plan(&plan_with_smtp(&server.url())),
            "长河街道",
            name,
            &bad,
            now,
        ),
        1,
    );

    let mails = server.received();
    assert!(!mails.is_empty());
    for m in &mails {
        assert!(
            !m.header_names.iter().any(|h| h.eq_ignore_ascii_case("bcc")),
            "{:?}\n{}",
            m.header_names,
            String::from_utf8_lossy(&m.raw)
        );
        assert!(m.bcc.is_empty());
        assert!(!m.rcpt_to.contains("evil"), "envelope: {}", m.rcpt_to);
        assert!(m.to.iter().all(|a| !a.contains("evil")), "{:?}", m.to);
    }
    let rejection = tagged(&mails, "【退回】长河街道")[0];
    assert_eq!(rejection.attachments.len(), 1);
    if cfg!(unix) {
        assert!(
            rejection.attachments[0].0.contains("Bcc: evil@example.org"),
            "the name stays a name"
        );
    }
}

#[test]
fn the_reference_plan_leaves_readable_eml_files_in_the_outbox() {
    // No SMTP server: the shipped plan writes every message into outbox/ as an .eml file.
    let w = Workdir::new();
    let june = "2020-06-02T10:00:00";
    // 西兴街道 reports every month and is on pace; 长河街道 reports May only; 浦沿街道's
    // return is rejected; 江北科技园 sends nothing.
    for m in ["2020-01", "2020-02", "2020-03", "2020-04"] {
        ok(
            &ingest(
                &w,
                "西兴街道",
                &format!("{m}.xlsx"),
                &return_xlsx("西兴街道", m, &[]),
                june,
            ),
            0,
        );
    }
    let mut seed = 100;
    let mut people = Vec::new();
    for (cat, n) in [(P, 33), (M, 37), (O, 2300)] {
        for _ in 0..n {
            people.push(Person::new(seed, cat, "2020-05-10"));
            seed += 1;
        }
    }
    ok(
        &ingest(
            &w,
            "西兴街道",
            "2020-05.xlsx",
            &return_xlsx("西兴街道", "2020-05", &people),
            june,
        ),
        0,
    );
    let few: Vec<Person> = (0..3)
        .map(|i| Person::new(5000 + i, P, "2020-05-12"))
        .collect();
    ok(
        &ingest(
            &w,
            "长河街道",
            "5月报表.xlsx",
            &return_xlsx("长河街道", "2020-05", &few),
            june,
        ),
        0,
    );
    let bad = return_xlsx(
        "浦沿街道",
        "2020-05",
        &[Person {
            id: bad_id(7),
            ..Person::new(7, M, "2020-05-12")
        }],
    );
    ok(&ingest(&w, "浦沿街道", "浦沿5月.xlsx", &bad, june), 1);

    let now = "2020-07-01";
    let out = ok(&w.run(&["--now", now, "remind"]), 0);
    assert!(out.contains("写入文件夹"), "{out}");
    let status = w.json(&["--now", now, "status", "--json"], 0);
    let lagging: BTreeSet<String> = status["units"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|u| u["lagging"] == true)
        .map(|u| u["unit"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        lagging,
        ["江北科技园", "浦沿街道", "长河街道"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    );

    let mails = smtp::read_dir_mails(&w.join("outbox"), ".eml");
    let files = w.files_in("outbox");
    assert!(files.iter().all(|f| f.ends_with(".eml")), "{files:?}");
    assert_eq!(tagged(&mails, "【回执】西兴街道").len(), 5);
    assert_eq!(tagged(&mails, "【回执】长河街道").len(), 1);
    let rejection = tagged(&mails, "【退回】浦沿街道");
    assert_eq!(rejection.len(), 1);
    assert_eq!(rejection[0].attachments[0].0, "浦沿5月.错误说明.xlsx");
    let reminded: BTreeSet<String> = tagged(&mails, "【催办】")
        .iter()
        .map(|m| subject_unit(&m.subject))
        .collect();
    assert_eq!(
        reminded, lagging,
        "reminders go to exactly the units that lag"
    );
    for r in tagged(&mails, "【催办】") {
        assert_figures_match_status(&r.body, &status, &subject_unit(&r.subject));
    }
    assert_eq!(tagged(&mails, "【周报】").len(), 1);

    // Read a few as a clerk would.
    for tag in [
        "【回执】长河街道",
        "【退回】浦沿街道",
        "【催办】长河街道",
        "【周报】",
    ] {
        let m = tagged(&mails, tag)[0];
        println!(
            "===== {}\nTo: {}\nCc: {}\nSubject: {}\nAttachments: {:?}\n\n{}",
            m.file.file_name().unwrap().to_string_lossy(),
            m.to.join(", "),
            m.cc.join(", "),
            m.subject,
            m.attachments.iter().map(|a| &a.0).collect::<Vec<_>>(),
            m.body
        );
    }

    // Running remind again in the same window adds nothing.
    ok(&w.run(&["--now", "2020-07-01T15:00:00", "remind"]), 0);
    assert_eq!(w.files_in("outbox"), files);
}

#[test]
fn duplicates_a_unit_mismatch_and_deadline_reminders_through_the_file_transport() {
    let w = Workdir::new();
    let june = "2020-06-02T10:00:00";
    let good = return_xlsx("西兴街道", "2020-05", &[Person::new(1, P, "2020-05-06")]);
    ok(&ingest(&w, "西兴街道", "a.xlsx", &good, june), 0);
    ok(
        &ingest(&w, "西兴街道", "a.xlsx", &good, "2020-06-02T11:00:00"),
        0,
    );
    let bad = return_xlsx(
        "长河街道",
        "2020-05",
        &[Person {
            id: bad_id(2),
            ..Person::new(2, P, "2020-05-06")
        }],
    );
    ok(&ingest(&w, "长河街道", "b.xlsx", &bad, june), 1);
    // The same rejected bytes again: checked anew (a rejection may have had a passing cause),
    // rejected again, answered again.
    ok(
        &ingest(&w, "长河街道", "b.xlsx", &bad, "2020-06-02T11:00:00"),
        1,
    );
    // A return that names another unit than its folder: rejected, and the bureau is told.
    let other = return_xlsx("长河街道", "2020-05", &[Person::new(3, P, "2020-05-06")]);
    ok(&ingest(&w, "浦沿街道", "c.xlsx", &other, june), 1);

    let mails = smtp::read_dir_mails(&w.join("outbox"), ".eml");
    let receipts = tagged(&mails, "【回执】西兴街道");
    assert_eq!(receipts.len(), 2);
    assert!(
        receipts[1].body.contains("完全相同") && receipts[1].body.contains("不重复计算"),
        "{}",
        receipts[1].body
    );
    let returned = tagged(&mails, "【退回】长河街道");
    assert_eq!(
        returned.len(),
        2,
        "the same rejected bytes again get the notice again"
    );
    assert!(
        returned[1].body.contains("培训台账!C2"),
        "the original findings: {}",
        returned[1].body
    );
    assert_eq!(
        returned[1].attachments.len(),
        1,
        "its own feedback workbook"
    );
    let alert = tagged(&mails, "【异常】浦沿街道");
    assert_eq!(alert.len(), 1);
    assert_eq!(alert[0].to, ["anquan@example.org"]);
    assert!(
        alert[0].body.contains("长河街道") && alert[0].body.contains("c.xlsx"),
        "{}",
        alert[0].body
    );
    assert_eq!(tagged(&mails, "【退回】浦沿街道").len(), 1);

    // 未报送提醒: on the last days before June's deadline (day 5 is a Sunday in 2020, so the
    // deadline moves to Monday 6 July), to those without June.
    let before = w.files_in("outbox").len();
    ok(&w.run(&["--now", "2020-07-03T10:00:00", "remind"]), 0);
    let after_first = smtp::read_dir_mails(&w.join("outbox"), ".eml");
    assert!(
        tagged(&after_first, "【未报送提醒】").is_empty(),
        "3 July is not within the last 3 days up to 6 July"
    );
    ok(&w.run(&["--now", "2020-07-04T10:00:00", "remind"]), 0);
    ok(&w.run(&["--now", "2020-07-04T16:00:00", "remind"]), 0);
    ok(&w.run(&["--now", "2020-07-06T10:00:00", "remind"]), 0);
    let mails = smtp::read_dir_mails(&w.join("outbox"), ".eml");
    let due = tagged(&mails, "【未报送提醒】");
    assert_eq!(
        due.len(),
        8,
        "4 units × (4 and 6 July), once a day: {:?}",
        due.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    assert!(
        due[0].subject.contains("2020年6月") && due[0].subject.contains("2020年7月6日"),
        "{}",
        due[0].subject
    );
    assert!(due.iter().any(|m| m.body.contains("就是今天")));
    assert!(w.files_in("outbox").len() > before);
}

/// `tally` started in `w` without waiting for it.
fn spawn(w: &Workdir, args: &[&str]) -> std::process::Child {
    w.command(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start tally")
}

#[test]
fn a_retry_while_another_process_is_sending_does_not_send_it_twice() {
    if !smtp::available("a_retry_while_another_process_is_sending_does_not_send_it_twice") {
        return;
    }
    // The server is down at intake: the receipt (#1) waits in the outbox.
    let port = smtp::free_port();
    let w = Workdir::with_plan(&plan_with_smtp(&format!("smtp://127.0.0.1:{port}")));
    let bytes = return_xlsx("西兴街道", "2020-05", &[Person::new(1, P, "2020-05-06")]);
    let out = ok(
        &ingest(
            &w,
            "西兴街道",
            "2020-05.xlsx",
            &bytes,
            "2020-06-02T10:00:00",
        ),
        0,
    );
    assert!(out.contains("待重试 1 封"), "{out}");

    // A server that holds each message until released: `outbox retry 1` is known to be in the
    // middle of sending #1 (claimed, its text with the server) when a second one starts.
    let server = Server::start_holding(port);
    let mut first = spawn(
        &w,
        &["--now", "2020-06-02T10:02:00", "outbox", "retry", "1"],
    );
    server.wait_until_held(1, &mut first);
    let row = &w.json(&["outbox", "list", "--json"], 0)[0];
    assert!(
        !row["lease_until"].is_null(),
        "claimed under a lease: {row}"
    );
    let listed = w.stdout(&["outbox"], 0);
    assert!(listed.contains("发送中"), "{listed}");
    let second = ok(
        &w.run(&["--now", "2020-06-02T10:02:02", "outbox", "retry", "1"]),
        0,
    );
    assert!(
        second.contains("已重新排队 0 封") && second.contains("另一进程正在发送"),
        "{second}"
    );
    assert_eq!(server.held(), 1, "the second retry sent nothing");
    server.release();
    let first = first.wait_with_output().unwrap();
    let first_out = ok(&first, 0);
    assert!(first_out.contains("已发送 1 封"), "{first_out}");

    // And once it is sent, retries send nothing.
    ok(
        &w.run(&["--now", "2020-06-02T10:03:00", "outbox", "retry"]),
        0,
    );
    let mails = server.received();
    assert_eq!(
        mails.len(),
        1,
        "delivered exactly once: {:?}",
        mails.iter().map(|m| &m.subject).collect::<Vec<_>>()
    );
    let all = w.json(&["outbox", "list", "--all", "--json"], 0);
    let row = &all.as_array().unwrap()[0];
    assert_eq!(row["status"], "sent");
    assert_eq!(row["attempts"], 2, "{row}");
    assert!(row["lease_until"].is_null(), "{row}");
}

#[test]
fn a_receipt_for_bytes_sent_again_counts_that_return_once() {
    // A, then B (replaces A), then A again: A's bytes are on record twice (superseded and
    // accepted); the third receipt shows A's rows once.
    let w = Workdir::new();
    let a_people = vec![
        Person::new(1, P, "2020-05-06"),
        Person::new(2, P, "2020-05-06").failed(),
        Person::new(3, M, "2020-05-07"),
    ];
    let a = return_xlsx("西兴街道", "2020-05", &a_people);
    let b = return_xlsx(
        "西兴街道",
        "2020-05",
        &[
            Person::new(4, P, "2020-05-08"),
            Person::new(5, O, "2020-05-08"),
        ],
    );
    ok(
        &ingest(&w, "西兴街道", "a.xlsx", &a, "2020-06-02T10:00:00"),
        0,
    );
    ok(
        &ingest(&w, "西兴街道", "b.xlsx", &b, "2020-06-02T11:00:00"),
        0,
    );
    ok(
        &ingest(&w, "西兴街道", "a.xlsx", &a, "2020-06-02T12:00:00"),
        0,
    );
    let mails = smtp::read_dir_mails(&w.join("outbox"), ".eml");
    let receipts = tagged(&mails, "【回执】西兴街道");
    assert_eq!(receipts.len(), 3);
    for r in [receipts[0], receipts[2]] {
        assert!(
            r.body.contains(&format!("{P}：2 行，其中考核合格 1 行")),
            "A's rows, once: {}",
            r.body
        );
        assert!(
            r.body.contains(&format!("{M}：1 行，其中考核合格 1 行")),
            "{}",
            r.body
        );
        assert!(
            !r.body.contains(&format!("{O}：1 行")),
            "B's rows are not A's: {}",
            r.body
        );
    }
    assert!(
        receipts[1]
            .body
            .contains(&format!("{P}：1 行，其中考核合格 1 行")),
        "{}",
        receipts[1].body
    );
    // Cumulative progress: A counts (once), B no longer.
    let status = w.json(&["--now", "2020-06-02T12:00:00", "status", "--json"], 0);
    let cats = unit_status(&status, "西兴街道")["categories"]
        .as_array()
        .unwrap();
    assert_eq!(
        cats.iter().find(|c| c["category"] == P).unwrap()["completed"],
        1
    );
    assert!(
        receipts[2].body.contains(&format!("{P}：已完成 1 人")),
        "{}",
        receipts[2].body
    );
}

#[test]
fn a_recipient_the_server_refuses_does_not_keep_the_message_from_the_others() {
    if !smtp::available("a_recipient_the_server_refuses_does_not_keep_the_message_from_the_others")
    {
        return;
    }
    let server = Server::start_refusing("nobody");
    let plan = plan_with_smtp(&server.url()).replacen(
        "contacts = [\"xixing@example.org\"]",
        "contacts = [\"xixing@example.org\", \"nobody@example.org\"]",
        1,
    );
    assert!(plan.contains("nobody@example.org"));
    let w = Workdir::with_plan(&plan);
    let bytes = return_xlsx("西兴街道", "2020-05", &[Person::new(1, P, "2020-05-06")]);
    let out = ok(
        &ingest(
            &w,
            "西兴街道",
            "2020-05.xlsx",
            &bytes,
            "2020-06-02T10:00:00",
        ),
        0,
    );
    assert!(out.contains("失败 1 封"), "{out}");
    let mails = server.received();
    assert_eq!(mails.len(), 1, "the unit's own address gets the receipt");
    assert!(mails[0].subject.starts_with("【回执】西兴街道"));
    assert_eq!(mails[0].rcpt_to, "xixing@example.org");
    assert_eq!(mails[0].to, ["xixing@example.org", "nobody@example.org"]);

    // The refusal is kept and shown, naming who did and did not get it.
    let rows = w.json(&["outbox", "list", "--json"], 0);
    let row = &rows.as_array().unwrap()[0];
    assert_eq!(row["status"], "failed", "{row}");
    let error = row["last_error"].as_str().unwrap();
    assert!(
        error.contains("not delivered to nobody@example.org")
            && error.contains("550")
            && error.contains("delivered to xixing@example.org"),
        "{error}"
    );
    assert_eq!(
        row["delivered_to"],
        serde_json::json!(["xixing@example.org"])
    );

    // A retry tries only the recipient still missing: xixing gets no second copy.
    let out = ok(
        &w.run(&["--now", "2020-06-02T10:05:00", "outbox", "retry"]),
        1,
    );
    assert!(
        out.contains("已重新排队 1 封") && out.contains("失败 1 封"),
        "{out}"
    );
    assert_eq!(server.received().len(), 1, "never sent twice");
}
