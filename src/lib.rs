//! tally: work-safety training returns — checking, ledger, master workbook, reminders.
//!
//! The pure core (`plan`, `returns`, `ids`, `dates`, `fold`, `findings`, `count`) never touches
//! the disk, a clock or the network; the edges (`read`, `ledger`, `intake`, workbooks, `cli`)
//! do.

pub mod cli;
pub mod cmd;
pub mod config;
pub mod count;
pub mod dates;
pub mod feedback;
pub mod findings;
pub mod fold;
pub mod form;
pub mod ids;
pub mod intake;
pub mod ledger;
pub mod lock;
pub mod logging;
pub mod mail;
pub mod master;
pub mod messages;
pub mod plan;
pub mod read;
pub mod remind;
pub mod returns;
pub mod settle;
pub mod table;
pub mod targets;
pub mod template;
pub mod watch;
pub mod workbook;
