//! `tally rebuild`: rewrite the master workbook from the ledger (issue 4), and the same
//! rebuild after an intake. The work is `master::rebuild`; this only takes the lock and reports.

use crate::ledger::Ledger;
use crate::ledger::lock::StateLock;
use crate::master;
use crate::settings::{ExitStatus, Settings};

/// Take the state lock, open the ledger, rebuild the master and print where it was written.
pub fn run(settings: &Settings) -> anyhow::Result<ExitStatus> {
    let config = &settings.config;
    let _lock = StateLock::acquire(&config.state_path())?;
    let ledger = Ledger::open(&config.state_path())?;
    let written = master::rebuild(config, &ledger, settings.now)?;
    let target = config.master_path();
    if written != target {
        eprintln!(
            "tally: {}：文件被打开或只读，新的总表已写到 {}；请关闭该文件后再运行 `tally rebuild`",
            target.display(),
            written.display()
        );
    }
    println!("{}", written.display());
    Ok(ExitStatus::Success)
}

/// Rebuild the master after returns were taken in. A failure is logged, never passed on: the
/// returns are in the ledger already and the next rebuild catches up.
pub fn after_intake(settings: &Settings, ledger: &Ledger) {
    if let Err(e) = master::rebuild(&settings.config, ledger, settings.now) {
        tracing::error!(error = %e, "the master workbook was not rebuilt; run `tally rebuild` to retry");
    }
}
