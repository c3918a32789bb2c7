//! The ledger's schema: its versioned migrations, one list for both backends (SQLite's
//! words; PostgreSQL's by `for_postgres`), the version in `PRAGMA user_version` or in the
//! table `tally_schema`; and the SQLite connection settings (WAL, synchronous=FULL, foreign
//! keys). A migration is only ever appended; a ledger newer than this build is refused,
//! never touched.

use super::db::{Begin, args};
use super::{Ledger, LedgerError};

pub(super) const MIGRATIONS: &[&str] = &[
    // 1: submissions, rows, findings, events, outbox.
    r#"
    CREATE TABLE submissions (
        id INTEGER PRIMARY KEY,
        sha256 TEXT NOT NULL,
        unit TEXT NOT NULL,
        month TEXT,
        file_name TEXT NOT NULL,
        source_path TEXT NOT NULL,
        archive_path TEXT NOT NULL,
        received_at TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('accepted','rejected','duplicate','superseded')),
        duplicate_of INTEGER REFERENCES submissions(id),
        superseded_by INTEGER REFERENCES submissions(id),
        rows INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        warnings INTEGER NOT NULL,
        reporter TEXT NOT NULL,
        phone TEXT NOT NULL,
        destination TEXT NOT NULL,
        feedback_path TEXT,
        moved INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX submissions_unit_sha ON submissions(unit, sha256);
    CREATE INDEX submissions_unit_month ON submissions(unit, month, status);
    CREATE TABLE rows (
        submission_id INTEGER NOT NULL REFERENCES submissions(id),
        line INTEGER NOT NULL,
        name TEXT NOT NULL,
        id_number TEXT NOT NULL,
        enterprise TEXT NOT NULL,
        credit_code TEXT NOT NULL,
        category TEXT NOT NULL,
        date TEXT NOT NULL,
        hours REAL NOT NULL,
        passed INTEGER NOT NULL,
        certificate TEXT NOT NULL,
        PRIMARY KEY (submission_id, line)
    );
    CREATE INDEX rows_id_number ON rows(id_number);
    CREATE TABLE findings (
        submission_id INTEGER NOT NULL REFERENCES submissions(id),
        seq INTEGER NOT NULL,
        code TEXT NOT NULL,
        severity TEXT NOT NULL,
        sheet TEXT NOT NULL,
        cell TEXT NOT NULL,
        value TEXT NOT NULL,
        message TEXT NOT NULL,
        PRIMARY KEY (submission_id, seq)
    );
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        submission_id INTEGER NOT NULL REFERENCES submissions(id),
        at TEXT NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        idempotency_key TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        unit TEXT,
        created_at TEXT NOT NULL,
        to_addrs TEXT NOT NULL,
        cc_addrs TEXT NOT NULL,
        subject TEXT NOT NULL,
        body TEXT NOT NULL,
        attachments TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'queued' CHECK (status IN ('queued','sent','failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at TEXT,
        last_error TEXT,
        sent_at TEXT
    );
    "#,
    // 2: the daemon's listing state (src/watch.rs): files seen in the drop folders, being
    // taken, failed, or outside any unit folder; and small key/value state (master_stale).
    r#"
    CREATE TABLE watch_files (
        path TEXT PRIMARY KEY,
        unit TEXT,
        state TEXT NOT NULL CHECK (state IN ('seen','taking','failed','outside')),
        size INTEGER NOT NULL DEFAULT 0,
        mtime_ns INTEGER NOT NULL DEFAULT 0,
        crashes INTEGER NOT NULL DEFAULT 0,
        first_seen TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE watch_state (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    "#,
    // 3: reminder windows (src/mail/schedule.rs): per unit and schedule window, whether the unit was
    // found lagging (and reminded) and how many reminders in a row that made.
    r#"
    CREATE TABLE reminder_windows (
        unit TEXT NOT NULL,
        window_id TEXT NOT NULL,
        evaluated_at TEXT NOT NULL,
        lagging INTEGER NOT NULL,
        streak INTEGER NOT NULL,
        PRIMARY KEY (unit, window_id)
    );
    "#,
    // 4: outbox leases and per-recipient delivery (src/mail/outbox.rs): a claimed message is being
    // sent until `lease_until` (unix seconds, real clock); `delivered_to` lists recipients the
    // server already accepted when a message had to go to its recipients one by one.
    r#"
    ALTER TABLE outbox ADD COLUMN lease_until INTEGER;
    ALTER TABLE outbox ADD COLUMN delivered_to TEXT NOT NULL DEFAULT '[]';
    "#,
    // 5: kept aggregates (src/ledger/tallies.rs, issue 11): per unit × category × training month
    // the persons first counted there and the person-times; the 身份证号 that are double reports
    // (two units, or one unit and category in two returns), filled here from the rows. The
    // tallies depend on the plan and are counted by the first writer (key `tallies_plan`).
    r#"
    CREATE TABLE tallies (
        unit TEXT NOT NULL,
        category TEXT NOT NULL,
        month0 INTEGER NOT NULL,
        persons INTEGER NOT NULL,
        times INTEGER NOT NULL,
        PRIMARY KEY (unit, category, month0)
    ) WITHOUT ROWID;
    CREATE TABLE doubles (
        id_number TEXT PRIMARY KEY
    ) WITHOUT ROWID;
    INSERT INTO doubles (id_number)
        SELECT r.id_number FROM rows r JOIN submissions s ON s.id = r.submission_id
        WHERE s.status = 'accepted'
        GROUP BY r.id_number
        HAVING COUNT(DISTINCT s.unit) > 1
            OR COUNT(DISTINCT s.unit || char(31) || r.category || char(31) || s.id)
               > COUNT(DISTINCT s.unit || char(31) || r.category);
    CREATE INDEX submissions_status_unit ON submissions(status, unit);
    "#,
    // 6: a file being taken whose content the reader child has read (src/ledger/files.rs): only
    // a stop after that counts as a crash caused by the file.
    r#"
    ALTER TABLE watch_files ADD COLUMN read INTEGER NOT NULL DEFAULT 0;
    "#,
    // 7: claims on dropped files (src/ledger/files.rs, issue 14): the watcher taking a unit's
    // file holds it until `expires` (unix seconds, real clock), so that watchers sharing a
    // PostgreSQL ledger never both take it; a claim that ran out (its watcher died) is free.
    r#"
    CREATE TABLE file_claims (
        unit TEXT NOT NULL,
        name TEXT NOT NULL,
        owner TEXT NOT NULL,
        expires INTEGER NOT NULL,
        PRIMARY KEY (unit, name)
    );
    "#,
    // 8: the submissions a crash left unmoved, found by an index of their own: intake asks for
    // them at every file, and that look stays one probe however many returns the ledger holds.
    r#"
    CREATE INDEX submissions_unmoved ON submissions(id) WHERE moved = 0;
    "#,
];

/// A migration as PostgreSQL takes it: the same tables, BIGINT for every integer (0 and 1 for
/// flags, as SQLite stores them), BIGSERIAL where SQLite has rowid keys, DOUBLE PRECISION for
/// REAL. The migrations above are written so that these few words are all that differ.
fn for_postgres(sqlite: &str) -> String {
    sqlite
        .replace("INTEGER PRIMARY KEY", "BIGSERIAL PRIMARY KEY")
        .replace("INTEGER", "BIGINT")
        .replace(" REAL ", " DOUBLE PRECISION ")
        .replace(") WITHOUT ROWID;", ");")
        .replace("char(31)", "chr(31)")
}

/// Prepared statements an SQLite connection keeps (all of the ledger's, with room).
const STATEMENT_CACHE: usize = 256;

/// The advisory lock key under which PostgreSQL clients migrate the schema one at a time.
const MIGRATE_LOCK: i64 = 0x7461_6c6c_7900;

impl Ledger {
    /// Set the connection up and bring the schema to the newest version.
    pub(super) fn setup(&mut self) -> Result<(), LedgerError> {
        match self.db.sqlite() {
            Some(_) => self.setup_sqlite(),
            None => self.setup_postgres(),
        }
    }

    fn setup_sqlite(&mut self) -> Result<(), LedgerError> {
        let conn = self.db.sqlite().expect("an SQLite ledger");
        let sql = |source: rusqlite::Error| LedgerError::Sql {
            path: self.path.clone(),
            error: source.into(),
        };
        conn.busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        // Every statement the ledger runs stays prepared: taking one return runs more
        // distinct statements than rusqlite keeps by default (16).
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        // In WAL mode a commit survives tally being killed at any synchronous level; what
        // FULL adds is an fsync per commit against a power cut. That is paid only where
        // something outside the ledger follows a commit ([`Ledger::durably`]): most of a
        // burst's commits are bookkeeping that a restart redoes.
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sql)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        self.check_version(version, MIGRATIONS.len())?;
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            self.in_transaction(Begin::Immediate(MIGRATE_LOCK), |db| {
                db.batch(m)?;
                db.batch(&format!("PRAGMA user_version = {}", i + 1))
            })?;
        }
        Ok(())
    }

    fn setup_postgres(&mut self) -> Result<(), LedgerError> {
        self.in_transaction(Begin::Immediate(MIGRATE_LOCK), |db| {
            db.batch("CREATE TABLE IF NOT EXISTS tally_schema (version BIGINT NOT NULL)")?;
            db.execute(
                "INSERT INTO tally_schema (version) SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM tally_schema)",
                args![],
            )?;
            Ok(())
        })?;
        // Every client that starts takes the lock in turn; the first migrates, the others find
        // the schema current.
        let version: i64 = self.in_transaction(Begin::Immediate(MIGRATE_LOCK), |db| {
            let version: i64 = db.value("SELECT version FROM tally_schema", args![])?;
            if version > MIGRATIONS.len() as i64 {
                return Ok(version);
            }
            for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
                db.batch(&for_postgres(m))?;
                db.execute(
                    "UPDATE tally_schema SET version = ?1",
                    args![(i + 1) as i64],
                )?;
            }
            Ok(version)
        })?;
        self.check_version(version, MIGRATIONS.len())
    }

    fn check_version(&self, found: i64, supported: usize) -> Result<(), LedgerError> {
        if found > supported as i64 {
            return Err(LedgerError::TooNew {
                path: self.path.clone(),
                found,
                supported: supported as i64,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn postgres_takes_the_same_migrations_in_its_words() {
        let all: String = MIGRATIONS.iter().map(|m| for_postgres(m)).collect();
        assert!(all.contains("id BIGSERIAL PRIMARY KEY"));
        assert!(all.contains("hours DOUBLE PRECISION NOT NULL"));
        assert!(all.contains("expires BIGINT NOT NULL"));
        for sqlite_only in ["INTEGER", "WITHOUT ROWID", "char(31)", " REAL "] {
            assert!(!all.contains(sqlite_only), "{sqlite_only}");
        }
    }
}
