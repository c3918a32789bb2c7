//! Crash trials (issue 12, DESIGN.md §8): the real `tally` killed with SIGKILL at random
//! moments — the daemon, a rebuild, a targets import, mail written to files and sent over
//! SMTP — loses nothing, counts
//! nothing twice and leaves no litter. A short run here; the long run:
//! `CRASH_TRIALS=200 CRASH_SEED=1 cargo test --release --test crash -- --ignored --nocapture`.

#![cfg(unix)]

mod common;
mod smtp;
#[path = "crash/trial.rs"]
mod trial;

use std::path::PathBuf;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/targets")
}

fn env_or(key: &str, default: u64) -> u64 {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Trials at a time: `CRASH_JOBS`, else up to 5 (each is mostly waiting on the binary).
fn jobs() -> usize {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    env_or("CRASH_JOBS", cores.min(5) as u64) as usize
}

fn report(tally: &trial::Tally, started: std::time::Instant) {
    println!(
        "crash trials: {} trials, {} kills, {} failures, {:.1} min",
        tally.trials,
        tally.kills,
        tally.failures.len(),
        started.elapsed().as_secs_f64() / 60.0
    );
    assert!(tally.failures.is_empty(), "{:#?}", tally.failures);
}

#[test]
fn killed_at_random_moments_tally_loses_nothing_and_leaves_no_litter() {
    let seed = env_or("CRASH_SEED", 20200701);
    println!("crash trials: seed {seed}");
    let started = std::time::Instant::now();
    let tally = trial::trials(5, seed, 3, &fixtures(), jobs());
    report(&tally, started);
}

#[test]
#[ignore = "the long run: CRASH_TRIALS=200 cargo test --release --test crash -- --ignored"]
fn long_crash_run() {
    let seed = env_or(
        "CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    );
    let n = env_or("CRASH_TRIALS", 200) as usize;
    let kills = env_or("CRASH_KILLS", 6) as usize;
    println!("crash trials: {n} trials, seed {seed}, {kills} kills each");
    let started = std::time::Instant::now();
    let tally = trial::trials(n, seed, kills, &fixtures(), jobs());
    report(&tally, started);
}

/// One trial again, by kind (watch, rebuild, targets, mail, smtp, large) and seed:
/// `CRASH_KIND=mail CRASH_SEED=… cargo test --test crash -- --ignored one_trial --nocapture`.
#[test]
#[ignore = "reruns one trial of a failure report"]
fn one_trial() {
    let seed = env_or("CRASH_SEED", 1);
    let kills = env_or("CRASH_KILLS", 3) as usize;
    let kind = std::env::var("CRASH_KIND").unwrap_or_else(|_| "watch".into());
    let result = match kind.as_str() {
        "rebuild" => trial::rebuild_trial(seed, kills),
        "targets" => trial::targets_trial(seed, kills, &fixtures()),
        "mail" => trial::mail_trial(seed, kills),
        "smtp" => trial::smtp_trial(seed, kills),
        "large" => trial::large_trial(seed, kills),
        _ => trial::watch_trial(seed, kills),
    };
    println!("{kind} seed {seed}: {result:?}");
    assert!(result.is_ok());
}
