//! Fixtures for the mail module's unit tests: the reference plan, an outbox row, a fixed
//! `now`. Test-only; nothing here reaches the binary.

use crate::config::Config;
use crate::mail::OutboxRow;
use chrono::DateTime;
use chrono_tz::Tz;
use std::path::Path;

/// The reference plan, based in `/base` (nothing is written there).
pub fn config() -> Config {
    config_in(Path::new("/base"))
}

/// The reference plan with its folders (ledger, outbox) under `dir`.
pub fn config_in(dir: &Path) -> Config {
    Config::parse(
        include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/tally.toml")),
        Path::new("tally.toml"),
        dir,
    )
    .unwrap()
}

/// A queued receipt to 西兴街道 (id 7).
pub fn row(subject: &str, to: &[&str]) -> OutboxRow {
    OutboxRow {
        id: 7,
        key: "receipt/accepted/abc/西兴街道".into(),
        kind: "receipt".into(),
        unit: Some("西兴街道".into()),
        created_at: "2020-07-01T00:00:00+08:00".into(),
        to: to.iter().map(|s| s.to_string()).collect(),
        cc: Vec::new(),
        subject: subject.into(),
        body: "正文".into(),
        attachments: Vec::new(),
        status: "queued".into(),
        attempts: 0,
        next_attempt_at: None,
        last_error: None,
        sent_at: None,
        lease_until: None,
        delivered_to: Vec::new(),
    }
}

/// 2020-07-01 09:00 in Shanghai.
pub fn now() -> DateTime<Tz> {
    crate::core::calendar::parse_now("2020-07-01T09:00:00", chrono_tz::Asia::Shanghai).unwrap()
}
