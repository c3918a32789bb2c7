//! `tally ingest FILE... --unit U`: take returns in by hand, exactly as the daemon would.

use crate::intake::{self, IntakeContext};
use crate::ledger::lock::StateLock;
use crate::ledger::{Ledger, SubmissionStatus};
use crate::settings::{ExitStatus, Settings};
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Return files.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The unit whose returns these are (its folder receives them).
    #[arg(long, value_name = "U")]
    pub unit: String,
}

pub fn run(settings: &Settings, args: &IngestArgs) -> anyhow::Result<ExitStatus> {
    let config = &settings.config;
    let unit = settings.unit_arg(&args.unit)?;
    for f in &args.files {
        if !f.is_file() {
            return Err(
                crate::settings::UsageError(format!("{}: no such file", f.display())).into(),
            );
        }
    }
    let _lock = StateLock::acquire(&config.state_path())?;
    // Temporary files of a killed run (the lock says none is running).
    intake::remove_stale_temps(config);
    let mut ledger = Ledger::open_at(&config.ledger_location())?;
    // Several files' records wait for the disk together, as in the daemon's burst.
    ledger.defer_durability();
    let exe = std::env::current_exe().context("cannot locate the tally binary")?;
    // Receipts, rejection notices and alerts are stored with each submission.
    let compose = crate::mail::messages::composer(config);
    // The plan, shared with the threads that check the files as they are read.
    let plan = std::sync::Arc::new(config.plan.clone());
    let ctx = IntakeContext {
        config,
        plan: &plan,
        config_path: &settings.config_path,
        exe: &exe,
        now: settings.now,
        compose: &compose,
    };
    // With a ledger shared by watchers, each file is taken under its claim, as they do.
    let owner = format!("ingest-pid{}", std::process::id());
    let claim_secs = config.ledger.claim_secs.ceil() as i64;
    let shared = config.ledger_location().shared();
    intake::resume_pending(
        &ctx,
        &mut ledger,
        shared.then_some((owner.as_str(), claim_secs)),
    )?;
    let mut status = ExitStatus::Success;
    let mut failed = 0;
    // Files another process was taking (with a shared ledger).
    let mut skipped = 0;
    let bar = crate::bars::bar(args.files.len() as u64, "接收报表");
    // Reader children started on the next files while one is taken (not with a shared
    // ledger: there a file is read only under its claim).
    let mut ahead: std::collections::HashMap<usize, intake::Ahead> = Default::default();
    // Files recorded and still in place, moved together once their records are durable.
    let mut group: Vec<(&PathBuf, intake::Recorded)> = Vec::new();
    // Lines for the user go to stdout with the bar (on stderr) out of their way.
    let mut report = |file: &PathBuf, taken: Result<intake::Outcome, intake::IntakeError>| {
        bar.inc(1);
        bar.suspend(|| match taken {
            Ok(outcome) => {
                let s = &outcome.submission;
                println!(
                    "{}：{}（{}）— 台账 {} 行，错误 {} 处，提醒 {} 处 → {}",
                    file.display(),
                    s.status.as_str(),
                    s.status.label_zh(),
                    s.rows,
                    s.errors,
                    s.warnings,
                    s.destination
                );
                if let Some(fb) = &s.feedback_path {
                    println!("  错误说明：{fb}");
                }
                if (s.status == SubmissionStatus::Rejected || s.feedback_path.is_some())
                    && status == ExitStatus::Success
                {
                    status = ExitStatus::Failure;
                }
            }
            Err(e) => {
                eprintln!("tally: {}：未能处理（文件留在原处）：{e}", file.display());
                failed += 1;
            }
        });
    };
    for (i, file) in args.files.iter().enumerate() {
        if !shared {
            for (j, next) in args
                .files
                .iter()
                .enumerate()
                .skip(i + 1)
                .take(intake::READ_AHEAD)
            {
                ahead.entry(j).or_insert_with(|| {
                    let reading = crate::read::Reading::start_checked(
                        &exe,
                        Some(&settings.config_path),
                        next,
                        &config.limits,
                        crate::read::Precheck {
                            plan: plan.clone(),
                            unit: unit.clone(),
                            now: ctx.now,
                            max_rows: config.limits.max_rows,
                        },
                    );
                    intake::Ahead::start(config, next, reading)
                });
            }
        }
        let read = ahead.remove(&i);
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        if shared {
            let clock = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
            if !ledger.claim_file(&unit.name, &name, &owner, clock + claim_secs, clock)? {
                bar.suspend(|| {
                    eprintln!(
                        "tally: {}：另一个接收进程正在处理此文件，本次跳过（文件留在原处）",
                        file.display()
                    )
                });
                skipped += 1;
                continue;
            }
            // Under its claim, a file is taken whole.
            ledger.under_claim(Some((&unit.name, &name, &owner)));
            let taken = match read {
                Some(read) => intake::ingest_read_ahead(&ctx, &mut ledger, unit, file, read),
                None => intake::ingest(&ctx, &mut ledger, unit, file),
            };
            ledger.under_claim(None);
            ledger.release_file(&unit.name, &name, &owner)?;
            report(file, taken);
            continue;
        }
        // A group waits for the disk once. It ends at the last file, at a large return (its
        // cells go at once), at its size, or at a failure (whose line comes after those of
        // the files recorded before it).
        let (ends, failure) = match intake::record(&ctx, &mut ledger, unit, file, read) {
            Ok(recorded) => {
                let large = recorded.is_large();
                group.push((file, recorded));
                let last = i + 1 == args.files.len();
                (large || last || group.len() >= intake::GROUP_FILES, None)
            }
            Err(e) => (true, Some(e)),
        };
        if ends {
            for (file, recorded) in group.drain(..) {
                report(file, intake::complete(&ctx, &mut ledger, recorded));
            }
        }
        if let Some(e) = failure {
            report(file, Err(e));
        }
    }
    bar.finish_and_clear();
    // The master follows the ledger (a failure is logged; `tally rebuild` retries).
    crate::cmd::rebuild::after_intake(settings, &ledger);
    // The mail just stored goes out now; a server that is down only delays it (outbox).
    match crate::mail::send_due(config, &settings.env, &mut ledger, settings.now) {
        Ok(r) if r.sent.is_empty() && r.deferred.is_empty() && r.failed.is_empty() => {}
        Ok(r) => println!("{}", r.summary()),
        Err(e) => eprintln!("tally: 邮件暂留在发件箱：{e}"),
    }
    if failed + skipped > 0 {
        return Ok(ExitStatus::Error);
    }
    Ok(status)
}
