//! Crash trials (issue 12): run the real `tally` binary, SIGKILL its whole process group at
//! seeded random moments, restart it, and check that nothing was lost, counted twice, sent
//! twice or left half-written. Shared by the short run in `cargo test` and the long run
//! (`CRASH_TRIALS=200 cargo test --release --test crash -- --ignored --nocapture`); it never
//! panics on a broken promise but returns the failure, so the long run can count them.

use super::common::{Person, REFERENCE_PLAN, Workdir, return_xlsx};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub const NOW: &str = "2020-07-01";
/// A day later: mail a kill interrupted is due again (its backoff has passed).
const LATER: &str = "2020-07-02";
const UNITS: [&str; 4] = ["西兴街道", "长河街道", "浦沿街道", "江北科技园"];
const P: &str = "企业主要负责人";
const O: &str = "其他从业人员";

/// A broken promise, with what was found.
pub type Outcome<T> = Result<T, String>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}

/// splitmix64: small, seeded, good enough to pick moments and files.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// The reference plan with a fast [watch] section: no minimum age.
pub fn plan() -> String {
    let plan = REFERENCE_PLAN.replacen("\nmin_age_secs = 1\n", "\nmin_age_secs = 0\n", 1);
    assert!(plan.contains("min_age_secs = 0"));
    plan
}

/// One file to drop: unit folder, name, bytes.
#[derive(Clone)]
pub struct Drop {
    pub unit: &'static str,
    pub name: String,
    pub bytes: Vec<u8>,
}

fn people(rng: &mut Rng, base: u32, month: &str) -> Vec<Person> {
    let n = 1 + rng.below(4) as u32;
    (0..n)
        .map(|i| {
            Person::new(
                base + i,
                if i % 2 == 0 { P } else { O },
                &format!("{month}-06"),
            )
        })
        .collect()
}

/// A seeded batch: 2–4 originals (distinct unit and month), a resubmission that supersedes the
/// first, a byte-identical copy of the second, and a return rejected for a bad 身份证号. Names
/// sort so the daemon, which takes a folder's files in path order when it starts, takes them
/// in the same order in every run.
pub fn batch(seed: u64) -> Vec<Drop> {
    let mut rng = Rng::new(seed);
    let base = (seed % 10_000) as u32 * 100;
    let mut slots: Vec<(usize, u32)> = (0..4).flat_map(|u| (1..=6).map(move |m| (u, m))).collect();
    let mut drops = Vec::new();
    let originals = 2 + rng.below(3) as usize;
    let mut picked = Vec::new();
    for k in 0..originals {
        let (u, m) = slots.remove(rng.below(slots.len() as u64) as usize);
        let month = format!("2020-{m:02}");
        let bytes = return_xlsx(
            UNITS[u],
            &month,
            &people(&mut rng, base + k as u32 * 10, &month),
        );
        drops.push(Drop {
            unit: UNITS[u],
            name: format!("1-{month}.xlsx"),
            bytes: bytes.clone(),
        });
        picked.push((u, month, bytes));
    }
    let (u, month, _) = &picked[0];
    drops.push(Drop {
        unit: UNITS[*u],
        name: format!("2-{month}-更正.xlsx"),
        bytes: return_xlsx(UNITS[*u], month, &people(&mut rng, base + 90, month)),
    });
    let (u, month, bytes) = &picked[1];
    drops.push(Drop {
        unit: UNITS[*u],
        name: format!("3-{month}-副本.xlsx"),
        bytes: bytes.clone(),
    });
    let (u, m) = slots.remove(rng.below(slots.len() as u64) as usize);
    let month = format!("2020-{m:02}");
    let mut bad = people(&mut rng, base + 80, &month);
    let id = &mut bad[0].id;
    let last = if id.ends_with('0') { '1' } else { '0' };
    id.pop();
    id.push(last);
    drops.push(Drop {
        unit: UNITS[u],
        name: format!("4-{month}-有误.xlsx"),
        bytes: return_xlsx(UNITS[u], &month, &bad),
    });
    drops
}

fn drop_all(w: &Workdir, drops: &[Drop]) {
    for d in drops {
        std::fs::write(w.unit_dir(d.unit).join(&d.name), &d.bytes).unwrap();
    }
}

fn command(w: &Workdir, args: &[&str]) -> Command {
    let mut cmd = w.command(args);
    cmd.stdin(Stdio::null());
    cmd
}

/// Run to the end; Err with its output unless it exits with one of `codes`.
fn run(w: &Workdir, args: &[&str], codes: &[i32]) -> Outcome<String> {
    let out = command(w, args).output().map_err(|e| e.to_string())?;
    let code = out.status.code().unwrap_or(-1);
    ensure!(
        codes.contains(&code),
        "tally {args:?} exited {code}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Start `tally args` in its own process group, wait `after`, SIGKILL the whole group.
/// Returns whether it was still running when killed (a kill, not a finished run).
fn kill_after(w: &Workdir, args: &[&str], after: Duration) -> bool {
    let mut child = command(w, args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("start tally");
    let pgid = child.id() as i32;
    let deadline = Instant::now() + after;
    let mut running = true;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            running = false;
            break;
        }
        std::thread::sleep(Duration::from_millis(2).min(deadline - Instant::now()));
    }
    // The group outlives its leader when a reader child is still at work: kill it all.
    unsafe {
        libc::kill(-pgid, libc::SIGKILL);
    }
    let _ = child.wait();
    running
}

/// What counts as litter: a temporary file of tally's or anyone's, a staging copy.
pub fn is_litter(name: &str) -> bool {
    name.starts_with(".tally-")
        || name.starts_with(".master.")
        || name.starts_with(".tmp")
        || name.ends_with(".tmp")
        || name.ends_with(".part")
}

/// Litter under the plan folder: temp files anywhere in output/, archive/, watch-dirs/, state/,
/// outbox/ and beside tally.toml, and a non-empty archive/.staging.
pub fn litter(w: &Workdir) -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if p.is_dir() {
                if name == ".staging" && std::fs::read_dir(&p).is_ok_and(|mut r| r.next().is_some())
                {
                    out.push(p.clone());
                }
                walk(&p, out);
            } else if is_litter(&name) {
                out.push(p);
            }
        }
    }
    let mut out = Vec::new();
    for d in ["output", "archive", "watch-dirs", "state", "outbox"] {
        walk(&w.join(d), &mut out);
    }
    for e in std::fs::read_dir(w.path()).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if e.path().is_file() && is_litter(&name) {
            out.push(e.path());
        }
    }
    out
}

/// What a run ended with, to compare a killed run with an unkilled one.
#[derive(Debug, PartialEq)]
pub struct Ending {
    status: serde_json::Value,
    /// (unit, file name) → status of its submission.
    results: BTreeMap<(String, String), String>,
    emls: usize,
    /// Files rejected unread as internal-error.
    internal_errors: usize,
}

fn submissions(w: &Workdir) -> Outcome<Vec<tally::ledger::Submission>> {
    let ledger =
        tally::ledger::Ledger::open(&w.join("state/tally.db")).map_err(|e| e.to_string())?;
    ledger.submissions().map_err(|e| e.to_string())
}

fn files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .filter(|e| e.path().is_file())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Every check of a finished run; its ending for the comparison.
pub fn check_run(w: &Workdir, drops: &[Drop]) -> Outcome<Ending> {
    if std::env::var_os("CRASH_KEEP").is_some() {
        println!("work folder kept: {}", w.path().display());
    }
    // Every dropped file ended exactly once, in 已接收/ or 退回/.
    for unit in UNITS {
        let left: Vec<String> = files(&w.unit_dir(unit))
            .into_iter()
            .filter(|n| n != "本单位进度.xlsx")
            .collect();
        ensure!(left.is_empty(), "{unit}: left in the drop folder: {left:?}");
    }
    for d in drops {
        let dir = w.unit_dir(d.unit);
        let places: Vec<&str> = ["已接收", "退回"]
            .into_iter()
            .filter(|sub| dir.join(sub).join(&d.name).is_file())
            .collect();
        ensure!(
            places.len() == 1,
            "{}/{}: found in {places:?}",
            d.unit,
            d.name
        );
        let kept = std::fs::read(dir.join(places[0]).join(&d.name)).unwrap_or_default();
        ensure!(
            kept == d.bytes,
            "{}/{}: moved with other bytes",
            d.unit,
            d.name
        );
        let extra = files(&dir.join(places[0]))
            .into_iter()
            .filter(|n| n.starts_with(d.name.trim_end_matches(".xlsx")) && n.contains(" ("))
            .count();
        ensure!(extra == 0, "{}/{}: a numbered second copy", d.unit, d.name);
    }
    // One submission per drop, each moved.
    let subs = submissions(w)?;
    ensure!(
        subs.len() == drops.len(),
        "{} submissions for {} drops: {:?}",
        subs.len(),
        drops.len(),
        subs.iter()
            .map(|s| (&s.unit, &s.file_name))
            .collect::<Vec<_>>()
    );
    let mut results = BTreeMap::new();
    let mut internal_errors = 0;
    let ledger =
        tally::ledger::Ledger::open(&w.join("state/tally.db")).map_err(|e| e.to_string())?;
    for s in &subs {
        let findings = ledger.findings(s.id).map_err(|e| e.to_string())?;
        if findings
            .iter()
            .any(|f| f.code == tally::core::findings::Code::InternalError)
        {
            internal_errors += 1;
        }
        ensure!(s.moved, "submission {} ({}) not moved", s.id, s.file_name);
        let again = results.insert(
            (s.unit.clone(), s.file_name.clone()),
            s.status.as_str().to_string(),
        );
        ensure!(
            again.is_none(),
            "{}/{}: two submissions",
            s.unit,
            s.file_name
        );
    }
    // No archive copy without its ledger row, nor the reverse.
    let recorded: BTreeSet<PathBuf> = subs
        .iter()
        .map(|s| PathBuf::from(&s.archive_path))
        .collect();
    let mut archived = BTreeSet::new();
    for unit in UNITS {
        let udir = w.join("archive").join(unit);
        for month in std::fs::read_dir(&udir).into_iter().flatten().flatten() {
            for f in files(&month.path()) {
                archived.insert(PathBuf::from(unit).join(month.file_name()).join(f));
            }
        }
    }
    ensure!(
        recorded == archived,
        "archive and ledger differ:\n recorded {recorded:?}\n archived {archived:?}"
    );
    // The ledger is sound.
    let db = rusqlite::Connection::open_with_flags(
        w.join("state/tally.db"),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .map_err(|e| e.to_string())?;
    let ok: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    ensure!(ok == "ok", "integrity_check: {ok}");
    drop(db);
    // A send that a kill interrupted keeps its lease (10 minutes of wall clock, so that no
    // second sender takes it meanwhile) and its backoff (minutes of --now). Let both pass:
    // every sender is dead, so the leases go; and retry a day later.
    let db = rusqlite::Connection::open(w.join("state/tally.db")).map_err(|e| e.to_string())?;
    db.execute(
        "UPDATE outbox SET lease_until = NULL WHERE status = 'queued'",
        [],
    )
    .map_err(|e| e.to_string())?;
    drop(db);
    run(w, &["--now", LATER, "outbox", "retry"], &[0])?;
    // One receipt or rejection notice per file, each Message-ID once, nothing waiting.
    let emls = files(&w.join("outbox"));
    let per_file = emls
        .iter()
        .filter(|n| n.contains("-回执-") || n.contains("-退回"))
        .count();
    ensure!(
        per_file == drops.len(),
        "{per_file} receipts or notices for {} files: {emls:?}",
        drops.len()
    );
    let mut ids = BTreeSet::new();
    for name in &emls {
        let text = std::fs::read_to_string(w.join("outbox").join(name)).unwrap_or_default();
        let id = text
            .lines()
            .find(|l| l.to_ascii_lowercase().starts_with("message-id:"))
            .map(|l| l[11..].trim().to_string());
        let Some(id) = id else {
            return Err(format!("outbox/{name}: no Message-ID"));
        };
        ensure!(ids.insert(id.clone()), "Message-ID {id} twice");
    }
    let waiting = run(w, &["--now", NOW, "outbox", "list", "--json"], &[0])?;
    let waiting: serde_json::Value = serde_json::from_str(&waiting).map_err(|e| e.to_string())?;
    ensure!(
        waiting.as_array().is_some_and(|a| a.is_empty()),
        "mail still waiting: {waiting}"
    );
    // The master is the one a fresh rebuild makes.
    let before = std::fs::read(w.join("output/master.xlsx")).map_err(|e| format!("master: {e}"))?;
    run(w, &["--now", NOW, "rebuild"], &[0])?;
    let after = std::fs::read(w.join("output/master.xlsx")).unwrap_or_default();
    ensure!(before == after, "the master differs from a fresh rebuild");
    let status = run(w, &["--now", NOW, "status", "--json"], &[0])?;
    let status = serde_json::from_str(&status).map_err(|e| e.to_string())?;
    // Nothing half-written anywhere.
    let litter = litter(w);
    ensure!(litter.is_empty(), "litter: {litter:?}");
    Ok(Ending {
        status,
        results,
        emls: emls.len(),
        internal_errors,
    })
}

/// Trial figures.
#[derive(Debug, Default)]
pub struct Tally {
    pub trials: usize,
    pub kills: usize,
    pub failures: Vec<String>,
}

impl Tally {
    pub fn record(&mut self, what: &str, seed: u64, result: Outcome<usize>) {
        self.trials += 1;
        match result {
            Ok(kills) => self.kills += kills,
            Err(e) => self.failures.push(format!("{what} seed {seed}: {e}")),
        }
    }
}

/// Start `tally watch` `kills` times, each killed after `from` + a random part of `span`
/// milliseconds; then `watch --once` to the end. How many kills found it running.
fn kill_daemon_then_finish(
    w: &Workdir,
    rng: &mut Rng,
    kills: usize,
    (from, span): (u64, u64),
) -> Outcome<usize> {
    let mut killed = 0;
    for _ in 0..kills {
        let after = Duration::from_millis(from + rng.below(span));
        if kill_after(w, &["--now", NOW, "watch", "--settle", "0.2"], after) {
            killed += 1;
        }
    }
    run(
        w,
        &["--now", NOW, "watch", "--once", "--settle", "0.2"],
        &[0],
    )?;
    Ok(killed)
}

/// Drop a batch, kill `tally watch` `kills` times at random moments, finish with
/// `watch --once`, and check it against an unkilled run of the same batch.
pub fn watch_trial(seed: u64, kills: usize) -> Outcome<usize> {
    let drops = batch(seed);
    let reference = Workdir::with_plan(&plan());
    drop_all(&reference, &drops);
    run(
        &reference,
        &["--now", NOW, "watch", "--once", "--settle", "0.2"],
        &[0],
    )?;
    let expected = check_run(&reference, &drops).map_err(|e| format!("unkilled run: {e}"))?;
    drop(reference);

    let w = Workdir::with_plan(&plan());
    drop_all(&w, &drops);
    let mut rng = Rng::new(seed ^ 0xC0FFEE);
    let killed = kill_daemon_then_finish(&w, &mut rng, kills, (20, 1000))?;
    let got = check_run(&w, &drops)?;
    // The daemon rejects a file unread as internal-error when tally stopped abruptly three
    // times while handling its content; kills from outside must not make an honest return
    // look like such a file.
    ensure!(
        got.internal_errors <= expected.internal_errors,
        "{} honest file(s) rejected unread as internal-error after kills during their intake: {:?}",
        got.internal_errors - expected.internal_errors,
        got.results
    );
    ensure!(
        got == expected,
        "the killed run ended otherwise than the unkilled one:\n killed {got:?}\n unkilled {expected:?}"
    );
    Ok(killed)
}

/// Kill `tally rebuild` at random moments: the master is always a whole workbook (the last
/// good one or the new one), and the next start leaves no litter.
pub fn rebuild_trial(seed: u64, kills: usize) -> Outcome<usize> {
    let w = Workdir::with_plan(&plan());
    drop_all(&w, &batch(seed));
    run(
        &w,
        &["--now", NOW, "watch", "--once", "--settle", "0.2"],
        &[0],
    )?;
    let master = w.join("output/master.xlsx");
    let mut rng = Rng::new(seed ^ 0xBEEF);
    let mut killed = 0;
    for k in 0..kills {
        // Another day each time, so each rebuild really replaces the master.
        let now = format!("2020-07-{:02}", 2 + k % 20);
        let after = Duration::from_millis(rng.below(400));
        if kill_after(&w, &["--now", &now, "rebuild"], after) {
            killed += 1;
        }
        let bytes = std::fs::read(&master).map_err(|e| format!("master gone: {e}"))?;
        let readable = calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).is_ok();
        ensure!(
            readable,
            "after a kill during rebuild the master is not a whole workbook"
        );
    }
    run(&w, &["--now", NOW, "rebuild"], &[0])?;
    let litter = litter(&w);
    ensure!(
        litter.is_empty(),
        "litter after the next rebuild: {litter:?}"
    );
    Ok(killed)
}

/// Kill `tally targets import` at random moments: tally.toml is the old file or the new one,
/// byte for byte; the next start leaves no litter beside it.
pub fn targets_trial(seed: u64, kills: usize, fixtures: &Path) -> Outcome<usize> {
    let from = "[targets.\"西兴街道\"]\n\"企业主要负责人\" = 70\n\"安全生产管理人员\" = 80\n\"其他从业人员\" = 5000\n";
    let to = "[targets.\"西兴街道\"]\n\"企业主要负责人\" = 1\n\"安全生产管理人员\" = 80\n\"其他从业人员\" = 2\n";
    let new = plan();
    let old = new.replacen(from, to, 1);
    assert_ne!(old, new);
    let w = Workdir::with_plan(&old);
    let attachment = fixtures.join("reference-attachment.xlsx");
    let attachment = attachment.to_string_lossy().into_owned();
    let mut rng = Rng::new(seed ^ 0x7A6);
    let mut killed = 0;
    let config = w.join("tally.toml");
    for _ in 0..kills {
        let after = Duration::from_millis(rng.below(150));
        let args = ["targets", "import", &attachment, "--accept-stated"];
        if kill_after(&w, &args, after) {
            killed += 1;
        }
        let now = std::fs::read_to_string(&config).map_err(|e| e.to_string())?;
        ensure!(
            now == old || now == new,
            "tally.toml is neither the old nor the new file"
        );
        if now == new {
            std::fs::write(&config, &old).unwrap();
        }
    }
    run(&w, &["--now", NOW, "rebuild"], &[0])?;
    let litter = litter(&w);
    ensure!(litter.is_empty(), "litter after the next start: {litter:?}");
    Ok(killed)
}

/// Kill `tally outbox retry` (file transport) at random moments while it writes the queued
/// mail: in the end one .eml per message, no Message-ID twice, no litter.
pub fn mail_trial(seed: u64, kills: usize) -> Outcome<usize> {
    let w = Workdir::with_plan(&plan());
    let drops = batch(seed);
    drop_all(&w, &drops);
    // The outbox is a file for now: every message waits.
    std::fs::write(w.join("outbox"), b"not a folder").unwrap();
    run(
        &w,
        &["--now", NOW, "watch", "--once", "--settle", "0.2"],
        &[0],
    )?;
    std::fs::remove_file(w.join("outbox")).unwrap();
    std::fs::create_dir(w.join("outbox")).unwrap();
    let mut rng = Rng::new(seed ^ 0x3A1);
    let mut killed = 0;
    for _ in 0..kills {
        let after = Duration::from_millis(rng.below(120));
        if kill_after(&w, &["--now", NOW, "outbox", "retry"], after) {
            killed += 1;
        }
    }
    run(&w, &["--now", NOW, "outbox", "retry"], &[0])?;
    // The next start cleans up what a killed sender left.
    run(
        &w,
        &["--now", NOW, "watch", "--once", "--settle", "0.2"],
        &[0],
    )?;
    let checked = check_run(&w, &drops);
    if checked.is_err() && std::env::var_os("CRASH_KEEP").is_some() {
        let _ = w.dir.keep();
    }
    checked?;
    Ok(killed)
}

/// Kill `tally outbox retry` at random moments while it sends the queued mail to a loopback
/// SMTP server (aiosmtpd): in the end every message reached the server, nothing is left
/// queued, and a message the server received twice (a kill after the server took it and
/// before the ledger noted it — no sender can close that window) carries the same Message-ID
/// and text both times, so mail clients show it once; there are never more such repeats than
/// kills.
pub fn smtp_trial(seed: u64, kills: usize) -> Outcome<usize> {
    if !super::smtp::available("crash trial (SMTP)") {
        return Ok(0);
    }
    let port = super::smtp::free_port();
    let smtp_plan = plan().replacen(
        "[mail]\n",
        &format!("[mail]\nsmtp_url = \"smtp://127.0.0.1:{port}\"\n"),
        1,
    );
    ensure!(smtp_plan.contains("smtp_url"), "no [mail] in the plan");
    let w = Workdir::with_plan(&smtp_plan);
    let drops = batch(seed);
    drop_all(&w, &drops);
    // Nothing listens yet: every message waits in the outbox.
    run(
        &w,
        &["--now", NOW, "watch", "--once", "--settle", "0.2"],
        &[0],
    )?;
    let server = super::smtp::Server::start_on(port);
    let mut rng = Rng::new(seed ^ 0x5317);
    let mut killed = 0;
    for _ in 0..kills {
        let after = Duration::from_millis(rng.below(250));
        if kill_after(&w, &["--now", LATER, "outbox", "retry"], after) {
            killed += 1;
        }
    }
    let db = rusqlite::Connection::open(w.join("state/tally.db")).map_err(|e| e.to_string())?;
    db.execute(
        "UPDATE outbox SET lease_until = NULL WHERE status = 'queued'",
        [],
    )
    .map_err(|e| e.to_string())?;
    let messages: i64 = db
        .query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))
        .map_err(|e| e.to_string())?;
    drop(db);
    run(&w, &["--now", "2020-07-03", "outbox", "retry"], &[0])?;
    let waiting = run(&w, &["--now", NOW, "outbox", "list", "--json"], &[0])?;
    let waiting: serde_json::Value = serde_json::from_str(&waiting).map_err(|e| e.to_string())?;
    ensure!(
        waiting.as_array().is_some_and(|a| a.is_empty()),
        "mail still waiting: {waiting}"
    );
    let received = server.received();
    let mut by_id: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for m in &received {
        by_id
            .entry(m.message_id.clone())
            .or_default()
            .push((m.subject.clone(), m.body.clone()));
    }
    ensure!(
        by_id.len() as i64 == messages,
        "{} distinct messages reached the server, {messages} in the outbox",
        by_id.len()
    );
    for (id, copies) in &by_id {
        ensure!(
            copies.iter().all(|c| *c == copies[0]),
            "Message-ID {id} with different texts"
        );
    }
    let repeats = received.len() - by_id.len();
    ensure!(
        repeats <= killed,
        "{repeats} messages received twice after {killed} kills"
    );
    let litter = litter(&w);
    ensure!(litter.is_empty(), "litter: {litter:?}");
    Ok(killed)
}

/// Kill the daemon while it takes a large return (20,000 rows), whose rows go into the ledger while it is
/// read (in runs of 2,048, in a transaction the record goes on with): it counts once and
/// whole, nothing of an undone transaction stays, and no read mark is left beside the ledger.
/// Two kills at most: three stops after its read would reject it unread, by design.
pub fn large_trial(seed: u64, kills: usize) -> Outcome<usize> {
    const ROWS: u32 = 20_000;
    let mut rng = Rng::new(seed ^ 0x1A46E);
    let w = Workdir::with_plan(&plan());
    let unit = UNITS[rng.below(UNITS.len() as u64) as usize];
    let people: Vec<Person> = (0..ROWS).map(|i| Person::new(i, O, "2020-05-06")).collect();
    std::fs::write(
        w.unit_dir(unit).join("大表.xlsx"),
        return_xlsx(unit, "2020-05", &people),
    )
    .unwrap();
    // Alone on the machine, a release build writes its rows ~0.3–0.4 s after the start.
    let killed = kill_daemon_then_finish(&w, &mut rng, kills.min(2), (150, 600))?;
    let subs = submissions(&w)?;
    let accepted: Vec<_> = subs
        .iter()
        .filter(|s| s.status == tally::ledger::SubmissionStatus::Accepted)
        .collect();
    ensure!(
        accepted.len() == 1 && accepted[0].rows == i64::from(ROWS),
        "the large return is not on record once, whole: {subs:?}"
    );
    let status: serde_json::Value =
        serde_json::from_str(&run(&w, &["--now", NOW, "status", "--json"], &[0])?)
            .map_err(|e| e.to_string())?;
    let completed = status["units"]
        .as_array()
        .and_then(|us| us.iter().find(|u| u["unit"] == unit))
        .and_then(|u| u["categories"].as_array())
        .and_then(|cs| cs.iter().find(|c| c["category"] == O))
        .and_then(|c| c["completed"].as_u64());
    ensure!(
        completed == Some(u64::from(ROWS)),
        "{unit} completed {completed:?} of {O}, not {ROWS}"
    );
    ensure!(
        w.unit_dir(unit).join("已接收/大表.xlsx").is_file(),
        "the large return is not in 已接收"
    );
    ensure!(
        !w.join("state/tally.db-read").exists(),
        "a read mark is left beside the ledger"
    );
    let litter = litter(&w);
    ensure!(litter.is_empty(), "litter: {litter:?}");
    Ok(killed)
}

/// Trial `i` of a run from `seed`: most kill the daemon; of every eight, one kills a rebuild,
/// one an import, one the mail written to files, one the mail sent over SMTP and one the
/// daemon taking a large return.
pub fn one(
    i: usize,
    seed: u64,
    kills: usize,
    fixtures: &Path,
) -> (&'static str, u64, Outcome<usize>) {
    let s = seed.wrapping_add(i as u64);
    match i % 8 {
        1 => ("rebuild", s, rebuild_trial(s, kills)),
        2 => ("targets import", s, targets_trial(s, kills, fixtures)),
        3 => ("mail", s, mail_trial(s, kills)),
        4 => ("smtp", s, smtp_trial(s, kills)),
        5 => ("large return", s, large_trial(s, kills)),
        _ => ("watch", s, watch_trial(s, kills)),
    }
}

/// `n` trials from `seed`, `jobs` at a time (each in its own folder). Prints each trial's
/// seed and result as it goes.
pub fn trials(n: usize, seed: u64, kills: usize, fixtures: &Path, jobs: usize) -> Tally {
    let next = std::sync::atomic::AtomicUsize::new(0);
    let tally = std::sync::Mutex::new(Tally::default());
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if i >= n {
                        break;
                    }
                    let (what, s, result) = one(i, seed, kills, fixtures);
                    println!(
                        "crash trial {i} ({what}) seed {s}: {}",
                        match &result {
                            Ok(k) => format!("ok, {k} kills"),
                            Err(e) => format!("FAILED: {e}"),
                        }
                    );
                    tally.lock().unwrap().record(what, s, result);
                }
            });
        }
    });
    tally.into_inner().unwrap()
}
