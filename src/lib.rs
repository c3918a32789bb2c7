//! tally: work-safety training returns — checking, ledger, master workbook, reminders.

pub mod findings;
pub mod form;
pub mod ids;
pub mod template;
