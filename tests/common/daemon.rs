//! A running `tally watch` for end-to-end tests: started in a work folder with JSON logs on
//! stderr in a file, its log lines read back, waits on positive signals (a log line, a
//! finished round) with a generous patience, SIGTERM (Ctrl-Break on Windows) and its exit
//! code.

use super::{BIN, Workdir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long anything may take before a test gives up (not a speed requirement).
pub const PATIENCE: Duration = Duration::from_secs(90);

/// A running `tally watch`, its stderr (JSON log lines) in a file.
pub struct Daemon {
    child: std::cell::RefCell<Child>,
    log: PathBuf,
}

impl Daemon {
    /// `tally --now NOW watch EXTRA` in `w` (`--settle 0.3` and JSON logs unless `extra` sets
    /// them), with `env` set and the variables a developer's shell may hold removed; returns
    /// once it logs that it is watching.
    pub fn spawn(w: &Workdir, now: &str, extra: &[&str], env: &[(&str, &str)]) -> Daemon {
        let n = std::fs::read_dir(w.path()).unwrap().count();
        let log = w.join(format!("daemon-{n}.log"));
        let stderr = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(BIN);
        cmd.current_dir(w.path())
            .arg("--config")
            .arg(w.join("tally.toml"))
            .args(["--now", now, "watch"])
            .args(extra);
        // Defaults for what `extra` does not set.
        for (flag, value) in [("--settle", "0.3"), ("--log-format", "json")] {
            if !extra.contains(&flag) {
                cmd.args([flag, value]);
            }
        }
        cmd.env_remove("TALLY_NOW")
            .env_remove("TALLY_SMTP_URL")
            .env_remove("TALLY_FAULT_WATCH")
            // debug: the daemon's "round finished" lines, the tests' positive signal.
            .env("RUST_LOG", "tally=debug")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr);
        for (k, v) in env {
            cmd.env(k, v);
        }
        // Windows: a process group of its own, so that Ctrl-Break reaches the daemon alone.
        #[cfg(windows)]
        std::os::windows::process::CommandExt::creation_flags(&mut cmd, 0x0000_0200);
        let child = cmd.spawn().expect("start tally watch");
        let d = Daemon {
            child: std::cell::RefCell::new(child),
            log,
        };
        match extra.iter().position(|a| *a == "--log-file") {
            None => d.wait_for("the daemon to watch", |d| d.lines("watching") > 0),
            Some(i) => {
                let dir = Path::new(extra[i + 1]).parent().unwrap().to_path_buf();
                wait_until("the daemon to watch", || {
                    std::fs::read_dir(&dir).is_ok_and(|rd| {
                        rd.flatten().any(|e| {
                            std::fs::read_to_string(e.path()).is_ok_and(|t| t.contains("watching"))
                        })
                    })
                });
            }
        }
        d
    }

    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.child.borrow().id()
    }

    /// The JSON log lines so far.
    pub fn events(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    pub fn lines(&self, message: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e["message"] == message)
            .count()
    }

    pub fn taken(&self) -> Vec<Value> {
        self.events()
            .into_iter()
            .filter(|e| e["message"] == "file taken")
            .collect()
    }

    /// Wait until, after the last line matching `after`, a round of the daemon's loop has
    /// finished that satisfies `round`: the positive signal before asserting that nothing
    /// (else) happens.
    pub fn wait_for_round_after(
        &self,
        what: &str,
        after: impl Fn(&Value) -> bool,
        round: impl Fn(&Value) -> bool,
    ) {
        self.wait_for(&format!("a round after {what}"), |d| {
            let events = d.events();
            let Some(start) = events.iter().rposition(&after) else {
                return false;
            };
            events[start..]
                .iter()
                .any(|e| e["message"] == "round finished" && round(e))
        });
    }

    pub fn wait_for(&self, what: &str, ok: impl Fn(&Daemon) -> bool) {
        self.wait_for_within(what, PATIENCE, ok)
    }

    /// [`Daemon::wait_for`] with another patience (a long run).
    pub fn wait_for_within(&self, what: &str, patience: Duration, ok: impl Fn(&Daemon) -> bool) {
        let start = Instant::now();
        while !ok(self) {
            if start.elapsed() > patience {
                panic!("gave up waiting for {what}; log:\n{}", self.log_text());
            }
            if let Ok(Some(status)) = self.child.borrow_mut().try_wait() {
                panic!(
                    "the daemon exited ({status}) while waiting for {what}; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (Windows: Ctrl-Break to its process group, which tally handles alike), then
    /// the exit code.
    pub fn terminate(self) -> (i32, Daemon) {
        stop_gently(self.child.borrow().id());
        let start = Instant::now();
        loop {
            let status = self.child.borrow_mut().try_wait().unwrap();
            if let Some(status) = status {
                let Some(code) = status.code() else {
                    panic!(
                        "the daemon was ended by a signal ({status}); log:\n{}",
                        self.log_text()
                    );
                };
                return (code, self);
            }
            if start.elapsed() > PATIENCE {
                let _ = self.child.borrow_mut().kill();
                panic!(
                    "the daemon did not stop on SIGTERM; log:\n{}",
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lines whose message begins with `prefix`.
    pub fn lines_starting(&self, prefix: &str) -> usize {
        self.events()
            .iter()
            .filter(|e| e["message"].as_str().is_some_and(|m| m.starts_with(prefix)))
            .count()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let child = self.child.get_mut();
        if let Ok(None) = child.try_wait() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(unix)]
fn stop_gently(pid: u32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
}

#[cfg(windows)]
fn stop_gently(pid: u32) {
    use windows_sys::Win32::System::Console::{CTRL_BREAK_EVENT, GenerateConsoleCtrlEvent};
    // SAFETY: a plain Win32 call on our own child's process group (spawned with
    // CREATE_NEW_PROCESS_GROUP, so its group id is its pid).
    let ok = unsafe { GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, pid) };
    assert!(
        ok != 0,
        "GenerateConsoleCtrlEvent: {}",
        std::io::Error::last_os_error()
    );
}

/// Whether a test can stop the daemon gently here (SIGTERM; Ctrl-Break on Windows) and check
/// what it did on the way out. Not under Wine 8.0: there GenerateConsoleCtrlEvent
/// (CTRL_BREAK_EVENT, the daemon's process group) fails with ERROR_INVALID_ACCESS (os error
/// 12), console or not, so the test says so and skips; the Windows stop path (the daemon's
/// stopper, draining the file and the master) is tested through the service's stop request
/// in tests/windows.rs.
pub fn gentle_stop_possible(test: &str) -> bool {
    if super::under_wine() {
        super::skipped(&format!(
            "{test} (Wine): it stops the daemon gently, and Wine 8.0's GenerateConsoleCtrlEvent(CTRL_BREAK_EVENT, group) fails with ERROR_INVALID_ACCESS; the Windows stop path runs in tests/windows.rs through the service"
        ));
        return false;
    }
    true
}

/// Wait for `ok` (a file, a folder) with [`PATIENCE`].
pub fn wait_until(what: &str, ok: impl Fn() -> bool) {
    let start = Instant::now();
    while !ok() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}
