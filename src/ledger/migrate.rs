//! Moving up (issue 14): an SQLite ledger copied whole into an empty PostgreSQL database —
//! submissions, rows, findings, events, outbox, the watcher's file states, reminder windows,
//! the kept tallies and double reports — in one transaction of the target, ids kept, then
//! every table counted on both sides. A target that already holds any of it is refused.

use super::db::{Begin, Db, DbError, Value, args};
use super::{Ledger, LedgerError, Location};

/// The tables of a ledger in the order they can be filled (references first), with the
/// column holding a serial id (its sequence is moved past the copied ids), if any.
const TABLES: &[(&str, Option<&str>)] = &[
    ("submissions", Some("id")),
    ("rows", None),
    ("findings", None),
    ("events", Some("id")),
    ("outbox", Some("id")),
    ("watch_files", None),
    ("watch_state", None),
    ("reminder_windows", None),
    ("tallies", None),
    ("doubles", None),
];

/// Rows read from the source at a time.
const SLICE: usize = 5000;

/// One table's rows on each side after the copy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Copied {
    pub table: &'static str,
    pub source: u64,
    pub target: u64,
}

/// A value read from SQLite, owned, to bind into the target's insert.
enum Owned {
    Null,
    Int(i64),
    Real(f64),
    Text(String),
}

impl Owned {
    fn value(&self) -> Value<'_> {
        match self {
            Owned::Null => Value::Null,
            Owned::Int(i) => Value::Int(*i),
            Owned::Real(f) => Value::Real(*f),
            Owned::Text(s) => Value::Text(s),
        }
    }
}

fn count(db: &Db, table: &str) -> Result<u64, DbError> {
    let n: i64 = db.value(&format!("SELECT COUNT(*) FROM {table}"), args![])?;
    Ok(n as u64)
}

impl Ledger {
    /// Copy this (SQLite) ledger into the empty database at `target`, creating its schema;
    /// returns each table's count on both sides (equal, or an error says which is not).
    pub fn copy_into(&self, target: &Location) -> Result<Vec<Copied>, LedgerError> {
        let Some(source) = self.db.sqlite() else {
            return Err(LedgerError::NotEmpty {
                path: self.path.clone(),
                detail: "迁移的来源须是 SQLite 台账".into(),
            });
        };
        let to = Ledger::open_at(target)?;
        for (table, _) in TABLES {
            let n = count(&to.db, table).map_err(|e| to.err(e))?;
            if n > 0 {
                return Err(LedgerError::NotEmpty {
                    path: to.path.clone(),
                    detail: format!("{table} 表已有 {n} 行"),
                });
            }
        }
        let src_err = |e: rusqlite::Error| self.err(e);
        to.in_transaction(Begin::Immediate(super::RECORD_LOCK), |db| {
            for (table, serial) in TABLES {
                let columns: Vec<String> = {
                    let mut st = source
                        .prepare(&format!("SELECT name FROM pragma_table_info('{table}') ORDER BY cid"))?;
                    st.query_map([], |r| r.get(0))?.collect::<Result<_, _>>()?
                };
                let mut st = source.prepare(&format!("SELECT {} FROM {table}", columns.join(", ")))?;
                let mut rows = st.query([])?;
                // Read in slices of a few thousand rows, each inserted in batches.
                let mut slice: Vec<Vec<Owned>> = Vec::with_capacity(SLICE);
                let names: Vec<&str> = columns.iter().map(String::as_str).collect();
                loop {
                    slice.clear();
                    while slice.len() < SLICE {
                        let Some(r) = rows.next()? else { break };
                        let mut values = Vec::with_capacity(columns.len());
                        for i in 0..columns.len() {
                            use rusqlite::types::ValueRef;
                            values.push(match r.get_ref(i)? {
                                ValueRef::Null => Owned::Null,
                                ValueRef::Integer(v) => Owned::Int(v),
                                ValueRef::Real(v) => Owned::Real(v),
                                ValueRef::Text(t) | ValueRef::Blob(t) => {
                                    Owned::Text(String::from_utf8_lossy(t).into_owned())
                                }
                            });
                        }
                        slice.push(values);
                    }
                    if slice.is_empty() {
                        break;
                    }
                    db.insert_many(
                        table,
                        &names,
                        slice.iter().map(|row| row.iter().map(Owned::value).collect()),
                    )?;
                }
                if let Some(id) = serial {
                    db.execute(
                        &format!(
                            "SELECT setval(pg_get_serial_sequence('{table}', '{id}'), COALESCE((SELECT MAX({id}) FROM {table}), 0) + 1, false)"
                        ),
                        args![],
                    )?;
                }
            }
            Ok(())
        })
        .map_err(|e| match e {
            LedgerError::Sql { error: DbError::Sqlite(s), .. } => src_err(s),
            other => other,
        })?;
        let mut out = Vec::new();
        for (table, _) in TABLES {
            out.push(Copied {
                table,
                source: count(&self.db, table).map_err(|e| self.err(e))?,
                target: count(&to.db, table).map_err(|e| to.err(e))?,
            });
        }
        Ok(out)
    }
}
