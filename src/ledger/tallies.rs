//! Kept aggregates (issue 11): per unit × category × training month the persons first counted
//! and the person-times (`tallies`), and the 身份证号 that are double reports (`doubles`),
//! updated in the transaction that records a return, so that figures never rescan the rows.
//! What a person's reports add up to is `core::count`'s (`TallySum`, `person_tallies`,
//! `is_double`); here only the SQL. A plan whose counting changed (year, categories, `require_pass`) is recounted
//! once by the next writer; readers meanwhile count the rows as before.

use super::db::{Begin, Db, DbError, Dialect, args};
use super::{Ledger, LedgerError};
use super::{date_of, fill_temp_ids};
use crate::core::calendar::YearMonth;
use crate::core::count::{
    self, Double, DoubleEntry, Figures, PersonReport, Tallies, TallyCounts, tally_fingerprint,
};
use crate::core::plan::Plan;
use crate::core::returns::Row;
use std::collections::{BTreeMap, HashMap};

/// `watch_state` key of the fingerprint the tallies were counted under.
const FINGERPRINT_KEY: &str = "tallies_plan";

/// Every counted report (accepted submissions only) of the IDs in the temporary
/// `affected_ids`, but those of submission ?1; SQLite's CROSS JOIN keeps that table outermost
/// (PostgreSQL plans for itself).
const REPORTS_OF_AFFECTED: &str = "SELECT r.id_number, s.unit, r.category, r.date, r.passed, s.id \
     FROM affected_ids a CROSS JOIN rows r ON r.id_number = a.id \
     JOIN submissions s ON s.id = r.submission_id \
     WHERE s.status = 'accepted' AND s.id <> ?1";

/// Some accepted submission other than `id` counts (`id` 0: any, no submission has it).
pub(super) fn counts_other_than(db: &Db, id: i64) -> Result<bool, DbError> {
    Ok(db
        .query_opt(
            "SELECT 1 FROM submissions WHERE status = 'accepted' AND id <> ?1 LIMIT 1",
            args![id],
            |_| Ok(()),
        )?
        .is_some())
}

fn state(db: &Db, key: &str) -> Result<Option<String>, DbError> {
    db.query_opt(
        "SELECT value FROM watch_state WHERE key = ?1",
        args![key],
        |r| r.get(0),
    )
}

fn set_state(db: &Db, key: &str, value: &str) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO watch_state (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        args![key, value],
    )?;
    Ok(())
}

/// Bring the kept aggregates up to date after submission `id` of `unit` (its counted rows
/// `rows`) was inserted as accepted and the submissions `superseded` stopped counting; runs
/// inside the recording transaction. Tallies counted under another plan are recounted.
pub(super) fn after_accept(
    db: &Db,
    plan: &Plan,
    id: i64,
    unit: &str,
    rows: &[Row],
    superseded: &[i64],
) -> Result<(), DbError> {
    let mut fresh = state(db, FINGERPRINT_KEY)?.as_deref() == Some(&tally_fingerprint(plan));
    // Other returns count (or this one takes the place of some): only then can anyone in it
    // have been reported before.
    let others = !superseded.is_empty() || counts_other_than(db, id)?;
    if !fresh && !others {
        // Nothing else counts yet (a new ledger's first return): the tallies of everything
        // else are empty under any plan, so this return's own are counted as a change, not by
        // rescanning the rows just written.
        db.execute("DELETE FROM tallies", args![])?;
        set_state(db, FINGERPRINT_KEY, &tally_fingerprint(plan))?;
        fresh = true;
    }
    // The reports the superseded returns took away, by 身份证号.
    let mut removed: HashMap<String, Vec<PersonReport>> = HashMap::new();
    for &old in superseded {
        db.for_each(
            "SELECT id_number, category, date, passed FROM rows WHERE submission_id = ?1",
            args![old],
            |r| {
                removed.entry(r.get(0)?).or_default().push(PersonReport {
                    unit: unit.to_string(),
                    category: r.get(1)?,
                    date: date_of(2, &r.get::<String>(2)?)?,
                    passed: r.get(3)?,
                    submission: old,
                });
                Ok::<(), DbError>(())
            },
        )?;
    }
    // This return's own reports, person by person: row indices grouped by 身份证号.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    order.sort_unstable_by(|&a, &b| rows[a].id.cmp(&rows[b].id));
    let own: Vec<&[usize]> = order.chunk_by(|&a, &b| rows[a].id == rows[b].id).collect();

    // The counted reports of the same persons in other returns: one statement over a
    // temporary table of their IDs (one index probe each inside the database, not one
    // statement each).
    let mut elsewhere: HashMap<String, Vec<PersonReport>> = HashMap::new();
    if others {
        let affected = own
            .iter()
            .map(|g| rows[g[0]].id.as_str())
            .chain(removed.keys().map(String::as_str));
        fill_temp_ids(db, "affected_ids", affected)?;
        let reports_sql = match db.dialect() {
            Dialect::Sqlite => REPORTS_OF_AFFECTED.to_string(),
            Dialect::Postgres => REPORTS_OF_AFFECTED.replace("CROSS JOIN", "JOIN"),
        };
        db.for_each(&reports_sql, args![id], |r| {
            elsewhere.entry(r.get(0)?).or_default().push(PersonReport {
                unit: r.get(1)?,
                category: r.get(2)?,
                date: date_of(3, &r.get::<String>(3)?)?,
                passed: r.get(4)?,
                submission: r.get(5)?,
            });
            Ok::<(), DbError>(())
        })?;
        db.execute("DELETE FROM affected_ids", args![])?;
    }

    let mut delta = Tallies::new();
    // Persons this return alone reports (most of a return): one unit, one return, so never a
    // double report, and nothing counted for them before; their tallies are summed without
    // a map per person.
    let mut alone = count::TallySum::default();
    for group in &own {
        let person = rows[group[0]].id.as_str();
        let (other, gone) = (elsewhere.get(person), removed.get(person));
        if other.is_none() && gone.is_none() {
            if fresh {
                alone.add_person(
                    plan,
                    group.iter().map(|&i| {
                        let r = &rows[i];
                        (unit, r.category.as_str(), r.date, r.passed)
                    }),
                );
            }
            continue;
        }
        let mut after: Vec<PersonReport> = group
            .iter()
            .map(|&i| PersonReport {
                unit: unit.to_string(),
                category: rows[i].category.clone(),
                date: rows[i].date,
                passed: rows[i].passed,
                submission: id,
            })
            .collect();
        after.extend(other.into_iter().flatten().cloned());
        settle_person(db, plan, id, person, &after, gone, fresh, &mut delta)?;
    }
    alone.add_to(&mut delta);
    // Persons only the superseded returns reported, not this one (`own` is sorted by ID).
    for (person, gone) in &removed {
        if own
            .binary_search_by(|g| rows[g[0]].id.as_str().cmp(person))
            .is_ok()
        {
            continue;
        }
        let after = elsewhere.get(person).cloned().unwrap_or_default();
        settle_person(db, plan, id, person, &after, Some(gone), fresh, &mut delta)?;
    }
    if !fresh {
        return recount(db, plan);
    }
    for ((u, c, m), v) in delta {
        db.execute(
            "INSERT INTO tallies (unit, category, month0, persons, times) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (unit, category, month0) DO UPDATE SET
                persons = tallies.persons + excluded.persons, times = tallies.times + excluded.times",
            args![&u, &c, m, v.persons, v.times],
        )?;
    }
    db.execute(
        "DELETE FROM tallies WHERE persons = 0 AND times = 0",
        args![],
    )?;
    Ok(())
}

/// One person whom another return also reports, or whom a superseded return reported:
/// their double report kept or cleared, and (the tallies `fresh`) what their reports change
/// in the tallies added to `delta`. `after`: their counted reports now; `gone`: the reports
/// the superseded returns took away.
#[allow(clippy::too_many_arguments)]
fn settle_person(
    db: &Db,
    plan: &Plan,
    id: i64,
    person: &str,
    after: &[PersonReport],
    gone: Option<&Vec<PersonReport>>,
    fresh: bool,
    delta: &mut Tallies,
) -> Result<(), DbError> {
    if count::is_double(after) {
        db.execute(
            "INSERT INTO doubles (id_number) VALUES (?1) ON CONFLICT DO NOTHING",
            args![person],
        )?;
    } else if gone.is_some() || after.iter().any(|r| r.submission != id) {
        // Only a person reported elsewhere, or one a supersession touched, can have been a
        // double report before.
        db.execute("DELETE FROM doubles WHERE id_number = ?1", args![person])?;
    }
    if !fresh {
        return Ok(());
    }
    let mut before: Vec<PersonReport> = after
        .iter()
        .filter(|r| r.submission != id)
        .cloned()
        .collect();
    before.extend(gone.into_iter().flatten().cloned());
    let d = count::tally_delta(
        &count::person_tallies(plan, &before),
        &count::person_tallies(plan, after),
    );
    for (k, v) in d {
        let e = delta.entry(k).or_default();
        e.persons += v.persons;
        e.times += v.times;
    }
    Ok(())
}

/// The tallies counted afresh from every counted row (SQL, no row held in memory).
fn rescan(db: &Db, plan: &Plan) -> Result<Tallies, DbError> {
    db.batch(
        "CREATE TEMP TABLE IF NOT EXISTS tally_categories (name TEXT PRIMARY KEY, require_pass BIGINT NOT NULL);
         DELETE FROM tally_categories;",
    )?;
    for c in &plan.categories {
        db.execute(
            "INSERT INTO tally_categories (name, require_pass) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            args![&c.name, c.require_pass],
        )?;
    }
    let from = format!("{:04}-01-01", plan.year);
    let to = format!("{:04}-01-01", plan.year + 1);
    let qualifying = "FROM rows r JOIN submissions s ON s.id = r.submission_id \
         JOIN tally_categories c ON c.name = r.category \
         WHERE s.status = 'accepted' AND r.date >= ?1 AND r.date < ?2 AND (r.passed = 1 OR c.require_pass = 0)";
    let sql = format!(
        "SELECT unit, category, month0, CAST(SUM(p) AS BIGINT), CAST(SUM(t) AS BIGINT) FROM (
            SELECT unit, category, first AS month0, COUNT(*) AS p, 0 AS t FROM (
                SELECT s.unit AS unit, r.category AS category,
                       MIN(CAST(substr(r.date, 6, 2) AS BIGINT)) - 1 AS first
                {qualifying} GROUP BY s.unit, r.category, r.id_number) firsts
            GROUP BY unit, category, first
            UNION ALL
            SELECT s.unit, r.category, CAST(substr(r.date, 6, 2) AS BIGINT) - 1, 0, COUNT(*)
            {qualifying} GROUP BY 1, 2, 3) counts
         GROUP BY unit, category, month0"
    );
    let mut out = Tallies::new();
    db.for_each(&sql, args![&from, &to], |r| {
        let m: i64 = r.get(2)?;
        out.insert(
            (r.get(0)?, r.get(1)?, u8::try_from(m).unwrap_or(0)),
            TallyCounts {
                persons: r.get(3)?,
                times: r.get(4)?,
            },
        );
        Ok::<(), DbError>(())
    })?;
    Ok(out)
}

/// Replace the kept tallies by a rescan and note the plan they were counted under.
fn recount(db: &Db, plan: &Plan) -> Result<(), DbError> {
    let fresh = rescan(db, plan)?;
    db.execute("DELETE FROM tallies", args![])?;
    for ((u, c, m), v) in fresh {
        db.execute(
            "INSERT INTO tallies (unit, category, month0, persons, times) VALUES (?1, ?2, ?3, ?4, ?5)",
            args![&u, &c, m, v.persons, v.times],
        )?;
    }
    set_state(db, FINGERPRINT_KEY, &tally_fingerprint(plan))
}

impl Ledger {
    /// Recount the kept tallies when they were counted under another plan (a changed year,
    /// category or `require_pass`), in one transaction; true when it did.
    pub fn refresh_tallies(&self, plan: &Plan) -> Result<bool, LedgerError> {
        if self.tallies_fresh(plan)? {
            return Ok(false);
        }
        self.in_transaction(Begin::Immediate(super::RECORD_LOCK), |db| recount(db, plan))?;
        Ok(true)
    }

    fn tallies_fresh(&self, plan: &Plan) -> Result<bool, LedgerError> {
        Ok(state(&self.db, FINGERPRINT_KEY)
            .map_err(|e| self.err(e))?
            .as_deref()
            == Some(&tally_fingerprint(plan)))
    }

    /// The kept tallies as stored.
    pub fn tallies(&self) -> Result<Tallies, LedgerError> {
        let found: Vec<((String, String, u8), TallyCounts)> = self.query(
            "SELECT unit, category, month0, persons, times FROM tallies",
            args![],
            |r| {
                let m: i64 = r.get(2)?;
                Ok((
                    (r.get(0)?, r.get(1)?, u8::try_from(m).unwrap_or(0)),
                    TallyCounts {
                        persons: r.get(3)?,
                        times: r.get(4)?,
                    },
                ))
            },
        )?;
        Ok(found.into_iter().collect())
    }

    /// The tallies counted afresh from the rows, for comparison with the kept ones.
    pub fn rescan_tallies(&self, plan: &Plan) -> Result<Tallies, LedgerError> {
        rescan(&self.db, plan).map_err(|e| self.err(e))
    }

    /// Every double report with all its counted reports, by 身份证号 then ledger order.
    pub fn doubles(&self) -> Result<Vec<Double>, LedgerError> {
        type Found = (String, String, String, String, String, i64, u32);
        // SQLite's CROSS JOIN reads the small `doubles` table first (else it scans every
        // counted row to probe it: ~200 ms at 1.2 M rows); PostgreSQL plans for itself.
        let join = self.db.pick("CROSS JOIN", "JOIN");
        let found: Vec<Found> = self.query(
            &format!(
                "SELECT d.id_number, r.name, s.unit, s.month, r.category, s.id, r.line
                 FROM doubles d {join} rows r ON r.id_number = d.id_number
                 JOIN submissions s ON s.id = r.submission_id AND s.status = 'accepted'
                 ORDER BY d.id_number, s.id, r.line"
            ),
            args![],
            |r| {
                Ok((
                    r.get(0)?,
                    r.get(1)?,
                    r.get(2)?,
                    r.get(3)?,
                    r.get(4)?,
                    r.get(5)?,
                    r.get(6)?,
                ))
            },
        )?;
        let mut out: Vec<Double> = Vec::new();
        for (id, name, unit, month, category, submission, line) in found {
            let Some(month) = YearMonth::parse(&month) else {
                continue;
            };
            let entry = DoubleEntry {
                unit,
                month,
                category,
                submission,
                line,
            };
            match out.last_mut() {
                Some(d) if d.id == id => d.reports.push(entry),
                _ => out.push(Double {
                    id,
                    name,
                    across_units: false,
                    reports: vec![entry],
                }),
            }
        }
        for d in &mut out {
            d.across_units = d.reports.iter().any(|r| r.unit != d.reports[0].unit);
        }
        Ok(out)
    }

    /// The figures of every counted row: from the kept tallies when they were counted under
    /// this plan, else by counting the rows (a reader never writes; the next writer recounts).
    pub fn figures(&self, plan: &Plan) -> Result<Figures, LedgerError> {
        if self.tallies_fresh(plan)? {
            return Ok(count::figures_from_tallies(
                plan,
                &self.tallies()?,
                self.doubles()?,
            ));
        }
        let mut counter = count::Counter::new(plan);
        self.for_each_counted_row(|r| {
            counter.add(&r);
            Ok(())
        })?;
        Ok(counter.finish())
    }

    /// Completed per (unit, category), as [`Ledger::figures`] counts it but without the
    /// double reports when the tallies are fresh.
    pub fn completed(&self, plan: &Plan) -> Result<BTreeMap<(String, String), u64>, LedgerError> {
        if self.tallies_fresh(plan)? {
            return Ok(count::figures_from_tallies(plan, &self.tallies()?, Vec::new()).completed);
        }
        Ok(self.figures(plan)?.completed)
    }

    /// Rows of accepted (not superseded) returns: how many.
    pub fn counted_total(&self) -> Result<u64, LedgerError> {
        self.db
            .value::<i64>(
                "SELECT CAST(COALESCE(SUM(rows), 0) AS BIGINT) FROM submissions WHERE status = 'accepted'",
                args![],
            )
            .map(|n| u64::try_from(n).unwrap_or(0))
            .map_err(|e| self.err(e))
    }

    /// Per unit, the newest accepted submission: what a unit's counted roster depends on (a
    /// return is superseded only by a newer accepted one).
    pub fn roster_stamps(&self) -> Result<BTreeMap<String, i64>, LedgerError> {
        let found: Vec<(String, i64)> = self.query(
            "SELECT unit, MAX(id) FROM submissions WHERE status = 'accepted' GROUP BY unit",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(found.into_iter().collect())
    }

    /// Per unit, a stamp that changes whenever one of its submissions is recorded, superseded
    /// or moved: what a unit's progress workbook depends on besides the clock.
    pub fn submission_stamps(&self) -> Result<BTreeMap<String, String>, LedgerError> {
        let found: Vec<(String, String)> = self.query(
            "SELECT unit, MAX(id) || ':' || COUNT(*) || ':' || SUM(moved) || ':'
                    || SUM(CASE WHEN status = 'superseded' THEN 1 ELSE 0 END)
             FROM submissions GROUP BY unit",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(found.into_iter().collect())
    }

    /// A value of the ledger's small key/value state.
    pub fn state_value(&self, key: &str) -> Result<Option<String>, LedgerError> {
        state(&self.db, key).map_err(|e| self.err(e))
    }

    /// Set a value of the ledger's small key/value state.
    pub fn set_state_value(&self, key: &str, value: &str) -> Result<(), LedgerError> {
        set_state(&self.db, key, value).map_err(|e| self.err(e))
    }
}
