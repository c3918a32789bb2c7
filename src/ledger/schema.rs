//! The ledger's schema: its versioned migrations (`PRAGMA user_version`) and the connection
//! settings (WAL, synchronous=FULL, foreign keys). A migration is only ever appended; a ledger
//! newer than this build is refused, never touched.

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
];

impl Ledger {
    /// Set the connection up and bring the schema to the newest version.
    pub(super) fn setup(&mut self) -> Result<(), LedgerError> {
        let path = self.path.clone();
        let sql = |source| LedgerError::Sql {
            path: path.clone(),
            source,
        };
        self.conn
            .busy_timeout(std::time::Duration::from_secs(30))
            .map_err(sql)?;
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(sql)?;
        self.conn
            .pragma_update(None, "synchronous", "FULL")
            .map_err(sql)?;
        self.conn
            .pragma_update(None, "foreign_keys", "ON")
            .map_err(sql)?;
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(sql)?;
        let supported = MIGRATIONS.len() as i64;
        if version > supported {
            return Err(LedgerError::TooNew {
                path: self.path.clone(),
                found: version,
                supported,
            });
        }
        for (i, m) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            let tx = self.conn.transaction().map_err(sql)?;
            tx.execute_batch(m).map_err(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)
                .map_err(sql)?;
            tx.commit().map_err(sql)?;
        }
        Ok(())
    }
}
