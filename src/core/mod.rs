//! The pure domain: the plan and its calendar (deadlines on working days), the return model and
//! its validation, ids, dates, folding, findings, counting, lateness (报送日历), reminder
//! decisions and the settle state machine.
//! Nothing here touches a file, a clock, the network, SQLite, calamine, rust_xlsxwriter,
//! lettre or notify: time and data come in as arguments (`tests/layers.rs` keeps it so).

pub mod calendar;
pub mod count;
pub mod dates;
pub mod findings;
pub mod fold;
pub mod form;
pub mod ids;
pub mod lateness;
pub mod plan;
pub mod remind;
pub mod returns;
pub mod settle;
pub mod workbook;

/// A map looked up once or more per row: a fast hash (foldhash, seeded per map), not SipHash.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
