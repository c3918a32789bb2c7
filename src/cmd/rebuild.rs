//! `tally rebuild`: rewrite the master workbook from the ledger (issue 4), each unit's
//! progress workbook and the form in its folder, and the same rebuild after an intake. The work
//! is `master::rebuild`, `progress::publish_all` and `forms::publish_all`; this only takes the
//! lock, joins the units' two workbooks into one pass over their rows, and reports.

use crate::core::count::CountedRow;
use crate::core::plan::Unit;
use crate::ledger::Ledger;
use crate::ledger::lock::StateLock;
use crate::master;
use crate::progress::{self, Pending, Prepared, UnitOutcome};
use crate::settings::{ExitStatus, Settings};

/// Take the state lock, open the ledger, rebuild the master and print where it was written.
pub fn run(settings: &Settings) -> anyhow::Result<ExitStatus> {
    let config = &settings.config;
    let _lock = StateLock::acquire(&config.state_path())?;
    // Temporary files of a killed run (the lock says none is running).
    crate::intake::remove_stale_temps(config);
    let ledger = Ledger::open_at(&config.ledger_location())?;
    let bar = crate::bars::bar(ledger.counted_total()?, "重建总表（台账行）");
    // Each unit's progress workbook is rendered from the rows read for its roster workbook.
    let rebuilt = master::rebuild_full(config, &ledger, settings.now, &bar, || {
        Ok(progress::prepare(config, &ledger, settings.now, true)?)
    })?;
    bar.finish_and_clear();
    let written = rebuilt.master;
    let target = config.master_path();
    if written != target {
        eprintln!(
            "tally: {}：文件被打开或只读，新的总表已写到 {}；请关闭该文件后再运行 `tally rebuild`",
            target.display(),
            written.display()
        );
    }
    println!("{}", written.display());
    // Each unit's own workbook follows the master (unless written with its roster above); a
    // unit's file held open is left for now.
    let outcomes = match rebuilt.beside {
        Some((prepared, outcomes)) => prepared.record(&ledger, outcomes)?,
        None => progress::publish_all(config, &ledger, settings.now, true)?,
    };
    for (unit, result) in outcomes {
        if let Err(e) = result {
            eprintln!("tally: {unit}：本单位进度表未能写入：{e}");
        }
    }
    for (unit, result) in crate::forms::publish_all(config, settings.now) {
        if let Err(e) = result {
            eprintln!("tally: {unit}：报表模板未能写入：{e}");
        }
    }
    Ok(ExitStatus::Success)
}

/// Rebuild the master after returns were taken in. A failure is logged, never passed on: the
/// returns are in the ledger already and the next rebuild catches up.
pub fn after_intake(settings: &Settings, ledger: &Ledger) {
    if let Err(e) = master::rebuild(&settings.config, ledger, settings.now) {
        tracing::error!(error = %e, "the master workbook was not rebuilt; run `tally rebuild` to retry");
    }
    // Failures of single units are logged by `publish_all`.
    if let Err(e) = crate::progress::publish_all(&settings.config, ledger, settings.now, false) {
        tracing::error!(error = %e, "the units' progress workbooks were not written");
    }
    crate::forms::publish_all(&settings.config, settings.now);
}

/// A unit's progress workbook fed the rows read for its roster workbook.
impl<'a> master::Beside for Prepared<'a> {
    type Book = Pending<'a>;
    type Outcome = UnitOutcome;

    fn start(&self, reader: &Ledger, unit: &Unit) -> Option<Self::Book> {
        Prepared::start(self, reader, unit)
    }

    fn write(&self, book: &mut Self::Book, row: &CountedRow) {
        book.write(row);
    }

    fn finish(&self, book: Self::Book) -> UnitOutcome {
        Prepared::finish(self, book)
    }
}
