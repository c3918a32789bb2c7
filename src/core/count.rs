//! Counting (DESIGN.md §2): accepted, non-superseded rows → completed per unit × category,
//! monthly progress, lagging, missing months and double reporting. One counter, [`Counter`],
//! takes the rows one at a time as they stream from the ledger (the master never holds them
//! all); [`figures`] and [`status`] run it over rows already in memory. Pure: rows and `now`
//! come in, figures go out — no ledger, no workbook, no clock.

use crate::core::calendar::{self, YearMonth};
use crate::core::ids;
use crate::core::plan::{Counting, Plan};
use crate::core::returns::Row;
use chrono::{DateTime, Datelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A row that counts: from an accepted return that has not been superseded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountedRow {
    pub submission: i64,
    /// Canonical unit (the folder's unit).
    pub unit: String,
    /// The return's reporting month.
    pub month: YearMonth,
    pub row: Row,
}

/// `status --json` (DESIGN.md §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub as_of: String,
    pub plan: String,
    pub year: i32,
    pub units: Vec<UnitStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitStatus {
    pub unit: String,
    pub lagging: bool,
    pub missing_months: Vec<String>,
    pub categories: Vec<CategoryStatus>,
}

/// The columns of a category's standing wherever it is shown as a table (the terminal's
/// `status`, a unit's progress workbook), in the glossary's words.
pub const CATEGORY_COLUMNS: [&str; 6] = [
    "人员类别",
    "年度指标",
    "已完成",
    "完成率",
    "序时进度",
    "状态",
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryStatus {
    pub category: String,
    pub target: u32,
    pub completed: u64,
    /// Target × schedule fraction at `as_of`, rounded to one decimal.
    pub expected: f64,
    pub lagging: bool,
}

/// Whether a row counts toward its category's figure, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Eligibility {
    Counts,
    /// Its 人员类别 is not one of the plan's categories.
    UnknownCategory,
    /// Its training date is outside the plan year.
    OutsideYear,
    /// Not 合格 in a category that counts only those who passed.
    Failed,
}

/// Whether `row` counts: a configured category, a training date in the plan year, 合格 where
/// the category requires it.
pub fn eligibility(plan: &Plan, row: &Row) -> Eligibility {
    let Some(cat) = plan.categories.iter().find(|c| c.name == row.category) else {
        return Eligibility::UnknownCategory;
    };
    if row.date.year() != plan.year {
        Eligibility::OutsideYear
    } else if !row.passed && cat.require_pass {
        Eligibility::Failed
    } else {
        Eligibility::Counts
    }
}

/// What the counted rows add up to.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Figures {
    /// Completed per configured (unit, category) by the category's counting rule.
    pub completed: BTreeMap<(String, String), u64>,
    /// Completed per configured (unit, category) at the end of each month of the plan year
    /// (index 0 = January): a person counts from the date of their first qualifying training.
    pub monthly: BTreeMap<(String, String), [u64; 12]>,
    /// Persons reported by two units, or by one unit in one category in two returns; by ID.
    pub doubles: Vec<Double>,
}

impl Figures {
    /// The figures from what each (unit, category) completed in each month of the plan year:
    /// the months summed up to each month's end, and the year's total.
    fn from_months(
        per_month: BTreeMap<(String, String), [u64; 12]>,
        doubles: Vec<Double>,
    ) -> Figures {
        let mut completed = BTreeMap::new();
        let mut monthly = BTreeMap::new();
        for (key, mut months) in per_month {
            for i in 1..12 {
                months[i] += months[i - 1];
            }
            completed.insert(key.clone(), months[11]);
            monthly.insert(key, months);
        }
        Figures {
            completed,
            monthly,
            doubles,
        }
    }
}

/// One person reported more than once across returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Double {
    /// Full 身份证号; mask before showing.
    pub id: String,
    /// The name in the person's first report.
    pub name: String,
    /// True when two or more units reported the person; false: one unit, one category, in
    /// two or more returns.
    pub across_units: bool,
    /// Every report of the person, in ledger order (submission, line).
    pub reports: Vec<DoubleEntry>,
}

/// One report of a person reported more than once.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoubleEntry {
    pub unit: String,
    /// The return's reporting month.
    pub month: YearMonth,
    pub category: String,
    pub submission: i64,
    /// The row's line in the return's roster.
    pub line: u32,
}

/// The figures of rows in memory (what [`Counter`] makes of them, one by one).
pub fn figures(plan: &Plan, rows: &[CountedRow]) -> Figures {
    let mut counter = Counter::new(plan);
    counter.reserve(rows.len());
    for r in rows {
        counter.add(r);
    }
    counter.finish()
}

/// Completed per (unit, category) by the category's counting rule.
pub fn completed(plan: &Plan, rows: &[CountedRow]) -> BTreeMap<(String, String), u64> {
    figures(plan, rows).completed
}

/// Months past their deadline at `now` for which a unit has no accepted return.
pub fn missing_months(
    plan: &Plan,
    now: DateTime<Tz>,
    unit: &str,
    accepted: &BTreeSet<(String, YearMonth)>,
) -> Vec<YearMonth> {
    calendar::overdue_months(plan, now)
        .into_iter()
        .filter(|m| !accepted.contains(&(unit.to_string(), *m)))
        .collect()
}

/// Progress of every unit and category at `now`.
pub fn status(
    plan: &Plan,
    now: DateTime<Tz>,
    rows: &[CountedRow],
    accepted: &BTreeSet<(String, YearMonth)>,
) -> Status {
    status_from(plan, now, &completed(plan, rows), accepted)
}

/// Progress of every unit and category at `now`, from completed figures already counted
/// ([`Figures::completed`]).
pub fn status_from(
    plan: &Plan,
    now: DateTime<Tz>,
    done: &BTreeMap<(String, String), u64>,
    accepted: &BTreeSet<(String, YearMonth)>,
) -> Status {
    let fraction = calendar::expected_fraction(plan, now);
    let units = plan
        .units
        .iter()
        .map(|u| {
            let categories: Vec<CategoryStatus> = plan
                .categories
                .iter()
                .map(|c| {
                    let target = plan.target(&u.name, &c.name).unwrap_or(0);
                    let completed = done
                        .get(&(u.name.clone(), c.name.clone()))
                        .copied()
                        .unwrap_or(0);
                    let expected = f64::from(target) * fraction;
                    CategoryStatus {
                        category: c.name.clone(),
                        target,
                        completed,
                        expected: (expected * 10.0).round() / 10.0,
                        lagging: calendar::is_lagging(plan, completed, expected),
                    }
                })
                .collect();
            let missing: Vec<String> = missing_months(plan, now, &u.name, accepted)
                .into_iter()
                .map(|m| m.to_string())
                .collect();
            UnitStatus {
                unit: u.name.clone(),
                lagging: !missing.is_empty() || categories.iter().any(|c| c.lagging),
                missing_months: missing,
                categories,
            }
        })
        .collect();
    Status {
        as_of: calendar::stamp(now),
        plan: plan.title.clone(),
        year: plan.year,
        units,
    }
}

// ---------------------------------------------------------------------------------------------
// Kept tallies: what the ledger keeps per unit × category × training month, so that figures
// come from a few hundred numbers instead of a rescan of every row.

/// One kept tally: for a unit, a category and a training month of the plan year (0 = January),
/// the persons whose first qualifying training in that unit and category falls in the month,
/// and the qualifying rows (person-times) dated in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TallyCounts {
    pub persons: i64,
    pub times: i64,
}

/// Tallies by (unit, category, training month 0..=11).
pub type Tallies = BTreeMap<(String, String, u8), TallyCounts>;

/// One counted report of a person, as much as tallies and double reports need.
#[derive(Debug, Clone, PartialEq)]
pub struct PersonReport {
    pub unit: String,
    pub category: String,
    pub date: chrono::NaiveDate,
    pub passed: bool,
    pub submission: i64,
}

/// What the plan's counting depends on besides the rows: the year and each category's name
/// and `require_pass`. Kept tallies made under another fingerprint are recounted.
pub fn tally_fingerprint(plan: &Plan) -> String {
    let mut s = format!("v1;{}", plan.year);
    for c in &plan.categories {
        s.push(';');
        s.push_str(&c.name);
        s.push(if c.require_pass { '+' } else { '-' });
    }
    s
}

fn qualifies(plan: &Plan, category: &str, date: chrono::NaiveDate, passed: bool) -> bool {
    plan.categories
        .iter()
        .find(|c| c.name == category)
        .is_some_and(|c| date.year() == plan.year && (passed || !c.require_pass))
}

/// What one person's counted reports (all of them, any order) add to the tallies.
pub fn person_tallies(plan: &Plan, reports: &[PersonReport]) -> Tallies {
    let mut sum = TallySum::default();
    sum.add_person(
        plan,
        reports
            .iter()
            .map(|r| (r.unit.as_str(), r.category.as_str(), r.date, r.passed)),
    );
    let mut out = Tallies::new();
    sum.add_to(&mut out);
    out
}

/// Tallies summed person by person, their keys borrowed from the reports while summing (a
/// 50,000-row return makes a few dozen keys, not an allocation per person). The one place
/// where a person's reports are counted: each qualifying report is a person-time in its
/// month; the person counts once per unit and category, in the first such month.
#[derive(Debug, Default)]
pub struct TallySum<'r> {
    sums: super::FastMap<(&'r str, &'r str, u8), TallyCounts>,
}

impl<'r> TallySum<'r> {
    /// Add one person's reports: (unit, category, training date, passed).
    pub fn add_person(
        &mut self,
        plan: &Plan,
        reports: impl IntoIterator<Item = (&'r str, &'r str, chrono::NaiveDate, bool)>,
    ) {
        let mut firsts: Vec<(&'r str, &'r str, u8)> = Vec::new();
        for (unit, category, date, passed) in reports {
            if !qualifies(plan, category, date, passed) {
                continue;
            }
            let m = date.month0() as u8;
            self.sums.entry((unit, category, m)).or_default().times += 1;
            match firsts
                .iter_mut()
                .find(|(u, c, _)| *u == unit && *c == category)
            {
                Some((_, _, first)) => *first = (*first).min(m),
                None => firsts.push((unit, category, m)),
            }
        }
        for key in firsts {
            self.sums.entry(key).or_default().persons += 1;
        }
    }

    /// Add the sums to `into`.
    pub fn add_to(self, into: &mut Tallies) {
        for ((unit, category, m), v) in self.sums {
            let e = into
                .entry((unit.to_string(), category.to_string(), m))
                .or_default();
            e.persons += v.persons;
            e.times += v.times;
        }
    }
}

/// Whether one person's counted reports make a double report (DESIGN.md §2): two or more
/// units, or one unit and category in two or more returns.
pub fn is_double(reports: &[PersonReport]) -> bool {
    let Some(first) = reports.first() else {
        return false;
    };
    if reports.iter().any(|r| r.unit != first.unit) {
        return true;
    }
    let mut seen: HashMap<&str, i64> = HashMap::new();
    reports.iter().any(|r| {
        let sub = *seen.entry(&r.category).or_insert(r.submission);
        sub != r.submission
    })
}

/// `after − before`, per tally, leaving out what does not change.
pub fn tally_delta(before: &Tallies, after: &Tallies) -> Tallies {
    let mut out = Tallies::new();
    for (k, a) in after {
        let b = before.get(k).copied().unwrap_or_default();
        let d = TallyCounts {
            persons: a.persons - b.persons,
            times: a.times - b.times,
        };
        if d != TallyCounts::default() {
            out.insert(k.clone(), d);
        }
    }
    for (k, b) in before {
        if !after.contains_key(k) && *b != TallyCounts::default() {
            out.insert(
                k.clone(),
                TallyCounts {
                    persons: -b.persons,
                    times: -b.times,
                },
            );
        }
    }
    out
}

/// The figures from kept tallies and the double reports: what [`Counter`] makes of every
/// counted row, without the rows.
pub fn figures_from_tallies(plan: &Plan, tallies: &Tallies, doubles: Vec<Double>) -> Figures {
    let mut per_month = BTreeMap::new();
    for u in &plan.units {
        for c in &plan.categories {
            let mut months = [0u64; 12];
            for (m, slot) in months.iter_mut().enumerate() {
                let t = tallies
                    .get(&(u.name.clone(), c.name.clone(), m as u8))
                    .copied()
                    .unwrap_or_default();
                let n = match c.counting {
                    Counting::Persons => t.persons,
                    Counting::PersonTimes => t.times,
                };
                *slot = u64::try_from(n).unwrap_or(0);
            }
            per_month.insert((u.name.clone(), c.name.clone()), months);
        }
    }
    Figures::from_months(per_month, doubles)
}

// ---------------------------------------------------------------------------------------------
// Counting in one streaming pass.

/// One counted row, compactly (32 bytes): enough to count persons, months and doubles.
#[derive(Debug, Clone, Copy)]
struct Report {
    person: u32,
    unit: u32,
    category: u32,
    /// Reporting month as year × 12 + month − 1.
    month: u32,
    line: u32,
    date_month0: u8,
    counts: bool,
    submission: i64,
}

#[derive(Debug, Default)]
struct Interner {
    names: Vec<String>,
    index: HashMap<String, u32>,
}

impl Interner {
    fn get(&mut self, s: &str) -> u32 {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(s.to_string());
        self.index.insert(s.to_string(), i);
        i
    }
}

const ODD: u64 = 1 << 63;

/// Counts rows as they stream by, in ledger order (submission, line). What it keeps is one
/// compact record per row (32 bytes) and one per distinct person, which distinct counting
/// needs; the rows themselves pass through.
pub struct Counter<'p> {
    plan: &'p Plan,
    units: Interner,
    categories: Interner,
    person_of: HashMap<u64, u32>,
    odd_person_of: HashMap<Box<str>, u32>,
    /// Per person: the packed ID, or ODD | index into `odd_ids`.
    keys: Vec<u64>,
    odd_ids: Vec<Box<str>>,
    /// Per person: the name of their first report, as a span of `names`.
    names: String,
    name_spans: Vec<(u32, u32)>,
    reports: Vec<Report>,
    /// Qualifying rows of person-times categories per (unit, category) and training month.
    times: HashMap<(u32, u32), [u64; 12]>,
}

impl<'p> Counter<'p> {
    pub fn new(plan: &'p Plan) -> Counter<'p> {
        let mut units = Interner::default();
        for u in &plan.units {
            units.get(&u.name);
        }
        let mut categories = Interner::default();
        for c in &plan.categories {
            categories.get(&c.name);
        }
        Counter {
            plan,
            units,
            categories,
            person_of: HashMap::new(),
            odd_person_of: HashMap::new(),
            keys: Vec::new(),
            odd_ids: Vec::new(),
            names: String::new(),
            name_spans: Vec::new(),
            reports: Vec::new(),
            times: HashMap::new(),
        }
    }

    /// Room for `rows` counted rows (and as many persons, at most): reserve once rather than
    /// grow by doubling.
    pub fn reserve(&mut self, rows: usize) {
        self.reports.reserve_exact(rows);
        self.person_of.reserve(rows);
        self.keys.reserve_exact(rows);
        self.name_spans.reserve_exact(rows);
    }

    fn person(&mut self, id: &str, name: &str) -> u32 {
        let next = self.keys.len() as u32;
        let (index, new_key) = match ids::pack_resident_id(id) {
            Some(packed) => match self.person_of.get(&packed) {
                Some(&i) => (i, None),
                None => {
                    self.person_of.insert(packed, next);
                    (next, Some(packed))
                }
            },
            None => match self.odd_person_of.get(id) {
                Some(&i) => (i, None),
                None => {
                    self.odd_person_of.insert(id.into(), next);
                    self.odd_ids.push(id.into());
                    (next, Some(ODD | (self.odd_ids.len() as u64 - 1)))
                }
            },
        };
        if let Some(key) = new_key {
            self.keys.push(key);
            let start = self.names.len() as u32;
            self.names.push_str(name);
            self.name_spans.push((start, self.names.len() as u32));
        }
        index
    }

    /// Count one row; returns whether it counts toward its category's figure.
    pub fn add(&mut self, r: &CountedRow) -> Eligibility {
        let eligibility = eligibility(self.plan, &r.row);
        let unit = self.units.get(&r.unit);
        let category = self.categories.get(&r.row.category);
        let person = self.person(&r.row.id, &r.row.name);
        let date_month0 = r.row.date.month0() as u8;
        let counts = eligibility == Eligibility::Counts;
        if counts && self.rule(category) == Some(Counting::PersonTimes) {
            self.times.entry((unit, category)).or_insert([0; 12])[date_month0 as usize] += 1;
        }
        self.reports.push(Report {
            person,
            unit,
            category,
            month: (r.month.year.max(0) as u32) * 12 + r.month.month - 1,
            line: r.row.line,
            date_month0,
            counts,
            submission: r.submission,
        });
        eligibility
    }

    /// The counting rule of an interned category (configured categories come first).
    fn rule(&self, category: u32) -> Option<Counting> {
        self.plan
            .categories
            .get(category as usize)
            .map(|c| c.counting)
    }

    fn id_text(&self, person: u32) -> String {
        let key = self.keys[person as usize];
        if key & ODD != 0 {
            self.odd_ids[(key & !ODD) as usize].to_string()
        } else {
            ids::unpack_resident_id(key)
        }
    }

    /// The figures of every row added.
    pub fn finish(mut self) -> Figures {
        let mut reports = std::mem::take(&mut self.reports);
        // Within a person, ledger order (submission, line); in place, no scratch buffer.
        reports.sort_unstable_by_key(|r| (r.person, r.submission, r.line));
        let mut firsts: HashMap<(u32, u32), [u64; 12]> = HashMap::new();
        let mut doubles = Vec::new();
        let mut seen: Vec<((u32, u32), u8)> = Vec::new();
        for group in reports.chunk_by(|a, b| a.person == b.person) {
            seen.clear();
            for r in group {
                if r.counts && self.rule(r.category) == Some(Counting::Persons) {
                    let key = (r.unit, r.category);
                    match seen.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, m)) => *m = (*m).min(r.date_month0),
                        None => seen.push((key, r.date_month0)),
                    }
                }
            }
            for (key, m) in &seen {
                firsts.entry(*key).or_insert([0; 12])[*m as usize] += 1;
            }
            if group.len() > 1 {
                let across_units = group.iter().any(|r| r.unit != group[0].unit);
                let mut pairs: Vec<(u32, u32, i64)> = group
                    .iter()
                    .map(|r| (r.unit, r.category, r.submission))
                    .collect();
                pairs.sort_unstable();
                pairs.dedup();
                let repeated = pairs
                    .windows(2)
                    .any(|w| (w[0].0, w[0].1) == (w[1].0, w[1].1));
                if across_units || repeated {
                    doubles.push(self.double(group, across_units));
                }
            }
        }
        doubles.sort_by(|a: &Double, b| a.id.cmp(&b.id));

        let mut per_month = BTreeMap::new();
        for (ui, u) in self.plan.units.iter().enumerate() {
            for (ci, c) in self.plan.categories.iter().enumerate() {
                let key = (ui as u32, ci as u32);
                let months = match c.counting {
                    Counting::Persons => firsts.get(&key),
                    Counting::PersonTimes => self.times.get(&key),
                }
                .copied()
                .unwrap_or([0; 12]);
                per_month.insert((u.name.clone(), c.name.clone()), months);
            }
        }
        Figures::from_months(per_month, doubles)
    }

    fn double(&self, group: &[Report], across_units: bool) -> Double {
        let person = group[0].person;
        let (start, end) = self.name_spans[person as usize];
        Double {
            id: self.id_text(person),
            name: self.names[start as usize..end as usize].to_string(),
            across_units,
            reports: group
                .iter()
                .map(|r| DoubleEntry {
                    unit: self.units.names[r.unit as usize].clone(),
                    month: YearMonth {
                        year: (r.month / 12) as i32,
                        month: r.month % 12 + 1,
                    },
                    category: self.categories.names[r.category as usize].clone(),
                    submission: r.submission,
                    line: r.line,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;
    use std::collections::HashSet;

    fn plan() -> Plan {
        crate::core::plan::reference()
    }

    fn row(
        sub: i64,
        unit: &str,
        month: u32,
        id: &str,
        cat: &str,
        day: u32,
        passed: bool,
    ) -> CountedRow {
        CountedRow {
            submission: sub,
            unit: unit.into(),
            month: YearMonth::new(2020, month).unwrap(),
            row: Row {
                line: 2,
                name: "张伟".into(),
                id: id.into(),
                enterprise: "某公司".into(),
                credit_code: String::new(),
                category: cat.into(),
                date: NaiveDate::from_ymd_opt(2020, month, day).unwrap(),
                hours: 8.0,
                passed,
                certificate: String::new(),
            },
        }
    }

    #[test]
    fn persons_count_distinct_ids_and_failures_do_not_count() {
        let c = plan();
        let rows = vec![
            row(1, "西兴街道", 5, "A", "企业主要负责人", 3, true),
            row(2, "西兴街道", 6, "A", "企业主要负责人", 3, true),
            row(2, "西兴街道", 6, "B", "企业主要负责人", 4, false),
        ];
        let f = figures(&c, &rows);
        assert_eq!(
            f.completed[&("西兴街道".into(), "企业主要负责人".into())],
            1
        );
        assert_eq!(
            f.completed[&("长河街道".into(), "企业主要负责人".into())],
            0
        );
        let m = f.monthly[&("西兴街道".into(), "企业主要负责人".into())];
        assert_eq!(m[3], 0);
        assert_eq!(m[4], 1);
        assert_eq!(m[11], 1);
    }

    #[test]
    fn person_times_count_every_row() {
        let mut c = plan();
        c.categories[0].counting = Counting::PersonTimes;
        let rows = vec![
            row(1, "西兴街道", 5, "A", "企业主要负责人", 3, true),
            row(2, "西兴街道", 6, "A", "企业主要负责人", 3, true),
        ];
        let f = figures(&c, &rows);
        assert_eq!(
            f.completed[&("西兴街道".into(), "企业主要负责人".into())],
            2
        );
        assert_eq!(
            f.monthly[&("西兴街道".into(), "企业主要负责人".into())][5],
            2
        );
    }

    #[test]
    fn doubles_across_units_and_months() {
        let rows = vec![
            row(1, "西兴街道", 5, "A", "企业主要负责人", 3, true),
            row(2, "长河街道", 5, "A", "企业主要负责人", 3, true),
            row(3, "西兴街道", 5, "B", "其他从业人员", 3, true),
            row(4, "西兴街道", 6, "B", "其他从业人员", 3, true),
            row(4, "西兴街道", 6, "C", "其他从业人员", 3, true),
        ];
        let d = figures(&plan(), &rows).doubles;
        assert_eq!(d.len(), 2);
        assert!(d[0].across_units && d[0].id == "A");
        assert!(!d[1].across_units && d[1].id == "B");
    }

    #[test]
    fn status_at_1_july_matches_the_design_example() {
        let c = plan();
        let rows: Vec<CountedRow> = (0..12)
            .map(|i| {
                row(
                    1,
                    "西兴街道",
                    5,
                    &format!("ID{i}"),
                    "企业主要负责人",
                    3,
                    true,
                )
            })
            .collect();
        let accepted: BTreeSet<_> =
            [("西兴街道".to_string(), YearMonth::new(2020, 1).unwrap())].into();
        let now = calendar::parse_now("2020-07-01", c.tz).unwrap();
        let s = status(&c, now, &rows, &accepted);
        assert_eq!(s.as_of, "2020-07-01T00:00:00+08:00");
        let x = &s.units[0];
        assert_eq!(x.unit, "西兴街道");
        assert_eq!(
            x.missing_months,
            ["2020-02", "2020-03", "2020-04", "2020-05"]
        );
        assert_eq!(x.categories[0].completed, 12);
        assert_eq!(x.categories[0].expected, 34.8);
        assert!(x.categories[0].lagging && x.lagging);
    }

    #[test]
    fn ids_pack_both_ways() {
        for id in [
            "33010819800101001X",
            "110101190001010000",
            "99999999999999999X",
        ] {
            assert_eq!(
                ids::unpack_resident_id(ids::pack_resident_id(id).unwrap()),
                id
            );
        }
        assert!(ids::pack_resident_id("33010819800101001x").is_none());
        assert!(ids::pack_resident_id("3301081980010100").is_none());
        assert!(ids::pack_resident_id("3301081980010100١X").is_none());
    }

    /// A deterministic spread of rows in ledger order: repeated persons, other units, failed
    /// results, dates outside the year, an unknown category and malformed IDs.
    fn spread(plan: &Plan, n: u32) -> Vec<CountedRow> {
        let units = ["西兴街道", "长河街道", "浦沿街道", "江北科技园", "旧单位"];
        let mut cats = plan.category_names();
        cats.push("未知类别".into());
        let mut x: u64 = 0x2545_f491;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        (0..n)
            .map(|i| {
                let p = next() % 40;
                let id = match p {
                    0 => "12345".to_string(),
                    1 => "33010819800101001x".to_string(),
                    _ => format!(
                        "3301081980010{:04}{}",
                        p,
                        if p % 3 == 0 { "X" } else { "7" }
                    ),
                };
                let month = 1 + (next() % 12) as u32;
                let year = if next() % 10 == 0 { 2019 } else { 2020 };
                CountedRow {
                    submission: i64::from(i / 7 + 1),
                    unit: units[(next() % 5) as usize].to_string(),
                    month: YearMonth::new(2020, month).unwrap(),
                    row: Row {
                        line: 2 + i % 7,
                        name: format!("人员{p}"),
                        id,
                        enterprise: "某公司".into(),
                        credit_code: String::new(),
                        category: cats[(next() % cats.len() as u64) as usize].clone(),
                        date: NaiveDate::from_ymd_opt(year, month, 1 + (next() % 28) as u32)
                            .unwrap(),
                        hours: 8.0,
                        passed: next() % 5 != 0,
                        certificate: String::new(),
                    },
                }
            })
            .collect()
    }

    /// The rules of DESIGN.md §2 written as plainly as possible, over rows held in memory:
    /// what the streaming counter must agree with.
    mod plainly {
        use super::*;

        pub fn qualifies(plan: &Plan, row: &Row) -> bool {
            let Some(cat) = plan.categories.iter().find(|c| c.name == row.category) else {
                return false;
            };
            row.date.year() == plan.year && (row.passed || !cat.require_pass)
        }

        pub fn completed(plan: &Plan, rows: &[CountedRow]) -> BTreeMap<(String, String), u64> {
            let mut persons: HashMap<(String, String), HashSet<&str>> = HashMap::new();
            let mut times: HashMap<(String, String), u64> = HashMap::new();
            for r in rows.iter().filter(|r| qualifies(plan, &r.row)) {
                let key = (r.unit.clone(), r.row.category.clone());
                persons.entry(key.clone()).or_default().insert(&r.row.id);
                *times.entry(key).or_default() += 1;
            }
            let mut out = BTreeMap::new();
            for u in &plan.units {
                for c in &plan.categories {
                    let key = (u.name.clone(), c.name.clone());
                    let n = match c.counting {
                        Counting::Persons => persons.get(&key).map_or(0, |s| s.len() as u64),
                        Counting::PersonTimes => times.get(&key).copied().unwrap_or(0),
                    };
                    out.insert(key, n);
                }
            }
            out
        }

        pub fn monthly(plan: &Plan, rows: &[CountedRow]) -> BTreeMap<(String, String), [u64; 12]> {
            let mut out = BTreeMap::new();
            for u in &plan.units {
                for c in &plan.categories {
                    let mut months = [0; 12];
                    for (m, month) in months.iter_mut().enumerate() {
                        let by_then: Vec<CountedRow> = rows
                            .iter()
                            .filter(|r| r.unit == u.name && r.row.category == c.name)
                            .filter(|r| r.row.date.month0() as usize <= m)
                            .cloned()
                            .collect();
                        *month = completed(plan, &by_then)[&(u.name.clone(), c.name.clone())];
                    }
                    out.insert((u.name.clone(), c.name.clone()), months);
                }
            }
            out
        }

        pub fn doubles(rows: &[CountedRow]) -> Vec<Double> {
            let mut by_id: BTreeMap<&str, Vec<&CountedRow>> = BTreeMap::new();
            for r in rows {
                by_id.entry(&r.row.id).or_default().push(r);
            }
            let mut out = Vec::new();
            for (id, mut reports) in by_id {
                reports.sort_by_key(|r| (r.submission, r.row.line));
                let units: BTreeSet<&str> = reports.iter().map(|r| r.unit.as_str()).collect();
                let mut subs: HashMap<(&str, &str), BTreeSet<i64>> = HashMap::new();
                for r in &reports {
                    subs.entry((&r.unit, &r.row.category))
                        .or_default()
                        .insert(r.submission);
                }
                if units.len() > 1 || subs.values().any(|s| s.len() > 1) {
                    out.push(Double {
                        id: id.to_string(),
                        name: reports[0].row.name.clone(),
                        across_units: units.len() > 1,
                        reports: reports
                            .iter()
                            .map(|r| DoubleEntry {
                                unit: r.unit.clone(),
                                month: r.month,
                                category: r.row.category.clone(),
                                submission: r.submission,
                                line: r.row.line,
                            })
                            .collect(),
                    });
                }
            }
            out
        }
    }

    #[test]
    fn streamed_figures_equal_the_rules_on_the_same_rows() {
        for rule in [Counting::Persons, Counting::PersonTimes] {
            let mut c = plan();
            c.categories[1].counting = rule;
            c.categories[2].require_pass = false;
            for n in [0, 1, 50, 400] {
                let rows = spread(&c, n);
                let f = figures(&c, &rows);
                assert_eq!(f.completed, plainly::completed(&c, &rows), "{n} rows");
                assert_eq!(f.monthly, plainly::monthly(&c, &rows), "{n} rows");
                assert_eq!(f.doubles, plainly::doubles(&rows), "{n} rows");
            }
        }
    }

    #[test]
    fn eligibility_says_why_a_row_does_not_count() {
        let c = plan();
        let rows = spread(&c, 400);
        let mut seen = HashSet::new();
        for r in &rows {
            let e = eligibility(&c, &r.row);
            assert_eq!(
                e == Eligibility::Counts,
                plainly::qualifies(&c, &r.row),
                "{r:?}"
            );
            seen.insert(format!("{e:?}"));
        }
        assert_eq!(seen.len(), 4, "every kind occurs: {seen:?}");
    }

    #[test]
    fn status_counts_with_the_same_counter() {
        let c = plan();
        let rows = spread(&c, 300);
        let accepted = [("西兴街道".to_string(), YearMonth::new(2020, 1).unwrap())].into();
        let done = plainly::completed(&c, &rows);
        for now in ["2020-03-01", "2020-07-01", "2021-01-10"] {
            let now = calendar::parse_now(now, c.tz).unwrap();
            assert_eq!(
                status(&c, now, &rows, &accepted),
                status_from(&c, now, &done, &accepted)
            );
        }
    }
}
