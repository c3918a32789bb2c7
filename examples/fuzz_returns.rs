//! The long run of the returns fuzzer (issue 12, item 4), the same mutator and runner as
//! `tests/fuzz.rs`: `cargo run --release --example fuzz_returns -- --mutants 20000 --seed N`
//! [--threads 2] [--exe target/release/tally] [--keep DIR]. Prints outcomes by code, bugs and
//! minutes; exits 1 on a bug (parent panic, incoherent verdict) or a read past the time limit.
//! Without --exe this program answers `-q __read FILE` itself through `read::child_main`, the
//! very function `tally __read` runs; mutants live in a temp dir removed at the end.

#[path = "../tests/fuzz/mutate.rs"]
mod mutate;
#[path = "../tests/fuzz/run.rs"]
mod run;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const REFERENCE_PLAN: &str = include_str!("../tally.toml");

struct Args {
    mutants: u64,
    seed: u64,
    threads: usize,
    exe: Option<PathBuf>,
    keep: Option<PathBuf>,
}

fn parse_args(mut it: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut a = Args {
        mutants: 20_000,
        seed: 12,
        threads: 2,
        exe: None,
        keep: None,
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag}: needs a value"));
        match flag.as_str() {
            "--mutants" => a.mutants = value()?.parse().map_err(|e| format!("--mutants: {e}"))?,
            "--seed" => a.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--threads" => a.threads = value()?.parse().map_err(|e| format!("--threads: {e}"))?,
            "--exe" => a.exe = Some(value()?.into()),
            "--keep" => a.keep = Some(value()?.into()),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(a)
}

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    // Called back as the reader child: `[--config C] -q __read FILE [--confined]`.
    if let Some(i) = argv.iter().position(|a| a == tally::read::CHILD_COMMAND) {
        let limits = argv
            .iter()
            .position(|a| a == "--config")
            .and_then(|c| argv.get(c + 1))
            .and_then(|c| tally::config::Config::load(Path::new(c)).ok())
            .map(|c| c.limits)
            .unwrap_or_default();
        let file = argv.get(i + 1).map(PathBuf::from).unwrap_or_default();
        let confined = argv.iter().any(|a| a == tally::sandbox::CONFINED_FLAG);
        std::process::exit(tally::read::child_main(&file, &limits, None, confined));
    }
    let args = match parse_args(argv.into_iter()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!(
                "fuzz_returns: {e}\nusage: fuzz_returns [--mutants N] [--seed N] [--threads N] [--exe TALLY] [--keep DIR]"
            );
            std::process::exit(2);
        }
    };
    let exe = match &args.exe {
        Some(e) => e.clone(),
        None => std::env::current_exe().expect("own path"),
    };
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let seeds = run::fixture_seeds(&fixtures);
    let bench = run::Bench::new(&exe, REFERENCE_PLAN);
    println!(
        "fuzz_returns: {} mutants, seed {}, {} threads, {} seed returns, reader {} s / {} MiB, child {}",
        args.mutants,
        args.seed,
        args.threads,
        seeds.len(),
        run::READER_SECONDS,
        run::READER_MEMORY_MB,
        exe.display()
    );
    let started = Instant::now();
    let done = std::sync::atomic::AtomicU64::new(0);
    let progress = |t: &run::Trial| {
        let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        if n.is_multiple_of(1000) {
            eprintln!(
                "  {n} mutants, {:.1} min",
                started.elapsed().as_secs_f64() / 60.0
            );
        }
        if !matches!(
            t.outcome,
            run::Outcome::Accepted | run::Outcome::Rejected(_)
        ) {
            eprintln!(
                "  mutant {}: {:?} ({})",
                t.index,
                t.outcome,
                t.trail.join("; ")
            );
        }
        if let Some(dir) = &args.keep {
            let interesting = match &t.outcome {
                run::Outcome::Rejected(codes) => {
                    codes.contains(&tally::core::findings::Code::InternalError)
                }
                run::Outcome::Accepted => false,
                _ => true,
            };
            if interesting {
                keep(dir, &seeds, args.seed, t);
            }
        }
    };
    let trials = bench.run(&seeds, args.seed, args.mutants, args.threads, &progress);
    let summary = run::Summary::of(&trials);
    let late = trials
        .iter()
        .filter(|t| t.elapsed >= Duration::from_secs(run::READER_SECONDS + 5))
        .count();
    let internal: Vec<u64> = trials
        .iter()
        .filter(|t| {
            matches!(&t.outcome, run::Outcome::Rejected(c) if c.contains(&tally::core::findings::Code::InternalError))
        })
        .map(|t| t.index)
        .collect();
    print!("{summary}");
    println!(
        "reader child crashes (internal-error): {} {:?}",
        internal.len(),
        &internal[..internal.len().min(20)]
    );
    println!("reads past the time limit: {late}");
    println!("{:.1} minutes", started.elapsed().as_secs_f64() / 60.0);
    if !summary.bugs.is_empty() || late > 0 {
        std::process::exit(1);
    }
}

/// Save a mutant worth a regression test, named by seed and index.
fn keep(dir: &Path, seeds: &[run::Seed], seed: u64, t: &run::Trial) {
    let s = mutate::mutant_seed(seed, t.index);
    let base = &seeds[(s % seeds.len() as u64) as usize];
    let (bytes, _) = mutate::mutate(&base.bytes, s);
    let ext = base.name.rsplit_once('.').map_or("xlsx", |(_, e)| e);
    let _ = std::fs::create_dir_all(dir);
    let _ = std::fs::write(
        dir.join(format!("seed{seed}-mutant{}.{ext}", t.index)),
        bytes,
    );
    let _ = std::fs::write(
        dir.join(format!("seed{seed}-mutant{}.txt", t.index)),
        format!("{} ← {}\n{:?}\n", t.trail.join("; "), base.name, t.outcome),
    );
}
