//! The ledger's two backends behind one small SQL surface: SQLite embedded (rusqlite) by
//! default, a PostgreSQL server (the `postgres` crate) when `[ledger] url` is set. Every
//! operation of the ledger is written once, in SQL both accept, with `?N` placements (turned
//! into PostgreSQL's `$N` here); where the dialects truly differ the caller picks by
//! [`Dialect`]. Values go in as [`Value`] and come out through [`Col`], so the same code reads
//! an SQLite integer and a PostgreSQL BIGINT.
//!
//! A PostgreSQL connection that dropped (the server restarted) is made again, with backoff,
//! before the next statement outside a transaction; a statement inside a transaction that
//! dropped fails, and its work is undone by the server.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

/// Which SQL a statement is written in, where the two differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A failure of either backend.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// Not a `source`: its message already says all, once (see `pg_message`).
    #[error("{}", pg_message(.0))]
    Postgres(postgres::Error),
    /// A value read back is not what the ledger stored there.
    #[error("column {column}: {message}")]
    Value { column: usize, message: String },
}

impl From<postgres::Error> for DbError {
    fn from(e: postgres::Error) -> Self {
        DbError::Postgres(e)
    }
}

/// A PostgreSQL error in one line: the server's message and SQLSTATE, or what went wrong on
/// the way there with its root cause (the client repeats "error connecting to server" at each
/// level of its chain).
fn pg_message(e: &postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{} ({})", db.message(), db.code().code());
    }
    let mut root: &dyn std::error::Error = e;
    while let Some(next) = root.source() {
        root = next;
    }
    let what = if e.is_closed() {
        "the connection to the server was lost"
    } else {
        "cannot reach the server"
    };
    if std::ptr::addr_eq(root, e as &dyn std::error::Error) {
        format!("{what}: {e}")
    } else {
        format!("{what}: {root}")
    }
}

/// One value bound to a `?N` placement.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    Null,
    Int(i64),
    Real(f64),
    Text(&'a str),
}

impl From<i64> for Value<'_> {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<&i64> for Value<'_> {
    fn from(v: &i64) -> Self {
        Value::Int(*v)
    }
}
impl From<u32> for Value<'_> {
    fn from(v: u32) -> Self {
        Value::Int(v.into())
    }
}
impl From<u8> for Value<'_> {
    fn from(v: u8) -> Self {
        Value::Int(v.into())
    }
}
impl From<&u32> for Value<'_> {
    fn from(v: &u32) -> Self {
        Value::Int((*v).into())
    }
}
impl From<u64> for Value<'_> {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<bool> for Value<'_> {
    fn from(v: bool) -> Self {
        Value::Int(v.into())
    }
}
impl From<&bool> for Value<'_> {
    fn from(v: &bool) -> Self {
        Value::Int((*v).into())
    }
}
impl From<f64> for Value<'_> {
    fn from(v: f64) -> Self {
        Value::Real(v)
    }
}
impl From<&f64> for Value<'_> {
    fn from(v: &f64) -> Self {
        Value::Real(*v)
    }
}
impl<'a> From<&'a str> for Value<'a> {
    fn from(v: &'a str) -> Self {
        Value::Text(v)
    }
}
impl<'a> From<&'a String> for Value<'a> {
    fn from(v: &'a String) -> Self {
        Value::Text(v)
    }
}
impl<'a> From<&'a &str> for Value<'a> {
    fn from(v: &'a &str) -> Self {
        Value::Text(v)
    }
}
impl<'a> From<Option<&'a str>> for Value<'a> {
    fn from(v: Option<&'a str>) -> Self {
        v.map_or(Value::Null, Value::Text)
    }
}
impl<'a> From<&'a Option<String>> for Value<'a> {
    fn from(v: &'a Option<String>) -> Self {
        v.as_deref().map_or(Value::Null, Value::Text)
    }
}
impl From<Option<i64>> for Value<'_> {
    fn from(v: Option<i64>) -> Self {
        v.map_or(Value::Null, Value::Int)
    }
}
impl From<&Option<i64>> for Value<'_> {
    fn from(v: &Option<i64>) -> Self {
        (*v).into()
    }
}

/// The values of a statement's `?1`, `?2`, … in order.
macro_rules! args {
    ($($v:expr),* $(,)?) => {
        &[$($crate::ledger::db::Value::from($v)),*][..]
    };
}
pub(crate) use args;

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(i) => ValueRef::Integer(i),
            Value::Real(f) => ValueRef::Real(f),
            Value::Text(s) => ValueRef::Text(s.as_bytes()),
        }))
    }
}

impl postgres::types::ToSql for Value<'_> {
    fn to_sql(
        &self,
        ty: &postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> Result<postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>> {
        use postgres::types::{IsNull, Type};
        match *self {
            Value::Null => Ok(IsNull::Yes),
            Value::Int(i) => match *ty {
                Type::INT8 => i.to_sql(ty, out),
                Type::INT4 => i32::try_from(i)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(i)?.to_sql(ty, out),
                Type::BOOL => (i != 0).to_sql(ty, out),
                Type::FLOAT8 => (i as f64).to_sql(ty, out),
                _ => i.to_string().as_str().to_sql(ty, out),
            },
            Value::Real(f) => match *ty {
                Type::FLOAT4 => (f as f32).to_sql(ty, out),
                _ => f.to_sql(ty, out),
            },
            Value::Text(s) => s.to_sql(ty, out),
        }
    }
    fn accepts(_: &postgres::types::Type) -> bool {
        true
    }
    postgres::types::to_sql_checked!();
}

/// A type the ledger reads out of a column, from either backend.
pub trait Col: Sized {
    fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self, DbError>;
    fn from_pg(r: &postgres::Row, i: usize) -> Result<Self, DbError>;
}

/// An integer column of PostgreSQL, whatever its width (a BOOL reads as 0 or 1).
fn pg_int(r: &postgres::Row, i: usize) -> Result<Option<i64>, DbError> {
    use postgres::types::Type;
    let ty = r.columns().get(i).map(|c| c.type_().clone());
    Ok(match ty {
        Some(Type::INT8) => r.try_get::<_, Option<i64>>(i)?,
        Some(Type::INT4) => r.try_get::<_, Option<i32>>(i)?.map(i64::from),
        Some(Type::INT2) => r.try_get::<_, Option<i16>>(i)?.map(i64::from),
        Some(Type::BOOL) => r.try_get::<_, Option<bool>>(i)?.map(i64::from),
        other => {
            return Err(DbError::Value {
                column: i,
                message: format!("an integer was expected, found {other:?}"),
            });
        }
    })
}

fn required<T>(v: Option<T>, i: usize) -> Result<T, DbError> {
    v.ok_or(DbError::Value {
        column: i,
        message: "NULL where a value was expected".into(),
    })
}

macro_rules! int_col {
    ($t:ty) => {
        impl Col for $t {
            fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self, DbError> {
                Ok(r.get(i)?)
            }
            fn from_pg(r: &postgres::Row, i: usize) -> Result<Self, DbError> {
                let v = required(pg_int(r, i)?, i)?;
                <$t>::try_from(v).map_err(|_| DbError::Value {
                    column: i,
                    message: format!("{v} is out of range"),
                })
            }
        }
        impl Col for Option<$t> {
            fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self, DbError> {
                Ok(r.get(i)?)
            }
            fn from_pg(r: &postgres::Row, i: usize) -> Result<Self, DbError> {
                pg_int(r, i)?
                    .map(|v| {
                        <$t>::try_from(v).map_err(|_| DbError::Value {
                            column: i,
                            message: format!("{v} is out of range"),
                        })
                    })
                    .transpose()
            }
        }
    };
}
int_col!(i64);
int_col!(u32);

impl Col for bool {
    fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self, DbError> {
        Ok(r.get(i)?)
    }
    fn from_pg(r: &postgres::Row, i: usize) -> Result<Self, DbError> {
        Ok(required(pg_int(r, i)?, i)? != 0)
    }
}

impl Col for f64 {
    fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self, DbError> {
        Ok(r.get(i)?)
    }
    fn from_pg(r: &postgres::Row, i: usize) -> Result<Self, DbError> {
        use postgres::types::Type;
        match r.columns().get(i).map(|c| c.type_()) {
            Some(&Type::FLOAT8) => Ok(r.try_get(i)?),
            Some(&Type::FLOAT4) => Ok(r.try_get::<_, f32>(i)?.into()),
            _ => Ok(required(pg_int(r, i)?, i)? as f64),
        }
    }
}

impl Col for String {
    fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self, DbError> {
        Ok(r.get(i)?)
    }
    fn from_pg(r: &postgres::Row, i: usize) -> Result<Self, DbError> {
        Ok(r.try_get(i)?)
    }
}

impl Col for Option<String> {
    fn from_sqlite(r: &rusqlite::Row<'_>, i: usize) -> Result<Self, DbError> {
        Ok(r.get(i)?)
    }
    fn from_pg(r: &postgres::Row, i: usize) -> Result<Self, DbError> {
        Ok(r.try_get(i)?)
    }
}

/// One row of a result, from either backend.
pub enum DbRow<'a, 'b> {
    Sqlite(&'a rusqlite::Row<'b>),
    Postgres(&'a postgres::Row),
}

impl DbRow<'_, '_> {
    /// Column `i` (from 0).
    pub fn get<T: Col>(&self, i: usize) -> Result<T, DbError> {
        match self {
            DbRow::Sqlite(r) => T::from_sqlite(r, i),
            DbRow::Postgres(r) => T::from_pg(r, i),
        }
    }
}

/// How a transaction begins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Reads first; takes the write lock at its first write (SQLite's default).
    Deferred,
    /// Takes the write lock at once (SQLite `BEGIN IMMEDIATE`); on PostgreSQL, an advisory
    /// lock for the transaction under this key, so that such transactions take turns.
    Immediate(i64),
}

/// TLS towards the ledger's server (rustls with ring). With `ca_file` the server must show a
/// certificate from that authority for its host name; without it the connection is encrypted
/// whenever the server offers TLS but its certificate is not checked — what PostgreSQL's own
/// clients do by default (`sslmode=prefer`). `sslmode=disable` in the url turns TLS off,
/// `sslmode=require` refuses a server without it.
pub fn tls(
    ca_file: Option<&std::path::Path>,
) -> Result<tokio_postgres_rustls::MakeRustlsConnect, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    use std::sync::Arc;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let config = match ca_file {
        Some(path) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            for cert in certs {
                let cert = cert.map_err(|e| format!("{}: {e}", path.display()))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("{}: no certificate in it", path.display()));
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
            .with_no_client_auth(),
    };
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

/// Encryption without a checked certificate (no `ca_file`): the handshake's signatures are
/// still verified, the certificate's issuer and name are not.
#[derive(Debug)]
struct Unchecked(std::sync::Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _end_entity: &rustls::pki_types::CertificateDer<'_>,
        _intermediates: &[rustls::pki_types::CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &rustls::pki_types::CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A PostgreSQL connection with its prepared statements, made again when it dropped.
pub struct Pg {
    client: postgres::Client,
    config: postgres::Config,
    tls: tokio_postgres_rustls::MakeRustlsConnect,
    statements: HashMap<String, postgres::Statement>,
    in_transaction: bool,
}

impl Pg {
    /// Connect (once; the caller decides about retrying a first connection).
    pub fn connect(
        config: postgres::Config,
        tls: tokio_postgres_rustls::MakeRustlsConnect,
    ) -> Result<Pg, postgres::Error> {
        let client = config.connect(tls.clone())?;
        Ok(Pg {
            client,
            config,
            tls,
            statements: HashMap::new(),
            in_transaction: false,
        })
    }

    /// The server went away: connect again, waiting longer each time (0.25 s doubling to
    /// 8 s, about a minute in all), before giving up with the last error.
    fn reconnect(&mut self) -> Result<(), postgres::Error> {
        let mut wait = Duration::from_millis(250);
        let mut waited = Duration::ZERO;
        loop {
            match self.config.connect(self.tls.clone()) {
                Ok(client) => {
                    tracing::info!(
                        after_ms = waited.as_millis() as u64,
                        "ledger server connected again"
                    );
                    self.client = client;
                    self.statements.clear();
                    self.in_transaction = false;
                    return Ok(());
                }
                Err(e) if waited < Duration::from_secs(60) => {
                    tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "ledger server unreachable");
                    std::thread::sleep(wait);
                    waited += wait;
                    wait = (wait * 2).min(Duration::from_secs(8));
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn ready(&mut self) -> Result<(), postgres::Error> {
        if self.client.is_closed() && !self.in_transaction {
            self.reconnect()?;
        }
        Ok(())
    }

    fn statement(&mut self, sql: &str) -> Result<postgres::Statement, postgres::Error> {
        self.ready()?;
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.client.prepare(&dollar_placements(sql))?;
        self.statements.insert(sql.to_string(), s.clone());
        Ok(s)
    }
}

/// `?N` placements as PostgreSQL's `$N` (outside quoted text).
fn dollar_placements(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut quoted = false;
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\'' {
            quoted = !quoted;
        }
        if c == '?' && !quoted && chars.peek().is_some_and(|d| d.is_ascii_digit()) {
            out.push('$');
        } else {
            out.push(c);
        }
    }
    out
}

fn pg_params<'a>(args: &'a [Value<'a>]) -> Vec<&'a (dyn postgres::types::ToSql + Sync)> {
    args.iter()
        .map(|v| v as &(dyn postgres::types::ToSql + Sync))
        .collect()
}

/// An open connection to either backend. Its methods take `&self` (a PostgreSQL client is
/// kept in a cell), so the ledger's reads stay `&self` whichever backend serves them.
pub enum Db {
    Sqlite(rusqlite::Connection),
    Postgres(Box<RefCell<Pg>>),
}

impl Db {
    pub fn dialect(&self) -> Dialect {
        match self {
            Db::Sqlite(_) => Dialect::Sqlite,
            Db::Postgres(_) => Dialect::Postgres,
        }
    }

    /// `sqlite` or `postgres`, as the dialect is.
    pub fn pick<'s>(&self, sqlite: &'s str, postgres: &'s str) -> &'s str {
        match self.dialect() {
            Dialect::Sqlite => sqlite,
            Dialect::Postgres => postgres,
        }
    }

    /// The SQLite connection, for what only SQLite has (pragmas).
    pub fn sqlite(&self) -> Option<&rusqlite::Connection> {
        match self {
            Db::Sqlite(c) => Some(c),
            Db::Postgres(_) => None,
        }
    }

    /// Run one statement; returns how many rows it changed.
    pub fn execute(&self, sql: &str, args: &[Value<'_>]) -> Result<u64, DbError> {
        match self {
            Db::Sqlite(c) => Ok(c
                .prepare_cached(sql)?
                .execute(rusqlite::params_from_iter(args))? as u64),
            Db::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                let st = pg.statement(sql)?;
                Ok(pg.client.execute(&st, &pg_params(args))?)
            }
        }
    }

    /// Insert rows of `columns.len()` values each into `table`: one prepared statement
    /// stepped once per row on SQLite (in-process, cheap), multi-row statements of up to 200 rows on
    /// PostgreSQL (one round trip each instead of one per row).
    pub fn insert_many<'v>(
        &self,
        table: &str,
        columns: &[&str],
        rows: impl IntoIterator<Item = Vec<Value<'v>>>,
    ) -> Result<(), DbError> {
        const BATCH: usize = 200;
        let n = columns.len();
        let placements = |count: usize| -> String {
            (0..count)
                .map(|r| {
                    let one: Vec<String> = (1..=n).map(|c| format!("?{}", r * n + c)).collect();
                    format!("({})", one.join(", "))
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let head = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
        match self {
            Db::Sqlite(c) => {
                // One statement, taken from the cache once and stepped per row.
                let mut st = c.prepare_cached(&format!("{head}{}", placements(1)))?;
                for row in rows {
                    st.execute(rusqlite::params_from_iter(&row))?;
                }
            }
            Db::Postgres(_) => {
                let mut batch: Vec<Value<'v>> = Vec::with_capacity(BATCH * n);
                let mut count = 0;
                for row in rows {
                    batch.extend(row);
                    count += 1;
                    if count == BATCH {
                        self.execute(&format!("{head}{}", placements(count)), &batch)?;
                        batch.clear();
                        count = 0;
                    }
                }
                if count > 0 {
                    self.execute(&format!("{head}{}", placements(count)), &batch)?;
                }
            }
        }
        Ok(())
    }

    /// Statements separated by `;`, without values (schema, temporary tables).
    pub fn batch(&self, sql: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Db::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                pg.ready()?;
                Ok(pg.client.batch_execute(sql)?)
            }
        }
    }

    /// Every row `sql` selects, streamed to `f` in order (nothing else of the ledger may be
    /// used from inside `f`).
    pub fn for_each<E: From<DbError>>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        mut f: impl FnMut(&DbRow<'_, '_>) -> Result<(), E>,
    ) -> Result<(), E> {
        match self {
            Db::Sqlite(c) => {
                let mut st = c.prepare_cached(sql).map_err(DbError::from)?;
                let mut rows = st
                    .query(rusqlite::params_from_iter(args))
                    .map_err(DbError::from)?;
                while let Some(r) = rows.next().map_err(DbError::from)? {
                    f(&DbRow::Sqlite(r))?;
                }
                Ok(())
            }
            Db::Postgres(pg) => {
                use postgres::fallible_iterator::FallibleIterator;
                let mut pg = pg.borrow_mut();
                let st = pg.statement(sql).map_err(DbError::from)?;
                let params = pg_params(args);
                let mut rows = pg
                    .client
                    .query_raw(&st, params.iter().copied())
                    .map_err(DbError::from)?;
                while let Some(r) = rows.next().map_err(DbError::from)? {
                    f(&DbRow::Postgres(&r))?;
                }
                Ok(())
            }
        }
    }

    /// Every row `sql` selects, each made by `f`.
    pub fn query<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        mut f: impl FnMut(&DbRow<'_, '_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.for_each(sql, args, |r| {
            out.push(f(r)?);
            Ok::<(), DbError>(())
        })?;
        Ok(out)
    }

    /// The first row `sql` selects, if any.
    pub fn query_opt<T>(
        &self,
        sql: &str,
        args: &[Value<'_>],
        f: impl FnOnce(&DbRow<'_, '_>) -> Result<T, DbError>,
    ) -> Result<Option<T>, DbError> {
        let mut f = Some(f);
        let mut out = None;
        self.for_each(sql, args, |r| {
            if let Some(f) = f.take() {
                out = Some(f(r)?);
            }
            Ok::<(), DbError>(())
        })?;
        Ok(out)
    }

    /// The one value of the first row of `sql` (an aggregate).
    pub fn value<T: Col>(&self, sql: &str, args: &[Value<'_>]) -> Result<T, DbError> {
        self.query_opt(sql, args, |r| r.get(0))?
            .ok_or_else(|| DbError::Value {
                column: 0,
                message: "the statement returned no row".into(),
            })
    }

    /// Begin a transaction; undone when the guard is dropped without [`Tx::commit`].
    pub fn begin(&self, how: Begin) -> Result<Tx<'_>, DbError> {
        match self {
            Db::Sqlite(c) => c.execute_batch(match how {
                Begin::Deferred => "BEGIN DEFERRED",
                Begin::Immediate(_) => "BEGIN IMMEDIATE",
            })?,
            Db::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                pg.ready()?;
                pg.client.batch_execute("BEGIN")?;
                pg.in_transaction = true;
                if let Begin::Immediate(key) = how {
                    drop(pg);
                    self.execute("SELECT pg_advisory_xact_lock(?1)", args![key])
                        .inspect_err(|_| {
                            let _ = self.end("ROLLBACK");
                        })?;
                }
            }
        }
        Ok(Tx {
            db: self,
            done: false,
        })
    }

    /// The transaction [`Tx::keep`] left open, to go on with.
    pub fn resume(&self) -> Tx<'_> {
        Tx {
            db: self,
            done: false,
        }
    }

    fn end(&self, how: &str) -> Result<(), DbError> {
        match self {
            Db::Sqlite(c) => Ok(c.execute_batch(how)?),
            Db::Postgres(pg) => {
                let mut pg = pg.borrow_mut();
                pg.in_transaction = false;
                match pg.client.batch_execute(how) {
                    // The server undid the transaction with the connection: nothing to roll back.
                    Err(_) if how == "ROLLBACK" && pg.client.is_closed() => Ok(()),
                    r => Ok(r?),
                }
            }
        }
    }
}

/// A transaction in progress (see [`Db::begin`]).
pub struct Tx<'d> {
    db: &'d Db,
    done: bool,
}

impl Tx<'_> {
    pub fn commit(mut self) -> Result<(), DbError> {
        self.done = true;
        let r = self.db.end("COMMIT");
        if r.is_err() {
            let _ = self.db.end("ROLLBACK");
        }
        r
    }

    pub fn rollback(mut self) -> Result<(), DbError> {
        self.done = true;
        self.db.end("ROLLBACK")
    }

    /// Leave the transaction open, neither committed nor undone: [`Db::resume`] goes on
    /// with it.
    pub fn keep(mut self) {
        self.done = true;
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.db.end("ROLLBACK");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placements_become_dollars_outside_quotes() {
        assert_eq!(
            dollar_placements("SELECT '?1', x FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', x FROM t WHERE a = $1 AND b = $12"
        );
    }
}
