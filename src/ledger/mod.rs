//! The ledger (SQLite via rusqlite, WAL), the only module that speaks SQL:
//! submissions, their rows, findings and provenance events here; the mail outbox
//! (`outbox`), reminder windows (`schedule`), the watcher's file states (`files`), the schema
//! (`schema`) and the state lock (`lock`) beside it. Operations are named by what they mean,
//! so that a second backend can implement the same API. Every change that belongs together is
//! one transaction. Lives on local disk only (DESIGN.md §7).

mod ahead;
mod checkpoint;
pub mod db;
mod files;
pub mod lock;
mod migrate;
mod outbox;
mod readers;
mod schedule;
mod schema;
pub mod settings;
mod tallies;

pub use migrate::Copied;
pub use outbox::{OutboxRow, Requeued};

use crate::core::calendar::YearMonth;
use crate::core::count::CountedRow;
use crate::core::findings::{Code, Finding, Severity};
use crate::core::lateness::{Arrival, Arrivals};
use crate::core::plan::Plan;
use crate::core::returns::Row;
use chrono::DateTime;
use chrono_tz::Tz;
use db::{Begin, Db, DbError, DbRow, Value, args};
use rusqlite::Connection;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Ledger failures; all name the database (its file, or its server without the password).
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database refused an operation. (`error`, not `source`: the message says it once.)
    #[error("{path}: ledger error: {error}")]
    Sql { path: PathBuf, error: DbError },
    /// The folder of the database could not be created.
    #[error("{path}: cannot create the ledger folder: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The database was written by a newer tally.
    #[error(
        "{path}: ledger schema version {found} is newer than this tally ({supported}); upgrade tally"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    /// This watcher's claim on the file it was recording ran out and another watcher holds
    /// it now: nothing was recorded, the other finishes the file.
    #[error(
        "{path}: the claim on {unit}/{name} ran out and another watcher took the file over; nothing recorded"
    )]
    ClaimLost {
        path: PathBuf,
        unit: String,
        name: String,
    },
    /// `tally ledger migrate` was pointed at a database that already holds a ledger.
    #[error("{path}：目标数据库不是空的（{detail}），只能迁移到空数据库")]
    NotEmpty { path: PathBuf, detail: String },
}

impl LedgerError {
    /// The storage fault under the ledger this error comes from, if any: SQLite's "database
    /// or disk is full" and "attempt to write a readonly database", PostgreSQL's disk_full and
    /// read-only transaction, or such an I/O error.
    pub fn storage_fault(&self) -> Option<crate::durable::StorageFault> {
        use crate::durable::StorageFault;
        match self {
            LedgerError::Sql {
                error: DbError::Sqlite(rusqlite::Error::SqliteFailure(e, _)),
                ..
            } => match e.code {
                rusqlite::ErrorCode::DiskFull => Some(StorageFault::Full),
                rusqlite::ErrorCode::ReadOnly => Some(StorageFault::ReadOnly),
                // SQLITE_IOERR_SHMSIZE: the -shm file could not grow (no space for it).
                rusqlite::ErrorCode::SystemIoFailure if e.extended_code == 4874 => {
                    Some(StorageFault::Full)
                }
                _ => None,
            },
            LedgerError::Sql {
                error: DbError::Postgres(e),
                ..
            } => match e.code() {
                Some(c) if *c == postgres::error::SqlState::DISK_FULL => Some(StorageFault::Full),
                Some(c) if *c == postgres::error::SqlState::READ_ONLY_SQL_TRANSACTION => {
                    Some(StorageFault::ReadOnly)
                }
                _ => None,
            },
            LedgerError::Io { source, .. } => StorageFault::of_io(source),
            _ => None,
        }
    }

    /// Whether the ledger's server could not be reached (it restarted, the network dropped):
    /// the work is undone and can be tried again once it answers.
    pub fn unavailable(&self) -> bool {
        let LedgerError::Sql {
            error: DbError::Postgres(e),
            ..
        } = self
        else {
            return false;
        };
        match e.as_db_error() {
            // Connection exceptions (08…) and an operator or crash shutdown (57P…).
            Some(d) => {
                let c = d.code().code();
                c.starts_with("08") || c.starts_with("57P")
            }
            // No answer from the server at all: the connection is gone or never came.
            None => {
                e.is_closed()
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
        }
    }
}

/// What happened to a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubmissionStatus {
    /// Counted (unless a later return for the month replaced it).
    Accepted,
    /// At least one error: nothing counted.
    Rejected,
    /// The same bytes were received before: nothing counted.
    Duplicate,
    /// Accepted once, then replaced by a later accepted return for the same unit and month.
    Superseded,
}

impl SubmissionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionStatus::Accepted => "accepted",
            SubmissionStatus::Rejected => "rejected",
            SubmissionStatus::Duplicate => "duplicate",
            SubmissionStatus::Superseded => "superseded",
        }
    }
    fn parse(s: &str) -> SubmissionStatus {
        match s {
            "accepted" => SubmissionStatus::Accepted,
            "duplicate" => SubmissionStatus::Duplicate,
            "superseded" => SubmissionStatus::Superseded,
            _ => SubmissionStatus::Rejected,
        }
    }
    /// Chinese label: 已采用 / 已退回 / 重复 / 已被替代.
    pub fn label_zh(self) -> &'static str {
        match self {
            SubmissionStatus::Accepted => "已采用",
            SubmissionStatus::Rejected => "已退回",
            SubmissionStatus::Duplicate => "重复",
            SubmissionStatus::Superseded => "已被替代",
        }
    }
}

/// A submission as recorded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Submission {
    pub id: i64,
    pub sha256: String,
    /// The folder's unit (canonical).
    pub unit: String,
    pub month: Option<YearMonth>,
    pub file_name: String,
    /// Where the file was dropped.
    pub source_path: String,
    /// The archived copy, relative to the archive folder.
    pub archive_path: String,
    pub received_at: String,
    pub status: SubmissionStatus,
    pub duplicate_of: Option<i64>,
    pub superseded_by: Option<i64>,
    pub rows: i64,
    pub errors: i64,
    pub warnings: i64,
    pub reporter: String,
    pub phone: String,
    /// Where the file is moved in the unit's folder (已接收/ or 退回/).
    pub destination: String,
    /// The feedback workbook beside a rejected return.
    pub feedback_path: Option<String>,
    /// Whether the move has been done.
    pub moved: bool,
}

/// A submission to record: the record as it will be stored (the ledger assigns its `id` and,
/// later, `superseded_by` and `moved`), with the rows it counts and its findings.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    record: Submission,
    pub counted_rows: Vec<Row>,
    pub findings: Vec<Finding>,
}

impl NewSubmission {
    /// `record` with its error and warning counts taken from `findings`; its id, supersession
    /// and move are the ledger's to set.
    pub fn new(record: Submission, counted_rows: Vec<Row>, findings: Vec<Finding>) -> Self {
        let errors = findings.iter().filter(|f| f.is_error()).count() as i64;
        NewSubmission {
            record: Submission {
                id: 0,
                superseded_by: None,
                moved: false,
                errors,
                warnings: findings.len() as i64 - errors,
                ..record
            },
            counted_rows,
            findings,
        }
    }

    /// The submission as it will be recorded, before the ledger assigns its id (0 here).
    pub fn provisional(&self) -> &Submission {
        &self.record
    }
}

impl std::ops::Deref for NewSubmission {
    type Target = Submission;
    fn deref(&self) -> &Submission {
        &self.record
    }
}

/// A message to store in the outbox in the same transaction as the event that causes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Unique per logical message: a second insert with the same key is ignored.
    pub idempotency_key: String,
    pub kind: String,
    pub unit: Option<String>,
    pub to: Vec<String>,
    pub cc: Vec<String>,
    pub subject: String,
    pub body: String,
    /// (file name shown, path on disk) of each attachment.
    pub attachments: Vec<(String, String)>,
}

/// For each 身份证号, where it was counted: (unit, month, category), in ledger order.
pub type ReportsById = std::collections::HashMap<String, Vec<(String, YearMonth, String)>>;

/// One provenance event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub submission: i64,
    pub at: String,
    pub kind: String,
    pub detail: String,
}

/// Where the ledger lives: an SQLite file on local disk (the default), or a PostgreSQL
/// database (`[ledger] url`), with the password from the environment or a password file.
#[derive(Clone)]
pub enum Location {
    Sqlite(PathBuf),
    Postgres {
        url: String,
        password: Option<String>,
        /// The authority the server's certificate must come from (`[ledger] ca_file`).
        ca_file: Option<PathBuf>,
    },
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.shown().display())
    }
}

impl Location {
    /// How errors and logs name it: the file, or the url without its password.
    pub fn shown(&self) -> PathBuf {
        match self {
            Location::Sqlite(p) => p.clone(),
            Location::Postgres { url, .. } => PathBuf::from(crate::mail::url::redact(url)),
        }
    }

    /// Whether it is a database server several watchers share (PostgreSQL).
    pub fn shared(&self) -> bool {
        matches!(self, Location::Postgres { .. })
    }
}

/// The open ledger.
pub struct Ledger {
    db: Db,
    /// PostgreSQL: rows this connection recorded since it last gathered statistics, and how
    /// many make it gather them again (doubling; see `Ledger::record`).
    grown: (u64, u64),
    /// The file claim (unit, file name, owner) the returns recorded now are taken under; a
    /// shared ledger records them only while the claim is still this owner's.
    claim: Option<(String, String, String)>,
    /// How errors name it (see [`Location::shown`]).
    path: PathBuf,
    location: Location,
    /// Records wait for the disk per group, not per file ([`Ledger::defer_durability`]).
    deferred: bool,
    /// A record was committed since the write-ahead log was last made durable.
    undurable: bool,
    /// The rows of a return being read, written ahead of its record in a transaction left
    /// open ([`Ledger::write_ahead`]).
    ahead: Option<ahead::WrittenAhead>,
    /// How rows written ahead are told from others (a fast hash, its seed drawn once per
    /// ledger: foldhash, already built for hashbrown).
    fingerprints: foldhash::fast::RandomState,
    /// The write-ahead log being flushed to disk while rows are written ahead
    /// ([`Ledger::write_ahead`]): the wait for the disk after their commit is then short.
    log_flush: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Ledger {
    /// A flush of the write-ahead log still at it is waited for before the connection closes
    /// (SQLite may remove the log then; Windows removes no file another handle holds open).
    fn drop(&mut self) {
        self.wait_for_log_flush();
    }
}

impl Ledger {
    /// Open (creating if needed) and migrate the SQLite ledger at `path`. It holds full
    /// 身份证号: its folder is created 0700 and the database with its `-wal` and `-shm` files
    /// 0600 on Unix (`private`), whatever the umask; SQLite gives the latter two the
    /// database's mode. The first open of a run also creates and tightens the plan's
    /// registered private folders.
    pub fn open(path: &Path) -> Result<Ledger, LedgerError> {
        Ledger::open_at(&Location::Sqlite(path.to_path_buf()))
    }

    /// Open (creating or migrating its schema if needed) the ledger at `location`.
    pub fn open_at(location: &Location) -> Result<Ledger, LedgerError> {
        // The plan's state and archive folders, once per run (see `Settings::load`).
        crate::private::secure_registered();
        let path = location.shown();
        let db = match location {
            Location::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    crate::private::create_dir(dir).map_err(|source| LedgerError::Io {
                        path: dir.to_path_buf(),
                        source,
                    })?;
                }
                // Failing to set a mode is not fatal here: SQLite says best why it cannot open.
                if let Err(e) = crate::private::touch_file(path) {
                    tracing::warn!(file = %path.display(), error = %e, "cannot make the ledger owner-only");
                }
                let sql = |source: rusqlite::Error| LedgerError::Sql {
                    path: path.to_path_buf(),
                    error: source.into(),
                };
                let mut conn = Connection::open(path).map_err(sql)?;
                checkpoint::install(&mut conn, path.clone()).map_err(sql)?;
                Db::Sqlite(conn)
            }
            Location::Postgres { .. } => Ledger::connect(location)?,
        };
        let mut ledger = Ledger {
            db,
            grown: (0, FIRST_ANALYZE),
            claim: None,
            path,
            location: location.clone(),
            deferred: false,
            undurable: false,
            ahead: None,
            fingerprints: Default::default(),
            log_flush: None,
        };
        ledger.setup()?;
        if let Location::Sqlite(path) = location {
            for suffix in ["-wal", "-shm"] {
                let side = beside(path, suffix);
                if let Err(e) = crate::private::restrict_path(&side) {
                    tracing::warn!(file = %side.display(), error = %e, "cannot make the ledger owner-only");
                }
            }
        }
        Ok(ledger)
    }

    /// A connection to the PostgreSQL server of `location`.
    fn connect(location: &Location) -> Result<Db, LedgerError> {
        let Location::Postgres {
            url,
            password,
            ca_file,
        } = location
        else {
            unreachable!("connect is for a server");
        };
        let err = |source: postgres::Error| LedgerError::Sql {
            path: location.shown(),
            error: source.into(),
        };
        let mut config: postgres::Config = url.parse().map_err(err)?;
        if let Some(p) = password {
            config.password(p);
        }
        if config.get_application_name().is_none() {
            config.application_name("tally");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(std::time::Duration::from_secs(10));
        }
        // Prepared statements are kept for the connection's life, but planned afresh for
        // their values and the tables' sizes each time: a plan made while the ledger was
        // small (or for another unit) would scan every row once it is large.
        // No JIT compilation either: it costs more than these short statements take.
        let options = config.get_options().unwrap_or_default().to_string();
        config.options(format!("{options} -c plan_cache_mode=force_custom_plan -c jit=off").trim());
        let tls = db::tls(ca_file.as_deref()).map_err(|message| LedgerError::Sql {
            path: location.shown(),
            error: DbError::Value { column: 0, message },
        })?;
        Ok(Db::Postgres(Box::new(std::cell::RefCell::new(
            db::Pg::connect(config, tls).map_err(err)?,
        ))))
    }

    /// Where this ledger lives.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// A second connection to the same ledger (SQLite: read-only, WAL lets it read while
    /// this one writes), for work spread over threads. Nothing is created or migrated.
    fn open_reader(location: &Location) -> Result<Ledger, LedgerError> {
        let db = match location {
            Location::Sqlite(path) => {
                let sql = |source: rusqlite::Error| LedgerError::Sql {
                    path: path.to_path_buf(),
                    error: source.into(),
                };
                let conn = Connection::open_with_flags(
                    path,
                    rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
                        | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(sql)?;
                conn.busy_timeout(std::time::Duration::from_secs(30))
                    .map_err(sql)?;
                Db::Sqlite(conn)
            }
            Location::Postgres { .. } => Ledger::connect(location)?,
        };
        Ok(Ledger {
            db,
            grown: (0, FIRST_ANALYZE),
            claim: None,
            path: location.shown(),
            location: location.clone(),
            deferred: false,
            undurable: false,
            ahead: None,
            fingerprints: Default::default(),
            log_flush: None,
        })
    }

    /// `f` over every item, on up to two threads (this machine's cores, at most the items),
    /// each with its own read-only connection; results in the items' order. For work that
    /// only reads the ledger (rendering a unit's workbooks), so the cores share it.
    pub fn in_parallel<I: Sync, T: Send>(
        &self,
        items: &[I],
        f: impl Fn(&Ledger, &I) -> T + Sync,
    ) -> Result<Vec<T>, LedgerError> {
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .min(2)
            .min(items.len());
        if workers <= 1 {
            return Ok(items.iter().map(|i| f(self, i)).collect());
        }
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (location, f, next) = (&self.location, &f, &next);
        let results: Vec<Result<Vec<(usize, T)>, LedgerError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..workers)
                .map(|_| {
                    scope.spawn(move || {
                        let reader = Ledger::open_reader(location)?;
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(item) = items.get(i) else {
                                break;
                            };
                            done.push((i, f(&reader, item)));
                        }
                        Ok(done)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        });
        let mut all = Vec::with_capacity(items.len());
        for r in results {
            all.extend(r?);
        }
        all.sort_by_key(|(i, _)| *i);
        Ok(all.into_iter().map(|(_, t)| t).collect())
    }

    fn err(&self, source: impl Into<DbError>) -> LedgerError {
        LedgerError::Sql {
            path: self.path.clone(),
            error: source.into(),
        }
    }

    /// The name errors and logs give the ledger: its file, or its server's url without the
    /// password.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Run `f` with every commit it makes on disk before that commit returns, power cut or
    /// not: for a commit that something outside the ledger follows (the dropped file moved,
    /// a mail handed to its server). Other commits of an SQLite ledger survive tally being
    /// killed, and a power cut may undo the newest of them, which a restart redoes; each
    /// durable commit also makes every commit before it durable (one write-ahead log).
    /// PostgreSQL commits are always durable.
    pub(crate) fn durably<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, LedgerError>,
    ) -> Result<T, LedgerError> {
        let Some(conn) = self.db.sqlite() else {
            return f(self);
        };
        // Not inside a transaction: SQLite refuses to change the level there.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(|e| self.err(e))?;
        let out = f(self);
        let conn = self.db.sqlite().expect("an SQLite ledger");
        let back = conn.pragma_update(None, "synchronous", "NORMAL");
        let out = out?;
        back.map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// Let records wait for the disk together: from now on [`Ledger::record`] commits
    /// without waiting, and [`Ledger::make_durable`] (which intake's `complete` calls before
    /// it moves a file) waits once for every record since — one wait per group of files in a
    /// burst, not one per file. Only an SQLite ledger in write-ahead-log mode defers (its
    /// log is one file: made durable, it makes every commit in it durable); PostgreSQL
    /// commits are durable each.
    pub fn defer_durability(&mut self) {
        self.deferred = self.in_wal_mode();
    }

    /// An SQLite ledger in write-ahead-log mode.
    fn in_wal_mode(&self) -> bool {
        self.db.sqlite().is_some_and(|conn| {
            conn.pragma_query_value(None, "journal_mode", |r| r.get::<_, String>(0))
                .is_ok_and(|mode| mode.eq_ignore_ascii_case("wal"))
        })
    }

    /// Every record committed so far is on disk (none is waiting for [`Ledger::make_durable`]).
    pub fn records_durable(&self) -> bool {
        !self.undurable
    }

    /// Every record committed so far on disk, power cut or not (see
    /// [`Ledger::defer_durability`]): the write-ahead log fsync'd, once for all of them.
    pub fn make_durable(&mut self) -> Result<(), LedgerError> {
        if !self.undurable {
            return Ok(());
        }
        let Location::Sqlite(path) = &self.location else {
            self.undurable = false;
            return Ok(());
        };
        let wal = beside(path, "-wal");
        self.wait_for_log_flush();
        // SQLite writes each commit's pages to the log before the commit returns; only the
        // wait for the disk was left out.
        match crate::durable::sync_file(&wal) {
            Ok(()) => {}
            // No log: every commit is in the database file, which a checkpoint syncs.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(source) => return Err(LedgerError::Io { path: wal, source }),
        }
        self.undurable = false;
        Ok(())
    }

    /// Run `f` in one transaction: committed when it returns Ok, undone otherwise.
    fn in_transaction<T>(
        &self,
        how: Begin,
        f: impl FnOnce(&Db) -> Result<T, DbError>,
    ) -> Result<T, LedgerError> {
        self.in_transaction_of(Some(how), f)
    }

    /// [`Ledger::in_transaction`], begun `how`, or (None) the one left open for it.
    fn in_transaction_of<T>(
        &self,
        how: Option<Begin>,
        f: impl FnOnce(&Db) -> Result<T, DbError>,
    ) -> Result<T, LedgerError> {
        let tx = match how {
            Some(how) => {
                debug_assert!(
                    self.ahead.is_none(),
                    "rows written ahead hold a transaction"
                );
                self.db.begin(how).map_err(|e| self.err(e))?
            }
            None => self.db.resume(),
        };
        let out = f(&self.db).map_err(|e| self.err(e))?;
        tx.commit().map_err(|e| self.err(e))?;
        Ok(out)
    }

    /// The submission of these bytes for this unit that counts now (accepted, not superseded).
    pub fn find_counting_by_hash(
        &self,
        unit: &str,
        sha256: &str,
    ) -> Result<Option<Submission>, LedgerError> {
        self.db
            .query_opt(
                &format!("{SELECT_SUBMISSION} WHERE unit = ?1 AND sha256 = ?2 AND status = 'accepted' ORDER BY id LIMIT 1"),
                args![unit, sha256],
                submission_from_row,
            )
            .map_err(|e| self.err(e))
    }

    /// Any submission (duplicates included) of these bytes from this exact source path that
    /// has not been moved yet: the work a crash interrupted.
    pub fn unmoved(&self) -> Result<Vec<Submission>, LedgerError> {
        self.select(
            &format!("{SELECT_SUBMISSION} WHERE moved = 0 ORDER BY id"),
            args![],
        )
    }

    /// Record a submission with its rows, findings and events, supersede older accepted
    /// returns of the same unit and month, and queue messages — one transaction.
    pub fn record(
        &mut self,
        plan: &Plan,
        new: &NewSubmission,
        messages: &[NewMessage],
    ) -> Result<Submission, LedgerError> {
        // Two writers of one server take turns at recording, as SQLite's writers do.
        let fence = self.claim.clone().filter(|_| self.location.shared());
        let mut lost = false;
        // Durable before the dropped file is moved and the unit told: here, or with its
        // group in `make_durable`.
        let deferred = self.deferred;
        // Its first rows written while it was read: their transaction goes on.
        let ahead = self.take_ahead(new).map(|a| (a.id, a.rows));
        if let Some((id, rows)) = ahead {
            tracing::debug!(
                submission = id,
                rows,
                "recording with the rows written ahead"
            );
        }
        let mut record = |me: &mut Self| {
            let how = match ahead {
                Some(_) => None,
                None => Some(Begin::Immediate(RECORD_LOCK)),
            };
            me.in_transaction_of(how, |db| {
                // The claim is still ours (and held until the commit): a watcher that stalled
                // past its claim's end never records a file another has taken over.
                if let Some((unit, name, owner)) = &fence {
                    let held = db
                        .query_opt(
                            "SELECT 1 FROM file_claims WHERE unit = ?1 AND name = ?2 AND owner = ?3 FOR UPDATE",
                            args![unit, name, owner],
                            |_| Ok(()),
                        )?
                        .is_some();
                    if !held {
                        lost = true;
                        return Ok(0);
                    }
                }
                let id = insert_submission(db, new, ahead)?;
                insert_event(db, id, &new.received_at, "received", &new.source_path)?;
                let verdict = format!(
                    "{} rows, {} errors, {} warnings",
                    new.rows,
                    new.findings.iter().filter(|f| f.is_error()).count(),
                    new.findings.iter().filter(|f| !f.is_error()).count()
                );
                insert_event(db, id, &new.received_at, "checked", &verdict)?;
                insert_event(
                    db,
                    id,
                    &new.received_at,
                    new.status.as_str(),
                    &new.destination,
                )?;
                if new.status == SubmissionStatus::Accepted {
                    let month = new.month.map(|m| m.to_string());
                    let older: Vec<i64> = db.query(
                        "SELECT id FROM submissions WHERE unit = ?1 AND month = ?2 AND status = 'accepted' AND id != ?3",
                        args![&new.unit, &month, id],
                        |r| r.get(0),
                    )?;
                    for &old in &older {
                        db.execute(
                            "UPDATE submissions SET status = 'superseded', superseded_by = ?1 WHERE id = ?2",
                            args![id, old],
                        )?;
                        insert_event(
                            db,
                            old,
                            &new.received_at,
                            "superseded",
                            &format!("by submission {id}"),
                        )?;
                    }
                    tallies::after_accept(db, plan, id, &new.unit, &new.counted_rows, &older)?;
                }
                for m in messages {
                    queue_message(db, m, &new.received_at)?;
                }
                Ok(id)
            })
        };
        let id = if deferred || ahead.is_some() {
            let id = record(self);
            if ahead.is_some() {
                // The read mark noted beside the ledger while the rows' transaction was open
                // goes in, committed or not.
                self.settle_read_mark_or_warn();
            }
            let id = id?;
            self.undurable = true;
            if !deferred {
                // The rows' transaction began before the level of durability could be raised:
                // the log is fsync'd after the commit instead (write-ahead-log mode, as a
                // group's is).
                self.make_durable()?;
            }
            id
        } else {
            self.durably(record)?
        };
        if lost {
            let (unit, name, _) = fence.unwrap_or_default();
            return Err(LedgerError::ClaimLost {
                path: self.path.clone(),
                unit,
                name,
            });
        }
        self.keep_statistics(new.counted_rows.len() as u64);
        self.submission(id)?.ok_or_else(|| {
            self.err(DbError::Value {
                column: 0,
                message: format!("submission {id} vanished after it was recorded"),
            })
        })
    }

    /// Record what follows under this file claim (unit, file name, owner), or under none.
    pub fn under_claim(&mut self, claim: Option<(&str, &str, &str)>) {
        self.claim = claim.map(|(u, n, o)| (u.to_string(), n.to_string(), o.to_string()));
    }

    /// PostgreSQL plans by statistics that its autovacuum gathers only now and then: while a
    /// ledger fills fast (a first burst, a migration) they say the tables are nearly empty,
    /// and the probes by 身份证号 turn into scans of every row. So a connection that recorded
    /// 2,000 rows, then 4,000, 8,000, … since it last looked gathers them itself.
    fn keep_statistics(&mut self, rows: u64) {
        if self.db.dialect() != db::Dialect::Postgres {
            return;
        }
        self.grown.0 += rows;
        if self.grown.0 < self.grown.1 {
            return;
        }
        self.grown = (0, self.grown.1.saturating_mul(2));
        if let Err(e) = self.db.batch("ANALYZE submissions, rows") {
            tracing::warn!(error = %e, "could not gather the ledger's statistics");
        }
    }

    /// Mark a submission's file as moved to its destination (which may have been renamed on
    /// a clash).
    pub fn mark_moved(&mut self, id: i64, destination: &str, at: &str) -> Result<(), LedgerError> {
        self.finish_move(id, Some(destination), at, "moved", destination)
    }

    /// Record that the dropped file cannot be moved: it vanished, or other bytes replaced it.
    pub fn mark_source_gone(&mut self, id: i64, at: &str, detail: &str) -> Result<(), LedgerError> {
        self.finish_move(id, None, at, "source-gone", detail)
    }

    /// Mark submission `id` as moved (to `destination`, when given) with its event, in one
    /// transaction.
    fn finish_move(
        &mut self,
        id: i64,
        destination: Option<&str>,
        at: &str,
        kind: &str,
        detail: &str,
    ) -> Result<(), LedgerError> {
        self.in_transaction(Begin::Deferred, |db| {
            db.execute(
                "UPDATE submissions SET moved = 1, destination = COALESCE(?1, destination) WHERE id = ?2",
                args![destination, id],
            )?;
            insert_event(db, id, at, kind, detail)
        })
    }

    pub fn submission(&self, id: i64) -> Result<Option<Submission>, LedgerError> {
        self.db
            .query_opt(
                &format!("{SELECT_SUBMISSION} WHERE id = ?1"),
                args![id],
                submission_from_row,
            )
            .map_err(|e| self.err(e))
    }

    /// Every submission in ledger order.
    pub fn submissions(&self) -> Result<Vec<Submission>, LedgerError> {
        self.select(&format!("{SELECT_SUBMISSION} ORDER BY id"), args![])
    }

    fn select(&self, sql: &str, args: &[Value<'_>]) -> Result<Vec<Submission>, LedgerError> {
        self.query(sql, args, submission_from_row)
    }

    /// Every row `sql` selects, each made by `f`.
    fn query<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        f: impl FnMut(&DbRow<'_, '_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, LedgerError> {
        self.db.query(sql, args, f).map_err(|e| self.err(e))
    }

    /// Findings of one submission, in order.
    pub fn findings(&self, submission: i64) -> Result<Vec<Finding>, LedgerError> {
        self.query(
            "SELECT code, severity, sheet, cell, value, message FROM findings WHERE submission_id = ?1 ORDER BY seq",
            args![submission],
            |r| finding_at(r, 0),
        )
    }

    /// Every finding of every submission: (submission id, finding), in ledger order.
    pub fn all_findings(&self) -> Result<Vec<(i64, Finding)>, LedgerError> {
        self.query(
            "SELECT submission_id, code, severity, sheet, cell, value, message FROM findings ORDER BY submission_id, seq",
            args![],
            |r| Ok((r.get(0)?, finding_at(r, 1)?)),
        )
    }

    /// Provenance events of one submission, in order.
    pub fn events(&self, submission: i64) -> Result<Vec<Event>, LedgerError> {
        self.query(
            "SELECT submission_id, at, kind, detail FROM events WHERE submission_id = ?1 ORDER BY id",
            args![submission],
            |r| {
                Ok(Event {
                    submission: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    detail: r.get(3)?,
                })
            },
        )
    }

    /// Rows of accepted (not superseded) returns, in ledger order.
    pub fn counted_rows(&self) -> Result<Vec<CountedRow>, LedgerError> {
        let mut out = Vec::new();
        self.for_each_counted_row(|r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// Stream the counted rows without holding them all (for the master's roster).
    pub fn for_each_counted_row(
        &self,
        f: impl FnMut(CountedRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        self.for_each_counted_row_of(None, f)
    }

    /// Rows of one unit's accepted (not superseded) returns, in ledger order.
    pub fn unit_counted_rows(&self, unit: &str) -> Result<Vec<CountedRow>, LedgerError> {
        let mut out = Vec::new();
        self.for_each_counted_row_of(Some(unit), |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// Stream the counted rows, of one unit or of all, in ledger order (nothing else of the
    /// ledger may be used from inside `f`).
    pub fn for_each_counted_row_of(
        &self,
        unit: Option<&str>,
        mut f: impl FnMut(CountedRow) -> Result<(), LedgerError>,
    ) -> Result<(), LedgerError> {
        const ALL: &str = "SELECT s.id, s.unit, s.month, r.line, r.name, r.id_number, r.enterprise, r.credit_code,
                        r.category, r.date, r.hours, r.passed, r.certificate
                 FROM submissions s JOIN rows r ON r.submission_id = s.id
                 WHERE s.status = 'accepted' ORDER BY s.id, r.line";
        const ONE: &str = "SELECT s.id, s.unit, s.month, r.line, r.name, r.id_number, r.enterprise, r.credit_code,
                        r.category, r.date, r.hours, r.passed, r.certificate
                 FROM submissions s JOIN rows r ON r.submission_id = s.id
                 WHERE s.status = 'accepted' AND s.unit = ?1 ORDER BY s.id, r.line";
        let (sql, args) = match unit {
            Some(u) => (ONE, args![u]),
            None => (ALL, args![]),
        };
        /// The callback's own error, or the database's.
        enum Failed {
            Db(DbError),
            Callback(LedgerError),
        }
        impl From<DbError> for Failed {
            fn from(e: DbError) -> Self {
                Failed::Db(e)
            }
        }
        let streamed = self.db.for_each(sql, args, |r| {
            let row = (|| -> Result<CountedRow, DbError> {
                let month: String = r.get(2)?;
                let date: String = r.get(9)?;
                Ok(CountedRow {
                    submission: r.get(0)?,
                    unit: r.get(1)?,
                    month: YearMonth::parse(&month).ok_or_else(|| bad(2, &month))?,
                    row: Row {
                        line: r.get(3)?,
                        name: r.get(4)?,
                        id: r.get(5)?,
                        enterprise: r.get(6)?,
                        credit_code: r.get(7)?,
                        category: r.get(8)?,
                        date: date_of(9, &date)?,
                        hours: r.get(10)?,
                        passed: r.get(11)?,
                        certificate: r.get(12)?,
                    },
                })
            })()?;
            f(row).map_err(Failed::Callback)
        });
        match streamed {
            Ok(()) => Ok(()),
            Err(Failed::Db(e)) => Err(self.err(e)),
            Err(Failed::Callback(e)) => Err(e),
        }
    }

    /// For each given 身份证号, the counted reports of it: (unit, month, category).
    pub fn reports_of_ids<'a>(
        &self,
        ids: impl Iterator<Item = &'a str>,
    ) -> Result<ReportsById, LedgerError> {
        // One statement over a temporary table of the IDs (an index probe each inside the
        // database), in a transaction that is rolled back: nothing of the ledger is written.
        // The table itself is made outside it, once: made inside, each rollback would undo it
        // and SQLite would parse every prepared statement of the connection again.
        // Rows written ahead hold a transaction open already: the IDs go with it (temporary,
        // they are never part of the ledger).
        create_temp_ids(&self.db, "probe_ids").map_err(|e| self.err(e))?;
        let tx = match self.ahead {
            Some(_) => None,
            None => Some(self.db.begin(Begin::Deferred).map_err(|e| self.err(e))?),
        };
        let found = (|| -> Result<Vec<(String, String, String, String)>, DbError> {
            // A ledger where nothing counts yet (a new one) has no reports to find.
            if !tallies::counts_other_than(&self.db, 0)? {
                return Ok(Vec::new());
            }
            fill_temp_ids(&self.db, "probe_ids", ids)?;
            // SQLite's CROSS JOIN keeps the probe table outermost; PostgreSQL plans for itself
            // (with statistics kept current, see `Ledger::record`).
            let join = self.db.pick("CROSS JOIN", "JOIN");
            self.db.query(
                &format!(
                    "SELECT p.id, s.unit, s.month, r.category FROM probe_ids p
                 {join} rows r ON r.id_number = p.id
                 JOIN submissions s ON s.id = r.submission_id
                 WHERE s.status = 'accepted' ORDER BY p.id, s.id, r.line"
                ),
                args![],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
        })()
        .map_err(|e| self.err(e))?;
        if let Some(tx) = tx {
            tx.rollback().map_err(|e| self.err(e))?;
        }
        let mut out: ReportsById = std::collections::HashMap::new();
        for (id, u, m, c) in found {
            if let Some(m) = YearMonth::parse(&m) {
                out.entry(id).or_default().push((u, m, c));
            }
        }
        Ok(out)
    }

    /// (unit, month) of every accepted return, superseded ones included (a month with any
    /// accepted return is not missing).
    pub fn accepted_months(&self) -> Result<BTreeSet<(String, YearMonth)>, LedgerError> {
        let pairs: Vec<(String, String)> = self.query(
            "SELECT DISTINCT unit, month FROM submissions WHERE status IN ('accepted','superseded') AND month IS NOT NULL",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        Ok(pairs
            .into_iter()
            .filter_map(|(u, m)| YearMonth::parse(&m).map(|m| (u, m)))
            .collect())
    }

    /// Whether `unit` has an accepted return (superseded since or not) for `month`: one index
    /// probe, where [`Ledger::accepted_months`] lists the whole ledger's.
    pub fn has_accepted_month(&self, unit: &str, month: YearMonth) -> Result<bool, LedgerError> {
        self.db
            .query_opt(
                "SELECT 1 FROM submissions WHERE unit = ?1 AND month = ?2 AND status IN ('accepted','superseded') LIMIT 1",
                args![unit, &month.to_string()],
                |_| Ok(()),
            )
            .map(|found| found.is_some())
            .map_err(|e| self.err(e))
    }

    /// When each unit's returns arrived, per month: the first accepted return (superseded
    /// since or not) and the latest rejected one, for lateness ([`crate::core::lateness`]).
    pub fn arrivals(
        &self,
        tz: Tz,
    ) -> Result<BTreeMap<String, BTreeMap<YearMonth, Arrivals>>, LedgerError> {
        let found: Vec<(String, String, String, String, String)> = self.query(
            "SELECT unit, month, status, received_at, file_name FROM submissions \
             WHERE month IS NOT NULL AND status IN ('accepted','superseded','rejected') \
             ORDER BY id",
            args![],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )?;
        let mut out: BTreeMap<String, BTreeMap<YearMonth, Arrivals>> = BTreeMap::new();
        for (unit, month, status, received_at, file) in found {
            let (Some(month), Ok(at)) = (
                YearMonth::parse(&month),
                DateTime::parse_from_rfc3339(&received_at),
            ) else {
                continue;
            };
            let arrival = Arrival {
                received_at: at.with_timezone(&tz),
                file,
            };
            let a = out.entry(unit).or_default().entry(month).or_default();
            if status == "rejected" {
                a.last_rejected = Some(arrival);
            } else if a.first_accepted.is_none() {
                a.first_accepted = Some(arrival);
            }
        }
        Ok(out)
    }

    /// Queue messages outside an intake (reminders, digests), idempotently.
    pub fn queue(&mut self, messages: &[NewMessage], at: &str) -> Result<usize, LedgerError> {
        self.in_transaction(Begin::Deferred, |db| {
            let mut n = 0;
            for m in messages {
                n += queue_message(db, m, at)?;
            }
            Ok(n)
        })
    }
}

/// Rows recorded before a PostgreSQL connection first gathers the tables' statistics.
const FIRST_ANALYZE: u64 = 2_000;

/// The advisory lock key under which PostgreSQL writers of returns take turns ("tally" and 1).
const RECORD_LOCK: i64 = 0x7461_6c6c_7901;

const SELECT_SUBMISSION: &str = "SELECT id, sha256, unit, month, file_name, source_path, archive_path, received_at, status, duplicate_of, superseded_by, rows, errors, warnings, reporter, phone, destination, feedback_path, moved FROM submissions";

/// A stored value the ledger cannot read back as what it wrote.
fn bad(column: usize, value: &str) -> DbError {
    DbError::Value {
        column,
        message: format!("unexpected value {value:?}"),
    }
}

/// A stored training date (`YYYY-MM-DD`). The ledger writes exactly ten characters, read here
/// by hand (every counted row has one: chrono's format parser cost more than the row's other
/// columns); anything else goes through chrono's parser, which decides as before.
fn date_of(column: usize, s: &str) -> Result<chrono::NaiveDate, DbError> {
    if s.len() == 10
        && let Some(d) = crate::core::dates::parse_iso_prefix(s)
    {
        return Ok(d);
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| bad(column, s))
}

/// Fill the temporary one-column table `name` (`id`, text, unique) with `ids`, creating it
/// when this connection has none yet, emptied first.
fn fill_temp_ids<'a>(
    db: &Db,
    name: &str,
    ids: impl IntoIterator<Item = &'a str>,
) -> Result<(), DbError> {
    create_temp_ids(db, name)?;
    db.batch(&format!("DELETE FROM {name}"))?;
    let unique: BTreeSet<&str> = ids.into_iter().collect();
    db.insert_many(
        name,
        &["id"],
        unique.into_iter().map(|id| vec![Value::from(id)]),
    )?;
    if db.dialect() == db::Dialect::Postgres {
        // A temporary table has no statistics until analysed: without them PostgreSQL may
        // plan a scan of every row of the ledger instead of one index probe per ID.
        db.batch(&format!("ANALYZE {name}"))?;
    }
    Ok(())
}

/// Create the temporary one-column table `name` of [`fill_temp_ids`] unless this connection
/// has it.
fn create_temp_ids(db: &Db, name: &str) -> Result<(), DbError> {
    db.batch(&format!(
        "CREATE TEMP TABLE IF NOT EXISTS {name} (id TEXT PRIMARY KEY){}",
        db.pick(" WITHOUT ROWID", "")
    ))
}

fn submission_from_row(r: &DbRow<'_, '_>) -> Result<Submission, DbError> {
    let month: Option<String> = r.get(3)?;
    let status: String = r.get(8)?;
    Ok(Submission {
        id: r.get(0)?,
        sha256: r.get(1)?,
        unit: r.get(2)?,
        month: month.as_deref().and_then(YearMonth::parse),
        file_name: r.get(4)?,
        source_path: r.get(5)?,
        archive_path: r.get(6)?,
        received_at: r.get(7)?,
        status: SubmissionStatus::parse(&status),
        duplicate_of: r.get(9)?,
        superseded_by: r.get(10)?,
        rows: r.get(11)?,
        errors: r.get(12)?,
        warnings: r.get(13)?,
        reporter: r.get(14)?,
        phone: r.get(15)?,
        destination: r.get(16)?,
        feedback_path: r.get(17)?,
        moved: r.get(18)?,
    })
}

/// A finding from the columns code, severity, sheet, cell, value, message from column `at` on.
fn finding_at(r: &DbRow<'_, '_>, at: usize) -> Result<Finding, DbError> {
    Ok(Finding {
        code: Code::parse(&r.get::<String>(at)?).unwrap_or(Code::InternalError),
        severity: if r.get::<String>(at + 1)? == "warning" {
            Severity::Warning
        } else {
            Severity::Error
        },
        sheet: r.get(at + 2)?,
        cell: r.get(at + 3)?,
        value: r.get(at + 4)?,
        message: r.get(at + 5)?,
    })
}

/// A file SQLite keeps beside the database at `path`: its name with `suffix` (`-wal`, `-shm`).
fn beside(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Insert `rows` of submission `id`.
fn insert_rows(db: &Db, id: i64, rows: &[Row]) -> Result<(), DbError> {
    let dates: Vec<String> = rows
        .iter()
        .map(|r| crate::core::dates::iso(r.date))
        .collect();
    db.insert_many(
        "rows",
        &[
            "submission_id",
            "line",
            "name",
            "id_number",
            "enterprise",
            "credit_code",
            "category",
            "date",
            "hours",
            "passed",
            "certificate",
        ],
        rows.iter().zip(&dates).map(|(r, date)| {
            vec![
                Value::from(id),
                r.line.into(),
                (&r.name).into(),
                (&r.id).into(),
                (&r.enterprise).into(),
                (&r.credit_code).into(),
                (&r.category).into(),
                date.into(),
                r.hours.into(),
                r.passed.into(),
                (&r.certificate).into(),
            ]
        }),
    )
}

/// Insert submission `s` with its rows and findings; with `ahead` (its id, and how many of its
/// first rows are in already, [`Ledger::write_ahead`]), under that id and with the other rows.
fn insert_submission(
    db: &Db,
    s: &NewSubmission,
    ahead: Option<(i64, usize)>,
) -> Result<i64, DbError> {
    let errors = s.findings.iter().filter(|f| f.is_error()).count() as i64;
    let warnings = s.findings.len() as i64 - errors;
    let month = s.month.map(|m| m.to_string());
    let (given_id, written) = match ahead {
        Some((id, rows)) => (Some(id), rows),
        None => (None, 0),
    };
    let values = args![
        &s.sha256,
        &s.unit,
        &month,
        &s.file_name,
        &s.source_path,
        &s.archive_path,
        &s.received_at,
        s.status.as_str(),
        s.duplicate_of,
        s.rows,
        errors,
        warnings,
        &s.reporter,
        &s.phone,
        &s.destination,
        &s.feedback_path,
        given_id,
    ];
    let id: i64 = match given_id {
        Some(_) => db.value(
            "INSERT INTO submissions (sha256, unit, month, file_name, source_path, archive_path, received_at, status, duplicate_of, rows, errors, warnings, reporter, phone, destination, feedback_path, id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17) RETURNING id",
            values,
        )?,
        // The next id.
        None => db.value(
            "INSERT INTO submissions (sha256, unit, month, file_name, source_path, archive_path, received_at, status, duplicate_of, rows, errors, warnings, reporter, phone, destination, feedback_path)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16) RETURNING id",
            &values[..16],
        )?,
    };
    insert_rows(db, id, &s.counted_rows[written..])?;
    db.insert_many(
        "findings",
        &[
            "submission_id",
            "seq",
            "code",
            "severity",
            "sheet",
            "cell",
            "value",
            "message",
        ],
        s.findings.iter().enumerate().map(|(i, f)| {
            vec![
                Value::from(id),
                (i as i64).into(),
                f.code.as_str().into(),
                if f.is_error() { "error" } else { "warning" }.into(),
                (&f.sheet).into(),
                (&f.cell).into(),
                (&f.value).into(),
                (&f.message).into(),
            ]
        }),
    )?;
    Ok(id)
}

fn insert_event(db: &Db, id: i64, at: &str, kind: &str, detail: &str) -> Result<(), DbError> {
    db.execute(
        "INSERT INTO events (submission_id, at, kind, detail) VALUES (?1, ?2, ?3, ?4)",
        args![id, at, kind, detail],
    )?;
    Ok(())
}

/// Insert a message unless one with its idempotency key exists; returns 1 when inserted.
pub(crate) fn queue_message(db: &Db, m: &NewMessage, at: &str) -> Result<usize, DbError> {
    let to = serde_json::to_string(&m.to).unwrap_or_default();
    let cc = serde_json::to_string(&m.cc).unwrap_or_default();
    let attachments = serde_json::to_string(&m.attachments).unwrap_or_default();
    Ok(db.execute(
        "INSERT INTO outbox (idempotency_key, kind, unit, created_at, to_addrs, cc_addrs, subject, body, attachments, next_attempt_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?4) ON CONFLICT DO NOTHING",
        args![
            &m.idempotency_key,
            &m.kind,
            &m.unit,
            at,
            &to,
            &cc,
            &m.subject,
            &m.body,
            &attachments,
        ],
    )? as usize)
}

#[cfg(test)]
mod date_tests {
    use super::date_of;

    /// The hand-read dates are chrono's, and what it refuses is still refused.
    #[test]
    fn stored_dates_read_as_chrono_reads_them() {
        for s in [
            "2020-01-01",
            "2020-12-31",
            "2020-02-29",
            "2019-02-29",
            "2020-13-01",
            "2020-00-10",
            "0000-01-01",
            "9999-12-31",
            "2020-1-5",
            "2020/01/01",
            "2020-01-0x",
            "２０２０-01-01",
            "",
        ] {
            let chrono = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok();
            assert_eq!(date_of(9, s).ok(), chrono, "{s:?}");
        }
    }
}

#[cfg(test)]
mod durability_tests {
    use super::Ledger;

    fn level(ledger: &Ledger) -> i64 {
        let conn = ledger.db.sqlite().expect("an SQLite ledger");
        conn.pragma_query_value(None, "synchronous", |r| r.get(0))
            .unwrap()
    }

    /// Commits are fsync'd only inside `durably` (synchronous FULL = 2, NORMAL = 1), and the
    /// level comes back after it, also when `f` fails.
    #[test]
    fn only_durable_commits_wait_for_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let mut ledger = Ledger::open(&dir.path().join("t.db")).unwrap();
        assert_eq!(level(&ledger), 1);
        let inside = ledger.durably(|l| Ok(level(l))).unwrap();
        assert_eq!(inside, 2);
        assert_eq!(level(&ledger), 1);
        let failed: Result<(), _> = ledger.durably(|l| Err(l.err(rusqlite::Error::InvalidQuery)));
        assert!(failed.is_err());
        assert_eq!(level(&ledger), 1);
    }

    /// A commit that alone writes the log past its threshold wakes the ledger's checkpointer,
    /// which copies the log back into the database file with its own connection while this
    /// one stays open; reopened, the ledger holds everything.
    #[test]
    fn a_full_log_is_copied_back_by_the_checkpointer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let ledger = Ledger::open(&path).unwrap();
        let conn = ledger.db.sqlite().unwrap();
        let before = std::fs::metadata(&path).unwrap().len();
        conn.execute_batch(
            "BEGIN; CREATE TABLE filler (x BLOB);
             WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 3000)
             INSERT INTO filler SELECT randomblob(2000) FROM n; COMMIT;",
        )
        .unwrap();
        // The large commit woke the thread (named so; it names itself once it runs).
        let checkpointer = || {
            !cfg!(target_os = "linux")
                || std::fs::read_dir("/proc/self/task").unwrap().any(|t| {
                    std::fs::read_to_string(t.unwrap().path().join("comm"))
                        .is_ok_and(|name| name.trim() == "checkpoint")
                })
        };
        let until = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !checkpointer() || std::fs::metadata(&path).unwrap().len() < before + 6_000_000 {
            assert!(
                std::time::Instant::now() < until,
                "no checkpointer, or the log was not copied back"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        drop(ledger);
        let again = Ledger::open(&path).unwrap();
        let n: i64 = again
            .db
            .sqlite()
            .unwrap()
            .query_row("SELECT count(*) FROM filler", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 3000);
    }

    /// Probing the ledger for a return's people (a transaction rolled back) leaves the
    /// connection's prepared statements prepared: none is parsed again afterwards.
    #[test]
    fn probing_reports_parses_no_statement_again() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("t.db")).unwrap();
        let sql = "SELECT count(*) FROM submissions";
        let count = || {
            let conn = ledger.db.sqlite().unwrap();
            let mut st = conn.prepare_cached(sql).unwrap();
            st.query_row([], |r| r.get::<_, i64>(0)).unwrap();
            st.get_status(rusqlite::StatementStatus::RePrepare)
        };
        let probe = || {
            ledger
                .reports_of_ids(["110101199001011234"].into_iter())
                .unwrap();
        };
        // The first probe makes the connection's temporary table (once).
        probe();
        let before = count();
        for _ in 0..3 {
            probe();
            count();
        }
        assert_eq!(count(), before);
    }
}
