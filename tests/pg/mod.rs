//! A real PostgreSQL server for the tests (Debian's `postgresql`, version 15): a cluster made
//! with initdb under the temp folder, listening on 127.0.0.1 only, run as the `postgres` user
//! when the tests run as root (initdb and the server refuse root). One shared cluster per
//! machine serves every test, each in a database of its own; a test that stops or restarts
//! the server makes a private cluster. `TALLY_TEST_PG_URL` (a server URL, e.g.
//! `postgres://postgres@127.0.0.1:5432/postgres`) uses a server started elsewhere instead.
//!
//! Without PostgreSQL's programs the tests skip with a notice, except under CI (`CI` set),
//! where that is a failure.

#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The port of the shared cluster (unlikely to be taken; checked before use).
const SHARED_PORT: u16 = 55432;

/// The folder of PostgreSQL's programs (initdb, pg_ctl), newest version first.
fn bin_dir() -> Option<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .filter(|b| b.join("initdb").exists() && b.join("pg_ctl").exists())
        .collect();
    found.sort();
    found.pop()
}

fn as_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    #[cfg(unix)]
    unsafe {
        libc::geteuid() == 0
    }
    #[cfg(not(unix))]
    false
}

/// A command run as the cluster's owner: `postgres` when we are root, else ourselves.
fn as_owner(program: &Path) -> Command {
    if as_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn run(mut c: Command, what: &str) {
    let out = c
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Run `openssl ARGS` in `dir`.
fn openssl(dir: &Path, args: &[&str]) {
    let mut c = Command::new("openssl");
    c.current_dir(dir).args(args);
    run(c, "openssl");
}

/// A new certificate authority named `name` in `dir` (`ca.key`, `ca.pem`); its PEM file.
pub fn new_authority(dir: &Path, name: &str) -> PathBuf {
    let subject = format!("/CN={name}");
    openssl(
        dir,
        &[
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", &subject,
            "-keyout", "ca.key", "-out", "ca.pem",
        ],
    );
    dir.join("ca.pem")
}

/// A cluster this process started or found running.
pub struct Cluster {
    pub port: u16,
    data: PathBuf,
    bin: PathBuf,
    /// Private clusters are stopped and removed when dropped; the shared one stays for the
    /// next test binary.
    private: bool,
}

impl Cluster {
    /// Make a cluster in `root` (data folder `root/data`) on `port` and start it.
    fn create(root: &Path, port: u16, private: bool) -> Cluster {
        let bin = bin_dir().expect("PostgreSQL's programs");
        let data = root.join("data");
        std::fs::create_dir_all(root).unwrap();
        if as_root() {
            run(
                {
                    let mut c = Command::new("chown");
                    c.args(["-R", "postgres:postgres"]).arg(root);
                    c
                },
                "chown the cluster folder",
            );
        }
        if !data.join("PG_VERSION").exists() {
            let mut c = as_owner(&bin.join("initdb"));
            c.arg("-D").arg(&data).args([
                "--auth=trust",
                "--username=postgres",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]);
            run(c, "initdb");
            // Loopback only; one role logs in with a password (the password test), every
            // other connection is trusted.
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\n\
                 host all tally_pw 127.0.0.1/32 scram-sha-256\n\
                 host all all 127.0.0.1/32 trust\n",
            )
            .unwrap();
            let conf = format!(
                "\nlisten_addresses = '127.0.0.1'\nport = {port}\nunix_socket_directories = '{}'\n\
                 fsync = off\nmax_connections = 200\nshared_buffers = 64MB\n",
                root.display()
            );
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(data.join("postgresql.conf"))
                .unwrap();
            std::io::Write::write_all(&mut f, conf.as_bytes()).unwrap();
            if as_root() {
                run(
                    {
                        let mut c = Command::new("chown");
                        c.args(["-R", "postgres:postgres"]).arg(root);
                        c
                    },
                    "chown the cluster folder",
                );
            }
        }
        let cluster = Cluster {
            port,
            data,
            bin,
            private,
        };
        cluster.start();
        cluster.psql(
            "postgres",
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tally_pw') THEN \
             CREATE ROLE tally_pw LOGIN CREATEDB PASSWORD 'geheim-7'; END IF; END $$",
        );
        cluster
    }

    /// Start the server and wait until it answers.
    pub fn start(&self) {
        let mut c = as_owner(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(&self.data)
            .arg("-l")
            .arg(self.data.join("server.log"))
            .args(["-w", "-t", "60", "start"]);
        run(c, "pg_ctl start");
        self.wait_up();
    }

    /// Stop the server: `fast` (clients disconnected, a clean shutdown) or `immediate` (as if
    /// killed; recovery at the next start).
    pub fn stop(&self, mode: &str) {
        let mut c = as_owner(&self.bin.join("pg_ctl"));
        c.arg("-D")
            .arg(&self.data)
            .args(["-w", "-t", "60", "-m", mode, "stop"]);
        run(c, "pg_ctl stop");
    }

    fn wait_up(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "PostgreSQL did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Turn TLS on with a certificate for 127.0.0.1 and localhost signed by a new authority,
    /// and refuse every connection without TLS; restart. Returns the authority's PEM file.
    pub fn require_tls(&self) -> PathBuf {
        let dir = self.data.parent().unwrap().join("tls");
        std::fs::create_dir_all(&dir).unwrap();
        let openssl = |args: &[&str]| openssl(&dir, args);
        let ca = new_authority(&dir, "tally test CA");
        openssl(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("san.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "san.ext",
            "-out",
            "server.crt",
        ]);
        for f in ["server.crt", "server.key"] {
            std::fs::copy(dir.join(f), self.data.join(f)).unwrap();
        }
        std::fs::write(
            self.data.join("pg_hba.conf"),
            "local all all trust\n\
             hostnossl all all 127.0.0.1/32 reject\n\
             hostssl all all 127.0.0.1/32 trust\n",
        )
        .unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .unwrap();
        std::io::Write::write_all(&mut f, b"\nssl = on\n").unwrap();
        if as_root() {
            let mut c = Command::new("chown");
            c.args(["-R", "postgres:postgres"])
                .arg(self.data.parent().unwrap());
            run(c, "chown the cluster folder");
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(
                self.data.join("server.key"),
                std::fs::Permissions::from_mode(0o600),
            )
            .unwrap();
        }
        self.stop("fast");
        self.start();
        ca
    }

    /// Run one SQL text with psql as the superuser in `database`.
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let socket_dir = self.data.parent().unwrap().to_path_buf();
        let out = Command::new(self.bin.join("psql"))
            .arg("-h")
            .arg(&socket_dir)
            .args(["-U", "postgres", "-p"])
            .arg(self.port.to_string())
            .args(["-d", database, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// A new empty database; its URL (superuser, no password: trusted on loopback).
    pub fn database(&self) -> String {
        let name = fresh_name();
        self.psql("postgres", &format!("CREATE DATABASE {name}"));
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.private {
            let mut c = as_owner(&self.bin.join("pg_ctl"));
            c.arg("-D")
                .arg(&self.data)
                .args(["-w", "-m", "immediate", "stop"]);
            let _ = c.stdout(Stdio::null()).stderr(Stdio::null()).status();
            if let Some(root) = self.data.parent() {
                let _ = std::fs::remove_dir_all(root);
            }
        }
    }
}

/// A database name no other test (of any process) uses.
fn fresh_name() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "tally_t{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 100_000
    )
}

/// Whether PostgreSQL can run here (its programs, or a server at `TALLY_TEST_PG_URL`): when
/// not, `common::require` skips with the reason, or fails under CI.
pub fn available(test: &str) -> bool {
    let found =
        std::env::var_os("TALLY_TEST_PG_URL").is_some() || (cfg!(unix) && bin_dir().is_some());
    crate::common::require(
        test,
        "a PostgreSQL server (apt-get install postgresql)",
        found,
    )
}

/// The shared cluster, started on first use (by whichever test binary comes first; later
/// ones find it running).
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(|| {
        let root = std::env::temp_dir().join("tally-test-pg");
        std::fs::create_dir_all(&root).unwrap();
        // One process at a time makes or starts it.
        let lock = std::fs::File::create(std::env::temp_dir().join("tally-test-pg.lock")).unwrap();
        lock.lock().unwrap();
        if TcpStream::connect(("127.0.0.1", SHARED_PORT)).is_ok() {
            return Cluster {
                port: SHARED_PORT,
                data: root.join("data"),
                bin: bin_dir().expect("PostgreSQL's programs"),
                private: false,
            };
        }
        Cluster::create(&root, SHARED_PORT, false)
    })
}

/// A cluster of this test's own (to stop and restart), on a free port; removed when dropped.
pub fn private() -> Cluster {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let root = std::env::temp_dir().join(format!("tally-test-pg-{}", fresh_name()));
    Cluster::create(&root, port, true)
}

/// A new empty database on the shared cluster (or on `TALLY_TEST_PG_URL`'s server).
pub fn database() -> String {
    if let Ok(url) = std::env::var("TALLY_TEST_PG_URL") {
        let name = fresh_name();
        let mut client =
            postgres::Client::connect(&url, postgres::NoTls).expect("TALLY_TEST_PG_URL");
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let (base, _) = url
            .rsplit_once('/')
            .expect("a database in TALLY_TEST_PG_URL");
        return format!("{base}/{name}");
    }
    shared().database()
}

/// A fresh ledger of `backend` for `test`: `sqlite` in `dir`, or `postgres` in a new
/// database on the test server (None, with the skip notice of [`available`] naming `test`,
/// when no server can run here).
pub fn ledger(test: &str, backend: &str, dir: &Path) -> Option<tally::ledger::Ledger> {
    use tally::ledger::{Ledger, Location};
    if backend == "sqlite" {
        return Some(Ledger::open(&dir.join("tally.db")).unwrap());
    }
    if !available(test) {
        return None;
    }
    Some(
        Ledger::open_at(&Location::Postgres {
            url: database(),
            password: None,
            ca_file: None,
        })
        .unwrap(),
    )
}
