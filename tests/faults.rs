//! Faults of the world around tally, each a test on the real binary (issue 12): an SMTP server
//! that refuses for now (4xx), for good (5xx), drops the connection or never answers; a drop
//! still locked by its writer; the watch root vanishing and coming back. (Full and read-only
//! disks: tests/storage.rs.) Each waits for a positive signal (a log line, a file, a
//! connection) before it asserts; none sleeps and hopes.

#![cfg(unix)]

mod common;
mod smtp;

use common::*;
use serde_json::Value;
use smtp::Server;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const P: &str = "企业主要负责人";
const XX: &str = "西兴街道";
const CH: &str = "长河街道";
const NOW: &str = "2020-06-02";

// ---- plans and returns ----------------------------------------------------------------------

/// The reference plan with a fast [watch] section (no minimum age, a rare rescan) and the
/// given `[mail]` lines.
fn plan(mail: &str) -> String {
    fast_plan().replacen("[mail]\n", &format!("[mail]\n{mail}"), 1)
}

fn smtp_plan(url: &str, timeout_secs: u64) -> String {
    plan(&format!(
        "smtp_url = \"{url}\"\ntimeout_secs = {timeout_secs}\n"
    ))
}

fn a_return(unit: &str, month: &str, seed: u32) -> Vec<u8> {
    return_xlsx(
        unit,
        month,
        &[Person::new(seed * 1000, P, &format!("{month}-06"))],
    )
}

fn ok(out: &Output, code: i32) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// `tally ingest` of a return for `unit` (which sends its receipt at once).
fn ingest(w: &Workdir, unit: &str, month: &str, seed: u32, now: &str) -> Output {
    let p = drop_return(
        &w.join("incoming"),
        &format!("{month}.xlsx"),
        &a_return(unit, month, seed),
    );
    w.run(&["--now", now, "ingest", p.to_str().unwrap(), "--unit", unit])
}

/// The outbox, all of it.
fn outbox(w: &Workdir) -> Vec<Value> {
    w.json(&["outbox", "list", "--all", "--json"], 0)
        .as_array()
        .unwrap()
        .clone()
}

// ---- a fake SMTP server that misbehaves at the TCP level ------------------------------------

/// What [`Silent`] does with a connection.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Manner {
    /// Accept it and never write a byte (held open until [`Silent::let_go`]).
    Hang,
    /// Greet, read the client's first command, then close the connection.
    Drop,
}

/// A listener on 127.0.0.1 that accepts SMTP connections and misbehaves.
struct Silent {
    port: u16,
    connections: Arc<AtomicUsize>,
    held: Arc<Mutex<Vec<TcpStream>>>,
    hang: Arc<AtomicBool>,
}

impl Silent {
    fn start(manner: Manner) -> Silent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let connections = Arc::new(AtomicUsize::new(0));
        let held = Arc::new(Mutex::new(Vec::new()));
        let hang = Arc::new(AtomicBool::new(manner == Manner::Hang));
        let (c, h, g) = (connections.clone(), held.clone(), hang.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                c.fetch_add(1, Ordering::SeqCst);
                if g.load(Ordering::SeqCst) {
                    h.lock().unwrap().push(stream);
                } else {
                    let _ = stream.write_all(b"220 faults.test ESMTP\r\n");
                    let mut buf = [0u8; 512];
                    let _ = stream.read(&mut buf);
                    drop(stream);
                }
            }
        });
        Silent {
            port,
            connections,
            held,
            hang,
        }
    }

    fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Close the connections held and drop every later one at once.
    fn let_go(&self) {
        self.hang.store(false, Ordering::SeqCst);
        self.held.lock().unwrap().clear();
    }
}

// ---- a running daemon -----------------------------------------------------------------------

impl Daemon {
    fn start(w: &Workdir, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        Daemon::spawn(w, NOW, extra, env)
    }
}

fn accepted_in(w: &Workdir, unit: &str) -> usize {
    w.files_in(format!("watch-dirs/{unit}/已接收")).len()
}

// ---- SMTP faults ----------------------------------------------------------------------------

#[test]
fn smtp_4xx_is_retried_later_and_delivered_once_the_server_takes_it() {
    if !smtp::available("smtp_4xx_is_retried_later_and_delivered_once_the_server_takes_it") {
        return;
    }
    let server = Server::start_faulty("4xx");
    let w = Workdir::with_plan(&smtp_plan(&server.url(), 5));
    let out = ok(&ingest(&w, XX, "2020-05", 1, "2020-06-02T10:00:00"), 0);
    assert!(out.contains("待重试 1 封"), "{out}");
    assert_eq!(server.refused(), 1);
    let rows = outbox(&w);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["status"], "queued", "a 4xx is retried: {rows:?}");
    assert_eq!(rows[0]["attempts"], 1);
    assert!(
        rows[0]["last_error"].as_str().unwrap().contains("451"),
        "{rows:?}"
    );
    // Not due yet (the backoff): the daemon's next round would leave it; `outbox retry`
    // makes it due now, and the server still refuses.
    ok(
        &w.run(&["--now", "2020-06-02T10:00:30", "outbox", "retry"]),
        1,
    );
    assert_eq!(server.refused(), 2);
    assert_eq!(outbox(&w)[0]["status"], "queued");
    server.accept();
    let out = ok(
        &w.run(&["--now", "2020-06-02T10:05:00", "outbox", "retry"]),
        0,
    );
    assert!(out.contains("已发送 1 封"), "{out}");
    let mails = server.received();
    assert_eq!(mails.len(), 1, "delivered once");
    assert!(mails[0].subject.starts_with("【回执】西兴街道"));
    let rows = outbox(&w);
    assert_eq!(
        (&rows[0]["status"], &rows[0]["attempts"]),
        (&"sent".into(), &3.into())
    );
}

#[test]
fn smtp_5xx_is_kept_as_failed_and_not_tried_again_on_its_own() {
    if !smtp::available("smtp_5xx_is_kept_as_failed_and_not_tried_again_on_its_own") {
        return;
    }
    let server = Server::start_faulty("5xx");
    let w = Workdir::with_plan(&smtp_plan(&server.url(), 5));
    let out = ok(&ingest(&w, XX, "2020-05", 1, "2020-06-02T10:00:00"), 0);
    assert!(out.contains("失败 1 封"), "{out}");
    let rows = outbox(&w);
    assert_eq!(rows[0]["status"], "failed", "{rows:?}");
    assert!(
        rows[0]["last_error"].as_str().unwrap().contains("554"),
        "{rows:?}"
    );
    // A later intake sends its own receipt only: the failed one is not tried again by itself.
    ok(&ingest(&w, CH, "2020-05", 2, "2020-06-02T12:00:00"), 0);
    assert_eq!(server.refused(), 2, "the second receipt only");
    let rows = outbox(&w);
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["attempts"], 1, "{rows:?}");
    // The bureau can send it again by hand once the cause is fixed.
    server.accept();
    ok(
        &w.run(&["--now", "2020-06-02T13:00:00", "outbox", "retry"]),
        0,
    );
    assert_eq!(server.received().len(), 2);
}

#[test]
fn an_smtp_server_that_drops_the_connection_leaves_the_mail_queued() {
    let server = Silent::start(Manner::Drop);
    let w = Workdir::with_plan(&smtp_plan(&server.url(), 5));
    let out = ok(&ingest(&w, XX, "2020-05", 1, "2020-06-02T10:00:00"), 0);
    assert!(out.contains("待重试 1 封"), "{out}");
    assert!(server.connections() >= 1);
    let rows = outbox(&w);
    assert_eq!(rows[0]["status"], "queued", "{rows:?}");
    assert_eq!(rows[0]["attempts"], 1);
    if smtp::available("an_smtp_server_that_drops_the_connection_leaves_the_mail_queued") {
        // A working server (env TALLY_SMTP_URL over the file) gets it on the retry.
        let good = Server::start();
        let out = Command::new(BIN)
            .current_dir(w.path())
            .arg("--config")
            .arg(w.join("tally.toml"))
            .args(["--now", "2020-06-02T10:05:00", "outbox", "retry"])
            .env_remove("TALLY_NOW")
            .env("TALLY_SMTP_URL", good.url())
            .output()
            .unwrap();
        ok(&out, 0);
        assert_eq!(good.received().len(), 1);
    }
}

#[test]
fn a_silent_smtp_server_costs_one_timeout_and_the_mail_stays_queued() {
    let server = Silent::start(Manner::Hang);
    let w = Workdir::with_plan(&smtp_plan(&server.url(), 1));
    let out = ok(&ingest(&w, XX, "2020-05", 1, "2020-06-02T10:00:00"), 0);
    assert!(out.contains("待重试 1 封"), "{out}");
    let start = Instant::now();
    ok(
        &w.run(&["--now", "2020-06-02T10:05:00", "outbox", "retry"]),
        1,
    );
    let took = start.elapsed();
    // timeout_secs = 1: connecting works, the greeting never comes. Far below lettre's own
    // 30 s and the old default; generous for a slow machine.
    assert!(took < Duration::from_secs(10), "took {took:?}");
    let rows = outbox(&w);
    assert_eq!(rows[0]["status"], "queued", "{rows:?}");
    assert_eq!(rows[0]["attempts"], 2);
    assert!(server.connections() >= 2);
}

#[test]
fn a_silent_smtp_server_does_not_hold_up_the_files() {
    let server = Silent::start(Manner::Hang);
    // A long timeout: were mail sent on the file path, the second return would wait for it.
    let w = Workdir::with_plan(&smtp_plan(&server.url(), 60));
    let d = Daemon::start(&w, &[], &[]);
    drop_return(&w.unit_dir(XX), "2020-05.xlsx", &a_return(XX, "2020-05", 1));
    d.wait_for("the first return", |d| d.taken().len() == 1);
    // Its receipt is being sent: the server holds the connection and says nothing.
    wait_until("the mail to reach the silent server", || {
        server.connections() >= 1
    });
    drop_return(&w.unit_dir(CH), "2020-05.xlsx", &a_return(CH, "2020-05", 2));
    d.wait_for("the second return", |d| d.taken().len() == 2);
    d.wait_for("the master with it", |d| {
        d.events()
            .iter()
            .filter(|e| e["message"] == "burst finished" && e["files"].as_u64() > Some(0))
            .count()
            >= 2
    });
    assert_eq!(
        d.lines("mail not sent"),
        0,
        "the second return was taken while the server still said nothing:\n{}",
        d.log_text()
    );
    assert_eq!(accepted_in(&w, XX) + accepted_in(&w, CH), 2);
    // The server gives up: the mail is deferred, not lost, and the daemon stops at once.
    server.let_go();
    d.wait_for("the mail to be deferred", |d| d.lines("mail not sent") >= 1);
    assert_eq!(d.terminate().0, 0);
    let rows = outbox(&w);
    assert!(rows.len() >= 2, "{rows:?}");
    assert!(rows.iter().all(|r| r["status"] == "queued"), "{rows:?}");
}

// ---- a drop still locked by its writer ------------------------------------------------------

/// Whether this test runs as root, whom file modes do not stop; says so when it does.
fn as_root(what: &str) -> bool {
    // SAFETY: geteuid(2) has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        eprintln!(
            "{what}: running as root, whom file modes do not stop: simulated with TALLY_FAULT_WATCH"
        );
    }
    root
}

#[test]
fn a_drop_still_locked_by_its_writer_waits_and_is_taken_once_readable() {
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let w = Workdir::with_plan(&plan(""));
    let root = as_root("a_drop_still_locked_by_its_writer_waits_and_is_taken_once_readable");
    // As root: every drop looks locked while this marker exists.
    let marker = w.join("writer-holds-it");
    if root {
        std::fs::write(&marker, b"").unwrap();
    }
    let fault = format!("locked:{}", marker.display());
    let d = Daemon::start(
        &w,
        &["--failed-retry", "0.5"],
        &[("TALLY_FAULT_WATCH", fault.as_str())],
    );
    // Written through a handle that nobody else may open (mode 000), as a writer holding it.
    let path = w.unit_dir(XX).join("2020-05.xlsx");
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o000)
        .open(&path)
        .unwrap();
    f.write_all(&a_return(XX, "2020-05", 1)).unwrap();
    drop(f);
    d.wait_for("the daemon to find it locked, twice", |d| {
        d.lines_starting("cannot be opened yet") >= 2
    });
    assert!(d.taken().is_empty(), "{}", d.log_text());
    assert_eq!(d.lines_starting("file not taken in"), 0, "{}", d.log_text());
    assert!(path.is_file(), "it stays where it is");
    assert!(w.files_in(format!("watch-dirs/{XX}/退回")).is_empty());
    // The writer lets go.
    if root {
        std::fs::remove_file(&marker).unwrap();
    } else {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    d.wait_for("the return to be taken", |d| d.taken().len() == 1);
    assert_eq!(d.taken()[0]["result"], "accepted", "{}", d.log_text());
    assert_eq!(accepted_in(&w, XX), 1);
    d.wait_for_round_after(
        "the return",
        |e| e["message"] == "file taken",
        |r| r["pending"] == 0,
    );
    assert_eq!(d.taken().len(), 1);
    assert_eq!(d.terminate().0, 0);
}

// ---- the watch root vanishing and coming back -----------------------------------------------

/// The share is unmounted (the root renamed away) and mounted again: the daemon keeps running,
/// says so both times, and takes a return dropped after it came back.
fn the_root_vanishes_and_comes_back(mode: &str) {
    let w = Workdir::with_plan(&plan(""));
    let d = Daemon::start(&w, &["--mode", mode, "--poll-interval", "0.2"], &[]);
    let root = w.join("watch-dirs");
    let away = w.join("watch-dirs.unmounted");
    std::fs::rename(&root, &away).unwrap();
    d.wait_for("the daemon to notice the root is gone", |d| {
        d.lines("waiting for the watch root") >= 1
    });
    std::fs::rename(&away, &root).unwrap();
    d.wait_for("the daemon to notice the root is back", |d| {
        d.lines("the watch root is back") >= 1
    });
    drop_return(&w.unit_dir(XX), "2020-05.xlsx", &a_return(XX, "2020-05", 1));
    d.wait_for("the return dropped after the root came back", |d| {
        d.taken().len() == 1
    });
    assert_eq!(d.taken()[0]["result"], "accepted", "{}", d.log_text());
    assert_eq!(accepted_in(&w, XX), 1);
    assert_eq!(d.terminate().0, 0);
}

#[test]
fn the_watch_root_vanishing_and_coming_back_in_native_mode() {
    the_root_vanishes_and_comes_back("native");
}

#[test]
fn the_watch_root_vanishing_and_coming_back_in_poll_mode() {
    the_root_vanishes_and_comes_back("poll");
}

#[test]
fn the_watch_root_vanishing_and_coming_back_in_auto_mode() {
    the_root_vanishes_and_comes_back("auto");
}

// ---- the configuration edited while the daemon runs -----------------------------------------

#[test]
fn an_edited_config_is_taken_up_and_a_broken_edit_keeps_the_old_one() {
    let good = plan("");
    let w = Workdir::with_plan(&good);
    let d = Daemon::start(&w, &[], &[]);
    let config = w.join("tally.toml");
    // A broken edit: logged once, naming the key; the daemon goes on with what it had.
    let broken = good.replacen("versions_kept = 10", "versions_kept = \"many\"", 1);
    assert_ne!(broken, good);
    std::fs::write(&config, &broken).unwrap();
    d.wait_for("the broken edit to be reported", |d| {
        d.lines("the configuration was edited but does not load; the daemon keeps the one it started with until it is fixed") == 1
    });
    assert!(d.log_text().contains("versions_kept"), "{}", d.log_text());
    drop_return(&w.unit_dir(XX), "2020-05.xlsx", &a_return(XX, "2020-05", 1));
    d.wait_for("the return, under the old configuration", |d| {
        d.taken().len() == 1 && d.lines("burst finished") >= 1
    });
    assert!(w.join("output/master.xlsx").is_file());
    // A valid edit: the daemon finishes, then starts again with it.
    let edited = good.replacen(
        "master = \"output/master.xlsx\"",
        "master = \"output/总表.xlsx\"",
        1,
    );
    assert_ne!(edited, good);
    std::fs::write(&config, &edited).unwrap();
    d.wait_for("the restart", |d| {
        d.lines("starting again with the edited configuration") == 1 && d.lines("watching") == 2
    });
    drop_return(&w.unit_dir(CH), "2020-05.xlsx", &a_return(CH, "2020-05", 2));
    d.wait_for("the return, under the new configuration", |d| {
        d.taken().len() == 2
    });
    wait_until("the master at its new path", || {
        w.join("output/总表.xlsx").is_file()
    });
    assert_eq!(
        d.lines("the configuration was edited but does not load; the daemon keeps the one it started with until it is fixed"),
        1,
        "reported once"
    );
    assert_eq!(d.terminate().0, 0);
}
