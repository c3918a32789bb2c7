//! `[master]` in tally.toml: the master workbook's settings. Parsed with the rest of the file
//! by `crate::config`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasterSettings {
    /// Earlier versions of the master kept under `<archive>/master/` (the oldest go first).
    pub versions_kept: usize,
}

impl Default for MasterSettings {
    fn default() -> Self {
        MasterSettings { versions_kept: 10 }
    }
}
