//! tally: work-safety training returns — checking, ledger, master workbook, reminders.
//!
//! Layers (DESIGN.md §7), dependencies pointing one way, cmd → edges → core:
//! - `core`: the pure domain; imports no edge.
//! - edges, each owning its settings from tally.toml: `config` (the file), `read`, `ledger`,
//!   `intake`, `master`, `progress`, `forms`, `feedback`, `template`, `targets`, `watch`,
//!   `mail`, `logging`, `private` (personal data owner-only at rest), `bars` (progress bars on
//!   a terminal).
//! - `settings` (resolved once: config, clock, environment) and `cmd` (clap, one module per
//!   command).

pub mod bars;
pub mod cmd;
pub mod config;
pub mod core;
pub mod durable;
pub mod excel;
pub mod feedback;
pub mod forms;
pub mod intake;
pub mod ledger;
pub mod logging;
pub mod mail;
pub mod master;
pub mod memory;
pub mod private;
pub mod progress;
pub mod read;
pub mod sandbox;
pub mod settings;
pub mod targets;
pub mod template;
pub mod watch;
