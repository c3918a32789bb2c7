//! Properties of the ledger over arbitrary sequences of drops: ingesting every return twice
//! gives the same counts as once, and the counts always equal those of the latest return per
//! unit and month (supersession), whatever the order of duplicates and resubmissions.

mod common;

use common::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use tally::config::Config;
use tally::intake::{self, IntakeContext};
use tally::ledger::Ledger;

const UNITS: [&str; 2] = ["西兴街道", "长河街道"];
const CATS: [&str; 3] = ["企业主要负责人", "安全生产管理人员", "其他从业人员"];

#[derive(Debug, Clone)]
struct Drop {
    unit: usize,
    month: u32,
    people: Vec<(u32, usize, bool)>,
}

fn drop_strategy() -> impl Strategy<Value = Drop> {
    (
        0..UNITS.len(),
        1u32..=3,
        prop::collection::vec((0u32..8, 0..CATS.len(), any::<bool>()), 0..4),
    )
        .prop_map(|(unit, month, people)| Drop {
            unit,
            month,
            people,
        })
}

fn bytes_of(d: &Drop) -> Vec<u8> {
    let month = format!("2020-{:02}", d.month);
    let people: Vec<Person> = d
        .people
        .iter()
        .enumerate()
        .map(|(i, (seed, cat, pass))| {
            let mut p = Person::new(
                *seed,
                CATS[*cat],
                &format!("2020-{:02}-{:02}", d.month, 1 + i),
            );
            if !pass {
                p = p.failed();
            }
            p
        })
        .collect();
    return_xlsx(UNITS[d.unit], &month, &people)
}

/// Ingest the drops (each `times` times in a row) into a fresh plan folder; return the counts.
/// Counts per (unit, category) and the (unit, month) pairs with an accepted return.
type Outcome = (BTreeMap<(String, String), u64>, BTreeSet<(String, String)>);

fn run(drops: &[Drop], times: usize) -> Outcome {
    let w = Workdir::new();
    let config = Config::load(&w.join("tally.toml")).unwrap();
    let mut ledger = Ledger::open(&config.state_path()).unwrap();
    let compose = |_: &tally::ledger::Ledger,
                   _: &tally::ledger::Submission,
                   _: &[tally::core::findings::Finding]| Vec::new();
    let config_path = w.join("tally.toml");
    let now = tally::core::calendar::parse_now("2020-07-01", config.plan.tz).unwrap();
    let ctx = IntakeContext {
        config: &config,
        plan: &std::sync::Arc::new(config.plan.clone()),
        config_path: &config_path,
        exe: std::path::Path::new(BIN),
        now,
        compose: &compose,
    };
    for (i, d) in drops.iter().enumerate() {
        let bytes = bytes_of(d);
        for t in 0..times {
            let unit = config.plan.find_unit(UNITS[d.unit]).unwrap();
            let p = drop_return(
                &config.unit_dir(unit),
                &format!("drop-{i}-{t}.xlsx"),
                &bytes,
            );
            intake::ingest(&ctx, &mut ledger, unit, &p).unwrap();
        }
    }
    let rows = ledger.counted_rows().unwrap();
    let months = ledger
        .accepted_months()
        .unwrap()
        .into_iter()
        .map(|(u, m)| (u, m.to_string()))
        .collect();
    (tally::core::count::completed(&config.plan, &rows), months)
}

/// The expected counts: distinct passed IDs per unit × category over the last drop of each
/// (unit, month).
fn expected(drops: &[Drop]) -> BTreeMap<(String, String), u64> {
    let mut last: BTreeMap<(usize, u32), &Drop> = BTreeMap::new();
    for d in drops {
        last.insert((d.unit, d.month), d);
    }
    let mut ids: BTreeMap<(String, String), BTreeSet<u32>> = BTreeMap::new();
    for d in last.values() {
        for (seed, cat, pass) in &d.people {
            if *pass {
                ids.entry((UNITS[d.unit].to_string(), CATS[*cat].to_string()))
                    .or_default()
                    .insert(*seed);
            }
        }
    }
    ids.into_iter().map(|(k, v)| (k, v.len() as u64)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn ingesting_twice_equals_once_and_the_latest_return_counts(drops in prop::collection::vec(drop_strategy(), 1..6)) {
        // One person may appear twice in one return and category (id-duplicate is a warning);
        // the model counts distinct IDs, as the ledger does.
        let once = run(&drops, 1);
        let twice = run(&drops, 2);
        prop_assert_eq!(&once, &twice);
        let want = expected(&drops);
        for (key, n) in &once.0 {
            prop_assert_eq!(*n, want.get(key).copied().unwrap_or(0), "{:?}", key);
        }
    }
}
