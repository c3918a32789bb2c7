//! The returns fuzzer's runner: each mutant read and checked exactly as intake does it (the
//! sandboxed `tally __read` child through `read::read_sandboxed`, then `returns::check` under
//! `catch_unwind`), its outcome classified and tallied. Shared by `tests/fuzz.rs` and
//! `examples/fuzz_returns.rs` through `#[path]`; it never judges, the callers assert.

#![allow(dead_code)]

use super::mutate;
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tally::config::Config;
use tally::core::findings::{Code, Severity};
use tally::core::returns::{self, Context};

/// The fuzzer's plan: the reference plan with small reader limits (10 s, 512 MiB), written
/// where the child reads it, so that parent and child agree on every limit.
pub const READER_SECONDS: u64 = 10;
pub const READER_MEMORY_MB: u64 = 512;

/// The fixtures the mutants start from: those the manifest says are accepted.
pub fn fixture_seeds(fixtures: &Path) -> Vec<Seed> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        fixture: Vec<Fixture>,
    }
    #[derive(serde::Deserialize)]
    struct Fixture {
        file: String,
        unit: String,
        accepted: bool,
    }
    let text = std::fs::read_to_string(fixtures.join("manifest.toml")).expect("manifest.toml");
    let manifest: Manifest = toml::from_str(&text).expect("manifest parses");
    manifest
        .fixture
        .into_iter()
        .filter(|f| f.accepted)
        .map(|f| Seed {
            bytes: std::fs::read(fixtures.join(&f.file)).expect("fixture"),
            name: f.file,
            unit: f.unit,
        })
        .collect()
}

/// A valid return the mutants start from.
#[derive(Debug, Clone)]
pub struct Seed {
    pub name: String,
    pub unit: String,
    pub bytes: Vec<u8>,
}

impl Seed {
    fn extension(&self) -> &str {
        self.name.rsplit_once('.').map_or("xlsx", |(_, e)| e)
    }
}

/// How one mutant ended.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Outcome {
    Accepted,
    /// Rejected, with its distinct error codes.
    Rejected(Vec<Code>),
    /// The reader's time limit was reached (a `too-large` rejection, counted apart).
    TimedOut,
    /// `returns::check` panicked in the parent: a bug.
    ParentPanic(String),
    /// A rejection without any error finding, or findings on an accepted return that the
    /// verdict contradicts: a bug.
    Incoherent(String),
}

/// One mutant's record.
#[derive(Debug, Clone)]
pub struct Trial {
    pub index: u64,
    pub seed_name: String,
    pub trail: mutate::Trail,
    pub outcome: Outcome,
    pub elapsed: Duration,
}

/// The fuzzer's environment: a temp folder holding the plan and one file per worker.
pub struct Bench {
    pub dir: tempfile::TempDir,
    pub exe: PathBuf,
    pub config_path: PathBuf,
    pub config: Config,
    pub now: chrono::DateTime<chrono_tz::Tz>,
}

impl Bench {
    /// `plan` is the reference tally.toml; `exe` the `tally` binary (or a program that answers
    /// `-q __read FILE` as it does).
    pub fn new(exe: &Path, plan: &str) -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let plan = plan
            .replace(
                "reader_memory_mb = 2048",
                &format!("reader_memory_mb = {READER_MEMORY_MB}"),
            )
            .replace(
                "reader_seconds = 60",
                &format!("reader_seconds = {READER_SECONDS}"),
            );
        let config_path = dir.path().join("tally.toml");
        std::fs::write(&config_path, plan).expect("write plan");
        let config = Config::load(&config_path).expect("plan loads");
        assert_eq!(
            config.limits.reader_seconds, READER_SECONDS,
            "plan's [limits] changed"
        );
        assert_eq!(
            config.limits.reader_memory_mb, READER_MEMORY_MB,
            "plan's [limits] changed"
        );
        let now = tally::core::calendar::parse_now("2020-07-01", config.plan.tz).expect("now");
        Bench {
            dir,
            exe: exe.to_path_buf(),
            config_path,
            config,
            now,
        }
    }

    /// Read and check `bytes` as intake does, written to worker `slot`'s file.
    pub fn judge(&self, slot: usize, ext: &str, unit: &str, bytes: &[u8]) -> (Outcome, Duration) {
        let path = self.dir.path().join(format!("mutant-{slot}.{ext}"));
        std::fs::write(&path, bytes).expect("write mutant");
        let unit = self.config.plan.find_unit(unit).expect("seed's unit");
        let started = Instant::now();
        let read = tally::read::read_sandboxed(
            &self.exe,
            Some(&self.config_path),
            &path,
            &self.config.limits,
        );
        let elapsed = started.elapsed();
        let outcome = match read {
            Err(f)
                if f.code == Code::TooLarge && elapsed >= Duration::from_secs(READER_SECONDS) =>
            {
                Outcome::TimedOut
            }
            Err(f) => Outcome::Rejected(vec![f.code]),
            Ok(wb) => {
                let ctx = Context {
                    plan: &self.config.plan,
                    unit: Some(unit),
                    now: self.now,
                    max_rows: self.config.limits.max_rows,
                };
                match catch_unwind(AssertUnwindSafe(|| returns::check(&wb, &ctx))) {
                    Err(panic) => Outcome::ParentPanic(panic_text(&panic)),
                    Ok(ret) => verdict(&ret),
                }
            }
        };
        (outcome, elapsed)
    }

    /// Mutant `index` of a run seeded with `seed`, judged in worker `slot`.
    pub fn trial(&self, seeds: &[Seed], seed: u64, index: u64, slot: usize) -> Trial {
        let s = mutate::mutant_seed(seed, index);
        let base = &seeds[(s % seeds.len() as u64) as usize];
        let (bytes, trail) = mutate::mutate(&base.bytes, s);
        let (outcome, elapsed) = self.judge(slot, base.extension(), &base.unit, &bytes);
        Trial {
            index,
            seed_name: base.name.clone(),
            trail,
            outcome,
            elapsed,
        }
    }

    /// Mutants `0..count` of `seed` on `threads` workers, `progress` called after each.
    pub fn run(
        &self,
        seeds: &[Seed],
        seed: u64,
        count: u64,
        threads: usize,
        progress: &(dyn Fn(&Trial) + Sync),
    ) -> Vec<Trial> {
        let next = std::sync::atomic::AtomicU64::new(0);
        let trials = std::sync::Mutex::new(Vec::new());
        std::thread::scope(|scope| {
            for slot in 0..threads.max(1) {
                let (next, trials) = (&next, &trials);
                scope.spawn(move || {
                    loop {
                        let index = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if index >= count {
                            break;
                        }
                        let t = self.trial(seeds, seed, index, slot);
                        progress(&t);
                        trials.lock().expect("trials").push(t);
                    }
                });
            }
        });
        let mut trials = trials.into_inner().expect("trials");
        trials.sort_by_key(|t| t.index);
        trials
    }
}

/// The outcome of a checked return, or why its findings contradict its verdict.
pub fn verdict(ret: &returns::Return) -> Outcome {
    let errors: std::collections::BTreeSet<Code> = ret
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| f.code)
        .collect();
    match (ret.accepted(), errors.is_empty()) {
        (true, true) => Outcome::Accepted,
        (false, false) => Outcome::Rejected(errors.into_iter().collect()),
        (accepted, _) => {
            Outcome::Incoherent(format!("accepted = {accepted} with errors {errors:?}"))
        }
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "panic".into())
}

/// Outcomes counted: accepted, timed out, bugs, and rejections by code (a mutant counts once
/// under each of its codes).
#[derive(Debug, Default)]
pub struct Summary {
    pub mutants: usize,
    pub accepted: usize,
    pub rejected: usize,
    pub timed_out: usize,
    pub by_code: BTreeMap<&'static str, usize>,
    pub bugs: Vec<String>,
    pub slowest: Duration,
}

impl Summary {
    pub fn of(trials: &[Trial]) -> Summary {
        let mut s = Summary {
            mutants: trials.len(),
            ..Summary::default()
        };
        for t in trials {
            s.slowest = s.slowest.max(t.elapsed);
            match &t.outcome {
                Outcome::Accepted => s.accepted += 1,
                Outcome::TimedOut => s.timed_out += 1,
                Outcome::Rejected(codes) => {
                    s.rejected += 1;
                    for c in codes {
                        *s.by_code.entry(c.as_str()).or_default() += 1;
                    }
                }
                Outcome::ParentPanic(msg) | Outcome::Incoherent(msg) => s.bugs.push(format!(
                    "mutant {} of {} ({}): {:?}: {msg}",
                    t.index,
                    t.seed_name,
                    t.trail.join("; "),
                    t.outcome
                )),
            }
        }
        s
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} mutants: {} accepted, {} rejected, {} timed out, {} bugs; slowest read {:.1} s",
            self.mutants,
            self.accepted,
            self.rejected,
            self.timed_out,
            self.bugs.len(),
            self.slowest.as_secs_f64()
        )?;
        for (code, n) in &self.by_code {
            writeln!(f, "  {code:<22} {n}")?;
        }
        for b in &self.bugs {
            writeln!(f, "  BUG {b}")?;
        }
        Ok(())
    }
}
