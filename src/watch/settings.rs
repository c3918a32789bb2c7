//! `[watch]` in tally.toml: how the daemon notices files and when a dropped file counts as
//! complete. Parsed with the rest of the file by `crate::config`; validated here.

use serde::Deserialize;

/// How the daemon learns about new files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// The operating system's events (inotify, ReadDirectoryChangesW, FSEvents) only.
    Native,
    /// Look at the folders every `poll_interval_secs` (SMB/CIFS and NFS shares, which deliver
    /// no native events and give no error about it).
    Poll,
    /// Native events plus a full rescan every `rescan_secs` as a safety net.
    #[default]
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Native => "native",
            Mode::Poll => "poll",
            Mode::Auto => "auto",
        }
    }
}

/// The `[watch]` section of tally.toml. Seconds may have fractions.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WatchSettings {
    pub mode: Mode,
    /// Poll mode: seconds between looks at the folders.
    pub poll_interval_secs: f64,
    /// Auto and poll modes: seconds between full rescans (the safety net).
    pub rescan_secs: f64,
    /// A file is complete when its size and mtime are unchanged across two looks this many
    /// seconds apart.
    pub settle_secs: f64,
    /// A file must be at least this many seconds old (by its mtime).
    pub min_age_secs: f64,
    /// The units this watcher takes returns for (names or aliases); empty: every unit. With
    /// a shared PostgreSQL ledger, watchers on different file servers split the units.
    pub units: Vec<String>,
}

impl Default for WatchSettings {
    fn default() -> Self {
        WatchSettings {
            mode: Mode::Auto,
            poll_interval_secs: 30.0,
            rescan_secs: 60.0,
            settle_secs: 2.0,
            min_age_secs: 1.0,
            units: Vec::new(),
        }
    }
}

impl WatchSettings {
    /// Every value out of range, with its key under `[watch]`.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        let w = self;
        for (key, value, min) in [
            ("poll_interval_secs", w.poll_interval_secs, 0.1),
            ("rescan_secs", w.rescan_secs, 1.0),
            ("settle_secs", w.settle_secs, 0.05),
            ("min_age_secs", w.min_age_secs, 0.0),
        ] {
            if !(value.is_finite() && (min..=86_400.0).contains(&value)) {
                out.push((
                    key,
                    format!("must be a number of seconds from {min} to 86400, found {value}"),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, ConfigError};
    use std::path::Path;

    const REFERENCE: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml"));

    fn parse(src: &str) -> Result<Config, ConfigError> {
        Config::parse(src, Path::new("tally.toml"), Path::new("/base"))
    }

    #[test]
    fn the_reference_plan_spells_out_the_defaults() {
        assert_eq!(parse(REFERENCE).unwrap().watch, WatchSettings::default());
        let without = REFERENCE.replacen("[watch]", "[watch_unused_example]", 1);
        assert!(parse(&without).is_err(), "unknown sections are refused");
    }

    #[test]
    fn bad_watch_values_name_key_and_line() {
        for (from, to, key) in [
            ("settle_secs = 2", "settle_secs = -1", "watch.settle_secs"),
            (
                "min_age_secs = 1",
                "min_age_secs = nan",
                "watch.min_age_secs",
            ),
            ("rescan_secs = 60", "rescan_secs = 0", "watch.rescan_secs"),
            (
                "poll_interval_secs = 30",
                "poll_interval_secs = 1e9",
                "watch.poll_interval_secs",
            ),
        ] {
            let src = REFERENCE.replacen(from, to, 1);
            let err = parse(&src).unwrap_err();
            let ConfigError::Invalid { key: k, line, .. } = &err else {
                panic!("{err}")
            };
            assert_eq!(k, key);
            assert_eq!(
                *line,
                src.lines().position(|l| l.starts_with(to)).unwrap() + 1
            );
        }
        let err =
            parse(&REFERENCE.replacen("mode = \"auto\"", "mode = \"inotify\"", 1)).unwrap_err();
        assert!(err.to_string().contains("inotify"), "{err}");
    }
}
