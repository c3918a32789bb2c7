//! The ledger's contract, once for each backend: every case below runs against the embedded
//! SQLite ledger and against a real PostgreSQL server on 127.0.0.1 (`tests/pg`), through the
//! same public API. A case is written once (`fn case(&mut Ledger)`); `both!` makes its two
//! tests. Without PostgreSQL the second is skipped with a notice (a failure under CI).

mod common;
#[path = "pg/mod.rs"]
mod pg;

use common::reference_plan as plan;

use chrono::NaiveDate;
use std::path::Path;
use tally::core::calendar::YearMonth;
use tally::core::findings::{Code, Finding};
use tally::core::returns::Row;
use tally::core::settle::Stat;
use tally::ledger::{Ledger, NewMessage, NewSubmission, Submission, SubmissionStatus};

macro_rules! both {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[test]
            fn sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let mut l = super::pg::ledger("", "sqlite", dir.path()).unwrap();
                super::$case(&mut l);
            }
            #[test]
            fn postgres() {
                let dir = tempfile::tempdir().unwrap();
                if let Some(mut l) = super::pg::ledger(concat!("ledger::", stringify!($case), "::postgres"), "postgres", dir.path()) {
                    super::$case(&mut l);
                }
            }
        }
    )*};
}

both!(
    records_supersedes_and_reads_back,
    duplicates_and_rejections_count_nothing,
    moves_and_events,
    reports_arrivals_and_months,
    outbox_claims_leases_and_requeue,
    receipts_are_finished_with_their_figures,
    schedule_rounds_commit_or_discard,
    watcher_files_alarms_and_state,
    tallies_follow_every_record,
    parallel_readers_see_the_ledger,
    reopening_keeps_everything,
    records_only_under_a_live_claim,
    rows_written_ahead_go_only_with_their_return,
);

fn person(seed: u32) -> String {
    format!("33010819800101{seed:03}7")
}

fn row(line: u32, seed: u32, category: &str, month: u32, passed: bool) -> Row {
    Row {
        line,
        name: format!("人员{seed}"),
        id: person(seed),
        enterprise: "杭州某某科技有限公司".into(),
        credit_code: "91330108MA27XXXX1X".into(),
        category: category.into(),
        date: NaiveDate::from_ymd_opt(2020, month, 10).unwrap(),
        hours: 7.5,
        passed,
        certificate: format!("证{seed}"),
    }
}

/// A return of `unit` for 2020-`month`, with these rows and findings.
fn submission(
    n: u32,
    unit: &str,
    month: u32,
    status: SubmissionStatus,
    rows: Vec<Row>,
    findings: Vec<Finding>,
) -> NewSubmission {
    let ym = YearMonth::new(2020, month).unwrap();
    NewSubmission::new(
        Submission {
            id: 0,
            sha256: format!("{n:064x}"),
            unit: unit.into(),
            month: Some(ym),
            file_name: format!("{ym}-{n}.xlsx"),
            source_path: format!("/w/{unit}/{ym}-{n}.xlsx"),
            archive_path: format!("{unit}/{ym}/{n}.xlsx"),
            received_at: format!("2020-{:02}-2{}T09:00:00+08:00", month.min(12), n % 10),
            status,
            duplicate_of: None,
            superseded_by: None,
            rows: rows.len() as i64,
            errors: 0,
            warnings: 0,
            reporter: "王芳".into(),
            phone: "0571-87654321".into(),
            destination: format!("/w/{unit}/已接收/{ym}-{n}.xlsx"),
            feedback_path: None,
            moved: false,
        },
        rows,
        findings,
    )
}

fn message(key: &str, unit: &str) -> NewMessage {
    NewMessage {
        idempotency_key: key.into(),
        kind: "receipt".into(),
        unit: Some(unit.into()),
        to: vec!["xixing@example.cn".into()],
        cc: vec![],
        subject: "回执".into(),
        body: format!("正文 {key}"),
        attachments: vec![("反馈.xlsx".into(), "/a/反馈.xlsx".into())],
    }
}

fn records_supersedes_and_reads_back(l: &mut Ledger) {
    let plan = plan();
    let first = submission(
        1,
        "西兴街道",
        5,
        SubmissionStatus::Accepted,
        vec![
            row(2, 1, "主要负责人", 5, true),
            row(3, 2, "安全管理人员", 5, false),
        ],
        vec![Finding::new(
            Code::ExtraColumn,
            "培训台账",
            "L1",
            "备注",
            "多余的列",
        )],
    );
    let s1 = l
        .record(&plan, &first, &[message("r1", "西兴街道")])
        .unwrap();
    assert!(s1.id > 0);
    assert_eq!(s1.status, SubmissionStatus::Accepted);
    assert_eq!((s1.rows, s1.errors, s1.warnings), (2, 0, 1));
    assert_eq!(l.submission(s1.id).unwrap().unwrap(), s1);
    assert_eq!(l.findings(s1.id).unwrap(), first.findings);
    assert_eq!(
        l.find_counting_by_hash("西兴街道", &first.sha256).unwrap(),
        Some(s1.clone())
    );
    assert_eq!(
        l.find_counting_by_hash("长河街道", &first.sha256).unwrap(),
        None
    );
    let rows = l.counted_rows().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].row, first.counted_rows[0]);
    assert_eq!(rows[1].row.hours, 7.5);
    assert!(!rows[1].row.passed);

    // A later accepted return of the same unit and month replaces it.
    let second = submission(
        2,
        "西兴街道",
        5,
        SubmissionStatus::Accepted,
        vec![row(2, 3, "从业人员", 5, true)],
        vec![],
    );
    let s2 = l.record(&plan, &second, &[]).unwrap();
    assert!(s2.id > s1.id);
    let old = l.submission(s1.id).unwrap().unwrap();
    assert_eq!(old.status, SubmissionStatus::Superseded);
    assert_eq!(old.superseded_by, Some(s2.id));
    let rows = l.counted_rows().unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row.id, person(3));
    assert_eq!(l.unit_counted_rows("西兴街道").unwrap().len(), 1);
    assert!(l.unit_counted_rows("长河街道").unwrap().is_empty());
    assert_eq!(l.counted_total().unwrap(), 1);
    assert_eq!(l.submissions().unwrap().len(), 2);
    let kinds: Vec<String> = l
        .events(s1.id)
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(kinds, ["received", "checked", "accepted", "superseded"]);
    assert_eq!(l.all_findings().unwrap().len(), 1);
    assert!(l.message_stored("r1").unwrap());
}

fn duplicates_and_rejections_count_nothing(l: &mut Ledger) {
    let plan = plan();
    let bad = submission(
        1,
        "长河街道",
        3,
        SubmissionStatus::Rejected,
        vec![],
        vec![Finding::new(
            Code::IdInvalid,
            "培训台账",
            "C4",
            "33010",
            "身份证号位数不对",
        )],
    );
    let s = l.record(&plan, &bad, &[]).unwrap();
    assert_eq!((s.status, s.errors), (SubmissionStatus::Rejected, 1));
    let good = submission(
        2,
        "长河街道",
        3,
        SubmissionStatus::Accepted,
        vec![row(2, 7, "从业人员", 3, true)],
        vec![],
    );
    let g = l.record(&plan, &good, &[]).unwrap();
    let mut dup = submission(
        2,
        "长河街道",
        3,
        SubmissionStatus::Duplicate,
        vec![],
        vec![],
    );
    dup = NewSubmission::new(
        Submission {
            duplicate_of: Some(g.id),
            ..dup.provisional().clone()
        },
        vec![],
        vec![],
    );
    let d = l.record(&plan, &dup, &[]).unwrap();
    assert_eq!(d.duplicate_of, Some(g.id));
    assert_eq!(l.counted_rows().unwrap().len(), 1);
    assert_eq!(
        l.submission(g.id).unwrap().unwrap().status,
        SubmissionStatus::Accepted
    );
    let months = l.accepted_months().unwrap();
    assert_eq!(
        months.into_iter().collect::<Vec<_>>(),
        [("长河街道".to_string(), YearMonth::new(2020, 3).unwrap())]
    );
}

fn moves_and_events(l: &mut Ledger) {
    let plan = plan();
    let s = l
        .record(
            &plan,
            &submission(1, "浦沿街道", 4, SubmissionStatus::Accepted, vec![], vec![]),
            &[],
        )
        .unwrap();
    let t = l
        .record(
            &plan,
            &submission(
                2,
                "江北科技园",
                4,
                SubmissionStatus::Accepted,
                vec![],
                vec![],
            ),
            &[],
        )
        .unwrap();
    assert_eq!(
        l.unmoved()
            .unwrap()
            .iter()
            .map(|s| s.id)
            .collect::<Vec<_>>(),
        [s.id, t.id]
    );
    l.mark_moved(
        s.id,
        "/w/浦沿街道/已接收/x (2).xlsx",
        "2020-04-21T10:00:00+08:00",
    )
    .unwrap();
    l.mark_source_gone(t.id, "2020-04-21T10:00:00+08:00", "vanished")
        .unwrap();
    assert!(l.unmoved().unwrap().is_empty());
    let s = l.submission(s.id).unwrap().unwrap();
    assert!(s.moved);
    assert_eq!(s.destination, "/w/浦沿街道/已接收/x (2).xlsx");
    let t2 = l.submission(t.id).unwrap().unwrap();
    assert_eq!(
        t2.destination, t.destination,
        "a gone source keeps its destination"
    );
    let last = l.events(t.id).unwrap().pop().unwrap();
    assert_eq!(
        (last.kind.as_str(), last.detail.as_str()),
        ("source-gone", "vanished")
    );
}

fn reports_arrivals_and_months(l: &mut Ledger) {
    let plan = plan();
    l.record(
        &plan,
        &submission(
            1,
            "西兴街道",
            2,
            SubmissionStatus::Accepted,
            vec![row(2, 40, "从业人员", 2, true)],
            vec![],
        ),
        &[],
    )
    .unwrap();
    l.record(
        &plan,
        &submission(
            2,
            "长河街道",
            2,
            SubmissionStatus::Accepted,
            vec![
                row(2, 40, "从业人员", 2, true),
                row(3, 41, "从业人员", 2, true),
            ],
            vec![],
        ),
        &[],
    )
    .unwrap();
    l.record(
        &plan,
        &submission(3, "长河街道", 3, SubmissionStatus::Rejected, vec![], vec![]),
        &[],
    )
    .unwrap();
    let ids = [person(40), person(41), person(99)];
    let reports = l.reports_of_ids(ids.iter().map(String::as_str)).unwrap();
    assert_eq!(reports[&person(40)].len(), 2);
    assert_eq!(reports[&person(41)].len(), 1);
    assert!(!reports.contains_key(&person(99)));
    // Nothing of the probe stays behind, and a second probe works the same.
    let again = l.reports_of_ids([person(41).as_str()].into_iter()).unwrap();
    assert_eq!(again.len(), 1);
    let arrivals = l.arrivals(chrono_tz::Asia::Shanghai).unwrap();
    let changhe = &arrivals["长河街道"];
    let feb = &changhe[&YearMonth::new(2020, 2).unwrap()];
    assert!(feb.first_accepted.is_some() && feb.last_rejected.is_none());
    let mar = &changhe[&YearMonth::new(2020, 3).unwrap()];
    assert!(mar.first_accepted.is_none() && mar.last_rejected.is_some());
    let doubles = l.doubles().unwrap();
    assert_eq!(doubles.len(), 1);
    assert_eq!(doubles[0].id, person(40));
    assert!(doubles[0].across_units);
}

fn outbox_claims_leases_and_requeue(l: &mut Ledger) {
    let at = "2020-05-01T09:00:00+08:00";
    assert_eq!(
        l.queue(&[message("a", "西兴街道"), message("b", "长河街道")], at)
            .unwrap(),
        2
    );
    // Idempotent by key.
    assert_eq!(l.queue(&[message("a", "西兴街道")], at).unwrap(), 0);
    let queued = l.queued_messages().unwrap();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].to, ["xixing@example.cn"]);
    assert_eq!(queued[0].attachments[0].0, "反馈.xlsx");
    let a = &queued[0];
    // One sender claims it; a second claim of the same read loses.
    assert!(
        l.claim_message(a, "2020-05-01T09:05:00+08:00", 1000, 500)
            .unwrap()
    );
    assert!(
        !l.claim_message(a, "2020-05-01T09:05:00+08:00", 1000, 500)
            .unwrap()
    );
    let a2 = l.queued_messages().unwrap()[0].clone();
    assert_eq!((a2.attempts, a2.lease_until), (1, Some(1000)));
    // While the lease holds, it cannot be claimed again nor re-queued.
    assert!(!l.claim_message(&a2, "x", 2000, 900).unwrap());
    let r = l.requeue(&[a2.id], at, 900).unwrap();
    assert_eq!(r.sending, [a2.id]);
    l.record_delivery(a2.id, &["xixing@example.cn".into()])
        .unwrap();
    l.mark_sent(a2.id, "2020-05-01T09:01:00+08:00").unwrap();
    let b = l.queued_messages().unwrap()[0].clone();
    assert!(l.claim_message(&b, "later", 1000, 500).unwrap());
    l.mark_failed(b.id, "550 no such user").unwrap();
    assert!(l.queued_messages().unwrap().is_empty());
    assert_eq!(l.outbox(false).unwrap().len(), 1);
    assert_eq!(l.outbox(true).unwrap().len(), 2);
    let sent = &l.outbox(true).unwrap()[0];
    assert_eq!(sent.status, "sent");
    assert_eq!(sent.delivered_to, ["xixing@example.cn"]);
    // Re-queued after the lease ran out: due again, attempts counted afresh.
    let r = l.requeue(&[], "2020-05-02T09:00:00+08:00", 2000).unwrap();
    assert_eq!(r.changed, 1);
    assert!(r.sending.is_empty());
    let b = l.queued_messages().unwrap()[0].clone();
    assert_eq!(
        (b.attempts, b.last_error.as_deref()),
        (0, Some("550 no such user"))
    );
    l.defer_message(b.id, "421 try later").unwrap();
    assert_eq!(
        l.queued_messages().unwrap()[0].last_error.as_deref(),
        Some("421 try later")
    );
}

fn receipts_are_finished_with_their_figures(l: &mut Ledger) {
    let plan = plan();
    let new = submission(
        1,
        "西兴街道",
        6,
        SubmissionStatus::Accepted,
        vec![
            row(2, 1, "从业人员", 6, true),
            row(3, 2, "从业人员", 6, false),
            row(4, 3, "主要负责人", 6, true),
        ],
        vec![],
    );
    let mut m = message("receipt:1", "西兴街道");
    m.body = "您的报表 〔进度待填〕 已收到".into();
    l.record(&plan, &new, &[m]).unwrap();
    let unfinished = l.unfinished_receipts("〔进度待填〕").unwrap();
    assert_eq!(unfinished.len(), 1);
    let mut figures = l
        .receipt_figures(
            "西兴街道",
            &new.sha256,
            Some((&new.received_at, &new.destination)),
        )
        .unwrap();
    figures.sort();
    assert_eq!(
        figures,
        [
            ("主要负责人".to_string(), 1, 1),
            ("从业人员".to_string(), 2, 1)
        ]
    );
    assert_eq!(
        l.receipt_figures("西兴街道", &new.sha256, None)
            .unwrap()
            .len(),
        2
    );
    assert!(
        l.receipt_figures("长河街道", &new.sha256, None)
            .unwrap()
            .is_empty()
    );
    l.finish_receipt(unfinished[0].id, "您的报表已收到，进度如下")
        .unwrap();
    assert!(l.unfinished_receipts("〔进度待填〕").unwrap().is_empty());
}

fn schedule_rounds_commit_or_discard(l: &mut Ledger) {
    let at = "2020-05-26T09:00:00+08:00";
    {
        let round = l.schedule_round().unwrap();
        round.record_not_lagging("西兴街道", "2020-05", at).unwrap();
        round.record_reminded("长河街道", "2020-05", at, 1).unwrap();
        round.queue(&message("remind:1", "长河街道"), at).unwrap();
        assert!(round.message_stored("remind:1").unwrap());
        round.discard().unwrap();
    }
    assert!(!l.message_stored("remind:1").unwrap());
    let round = l.schedule_round().unwrap();
    assert_eq!(round.window_record("长河街道", "2020-05").unwrap(), None);
    round.record_not_lagging("西兴街道", "2020-05", at).unwrap();
    round.record_reminded("长河街道", "2020-04", at, 1).unwrap();
    round.record_reminded("长河街道", "2020-05", at, 2).unwrap();
    // A window already recorded as lagging stays as it was.
    round.record_reminded("长河街道", "2020-05", at, 7).unwrap();
    round.record_not_lagging("长河街道", "2020-05", at).unwrap();
    round.queue(&message("remind:2", "长河街道"), at).unwrap();
    assert_eq!(round.failed_messages().unwrap(), 0);
    round.commit().unwrap();
    let round = l.schedule_round().unwrap();
    let r = round.window_record("长河街道", "2020-05").unwrap().unwrap();
    assert_eq!((r.lagging, r.streak), (true, 2));
    let prev = round
        .previous_window_record("长河街道", "2020-05")
        .unwrap()
        .unwrap();
    assert_eq!(prev.window, "2020-04");
    let x = round.window_record("西兴街道", "2020-05").unwrap().unwrap();
    assert_eq!((x.lagging, x.streak), (false, 0));
    round.discard().unwrap();
    assert!(l.message_stored("remind:2").unwrap());
}

fn watcher_files_alarms_and_state(l: &mut Ledger) {
    let stat = Stat {
        size: 10,
        mtime: std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_590_000_000),
    };
    let p = Path::new("/w/西兴街道/2020-05.xlsx");
    l.file_seen(p, Some("西兴街道"), "t1").unwrap();
    l.file_seen(p, Some("西兴街道"), "t2").unwrap();
    assert_eq!(l.begin_taking(p, "西兴街道", stat, "t3").unwrap(), 0);
    assert_eq!(l.begin_taking(p, "西兴街道", stat, "t4").unwrap(), 0);
    l.file_read(p).unwrap();
    assert_eq!(l.begin_taking(p, "西兴街道", stat, "t5").unwrap(), 1);
    l.file_failed(p, "cannot read", "t6").unwrap();
    assert_eq!(l.begin_taking(p, "西兴街道", stat, "t7").unwrap(), 1);
    assert_eq!(l.noted_files().unwrap(), [p.to_path_buf()]);
    l.file_gone(p).unwrap();
    assert!(l.noted_files().unwrap().is_empty());
    let stray = Path::new("/w/stray.xlsx");
    assert!(l.outside_file_noted(stray, "t1").unwrap());
    assert!(!l.outside_file_noted(stray, "t2").unwrap());
    assert!(!l.master_stale().unwrap());
    l.set_master_stale(true).unwrap();
    l.set_master_stale(true).unwrap();
    assert!(l.master_stale().unwrap());
    l.set_master_stale(false).unwrap();
    assert!(!l.master_stale().unwrap());
    let archive = Path::new("/plan/archive");
    assert!(l.note_storage_alarm(archive, "t1").unwrap());
    assert!(!l.note_storage_alarm(archive, "t2").unwrap());
    assert_eq!(l.storage_alarms().unwrap(), [archive.to_path_buf()]);
    l.clear_storage_alarm(archive).unwrap();
    assert!(l.storage_alarms().unwrap().is_empty());
    assert_eq!(l.state_value("k").unwrap(), None);
    l.set_state_value("k", "1").unwrap();
    l.set_state_value("k", "2").unwrap();
    assert_eq!(l.state_value("k").unwrap().as_deref(), Some("2"));
}

fn tallies_follow_every_record(l: &mut Ledger) {
    let mut plan = plan();
    let months = [1u32, 2, 2, 3];
    for (n, &m) in months.iter().enumerate() {
        let unit = if n % 2 == 0 {
            "西兴街道"
        } else {
            "长河街道"
        };
        let rows = (0..5)
            .map(|i| {
                row(
                    2 + i,
                    (n as u32 * 3 + i) % 8,
                    ["主要负责人", "从业人员"][i as usize % 2],
                    m,
                    i != 3,
                )
            })
            .collect();
        l.record(
            &plan,
            &submission(
                n as u32 + 1,
                unit,
                m,
                SubmissionStatus::Accepted,
                rows,
                vec![],
            ),
            &[],
        )
        .unwrap();
        assert_eq!(l.tallies().unwrap(), l.rescan_tallies(&plan).unwrap());
        let counted = tally::core::count::figures(&plan, &l.counted_rows().unwrap());
        assert_eq!(l.figures(&plan).unwrap(), counted);
        assert_eq!(l.completed(&plan).unwrap(), counted.completed);
    }
    assert!(!l.refresh_tallies(&plan).unwrap());
    plan.categories[0].require_pass = !plan.categories[0].require_pass;
    assert!(l.refresh_tallies(&plan).unwrap());
    assert_eq!(l.tallies().unwrap(), l.rescan_tallies(&plan).unwrap());
    assert_eq!(l.roster_stamps().unwrap().len(), 2);
    assert_eq!(l.submission_stamps().unwrap().len(), 2);
}

fn parallel_readers_see_the_ledger(l: &mut Ledger) {
    let plan = plan();
    for (n, unit) in ["西兴街道", "长河街道", "浦沿街道"].iter().enumerate() {
        l.record(
            &plan,
            &submission(
                n as u32,
                unit,
                7,
                SubmissionStatus::Accepted,
                vec![row(2, n as u32, "从业人员", 7, true)],
                vec![],
            ),
            &[],
        )
        .unwrap();
    }
    let units = ["西兴街道", "长河街道", "浦沿街道", "江北科技园"];
    let counts = l
        .in_parallel(&units, |reader, unit| {
            reader.unit_counted_rows(unit).unwrap().len()
        })
        .unwrap();
    assert_eq!(counts, [1, 1, 1, 0]);
}

fn reopening_keeps_everything(l: &mut Ledger) {
    let plan = plan();
    let s = l
        .record(
            &plan,
            &submission(
                1,
                "西兴街道",
                8,
                SubmissionStatus::Accepted,
                vec![row(2, 5, "从业人员", 8, true)],
                vec![],
            ),
            &[message("k", "西兴街道")],
        )
        .unwrap();
    // A second connection to the same ledger (a second watcher, or the next run) sees it,
    // and opening an up-to-date schema migrates nothing.
    let again = Ledger::open_at(l.location()).unwrap();
    assert_eq!(again.submission(s.id).unwrap().unwrap(), s);
    assert_eq!(again.counted_rows().unwrap().len(), 1);
    assert!(again.message_stored("k").unwrap());
}

fn records_only_under_a_live_claim(l: &mut Ledger) {
    let plan = plan();
    let shared = l.location().shared();
    // Watcher "a" claims the file until 1000 (clock 500): a second claim loses.
    assert!(
        l.claim_file("西兴街道", "5月.xlsx", "a", 1000, 500)
            .unwrap()
    );
    assert_eq!(
        l.claim_file("西兴街道", "5月.xlsx", "b", 1100, 600)
            .unwrap(),
        !shared,
        "an SQLite ledger has one writer: a claim is always granted"
    );
    let new = submission(1, "西兴街道", 5, SubmissionStatus::Accepted, vec![], vec![]);
    if shared {
        // The claim ran out and "b" took the file over: "a" records nothing.
        assert!(
            l.claim_file("西兴街道", "5月.xlsx", "b", 2100, 1500)
                .unwrap()
        );
        l.under_claim(Some(("西兴街道", "5月.xlsx", "a")));
        let err = l.record(&plan, &new, &[]).unwrap_err();
        assert!(
            matches!(err, tally::ledger::LedgerError::ClaimLost { .. }),
            "{err}"
        );
        assert!(l.submissions().unwrap().is_empty());
        l.under_claim(Some(("西兴街道", "5月.xlsx", "b")));
    }
    l.record(&plan, &new, &[]).unwrap();
    l.under_claim(None);
    l.release_file("西兴街道", "5月.xlsx", if shared { "b" } else { "a" })
        .unwrap();
    assert_eq!(l.submissions().unwrap().len(), 1);
    assert!(
        l.claim_file("西兴街道", "5月.xlsx", "c", 3000, 2500)
            .unwrap()
    );
}

/// Rows written while a return is read (`write_ahead`) end up in the ledger exactly when the
/// return is recorded accepted with those rows first; otherwise they leave no trace. A ledger
/// that does not write ahead (PostgreSQL) ends the same.
fn rows_written_ahead_go_only_with_their_return(l: &mut Ledger) {
    let plan = plan();
    let rows = |seeds: std::ops::Range<u32>, month: u32| -> Vec<Row> {
        seeds
            .enumerate()
            .map(|(i, seed)| row(2 + i as u32, seed, "从业人员", month, true))
            .collect()
    };
    let counted = |l: &Ledger| -> Vec<(String, u32, String)> {
        let mut c: Vec<_> = l
            .counted_rows()
            .unwrap()
            .into_iter()
            .map(|r| (r.unit, r.row.line, r.row.id))
            .collect();
        c.sort();
        c
    };
    let accepted =
        |n, unit, month, rows| submission(n, unit, month, SubmissionStatus::Accepted, rows, vec![]);
    l.record(&plan, &accepted(1, "西兴街道", 1, rows(0..4, 1)), &[])
        .unwrap();

    // Accepted with the rows written ahead first: they are its rows, once, the rest added.
    let b = rows(10..20, 2);
    l.write_ahead(&b[..3]).unwrap();
    l.write_ahead(&b[3..6]).unwrap();
    // The ledger is read meanwhile (the doubles of the return).
    let reports = l
        .reports_of_ids(["33010819800101000 7"].into_iter())
        .unwrap();
    assert!(reports.is_empty());
    let s = l
        .record(&plan, &accepted(2, "长河街道", 2, b.clone()), &[])
        .unwrap();
    assert_eq!(s.rows, 10);
    let mut want: Vec<_> = rows(0..4, 1)
        .into_iter()
        .map(|r| ("西兴街道".to_string(), r.line, r.id))
        .chain(
            b.iter()
                .map(|r| ("长河街道".to_string(), r.line, r.id.clone())),
        )
        .collect();
    want.sort();
    assert_eq!(counted(l), want);
    assert!(!l.writing_ahead());
    let in_ledger: Vec<Row> = l
        .unit_counted_rows("长河街道")
        .unwrap()
        .into_iter()
        .map(|r| r.row)
        .collect();
    assert_eq!(in_ledger, b, "every field as recorded, in order");

    // Accepted with other rows than those written ahead (checked again on another basis):
    // only its own rows.
    let mut c = rows(30..35, 3);
    l.write_ahead(&c[..3]).unwrap();
    c[1].name = "另一人".into();
    l.record(&plan, &accepted(3, "浦沿街道", 3, c.clone()), &[])
        .unwrap();
    let of_c: Vec<Row> = l
        .unit_counted_rows("浦沿街道")
        .unwrap()
        .into_iter()
        .map(|r| r.row)
        .collect();
    assert_eq!(of_c, c);

    // Rejected after its rows were written ahead, or given up: nothing of them stays.
    l.write_ahead(&rows(40..45, 4)).unwrap();
    l.record(
        &plan,
        &submission(
            4,
            "西兴街道",
            4,
            SubmissionStatus::Rejected,
            vec![],
            vec![Finding::file(Code::MissingCell, "缺少内容")],
        ),
        &[],
    )
    .unwrap();
    l.write_ahead(&rows(50..55, 5)).unwrap();
    l.discard_ahead();
    assert!(!l.writing_ahead());
    l.record(&plan, &accepted(5, "西兴街道", 5, rows(60..62, 5)), &[])
        .unwrap();
    assert_eq!(counted(l).len(), 4 + 10 + 5 + 2);
    assert_eq!(l.tallies().unwrap(), l.rescan_tallies(&plan).unwrap());
}
