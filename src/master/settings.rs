//! `[master]` in tally.toml: the master workbook's settings. Parsed with the rest of the file
//! by `crate::config`.

use serde::Deserialize;

/// Counted rows up to which `roster = "auto"` keeps the roster inside the master (a workbook
/// of this many rows still opens in a few seconds); past it, one roster workbook per unit.
pub const AUTO_INLINE_MAX_ROWS: u64 = 100_000;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MasterSettings {
    /// Earlier versions of the master kept under `<archive>/master/` (the oldest go first).
    pub versions_kept: usize,
    /// Where the counted roster (培训台账) goes.
    pub roster: RosterMode,
}

impl Default for MasterSettings {
    fn default() -> Self {
        MasterSettings {
            versions_kept: 10,
            roster: RosterMode::Auto,
        }
    }
}

/// `[master] roster`: where the counted roster is written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RosterMode {
    /// `inline` up to [`AUTO_INLINE_MAX_ROWS`] counted rows, `per-unit` past it.
    #[default]
    Auto,
    /// 培训台账 sheets in the master itself.
    Inline,
    /// One workbook per unit, `台账/<unit>.xlsx` beside the master, rewritten only when
    /// that unit's counted returns changed.
    PerUnit,
    /// No roster beside the master (each unit's progress workbook still has its own).
    None,
}

impl RosterMode {
    /// The mode for a ledger of `counted` rows: `auto` resolved, the others as they are.
    pub fn resolve(self, counted: u64) -> RosterMode {
        match self {
            RosterMode::Auto if counted <= AUTO_INLINE_MAX_ROWS => RosterMode::Inline,
            RosterMode::Auto => RosterMode::PerUnit,
            m => m,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_follows_the_size_of_the_ledger() {
        assert_eq!(RosterMode::Auto.resolve(0), RosterMode::Inline);
        assert_eq!(
            RosterMode::Auto.resolve(AUTO_INLINE_MAX_ROWS),
            RosterMode::Inline
        );
        assert_eq!(
            RosterMode::Auto.resolve(AUTO_INLINE_MAX_ROWS + 1),
            RosterMode::PerUnit
        );
        assert_eq!(RosterMode::None.resolve(0), RosterMode::None);
        assert_eq!(RosterMode::PerUnit.resolve(1), RosterMode::PerUnit);
    }

    #[test]
    fn modes_parse_from_toml() {
        for (text, mode) in [
            ("inline", RosterMode::Inline),
            ("per-unit", RosterMode::PerUnit),
            ("none", RosterMode::None),
            ("auto", RosterMode::Auto),
        ] {
            let s: MasterSettings = toml::from_str(&format!("roster = \"{text}\"")).unwrap();
            assert_eq!(s.roster, mode);
        }
        assert!(toml::from_str::<MasterSettings>("roster = \"all\"").is_err());
    }
}
