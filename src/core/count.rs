//! Counting (DESIGN.md §2): accepted, non-superseded rows → completed per unit × category,
//! progress against expected, lagging, missing months and double reporting. Pure: rows and
//! `now` come in, figures go out.

use crate::core::calendar::{self, YearMonth};
use crate::core::plan::{Counting, Plan};
use crate::core::returns::Row;
use chrono::{DateTime, Datelike};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CategoryStatus {
    pub category: String,
    pub target: u32,
    pub completed: u64,
    /// Target × schedule fraction at `as_of`, rounded to one decimal.
    pub expected: f64,
    pub lagging: bool,
}

/// Whether a row counts toward its category's figure at all.
fn qualifies(plan: &Plan, row: &Row) -> bool {
    let Some(cat) = plan.categories.iter().find(|c| c.name == row.category) else {
        return false;
    };
    chrono::Datelike::year(&row.date) == plan.year && (row.passed || !cat.require_pass)
}

/// Completed per (unit, category) by the category's counting rule.
pub fn completed(plan: &Plan, rows: &[CountedRow]) -> BTreeMap<(String, String), u64> {
    let mut persons: HashMap<(String, String), HashSet<&str>> = HashMap::new();
    let mut times: BTreeMap<(String, String), u64> = BTreeMap::new();
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

/// Completed per (unit, category) at the end of each month of the plan year (index 0 = Jan):
/// a person counts from the date of their first qualifying training.
pub fn monthly_cumulative(
    plan: &Plan,
    rows: &[CountedRow],
) -> BTreeMap<(String, String), [u64; 12]> {
    let mut first_seen: HashMap<(String, String, &str), u32> = HashMap::new();
    let mut per_month: HashMap<(String, String), [u64; 12]> = HashMap::new();
    for r in rows.iter().filter(|r| qualifies(plan, &r.row)) {
        let m = r.row.date.month0();
        let key = (r.unit.clone(), r.row.category.clone());
        let rule = plan
            .categories
            .iter()
            .find(|c| c.name == r.row.category)
            .map(|c| c.counting)
            .unwrap_or_default();
        match rule {
            Counting::PersonTimes => per_month.entry(key).or_insert([0; 12])[m as usize] += 1,
            Counting::Persons => {
                let e = first_seen.entry((key.0, key.1, &r.row.id)).or_insert(m);
                *e = (*e).min(m);
            }
        }
    }
    for ((u, c, _), m) in first_seen {
        per_month.entry((u, c)).or_insert([0; 12])[m as usize] += 1;
    }
    let mut out = BTreeMap::new();
    for u in &plan.units {
        for c in &plan.categories {
            let key = (u.name.clone(), c.name.clone());
            let mut months = per_month.get(&key).copied().unwrap_or([0; 12]);
            for i in 1..12 {
                months[i] += months[i - 1];
            }
            out.insert(key, months);
        }
    }
    out
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
    let done = completed(plan, rows);
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

/// One person reported more than once across returns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Double {
    /// Full 身份证号; mask before showing.
    pub id: String,
    pub name: String,
    /// True when two or more units reported the person; false: one unit, one category, in
    /// two or more returns.
    pub across_units: bool,
    /// (unit, month, category, submission) of every report, in ledger order.
    pub reports: Vec<(String, YearMonth, String, i64)>,
}

/// Persons reported by two units, or by one unit in one category in two returns.
pub fn doubles(rows: &[CountedRow]) -> Vec<Double> {
    let mut by_id: BTreeMap<&str, Vec<&CountedRow>> = BTreeMap::new();
    for r in rows {
        by_id.entry(&r.row.id).or_default().push(r);
    }
    let mut out = Vec::new();
    for (id, mut reports) in by_id {
        reports.sort_by_key(|r| (r.submission, r.row.line));
        let units: BTreeSet<&str> = reports.iter().map(|r| r.unit.as_str()).collect();
        let across_units = units.len() > 1;
        let repeated_in_category = {
            let mut subs: HashMap<(&str, &str), BTreeSet<i64>> = HashMap::new();
            for r in &reports {
                subs.entry((&r.unit, &r.row.category))
                    .or_default()
                    .insert(r.submission);
            }
            subs.values().any(|s| s.len() > 1)
        };
        if across_units || repeated_in_category {
            out.push(Double {
                id: id.to_string(),
                name: reports[0].row.name.clone(),
                across_units,
                reports: reports
                    .iter()
                    .map(|r| {
                        (
                            r.unit.clone(),
                            r.month,
                            r.row.category.clone(),
                            r.submission,
                        )
                    })
                    .collect(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveDate;

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
        let done = completed(&c, &rows);
        assert_eq!(done[&("西兴街道".into(), "企业主要负责人".into())], 1);
        assert_eq!(done[&("长河街道".into(), "企业主要负责人".into())], 0);
        let cum = monthly_cumulative(&c, &rows);
        let m = cum[&("西兴街道".into(), "企业主要负责人".into())];
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
        assert_eq!(
            completed(&c, &rows)[&("西兴街道".into(), "企业主要负责人".into())],
            2
        );
        assert_eq!(
            monthly_cumulative(&c, &rows)[&("西兴街道".into(), "企业主要负责人".into())][5],
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
        let d = doubles(&rows);
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
}
