//! The ledger's kept aggregates (issue 11) over arbitrary sequences of returns: the tallies
//! kept per unit × category × month equal a rescan of the rows, the figures from them equal
//! the streaming counter's over every counted row, and the double reports are the counter's —
//! after every return, whatever supersedes what, and after the plan's counting changes.

use chrono::NaiveDate;
use proptest::prelude::*;
use tally::core::calendar::YearMonth;
use tally::core::count;
use tally::core::plan::{Counting, Plan};
use tally::core::returns::Row;
use tally::ledger::{Ledger, NewSubmission, Submission, SubmissionStatus};

mod common;
#[path = "pg/mod.rs"]
mod pg;

use common::reference_plan as reference;

const UNITS: [&str; 3] = ["西兴街道", "长河街道", "旧单位"];

#[derive(Debug, Clone)]
struct Op {
    unit: usize,
    month: u32,
    rejected: bool,
    /// (person, category index (3 = not in the plan), date month (13 = the year before), passed)
    rows: Vec<(u32, usize, u32, bool)>,
}

fn op() -> impl Strategy<Value = Op> {
    (
        0..UNITS.len(),
        1u32..=4,
        prop::bool::weighted(0.15),
        prop::collection::vec(
            (0u32..12, 0usize..4, 1u32..=13, prop::bool::weighted(0.8)),
            0..7,
        ),
    )
        .prop_map(|(unit, month, rejected, rows)| Op {
            unit,
            month,
            rejected,
            rows,
        })
}

fn id(p: u32) -> String {
    // A few IDs that do not pack into a number, the rest 18 characters.
    match p {
        0 => "12345".into(),
        _ => format!(
            "3301081980010{p:04}{}",
            if p.is_multiple_of(3) { "X" } else { "7" }
        ),
    }
}

fn new_submission(plan: &Plan, n: usize, o: &Op) -> NewSubmission {
    let mut cats = plan.category_names();
    cats.push("未列入类别".into());
    let ym = YearMonth::new(plan.year, o.month).unwrap();
    let rows: Vec<Row> = if o.rejected {
        Vec::new()
    } else {
        o.rows
            .iter()
            .enumerate()
            .map(|(i, &(p, c, m, passed))| {
                let date = if m == 13 {
                    NaiveDate::from_ymd_opt(plan.year - 1, 12, 3).unwrap()
                } else {
                    NaiveDate::from_ymd_opt(plan.year, m, 1 + i as u32).unwrap()
                };
                Row {
                    line: 2 + i as u32,
                    name: format!("人员{p}"),
                    id: id(p),
                    enterprise: "某公司".into(),
                    credit_code: String::new(),
                    category: cats[c].clone(),
                    date,
                    hours: 8.0,
                    passed,
                    certificate: String::new(),
                }
            })
            .collect()
    };
    let unit = UNITS[o.unit];
    let submission = Submission {
        id: 0,
        sha256: format!("{n:064x}"),
        unit: unit.into(),
        month: Some(ym),
        file_name: format!("{n}.xlsx"),
        source_path: format!("watch-dirs/{unit}/{n}.xlsx"),
        archive_path: format!("{unit}/{ym}/{n}.xlsx"),
        received_at: "2020-07-01T09:00:00+08:00".into(),
        status: if o.rejected {
            SubmissionStatus::Rejected
        } else {
            SubmissionStatus::Accepted
        },
        duplicate_of: None,
        superseded_by: None,
        rows: rows.len() as i64,
        errors: 0,
        warnings: 0,
        reporter: "王芳".into(),
        phone: "0571-87654321".into(),
        destination: String::new(),
        feedback_path: None,
        moved: false,
    };
    NewSubmission::new(submission, rows, Vec::new())
}

/// The figures the streaming counter makes of every counted row (no kept aggregate used).
fn counted(plan: &Plan, ledger: &Ledger) -> count::Figures {
    count::figures(plan, &ledger.counted_rows().unwrap())
}

fn check(plan: &Plan, ledger: &Ledger, fresh: bool) -> Result<(), TestCaseError> {
    let stamp = ledger.state_value("tallies_plan").unwrap();
    prop_assert_eq!(
        stamp.as_deref() == Some(&count::tally_fingerprint(plan)),
        fresh
    );
    if fresh {
        prop_assert_eq!(
            ledger.tallies().unwrap(),
            ledger.rescan_tallies(plan).unwrap()
        );
    }
    prop_assert_eq!(ledger.figures(plan).unwrap(), counted(plan, ledger));
    Ok(())
}

/// The property of this file on one ledger: after every return of `ops` (the plan's counting
/// changing before return `change_at`) the kept tallies equal a rescan.
fn kept_tallies_hold(
    mut ledger: Ledger,
    ops: &[Op],
    change_at: usize,
    rule: bool,
) -> Result<(), TestCaseError> {
    let mut plan = reference();
    plan.categories[2].require_pass = false;
    let mut fresh = false;
    for (n, o) in ops.iter().enumerate() {
        if n == change_at {
            // The plan's counting changes: readers count the rows until a writer recounts.
            plan.categories[0].require_pass = !plan.categories[0].require_pass;
            if rule {
                plan.categories[1].counting = Counting::PersonTimes;
            }
            fresh = false;
            prop_assert_eq!(ledger.figures(&plan).unwrap(), counted(&plan, &ledger));
        }
        ledger
            .record(&plan, &new_submission(&plan, n, o), &[])
            .unwrap();
        // An accepted return recounts tallies counted under another plan.
        fresh |= !o.rejected;
        check(&plan, &ledger, fresh)?;
    }
    prop_assert_eq!(ledger.refresh_tallies(&plan).unwrap(), !fresh);
    check(&plan, &ledger, true)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn kept_tallies_equal_a_rescan(
        ops in prop::collection::vec(op(), 1..14),
        change_at in 0usize..14,
        rule in prop::bool::ANY,
    ) {
        let dir = tempfile::tempdir().unwrap();
        kept_tallies_hold(pg::ledger("", "sqlite", dir.path()).unwrap(), &ops, change_at, rule)?;
    }
}

proptest! {
    // A database per case on the server: fewer cases, the same property.
    #![proptest_config(ProptestConfig::with_cases(12))]

    #[test]
    fn kept_tallies_equal_a_rescan_on_postgres(
        ops in prop::collection::vec(op(), 1..14),
        change_at in 0usize..14,
        rule in prop::bool::ANY,
    ) {
        let dir = tempfile::tempdir().unwrap();
        if let Some(ledger) = pg::ledger("tallies::kept_tallies_equal_a_rescan_on_postgres", "postgres", dir.path()) {
            kept_tallies_hold(ledger, &ops, change_at, rule)?;
        }
    }
}

/// A ledger written before the tallies existed is recounted by the first writer, and double
/// reports are found from its rows by the migration itself.
#[test]
fn a_stale_ledger_is_recounted_once() {
    for backend in ["sqlite", "postgres"] {
        let dir = tempfile::tempdir().unwrap();
        if let Some(ledger) = pg::ledger(
            "tallies::a_stale_ledger_is_recounted_once",
            backend,
            dir.path(),
        ) {
            stale_ledger_is_recounted_once(ledger);
        }
    }
}

fn stale_ledger_is_recounted_once(mut ledger: Ledger) {
    let plan = reference();
    let o = |unit, month| Op {
        unit,
        month,
        rejected: false,
        rows: vec![(5, 0, month, true), (6, 2, month, true)],
    };
    ledger
        .record(&plan, &new_submission(&plan, 0, &o(0, 1)), &[])
        .unwrap();
    ledger
        .record(&plan, &new_submission(&plan, 1, &o(1, 2)), &[])
        .unwrap();
    let figures = counted(&plan, &ledger);
    assert_eq!(figures.doubles.len(), 2, "persons 5 and 6 in two units");
    assert_eq!(ledger.figures(&plan).unwrap(), figures);
    let mut other = plan.clone();
    other.year = 2021;
    assert!(ledger.refresh_tallies(&other).unwrap());
    assert!(!ledger.refresh_tallies(&other).unwrap());
    assert_eq!(ledger.figures(&other).unwrap(), counted(&other, &ledger));
    assert!(ledger.tallies().unwrap().is_empty(), "nothing dated 2021");
}
